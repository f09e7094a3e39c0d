package cnosdb

import (
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// checkSpool validates spool_dir and spool_max_size; the directory is created here so
// that a path that cannot work is reported before the plugin starts.
func (c *CnosDB) checkSpool() error {
	if c.SpoolMaxSize <= 0 {
		return fmt.Errorf("spool_max_size: must be positive, got %d B", c.SpoolMaxSize)
	}
	if c.SpoolDir == "" {
		return nil
	}
	// A batch holds up to max_request_size plus one line, which is at most as long.
	if least := 2 * int64(c.MaxRequestSize); int64(c.SpoolMaxSize) < least {
		return fmt.Errorf("spool_max_size: must be at least twice max_request_size (%s), so that a whole batch fits; got %s",
			humanBytes(least/2), humanBytes(int64(c.SpoolMaxSize)))
	}
	if err := os.MkdirAll(c.SpoolDir, 0o750); err != nil {
		return fmt.Errorf("spool_dir: cannot create %q: %w", c.SpoolDir, err)
	}
	info, err := os.Stat(c.SpoolDir)
	if err != nil {
		return fmt.Errorf("spool_dir: %w", err)
	}
	if !info.IsDir() {
		return fmt.Errorf("spool_dir: %q is not a directory", c.SpoolDir)
	}
	probe, err := os.CreateTemp(c.SpoolDir, ".probe-*")
	if err != nil {
		return fmt.Errorf("spool_dir: %q is not writable: %w", c.SpoolDir, err)
	}
	probe.Close()
	return os.Remove(probe.Name())
}

// Spooling reports whether batches go through the on-disk spool.
func (s *Stream) Spooling() bool { return s.spool != nil }

func (s *Stream) openSpool() error {
	c := s.out
	var fs unix.Statfs_t
	if err := unix.Statfs(c.SpoolDir, &fs); err == nil {
		if free := int64(fs.Bavail) * fs.Bsize; free < int64(c.SpoolMaxSize) {
			c.Log.Warnf("spool_dir %s: only %s free on its file system, less than spool_max_size (%s)",
				c.SpoolDir, humanBytes(free), humanBytes(int64(c.SpoolMaxSize)))
		}
	}
	sp, err := openSpool(c.SpoolDir, int64(c.SpoolMaxSize), c.Log)
	if err != nil {
		return err
	}
	s.spool = sp
	c.stats.spool.Store(sp)
	st, oldest := sp.status(), sp.oldestSpooled()
	if st.batches == 0 {
		c.Log.Debugf("spool %s is empty (limit %s)", c.SpoolDir, humanBytes(st.limit))
		return nil
	}
	age := "at an unknown time"
	if !oldest.IsZero() {
		age = time.Since(oldest).Round(time.Second).String() + " ago"
	}
	c.Log.Infof("spool %s: replaying %d batches (%d lines, %s) left from an earlier run, the oldest spooled %s; "+
		"new input is written after them", c.SpoolDir, st.batches, st.lines, humanBytes(st.bytes), age)
	return nil
}

// writeSpooled writes the spool's batches in order and acknowledges each once its
// result is final. A batch whose write is stopped stays in the spool.
func (s *Stream) writeSpooled() {
	defer close(s.writerDone)
	c := s.out
	var b batch
	for {
		index, data, err := s.spool.next(c.ctx)
		if errors.Is(err, errSpoolClosed) || c.ctx.Err() != nil {
			return
		}
		if err != nil {
			c.Log.Errorf("spool: batch %d (%s) cannot be read: %v; skipped, its lines are lost",
				index, locate(c.SpoolDir, index), err)
			s.spool.acknowledge(index, 0, 0)
			s.acks.abandoned(index)
			continue
		}
		info, err := decodeEntry(data, &b)
		if err != nil {
			c.Log.Errorf("spool: batch %d (%s) is damaged (%v); skipped, its lines are lost",
				index, locate(c.SpoolDir, index), err)
			s.spool.acknowledge(index, len(data), info.lines)
			s.acks.abandoned(index)
			continue
		}
		b.seq = index
		c.stats.holdBatch()
		res := c.writer.write(c.ctx, &b)
		if c.onResult != nil {
			c.onResult(res)
		}
		s.acks.result(res)
		c.stats.releaseBatch()
		if res.Aborted > 0 {
			c.Log.Infof("stopped before writing %d lines of batch %d (%d lines); the batch stays in the spool for the next start",
				res.Aborted, res.Seq, res.Lines)
			return
		}
		s.spool.acknowledge(index, len(data), info.lines)
		if s.spool.status().batches == 0 {
			s.signalFinished()
		}
	}
}

func (s *Stream) closeSpool() {
	if st := s.spool.status(); st.batches > 0 {
		s.out.Log.Infof("spool: %d batches (%d lines, %s) stay in %s and are written first at the next start",
			st.batches, st.lines, humanBytes(st.bytes), s.out.SpoolDir)
	}
	s.spool.shut()
}

// flushToSpool appends the batch being filled to the spool; it blocks while the
// spool is full.
func (s *Stream) flushToSpool() {
	c := s.out
	if err := s.spool.append(c.ctx, s.fill); err != nil {
		c.Log.Errorf("%d lines read from stdin could not be spooled and are lost: %v", s.fill.len(), err)
		s.acks.lost()
	} else {
		s.acks.flushed(s.spool.lastIndex())
	}
	s.fill.reset()
}
