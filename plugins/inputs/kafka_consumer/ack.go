package kafka_consumer

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/influxdata/telegraf"

	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/internal/ackproto"
)

// acker holds, with acknowledgement on, the batches written to stdout whose messages
// wait for telegraf-cnosdb's "done": their offsets are not marked and their
// max_undelivered_messages slots not freed until then. When a marker or what the
// output held may be lost, it writes every batch still held again, with new markers:
// only what was not confirmed is written twice, and the consumer group session goes
// on, so no partition is read again and no member of the group rebalances.
type acker struct {
	socket  string
	timeout time.Duration
	log     telegraf.Logger
	// complete marks a batch's messages done.
	complete func([]ack)
	// rewrite runs write holding the writer's lock, so that nothing new is written
	// between the batches written again; write writes whole lines to stdout.
	rewrite func(fn func(write func([]byte) error) error) error
	// maxMarkers bounds the markers waiting for "done", so that markers and messages
	// together stay within Telegraf's metric_buffer_limit; markPending writes a marker
	// held back by that bound once one is confirmed.
	maxMarkers  int
	markPending func()
	// pause stops reading from Kafka (true) and lets it go on (false): while no
	// output reads, what is read would only pile up in Telegraf's buffer.
	pause func(bool)

	mu           sync.Mutex
	instance     string
	generation   uint64
	seq          uint64
	pending      map[uint64]*heldBatch
	lastProgress time.Time // last received or done, or when pending became non-empty
	lastTimeout  time.Time // last "no acknowledgement" error
	firstHeld    time.Time // when the first marker was written
	heard        bool      // an output answered a marker of this process
	// awaiting is why the held batches must be written again once an output
	// answers; "" when they need not.
	awaiting string

	acked    atomic.Int64 // messages done
	rewinds  atomic.Int64 // losses after which the held batches were written again
	resent   atomic.Int64 // messages written again
	messages atomic.Int64 // messages held now
}

type heldBatch struct {
	acks     []ack
	lines    []byte // what was written for acks, without the marker
	received bool
}

func newAcker(socket string, timeout time.Duration, maxMarkers int, log telegraf.Logger) *acker {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return &acker{
		socket:     socket,
		timeout:    timeout,
		log:        log,
		maxMarkers: max(maxMarkers, 1),
		instance:   hex.EncodeToString(b[:]),
		pending:    make(map[uint64]*heldBatch),
	}
}

// hold takes over a batch's acks and lines (copied: the lines written before for acks
// without a marker, then dst) and appends its marker to dst, or refuses while
// maxMarkers markers wait for "done". The writer calls it, holding its lock, right
// before it writes dst.
func (a *acker) hold(dst, before []byte, acks []ack, now time.Time, waiting bool) ([]byte, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.pending) >= a.maxMarkers {
		return dst, false
	}
	if a.firstHeld.IsZero() {
		a.firstHeld = now
	}
	lines := make([]byte, 0, len(before)+len(dst))
	b := &heldBatch{acks: append([]ack(nil), acks...), lines: append(append(lines, before...), dst...)}
	return a.markLocked(dst, b, now, waiting), true
}

// markLocked holds b under the next marker of this generation and appends the marker
// to dst.
func (a *acker) markLocked(dst []byte, b *heldBatch, now time.Time, waiting bool) []byte {
	a.seq++
	if len(a.pending) == 0 {
		a.lastProgress = now
	}
	a.pending[a.seq] = b
	a.messages.Add(int64(len(b.acks)))
	id := ackproto.ID{Instance: a.instance, Generation: a.generation, Seq: a.seq}
	m := ackproto.Marker{Socket: a.socket, ID: id.String(), Waiting: waiting, Lines: int64(bytes.Count(b.lines, []byte{'\n'}))}
	return ackproto.AppendMarker(dst, m, now)
}

// ours reports whether id names a marker of this process (any generation).
func (a *acker) ours(id ackproto.ID) bool { return id.Instance == a.instance }

// handle acts on one message of the output.
func (a *acker) handle(verb string, id ackproto.ID, now time.Time) {
	a.mu.Lock()
	if id.Instance != a.instance || id.Generation != a.generation {
		a.mu.Unlock()
		return // from before a loss, or another process: written again since
	}
	if a.awaiting != "" {
		// An output is back: what the one before held is written again now that
		// it is read, not while it would wait in Telegraf's buffer.
		why, gen := a.awaiting, a.generation
		a.awaiting = ""
		a.mu.Unlock()
		a.writeAgain(gen, why)
		a.pause(false)
		return
	}
	b, ok := a.pending[id.Seq]
	if !ok {
		a.mu.Unlock()
		return
	}
	if verb == ackproto.Lost {
		gen := a.generation
		a.mu.Unlock()
		a.writeAgain(gen, fmt.Sprintf("telegraf-cnosdb did not receive every line before marker %d (Telegraf dropped metrics: its buffer overflowed)", id.Seq))
		return
	}
	b.received = true
	a.heard = true
	a.lastProgress = now
	// Telegraf keeps the order of one input's metrics to one output: a marker
	// before this one that did not arrive was dropped, with the lines before it.
	lost := uint64(0)
	for seq, other := range a.pending {
		if seq < id.Seq && !other.received {
			lost = max(lost, seq)
		}
	}
	if lost > 0 {
		gen := a.generation
		a.mu.Unlock()
		a.writeAgain(gen, fmt.Sprintf("marker %d never reached telegraf-cnosdb while marker %d did (Telegraf dropped metrics)", lost, id.Seq))
		return
	}
	if verb != ackproto.Done {
		a.mu.Unlock()
		return
	}
	delete(a.pending, id.Seq)
	a.messages.Add(-int64(len(b.acks)))
	a.mu.Unlock()
	a.acked.Add(int64(len(b.acks)))
	a.complete(b.acks)
	if a.markPending != nil {
		a.markPending()
	}
}

// connectionClosed is called when an output that sent messages disconnects: with
// batches outstanding, what it held and what was in its pipe may be gone. Telegraf
// starts the output again after a while; until the new one answers, reading pauses
// and nothing is written again, since it would only fill Telegraf's buffer, which
// drops the oldest metrics when full. A marker with nothing before it tells the new
// output where to answer.
func (a *acker) connectionClosed() {
	a.mu.Lock()
	if len(a.pending) == 0 || a.awaiting != "" {
		a.mu.Unlock()
		return
	}
	a.awaiting = "the connection of telegraf-cnosdb closed (it stopped or died) while it held unconfirmed lines"
	a.log.Warnf("ack: telegraf-cnosdb went away with %d messages unconfirmed; reading waits until it is back, then they are written again", a.messages.Load())
	a.mu.Unlock()
	a.pause(true)
	err := a.rewrite(func(write func([]byte) error) error {
		a.mu.Lock()
		probe := a.markLocked(nil, &heldBatch{}, time.Now(), true)
		a.mu.Unlock()
		return write(probe)
	})
	if err != nil {
		a.log.Errorf("ack: writing a marker for the next output: %v", err)
	}
}

// writeAgain writes every batch held in generation gen again, in the order they were
// first written and before anything new, each under a marker of a new generation; the
// markers of the old one are ignored from then on. Of what Telegraf and the output
// still hold of the old generation, the lines are stored (twice, at worst) and the
// markers do nothing. A later loss found in gen, which was written again already, is
// no new loss.
func (a *acker) writeAgain(gen uint64, why string) {
	err := a.rewrite(func(write func([]byte) error) error {
		a.mu.Lock()
		if a.generation != gen || len(a.pending) == 0 {
			a.mu.Unlock()
			return nil
		}
		held := make([]*heldBatch, 0, len(a.pending))
		seqs := make([]uint64, 0, len(a.pending))
		for seq := range a.pending {
			seqs = append(seqs, seq)
		}
		slices.Sort(seqs)
		n := 0
		for _, seq := range seqs {
			held = append(held, a.pending[seq])
			n += len(a.pending[seq].acks)
		}
		a.pending = make(map[uint64]*heldBatch, len(held))
		a.generation++
		a.messages.Store(0)
		a.rewinds.Add(1)
		a.resent.Add(int64(n))
		a.log.Warnf("ack: %s; writing the %d messages not confirmed (%d batches) again: they may be stored twice", why, n, len(held))
		var out []byte
		now := time.Now()
		for i, b := range held {
			b.received = false
			// The last says that nothing follows soon, so that the output writes
			// without waiting for a full batch.
			out = a.markLocked(append(out[:0], b.lines...), b, now, i == len(held)-1)
			a.mu.Unlock()
			if err := write(out); err != nil {
				return err
			}
			a.mu.Lock()
		}
		a.mu.Unlock()
		return nil
	})
	if err != nil {
		a.log.Errorf("ack: writing unconfirmed messages again: %v", err)
	}
}

// check logs, at most once per ack_timeout, that nothing outstanding was acknowledged
// for ack_timeout. It does not rewind: a CnosDB outage holds markers in Telegraf's
// buffer for as long as it lasts, and waiting loses nothing.
func (a *acker) check(now time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.heard && len(a.pending) > 0 && a.lastTimeout.IsZero() && now.Sub(a.firstHeld) >= min(a.timeout, firstAckTimeout) {
		// Most likely not a slow CnosDB but no telegraf-cnosdb at all: say so early.
		a.lastTimeout = now
		a.log.Errorf("ack: no output has answered a marker in the %s since the first; reading stops at "+
			"max_undelivered_messages. The acknowledgement (ack = true, the default) needs telegraf-cnosdb as an "+
			"output of this Telegraf, and no namepass, namedrop or processor dropping or renaming the measurement %s; "+
			"with another output, set ack = false", now.Sub(a.firstHeld).Round(time.Second), ackproto.Measurement)
		return
	}
	if len(a.pending) == 0 || now.Sub(a.lastProgress) < a.timeout || now.Sub(a.lastTimeout) < a.timeout {
		return
	}
	a.lastTimeout = now
	a.log.Errorf("ack: no acknowledgement from telegraf-cnosdb for %s; %d batches (%d messages) wait for one. "+
		"Check that the output is telegraf-cnosdb, that it runs under the same Telegraf, and that no namepass, namedrop "+
		"or processor drops or renames the measurement %s (or CnosDB is down and Telegraf holds the lines)",
		now.Sub(a.lastProgress).Round(time.Second), len(a.pending), a.messages.Load(), ackproto.Measurement)
}

// outstanding returns the batches and messages held.
func (a *acker) outstanding() (batches int, messages int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.pending), a.messages.Load()
}
