package kafka_consumer

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"

	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/testutil/kafkatest"
)

// sensorLine is the article's sensor reading for message i: every value is distinct and
// derived from i, so that each metric can be checked exactly.
func sensorLine(i int) string {
	return fmt.Sprintf(`{"pressure":%d.25,"temperature":%d.5,"visibility":%d}`, 1000+i, i, i)
}

func TestSensorJSONFromKcat(t *testing.T) {
	b := kafkatest.Shared(t)
	for _, partitions := range []int{1, 6} {
		t.Run(fmt.Sprintf("%d partitions", partitions), func(t *testing.T) {
			topic := kafkatest.UniqueName(t, "oceanic")
			group := kafkatest.UniqueName(t, "g")
			b.CreateTopic(t, topic, partitions)
			const n = 300
			lines := make([]string, n)
			for i := range lines {
				lines[i] = sensorLine(i)
			}
			// kcat (librdkafka) keeps keyless messages on one partition for a while;
			// several runs spread them over the partitions of the larger topic.
			for from := 0; from < n; from += n / partitions {
				kafkatest.ProduceWithKcat(t, b, topic, lines[from:from+n/partitions])
			}

			r := start(t, tableFor(b, topic, group, `data_format = "json"`, `topic_tag = "topic"`))
			waitFor(t, "all messages", func() bool { return len(r.out.metrics(t)) >= n })

			got := r.out.metrics(t)
			require.Len(t, got, n, "no message may be delivered twice in a clean run")
			seen := make(map[int64]bool)
			for _, m := range got {
				require.Equal(t, "kafka_consumer", m.Name())
				require.Equal(t, map[string]string{"topic": topic}, m.Tags())
				v, ok := m.GetField("visibility")
				require.True(t, ok)
				i := int64(v.(float64))
				require.Equal(t, map[string]interface{}{
					"pressure":    float64(1000+i) + 0.25,
					"temperature": float64(i) + 0.5,
					"visibility":  float64(i),
				}, m.Fields())
				require.False(t, seen[i], "message %d twice", i)
				seen[i] = true
			}
			require.Len(t, seen, n)
			require.Empty(t, r.acc.Errors)

			// Stopping commits the end of every partition that holds messages.
			r.k.Stop()
			require.Equal(t, nonEmpty(b.HighWatermarks(t, topic)), b.CommittedOffsets(t, group, topic))
		})
	}
}

func TestMemberLeavesMidStream(t *testing.T) {
	b := kafkatest.Shared(t)
	topic := kafkatest.UniqueName(t, "oceanic")
	group := kafkatest.UniqueName(t, "g")
	b.CreateTopic(t, topic, 6)
	const n = 600
	produce := func(from, to int) {
		values := make([][]byte, 0, to-from)
		for i := from; i < to; i++ {
			values = append(values, []byte(sensorLine(i)))
		}
		b.Produce(t, topic, values...)
	}
	conf := tableFor(b, topic, group, `data_format = "json"`, `max_undelivered_messages = 50`)
	first := start(t, conf)
	second := start(t, conf)
	// Both hold partitions before anything is produced: otherwise the first can read
	// all of the first half before the second joins, and the second reads nothing.
	waitFor(t, "both members holding partitions", func() bool {
		return len(first.k.stats.held()) > 0 && len(second.k.stats.held()) > 0
	})
	produce(0, n/2)
	waitFor(t, "both members consuming", func() bool {
		return len(first.out.metrics(t)) > 0 && len(second.out.metrics(t)) > 0
	})
	// One member leaves while the other half is produced.
	go produce(n/2, n)
	first.k.Stop()

	waitFor(t, "every message from the remaining member", func() bool {
		seen := countField(append(first.out.metrics(t), second.out.metrics(t)...), "visibility")
		return len(seen) == n
	})
	second.k.Stop()
	require.Equal(t, nonEmpty(b.HighWatermarks(t, topic)), b.CommittedOffsets(t, group, topic))
}

func TestRestartResumesFromCommittedOffsets(t *testing.T) {
	b := kafkatest.Shared(t)
	topic := kafkatest.UniqueName(t, "oceanic")
	group := kafkatest.UniqueName(t, "g")
	b.CreateTopic(t, topic, 3)
	conf := tableFor(b, topic, group, `data_format = "json"`)
	produce := func(from, to int) {
		var values [][]byte
		for i := from; i < to; i++ {
			values = append(values, []byte(sensorLine(i)))
		}
		b.Produce(t, topic, values...)
	}

	produce(0, 100)
	r := start(t, conf)
	waitFor(t, "the first 100 messages", func() bool { return len(r.out.metrics(t)) >= 100 })
	r.k.Stop()
	require.Equal(t, nonEmpty(b.HighWatermarks(t, topic)), b.CommittedOffsets(t, group, topic))

	produce(100, 150)
	again := start(t, conf)
	waitFor(t, "the next 50 messages", func() bool { return len(again.out.metrics(t)) >= 50 })
	again.k.Stop()
	seen := countField(again.out.metrics(t), "visibility")
	require.Len(t, seen, 50)
	for i := int64(100); i < 150; i++ {
		require.Equal(t, 1, seen[i], "message %d", i)
	}
}

func TestPoisonMessageGoesToDeadLetterTopic(t *testing.T) {
	b := kafkatest.Shared(t)
	topic := kafkatest.UniqueName(t, "oceanic")
	dlq := kafkatest.UniqueName(t, "dlq")
	group := kafkatest.UniqueName(t, "g")
	b.CreateTopic(t, topic, 1)
	b.CreateTopic(t, dlq, 1)

	msgs := []kafkatest.Message{
		{Value: []byte(sensorLine(0))},
		{Value: []byte(`{"pressure": 1013.`), Key: []byte("k1"),
			Headers: []sarama.RecordHeader{{Key: []byte("origin"), Value: []byte("buoy-7")}}},
		{Value: []byte(sensorLine(2))},
		{Value: []byte(`{"pressure":1,"pad":"` + strings.Repeat("x", 300) + `"}`)},
		{Value: []byte(sensorLine(4))},
	}
	pos := b.ProduceMessages(t, topic, msgs...)

	r := start(t, tableFor(b, topic, group, `data_format = "json"`, `max_message_len = 200`,
		fmt.Sprintf("dead_letter_topic = %q", dlq), `stats_interval = "100ms"`))
	waitFor(t, "the good messages", func() bool { return len(r.out.metrics(t)) >= 3 })
	waitFor(t, "the poison messages in the dead-letter topic", func() bool {
		return len(b.HighWatermarks(t, dlq)) == 1 && b.HighWatermarks(t, dlq)[0] >= 2
	})
	waitFor(t, "stats counting both", func() bool {
		s := r.out.stats(t)
		if len(s) == 0 {
			return false
		}
		last := s[len(s)-1]
		pe, _ := last.GetField("parse_errors")
		dl, _ := last.GetField("dead_lettered")
		return pe == int64(2) && dl == int64(2)
	})
	r.k.Stop()

	require.Equal(t, map[int64]int{0: 1, 2: 1, 4: 1}, countField(r.out.metrics(t), "visibility"))
	require.Equal(t, map[int32]int64{0: 5}, b.CommittedOffsets(t, group, topic))

	dead := b.ReadAll(t, dlq)
	require.Len(t, dead, 2)
	for i, want := range []int{1, 3} {
		m := dead[i]
		require.Equal(t, msgs[want].Value, m.Value)
		require.Equal(t, msgs[want].Key, m.Key)
		headers := make(map[string]string)
		for _, h := range m.Headers {
			headers[string(h.Key)] = string(h.Value)
		}
		require.Equal(t, topic, headers[headerSourceTopic])
		require.Equal(t, "0", headers[headerSourcePartition])
		require.Equal(t, strconv.FormatInt(pos[want].Offset, 10), headers[headerSourceOffset])
		require.NotEmpty(t, headers[headerError])
		if want == 1 {
			require.Equal(t, "buoy-7", headers["origin"])
			require.Contains(t, headers[headerError], "invalid character")
		} else {
			require.Contains(t, headers[headerError], "max_message_len")
		}
	}
}

func TestSASLSCRAMOverTLS(t *testing.T) {
	b := kafkatest.Start(t, kafkatest.Options{SASLSCRAM: true})
	// With kafka_version unset the brokers are asked before authentication, and
	// the SASL handshake follows the version they report.
	for _, version := range []string{`kafka_version = "4.1.0"`, "# kafka_version unset"} {
		t.Run(version, func(t *testing.T) {
			topic := kafkatest.UniqueName(t, "oceanic")
			group := kafkatest.UniqueName(t, "g")
			b.CreateTopic(t, topic, 2)
			b.Produce(t, topic, []byte(sensorLine(1)), []byte(sensorLine(2)))

			conf := fmt.Sprintf(`[[inputs.kafka_consumer]]
  brokers = [%q]
  topics = [%q]
  consumer_group = %q
  %s
  enable_tls = true
  tls_ca = %q
  sasl_mechanism = "SCRAM-SHA-512"
  sasl_username = %q
  sasl_password = %q
  data_format = "json"
  ack = false
`, b.SASLAddr(), topic, group, version, b.CAFile(), kafkatest.DefaultUser, kafkatest.DefaultPassword)
			r := start(t, conf)
			waitFor(t, "both messages over SASL_SSL", func() bool { return len(r.out.metrics(t)) >= 2 })
			r.k.Stop()
			require.Equal(t, map[int64]int{1: 1, 2: 1}, countField(r.out.metrics(t), "visibility"))
			require.Equal(t, nonEmpty(b.HighWatermarks(t, topic)), b.CommittedOffsets(t, group, topic))
			require.True(t, r.k.config.Version.IsAtLeast(sarama.V4_0_0_0), "speaks %s", r.k.config.Version)
			require.Equal(t, sarama.SASLHandshakeV1, r.k.config.Net.SASL.Version)
		})
	}
}

func TestSampleCommitsNothing(t *testing.T) {
	b := kafkatest.Shared(t)
	topic := kafkatest.UniqueName(t, "oceanic")
	group := kafkatest.UniqueName(t, "g")
	b.CreateTopic(t, topic, 3)
	var values [][]byte
	for i := 0; i < 30; i++ {
		values = append(values, []byte(sensorLine(i)))
	}
	b.Produce(t, topic, values...)

	k := newConsumer(t, tableFor(b, topic, group, `data_format = "json"`))
	out := &syncBuffer{}
	k.Out = out
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	n, err := k.Sample(ctx, 10)
	require.NoError(t, err)
	require.Equal(t, 10, n)
	require.Len(t, out.metrics(t), 10)
	require.Empty(t, b.CommittedOffsets(t, group, topic))

	// Fewer messages than asked for: it stops at the end of the partitions.
	n, err = k.Sample(ctx, 100)
	require.NoError(t, err)
	require.Equal(t, 30, n)
	require.Empty(t, b.CommittedOffsets(t, group, topic))
}

func TestStatsLagFallsToZero(t *testing.T) {
	b := kafkatest.Shared(t)
	topic := kafkatest.UniqueName(t, "oceanic")
	group := kafkatest.UniqueName(t, "g")
	b.CreateTopic(t, topic, 2)
	var values [][]byte
	for i := 0; i < 200; i++ {
		values = append(values, []byte(sensorLine(i)))
	}
	b.Produce(t, topic, values...)

	r := start(t, tableFor(b, topic, group, `data_format = "json"`, `stats_interval = "100ms"`))
	caughtUp := func() bool {
		latest := make(map[string]map[string]interface{})
		for _, m := range r.out.stats(t) {
			p, _ := m.GetTag("partition")
			latest[p] = m.Fields()
		}
		if len(latest) != 2 {
			return false
		}
		var messages int64
		for _, f := range latest {
			// Without the acknowledgement, written to stdout is confirmed: once
			// caught up, nothing is behind in time either.
			if f["lag"] != int64(0) || f["lag_seconds"] != float64(0) {
				return false
			}
			messages += f["messages"].(int64)
		}
		return messages == 200
	}
	waitFor(t, "stats with lag and lag_seconds 0 on both partitions after 200 messages", caughtUp)

	for _, m := range r.out.stats(t) {
		require.Equal(t, topic, m.Tags()["topic"])
		require.Equal(t, group, m.Tags()["consumer_group"])
		for _, f := range []string{"messages", "bytes", "parse_errors", "dead_lettered", "rebalances"} {
			_, ok := m.GetField(f)
			require.True(t, ok, "field %s", f)
		}
	}
}
