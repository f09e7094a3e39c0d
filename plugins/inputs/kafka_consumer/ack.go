package kafka_consumer

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/influxdata/telegraf"

	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/internal/ackproto"
)

// acker holds, with ack_socket set, the batches written to stdout whose messages wait
// for telegraf-cnosdb's "done": their offsets are not marked and their
// max_undelivered_messages slots not freed until then. It rewinds (ends the consumer
// group session, so that the messages are read again from the committed offsets) when
// a marker or what the output held may be lost.
type acker struct {
	socket  string
	timeout time.Duration
	log     telegraf.Logger
	// complete marks a batch's messages done; drop frees their slots without marking.
	complete func([]ack)
	drop     func([]ack)
	// rewind asks for the consumer group session to end.
	rewind func()
	// maxMarkers bounds the markers waiting for "done", so that markers and messages
	// together stay within Telegraf's metric_buffer_limit; markPending writes a marker
	// held back by that bound once one is confirmed.
	maxMarkers  int
	markPending func()

	mu           sync.Mutex
	instance     string
	generation   uint64
	seq          uint64
	pending      map[uint64]*heldBatch
	lastProgress time.Time // last received or done, or when pending became non-empty
	lastTimeout  time.Time // last "no acknowledgement" error
	firstHeld    time.Time // when the first marker was written
	heard        bool      // an output answered a marker of this process

	acked    atomic.Int64 // messages done
	rewinds  atomic.Int64
	messages atomic.Int64 // messages held now
}

type heldBatch struct {
	acks     []ack
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

// hold takes over a batch's acks (copied) and appends its marker to dst, or refuses
// while maxMarkers markers wait for "done". The writer calls it, holding its lock,
// right before it writes dst.
func (a *acker) hold(dst []byte, acks []ack, now time.Time, waiting bool) ([]byte, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.pending) >= a.maxMarkers {
		return dst, false
	}
	a.seq++
	if len(a.pending) == 0 {
		a.lastProgress = now
	}
	if a.firstHeld.IsZero() {
		a.firstHeld = now
	}
	a.pending[a.seq] = &heldBatch{acks: append([]ack(nil), acks...)}
	a.messages.Add(int64(len(acks)))
	id := ackproto.ID{Instance: a.instance, Generation: a.generation, Seq: a.seq}
	return ackproto.AppendMarker(dst, ackproto.Marker{Socket: a.socket, ID: id.String(), Waiting: waiting}, now), true
}

// ours reports whether id names a marker of this process (any generation).
func (a *acker) ours(id ackproto.ID) bool { return id.Instance == a.instance }

// handle acts on one message of the output.
func (a *acker) handle(verb string, id ackproto.ID, now time.Time) {
	a.mu.Lock()
	if id.Instance != a.instance || id.Generation != a.generation {
		a.mu.Unlock()
		return // from before a rewind or another process: read again anyway
	}
	b, ok := a.pending[id.Seq]
	if !ok {
		a.mu.Unlock()
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
		a.rewindLocked(fmt.Sprintf("marker %d never reached telegraf-cnosdb while marker %d did (Telegraf dropped metrics)", lost, id.Seq))
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
// batches outstanding, what it held and what was in its pipe may be gone.
func (a *acker) connectionClosed() {
	a.mu.Lock()
	if len(a.pending) == 0 {
		a.mu.Unlock()
		return
	}
	a.rewindLocked("the connection of telegraf-cnosdb closed (it stopped or died) while it held unconfirmed lines")
}

// rewindLocked drops every held batch, frees their slots, starts a new generation and
// ends the session; it unlocks a.mu.
func (a *acker) rewindLocked(why string) {
	held := a.pending
	a.pending = make(map[uint64]*heldBatch)
	a.generation++
	a.messages.Store(0)
	a.mu.Unlock()
	a.rewinds.Add(1)
	n := 0
	for _, b := range held {
		n += len(b.acks)
	}
	a.log.Warnf("ack: %s; reading the %d messages not confirmed again from the committed offsets (they may be stored twice)", why, n)
	for _, b := range held {
		a.drop(b.acks)
	}
	a.rewind()
	if a.markPending != nil {
		a.markPending()
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
