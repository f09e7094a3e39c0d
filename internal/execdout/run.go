// Package execdout runs an output as a child of Telegraf's execd output: it reads the
// line protocol Telegraf writes to stdin, hands it to a Sink in batches, and flushes on
// size, on idle time and at the end of the input.
//
// Telegraf's plugin shim has such a loop too, but it drops a batch whenever a write
// fails and stops at the first line longer than 64 KiB; this one leaves retrying to the
// sink and takes entries of any length up to a bound.
package execdout

import (
	"bytes"
	"context"
	"errors"
	"io"
	"sync"
	"time"

	"github.com/influxdata/telegraf"

	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/internal/lpstream"
)

// Sink receives the entries. Add, Pending and Flush are called from one goroutine at a
// time.
type Sink interface {
	// Add appends one entry, which is valid only during the call, to the batch being
	// filled. line is its line number on stdin. An error means the entry is malformed:
	// it is logged and skipped.
	Add(entry []byte, line int64) error
	// Pending reports the entries and bytes added since the last Flush.
	Pending() (entries, bytes int)
	// Flush hands the pending entries to the writer. It blocks while the writer is busy
	// with earlier batches, which stops reading stdin and so pushes back on Telegraf.
	Flush()
	// Drain waits until every flushed batch is written or given up.
	Drain()
}

// Counter is a Sink that counts the entries dropped as malformed: those Add refused
// for good, and those longer than MaxEntrySize, which never reach Add.
type Counter interface {
	Malformed()
}

// Urgent is a Sink that can ask for the batch being filled to be flushed as soon as
// the writer is free, whatever its size: when someone waits on it and nothing more
// comes until then, waiting for the batch to fill or age only adds latency.
type Urgent interface {
	// FlushNow reports whether the pending entries should be flushed once the writer
	// is free.
	FlushNow() bool
}

// Paced is a Sink whose writer says when it is busy. A batch smaller than
// BatchEntries is flushed only while the writer is free: while it is busy, flushing
// would only queue the batch, and the entries that arrive meanwhile belong in it.
// Under a backlog this keeps every request full, since small requests cost a server
// nearly as much as large ones (Nagle's rule for a stream of writes).
type Paced interface {
	// Busy reports whether the writer has flushed batches without a final result.
	Busy() bool
	// Finished receives a value when the writer has finished every flushed batch.
	Finished() <-chan struct{}
}

// Config bounds the batches.
type Config struct {
	BatchEntries  int           // flush when this many entries are pending
	BatchBytes    int           // or when this many bytes are pending
	FlushInterval time.Duration // or when the oldest pending entry is this old
	// IdleFlush flushes a smaller batch once no entry came for this long and the
	// writer is free (see Paced): the stream is idle, and nothing is gained by
	// waiting. Zero leaves it to FlushInterval.
	IdleFlush    time.Duration
	MaxEntrySize int // longer entries are skipped with an error
	// ShutdownGrace is how long to go on reading after ctx is done, so that what
	// Telegraf already wrote to the pipe is not lost; reading stops earlier at EOF.
	ShutdownGrace time.Duration
	// InputEnded, when set, is called once stdin ends (EOF, or an error reading it)
	// before what was read is flushed and drained. Telegraf's execd output stops its
	// child by closing stdin, so this is where a stop begins and its time counts from.
	InputEnded func()
	Log        telegraf.Logger
}

// Run reads in until EOF or until ctx is done (then for at most ShutdownGrace more),
// flushes what it read and waits for the sink to write it.
func Run(ctx context.Context, in io.Reader, sink Sink, cfg Config) error {
	var (
		mu           sync.Mutex
		oldest       time.Time // when the oldest pending entry was added
		latest       time.Time // when the newest pending entry was added
		stopped      bool      // no more entries are taken after this
		badEntries   int64
		lastBadLog   time.Time
		suppressed   int64
		readerResult = make(chan error, 1)
	)
	counter, _ := sink.(Counter)
	urgent, _ := sink.(Urgent)
	paced, _ := sink.(Paced)
	writerFree := func() bool { return paced == nil || !paced.Busy() }
	var finished <-chan struct{}
	if paced != nil {
		finished = paced.Finished()
	}
	logBad := func(err error) {
		if counter != nil {
			counter.Malformed()
		}
		// One line per bad entry would let garbage on stdin flood Telegraf's log.
		badEntries++
		if now := time.Now(); now.Sub(lastBadLog) >= time.Second || badEntries <= 10 {
			if suppressed > 0 {
				cfg.Log.Errorf("%d more malformed entries on stdin were not logged", suppressed)
				suppressed = 0
			}
			cfg.Log.Errorf("stdin: %v", err)
			lastBadLog = now
			return
		}
		suppressed++
	}
	flushLocked := func() {
		if n, _ := sink.Pending(); n > 0 {
			sink.Flush()
		}
		oldest = time.Time{}
	}

	// flushEarlyLocked flushes a batch that is not full when that loses nothing: the
	// writer is free, and someone waits on the batch or the stream went idle.
	flushEarlyLocked := func(now time.Time) {
		if oldest.IsZero() || !writerFree() {
			return
		}
		if (urgent != nil && urgent.FlushNow()) || (cfg.IdleFlush > 0 && now.Sub(latest) >= cfg.IdleFlush) {
			flushLocked()
		}
	}

	go func() {
		r := lpstream.NewReader(in, cfg.MaxEntrySize)
		for {
			entry, err := r.Next()
			if errors.Is(err, io.EOF) {
				readerResult <- nil
				return
			}
			var tooLong *lpstream.TooLongError
			mu.Lock()
			if stopped {
				mu.Unlock()
				readerResult <- nil
				return
			}
			switch {
			case errors.As(err, &tooLong):
				logBad(err)
			case err != nil:
				mu.Unlock()
				readerResult <- err
				return
			default:
				added := 0
				if err := sink.Add(entry, r.Line()); err == nil {
					added = 1
				} else if bytes.IndexByte(entry, '\n') < 0 {
					logBad(err)
				} else {
					// A quote left open by garbage made one entry of this line and the
					// ones after it: try each line on its own, so that good ones are kept.
					for i, line := range bytes.Split(entry, []byte{'\n'}) {
						if err := sink.Add(bytes.TrimSuffix(line, []byte{'\r'}), r.Line()+int64(i)); err != nil {
							logBad(err)
						} else {
							added++
						}
					}
				}
				now := time.Now()
				if added > 0 {
					latest = now
					if oldest.IsZero() {
						oldest = now
					}
				}
				if n, size := sink.Pending(); n >= cfg.BatchEntries || size >= cfg.BatchBytes {
					flushLocked()
				} else if urgent != nil && urgent.FlushNow() {
					flushEarlyLocked(now)
				}
			}
			mu.Unlock()
		}
	}()

	tick := max(cfg.FlushInterval/4, 10*time.Millisecond)
	if cfg.IdleFlush > 0 {
		tick = min(tick, max(cfg.IdleFlush/4, time.Millisecond))
	}
	ticker := time.NewTicker(tick)
	defer ticker.Stop()
	finish := func(err error) error {
		mu.Lock()
		stopped = true
		flushLocked()
		if suppressed > 0 {
			cfg.Log.Errorf("%d more malformed entries on stdin were not logged", suppressed)
		}
		mu.Unlock()
		sink.Drain()
		return err
	}
	done := ctx.Done()
	var grace <-chan time.Time
	for {
		select {
		case err := <-readerResult:
			if cfg.InputEnded != nil {
				cfg.InputEnded()
			}
			return finish(err)
		case <-done:
			done = nil
			grace = time.After(cfg.ShutdownGrace)
		case <-grace:
			return finish(nil)
		case <-ticker.C:
			mu.Lock()
			now := time.Now()
			// Past FlushInterval too, a batch that is not full waits for a free writer:
			// queued behind a busy one it gains nothing, and while CnosDB is down the
			// entries read meanwhile keep Telegraf's buffer from filling.
			if !oldest.IsZero() && now.Sub(oldest) >= cfg.FlushInterval && writerFree() {
				flushLocked()
			} else {
				flushEarlyLocked(now)
			}
			mu.Unlock()
		case <-finished:
			mu.Lock()
			flushEarlyLocked(time.Now())
			mu.Unlock()
		}
	}
}
