package kafka_consumer

import (
	"os"
	"time"

	"github.com/influxdata/telegraf/config"
)

// Telegraf's defaults.
const (
	defaultMaxUndeliveredMessages = 1000
	defaultMaxProcessingTime      = config.Duration(100 * time.Millisecond)
	defaultConsumerGroup          = "telegraf_metrics_consumers"
)

// Defaults of this plugin's own options.
const (
	// defaultAckMaxUndeliveredMessages replaces Telegraf's 1000 with the
	// acknowledgement on, when messages are undelivered until CnosDB has them. The
	// window must cover what is in flight over one round trip (Kafka, Telegraf, a
	// batch filling, a request, the confirmation): at 10000 the pair moved 131,000
	// sensor messages/s into a CnosDB that charges per request, at 20000 197,000.
	// Telegraf's buffer does not hold them all: telegraf-cnosdb reads stdin on until
	// 8 full batches are queued and one fills, besides those in flight (at least
	// 18000 lines), so Telegraf's buffer holds at most these messages and their
	// markers (markersPerSlots) less that, 4500, below its default
	// metric_buffer_limit of 10000.
	defaultAckMaxUndeliveredMessages = 20000
	// markersPerSlots: at most one marker waits for "done" per this many
	// max_undelivered_messages, so that markers take at most an eighth more room in
	// Telegraf's buffer however slowly messages come.
	markersPerSlots = 8
	// defaultMaxUndeliveredBytes bounds the line protocol the input keeps for the
	// messages not yet confirmed. Messages of a few hundred bytes never reach it (20000
	// of them are a few MiB); with messages of 1 MiB it holds 64 of them, and with
	// what sarama may fetch ahead (a quarter of it, see fetchBudget) the process stays
	// well under 256 MiB.
	defaultMaxUndeliveredBytes = config.Size(64 << 20)
	defaultChannelBufferSize   = 1024
	defaultOutputBufferSize    = config.Size(64 << 10)
	defaultOutputFlushInterval = config.Duration(time.Millisecond)
	defaultStatsInterval       = config.Duration(30 * time.Second)
	// defaultAckTimeout is how long outstanding batches may go unacknowledged before
	// an error is logged.
	defaultAckTimeout = time.Minute
	// defaultSessionTimeout is sarama's, which Telegraf's plugin uses without naming
	// it: a member whose heartbeats stop for this long is dropped from the group, and
	// its partitions go to the others.
	defaultSessionTimeout = 10 * time.Second
	// defaultStallTimeout: see stall.go.
	defaultStallTimeout = config.Duration(5 * time.Minute)
	statsMeasurement    = "kafka_consumer_stats"
)

// New returns the plugin with the defaults of the options whose zero value means
// something of its own ("0s" turns the stats and the stall watchdog off, false turns
// ack off); setDefaults gives the others theirs in Init, when the configuration left
// them at zero, as Telegraf's plugin does.
func New() *KafkaConsumer {
	return &KafkaConsumer{
		ChannelBufferSize:   defaultChannelBufferSize,
		OutputBufferSize:    defaultOutputBufferSize,
		OutputFlushInterval: defaultOutputFlushInterval,
		StatsInterval:       defaultStatsInterval,
		StallTimeout:        defaultStallTimeout,
		JSONFastPath:        true,
		Ack:                 true,
		Out:                 os.Stdout,
	}
}

// setDefaults fills in the options the configuration left at zero. Two follow ack:
// with the acknowledgement on, a message stays undelivered until CnosDB has it, which
// takes a larger window, and a metric without a time of its own takes its record's,
// so that a message read again writes the same row.
func (k *KafkaConsumer) setDefaults() {
	if k.MaxUndeliveredMessages == 0 {
		k.MaxUndeliveredMessages = defaultMaxUndeliveredMessages
		if k.Ack {
			k.MaxUndeliveredMessages = defaultAckMaxUndeliveredMessages
		}
	}
	if k.MaxUndeliveredBytes == 0 {
		k.MaxUndeliveredBytes = defaultMaxUndeliveredBytes
	}
	if k.MaxProcessingTime == 0 {
		k.MaxProcessingTime = defaultMaxProcessingTime
	}
	if k.ConsumerGroup == "" {
		k.ConsumerGroup = defaultConsumerGroup
	}
	if k.TimestampSource == "" {
		k.TimestampSource = "metric"
	}
	if k.TimestampFallback == "" {
		k.TimestampFallback = "parse"
		if k.Ack {
			k.TimestampFallback = "record"
		}
	}
	if k.OutputBufferSize == 0 {
		k.OutputBufferSize = defaultOutputBufferSize
	}
	if k.OutputFlushInterval == 0 {
		k.OutputFlushInterval = defaultOutputFlushInterval
	}
	if k.AckTimeout == 0 {
		k.AckTimeout = config.Duration(defaultAckTimeout)
	}
	if k.SessionTimeout == 0 {
		k.SessionTimeout = config.Duration(defaultSessionTimeout)
	}
}
