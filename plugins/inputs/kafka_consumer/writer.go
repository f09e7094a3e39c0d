package kafka_consumer

import (
	"bytes"
	"fmt"
	"io"
	"sync"
	"time"
)

// writer gathers the line protocol of every partition in one buffer and writes it
// with one system call when the buffer fills or when the oldest byte in it has waited
// the flush interval, whichever comes first. After each write it reports the messages
// whose metrics the write completed, so that their offsets are marked only once their
// metrics are on stdout.
type writer struct {
	out      io.Writer
	limit    int
	interval time.Duration

	mu   sync.Mutex
	buf  []byte
	acks []ack
	// bufLines counts the lines (metrics, not newline bytes: a string may hold one)
	// in buf; sinceMarker those written to out since the last marker, which the next
	// marker counts (see package ackproto).
	bufLines    int64
	sinceMarker int64
	timer       *time.Timer
	armed       bool
	err         error // the first write error; every later call returns it
	closed      bool
	// hold, when set (acknowledgement on), takes over the acks of a write and appends
	// a marker to it: the acks complete when the output confirms the marker. It
	// refuses (false) while too many markers wait for confirmation; the acks then
	// wait in the writer for the next marker (see markPending).
	hold func(w holding, acks []ack, now time.Time, waiting bool) ([]byte, bool)
	// unheld is what was written for w.acks while hold refused a marker, and
	// unheldLines its lines: the next marker's batch holds it too, so that a lost
	// batch can be written again whole.
	unheld      []byte
	unheldLines int64
	// free gives back the max_undelivered_messages slots of messages done.
	free func(n int)
	// waiting: the acks held back by hold belong to a reader that waits for them.
	waiting bool
	// idle, when set, reports that no message waits to be read: a marker then says
	// that nothing follows soon, as one written while the reader waits for slots does.
	idle func() bool
}

// holding is what hold takes over: the lines written before for the acks without a
// marker, and dst, about to be written, to which hold appends the marker.
type holding struct {
	dst, before []byte
	// lines counts the lines of before and dst; markerLines those the marker counts:
	// dst's and every line written since the last marker.
	lines, markerLines int64
}

// ack is a message whose metrics are in the buffer (or that had none): once they are
// written, the partition counts it done.
type ack struct {
	part   *partition
	offset int64
}

func newWriter(out io.Writer, limit int, interval time.Duration) *writer {
	w := &writer{out: out, limit: limit, interval: interval, buf: make([]byte, 0, limit+limit/4)}
	w.timer = time.AfterFunc(time.Hour, w.onTimer)
	w.timer.Stop()
	return w
}

// Write appends data, which holds lines lines of line protocol, and acks. It writes to
// out when the buffer is full, and arms the flush timer otherwise. It fails only if an
// earlier write failed.
func (w *writer) Write(data []byte, lines int64, acks []ack) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	w.buf = append(w.buf, data...)
	w.bufLines += lines
	w.acks = append(w.acks, acks...)
	if len(w.buf) >= w.limit {
		return w.flushLocked(false)
	}
	if !w.armed && (len(w.buf) > 0 || len(w.acks) > 0) {
		w.armed = true
		w.timer.Reset(w.interval)
	}
	return nil
}

// Flush writes what the buffer holds and completes its acks.
func (w *writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.flushLocked(false)
}

// FlushWaiting is Flush by a reader that stops until the acks are done: the marker
// says so, and the output writes the lines before it without waiting for more.
func (w *writer) FlushWaiting() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.flushLocked(true)
}

// markPending writes a marker for acks that hold refused one, now that it may take
// one.
func (w *writer) markPending() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.acks) > 0 && !w.closed {
		// A failure is kept in w.err and returned to the next Write.
		_ = w.flushLocked(w.waiting)
	}
}

// locked runs fn holding the writer's lock, under which done and markSession run.
func (w *writer) locked(fn func()) {
	w.mu.Lock()
	defer w.mu.Unlock()
	fn()
}

// Err returns the write error that stopped the writer, if any.
func (w *writer) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// Close flushes and stops the timer.
func (w *writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
	w.timer.Stop()
	return w.flushLocked(false)
}

func (w *writer) onTimer() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.armed = false
	if !w.closed {
		// A failure is kept in w.err and returned to the next Write.
		_ = w.flushLocked(false)
	}
}

func (w *writer) flushLocked(waiting bool) error {
	if w.err != nil {
		return w.err
	}
	if w.armed {
		w.timer.Stop()
		w.armed = false
	}
	keep := false   // the acks wait for a later marker
	marked := false // a marker ends what is written
	if w.hold != nil && len(w.acks) > 0 {
		waiting = waiting || w.waiting || (w.idle != nil && w.idle())
		h := holding{dst: w.buf, before: w.unheld, lines: w.unheldLines + w.bufLines, markerLines: w.sinceMarker + w.bufLines}
		var held bool
		if w.buf, held = w.hold(h, w.acks, time.Now(), waiting); !held {
			keep = true
			w.waiting = waiting
		} else {
			w.waiting = false
			w.unheld, w.unheldLines = w.unheld[:0], 0
		}
		marked = held
	}
	if len(w.buf) > 0 {
		if err := writeWholeLines(w.out, w.buf); err != nil {
			w.err = fmt.Errorf("writing metrics: %w", err)
			return w.err
		}
		if keep {
			w.unheld = append(w.unheld, w.buf...)
			w.unheldLines += w.bufLines
		}
		w.buf = w.buf[:0]
	}
	if marked {
		w.sinceMarker = 0
	} else {
		w.sinceMarker += w.bufLines
	}
	w.bufLines = 0
	if keep {
		return nil
	}
	if w.hold == nil {
		w.completeLocked(w.acks)
	}
	clear(w.acks)
	w.acks = w.acks[:0]
	return nil
}

// stdout is what a rewrite writes through: whole lines and markers, in order.
type stdout interface {
	// markerLines is the count of the next marker before its own lines: the lines
	// written since the last marker.
	markerLines() int64
	// writeMarked writes lines lines followed by a marker (all in b).
	writeMarked(b []byte) error
}

type lockedStdout struct{ w *writer }

func (s lockedStdout) markerLines() int64 { return s.w.sinceMarker }

func (s lockedStdout) writeMarked(b []byte) error {
	if err := s.w.writeLocked(b); err != nil {
		return err
	}
	s.w.sinceMarker = 0
	return nil
}

// rewrite runs fn, which writes markers and batches held for the output again,
// holding the lock, so that nothing is written between them; then it writes again
// what waits for a marker, which follows them in the stream.
func (w *writer) rewrite(fn func(out stdout) error) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	if err := fn(lockedStdout{w}); err != nil {
		return err
	}
	if err := w.writeLocked(w.unheld); err != nil {
		return err
	}
	w.sinceMarker += w.unheldLines
	return nil
}

func (w *writer) writeLocked(b []byte) error {
	if err := writeWholeLines(w.out, b); err != nil {
		w.err = fmt.Errorf("writing metrics: %w", err)
		return w.err
	}
	return nil
}

// complete marks messages done whose acks were held for the output's confirmation.
func (w *writer) complete(acks []ack) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.completeLocked(acks)
}

func (w *writer) completeLocked(acks []ack) {
	for _, a := range acks {
		a.part.done(a.offset)
	}
	for _, a := range acks {
		a.part.markSession()
	}
	if w.free != nil {
		w.free(len(acks))
	}
}

// pipeBuf is PIPE_BUF on Linux: a write of at most this many bytes to a pipe is
// atomic, all of it or none.
const pipeBuf = 4096

// writeWholeLines writes buf, whole lines, to out in writes of at most pipeBuf bytes
// that each end at a line's end. A process killed while a larger write waits for room
// in the pipe leaves part of it there, and Telegraf would read the cut line as a
// metric of its own: a second row for its message when it is read again. A line
// longer than pipeBuf goes in one write.
func writeWholeLines(out io.Writer, buf []byte) error {
	for len(buf) > 0 {
		n := len(buf)
		if n > pipeBuf {
			if i := bytes.LastIndexByte(buf[:pipeBuf], '\n'); i >= 0 {
				n = i + 1
			} else if i := bytes.IndexByte(buf, '\n'); i >= 0 {
				n = i + 1
			}
		}
		if _, err := out.Write(buf[:n]); err != nil {
			return err
		}
		buf = buf[n:]
	}
	return nil
}
