package cnosdb

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/internal/ackproto"
	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/internal/execdout"
)

// Stream writes the line protocol that Telegraf's execd output hands telegraf-cnosdb
// on stdin: it is the Sink that package execdout fills. It batches the lines, keeps up
// to max_in_flight requests going through the plugin's writer (or writes them through
// the spool), answers the Kafka input's markers once their lines are written, and
// tells a stop what it still holds.
//
// CnosDB.Write serves a plugin that Telegraf itself runs; a Stream serves the plugin
// run as a child of Telegraf, where the batches, their order and their fate are the
// plugin's to keep.
type Stream struct {
	out   *CnosDB
	acks  *acks  // answers the Kafka input's markers on stdin
	spool *spool // nil without spool_dir

	// linesRead counts the entries read from stdin that were not markers of an
	// input, those refused as malformed or too long too: the count the input's
	// markers are checked against (see package ackproto).
	linesRead int64
	urgent    bool // an input waits for the pending lines: flush them once the writer is free

	unfinished atomic.Int64  // batches flushed without a final result
	finished   chan struct{} // a value when a writer becomes free
	parallel   *inflight     // orders the writes of several writers; nil with a spool
	held       held          // what CnosDB does not have yet, for the log at a stop
	writerDone chan struct{} // closed when the queue is drained

	// Batches read from stdin: one being filled, up to queuedBatches queued, up to
	// max_in_flight being written, the queued and written ones within queueBytes. Free
	// batches are kept for reuse only if small (see poolable). With a spool, the spool
	// is the queue and free is not used.
	fill       *batch
	queue      chan *batch
	queueBytes *byteBudget
	free       chan *batch
	seq        uint64
	inflight   sync.WaitGroup // batches flushed and not yet written
	closeOnce  sync.Once
}

// idleFlush is how long stdin must stay quiet before a batch that is not full is
// written while a writer is free. The Kafka input's markers say when it has nothing
// more to send, so this only serves streams without them; it is longer than the
// pauses between Telegraf's batches under a backlog (tens of milliseconds).
const idleFlush = 200 * time.Millisecond

// queuedBatches is how many full batches wait for a writer before reading stdin
// stops. While CnosDB is slow or down, what the Kafka input has in flight then waits
// here rather than in Telegraf's buffer, whose metric_buffer_limit (10000 by default)
// would otherwise overflow; 8 batches of 2000 lines of a few hundred bytes are a few
// MiB.
const queuedBatches = 8

// NewStream starts the writers of a plugin that Connect prepared. With spool_dir it
// opens the spool, and what an earlier run left there is written first.
func NewStream(c *CnosDB) (*Stream, error) {
	s := &Stream{
		out:        c,
		fill:       &batch{},
		acks:       newAcks(c.AckSockets, c.Log),
		finished:   make(chan struct{}, 1),
		writerDone: make(chan struct{}),
	}
	if c.SpoolDir != "" {
		if err := s.openSpool(); err != nil {
			return nil, err
		}
		go s.writeSpooled()
		return s, nil
	}
	s.queue = make(chan *batch, queuedBatches)
	s.queueBytes = newByteBudget((c.MaxInFlight + 1) * int(c.MaxRequestSize))
	s.free = make(chan *batch, 1+queuedBatches+c.MaxInFlight)
	s.parallel = newInflight(c.MaxInFlight)
	c.writer.observe = s.parallel.observe
	var writers sync.WaitGroup
	for range c.MaxInFlight {
		writers.Add(1)
		go func() {
			defer writers.Done()
			s.writeQueued()
		}()
	}
	go func() {
		writers.Wait()
		close(s.writerDone)
	}()
	return s, nil
}

// Config is how the stdin loop batches for the plugin's configuration.
func (s *Stream) Config() execdout.Config {
	c := s.out
	return execdout.Config{
		BatchEntries:  c.MetricBatchSize,
		BatchBytes:    int(c.MaxRequestSize),
		FlushInterval: time.Duration(c.FlushInterval),
		IdleFlush:     idleFlush,
		MaxEntrySize:  int(c.MaxLineSize),
		// After a signal, stdin is read on for what Telegraf already wrote to the
		// pipe; a second is ample, and ends well before DefaultShutdownTimeout gives
		// up, so that the log of what is given up counts every line read.
		ShutdownGrace: time.Second,
		Log:           c.Log,
	}
}

// Add transcodes one entry of Telegraf's line protocol into the batch being filled.
func (s *Stream) Add(entry []byte, line int64) error {
	if ackproto.IsMarker(entry) {
		// A marker alone does not flush: under a backlog more lines follow at once and
		// belong in the same request. One that says the input waits for it does, as
		// soon as the writer is free, since nothing more comes until then.
		taken, waiting := s.acks.marker(entry, s.fill.len(), line, s.linesRead)
		s.urgent = s.urgent || (waiting && s.fill.len() > 0)
		if !taken {
			// Not an input's marker, and not data either: CnosDB never gets a table
			// of that name from this plugin.
			s.linesRead++
			s.out.stats.malformed.Add(1)
		}
		return nil
	}
	s.linesRead++
	err := s.out.enc.addLineProtocol(s.fill, entry, line)
	s.held.filled(s.fill.len())
	return err
}

// Malformed counts an entry of stdin dropped as malformed before Add saw it.
func (s *Stream) Malformed() {
	s.linesRead++
	s.out.stats.malformed.Add(1)
}

// Pending reports the lines and bytes in the batch being filled.
func (s *Stream) Pending() (lines, size int) {
	return s.fill.len(), len(s.fill.buf)
}

// FlushNow reports whether the Kafka input waits for the pending lines.
func (s *Stream) FlushNow() bool { return s.urgent }

// Busy reports whether every writer has a flushed batch without a final result.
func (s *Stream) Busy() bool {
	if s.spool != nil {
		return s.spool.status().batches > 0
	}
	return s.unfinished.Load() >= int64(s.parallel.writers())
}

// Finished receives a value when a writer becomes free.
func (s *Stream) Finished() <-chan struct{} { return s.finished }

func (s *Stream) signalFinished() {
	select {
	case s.finished <- struct{}{}:
	default:
	}
}

// Flush queues the batch being filled; it blocks while queuedBatches batches wait for
// a writer or the batches queued and being written take their byte budget, or with a
// spool, while the spool is full.
func (s *Stream) Flush() {
	s.urgent = false
	s.held.flushed(s.fill.len(), s.spool == nil)
	if s.spool != nil {
		s.flushToSpool()
		return
	}
	s.seq++
	s.out.stats.holdBatch()
	s.unfinished.Add(1)
	s.fill.seq = s.seq
	s.acks.flushed(s.seq)
	s.inflight.Add(1)
	s.fill.queued = len(s.fill.buf)
	s.queueBytes.acquire(s.fill.queued)
	size := s.fill.queued
	s.queue <- s.fill
	select {
	case b := <-s.free:
		b.reset()
		s.fill = b
	default:
		// Room for a batch like the last one: growing by appends to a full
		// max_request_size would leave a quarter of it unused, and three times as
		// much garbage, for every batch of large lines.
		s.fill = &batch{buf: make([]byte, 0, size)}
	}
}

// Drain waits until every flushed batch is written, or given up after Abort (with a
// spool: left in it).
func (s *Stream) Drain() {
	if s.spool != nil {
		s.spool.waitEmpty(s.writerDone)
		return
	}
	s.inflight.Wait()
}

// Close waits for the batches flushed so far and gives the acknowledgements up to 2 s
// to go out; the plugin is closed after it. Abort first to stop retrying those
// batches too.
func (s *Stream) Close() {
	s.closeOnce.Do(func() {
		if s.spool != nil {
			s.spool.closeInput()
		} else {
			close(s.queue)
		}
		<-s.writerDone
		s.acks.close(2 * time.Second)
		if s.spool != nil {
			s.closeSpool()
		}
	})
}

// writeQueued is one of max_in_flight writers: it writes the batches it takes from
// the queue, and the results go on in stream order.
func (s *Stream) writeQueued() {
	c := s.out
	for b := range s.queue {
		s.parallel.start(b)
		s.held.writeStarted(b.len())
		res := c.writer.write(c.ctx, b)
		s.held.writeEnded(b.len())
		s.parallel.finish(res, s.resultFinal)
		s.queueBytes.release(b.queued)
		if !s.poolable(b) {
			continue
		}
		select {
		case s.free <- b:
		default:
		}
	}
}

// poolable reports whether a batch written is kept for reuse: only one whose buffer is
// at most a share of max_request_size, so that the free batches together take at most
// max_request_size. Batches of small lines (2000 of a few hundred bytes) are reused;
// those of large lines, a full max_request_size each, are left to the collector.
func (s *Stream) poolable(b *batch) bool {
	return cap(b.buf) <= int(s.out.MaxRequestSize)/cap(s.free)
}

// resultFinal acts on the final result of a batch, in stream order.
func (s *Stream) resultFinal(res Result) {
	c := s.out
	if res.Aborted > 0 {
		c.Log.Errorf("stopped before writing %d lines of batch %d (%d lines); they were not written",
			res.Aborted, res.Seq, res.Lines)
	}
	if c.onResult != nil {
		c.onResult(res)
	}
	s.acks.result(res)
	s.held.final(res)
	c.stats.releaseBatch()
	if s.unfinished.Add(-1) < int64(s.parallel.writers()) {
		s.signalFinished()
	}
	s.inflight.Done()
}
