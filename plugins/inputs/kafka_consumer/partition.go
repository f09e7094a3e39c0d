package kafka_consumer

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"

	"github.com/influxdata/telegraf"

	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/internal/offsets"
)

// partition is one claim of a partition in one consumer-group session: where its
// messages are tracked and marked. A later claim of the same partition gets a new
// one, with the same progress.
type partition struct {
	topic   string
	id      int32
	session sarama.ConsumerGroupSession // nil in test mode: nothing is marked
	claim   sarama.ConsumerGroupClaim   // nil in test mode
	// offsets tracks what this process handed out and finished of the partition, in
	// this claim and the earlier ones (progress.offsets when the claim began).
	offsets  *offsets.Partition
	progress *progress // nil in test mode
	// resumeAt is the first offset no earlier claim of this process handed out: the
	// claim skips the messages before it, which are done or held for the output.
	resumeAt int64
	counts   *partitionCounts
	log      telegraf.Logger
	// window gets back the bytes of each message done; nil in tests that have none.
	window *window
	// fetched counts the bytes of the claim's messages that sarama fetched and the
	// claim did not take yet; nil in test mode.
	fetched *fetchClaim
	// unmarked says that done advanced the mark since markSession last handed it to
	// the session. Only the writer, holding its lock, calls done and markSession.
	unmarked bool
	// freed is the bytes of the messages done since markSession last gave them back
	// to the window: once per write, not per message, as with the marks.
	freed int64
	// unheld is the bytes of line protocol of the message the claim's loop parsed
	// last, until it adds them to the window (see takeUnheld). Only that loop uses it.
	unheld int64
	// waiting says that the claim's loop waits for Kafka's next message, rather than
	// for the writer or a max_undelivered_messages slot: only then can the stall
	// watchdog blame the fetch.
	waiting atomic.Bool
}

// done is called by the writer once the message at offset is written (or had nothing
// to write). It advances the mark to the offset that follows the longest done prefix;
// markSession then hands it to the session, and gives the window back the bytes the
// messages held; the writer frees their slots after.
func (p *partition) done(offset int64) {
	mark, advanced, size, err := p.offsets.DoneSize(offset)
	if err != nil {
		// A bug, not bad input: say so instead of marking a wrong offset.
		p.log.Errorf("topic %q partition %d: %v", p.topic, p.id, err)
		return
	}
	p.freed += size
	if advanced {
		p.counts.marked.Store(mark)
		p.unmarked = true
	}
}

// hold records the n bytes of line protocol that the message at offset, the last one
// handed out, gave: the window holds them until the message is done. The claim's
// loop adds them to the window when it asks for its next slot, or hands the lines to
// the writer, whichever comes first (takeUnheld).
func (p *partition) hold(offset int64, n int) {
	if n <= 0 || p.window == nil {
		return
	}
	p.offsets.SetSize(offset, int64(n))
	p.unheld += int64(n)
}

// takeUnheld returns the bytes hold recorded that the window does not have yet.
func (p *partition) takeUnheld() int64 {
	n := p.unheld
	p.unheld = 0
	return n
}

// markSession marks the offset done reached, once per write rather than once per
// message, since each MarkOffset takes sarama's locks. It marks in the session that
// holds the partition now, which need not be the one that read the messages: a
// rebalance or a broker restart can end a session while its messages wait for the
// output.
func (p *partition) markSession() {
	if p.freed > 0 {
		if p.window != nil {
			p.window.giveBytes(p.freed)
		}
		p.freed = 0
	}
	if !p.unmarked {
		return
	}
	p.unmarked = false
	if sess := p.holder(); sess != nil {
		sess.MarkOffset(p.topic, p.id, p.offsets.Mark(), "")
	}
}

// tracker returns p.offsets for another goroutine than the claim's, which may
// replace it (see restart).
func (p *partition) tracker() *offsets.Partition {
	if p.progress == nil {
		return p.offsets
	}
	p.progress.mu.Lock()
	defer p.progress.mu.Unlock()
	return p.offsets
}

func (p *partition) holder() sarama.ConsumerGroupSession {
	if p.progress == nil {
		return p.session
	}
	return p.progress.holder(p.offsets)
}

// lag is end, where the partition ends for its consumer (stableEnds), minus the
// marked offset, or minus the offset the claim started at if nothing is marked yet.
// An end below 0 is unknown.
func (p *partition) lag(end int64) (int64, bool) {
	if p.claim == nil {
		return 0, false
	}
	// The stats goroutine calls this while the claim's may start the tracker anew.
	mark := p.tracker().Mark()
	if mark < 0 {
		mark = p.claim.InitialOffset()
	}
	if end <= 0 || mark < 0 {
		return 0, end == 0
	}
	return max(end-mark, 0), true
}

// lagSeconds is how far behind in time the partition is: now minus the Kafka
// timestamp of the first message handed out and not yet done (confirmed by
// telegraf-cnosdb with ack on, written to stdout without), the message the mark
// waits for. With none held but an offset lag above 0, the messages behind were not
// fetched yet; they were produced after the last message done, whose age is then an
// upper bound (it reads high for a moment when messages arrive after an idle spell).
// Caught up is 0. ok is false for a partition this process does not hold, one no
// message of which it has seen, and one whose messages carry no timestamp. end is
// lag's.
func (p *partition) lagSeconds(now time.Time, end int64) (float64, bool) {
	if p.claim == nil {
		return 0, false
	}
	tracker := p.tracker()
	if tracker.Last() < 0 {
		return 0, false
	}
	if ts, ok := tracker.Oldest(); ok {
		return secondsSince(now, ts), true
	}
	lag, ok := p.lag(end)
	if !ok {
		return 0, false
	}
	if lag == 0 && tracker.InFlight() == 0 {
		return 0, true
	}
	if ts, ok := tracker.MarkTime(); ok {
		return secondsSince(now, ts), true
	}
	return 0, false
}

// secondsSince is now - ts in seconds, to the millisecond Kafka keeps, and 0 for a ts
// ahead of now (a producer's clock ahead of this machine's).
func secondsSince(now, ts time.Time) float64 {
	return float64(max(now.Sub(ts), 0).Milliseconds()) / 1000
}

// progress is what this process handed out and finished of one partition over every
// session that claimed it. A session ends at each rebalance and when the broker goes,
// and sarama starts the next claim at the committed offset, which can be well behind:
// a commit at a session's end fails with the broker gone, and messages that wait for
// the output's confirmation are not committed at all. What this process handed out is
// done, or held until the output confirms it (and written again if it is lost), so a
// later claim skips it instead of writing it twice, and marks what earlier claims
// finish.
type progress struct {
	mu      sync.Mutex
	offsets *offsets.Partition
	session sarama.ConsumerGroupSession // of the claim that holds the partition now
	// stopped: a batch of the partition kept going missing on its way to
	// telegraf-cnosdb (see acker.giveUpLocked); no claim of this process reads on.
	stopped atomic.Bool
}

// progressOf returns the progress of a partition, creating it on first use.
func (k *KafkaConsumer) progressOf(topic string, id int32) *progress {
	k.progressMu.Lock()
	defer k.progressMu.Unlock()
	key := topicPartition{topic, id}
	pr, ok := k.progress[key]
	if !ok {
		pr = &progress{offsets: offsets.New()}
		if k.progress == nil {
			k.progress = make(map[topicPartition]*progress)
		}
		k.progress[key] = pr
	}
	return pr
}

// claim makes sess the holder of the partition, marks in it what earlier claims
// finished (their sessions may not have committed it), and gives p the tracker and
// the first offset not handed out yet.
func (pr *progress) claim(p *partition, sess sarama.ConsumerGroupSession) {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	pr.session = sess
	p.offsets, p.progress = pr.offsets, pr
	p.resumeAt = pr.offsets.Last() + 1
	if mark := pr.offsets.Mark(); mark >= 0 && sess != nil {
		sess.MarkOffset(p.topic, p.id, mark, "")
	}
}

// release ends sess's hold, unless a later claim holds the partition already.
func (pr *progress) release(sess sarama.ConsumerGroupSession) {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	if pr.session == sess {
		pr.session = nil
	}
}

// holder returns the session to mark tracker's offsets in: none if the partition is
// not held now, or if its offsets started again since (see restart).
func (pr *progress) holder(tracker *offsets.Partition) sarama.ConsumerGroupSession {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	if pr.offsets != tracker {
		return nil
	}
	return pr.session
}

// skip moves the mark of tracker to to (offsets.Skip) if tracker is still the
// partition's, and returns the session that holds the partition now (nil for none) to
// mark it in. ok is false if the mark did not move.
func (pr *progress) skip(tracker *offsets.Partition, to int64) (sess sarama.ConsumerGroupSession, ok bool) {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	if pr.offsets != tracker || !tracker.Skip(to) {
		return nil, false
	}
	return pr.session, true
}

// restart forgets what earlier claims handed out, for a partition whose offsets are
// now below it: the topic was deleted and created again, or its log truncated.
func (pr *progress) restart(p *partition) {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	pr.offsets = offsets.New()
	p.offsets, p.resumeAt = pr.offsets, 0
}

// stopped reports whether reading the partition stopped for good in this process.
func (p *partition) stopped() bool { return p.progress != nil && p.progress.stopped.Load() }

// giveUp stops reading the partitions of acks, whose lines kept going missing between
// this input and telegraf-cnosdb, and frees their slots and the bytes of their lines
// without marking them: their offsets are never committed, so a restart reads them
// again.
func (k *KafkaConsumer) giveUp(acks []ack, bytes int64) {
	seen := make(map[*partition]bool)
	for _, a := range acks {
		if a.part == nil {
			continue
		}
		a.part.counts.givenUp.Add(1)
		if !seen[a.part] && a.part.progress != nil {
			seen[a.part] = true
			a.part.progress.stopped.Store(true)
		}
	}
	k.window.giveBytes(bytes)
	k.window.give(len(acks))
}
