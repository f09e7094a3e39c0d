package kafka_consumer

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/influxdata/telegraf"

	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/internal/ackproto"
)

// maxRewrites bounds how often a batch that goes missing between this input and
// telegraf-cnosdb is written again. A loss that Telegraf's buffer causes passes within
// one or two; one that keeps coming back is a filter or processor that drops the
// input's lines (or a line Telegraf refuses), which no number of rewrites gets past.
const maxRewrites = 5

// rewriteDelay is how long to wait before writing again after the n-th loss of a
// batch: at once after the first, then 1 s, 2 s, 4 s, 8 s.
func rewriteDelay(n int) time.Duration {
	if n <= 1 {
		return 0
	}
	return time.Second << min(n-2, 10)
}

// acker holds, with acknowledgement on, the batches written to stdout whose messages
// wait for telegraf-cnosdb's "done": their offsets are not marked and their
// max_undelivered_messages slots not freed until then. When a marker or what the
// output held may be lost, it writes every batch still held again, with new markers:
// only what was not confirmed is written twice, and the consumer group session goes
// on, so no partition is read again and no member of the group rebalances.
type acker struct {
	socket   string
	instance string
	key      ackproto.Key
	timeout  time.Duration
	log      telegraf.Logger
	// complete marks a batch's messages done.
	complete func([]ack)
	// rewrite runs fn holding the writer's lock, so that nothing new is written
	// between the markers and batches it writes.
	rewrite func(fn func(out stdout) error) error
	// maxMarkers bounds the markers waiting for "done", so that markers and messages
	// together stay within Telegraf's metric_buffer_limit; markPending writes a marker
	// held back by that bound once one is confirmed.
	maxMarkers  int
	markPending func()
	// pause stops reading from Kafka (true) and lets it go on (false), in pairs:
	// while no output reads, or while a rewrite waits, what is read would only pile
	// up in Telegraf's buffer.
	pause func(bool)
	// giveUp stops the partitions of a batch that kept going missing, without
	// marking its messages, and frees their slots and the bytes of their lines.
	giveUp func(acks []ack, bytes int64)
	// delay is rewriteDelay, but in tests.
	delay func(losses int) time.Duration

	mu           sync.Mutex
	generation   uint64
	seq          uint64 // of the last marker written; markers are numbered without gaps
	pending      map[uint64]*heldBatch
	lastProgress time.Time // last received or done, or when pending became non-empty
	lastTimeout  time.Time // last "no acknowledgement" error
	firstHeld    time.Time // when the first marker was written
	heard        bool      // an output answered a marker of this process
	// awaiting is why the held batches must be written again once an output
	// answers; "" when they need not.
	awaiting string
	// retrying: a rewrite of this generation waits for its delay.
	retrying bool
	// lastBadAnswer: when an answer with a wrong HMAC was last logged.
	lastBadAnswer time.Time

	acked    atomic.Int64 // messages done
	rewinds  atomic.Int64 // losses after which the held batches were written again
	resent   atomic.Int64 // messages written again
	givenUp  atomic.Int64 // messages given up on after maxRewrites
	messages atomic.Int64 // messages held now
}

type heldBatch struct {
	acks     []ack
	lines    []byte // what was written for acks, without the marker
	count    int64  // lines in lines
	mac      string // of its marker now
	received bool
	// losses counts the writes of the batch that went missing; lostIn is the
	// generation of the last one plus 1, so that several answers about one write
	// count once.
	losses int
	lostIn uint64
}

// lost counts a loss of b in generation gen, once per write.
func (b *heldBatch) lost(gen uint64) {
	if b.lostIn != gen+1 {
		b.lostIn = gen + 1
		b.losses++
	}
}

func newAcker(socket string, timeout time.Duration, maxMarkers int, log telegraf.Logger) *acker {
	return &acker{
		socket:     socket,
		instance:   ackproto.NewInstance(),
		key:        ackproto.NewKey(),
		timeout:    timeout,
		log:        log,
		maxMarkers: max(maxMarkers, 1),
		pending:    make(map[uint64]*heldBatch),
		delay:      rewriteDelay,
	}
}

// hold takes over a batch's acks and lines (copied: the lines written before for acks
// without a marker, then dst) and appends its marker to dst, or refuses while
// maxMarkers markers wait for "done". The writer calls it, holding its lock, right
// before it writes dst.
func (a *acker) hold(h holding, acks []ack, now time.Time, waiting bool) ([]byte, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.pending) >= a.maxMarkers {
		return h.dst, false
	}
	if a.firstHeld.IsZero() {
		a.firstHeld = now
	}
	lines := make([]byte, 0, len(h.before)+len(h.dst))
	b := &heldBatch{acks: append([]ack(nil), acks...), lines: append(append(lines, h.before...), h.dst...), count: h.lines}
	return a.markLocked(h.dst, b, h.markerLines, now, waiting), true
}

// markLocked holds b under the next marker, which counts lines lines, and appends the
// marker to dst.
func (a *acker) markLocked(dst []byte, b *heldBatch, lines int64, now time.Time, waiting bool) []byte {
	a.seq++
	if len(a.pending) == 0 {
		a.lastProgress = now
	}
	a.pending[a.seq] = b
	a.messages.Add(int64(len(b.acks)))
	m := ackproto.Marker{
		Socket:  a.socket,
		ID:      ackproto.ID{Instance: a.instance, Generation: a.generation, Seq: a.seq},
		Waiting: waiting,
		Lines:   lines,
	}
	m.MAC = a.key.Sign(m)
	b.mac = m.MAC
	return ackproto.AppendMarker(dst, m, now)
}

// greet writes the first marker, with nothing before it, so that the output counts
// this process's lines from it: a marker tells the output how many lines came since
// the one before, and the first would otherwise count every line the output ever
// read. An answer to it also says early whether there is an output to answer.
func (a *acker) greet() error {
	a.mu.Lock()
	if a.firstHeld.IsZero() {
		a.firstHeld = time.Now()
	}
	a.mu.Unlock()
	return a.writeProbe(false)
}

// ours reports whether id names a marker of this process (any generation).
func (a *acker) ours(id ackproto.ID) bool { return id.Instance == a.instance }

// handle acts on one answer of the output.
func (a *acker) handle(ans ackproto.Answer, now time.Time) {
	a.mu.Lock()
	id := ans.ID
	if id.Instance != a.instance || id.Generation != a.generation {
		a.mu.Unlock()
		return // from before a loss, or another process: written again since
	}
	b, ok := a.pending[id.Seq]
	if !ok {
		a.mu.Unlock()
		return
	}
	if ans.MAC != b.mac {
		if now.Sub(a.lastBadAnswer) >= time.Minute {
			a.lastBadAnswer = now
			a.log.Warnf("ack: an answer %q for marker %d does not carry the marker's HMAC; ignored", ans.Verb, id.Seq)
		}
		a.mu.Unlock()
		return
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
	if ans.Verb == ackproto.Lost {
		b.lost(a.generation)
		a.lostLocked(fmt.Sprintf("telegraf-cnosdb did not receive every line before marker %d", id.Seq))
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
			other.lost(a.generation)
		}
	}
	if lost > 0 {
		a.lostLocked(fmt.Sprintf("marker %d never reached telegraf-cnosdb while marker %d did", lost, id.Seq))
		return
	}
	if ans.Verb != ackproto.Done {
		a.mu.Unlock()
		return
	}
	delete(a.pending, id.Seq)
	a.messages.Add(-int64(len(b.acks)))
	a.mu.Unlock()
	if len(b.acks) > 0 {
		a.complete(b.acks)
	}
	// Counted once complete gave the messages' slots and bytes back: a count of
	// acked messages says that the window has them again.
	a.acked.Add(int64(len(b.acks)))
	if a.markPending != nil {
		a.markPending()
	}
}

// lostLocked acts on a loss in the current generation, found for the reason why,
// after handle counted it against the batches that went missing; it unlocks a.mu.
// Batches lost more than maxRewrites times are given up (see giveUpLocked); the rest
// are written again once, after a delay that grows with the losses of the batch lost
// most often, while reading waits.
func (a *acker) lostLocked(why string) {
	gen := a.generation
	if a.retrying {
		a.mu.Unlock()
		return // a rewrite of everything held is on its way
	}
	// Batches lost too often are given up, and with them every batch that holds a
	// message of a partition they stop: its offsets cannot be committed past the
	// first anyway, and writing it again would only go missing the same way.
	stopped := make(map[*partition]bool)
	giveUp := func(b *heldBatch) bool {
		if b.losses > maxRewrites {
			return true
		}
		for _, ak := range b.acks {
			if stopped[ak.part] {
				return true
			}
		}
		return false
	}
	var given []*heldBatch
	for more := true; more; {
		more = false
		for seq, b := range a.pending {
			if !giveUp(b) {
				continue
			}
			for _, ak := range b.acks {
				more = more || !stopped[ak.part]
				stopped[ak.part] = true
			}
			// A marker with no lines before it has nothing to lose.
			if len(b.acks) > 0 {
				given = append(given, b)
			}
			delete(a.pending, seq)
			a.messages.Add(-int64(len(b.acks)))
		}
	}
	worst, lostNow := 0, false
	for _, b := range a.pending {
		worst = max(worst, b.losses)
		lostNow = lostNow || b.lostIn == gen+1
	}
	why += " (Telegraf dropped metrics: its buffer overflowed, or a filter or processor drops them)"
	if len(given) > 0 {
		a.giveUpLocked(given, why)
	}
	if !lostNow {
		// What went missing was given up; the rest arrived.
		a.mu.Unlock()
		return
	}
	delay := a.delay(worst)
	if delay == 0 {
		a.mu.Unlock()
		a.writeAgain(gen, why)
		return
	}
	a.retrying = true
	a.mu.Unlock()
	a.log.Warnf("ack: %s; a batch went missing %d times: writing again in %s", why, worst, delay)
	a.pause(true)
	time.AfterFunc(delay, func() {
		a.mu.Lock()
		a.retrying = false
		a.mu.Unlock()
		a.writeAgain(gen, why)
		a.pause(false)
	})
}

// giveUpLocked ends the rewrites of batches that went missing more than maxRewrites
// times. Their lines do not get past something between this input and
// telegraf-cnosdb, and writing them again would loop for ever; marking them done
// would commit offsets of messages CnosDB may not have. So their partitions stop
// where they are: nothing after them is read, and their offsets are never committed,
// so that a restart, once the cause is fixed, reads them again.
func (a *acker) giveUpLocked(batches []*heldBatch, why string) {
	var (
		acks  []ack
		bytes int64
	)
	for _, b := range batches {
		acks = append(acks, b.acks...)
		bytes += int64(len(b.lines))
	}
	a.givenUp.Add(int64(len(acks)))
	a.log.Errorf("ack: %s, and went on going missing each of the %d times it was written again: %s. "+
		"Something between this input and telegraf-cnosdb drops these lines: a namepass, namedrop, tagpass, tagdrop or "+
		"metricpass on the outputs.execd of telegraf-cnosdb, a processor (processors.dedup drops lines written again), an "+
		"aggregator with drop_original, or Telegraf refusing a line (see its log). Filter in kafka_consumer.conf instead "+
		"(its namepass, tagdrop... apply before the count), or run the pair in a Telegraf of its own. Reading stops at "+
		"these offsets and none of them is committed: restart Telegraf once the cause is fixed and they are read again",
		why, maxRewrites, describeAcks(acks))
	if a.giveUp != nil && len(acks) > 0 {
		a.giveUp(acks, bytes)
	}
}

// describeAcks names the messages of acks: topic, partition and offsets.
func describeAcks(acks []ack) string {
	type span struct {
		first, last int64
		n           int
	}
	spans := make(map[*partition]*span)
	var order []*partition
	for _, ak := range acks {
		s, ok := spans[ak.part]
		if !ok {
			s = &span{first: ak.offset, last: ak.offset}
			spans[ak.part] = s
			order = append(order, ak.part)
		}
		s.first, s.last, s.n = min(s.first, ak.offset), max(s.last, ak.offset), s.n+1
	}
	out := ""
	for i, p := range order {
		s := spans[p]
		if i > 0 {
			out += "; "
		}
		if p == nil {
			out += fmt.Sprintf("%d messages, offsets %d to %d", s.n, s.first, s.last)
			continue
		}
		out += fmt.Sprintf("topic %q partition %d offsets %d to %d (%d messages)", p.topic, p.id, s.first, s.last, s.n)
	}
	if out == "" {
		out = "no message"
	}
	return out
}

// connectionClosed is called when an output that sent messages disconnects: with
// batches outstanding, what it held and what was in its pipe may be gone. Telegraf
// starts the output again after a while; until the new one answers, reading pauses
// and nothing is written again, since it would only fill Telegraf's buffer, which
// drops the oldest metrics when full. A marker with nothing before it tells the new
// output where to answer.
func (a *acker) connectionClosed() {
	a.mu.Lock()
	if a.awaiting != "" {
		a.mu.Unlock()
		return
	}
	if len(a.pending) == 0 {
		// Nothing to write again, but the next output counts this input's lines from
		// its first marker: one with nothing before it spares a rewrite of the batch
		// that follows.
		a.mu.Unlock()
		if err := a.writeProbe(false); err != nil {
			a.log.Errorf("ack: writing a marker for the next output: %v", err)
		}
		return
	}
	a.awaiting = "the connection of telegraf-cnosdb closed (it stopped or died) while it held unconfirmed lines"
	a.log.Warnf("ack: telegraf-cnosdb went away with %d messages unconfirmed; reading waits until it is back, then they are written again", a.messages.Load())
	a.mu.Unlock()
	a.pause(true)
	if err := a.writeProbe(true); err != nil {
		a.log.Errorf("ack: writing a marker for the next output: %v", err)
	}
}

// writeProbe writes a marker with no batch of its own.
func (a *acker) writeProbe(waiting bool) error {
	return a.rewrite(func(out stdout) error {
		a.mu.Lock()
		probe := a.markLocked(nil, &heldBatch{}, out.markerLines(), time.Now(), waiting)
		a.mu.Unlock()
		return out.writeMarked(probe)
	})
}

// writeAgain writes every batch held in generation gen again, in the order they were
// first written and before anything new, each under a marker of a new generation; the
// markers of the old one are ignored from then on. Of what Telegraf and the output
// still hold of the old generation, the lines are stored (twice, at worst) and the
// markers do nothing. A later loss found in gen, which was written again already, is
// no new loss.
func (a *acker) writeAgain(gen uint64, why string) {
	err := a.rewrite(func(out stdout) error {
		a.mu.Lock()
		if a.generation != gen || len(a.pending) == 0 {
			a.mu.Unlock()
			return nil
		}
		seqs := make([]uint64, 0, len(a.pending))
		for seq := range a.pending {
			seqs = append(seqs, seq)
		}
		slices.Sort(seqs)
		held := make([]*heldBatch, 0, len(seqs))
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
		// Every batch is held under its new marker before any is written, so that an
		// answer to one of them finds them all (a loss given up takes the batches
		// of its partitions with it).
		now := time.Now()
		markers := make([][]byte, len(held))
		before := out.markerLines()
		for i, b := range held {
			b.received = false
			// The last says that nothing follows soon, so that the output writes
			// without waiting for a full batch.
			markers[i] = a.markLocked(nil, b, before+b.count, now, i == len(held)-1)
			before = 0
		}
		a.mu.Unlock()
		var buf []byte
		for i, b := range held {
			buf = append(append(buf[:0], b.lines...), markers[i]...)
			if err := out.writeMarked(buf); err != nil {
				return err
			}
		}
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
