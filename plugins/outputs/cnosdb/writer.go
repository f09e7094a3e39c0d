package cnosdb

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/influxdata/telegraf"

	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/internal/lograte"
)

// Result is what became of one batch. Every line is accounted for exactly once: written,
// rejected by CnosDB, or not written because the plugin was stopped first.
type Result struct {
	Seq      uint64 // the batch's place in the stream, counted from 1
	Lines    int
	Written  int
	Rejected []Rejection
	Aborted  int
}

// Done reports whether nothing of the batch is left to write: what a future
// acknowledgement to the input will wait for.
func (r Result) Done() bool { return r.Aborted == 0 }

// Rejection is a line CnosDB refused on its own.
type Rejection struct {
	Source int64  // where the line came from: its stdin line, or its metric's index
	Line   string // the line as sent, cut to a readable length
	Err    *serverError
}

// writer sends batches to the cluster's nodes.
type writer struct {
	client *client
	nodes  []*node
	next   atomic.Uint32
	log    telegraf.Logger
	stats  *stats

	serverErrorRetries int
	// observe, when set, is told the outcome of every request, how long it took and
	// how many lines it carried.
	observe func(o outcome, took time.Duration, lines int)
	// createDatabase is called when CnosDB reports the database missing; nil when the
	// plugin may not create it.
	createDatabase func(context.Context) error

	logMu       sync.Mutex
	lastWarning time.Time
	rejectLog   *lograte.Limiter
	oddLog      *lograte.Limiter // successes with a body, which CnosDB never sends
}

// write writes every line of b and says what became of each.
func (w *writer) write(ctx context.Context, b *batch) Result {
	r := Result{Seq: b.seq, Lines: b.len()}
	if b.len() > 0 {
		w.writeSpan(ctx, b, 0, b.len(), &r, false)
	}
	return r
}

// writeSpan writes lines [lo, hi) of b. isolating is set while a rejected request is
// split to find its bad lines.
func (w *writer) writeSpan(ctx context.Context, b *batch, lo, hi int, r *Result, isolating bool) {
	s := &spanWrite{w: w, b: b, lo: lo, hi: hi, r: r, isolating: isolating, payload: b.span(lo, hi), count: hi - lo}
	for {
		n, err := w.pick(ctx)
		if err != nil {
			r.Aborted += s.count
			return
		}
		s.attempt++
		start := time.Now()
		answer, err := w.client.write(ctx, n, s.payload)
		w.stats.requests.Add(1)
		if s.attempt > 1 {
			w.stats.retries.Add(1)
		}
		o := transient
		if err == nil {
			o = classify(answer)
		} else if ctx.Err() != nil {
			r.Aborted += s.count
			return
		}
		if w.observe != nil {
			w.observe(o, time.Since(start), s.count)
		}
		if s.settled(ctx, n, o, answer, err, start) {
			return
		}
	}
}

// spanWrite is one writeSpan: lines [lo, hi) of b, and what its attempts found so far.
type spanWrite struct {
	w         *writer
	b         *batch
	lo, hi    int
	r         *Result
	isolating bool
	payload   []byte
	count     int

	attempt      int
	suspectTries int  // answers that may mean a bad line or a failing server
	triedCreate  bool // CREATE DATABASE was sent for this span
}

// settled acts on the outcome o of one attempt on node n: true once every line of
// the span is written, rejected, split off or aborted, false to try again.
func (s *spanWrite) settled(ctx context.Context, n *node, o outcome, answer *serverError, err error, start time.Time) bool {
	w := s.w
	switch o {
	case written:
		n.succeeded()
		if answer.hasBody() {
			w.oddSuccess(n, s.count, answer)
		}
		w.stats.written.Add(int64(s.count))
		w.stats.bytes.Add(int64(len(s.payload)))
		w.stats.observeLatency(time.Since(start))
		s.r.Written += s.count
		return true
	case tooLarge, rejected:
		n.succeeded()
		if s.count == 1 {
			w.reject(s.b, s.lo, answer, s.r, "")
			return true
		}
		// Too large is no sign of a bad line; a rejection is, and halves are
		// searched for it.
		s.split(ctx, s.isolating || o == rejected)
		return true
	case suspect:
		return s.suspect(ctx, n, answer)
	case unknown:
		n.failed(answer.RetryAfter)
		w.warn(n, s.count, s.attempt, answer.Error()+retryAfterNote(answer)+
			" (an answer this plugin does not know: the lines are kept, not dropped on a guess)")
	case misconfigured:
		return s.misconfigured(ctx, n, answer)
	case transient:
		if err != nil {
			n.failed(0)
			w.warn(n, s.count, s.attempt, err.Error()+tlsHint(err))
		} else {
			n.failed(answer.RetryAfter)
			w.warn(n, s.count, s.attempt, answer.Error()+retryAfterNote(answer))
		}
	}
	return false
}

func (s *spanWrite) split(ctx context.Context, isolating bool) {
	s.w.stats.splits.Add(1)
	s.w.split(ctx, s.b, s.lo, s.hi, s.r, isolating)
}

// suspect handles an answer that a bad line and a failing server both give (the
// empty 500 of CnosDB 2.3 and 2.4.0).
func (s *spanWrite) suspect(ctx context.Context, n *node, answer *serverError) bool {
	w := s.w
	// While isolating, a group that fails this way most likely holds the bad line:
	// split first, and retry only single lines.
	if s.isolating && s.count > 1 {
		s.split(ctx, true)
		return true
	}
	s.suspectTries++
	cause := answer.Error()
	if s.suspectTries > w.serverErrorRetries {
		if s.count > 1 {
			s.split(ctx, true)
			return true
		}
		if w.confirmBad(ctx, n) {
			w.reject(s.b, s.lo, answer, s.r, "; CnosDB 2.3 and 2.4.0 answer a bad line so, and "+
				"an empty write right after was taken, so the server works")
			return true
		}
		cause += ", CnosDB 2.3's and 2.4.0's answer to a bad line, but CnosDB did not take an empty write either, " +
			"so it may be failing: the line is kept"
	}
	n.failed(0)
	w.warn(n, s.count, s.attempt, cause)
	return false
}

// misconfigured handles an answer that waits for the user: a missing database is
// created once per span, anything else is logged and the lines wait.
func (s *spanWrite) misconfigured(ctx context.Context, n *node, answer *serverError) bool {
	w := s.w
	// Create a missing database once per span: if the write still finds none,
	// waiting and logging beats hammering CnosDB with CREATE DATABASE.
	if answer.Code == "030017" && w.createDatabase != nil && !s.triedCreate {
		s.triedCreate = true
		cerr := w.createDatabase(ctx)
		if cerr == nil {
			return false // written again at once
		}
		w.log.Errorf("creating the database: %v", cerr)
	}
	n.failed(0)
	w.stats.setLastError(answer.Error())
	w.logMu.Lock()
	w.log.Errorf("%s: %v: %s; %d lines wait and are retried", n.base, answer, hint(answer), s.count)
	w.logMu.Unlock()
	return false
}

// confirmBad reports whether CnosDB writes while it answers a single line with 500
// and an empty body: then the answer is about the line, CnosDB 2.3's and 2.4.0's
// answer to a bad one, and not a failure of the server, which 2.3.0 to 2.3.3 and 2.4.0
// answer the same way. It asks the same node for an empty write, which stores nothing.
func (w *writer) confirmBad(ctx context.Context, n *node) bool {
	answer, err := w.client.write(ctx, n, nil)
	w.stats.requests.Add(1)
	return err == nil && classify(answer) == written
}

func (w *writer) split(ctx context.Context, b *batch, lo, hi int, r *Result, isolating bool) {
	mid := lo + (hi-lo)/2
	w.writeSpan(ctx, b, lo, mid, r, isolating)
	w.writeSpan(ctx, b, mid, hi, r, isolating)
}

// reject drops line i, which CnosDB refused with answer; note, if not empty, says why
// the answer is taken to mean the line.
func (w *writer) reject(b *batch, i int, answer *serverError, r *Result, note string) {
	line := b.line(i)
	shown := string(line)
	if len(shown) > 256 {
		shown = shown[:256] + fmt.Sprintf("… (%d bytes)", len(line))
	}
	rej := Rejection{Source: b.sources[i], Line: shown, Err: answer}
	r.Rejected = append(r.Rejected, rej)
	w.stats.rejected.Add(1)
	w.stats.setLastError(answer.Error())
	if w.rejectLog.Allow(time.Now()) {
		w.log.Errorf("CnosDB rejected input line %d, dropped after isolating it (every other line is written): %v%s: %s",
			rej.Source, answer, note, rej.Line)
	}
}

// oddSuccess logs a success that came with a body. CnosDB 2.3 and 2.4 answer a write
// they stored with 200 and an empty body, and have no partial-write answer (API.md): a
// body comes from something else (a proxy, another server), and says something about
// the lines this plugin cannot read. They are counted as written, since the answer says
// so, but not silently.
func (w *writer) oddSuccess(n *node, lines int, answer *serverError) {
	if !w.oddLog.Allow(time.Now()) {
		return
	}
	w.log.Warnf("%s answered %d lines with HTTP %d and a body, which CnosDB never sends on success: %q; "+
		"the lines are counted as written: if a proxy or another server answered, check that they were stored",
		n.base, lines, answer.Status, strings.TrimSpace(answer.Code+" "+answer.Message))
}

// retryAfterNote says how long an answer asked to wait, for the log.
func retryAfterNote(answer *serverError) string {
	if answer.RetryAfter <= 0 {
		return ""
	}
	return fmt.Sprintf(" (Retry-After %s)", answer.RetryAfter.Round(time.Millisecond))
}

// warn logs a passing failure; while CnosDB stays unavailable it repeats at most every
// few seconds, so that a long outage does not flood Telegraf's log.
func (w *writer) warn(n *node, lines, attempt int, cause string) {
	w.stats.setLastError(cause)
	w.logMu.Lock()
	defer w.logMu.Unlock()
	if time.Since(w.lastWarning) < 5*time.Second && attempt > 1 {
		return
	}
	w.lastWarning = time.Now()
	w.log.Warnf("writing %d lines to %s failed (attempt %d): %s; retrying, nothing is dropped", lines, n.base, attempt, cause)
}

// tlsHint says what to check when a request failed because the server's certificate
// was not trusted: a configuration matter the lines wait for.
func tlsHint(err error) string {
	var unknown x509.UnknownAuthorityError
	var verify *tls.CertificateVerificationError
	var host x509.HostnameError
	switch {
	case errors.As(err, &host):
		return " (the certificate is not for this host: check urls, or set tls_server_name)"
	case errors.As(err, &unknown), errors.As(err, &verify):
		return " (the server's certificate is not trusted: set tls_ca to the CA that signed it, or insecure_skip_verify = true)"
	}
	return ""
}

// errStopped is returned by pick once the plugin is stopped.
var errStopped = errors.New("stopped")

// pick returns the next node that is not resting after a failure, waiting for the
// first one to come back when all are.
func (w *writer) pick(ctx context.Context) (*node, error) {
	for {
		start := int(w.next.Add(1))
		var soonest *node
		var soonestAt time.Time
		now := time.Now()
		for i := range w.nodes {
			n := w.nodes[(start+i)%len(w.nodes)]
			at := n.availableAt()
			if !at.After(now) {
				return n, nil
			}
			if soonest == nil || at.Before(soonestAt) {
				soonest, soonestAt = n, at
			}
		}
		t := time.NewTimer(time.Until(soonestAt))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, errStopped
		case <-t.C:
			return soonest, nil
		}
	}
}

func (n *node) availableAt() time.Time {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.downUntil
}

func (n *node) succeeded() {
	n.mu.Lock()
	n.failures = 0
	n.downUntil = time.Time{}
	n.backoff.Reset()
	n.mu.Unlock()
}

// failed rests the node for an exponentially growing, jittered time, and at least as
// long as the answer asked (its Retry-After) up to retry_max_interval: a header asking
// for hours must not stall the writes longer than the plugin's own longest wait, and
// one asking for nothing must not make them hammer the server.
func (n *node) failed(asked time.Duration) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.failures++
	wait := max(n.backoff.NextBackOff(), min(asked, n.backoff.MaxInterval))
	n.downUntil = time.Now().Add(wait)
}
