package kafka_consumer

import (
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"

	"github.com/influxdata/telegraf/testutil"

	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/testutil/kafkatest"
)

// idleClaim is a claim whose high watermark and first offset the test sets.
type idleClaim struct {
	sarama.ConsumerGroupClaim
	hwm, initial int64
}

func (c *idleClaim) HighWaterMarkOffset() int64 { return c.hwm }
func (c *idleClaim) InitialOffset() int64       { return c.initial }

// markSession is a session that records what is marked in it.
type markSession struct {
	sarama.ConsumerGroupSession
	marks []int64
}

func (s *markSession) MarkOffset(_ string, _ int32, offset int64, _ string) {
	s.marks = append(s.marks, offset)
}

// idlePartition is a claim of partition id of topic "t" in sess, as ConsumeClaim
// makes it.
func idlePartition(k *KafkaConsumer, id int32, claim *idleClaim, sess sarama.ConsumerGroupSession) *partition {
	p := &partition{topic: "t", id: id, claim: claim, session: sess, counts: k.stats.counters("t", id), log: k.Log}
	k.progressOf("t", id).claim(p, sess)
	return p
}

// idleConsumer has what claims and skipTo need, and no connection.
func idleConsumer() *KafkaConsumer {
	k := New()
	k.Log = testutil.Logger{Name: "inputs.kafka_consumer"}
	k.stats = newStats("g")
	k.writer = newWriter(io.Discard, 1<<10, time.Hour)
	return k
}

// A partition is looked at only while its loop waits for Kafka with every message
// handed out done and reading not stopped; from is its mark, or where the claim
// started if that is later, and a claim that started at the newest offset with
// nothing marked is left alone.
func TestIdleAt(t *testing.T) {
	k := idleConsumer()
	claim := &idleClaim{hwm: 10, initial: 5}
	p := idlePartition(k, 0, claim, nil)
	at := func() (int64, bool) {
		t.Helper()
		s, ok := idleAt(p)
		return s.from, ok
	}

	_, ok := at()
	require.False(t, ok, "the loop does not wait for Kafka")
	p.waiting.Store(true)
	from, ok := at()
	require.True(t, ok)
	require.Equal(t, int64(5), from, "nothing marked: where the claim started")

	require.NoError(t, p.offsets.Add(6, time.Time{}))
	_, ok = at()
	require.False(t, ok, "offset 6 is not done")
	p.done(6)
	from, ok = at()
	require.True(t, ok)
	require.Equal(t, int64(7), from)

	claim.initial = 8
	from, _ = at()
	require.Equal(t, int64(8), from, "the group committed past the mark")
	claim.initial = sarama.OffsetNewest
	from, _ = at()
	require.Equal(t, int64(7), from, "the mark, when nothing was committed")

	claim.hwm = 7
	_, ok = at()
	require.False(t, ok, "the mark is the high watermark")
	claim.hwm = 10

	p.progress.stopped.Store(true)
	_, ok = at()
	require.False(t, ok, "reading stopped")

	fresh := idlePartition(k, 1, &idleClaim{hwm: 3, initial: sarama.OffsetOldest}, nil)
	fresh.waiting.Store(true)
	s, ok := idleAt(fresh)
	require.True(t, ok)
	require.Equal(t, sarama.OffsetOldest, s.from, "the oldest offset, asked of the broker")
	fresh.claim = &idleClaim{hwm: 3, initial: sarama.OffsetNewest}
	_, ok = idleAt(fresh)
	require.False(t, ok, "started at the newest offset, which only sarama knows")
}

// skipTo marks the end in the session that holds the partition now, and moves the
// mark of the tracker it was given only: not while a message is in flight, not in a
// partition whose reading stopped, and not after the offsets started again.
func TestSkipToMarksInTheHoldingSession(t *testing.T) {
	k := idleConsumer()
	first := &markSession{}
	p := idlePartition(k, 0, &idleClaim{hwm: 10}, first)
	require.NoError(t, p.offsets.Add(0, time.Time{}))
	require.False(t, k.writer.skipTo(p, p.offsets, 3), "offset 0 is in flight")
	p.done(0)
	p.markSession()
	require.Equal(t, []int64{1}, first.marks)

	// A rebalance: the partition is claimed again in another session.
	second := &markSession{}
	again := idlePartition(k, 0, &idleClaim{hwm: 10}, second)
	require.Equal(t, []int64{1}, second.marks, "the new claim marks what the earlier one finished")
	require.True(t, k.writer.skipTo(p, p.offsets, 3))
	require.Equal(t, []int64{1}, first.marks, "the earlier session holds it no more")
	require.Equal(t, []int64{1, 3}, second.marks)
	require.Equal(t, int64(3), again.offsets.Mark())
	require.Equal(t, int64(3), k.stats.counters("t", 0).marked.Load())
	require.False(t, k.writer.skipTo(again, again.offsets, 3), "the mark never goes back")

	// Released: the mark moves, and the next claim marks it.
	again.progress.release(second)
	require.True(t, k.writer.skipTo(again, again.offsets, 4))
	require.Equal(t, []int64{1, 3}, second.marks)
	third := &markSession{}
	idlePartition(k, 0, &idleClaim{hwm: 10}, third)
	require.Equal(t, []int64{4}, third.marks)

	old := again.offsets
	again.progress.restart(again)
	require.False(t, k.writer.skipTo(again, old, 6), "the offsets started again")
	require.Equal(t, int64(-1), again.offsets.Mark())

	again.progress.stopped.Store(true)
	require.False(t, k.writer.skipTo(again, again.offsets, 6), "reading stopped")
	require.Equal(t, []int64{4}, third.marks)
}

// idleEvery is how often the integration tests look at idle partitions, so that they
// wait less than idleMarkInterval.
const idleEvery = 200 * time.Millisecond

// startIdle starts a plugin that looks at its idle partitions every idleEvery, and
// keeps its log.
func startIdle(t *testing.T, conf string) (*running, *captureLogger) {
	t.Helper()
	log := &captureLogger{CaptureLogger: testutil.CaptureLogger{Name: "inputs.kafka_consumer"}}
	k := New()
	k.Log = log
	require.NoError(t, ConfigureString(k, conf))
	require.NoError(t, k.Init())
	k.idleInterval = idleEvery
	r := &running{k: k, out: &syncBuffer{}, acc: &testutil.Accumulator{}}
	k.Out = r.out
	require.NoError(t, k.Start(r.acc))
	t.Cleanup(k.Stop)
	return r, log
}

// committedAtEnd waits until the group's committed offset of partition 0 is its end,
// and the stats say so: lag 0, marked_offset at the end.
func committedAtEnd(t *testing.T, b *kafkatest.Broker, r *running, topic, group string) {
	t.Helper()
	end := b.HighWatermarks(t, topic)[0]
	waitFor(t, fmt.Sprintf("committed offset at the end, %d,", end), func() bool {
		return b.CommittedOffsets(t, group, topic)[0] == end
	})
	waitFor(t, "stats with lag 0 at the end", func() bool {
		f := lastStats(t, r.out, "0")
		return f != nil && f["lag"] == int64(0) && f["marked_offset"] == end
	})
}

// A partition whose last offsets hold nothing to read (a commit marker; an aborted
// transaction's marker, and with read_committed its records) has its group offset
// committed to its end once the input read everything, as the Java consumer does, so
// that lag falls to 0 here and in every monitor of the group's offsets.
func TestIdlePartitionIsCommittedToItsEnd(t *testing.T) {
	b := kafkatest.Shared(t)
	for _, layout := range []struct {
		name string
		// produce writes to the topic, and returns the values each level reads.
		produce func(t *testing.T, topic string) (uncommitted, committed map[int64]int)
	}{
		{"commit marker last", func(t *testing.T, topic string) (map[int64]int, map[int64]int) {
			newTxProducer(t, b, topic).commit("tx i=1i", "tx i=2i")
			waitOffsets(t, b, topic, 3)
			return map[int64]int{1: 1, 2: 1}, map[int64]int{1: 1, 2: 1}
		}},
		{"aborted transaction last", func(t *testing.T, topic string) (map[int64]int, map[int64]int) {
			return produceAbortedLast(t, b, topic)
		}},
		// With read_committed nothing is read at all: the group starts at the oldest
		// offset with nothing marked.
		{"only an aborted transaction", func(t *testing.T, topic string) (map[int64]int, map[int64]int) {
			newTxProducer(t, b, topic).abort("tx i=1i", "tx i=2i")
			waitOffsets(t, b, topic, 3)
			return map[int64]int{1: 1, 2: 1}, map[int64]int{}
		}},
	} {
		t.Run(layout.name, func(t *testing.T) {
			topic := kafkatest.UniqueName(t, "txidle")
			b.CreateTopic(t, topic, 1)
			uncommitted, committed := layout.produce(t, topic)
			for _, level := range []string{"read_uncommitted", "read_committed"} {
				t.Run(level, func(t *testing.T) {
					want := uncommitted
					if level == "read_committed" {
						want = committed
					}
					group := kafkatest.UniqueName(t, "g")
					r, _ := startIdle(t, tableFor(b, topic, group, `data_format = "influx"`, `ack = false`,
						fmt.Sprintf("isolation_level = %q", level), `stats_interval = "100ms"`))
					waitFor(t, "every record", func() bool { return len(countField(r.out.metrics(t), "i")) == len(want) })
					committedAtEnd(t, b, r, topic, group)
					r.k.Stop()
					require.Equal(t, want, countField(r.out.metrics(t), "i"))
					require.Empty(t, r.acc.Errors)
					require.Equal(t, b.HighWatermarks(t, topic), b.CommittedOffsets(t, group, topic))
				})
			}
		})
	}
}

// With the acknowledgement on, the offsets after the last message are passed over
// only once the output confirmed every message: until then the mark waits for them.
func TestIdlePartitionIsCommittedToItsEndOnceConfirmed(t *testing.T) {
	b := kafkatest.Shared(t)
	topic := kafkatest.UniqueName(t, "txidleack")
	group := kafkatest.UniqueName(t, "g")
	b.CreateTopic(t, topic, 1)
	newTxProducer(t, b, topic).commit("tx i=1i", "tx i=2i")
	waitOffsets(t, b, topic, 3)

	r, log := startIdle(t, tableFor(b, topic, group, `data_format = "influx"`, `ack = true`, `stats_interval = "100ms"`))
	o := &fakeOutput{t: t, out: r.out}
	waitFor(t, "both records written", func() bool { o.poll(); return o.linesSeen() == 2 && len(o.lines) == 0 })
	// Not a measure of time: long enough for the idle partitions to be looked at
	// several times, which must mark nothing while the messages wait for the output.
	time.Sleep(10 * idleEvery)
	require.Empty(t, b.CommittedOffsets(t, group, topic))
	require.Equal(t, int64(-1), r.k.stats.counters(topic, 0).marked.Load())

	o.confirm(len(o.batches))
	committedAtEnd(t, b, r, topic, group)
	found := false
	for _, m := range log.Messages() {
		if m.Level == testutil.LevelDebug && m.Text == fmt.Sprintf("idle partitions: topic %q partition 0: offsets 2 to 2 hold nothing to read "+
			"(transaction markers, aborted records); marked offset 3", topic) {
			found = true
		}
	}
	require.True(t, found, "the D! line of the pass over the marker")
	r.k.Stop()
	require.Equal(t, map[int32]int64{0: 3}, b.CommittedOffsets(t, group, topic))
}

// A group whose committed offset stopped at a commit marker (as this input left it
// before it passed over them) reaches the end when the input starts: the claim starts
// at the marker, and reads nothing.
func TestIdlePartitionCommittedAtAMarkerBefore(t *testing.T) {
	b := kafkatest.Shared(t)
	topic := kafkatest.UniqueName(t, "txidleold")
	group := kafkatest.UniqueName(t, "g")
	b.CreateTopic(t, topic, 1)
	newTxProducer(t, b, topic).commit("tx i=1i", "tx i=2i")
	waitOffsets(t, b, topic, 3)

	om, err := sarama.NewOffsetManagerFromClient(group, b.NewClient(t))
	require.NoError(t, err)
	pom, err := om.ManagePartition(topic, 0)
	require.NoError(t, err)
	pom.MarkOffset(2, "")
	om.Commit()
	require.NoError(t, pom.Close())
	require.NoError(t, om.Close())
	require.Equal(t, map[int32]int64{0: 2}, b.CommittedOffsets(t, group, topic))

	r, _ := startIdle(t, tableFor(b, topic, group, `data_format = "influx"`, `stats_interval = "100ms"`))
	committedAtEnd(t, b, r, topic, group)
	r.k.Stop()
	require.Empty(t, r.out.metrics(t))
	require.Equal(t, int64(0), r.k.stats.counters(topic, 0).messages.Load())
	require.Empty(t, r.acc.Errors)
}
