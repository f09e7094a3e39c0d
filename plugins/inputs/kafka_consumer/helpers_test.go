package kafka_consumer

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/influxdata/telegraf"
	"github.com/influxdata/telegraf/plugins/common/kafka"
	_ "github.com/influxdata/telegraf/plugins/parsers/all"
	"github.com/influxdata/telegraf/plugins/parsers/influx"
	"github.com/influxdata/telegraf/testutil"

	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/testutil/kafkatest"
	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/testutil/syncbuf"
)

func TestMain(m *testing.M) {
	// Init sets the Kafka client's logger, which all clients of the process share,
	// and raises its level on first use: a data race with any client that logs at
	// that moment, such as one the broker helpers close in the background. Set it
	// before any client exists, at the level of the tests' loggers, so that Init
	// finds nothing to change.
	kafka.SetLogger(telegraf.Debug)
	kafkatest.Main(m)
}

// waitTimeout bounds every wait for the consumer; no test asserts on timing.
const waitTimeout = 60 * time.Second

// syncBuffer is the plugin's stdout in tests.
type syncBuffer struct {
	syncbuf.Buffer
}

// metrics parses what the plugin wrote, leaving out its own stats.
func (b *syncBuffer) metrics(t testing.TB) []telegraf.Metric {
	return parseLines(t, b.String(), func(m telegraf.Metric) bool { return m.Name() != statsMeasurement })
}

func (b *syncBuffer) stats(t testing.TB) []telegraf.Metric {
	return parseLines(t, b.String(), func(m telegraf.Metric) bool { return m.Name() == statsMeasurement })
}

func parseLines(t testing.TB, text string, keep func(telegraf.Metric) bool) []telegraf.Metric {
	t.Helper()
	p := &influx.Parser{}
	require.NoError(t, p.Init())
	var out []telegraf.Metric
	for _, line := range strings.Split(text, "\n") {
		if line == "" {
			continue
		}
		m, err := p.ParseLine(line)
		require.NoError(t, err, "line %q", line)
		if keep(m) {
			out = append(out, m)
		}
	}
	return out
}

// config is a plugin table for the shared broker.
// Stats are off unless extra sets stats_interval.
// ackOption finds a setting of ack or ack_socket, and not the "ack" inside
// timestamp_fallback.
var ackOption = regexp.MustCompile(`(?m)^\s*ack(_socket)?\s*=`)

func tableFor(b *kafkatest.Broker, topic, group string, extra ...string) string {
	rest := strings.Join(extra, "\n")
	if !strings.Contains(rest, "stats_interval") {
		rest += "\nstats_interval = \"0s\""
	}
	// These tests run the input alone, with no output to confirm what it writes:
	// written to stdout is done.
	if !ackOption.MatchString(rest) {
		rest += "\nack = false"
	}
	return fmt.Sprintf(`[[inputs.kafka_consumer]]
  brokers = [%q]
  topics = [%q]
  consumer_group = %q
  kafka_version = "4.1.0"
%s
`, b.Addr(), topic, group, rest)
}

// running is a plugin started in-process with a buffer as stdout.
type running struct {
	k   *KafkaConsumer
	out *syncBuffer
	acc *testutil.Accumulator
}

func newConsumer(t testing.TB, conf string) *KafkaConsumer {
	t.Helper()
	k := New()
	k.Log = testutil.Logger{Name: "inputs.kafka_consumer"}
	require.NoError(t, ConfigureString(k, conf))
	require.NoError(t, k.Init())
	return k
}

func start(t testing.TB, conf string) *running {
	t.Helper()
	k := newConsumer(t, conf)
	r := &running{k: k, out: &syncBuffer{}, acc: &testutil.Accumulator{}}
	k.Out = r.out
	require.NoError(t, k.Start(r.acc))
	t.Cleanup(k.Stop)
	return r
}

// waitFor polls cond until it holds, failing the test after waitTimeout.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %v", what, waitTimeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// countField returns how many metrics carry each value of the integer-valued field.
func countField(metrics []telegraf.Metric, field string) map[int64]int {
	seen := make(map[int64]int)
	for _, m := range metrics {
		if v, ok := m.GetField(field); ok {
			switch v := v.(type) {
			case int64:
				seen[v]++
			case float64:
				seen[int64(v)]++
			}
		}
	}
	return seen
}

// nonEmpty keeps the partitions that hold messages: a consumer commits nothing for
// the others.
func nonEmpty(hwms map[int32]int64) map[int32]int64 {
	out := make(map[int32]int64)
	for p, hwm := range hwms {
		if hwm > 0 {
			out[p] = hwm
		}
	}
	return out
}
