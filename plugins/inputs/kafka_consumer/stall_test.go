package kafka_consumer

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"

	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/testutil/kafkatest"
)

// stallTable is a plugin table with a short stall_timeout, fetches that answer
// within 100ms, and stats often.
func stallTable(b *kafkatest.Broker, topic, group string) string {
	return tableFor(b, topic, group, `data_format = "json"`, `stall_timeout = "1s"`,
		`consumer_max_wait_time = "100ms"`, `stats_interval = "100ms"`)
}

// stallLines returns the watchdog's E! lines.
func stallLines(log *captureLogger) []string {
	var out []string
	for _, line := range log.Errors() {
		if strings.Contains(line, "stall: ") {
			out = append(out, line)
		}
	}
	return out
}

// lastStats returns the fields of the newest kafka_consumer_stats metric of a
// partition, or nil before the first.
func lastStats(t *testing.T, out *syncBuffer, partition string) map[string]interface{} {
	var fields map[string]interface{}
	for _, m := range out.stats(t) {
		if p, _ := m.GetTag("partition"); p == partition {
			fields = m.Fields()
		}
	}
	return fields
}

// A partition whose fetcher hands out nothing while the broker holds records for it
// (the first session's claim is paused in sarama, as a stuck fetcher would be) is
// found within stall_timeout, logged with its offsets, counted, and its session ended;
// the next session reads every record.
func TestStallRestartsTheSession(t *testing.T) {
	b := kafkatest.Shared(t)
	topic := kafkatest.UniqueName(t, "stall")
	group := kafkatest.UniqueName(t, "g")
	b.CreateTopic(t, topic, 1)
	paused := make(chan struct{}, 1)
	r, sessions, log := startRecorded(t, stallTable(b, topic, group),
		func(n int, g sarama.ConsumerGroup, claim sarama.ConsumerGroupClaim) {
			if n == 1 {
				g.Pause(map[string][]int32{claim.Topic(): {claim.Partition()}})
				paused <- struct{}{}
			}
		})
	select {
	case <-paused:
	case <-time.After(waitTimeout):
		t.Fatal("no claim in the first session")
	}
	// A fetch sent before the pause answers within consumer_max_wait_time.
	time.Sleep(time.Second)
	const n = 10
	values := make([][]byte, n)
	for i := range values {
		values[i] = []byte(sensorLine(i))
	}
	b.Produce(t, topic, values...)

	waitFor(t, "the stall logged", func() bool { return len(stallLines(log)) > 0 })
	line := stallLines(log)[0]
	require.Contains(t, line, fmt.Sprintf("topic %q partition 0 (next offset 0, high watermark %d, confirmed offset none)", topic, n))
	require.Contains(t, line, "nothing was fetched or confirmed for 1s")
	require.Contains(t, line, "restarting the consumer-group session")
	require.Empty(t, r.out.metrics(t), "the paused claim read nothing")

	waitFor(t, "every message after the restart", func() bool { return len(r.out.metrics(t)) == n })
	require.Equal(t, 2, sessions.count(), "one session after the stalled one")
	require.Equal(t, int64(1), r.k.stats.counters(topic, 0).stalls.Load())
	waitFor(t, "the stall in the stats", func() bool {
		f := lastStats(t, r.out, "0")
		return f != nil && f["stalls"] == int64(1) && f["messages"] == int64(n)
	})
	require.Len(t, stallLines(log), 1, "the session that reads is not a stall")
	r.k.Stop()
	require.Equal(t, map[int32]int64{0: n}, b.CommittedOffsets(t, group, topic))
}

// A partition read to its end stalls nothing however long it is idle, nor does one
// whose high watermark is past its last record because a transaction's commit marker
// holds the last offset: the watchdog's probe finds nothing to read there until the
// group's offset passes over the marker (idle.go), and none is needed after.
func TestStallWatchdogLeavesIdlePartitionsAlone(t *testing.T) {
	b := kafkatest.Shared(t)
	for _, transactional := range []bool{false, true} {
		name := "lag 0"
		if transactional {
			name = "commit marker"
		}
		t.Run(name, func(t *testing.T) {
			topic := kafkatest.UniqueName(t, "idle")
			group := kafkatest.UniqueName(t, "g")
			b.CreateTopic(t, topic, 1)
			const n = 5
			values := make([][]byte, n)
			for i := range values {
				values[i] = []byte(sensorLine(i))
			}
			if transactional {
				produceTransaction(t, b, topic, values...)
				// The coordinator writes the marker after the commit returns.
				waitFor(t, "the commit marker after the records", func() bool { return b.HighWatermarks(t, topic)[0] == n+1 })
			} else {
				b.Produce(t, topic, values...)
			}
			r, sessions, log := startRecorded(t, stallTable(b, topic, group), nil)
			waitFor(t, "every message", func() bool { return len(r.out.metrics(t)) == n })
			if transactional {
				waitFor(t, "the group's offset past the commit marker", func() bool {
					return b.CommittedOffsets(t, group, topic)[0] == n+1
				})
			}
			// Idle for several stall timeouts.
			time.Sleep(4 * time.Second)
			require.Empty(t, stallLines(log))
			require.Equal(t, 1, sessions.count(), "the session went on")
			require.Zero(t, r.k.stats.counters(topic, 0).stalls.Load())
			f := lastStats(t, r.out, "0")
			require.NotNil(t, f)
			require.Equal(t, int64(0), f["stalls"])
			require.Equal(t, int64(0), f["lag"])
		})
	}
}

// produceTransaction writes values to partition 0 of topic in one committed
// transaction, which ends in a commit marker at the offset after the last value.
func produceTransaction(t *testing.T, b *kafkatest.Broker, topic string, values ...[]byte) {
	t.Helper()
	strs := make([]string, len(values))
	for i, v := range values {
		strs[i] = string(v)
	}
	newTxProducer(t, b, topic).commit(strs...)
}

// "0s" keeps the watchdog off rather than taking the default, and the watchdog looks
// four times per stall_timeout, at least every 30s.
func TestStallTimeoutOption(t *testing.T) {
	k, err := configured(t, "[[inputs.kafka_consumer]]\n  brokers = [\"b:9092\"]\n  topics = [\"t\"]\n  stall_timeout = \"0s\"\n")
	require.NoError(t, err)
	require.Zero(t, k.StallTimeout)
	require.Equal(t, 250*time.Millisecond, stallCheckInterval(time.Second))
	require.Equal(t, 30*time.Second, stallCheckInterval(time.Duration(defaultStallTimeout)))
}
