package cnosdb

import (
	"fmt"
	"sync/atomic"
	"time"
)

// DefaultShutdownTimeout bounds a stop: how long the lines read so far may wait for
// CnosDB, from the end of stdin or the first SIGTERM or SIGINT, whichever comes first,
// before the plugin gives up on them.
//
// It fits Telegraf's execd output, which stops its child by closing stdin, sends
// SIGTERM 5 s later and SIGKILL 5 s after that (internal/process, gracefulStop, the
// same in Telegraf 1.27.1 and 1.37.2). Giving up 4 s after stdin closes leaves the
// acknowledgements up to 2 s to go out (Stream.Close) and the process ends on its
// own, with a log of what it did not write, about 4 s before the SIGKILL, which would
// end it without a word. It is fixed rather than an option, since Telegraf's window
// is.
const DefaultShutdownTimeout = 4 * time.Second

// endQuietly is how long a stop that begins at the end of stdin waits for CnosDB
// before it logs what it holds: the last batch Telegraf wrote is usually written by
// then, and a normal stop then logs nothing.
const endQuietly = time.Second

// held counts what the plugin has read and CnosDB does not have yet, so that a stop can
// say it. The stdin loop and the writers change it while the signal handler reads it,
// hence the atomics.
type held struct {
	batches, lines        atomic.Int64 // flushed without a final result (in memory)
	writing, writingLines atomic.Int64 // of those, being written now
	filling               atomic.Int64 // lines in the batch being filled
	abandoned             atomic.Int64 // lines given up on after Abort
	acked                 atomic.Bool  // markers came: stays set once Close forgets them
}

// filled is called by the stdin loop after each entry with the lines being filled.
func (h *held) filled(lines int) { h.filling.Store(int64(lines)) }

// flushed is called when the batch being filled, of lines lines, is handed on: to the
// writers in memory, or to the spool.
func (h *held) flushed(lines int, inMemory bool) {
	h.filling.Store(0)
	if inMemory {
		h.batches.Add(1)
		h.lines.Add(int64(lines))
	}
}

// writeStarted and writeEnded bracket the write of a batch of lines lines.
func (h *held) writeStarted(lines int) {
	h.writing.Add(1)
	h.writingLines.Add(int64(lines))
}

func (h *held) writeEnded(lines int) {
	h.writing.Add(-1)
	h.writingLines.Add(-int64(lines))
}

// final is called with the final result of a batch held in memory.
func (h *held) final(r Result) {
	h.batches.Add(-1)
	h.lines.Add(-int64(r.Lines))
	h.abandoned.Add(int64(r.Aborted))
}

// Holding is what the plugin has read and CnosDB does not have yet.
type Holding struct {
	Batches, Lines        int64 // flushed, not yet written: queued or being written, or in the spool
	Writing, WritingLines int64 // of those, being written now (without a spool)
	Filling               int64 // lines in the batch being filled
	Spool                 bool  // what is held is on disk, written at the next start
	// Acknowledged: the Kafka input's acknowledgement is on, so it commits offsets only
	// for lines this plugin confirmed, and reads the others again at its next start.
	Acknowledged bool
}

// Holding reports what the stream holds now; safe to call from any goroutine.
func (s *Stream) Holding() Holding {
	if s.acks.seen() {
		s.held.acked.Store(true)
	}
	h := Holding{Filling: s.held.filling.Load(), Acknowledged: s.held.acked.Load()}
	if s.spool != nil {
		st := s.spool.status()
		h.Spool, h.Batches, h.Lines = true, st.batches, st.lines
		return h
	}
	h.Batches, h.Lines = s.held.batches.Load(), s.held.lines.Load()
	h.Writing, h.WritingLines = s.held.writing.Load(), s.held.writingLines.Load()
	return h
}

// Empty reports whether nothing is held.
func (h Holding) Empty() bool { return h.Lines == 0 && h.Filling == 0 }

// String says what is held, e.g. "2 batches (4000 lines) not yet written (1 being
// written, 1 queued) and 120 lines being filled".
func (h Holding) String() string {
	var s string
	switch {
	case h.Spool:
		s = fmt.Sprintf("%d batches (%d lines) in the spool", h.Batches, h.Lines)
	case h.Batches > 0:
		s = fmt.Sprintf("%d batches (%d lines) not yet written (%d being written, %d queued)",
			h.Batches, h.Lines, h.Writing, h.Batches-h.Writing)
	default:
		s = "no batch waiting for CnosDB"
	}
	return fmt.Sprintf("%s and %d lines being filled", s, h.Filling)
}

// fate says what becomes of lines not written when the plugin gives up on them, as the
// end of a sentence whose subject they are.
func (h Holding) fate() string {
	if h.Spool {
		return "stay in the spool and are written at the next start"
	}
	if h.Acknowledged {
		return "are read again from Kafka at the input's next start (its acknowledgement " +
			"commits offsets only for lines written): none is lost"
	}
	return "are lost: no spool_dir keeps them, and no acknowledgement from the Kafka " +
		"input has them read again"
}

// StdinClosed is the cause of a stop that begins at the end of stdin, the way
// Telegraf's execd output stops its child.
const StdinClosed = "stdin closed"

// Stopping is what follows the end of stdin or the first SIGTERM or SIGINT, named by
// cause, while the stdin loop drains. It logs what the plugin holds and where it goes,
// then stops the retries (Abort) when timeout has passed or again receives a signal,
// so that the process ends within a known time even while CnosDB is unreachable. It
// returns when drained closes (everything read is written or given up) or after Abort.
//
// A signal with a spool aborts at once: what is held is on disk already. At the end of
// stdin, which is how every stop under Telegraf begins, the spool is written while
// CnosDB answers, as the memory is, and the log waits endQuietly: a normal stop, whose
// last lines CnosDB takes at once, then says nothing.
func (s *Stream) Stopping(cause string, timeout time.Duration, again <-chan struct{}, drained <-chan struct{}) {
	began := time.Now()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	signalNote := "a second signal gives up at once"
	if cause == StdinClosed {
		signalNote = "a signal gives up at once"
		quiet := time.NewTimer(min(endQuietly, timeout))
		defer quiet.Stop()
		select {
		case <-drained:
			return
		case <-again:
			s.giveUp("a signal while stopping")
			return
		case <-quiet.C:
		}
	}
	h := s.Holding()
	left := (timeout - time.Since(began)).Round(100 * time.Millisecond)
	switch {
	case h.Empty() && cause == StdinClosed:
		// Everything is written; what remains is the acknowledgements' last words.
	case h.Spool && cause != StdinClosed:
		s.out.Log.Infof("stopping (%s): %s; the lines still read from stdin go to the spool too, "+
			"and all are written at the next start", cause, h)
		s.out.Abort()
		return
	case h.Empty():
		s.out.Log.Infof("stopping (%s): every line read so far is written; lines still read from stdin "+
			"are written while CnosDB answers, for up to %s (%s)", cause, left, signalNote)
	case h.Spool, h.Acknowledged:
		s.out.Log.Infof("stopping (%s): %s; they are written while CnosDB answers, for up to %s "+
			"(%s); lines not written by then %s", cause, h, left, signalNote, h.fate())
	default:
		s.out.Log.Warnf("stopping (%s): %s; they are written while CnosDB answers, for up to %s "+
			"(%s); lines not written by then %s", cause, h, left, signalNote, h.fate())
	}
	select {
	case <-drained:
	case <-again:
		s.giveUp("a signal while stopping")
	case <-deadline.C:
		s.giveUp(fmt.Sprintf("stopping: CnosDB did not take what was read within %s", timeout))
	}
}

// giveUp logs why and what the plugin holds, then stops the retries.
func (s *Stream) giveUp(why string) {
	s.out.Log.Warnf("%s: giving up on %s", why, s.Holding())
	s.out.Abort()
}

// Abandoned reports the lines given up on after Abort, and whether they are safe: in
// the spool, or read again from Kafka.
func (s *Stream) Abandoned() (lines int64, safe bool) {
	if s.spool != nil {
		return s.spool.status().lines, true
	}
	return s.held.abandoned.Load(), s.Holding().Acknowledged
}

// LogAbandoned logs, at exit, the lines a stop gave up on and what becomes of them.
func (s *Stream) LogAbandoned() {
	lines, safe := s.Abandoned()
	switch {
	case lines == 0, s.spool != nil: // the spool says at its close what it keeps
	case safe:
		s.out.Log.Warnf("stopped with %d lines not written, which %s", lines, Holding{Acknowledged: true}.fate())
	default:
		s.out.Log.Errorf("stopped with %d lines not written, which %s", lines, Holding{}.fate())
	}
}

// seen reports whether the Kafka input's markers came on stdin: its acknowledgement is
// on.
func (a *acks) seen() bool {
	if a == nil {
		return false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.inputs) > 0 || len(a.held) > 0 || len(a.fill) > 0
}
