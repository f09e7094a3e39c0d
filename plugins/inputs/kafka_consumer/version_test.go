package kafka_consumer

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"

	"github.com/influxdata/telegraf/testutil"

	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/testutil/kafkatest"
)

// ranges builds a broker's answer from "key:min-max" pairs.
func ranges(pairs ...[3]int16) apiRanges {
	apis := make(apiRanges, len(pairs))
	for _, p := range pairs {
		apis[p[0]] = sarama.ApiVersionsResponseKey{ApiKey: p[0], MinVersion: p[1], MaxVersion: p[2]}
	}
	return apis
}

func TestReleaseOf(t *testing.T) {
	for _, tc := range []struct {
		name string
		apis apiRanges
		want sarama.KafkaVersion
	}{
		// Kafka 4 serves Fetch from v4 only (KIP-896).
		{"4.x", ranges([3]int16{apiFetch, 4, 17}, [3]int16{apiMetadata, 0, 13}), sarama.V4_0_0_0},
		{"3.x", ranges([3]int16{apiFetch, 0, 16}, [3]int16{apiMetadata, 0, 12}), sarama.V3_1_0_0},
		{"2.8", ranges([3]int16{apiFetch, 0, 12}, [3]int16{apiMetadata, 0, 11}), sarama.V2_8_0_0},
		{"2.4", ranges([3]int16{apiFetch, 0, 11}, [3]int16{apiApiVersions, 0, 3}), sarama.V2_4_0_0},
		{"2.0", ranges([3]int16{apiFetch, 0, 8}, [3]int16{apiApiVersions, 0, 2}), sarama.V2_0_0_0},
		{"0.11", ranges([3]int16{apiFetch, 0, 5}), sarama.V0_11_0_0},
		{"0.10.2", ranges([3]int16{apiFetch, 0, 3}), sarama.V0_10_2_0},
		{"no answer about Fetch", ranges(), sarama.V0_10_2_0},
	} {
		got, why := releaseOf(tc.apis)
		require.Equal(t, tc.want, got, "%s: %s", tc.name, why)
	}
}

func TestRefused(t *testing.T) {
	// What Kafka 4.1.2 answers.
	kafka4 := ranges([3]int16{apiFetch, 4, 18}, [3]int16{apiListOffsets, 1, 10}, [3]int16{apiMetadata, 0, 13},
		[3]int16{apiOffsetCommit, 2, 9}, [3]int16{apiOffsetFetch, 1, 9}, [3]int16{apiJoinGroup, 0, 9})
	require.Equal(t, []string{"Fetch v3 (served: v4 to v18)"}, refused(kafka4, sarama.V0_10_2_0))
	require.Equal(t, []string{"Fetch v0 (served: v4 to v18)", "ListOffsets v0 (served: v1 to v10)",
		"OffsetCommit v0 (served: v2 to v9)"}, refused(kafka4, sarama.V0_8_2_0))
	require.Empty(t, refused(kafka4, sarama.V0_11_0_0))
	require.Empty(t, refused(kafka4, sarama.V4_0_0_0))
}

func TestProbeVersionKafka4(t *testing.T) {
	b := kafkatest.Shared(t)
	answers, err := askBrokers([]string{b.Addr()}, sarama.NewConfig(), probeTimeout)
	require.NoError(t, err)
	require.Len(t, answers, 1)
	for key, r := range answers[0].apis {
		if name, ok := apiNames[key]; ok {
			t.Logf("%s serves %s v%d to v%d", b.Addr(), name, r.MinVersion, r.MaxVersion)
		}
	}

	v, why, err := probeVersion([]string{b.Addr()}, sarama.NewConfig(), probeTimeout)
	require.NoError(t, err)
	require.Equal(t, sarama.V4_0_0_0, v)
	require.Equal(t, "the broker at "+b.Addr()+" serves Kafka 4.x APIs (Fetch from v4 only)", why)
	// Stock Telegraf's version is what Kafka 4 refuses.
	require.Contains(t, refused(answers[0].apis, sarama.V0_10_2_0), "Fetch v3 (served: v4 to v18)")
	require.Empty(t, refused(answers[0].apis, v))
}

func TestProbeVersionNoBroker(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())

	start := time.Now()
	_, _, err = probeVersion([]string{addr}, sarama.NewConfig(), 2*time.Second)
	require.ErrorContains(t, err, "broker "+addr+":")
	require.Less(t, time.Since(start), 10*time.Second)
}

// versionTable is a plugin table for broker b without kafka_version, unless version
// is set.
func versionTable(b *kafkatest.Broker, topic, group, version string) string {
	conf := fmt.Sprintf(`[[inputs.kafka_consumer]]
  brokers = [%q]
  topics = [%q]
  consumer_group = %q
  data_format = "influx"
  stats_interval = "0s"
  ack = false
`, b.Addr(), topic, group)
	if version != "" {
		conf += fmt.Sprintf("  kafka_version = %q\n", version)
	}
	return conf
}

func startLogged(t *testing.T, conf string) (*running, *captureLogger) {
	t.Helper()
	log := &captureLogger{CaptureLogger: testutil.CaptureLogger{Name: "inputs.kafka_consumer"}}
	k := New()
	k.Log = log
	require.NoError(t, ConfigureString(k, conf))
	require.NoError(t, k.Init())
	r := &running{k: k, out: &syncBuffer{}, acc: &testutil.Accumulator{}}
	k.Out = r.out
	require.NoError(t, k.Start(r.acc))
	t.Cleanup(k.Stop)
	return r, log
}

func logLines(log *captureLogger, level byte) []string {
	var out []string
	for _, m := range log.Messages() {
		if m.Level == level {
			out = append(out, m.String())
		}
	}
	return out
}

func TestKafkaVersionUnsetReadsKafka4(t *testing.T) {
	b := kafkatest.Shared(t)
	topic := kafkatest.UniqueName(t, "untuned")
	group := kafkatest.UniqueName(t, "g")
	b.CreateTopic(t, topic, 3)
	const n = 200
	produceNumbered(t, b, topic, n)

	r, log := startLogged(t, versionTable(b, topic, group, ""))
	waitFor(t, "all messages", func() bool { return len(r.out.metrics(t)) >= n })
	require.Len(t, r.out.metrics(t), n)
	require.Len(t, countField(r.out.metrics(t), "i"), n)
	require.Empty(t, r.acc.Errors)

	infos := strings.Join(logLines(log, testutil.LevelInfo), "\n")
	require.Contains(t, infos, "kafka_version unset: the broker at "+b.Addr()+" serves Kafka 4.x APIs (Fetch from v4 only); using 4.0.0")
	require.Equal(t, sarama.V4_0_0_0, r.k.config.Version)
}

func TestKafkaVersionRefusedByKafka4IsExplained(t *testing.T) {
	b := kafkatest.Shared(t)
	topic := kafkatest.UniqueName(t, "untuned")
	group := kafkatest.UniqueName(t, "g")
	b.CreateTopic(t, topic, 1)
	b.Produce(t, topic, []byte("m i=1i"))

	// Kafka 4 serves Fetch from v4, and 0.10.2.0 (Telegraf's default) sends v3;
	// "2.0.0" sends v8 and is served.
	r, log := startLogged(t, versionTable(b, topic, group, "0.10.2.0"))
	want := "broker " + b.Addr() + ` closes the connection on Fetch v3 (served: v4 to v18), which kafka_version = "0.10.2.0" selects: ` +
		`it serves Kafka 4.x APIs. Set kafka_version = "4.0.0", or leave it unset to have the brokers asked`
	waitFor(t, "the refusal explained", func() bool {
		return strings.Contains(strings.Join(logLines(log, testutil.LevelError), "\n"), want)
	})
	// The fetches go on failing; they are not reported again.
	time.Sleep(5 * time.Second)
	require.Len(t, logLines(log, testutil.LevelError), 1)
	for _, err := range r.acc.Errors {
		require.NotContains(t, err.Error(), "EOF", "an EOF after the refusal was explained")
	}
	require.Empty(t, r.out.metrics(t))
}

func TestKafkaVersionServedByKafka4(t *testing.T) {
	b := kafkatest.Shared(t)
	topic := kafkatest.UniqueName(t, "tuned")
	group := kafkatest.UniqueName(t, "g")
	b.CreateTopic(t, topic, 1)
	b.Produce(t, topic, []byte("m i=1i"), []byte("m i=2i"))

	r, log := startLogged(t, versionTable(b, topic, group, "2.0.0"))
	waitFor(t, "all messages", func() bool { return len(r.out.metrics(t)) >= 2 })
	require.Empty(t, logLines(log, testutil.LevelError))
	require.Empty(t, r.acc.Errors)
	require.Equal(t, sarama.V2_0_0_0, r.k.config.Version, "a set kafka_version is used as it is")
}

// kafka3 is the Kafka 3 release the version question is tried on: the last of
// the series, which serves every version Kafka 4 dropped.
const kafka3 = "3.9.1"

func TestKafkaVersionUnsetReadsKafka3(t *testing.T) {
	b := kafkatest.Start(t, kafkatest.Options{KafkaVersion: kafka3})
	topic := kafkatest.UniqueName(t, "untuned")
	group := kafkatest.UniqueName(t, "g")
	b.CreateTopic(t, topic, 2)
	const n = 100
	produceNumbered(t, b, topic, n)

	answers, err := askBrokers([]string{b.Addr()}, sarama.NewConfig(), probeTimeout)
	require.NoError(t, err)
	require.Len(t, answers, 1)
	require.Empty(t, refused(answers[0].apis, sarama.V0_10_2_0), "Kafka 3 serves what Telegraf's default selects")

	r, log := startLogged(t, versionTable(b, topic, group, ""))
	waitFor(t, "all messages", func() bool { return len(r.out.metrics(t)) >= n })
	require.Len(t, countField(r.out.metrics(t), "i"), n)
	require.Empty(t, r.acc.Errors)
	infos := strings.Join(logLines(log, testutil.LevelInfo), "\n")
	require.Contains(t, infos, "kafka_version unset: the broker at "+b.Addr()+" serves Kafka 3.1 or newer APIs (Fetch up to v")
	require.Contains(t, infos, "; using 3.1.0")
	require.Equal(t, sarama.V3_1_0_0, r.k.config.Version)
}

// kafka25 is the oldest release the version question is tried on: Kafka 2.5,
// which runs on ZooKeeper, from before KRaft and before Kafka 4 dropped the
// old protocol versions.
const kafka25 = "2.5.1"

// kafka25Chosen is what the input logs when the broker at addr is a 2.5: the
// first release to serve OffsetFetch v7, and older than 2.6, the first to serve
// ListGroups v4.
func kafka25Chosen(addr string) string {
	return "kafka_version unset: the broker at " + addr + " serves Kafka 2.5 APIs (OffsetFetch up to v7); using 2.5.0"
}

func TestKafkaVersionUnsetReadsKafka25(t *testing.T) {
	b := kafkatest.Start(t, kafkatest.Options{KafkaVersion: kafka25})
	topic := kafkatest.UniqueName(t, "untuned")
	group := kafkatest.UniqueName(t, "g")
	b.CreateTopic(t, topic, 2)
	const n = 100
	produceNumbered(t, b, topic, n)

	answers, err := askBrokers([]string{b.Addr()}, sarama.NewConfig(), probeTimeout)
	require.NoError(t, err)
	require.Len(t, answers, 1)
	require.Empty(t, refused(answers[0].apis, sarama.V0_10_2_0), "Kafka 2.5 serves what Telegraf's default selects")

	r, log := startLogged(t, versionTable(b, topic, group, ""))
	waitFor(t, "all messages", func() bool { return len(r.out.metrics(t)) >= n })
	r.k.Stop()
	require.Len(t, countField(r.out.metrics(t), "i"), n)
	require.Empty(t, r.acc.Errors)
	require.Empty(t, logLines(log, testutil.LevelError))
	require.Contains(t, strings.Join(logLines(log, testutil.LevelInfo), "\n"), kafka25Chosen(b.Addr()))
	require.Equal(t, sarama.V2_5_0_0, r.k.config.Version)
	require.Equal(t, nonEmpty(b.HighWatermarks(t, topic)), b.CommittedOffsets(t, group, topic))
}

// TestKafkaVersionUnsetOverSASLSSL asks brokers of each release over TLS and before
// authentication; the SASL handshake then follows the version they report. Kafka
// 4.1.2 over SASL_SSL is TestSASLSCRAMOverTLS.
func TestKafkaVersionUnsetOverSASLSSL(t *testing.T) {
	for _, tc := range []struct {
		release string
		chosen  func(addr string) string
		version sarama.KafkaVersion
	}{
		{kafka25, kafka25Chosen, sarama.V2_5_0_0},
		{kafka3, func(addr string) string {
			return "kafka_version unset: the broker at " + addr + " serves Kafka 3.1 or newer APIs"
		}, sarama.V3_1_0_0},
	} {
		t.Run(tc.release, func(t *testing.T) {
			b := kafkatest.Start(t, kafkatest.Options{KafkaVersion: tc.release, SASLSCRAM: true})
			topic := kafkatest.UniqueName(t, "untuned")
			group := kafkatest.UniqueName(t, "g")
			b.CreateTopic(t, topic, 2)
			const n = 50
			produceNumbered(t, b, topic, n)

			conf := fmt.Sprintf(`[[inputs.kafka_consumer]]
  brokers = [%q]
  topics = [%q]
  consumer_group = %q
  enable_tls = true
  tls_ca = %q
  sasl_mechanism = "SCRAM-SHA-512"
  sasl_username = %q
  sasl_password = %q
  data_format = "influx"
  stats_interval = "0s"
  ack = false
`, b.SASLAddr(), topic, group, b.CAFile(), kafkatest.DefaultUser, kafkatest.DefaultPassword)
			r, log := startLogged(t, conf)
			waitFor(t, "all messages over SASL_SSL", func() bool { return len(r.out.metrics(t)) >= n })
			r.k.Stop()
			require.Len(t, countField(r.out.metrics(t), "i"), n)
			require.Empty(t, r.acc.Errors)
			require.Empty(t, logLines(log, testutil.LevelError))
			require.Contains(t, strings.Join(logLines(log, testutil.LevelInfo), "\n"), tc.chosen(b.SASLAddr()))
			require.Equal(t, tc.version, r.k.config.Version)
			require.Equal(t, sarama.SASLHandshakeV1, r.k.config.Net.SASL.Version)
			require.Equal(t, nonEmpty(b.HighWatermarks(t, topic)), b.CommittedOffsets(t, group, topic))
		})
	}
}

// produceNumbered writes n metrics "m i=<i>i" to topic, i from 0.
func produceNumbered(t *testing.T, b *kafkatest.Broker, topic string, n int) {
	t.Helper()
	values := make([][]byte, n)
	for i := range values {
		values[i] = fmt.Appendf(nil, "m i=%di", i)
	}
	b.Produce(t, topic, values...)
}
