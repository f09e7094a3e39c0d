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

	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/internal/lograte"
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
	r := newRunner(sink, cfg)
	readerResult := make(chan error, 1)
	go func() { readerResult <- r.read(in) }()

	ticker := time.NewTicker(r.tick())
	defer ticker.Stop()
	var finished <-chan struct{}
	if r.paced != nil {
		finished = r.paced.Finished()
	}
	done := ctx.Done()
	var grace <-chan time.Time
	for {
		select {
		case err := <-readerResult:
			if cfg.InputEnded != nil {
				cfg.InputEnded()
			}
			return r.finish(err)
		case <-done:
			done = nil
			grace = time.After(cfg.ShutdownGrace)
		case <-grace:
			return r.finish(nil)
		case <-ticker.C:
			r.onTick(time.Now())
		case <-finished:
			r.mu.Lock()
			r.flushEarlyLocked(time.Now())
			r.mu.Unlock()
		}
	}
}

// runner is one Run: the reading goroutine fills the sink's batch, and Run's loop
// flushes it on time; mu keeps them from flushing at once.
type runner struct {
	sink    Sink
	counter Counter // nil when the sink does not count malformed entries
	urgent  Urgent  // nil when the sink never asks for an early flush
	paced   Paced   // nil when the sink does not say when its writer is busy
	cfg     Config

	mu      sync.Mutex
	oldest  time.Time // when the oldest pending entry was added
	latest  time.Time // when the newest pending entry was added
	stopped bool      // no more entries are taken after this
	bad     badEntryLog
}

func newRunner(sink Sink, cfg Config) *runner {
	r := &runner{sink: sink, cfg: cfg}
	r.counter, _ = sink.(Counter)
	r.urgent, _ = sink.(Urgent)
	r.paced, _ = sink.(Paced)
	r.bad = badEntryLog{log: cfg.Log, limit: lograte.New(10, time.Second)}
	return r
}

// tick is how often the loop checks the batch's age: often enough that a batch is
// flushed close to FlushInterval or IdleFlush after it is due.
func (r *runner) tick() time.Duration {
	tick := max(r.cfg.FlushInterval/4, 10*time.Millisecond)
	if r.cfg.IdleFlush > 0 {
		tick = min(tick, max(r.cfg.IdleFlush/4, time.Millisecond))
	}
	return tick
}

// read hands the entries of in to the sink until EOF, an error reading, or finish.
func (r *runner) read(in io.Reader) error {
	lines := lpstream.NewReader(in, r.cfg.MaxEntrySize)
	for {
		entry, err := lines.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		r.mu.Lock()
		var tooLong *lpstream.TooLongError
		switch {
		case r.stopped:
			r.mu.Unlock()
			return nil
		case errors.As(err, &tooLong):
			r.malformed(err)
		case err != nil:
			r.mu.Unlock()
			return err
		default:
			r.addLocked(entry, lines.Line())
		}
		r.mu.Unlock()
	}
}

// addLocked adds one entry and flushes the batch once it is full, or early when the
// sink asks for it.
func (r *runner) addLocked(entry []byte, line int64) {
	added := 0
	if err := r.sink.Add(entry, line); err == nil {
		added = 1
	} else if bytes.IndexByte(entry, '\n') < 0 {
		r.malformed(err)
	} else {
		// A quote left open by garbage made one entry of this line and the ones after
		// it: try each line on its own, so that good ones are kept.
		for i, part := range bytes.Split(entry, []byte{'\n'}) {
			if err := r.sink.Add(bytes.TrimSuffix(part, []byte{'\r'}), line+int64(i)); err != nil {
				r.malformed(err)
			} else {
				added++
			}
		}
	}
	now := time.Now()
	if added > 0 {
		r.latest = now
		if r.oldest.IsZero() {
			r.oldest = now
		}
	}
	if n, size := r.sink.Pending(); n >= r.cfg.BatchEntries || size >= r.cfg.BatchBytes {
		r.flushLocked()
	} else if r.urgent != nil && r.urgent.FlushNow() {
		r.flushEarlyLocked(now)
	}
}

// onTick flushes a batch that has waited FlushInterval, or one that may go early.
func (r *runner) onTick(now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	// Past FlushInterval too, a batch that is not full waits for a free writer: queued
	// behind a busy one it gains nothing, and while CnosDB is down the entries read
	// meanwhile keep Telegraf's buffer from filling.
	if !r.oldest.IsZero() && now.Sub(r.oldest) >= r.cfg.FlushInterval && r.writerFree() {
		r.flushLocked()
	} else {
		r.flushEarlyLocked(now)
	}
}

func (r *runner) writerFree() bool { return r.paced == nil || !r.paced.Busy() }

func (r *runner) flushLocked() {
	if n, _ := r.sink.Pending(); n > 0 {
		r.sink.Flush()
	}
	r.oldest = time.Time{}
}

// flushEarlyLocked flushes a batch that is not full when that loses nothing: the
// writer is free, and someone waits on the batch or the stream went idle.
func (r *runner) flushEarlyLocked(now time.Time) {
	if r.oldest.IsZero() || !r.writerFree() {
		return
	}
	if (r.urgent != nil && r.urgent.FlushNow()) || (r.cfg.IdleFlush > 0 && now.Sub(r.latest) >= r.cfg.IdleFlush) {
		r.flushLocked()
	}
}

// finish stops taking entries, flushes what was read and waits for the sink.
func (r *runner) finish(err error) error {
	r.mu.Lock()
	r.stopped = true
	r.flushLocked()
	r.bad.flush()
	r.mu.Unlock()
	r.sink.Drain()
	return err
}

// malformed counts and logs an entry that was dropped.
func (r *runner) malformed(err error) {
	if r.counter != nil {
		r.counter.Malformed()
	}
	r.bad.entry(err)
}

// badEntryLog logs malformed entries, ten at once and then one a second, so that
// garbage on stdin cannot flood Telegraf's log.
type badEntryLog struct {
	log   telegraf.Logger
	limit *lograte.Limiter
}

func (b *badEntryLog) entry(err error) {
	if b.limit.Allow(time.Now()) {
		b.flush()
		b.log.Errorf("stdin: %v", err)
	}
}

// flush says how many entries were not logged since the last line.
func (b *badEntryLog) flush() {
	if n := b.limit.TakeSuppressed(); n > 0 {
		b.log.Errorf("%d more malformed entries on stdin were not logged", n)
	}
}
