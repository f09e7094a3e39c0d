package kafka_consumer

import (
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

	mu     sync.Mutex
	buf    []byte
	acks   []ack
	timer  *time.Timer
	armed  bool
	err    error // the first write error; every later call returns it
	closed bool
	// hold, when set (ack_socket), takes over the acks of each write and appends a
	// marker to it: the acks complete when the output confirms the marker.
	hold func(dst []byte, acks []ack, now time.Time) []byte
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

// Write appends data and acks. It writes to out when the buffer is full, and arms
// the flush timer otherwise. It fails only if an earlier write failed.
func (w *writer) Write(data []byte, acks []ack) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	w.buf = append(w.buf, data...)
	w.acks = append(w.acks, acks...)
	if len(w.buf) >= w.limit {
		return w.flushLocked()
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
	return w.flushLocked()
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
	return w.flushLocked()
}

func (w *writer) onTimer() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.armed = false
	if !w.closed {
		// A failure is kept in w.err and returned to the next Write.
		_ = w.flushLocked()
	}
}

func (w *writer) flushLocked() error {
	if w.err != nil {
		return w.err
	}
	if w.armed {
		w.timer.Stop()
		w.armed = false
	}
	held := false
	if w.hold != nil && len(w.acks) > 0 {
		w.buf = w.hold(w.buf, w.acks, time.Now())
		held = true
	}
	if len(w.buf) > 0 {
		if _, err := w.out.Write(w.buf); err != nil {
			w.err = fmt.Errorf("writing metrics: %w", err)
			return w.err
		}
		w.buf = w.buf[:0]
	}
	if !held {
		completeLocked(w.acks)
	}
	clear(w.acks)
	w.acks = w.acks[:0]
	return nil
}

// complete marks messages done whose acks were held for the output's confirmation.
func (w *writer) complete(acks []ack) {
	w.mu.Lock()
	defer w.mu.Unlock()
	completeLocked(acks)
}

func completeLocked(acks []ack) {
	for _, a := range acks {
		a.part.done(a.offset)
	}
	for _, a := range acks {
		a.part.markSession()
	}
}
