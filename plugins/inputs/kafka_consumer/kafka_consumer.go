// Package kafka_consumer is a drop-in for Telegraf's kafka_consumer input that runs
// outside Telegraf, under [[inputs.execd]], and writes line protocol to stdout.
//
// It takes every option of Telegraf's plugin with the same meaning and default, and
// parses with Telegraf's own parsers, so a stock [[inputs.kafka_consumer]] table gives
// the same metrics. It differs where Telegraf's plugin is slow or lossy: partitions are
// parsed in parallel, metrics reach stdout in large writes, an offset is marked only
// once every metric of its message and of every earlier message is on stdout,
// messages that fail to parse can go to a dead-letter topic, and the plugin reports its
// own throughput and lag as metrics.
package kafka_consumer

import (
	"context"
	_ "embed"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"

	"github.com/influxdata/telegraf"
	"github.com/influxdata/telegraf/config"
	"github.com/influxdata/telegraf/plugins/common/kafka"
	"github.com/influxdata/telegraf/plugins/inputs"

	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/internal/lograte"
	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/internal/pluginconf"
)

//go:embed sample.conf
var sampleConfig string

// KafkaConsumer reads metrics from Kafka topics.
type KafkaConsumer struct {
	// Telegraf's options, with its names and defaults.
	Brokers                              []string        `toml:"brokers"`
	Version                              string          `toml:"kafka_version"`
	ConsumerGroup                        string          `toml:"consumer_group"`
	MaxMessageLen                        int             `toml:"max_message_len"`
	MaxUndeliveredMessages               int             `toml:"max_undelivered_messages"`
	MaxProcessingTime                    config.Duration `toml:"max_processing_time"`
	Offset                               string          `toml:"offset"`
	BalanceStrategy                      string          `toml:"balance_strategy"`
	Topics                               []string        `toml:"topics"`
	TopicRegexps                         []string        `toml:"topic_regexps"`
	TopicTag                             string          `toml:"topic_tag"`
	MsgHeadersAsTags                     []string        `toml:"msg_headers_as_tags"`
	MsgHeaderAsMetricName                string          `toml:"msg_header_as_metric_name"`
	TimestampSource                      string          `toml:"timestamp_source"`
	TimestampFallback                    string          `toml:"timestamp_fallback"`
	ConsumerFetchDefault                 config.Size     `toml:"consumer_fetch_default"`
	ConnectionStrategy                   string          `toml:"connection_strategy"`
	ResolveCanonicalBootstrapServersOnly bool            `toml:"resolve_canonical_bootstrap_servers_only"`
	kafka.ReadConfig

	// Options of this plugin.
	MsgKeyAsTag          string          `toml:"msg_key_as_tag"`
	MaxUndeliveredBytes  config.Size     `toml:"max_undelivered_bytes"`
	TopicRefreshInterval config.Duration `toml:"topic_refresh_interval"`
	ConsumerFetchMin     config.Size     `toml:"consumer_fetch_min"`
	ConsumerFetchMax     config.Size     `toml:"consumer_fetch_max"`
	ConsumerMaxWaitTime  config.Duration `toml:"consumer_max_wait_time"`
	ChannelBufferSize    int             `toml:"channel_buffer_size"`
	OutputBufferSize     config.Size     `toml:"output_buffer_size"`
	OutputFlushInterval  config.Duration `toml:"output_flush_interval"`
	DeadLetterTopic      string          `toml:"dead_letter_topic"`
	StatsInterval        config.Duration `toml:"stats_interval"`
	JSONFastPath         bool            `toml:"json_fast_path"`
	Ack                  bool            `toml:"ack"`
	AckSocket            string          `toml:"ack_socket"`
	AckTimeout           config.Duration `toml:"ack_timeout"`
	GroupInstanceID      string          `toml:"group_instance_id"`
	SessionTimeout       config.Duration `toml:"session_timeout"`
	StallTimeout         config.Duration `toml:"stall_timeout"`
	IsolationLevel       string          `toml:"isolation_level"`

	pluginconf.ParserOptions
	generalOptions

	Log telegraf.Logger `toml:"-"`
	// Out receives the line protocol; os.Stdout unless set before Start.
	Out io.Writer `toml:"-"`

	// testMode keeps the consumer from marking offsets (telegraf-kafka-consumer -test).
	testMode bool
	// idleInterval is how often idle partitions are looked at (idle.go):
	// idleMarkInterval, but in tests.
	idleInterval time.Duration
	// recordTimes gives metrics without a time of their own the record's (see
	// recordTime).
	recordTimes bool

	config        *sarama.Config
	versionChosen bool // kafka_version unset, and the brokers were asked (chooseVersion)
	refusal       refusalState
	parserFunc    telegraf.ParserFunc
	modifier      *modifier
	headerTags    map[string]bool
	newConsumer   func(brokers []string, group string, cfg *sarama.Config) (sarama.ConsumerGroup, error)
	window        *window      // max_undelivered_messages and _bytes: a slot per message read and not yet done
	fetch         *fetchBudget // bounds what sarama fetched and no claim took yet
	writer        *writer
	stats         *stats
	deadLetter    *deadLetter
	poisonLog     *lograte.Limiter // poison messages and those without metrics
	topics        *topicList
	acker         *acker     // nil with ack = false
	ackServer     *ackServer // nil with ack = false
	ackDir        string     // the private directory of the socket when ack_socket is not set

	acc        telegraf.Accumulator
	cancel     context.CancelFunc
	failed     chan struct{} // closed when writing to Out failed
	failedOnce sync.Once
	wg         sync.WaitGroup
	stopped    atomic.Bool
	backlogged atomic.Int64 // partitions with messages waiting to be processed

	progressMu sync.Mutex
	progress   map[topicPartition]*progress
}

// SampleConfig returns the documented configuration.
func (*KafkaConsumer) SampleConfig() string { return sampleConfig }

// The input registers under Telegraf's own name, as a drop-in: a binary that
// imports this package and not Telegraf's kafka_consumer gets this one.
func init() {
	inputs.Add("kafka_consumer", func() telegraf.Input { return New() })
}

// SetParserFunc sets the function that builds a parser for each partition; parsers
// are not safe for concurrent use, and partitions are parsed in parallel.
func (k *KafkaConsumer) SetParserFunc(fn telegraf.ParserFunc) { k.parserFunc = fn }

// SetParser sets one parser for every partition, for callers that have no
// ParserFunc; partitions then take turns with it.
func (k *KafkaConsumer) SetParser(p telegraf.Parser) {
	var mu sync.Mutex
	shared := &lockedParser{mu: &mu, Parser: p}
	k.parserFunc = func() (telegraf.Parser, error) { return shared, nil }
}

// Gather does nothing: metrics are written as messages arrive.
func (*KafkaConsumer) Gather(telegraf.Accumulator) error { return nil }

// lockedParser serialises the use of one parser.
type lockedParser struct {
	mu *sync.Mutex
	telegraf.Parser
}

func (p *lockedParser) Parse(buf []byte) ([]telegraf.Metric, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.Parser.Parse(buf)
}
