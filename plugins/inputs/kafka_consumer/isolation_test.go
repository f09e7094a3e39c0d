package kafka_consumer

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"

	"github.com/influxdata/telegraf/testutil"

	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/internal/offsets"
	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/testutil/kafkatest"
)

// txProducer writes transactions to partition 0 of a topic, each record stamped with
// ts if it is not zero.
type txProducer struct {
	t     *testing.T
	p     sarama.SyncProducer
	topic string
	ts    time.Time
}

func newTxProducer(t *testing.T, b *kafkatest.Broker, topic string) *txProducer {
	t.Helper()
	cfg := kafkatest.NewConfig()
	cfg.Producer.Idempotent = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Return.Successes = true
	cfg.Producer.Partitioner = sarama.NewManualPartitioner
	cfg.Producer.Transaction.ID = kafkatest.UniqueName(t, "tx")
	cfg.Net.MaxOpenRequests = 1
	p, err := sarama.NewSyncProducer([]string{b.Addr()}, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { p.Close() })
	return &txProducer{t: t, p: p, topic: topic}
}

func (x *txProducer) begin() {
	x.t.Helper()
	require.NoError(x.t, x.p.BeginTxn())
}

func (x *txProducer) send(values ...string) {
	x.t.Helper()
	for _, v := range values {
		_, _, err := x.p.SendMessage(&sarama.ProducerMessage{Topic: x.topic, Partition: 0, Value: sarama.StringEncoder(v), Timestamp: x.ts})
		require.NoError(x.t, err)
	}
}

func (x *txProducer) commit(values ...string) {
	x.t.Helper()
	x.begin()
	x.send(values...)
	require.NoError(x.t, x.p.CommitTxn())
}

func (x *txProducer) abort(values ...string) {
	x.t.Helper()
	x.begin()
	x.send(values...)
	require.NoError(x.t, x.p.AbortTxn())
}

// producePlain writes values outside any transaction to partition 0 of topic.
func producePlain(t *testing.T, b *kafkatest.Broker, topic string, ts time.Time, values ...string) {
	t.Helper()
	p0 := int32(0)
	msgs := make([]kafkatest.Message, len(values))
	for i, v := range values {
		msgs[i] = kafkatest.Message{Value: []byte(v), Partition: &p0, Timestamp: ts}
	}
	b.ProduceMessages(t, topic, msgs...)
}

// waitOffsets waits until partition 0 of topic ends at offset n. The coordinator
// writes a transaction's markers after the commit or abort returns: until then, the
// next record can take the offset before them.
func waitOffsets(t *testing.T, b *kafkatest.Broker, topic string, n int64) {
	t.Helper()
	waitFor(t, fmt.Sprintf("partition 0 ending at offset %d", n), func() bool { return b.HighWatermarks(t, topic)[0] == n })
}

// produceTransactions writes to partition 0 of topic, every record stamped with ts:
// "tx i=1i" in a transaction that aborts, "tx i=2i" in one that commits, then "tx
// i=3i" and "tx i=5i" in one that commits, between which another producer writes "tx
// i=4i" in one that aborts, then "tx i=6i" outside any. The four markers leave
// offsets to the records' time with gaps; the last offset is a record.
func produceTransactions(t *testing.T, b *kafkatest.Broker, topic string, ts time.Time) {
	t.Helper()
	x, y := newTxProducer(t, b, topic), newTxProducer(t, b, topic)
	x.ts, y.ts = ts, ts
	x.abort("tx i=1i")
	x.commit("tx i=2i")
	x.begin()
	x.send("tx i=3i")
	y.begin()
	y.send("tx i=4i")
	x.send("tx i=5i")
	require.NoError(t, y.p.AbortTxn())
	require.NoError(t, x.p.CommitTxn())
	waitOffsets(t, b, topic, 5+4)
	producePlain(t, b, topic, ts, "tx i=6i")
}

// Exactly the records of committed transactions, and those outside any, become
// metrics with read_committed; every record with read_uncommitted, as in Telegraf.
// Either way the group commits the end of the partition, past the markers, and the
// metrics without a time of their own take their record's (timestamp_fallback):
// though every record has the same millisecond and the markers take offsets among
// them, no two share a time.
func TestIsolationLevel(t *testing.T) {
	b := kafkatest.Shared(t)
	topic := kafkatest.UniqueName(t, "tx")
	b.CreateTopic(t, topic, 1)
	ts := time.Now().Truncate(time.Millisecond)
	produceTransactions(t, b, topic, ts)

	all := map[int64]int{1: 1, 2: 1, 3: 1, 4: 1, 5: 1, 6: 1}
	for _, tc := range []struct {
		option string
		want   map[int64]int
	}{
		// Telegraf's plugin reads the aborted records too.
		{"", all},
		{`isolation_level = "read_uncommitted"`, all},
		{`isolation_level = "read_committed"`, map[int64]int{2: 1, 3: 1, 5: 1, 6: 1}},
	} {
		t.Run(tc.option, func(t *testing.T) {
			group := kafkatest.UniqueName(t, "g")
			r := start(t, tableFor(b, topic, group, `data_format = "influx"`, `ack = false`, `timestamp_fallback = "record"`, tc.option))
			waitFor(t, "the last record", func() bool { return countField(r.out.metrics(t), "i")[6] == 1 })
			r.k.Stop()
			metrics := r.out.metrics(t)
			require.Equal(t, tc.want, countField(metrics, "i"))
			require.Empty(t, r.acc.Errors)
			// The transaction markers are passed over: the group ends at the end.
			require.Equal(t, b.HighWatermarks(t, topic), b.CommittedOffsets(t, group, topic))

			seen := make(map[int64]bool)
			for _, m := range metrics {
				require.Equal(t, ts.UnixMilli(), m.Time().UnixMilli(), "the record's millisecond: %s", m)
				require.False(t, seen[m.Time().UnixNano()], "a time seen before: %s", m)
				seen[m.Time().UnixNano()] = true
			}
		})
	}
}

// readableBelow reads the record batches as the consumer would: markers hold nothing
// to read, nor, with read_committed, the records of an aborted transaction, though
// another producer's committed records lie between them.
func TestReadableBelow(t *testing.T) {
	b := kafkatest.Shared(t)
	topic := kafkatest.UniqueName(t, "txprobe")
	b.CreateTopic(t, topic, 1)
	// Offsets: 0 "1" aborted, 1 its marker, 2 "2" committed, 3 its marker, 4 "3"
	// committed, 5 "4" of the other producer, aborted, 6 "5" committed, 7 and 8 the
	// two markers, 9 "6" outside any transaction.
	produceTransactions(t, b, topic, time.Time{})
	values := make(map[int64]string)
	for _, m := range b.ReadAll(t, topic) {
		values[m.Offset] = string(m.Value)
	}
	require.Equal(t, map[int64]string{0: "tx i=1i", 2: "tx i=2i", 4: "tx i=3i", 5: "tx i=4i", 6: "tx i=5i", 9: "tx i=6i"}, values)

	for _, tc := range []struct {
		level string
		// readable lists [from, end) ranges and whether a record is read there.
		readable map[[2]int64]bool
	}{
		{"read_uncommitted", map[[2]int64]bool{
			{0, 1}: true, {1, 2}: false, {1, 3}: true, {3, 4}: false, {5, 6}: true, {7, 9}: false, {7, 10}: true, {9, 9}: false, {10, 20}: false,
		}},
		{"read_committed", map[[2]int64]bool{
			{0, 2}: false, {0, 3}: true, {3, 4}: false, {4, 5}: true, {5, 6}: false, {5, 7}: true, {7, 9}: false, {7, 10}: true, {10, 20}: false,
		}},
	} {
		t.Run(tc.level, func(t *testing.T) {
			k := newConsumer(t, tableFor(b, topic, "g", fmt.Sprintf("isolation_level = %q", tc.level)))
			client, err := sarama.NewClient([]string{b.Addr()}, k.config)
			require.NoError(t, err)
			defer client.Close()
			for r, want := range tc.readable {
				got, err := readableBelow(client, k.config, topic, 0, r[0], r[1])
				require.NoError(t, err, "offsets %d to %d", r[0], r[1]-1)
				require.Equal(t, want, got, "offsets %d to %d", r[0], r[1]-1)
			}
		})
	}
}

// -test stops at the end of each partition though its last offsets hold nothing to
// read: transaction markers, the records of aborted transactions with read_committed.
// With read_committed the end is the last stable offset: an open transaction's
// records, and whatever follows them, are not read.
func TestSampleStopsAtTheEndOfTransactions(t *testing.T) {
	b := kafkatest.Shared(t)
	for _, layout := range []struct {
		name string
		// produce writes to the topic, and returns the values each level reads.
		produce func(t *testing.T, topic string) (uncommitted, committed map[int64]int)
	}{
		{"commit marker last", func(t *testing.T, topic string) (map[int64]int, map[int64]int) {
			x := newTxProducer(t, b, topic)
			x.abort("tx i=1i")
			x.commit("tx i=2i")
			waitOffsets(t, b, topic, 4)
			producePlain(t, b, topic, time.Time{}, "tx i=3i")
			x.commit("tx i=4i", "tx i=5i")
			waitOffsets(t, b, topic, 8)
			return map[int64]int{1: 1, 2: 1, 3: 1, 4: 1, 5: 1}, map[int64]int{2: 1, 3: 1, 4: 1, 5: 1}
		}},
		{"aborted transaction last", func(t *testing.T, topic string) (map[int64]int, map[int64]int) {
			return produceAbortedLast(t, b, topic)
		}},
		{"open transaction", func(t *testing.T, topic string) (map[int64]int, map[int64]int) {
			x, y := newTxProducer(t, b, topic), newTxProducer(t, b, topic)
			x.commit("tx i=1i")
			waitOffsets(t, b, topic, 2)
			y.begin()
			y.send("tx i=2i")
			t.Cleanup(func() { _ = y.p.AbortTxn() })
			producePlain(t, b, topic, time.Time{}, "tx i=3i")
			return map[int64]int{1: 1, 2: 1, 3: 1}, map[int64]int{1: 1}
		}},
	} {
		t.Run(layout.name, func(t *testing.T) {
			topic := kafkatest.UniqueName(t, "txsample")
			b.CreateTopic(t, topic, 1)
			uncommitted, committed := layout.produce(t, topic)
			for _, level := range []string{"read_uncommitted", "read_committed"} {
				t.Run(level, func(t *testing.T) {
					want := uncommitted
					if level == "read_committed" {
						want = committed
					}
					group := kafkatest.UniqueName(t, "g")
					k := newConsumer(t, tableFor(b, topic, group, `data_format = "influx"`, fmt.Sprintf("isolation_level = %q", level)))
					out := &syncBuffer{}
					k.Out = out
					// Sample returns when ctx ends as it does at the end, with no
					// error: only ctx tells them apart.
					ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
					defer cancel()
					n, err := k.Sample(ctx, 100)
					require.NoError(t, err)
					require.NoError(t, ctx.Err(), "Sample waited for its time to be up")
					require.Equal(t, len(want), n)
					require.Equal(t, want, countField(out.metrics(t), "i"))
					require.Empty(t, b.CommittedOffsets(t, group, topic))
				})
			}
		})
	}
}

// With read_committed, lag counts to the last stable offset: the records of an open
// transaction, and those after them, are not behind, since the consumer cannot read
// them yet, though the high watermark counts them. Once the transaction commits they
// are.
func TestStatsLagToTheLastStableOffset(t *testing.T) {
	b := kafkatest.Shared(t)
	topic := kafkatest.UniqueName(t, "txlag")
	group := kafkatest.UniqueName(t, "g")
	b.CreateTopic(t, topic, 1)
	x, y := newTxProducer(t, b, topic), newTxProducer(t, b, topic)
	x.commit("tx i=1i")
	waitOffsets(t, b, topic, 2)
	producePlain(t, b, topic, time.Time{}, "tx i=2i")
	// Offsets 3 to 5, held back: the last stable offset stays 3.
	y.begin()
	y.send("tx i=3i", "tx i=4i")
	producePlain(t, b, topic, time.Time{}, "tx i=5i")

	r := start(t, tableFor(b, topic, group, `data_format = "influx"`, `isolation_level = "read_committed"`, `stats_interval = "100ms"`))
	// stats returns the first stats of partition 0 that satisfy cond.
	stats := func(what string, cond func(map[string]interface{}) bool) map[string]interface{} {
		t.Helper()
		var found map[string]interface{}
		waitFor(t, what, func() bool {
			for _, m := range r.out.stats(t) {
				if f := m.Fields(); cond(f) {
					found = f
					return true
				}
			}
			return false
		})
		return found
	}
	f := stats("stats once offset 3 is marked", func(f map[string]interface{}) bool {
		return f["marked_offset"] == int64(3) && f["lag"] != nil
	})
	require.Equal(t, int64(0), f["lag"], "the open transaction is not lag: %v", f)
	require.Equal(t, 0.0, f["lag_seconds"])
	require.Equal(t, int64(2), f["messages"])

	// The transaction commits: its records and the one after it are read.
	require.NoError(t, y.p.CommitTxn())
	waitOffsets(t, b, topic, 7)
	producePlain(t, b, topic, time.Time{}, "tx i=6i")
	f = stats("stats once offset 8 is marked", func(f map[string]interface{}) bool {
		return f["marked_offset"] == int64(8) && f["lag"] != nil
	})
	require.Equal(t, int64(0), f["lag"], "%v", f)
	require.Equal(t, int64(6), f["messages"])
	r.k.Stop()
	require.Equal(t, map[int64]int{1: 1, 2: 1, 3: 1, 4: 1, 5: 1, 6: 1}, countField(r.out.metrics(t), "i"))
}

// Brokers that do not say where the partitions end leave lag out, rather than count
// it to the high watermark; lag_seconds stays while messages are held, since it needs
// no end then. The first failure is a W!, the next ones D!, so that a broker away for
// an hour logs one warning.
func TestStatsLagWithoutTheLastStableOffset(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	gone := l.Addr().String()
	require.NoError(t, l.Close())

	log := &captureLogger{}
	k := New()
	k.Log = log
	require.NoError(t, ConfigureString(k, fmt.Sprintf(`[[inputs.kafka_consumer]]
  brokers = [%q]
  topics = ["t"]
  kafka_version = "4.1.0"
  isolation_level = "read_committed"
`, gone)))
	require.NoError(t, k.Init())
	k.config.Metadata.Retry.Max = 0

	now := time.Now()
	p := &partition{topic: "t", id: 0, claim: &fakeClaim{hwm: 5}, offsets: offsets.New()}
	require.NoError(t, p.offsets.Add(3, now.Add(-2*time.Second)))
	ends := &stableEnds{k: k}
	defer ends.close()
	for range 2 {
		end := ends.endOf([]*partition{p})(p)
		require.Equal(t, int64(-1), end)
		_, ok := p.lag(end)
		require.False(t, ok)
		secs, ok := p.lagSeconds(now, end)
		require.True(t, ok)
		require.Equal(t, 2.0, secs)
	}
	require.Len(t, log.Warnings(), 1)
	require.Contains(t, log.Warnings()[0], "lag: asking the brokers for the last stable offsets")
	debug := 0
	for _, m := range log.Messages() {
		if m.Level == testutil.LevelDebug && strings.Contains(m.Text, "last stable offsets") {
			debug++
		}
	}
	require.Equal(t, 1, debug)

	// With read_uncommitted the claim's high watermark serves, and nothing is asked.
	k.config.Consumer.IsolationLevel = sarama.ReadUncommitted
	require.Equal(t, int64(5), ends.endOf([]*partition{p})(p))
	require.Len(t, log.Warnings(), 1)
}

// produceAbortedLast writes a committed transaction, a plain record and an aborted
// transaction, in that order, and returns the values of i read at each level:
// read_uncommitted, then read_committed.
func produceAbortedLast(t *testing.T, b *kafkatest.Broker, topic string) (uncommitted, committed map[int64]int) {
	t.Helper()
	x := newTxProducer(t, b, topic)
	x.commit("tx i=1i")
	waitOffsets(t, b, topic, 2)
	producePlain(t, b, topic, time.Time{}, "tx i=2i")
	x.abort("tx i=3i", "tx i=4i")
	waitOffsets(t, b, topic, 6)
	return map[int64]int{1: 1, 2: 1, 3: 1, 4: 1}, map[int64]int{1: 1, 2: 1}
}
