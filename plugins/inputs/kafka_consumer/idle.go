package kafka_consumer

import (
	"context"
	"time"

	"github.com/IBM/sarama"

	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/internal/offsets"
)

// Passing the mark over the end of an idle partition. Each transaction ends in a
// commit or abort marker that takes an offset, and with read_committed the records of
// an aborted transaction are skipped too: sarama's consumer fetches past them and
// hands out nothing. The mark is the offset after the last message done, so a
// partition whose last offsets are such would keep its committed offset below its end
// for good: lag 1 (or more) on an idle transactional topic, here and in every lag
// monitor that reads the group's offsets. The Java consumer moves its position past
// markers and aborted records, and commits that position; so does this input, by this
// rule.
//
// A held partition is idle when its claim's loop waits for Kafka, reading it was not
// stopped (a partition given up keeps its offset where it is, so that a restart reads
// the lost messages again), every message handed out is done (with ack on, confirmed
// by the output: the mark waits for nothing), and its mark and the claim's high
// watermark stand where they stood one look before, so that sarama had an interval to
// fetch what follows. If the mark is below the partition's end (the last stable offset
// with read_committed, asked of the leaders; the claim's high watermark otherwise), the
// record batches from the mark to the end are read on the broker (readableBelow). If
// none holds a record the consumer would be handed, the mark moves to the end
// (offsets.Skip, which refuses if a message was handed out meanwhile) and the session
// that holds the partition now marks it. The offsets below the end are decided, and
// stay as they are: nothing is marked past a record that this process, or the member
// the partition goes to next, could still be handed.
//
// Cost: a partition whose mark is its high watermark, as a caught-up partition
// without transactions has, needs no request. Another is asked about once per
// standing: one fetch of a few kilobytes (readableBelow), with read_committed after
// one ListOffsets request per leader for all the partitions of the look; once the
// brokers answered, not again until the partition's mark or high watermark moves, so
// that a partition whose records sarama does not hand out (the stall watchdog's case)
// or whose open transaction holds the last stable offset costs nothing more. After
// an error (logged at D!), it is asked again at the next look.

// idleMarkInterval is how often the idle partitions are looked at: a partition is
// passed over its end one to two intervals after it went idle, and sarama commits
// the mark within a second (Consumer.Offsets.AutoCommit).
const idleMarkInterval = 5 * time.Second

// idleMarker looks at the held partitions every idleMarkInterval, in one goroutine.
type idleMarker struct {
	k     *KafkaConsumer
	every time.Duration // idleMarkInterval, but in tests
	// client reads the partitions on the brokers; the group's own client is not
	// reachable. Made on first need, so that a consumer whose partitions end at
	// their last message opens no second connection.
	client sarama.Client
	// seen is where each held partition stood at the last look, if it was idle
	// then with its mark below its high watermark.
	seen map[*partition]idleStanding
}

// idleStanding is where an idle partition stands.
type idleStanding struct {
	// tracker is the partition's offsets tracker, whose mark is to move; it changes
	// when the partition's offsets start again (progress.restart).
	tracker *offsets.Partition
	// from is the first offset the mark would pass over: the mark, or where the claim
	// started if that is later (the group committed past this process's mark, or
	// nothing is marked yet); sarama.OffsetOldest for the oldest offset.
	from int64
	hwm  int64 // the claim's high watermark
	// answered says that the brokers were asked at this standing and nothing could
	// be passed over: they are not asked again until it changes.
	answered bool
}

func (s idleStanding) same(o idleStanding) bool {
	return s.tracker == o.tracker && s.from == o.from && s.hwm == o.hwm
}

func newIdleMarker(k *KafkaConsumer) *idleMarker {
	m := &idleMarker{k: k, every: idleMarkInterval, seen: make(map[*partition]idleStanding)}
	if k.idleInterval > 0 {
		m.every = k.idleInterval
	}
	return m
}

// run looks at the idle partitions every interval until ctx ends.
func (m *idleMarker) run(ctx context.Context) {
	defer m.close()
	every(ctx, m.every, func(time.Time) bool {
		m.look(ctx)
		return true
	})
}

func (m *idleMarker) close() {
	if m.client != nil {
		m.client.Close()
	}
}

// look passes the idle partitions that stood still since the last look over the
// offsets before their end that hold nothing to read.
func (m *idleMarker) look(ctx context.Context) {
	held := m.k.stats.held()
	live := make(map[*partition]bool, len(held))
	var due []*partition
	for _, p := range held {
		live[p] = true
		now, ok := idleAt(p)
		if !ok {
			delete(m.seen, p)
			continue
		}
		if before, ok := m.seen[p]; ok && before.same(now) {
			if !before.answered {
				due = append(due, p)
			}
			continue
		}
		m.seen[p] = now
	}
	for p := range m.seen {
		if !live[p] {
			delete(m.seen, p)
		}
	}
	if len(due) == 0 {
		return
	}
	if m.client == nil {
		client, err := sarama.NewClient(m.k.Brokers, m.k.config)
		if err != nil {
			// The group's own client reports a broker that does not answer.
			m.k.Log.Debugf("idle partitions: connecting: %v", m.k.explainConnect(err))
			return
		}
		m.client = client
	}
	endOf := m.ends(due)
	for _, p := range due {
		if ctx.Err() != nil {
			return
		}
		s := m.seen[p]
		end, ok := endOf(p, s)
		if !ok {
			continue
		}
		if m.pass(p, s, end) {
			s.answered = true
			m.seen[p] = s
		}
	}
}

// idleAt returns where p stands if it is idle (see the rule above) and its mark may be
// below its end; ok is false otherwise, and for a claim that started at the newest
// offset with nothing marked, whose first offset only sarama knows.
func idleAt(p *partition) (idleStanding, bool) {
	if p.claim == nil || p.progress == nil || p.stopped() || !p.waiting.Load() {
		return idleStanding{}, false
	}
	tracker := p.tracker()
	if tracker.InFlight() > 0 {
		return idleStanding{}, false
	}
	s := idleStanding{tracker: tracker, from: tracker.Mark(), hwm: p.claim.HighWaterMarkOffset()}
	switch initial := p.claim.InitialOffset(); {
	case initial >= 0:
		s.from = max(s.from, initial)
	case s.from >= 0:
		// Nothing was committed when the claim started, at the oldest or the
		// newest offset: from the mark on is read, which passes over no more than
		// the claim could.
	case initial == sarama.OffsetOldest:
		s.from = sarama.OffsetOldest
	default:
		return idleStanding{}, false
	}
	if s.from >= s.hwm {
		return idleStanding{}, false
	}
	return s, true
}

// ends returns where each partition of due ends for the consumer: the claim's high
// watermark, which sarama keeps, with read_uncommitted; the last stable offset, asked
// of the leaders, with read_committed. ok is false where the brokers gave none.
func (m *idleMarker) ends(due []*partition) func(*partition, idleStanding) (end int64, ok bool) {
	if m.k.config.Consumer.IsolationLevel != sarama.ReadCommitted {
		return func(_ *partition, s idleStanding) (int64, bool) { return s.hwm, true }
	}
	parts := make([]topicPartition, len(due))
	for i, p := range due {
		parts[i] = topicPartition{p.topic, p.id}
	}
	ends, err := listEnds(m.client, sarama.ReadCommitted, parts)
	if err != nil {
		m.k.Log.Debugf("idle partitions: asking the brokers for the last stable offsets: %v; asking again in %s", err, m.every)
	}
	return func(p *partition, _ idleStanding) (int64, bool) {
		end, ok := ends[topicPartition{p.topic, p.id}]
		return end, ok
	}
}

// pass moves p's mark to end if no record between its standing and end would be
// handed out. It reports whether the brokers answered and nothing is to be done at
// this standing; false after an error, to ask again at the next look.
func (m *idleMarker) pass(p *partition, s idleStanding, end int64) bool {
	from := s.from
	if from == sarama.OffsetOldest {
		oldest, err := m.client.GetOffset(p.topic, p.id, sarama.OffsetOldest)
		if err != nil {
			m.k.Log.Debugf("idle partitions: topic %q partition %d: oldest offset: %v", p.topic, p.id, err)
			return false
		}
		from = oldest
	}
	if end <= from {
		// With read_committed, an open transaction starts at the mark.
		return true
	}
	readable, err := readableBelow(m.client, m.k.config, p.topic, p.id, from, end)
	if err != nil {
		m.k.Log.Debugf("idle partitions: topic %q partition %d: reading offsets %d to %d: %v", p.topic, p.id, from, end-1, err)
		return false
	}
	if readable {
		// sarama hands the records out, or the stall watchdog finds that it does not.
		return true
	}
	if !m.k.writer.skipTo(p, s.tracker, end) {
		// A message was handed out meanwhile, or the partition's offsets started
		// again: the next look sees where it stands now.
		return false
	}
	m.k.Log.Debugf("idle partitions: topic %q partition %d: offsets %d to %d hold nothing to read "+
		"(transaction markers, aborted records); marked offset %d", p.topic, p.id, from, end-1, end)
	return true
}

// skipTo moves the mark of tracker, p's offsets, to end and marks end in the session
// that holds the partition now, if it may (offsets.Skip). It runs under the writer's
// lock, as done and markSession do, so that marked_offset never goes back. It
// reports whether the mark moved.
func (w *writer) skipTo(p *partition, tracker *offsets.Partition, end int64) bool {
	moved := false
	w.locked(func() {
		if p.stopped() {
			return
		}
		sess, ok := p.progress.skip(tracker, end)
		if !ok {
			return
		}
		moved = true
		p.counts.marked.Store(end)
		if sess != nil {
			sess.MarkOffset(p.topic, p.id, end, "")
		}
	})
	return moved
}
