package cnosdb

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/influxdata/telegraf"
	"github.com/tidwall/wal"
)

// spool keeps the batches read from stdin on disk until CnosDB has them. Every batch is
// appended (and synced) before it is sent, and acknowledged once its result is final;
// the writer takes them from the front, in order, so the spool also is the queue between
// the stdin loop and the writer, and memory holds only the batch being written.
//
// Acknowledging does not rewrite the log each time: the index of the last acknowledged
// entry goes to a small file, and the log's front is cut once the acknowledged entries
// add up to a segment, when room is needed, or when the spool is closed empty.
type spool struct {
	dir  string
	max  int64
	log  telegraf.Logger
	lock *spoolLock
	wal  *wal.Log
	ack  *os.File
	buf  []byte // the entry being appended

	mu      sync.Mutex
	changed chan struct{} // closed and replaced when entries are added or acknowledged
	cursor  uint64        // the next entry for the writer
	first   uint64        // the oldest entry not acknowledged
	last    uint64        // the newest entry
	pending int64         // bytes of the entries not acknowledged
	dead    int64         // bytes of acknowledged entries still in the files
	lines   int64         // lines of the entries not acknowledged
	oldest  time.Time     // when the entry at first was spooled; zero when not known
	closed  bool

	fullSince    time.Time // when appending started to wait for room; zero when not waiting
	lastFullWarn time.Time
}

// spoolSegmentSize is the size of one log file. The log keeps the file being appended
// to in memory, and up to two more for reading. Acknowledged entries are cut from the
// front of the log once they add up to this much. A variable so that tests can make
// many files.
var spoolSegmentSize = 8 << 20

const (
	// spoolFullWarnEvery spaces the warnings while the spool stays full.
	spoolFullWarnEvery = 30 * time.Second
	ackFileName        = "acked"
)

var errSpoolClosed = errors.New("spool closed")

func walOptions() *wal.Options {
	return &wal.Options{
		SegmentSize:      spoolSegmentSize,
		SegmentCacheSize: 2,
		AllowEmpty:       true,
		DirPerms:         0o750,
		FilePerms:        0o640,
	}
}

// frameSize is what an entry of n bytes takes in a segment file.
func frameSize(n int) int64 {
	return int64(n + len(binary.AppendUvarint(nil, uint64(n))))
}

// openSpool locks dir, repairs what a crash left and counts the entries to replay.
func openSpool(dir string, maxSize int64, log telegraf.Logger) (*spool, error) {
	lock, err := lockSpool(dir)
	if err != nil {
		return nil, err
	}
	s := &spool{dir: dir, max: maxSize, log: log, lock: lock, changed: make(chan struct{})}
	s.ack, err = os.OpenFile(filepath.Join(dir, ackFileName), os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		lock.release()
		return nil, fmt.Errorf("spool_dir: %w", err)
	}
	if err := s.load(); err != nil {
		s.ack.Close()
		lock.release()
		return nil, err
	}
	return s, nil
}

// load opens the log and sets the counters from what it holds.
func (s *spool) load() error {
	if err := s.openWAL(); err != nil {
		return err
	}
	first, _ := s.wal.FirstIndex()
	last, _ := s.wal.LastIndex()
	if acked := s.readAck(); acked >= first {
		// Acknowledged before the last stop, not yet cut from the files.
		if err := s.wal.TruncateFront(min(acked, last) + 1); err != nil {
			return fmt.Errorf("spool_dir: dropping the acknowledged entries of %s: %w", s.dir, err)
		}
		first = min(acked, last) + 1
	}
	s.first, s.last, s.cursor = first, last, first
	s.pending, s.dead, s.lines, s.oldest = 0, 0, 0, time.Time{}

	segs, err := listSegments(s.dir)
	if err != nil {
		return fmt.Errorf("spool_dir: %w", err)
	}
	for _, seg := range segs {
		err := eachFrame(seg, func(index uint64, offset int64, data []byte) error {
			if index < first || index > last {
				return nil
			}
			s.pending += frameSize(len(data))
			info, err := readEntryInfo(data)
			if err != nil {
				// Reported with its place when the writer comes to it.
				return nil
			}
			s.lines += int64(info.lines)
			if index == first {
				s.oldest = info.at
			}
			return nil
		})
		var damage *frameDamage
		if errors.As(err, &damage) {
			// Not the last segment (its tail was cut before opening): entries after the
			// damage have no place the log can find, so the log is written anew.
			s.log.Errorf("spool: %v; writing the spool anew with every intact entry", damage)
			return s.rebuild()
		}
		if err != nil {
			return fmt.Errorf("spool_dir: reading %s: %w", seg.path, err)
		}
	}
	return nil
}

// openWAL opens the log, first cutting a last entry that a crash left incomplete.
func (s *spool) openWAL() error {
	var err error
	for attempt := 0; attempt < 2; attempt++ {
		var damage *frameDamage
		damage, err = cutTornTail(s.dir)
		if err != nil {
			return fmt.Errorf("spool_dir: %w", err)
		}
		if damage != nil {
			s.log.Warnf("spool: %v; probably cut by a crash while it was appended (before it was confirmed to the input): "+
				"dropped it, kept the %d intact entries before it", damage, damage.entries)
		}
		s.wal, err = wal.Open(s.dir, walOptions())
		if err == nil {
			return nil
		}
		if !errors.Is(err, wal.ErrCorrupt) {
			return fmt.Errorf("spool_dir: opening the spool in %s: %w", s.dir, err)
		}
		// A truncation stopped halfway is finished by Open before it reads the last
		// segment, whose tail can be checked only then.
	}
	s.log.Errorf("spool: %s cannot be opened (%v); moving its files aside and starting an empty spool", s.dir, err)
	if _, err := s.moveAside(); err != nil {
		return err
	}
	s.writeAck(0)
	s.wal, err = wal.Open(s.dir, walOptions())
	if err != nil {
		return fmt.Errorf("spool_dir: opening an empty spool in %s: %w", s.dir, err)
	}
	return nil
}

// rebuild writes every intact entry not yet acknowledged into a new log, and moves the
// old files aside for an operator to look at.
func (s *spool) rebuild() error {
	first := s.first
	if err := s.wal.Close(); err != nil && !errors.Is(err, wal.ErrCorrupt) {
		return fmt.Errorf("spool_dir: closing %s: %w", s.dir, err)
	}
	tmp := filepath.Join(s.dir, "rebuild")
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("spool_dir: %w", err)
	}
	opts := walOptions()
	opts.NoSync = true // synced once, on Close
	nl, err := wal.Open(tmp, opts)
	if err != nil {
		return fmt.Errorf("spool_dir: %w", err)
	}
	segs, err := listSegments(s.dir)
	if err != nil {
		return fmt.Errorf("spool_dir: %w", err)
	}
	next := uint64(1)
	for _, seg := range segs {
		err := eachFrame(seg, func(index uint64, _ int64, data []byte) error {
			if index < first {
				return nil
			}
			next++
			return nl.Write(next-1, data)
		})
		var damage *frameDamage
		if err != nil && !errors.As(err, &damage) {
			nl.Close()
			return fmt.Errorf("spool_dir: rebuilding the spool: %w", err)
		}
	}
	if err := nl.Close(); err != nil {
		return fmt.Errorf("spool_dir: rebuilding the spool: %w", err)
	}
	aside, err := s.moveAside()
	if err != nil {
		return err
	}
	built, err := listSegments(tmp)
	if err != nil {
		return fmt.Errorf("spool_dir: %w", err)
	}
	for _, seg := range built {
		if err := os.Rename(seg.path, filepath.Join(s.dir, filepath.Base(seg.path))); err != nil {
			return fmt.Errorf("spool_dir: %w", err)
		}
	}
	_ = os.RemoveAll(tmp)
	s.writeAck(0)
	s.log.Errorf("spool: kept %d intact entries; the damaged files are in %s", next-1, aside)
	return s.load()
}

// moveAside moves the segment files into a new directory of their own.
func (s *spool) moveAside() (string, error) {
	aside := filepath.Join(s.dir, "damaged-"+time.Now().UTC().Format("20060102T150405.000000000"))
	if err := os.Mkdir(aside, 0o750); err != nil {
		return "", fmt.Errorf("spool_dir: %w", err)
	}
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return "", fmt.Errorf("spool_dir: %w", err)
	}
	for _, e := range entries {
		if e.IsDir() || e.Name() == "lock" || e.Name() == ackFileName {
			continue
		}
		if err := os.Rename(filepath.Join(s.dir, e.Name()), filepath.Join(aside, e.Name())); err != nil {
			return "", fmt.Errorf("spool_dir: %w", err)
		}
	}
	return aside, nil
}

// readAck returns the last acknowledged index, 0 when none is recorded.
func (s *spool) readAck() uint64 {
	var b [12]byte
	n, _ := s.ack.ReadAt(b[:], 0)
	if n == 0 {
		return 0
	}
	if n != len(b) || crc32.Checksum(b[:8], castagnoli) != binary.LittleEndian.Uint32(b[8:]) {
		s.log.Warnf("spool: %s is damaged; batches written before the last stop may be written again",
			filepath.Join(s.dir, ackFileName))
		return 0
	}
	return binary.LittleEndian.Uint64(b[:8])
}

// writeAck records the last acknowledged index. It is not synced: a process killed
// right after still leaves it to the next start, and one lost with the machine only
// makes batches already written be written again.
func (s *spool) writeAck(index uint64) {
	var b [12]byte
	binary.LittleEndian.PutUint64(b[:8], index)
	binary.LittleEndian.PutUint32(b[8:], crc32.Checksum(b[:8], castagnoli))
	if _, err := s.ack.WriteAt(b[:], 0); err != nil {
		s.log.Errorf("spool: recording progress in %s: %v", s.ack.Name(), err)
	}
}

// waitLocked lets go of the lock until the next change, until ctx is done or until
// wake fires (never when nil).
func (s *spool) waitLocked(ctx context.Context, wake <-chan time.Time) {
	ch := s.changed
	s.mu.Unlock()
	select {
	case <-ch:
	case <-ctx.Done():
	case <-wake:
	}
	s.mu.Lock()
}

// broadcastLocked wakes everyone waiting for a change.
func (s *spool) broadcastLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// append adds b to the spool. While the spool is full it waits for the writer to make
// room, which stops reading stdin and so pushes back on Telegraf. Once ctx is done (the
// plugin is stopping) it appends even over the limit rather than lose lines already
// read, and gives up only when the disk refuses the write.
func (s *spool) append(ctx context.Context, b *batch) error {
	s.buf = encodeEntry(s.buf[:0], b, time.Now())
	size := frameSize(len(s.buf))
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.pending+s.dead+size > s.max && s.first <= s.last && ctx.Err() == nil {
		if s.dead > 0 {
			s.compactLocked()
			if s.dead > 0 {
				break // cannot cut; the error is logged, and the limit is not worth losing lines
			}
			continue
		}
		s.warnFullLocked(size)
		// Woken by the writer's progress, or to repeat the warning while there is none.
		timer := time.NewTimer(spoolFullWarnEvery)
		s.waitLocked(ctx, timer.C)
		timer.Stop()
	}
	if !s.fullSince.IsZero() {
		if over := s.pending + s.dead + size - s.max; ctx.Err() != nil && over > 0 {
			s.log.Warnf("spool: stopping while full: the last %d lines read go over spool_max_size by %s rather than be lost",
				b.len(), humanBytes(over))
		} else {
			s.log.Infof("spool: room again after %s; reading from Telegraf again", time.Since(s.fullSince).Round(time.Second))
		}
		s.fullSince, s.lastFullWarn = time.Time{}, time.Time{}
	}

	retry := 100 * time.Millisecond
	for {
		err := s.wal.Write(s.last+1, s.buf)
		if err == nil {
			break
		}
		s.log.Errorf("spool: appending %d lines to %s failed: %v; retrying in %s, not reading from Telegraf meanwhile",
			b.len(), s.dir, err, retry)
		// A failed write can leave the log's memory out of step with its files:
		// open it again from the files.
		_ = s.wal.Close()
		if oerr := s.openWAL(); oerr != nil {
			s.log.Errorf("spool: %v", oerr)
		} else if last, _ := s.wal.LastIndex(); last > s.last {
			// Only the sync failed: the entry is whole in the file, where the next
			// start finds it anyway.
			break
		}
		s.mu.Unlock()
		select {
		case <-time.After(retry):
		case <-ctx.Done():
		}
		s.mu.Lock()
		if ctx.Err() != nil {
			return fmt.Errorf("appending to the spool in %s: %w", s.dir, err)
		}
		retry = min(2*retry, 10*time.Second)
	}
	s.last++
	if s.first == s.last {
		s.oldest = time.Now()
	}
	s.pending += size
	s.lines += int64(b.len())
	s.broadcastLocked()
	return nil
}

func (s *spool) warnFullLocked(size int64) {
	now := time.Now()
	if s.fullSince.IsZero() {
		s.fullSince = now
	}
	if !s.lastFullWarn.IsZero() && now.Sub(s.lastFullWarn) < spoolFullWarnEvery {
		return
	}
	s.lastFullWarn = now
	age := "unknown"
	if !s.oldest.IsZero() {
		age = now.Sub(s.oldest).Round(time.Second).String()
	}
	s.log.Warnf("spool full: %s in %d batches (%d lines), limit spool_max_size = %s, the next batch needs %s; "+
		"oldest batch spooled %s ago; not reading from Telegraf until CnosDB takes some (full for %s)",
		humanBytes(s.pending+s.dead), s.last-s.first+1, s.lines, humanBytes(s.max), humanBytes(size),
		age, now.Sub(s.fullSince).Round(time.Second))
}

// next returns the next entry for the writer, waiting for one; it returns
// errSpoolClosed once the spool is closed and every entry was handed out.
func (s *spool) next(ctx context.Context) (uint64, []byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		if s.cursor <= s.last {
			index := s.cursor
			s.cursor++
			data, err := s.wal.Read(index)
			if err == nil && index == s.first {
				if info, ierr := readEntryInfo(data); ierr == nil {
					s.oldest = info.at
				}
			}
			return index, data, err
		}
		if s.closed {
			return 0, nil, errSpoolClosed
		}
		s.waitLocked(ctx, nil)
		if ctx.Err() != nil {
			return 0, nil, ctx.Err()
		}
	}
}

// lastIndex returns the index of the newest entry.
func (s *spool) lastIndex() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

// acknowledge removes the entry at index, the oldest one, whose result is final. size
// is its length in the log (0 when it could not be read), lines its lines.
func (s *spool) acknowledge(index uint64, size int, lines int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if index != s.first {
		s.log.Errorf("spool: acknowledging batch %d while %d is the oldest; the spool is out of step", index, s.first)
	}
	s.first = index + 1
	if size > 0 {
		s.pending -= frameSize(size)
		s.dead += frameSize(size)
	}
	s.lines -= int64(lines)
	s.oldest = time.Time{}
	if s.first > s.last {
		s.pending, s.lines = 0, 0
	}
	s.writeAck(index)
	if s.dead >= int64(spoolSegmentSize) {
		s.compactLocked()
	}
	s.broadcastLocked()
}

// compactLocked cuts the acknowledged entries from the front of the log.
func (s *spool) compactLocked() {
	if err := s.wal.TruncateFront(s.first); err != nil {
		s.log.Errorf("spool: removing written batches from %s: %v", s.dir, err)
		if errors.Is(err, wal.ErrCorrupt) {
			// The log asks to be opened again to recover from a half-done cut.
			_ = s.wal.Close()
			if oerr := s.openWAL(); oerr != nil {
				s.log.Errorf("spool: %v", oerr)
			}
		}
		return
	}
	s.dead = 0
}

// waitEmpty returns once every entry is acknowledged, or when stop is closed.
func (s *spool) waitEmpty(stop <-chan struct{}) {
	for {
		s.mu.Lock()
		empty, ch := s.first > s.last, s.changed
		s.mu.Unlock()
		if empty {
			return
		}
		select {
		case <-ch:
		case <-stop:
			return
		}
	}
}

// spoolStatus is what the spool holds; limit is 0 without a spool.
type spoolStatus struct {
	batches, lines, bytes, limit int64
}

func (s *spool) status() spoolStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	return spoolStatus{batches: int64(s.last + 1 - s.first), lines: s.lines, bytes: s.pending, limit: s.max}
}

// oldestSpooled returns when the oldest batch was spooled; zero when not known.
func (s *spool) oldestSpooled() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.oldest
}

// closeInput tells the writer that nothing more is appended.
func (s *spool) closeInput() {
	s.mu.Lock()
	s.closed = true
	s.broadcastLocked()
	s.mu.Unlock()
}

// shut closes the files once the writer has stopped; what is left is replayed at the
// next start.
func (s *spool) shut() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.first > s.last || s.dead > 0 {
		s.compactLocked()
	}
	if err := s.wal.Close(); err != nil {
		s.log.Errorf("spool: closing %s: %v", s.dir, err)
	}
	s.ack.Close()
	s.lock.release()
}
