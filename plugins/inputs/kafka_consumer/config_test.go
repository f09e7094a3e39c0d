package kafka_consumer

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"

	"github.com/influxdata/telegraf"
	"github.com/influxdata/telegraf/config"
	"github.com/influxdata/telegraf/metric"
	"github.com/influxdata/telegraf/plugins/inputs"
	"github.com/influxdata/telegraf/testutil"
)

func configured(t testing.TB, conf string) (*KafkaConsumer, error) {
	t.Helper()
	k := New()
	k.Log = testutil.Logger{}
	if err := ConfigureString(k, conf); err != nil {
		return k, err
	}
	return k, k.Init()
}

// TestStockTableLoads moves a filled-in copy of Telegraf's sample table, parser
// options included, into the plugin unchanged.
func TestStockTableLoads(t *testing.T) {
	raw, err := os.ReadFile("testdata/stock.conf")
	require.NoError(t, err)
	k, err := configured(t, string(raw))
	require.NoError(t, err)

	require.Equal(t, []string{"localhost:9092"}, k.Brokers)
	require.Equal(t, "telegraf_metrics_consumers", k.ConsumerGroup)
	require.Equal(t, 1000000, k.MaxMessageLen)
	require.Equal(t, config.Size(1000000), k.ConsumerFetchDefault)
	require.Equal(t, sarama.V2_6_0_0, k.config.Version)
	require.Equal(t, sarama.OffsetOldest, k.config.Consumer.Offsets.Initial)
	require.Equal(t, 100*time.Millisecond, k.config.Consumer.MaxProcessingTime)
	require.Equal(t, int32(1000000), k.config.Consumer.Fetch.Default)
	require.Equal(t, "Telegraf", k.config.ClientID)
	require.Equal(t, "json", k.Format())

	// The parser took its options from the same table: query, tag keys, string
	// fields, time key and format; the general options apply after it.
	dec, err := k.newDecoder()
	require.NoError(t, err)
	msg := &sarama.ConsumerMessage{
		Topic:     "telegraf",
		Value:     []byte(`{"readings":[{"station":"s1","status":"ok","depth":{"m":4.5},"ts":1700000000123}]}`),
		Timestamp: time.Unix(1700000001, 0),
		Headers:   []*sarama.RecordHeader{{Key: []byte("origin"), Value: []byte("buoy")}, {Key: []byte("kind"), Value: []byte("ignored")}},
	}
	out, err := dec.decode(nil, msg)
	require.NoError(t, err)
	got := parseLines(t, string(out), func(telegraf.Metric) bool { return true })
	want := metric.New("oceanic",
		map[string]string{"station": "s1", "origin": "buoy", "topic": "telegraf", "site": "north"},
		map[string]interface{}{"status": "ok", "depth_m": 4.5},
		time.Unix(1700000001, 0))
	testutil.RequireMetricsEqual(t, []telegraf.Metric{want}, got)
}

func TestSampleConfigLoads(t *testing.T) {
	k, err := configured(t, New().SampleConfig())
	require.NoError(t, err)
	require.Equal(t, "influx", k.Format())
	require.Equal(t, defaultStatsInterval, k.StatsInterval)
	require.Equal(t, defaultOutputBufferSize, k.OutputBufferSize)
	require.True(t, k.Ack, "the acknowledgement is on by default")
	require.Equal(t, defaultAckMaxUndeliveredMessages, k.MaxUndeliveredMessages)
	require.Equal(t, defaultMaxUndeliveredBytes, k.MaxUndeliveredBytes)
	require.Equal(t, defaultStallTimeout, k.StallTimeout)

	// Every option of Telegraf's sample is documented in this one.
	for _, opt := range []string{"brokers", "kafka_version", "topics", "topic_regexps", "topic_tag",
		"msg_headers_as_tags", "msg_header_as_metric_name", "timestamp_source", "client_id", "enable_tls",
		"tls_ca", "keep_alive_period", "sasl_username", "sasl_mechanism", "sasl_extensions", "sasl_version",
		"metadata_full", "consumer_group", "compression_codec", "offset", "balance_strategy",
		"metadata_retry_max", "metadata_retry_type", "metadata_retry_backoff", "metadata_retry_max_duration",
		"resolve_canonical_bootstrap_servers_only", "max_message_len", "max_undelivered_messages",
		"max_processing_time", "consumer_fetch_default", "data_format",
		"topic_refresh_interval", "consumer_fetch_min", "consumer_fetch_max", "consumer_max_wait_time",
		"channel_buffer_size", "output_buffer_size", "output_flush_interval", "dead_letter_topic",
		"stats_interval", "connection_strategy", "json_fast_path", "ack", "ack_socket", "ack_timeout",
		"group_instance_id", "session_timeout", "stall_timeout", "max_undelivered_bytes", "isolation_level"} {
		require.Regexp(t, `(?m)^  #*\s*`+opt+` = `, k.SampleConfig(), opt)
	}
}

func TestMaxUndeliveredDefaultsToMoreWithAcks(t *testing.T) {
	sample := New().SampleConfig()
	k, err := configured(t, sample+"\n  ack_socket = \""+filepath.Join(t.TempDir(), "a.sock")+"\"\n")
	require.NoError(t, err)
	require.Equal(t, defaultAckMaxUndeliveredMessages, k.MaxUndeliveredMessages)

	k, err = configured(t, sample+"\n  ack = false\n")
	require.NoError(t, err)
	require.Equal(t, defaultMaxUndeliveredMessages, k.MaxUndeliveredMessages, "Telegraf's default without the acknowledgement")

	_, err = configured(t, sample+"\n  ack = false\n  ack_socket = \"/tmp/a.sock\"\n")
	require.ErrorContains(t, err, "ack_socket is set while ack = false")

	k, err = configured(t, sample+"\n  ack_socket = \""+filepath.Join(t.TempDir(), "a.sock")+"\"\n  max_undelivered_messages = 300\n")
	require.NoError(t, err)
	require.Equal(t, 300, k.MaxUndeliveredMessages, "a value given is kept")

	k, err = configured(t, sample+"\n  ack = false\n  max_undelivered_bytes = \"1MiB\"\n")
	require.NoError(t, err)
	require.Equal(t, config.Size(1<<20), k.MaxUndeliveredBytes, "a value given is kept")
}

func TestUnknownKeysAreRefusedByName(t *testing.T) {
	tests := []struct{ name, extra, want string }{
		{"typo", `topic_tagg = "t"`, "unknown option(s) topic_tagg"},
		{"parser typo", "data_format = \"json\"\njson_qery = \"x\"", "unknown option(s) json_qery"},
		{"option of another parser", "data_format = \"json\"\ncsv_header_row_count = 1", "unknown option(s) csv_header_row_count"},
		{"several", "bogus = 1\nalso_bogus = 2", "unknown option(s) also_bogus, bogus"},
		{"nested", "[inputs.kafka_consumer.tagz]\n  a = \"b\"", "unknown option(s) tagz"},
		{"unknown format", `data_format = "yaml"`, `data_format "yaml" is not a Telegraf parser`},
		{"parser refuses its options", "data_format = \"csv\"", "parser csv:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := configured(t, "[[inputs.kafka_consumer]]\n  brokers = [\"b:9092\"]\n  topics = [\"t\"]\n"+tt.extra+"\n")
			require.ErrorContains(t, err, tt.want)
		})
	}
}

func TestInitNamesTheOption(t *testing.T) {
	tests := []struct{ extra, want string }{
		{`offset = "latest"`, `offset: "latest" is not one of`},
		{`balance_strategy = "fair"`, `balance_strategy: "fair"`},
		{`timestamp_source = "outer_space"`, `timestamp_source: "outer_space"`},
		{`kafka_version = "banana"`, `kafka_version:`},
		{`connection_strategy = "later"`, `connection_strategy: "later"`},
		{`topic_regexps = ["("]`, `topic_regexps: "("`},
		{`max_message_len = -1`, `max_message_len: -1 is negative`},
		{`max_undelivered_bytes = -1`, `max_undelivered_bytes: -1 is negative`},
		{`stats_interval = "-1s"`, `stats_interval: -1s is negative`},
		{`stall_timeout = "-1s"`, `stall_timeout: -1s is negative ("0s" turns the watchdog off)`},
		{`dead_letter_topic = "t"`, `dead_letter_topic: "t" is also in topics`},
		{`metadata_retry_type = "sometimes"`, `invalid metadata retry type`},
	}
	for _, tt := range tests {
		t.Run(tt.extra, func(t *testing.T) {
			_, err := configured(t, "[[inputs.kafka_consumer]]\n  brokers = [\"b:9092\"]\n  topics = [\"t\"]\n"+tt.extra+"\n")
			require.ErrorContains(t, err, tt.want)
		})
	}
	_, err := configured(t, "[[inputs.kafka_consumer]]\n  topics = [\"t\"]\n")
	require.ErrorContains(t, err, "brokers:")
	_, err = configured(t, "[[inputs.kafka_consumer]]\n  brokers = [\"b:9092\"]\n")
	require.ErrorContains(t, err, "topics:")
}

// TestStaticMembershipOptions: group_instance_id reaches sarama only with a protocol
// version that carries it, and the heartbeat follows session_timeout.
func TestStaticMembershipOptions(t *testing.T) {
	table := func(extra ...string) string {
		return "[[inputs.kafka_consumer]]\n  brokers = [\"b:9092\"]\n  topics = [\"t\"]\n" + strings.Join(extra, "\n") + "\n"
	}
	k, err := configured(t, table())
	require.NoError(t, err)
	require.Empty(t, k.config.Consumer.Group.InstanceId, "dynamic membership by default")
	require.Equal(t, 10*time.Second, k.config.Consumer.Group.Session.Timeout, "sarama's default, as with Telegraf's plugin")
	require.Equal(t, 3*time.Second, k.config.Consumer.Group.Heartbeat.Interval)

	for timeout, heartbeat := range map[string]time.Duration{
		"45s": 3 * time.Second, "6s": 2 * time.Second, "7s": 2333 * time.Millisecond, "10ms": 3 * time.Millisecond,
	} {
		k, err := configured(t, table(`session_timeout = "`+timeout+`"`))
		require.NoError(t, err, timeout)
		require.Equal(t, heartbeat, k.config.Consumer.Group.Heartbeat.Interval, timeout)
	}

	k, err = configured(t, table(`kafka_version = "4.1.0"`, `group_instance_id = "telegraf-1.example.com"`, `session_timeout = "1m"`))
	require.NoError(t, err)
	require.Equal(t, "telegraf-1.example.com", k.config.Consumer.Group.InstanceId)
	require.Equal(t, time.Minute, k.config.Consumer.Group.Session.Timeout)
	_, err = configured(t, table(`kafka_version = "2.3.0"`, `group_instance_id = "a"`))
	require.NoError(t, err, "2.3.0 is the first version with static membership")

	// With kafka_version unset, the id waits for the brokers' version.
	k, err = configured(t, table(`group_instance_id = "a"`))
	require.NoError(t, err)
	require.Empty(t, k.config.Consumer.Group.InstanceId)
	k.versionChosen = true
	require.NoError(t, k.useVersion(k.config, sarama.V4_0_0_0))
	require.Equal(t, "a", k.config.Consumer.Group.InstanceId)
	err = k.useVersion(k.config, sarama.V2_2_0_0)
	require.ErrorContains(t, err, `group_instance_id needs kafka_version = "2.3.0" or newer`)
	require.ErrorContains(t, err, `kafka_version is unset, and the brokers were taken for "2.2.0"`)

	// isolation_level needs transactions (Kafka 0.11), like the id waits for the
	// brokers' version when kafka_version is unset.
	k, err = configured(t, table(`isolation_level = "read_committed"`))
	require.NoError(t, err)
	require.Equal(t, sarama.ReadUncommitted, k.config.Consumer.IsolationLevel)
	k.versionChosen = true
	require.NoError(t, k.useVersion(k.config, sarama.V4_0_0_0))
	require.Equal(t, sarama.ReadCommitted, k.config.Consumer.IsolationLevel)
	err = k.useVersion(k.config, sarama.V0_10_2_0)
	require.ErrorContains(t, err, `isolation_level = "read_committed" needs kafka_version = "0.11.0.0" or newer`)
	_, err = configured(t, table(`kafka_version = "0.10.2.0"`, `isolation_level = "read_committed"`))
	require.ErrorContains(t, err, `isolation_level = "read_committed" needs kafka_version = "0.11.0.0" or newer, `+
		`as transactions came with Kafka 0.11, and kafka_version is "0.10.2.0"`)
	_, err = configured(t, table(`isolation_level = "serializable"`))
	require.ErrorContains(t, err, `isolation_level: "serializable" is not one of "read_uncommitted", "read_committed"`)

	// A version that is set is spoken as it is: the brokers are not asked.
	k, err = configured(t, table(`version = "2.6.0"`))
	require.NoError(t, err)
	require.NoError(t, k.chooseVersion())
	require.Equal(t, sarama.V2_6_0_0, k.config.Version)
	_, err = configured(t, table(`kafka_version = "2.2.0"`, `group_instance_id = "a"`))
	require.ErrorContains(t, err, `kafka_version is "2.2.0": set kafka_version to the brokers' version`)
	// Telegraf 1.27's name for it.
	_, err = configured(t, table(`version = "2.2.0"`, `group_instance_id = "a"`))
	require.ErrorContains(t, err, `version is "2.2.0": set kafka_version to the brokers' version`)
	_, err = configured(t, table(`kafka_version = "4.1.0"`, `group_instance_id = "host 1"`))
	require.ErrorContains(t, err, `group_instance_id: "host 1" is not a valid id`)
	_, err = configured(t, table(`session_timeout = "-1s"`))
	require.ErrorContains(t, err, "session_timeout: -1s is negative")
	_, err = configured(t, table(`session_timeout = "1ms"`))
	require.ErrorContains(t, err, "session_timeout: 1ms leaves no room for a heartbeat")
}

// The group's refusals of a member name the option to change, and keep the Kafka
// error for errors.Is.
func TestGroupRefusalsNameTheOption(t *testing.T) {
	k, err := configured(t, "[[inputs.kafka_consumer]]\n  brokers = [\"b:9092\"]\n  topics = [\"t\"]\n"+
		"  kafka_version = \"4.1.0\"\n  consumer_group = \"g\"\n  group_instance_id = \"host-1\"\n  session_timeout = \"2s\"\n")
	require.NoError(t, err)
	fenced := k.explainConnect(&sarama.ConsumerError{Topic: "t", Err: sarama.ErrFencedInstancedId})
	require.ErrorContains(t, fenced, `another consumer joined consumer_group "g" with group_instance_id "host-1": each member needs an id of its own`)
	require.ErrorIs(t, fenced, sarama.ErrFencedInstancedId)
	refused := k.explainConnect(fmt.Errorf("join: %w", sarama.ErrInvalidSessionTimeout))
	require.ErrorContains(t, refused, "session_timeout 2s is outside what the brokers take")
	require.ErrorIs(t, refused, sarama.ErrInvalidSessionTimeout)
}

func TestDecodeLikeTelegraf(t *testing.T) {
	k, err := configured(t, strings.Join([]string{
		"[[inputs.kafka_consumer]]",
		`brokers = ["b:9092"]`,
		`topics = ["t"]`,
		`msg_headers_as_tags = ["a", "name"]`,
		`msg_header_as_metric_name = "name"`,
		`timestamp_source = "outer"`,
		`max_message_len = 40`,
		`namedrop = ["dropped"]`,
	}, "\n"))
	require.NoError(t, err)
	dec, err := k.newDecoder()
	require.NoError(t, err)

	block := time.Unix(42, 0)
	msg := &sarama.ConsumerMessage{Topic: "t", Value: []byte("cpu,host=h value=1i 1\nmem free=2u 2\n"), BlockTimestamp: block,
		Headers: []*sarama.RecordHeader{{Key: []byte("a"), Value: []byte("x y")}, {Key: []byte("name"), Value: []byte("renamed")}}}
	out, err := dec.decode(nil, msg)
	require.NoError(t, err)
	require.Equal(t, "renamed,a=x\\ y,host=h value=1i 42000000000\nrenamed,a=x\\ y free=2u 42000000000\n", string(out))

	msg.Headers = []*sarama.RecordHeader{{Key: []byte("name"), Value: []byte("dropped")}}
	out, err = dec.decode(nil, msg)
	require.NoError(t, err)
	require.Empty(t, out, "namedrop applies after the header renamed the metric")

	_, err = dec.decode(nil, &sarama.ConsumerMessage{Value: []byte(strings.Repeat("x", 41))})
	require.ErrorContains(t, err, "message exceeds max_message_len (actual 41, max 40)")
	_, err = dec.decode(nil, &sarama.ConsumerMessage{Value: []byte("not line protocol")})
	require.Error(t, err)
}

func TestRegisteredWithTelegraf(t *testing.T) {
	creator, ok := inputs.Inputs["kafka_consumer"]
	require.True(t, ok)
	k, ok := creator().(*KafkaConsumer)
	require.True(t, ok, "Telegraf's registry gives this plugin")
	require.Equal(t, New().StallTimeout, k.StallTimeout, "with its defaults")
	require.True(t, k.Ack)
}
