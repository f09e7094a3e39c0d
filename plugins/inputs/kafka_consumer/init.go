package kafka_consumer

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/IBM/sarama"

	"github.com/influxdata/telegraf/config"
	"github.com/influxdata/telegraf/plugins/common/kafka"
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
	statsMeasurement           = "kafka_consumer_stats"
)

// Init checks the options, fills in defaults and builds the sarama configuration.
// It does not connect.
func (k *KafkaConsumer) Init() error {
	if k.Log != nil {
		kafka.SetLogger(k.Log.Level())
	}
	if len(k.Brokers) == 0 {
		return errors.New("brokers: at least one broker is needed")
	}
	if len(k.Topics) == 0 && len(k.TopicRegexps) == 0 {
		return errors.New("topics: no topics and no topic_regexps: nothing to consume")
	}
	if k.MaxMessageLen < 0 {
		return fmt.Errorf("max_message_len: %d is negative (0 means unlimited)", k.MaxMessageLen)
	}
	if k.MaxUndeliveredMessages < 0 {
		return fmt.Errorf("max_undelivered_messages: %d is negative", k.MaxUndeliveredMessages)
	}
	if k.MaxUndeliveredMessages == 0 {
		k.MaxUndeliveredMessages = defaultMaxUndeliveredMessages
		if k.Ack {
			k.MaxUndeliveredMessages = defaultAckMaxUndeliveredMessages
		}
	}
	if k.MaxUndeliveredBytes < 0 {
		return fmt.Errorf("max_undelivered_bytes: %d is negative", k.MaxUndeliveredBytes)
	}
	if k.MaxUndeliveredBytes == 0 {
		k.MaxUndeliveredBytes = defaultMaxUndeliveredBytes
	}
	if k.MaxProcessingTime < 0 {
		return fmt.Errorf("max_processing_time: %s is negative", time.Duration(k.MaxProcessingTime))
	}
	if k.MaxProcessingTime == 0 {
		k.MaxProcessingTime = defaultMaxProcessingTime
	}
	if k.ConsumerGroup == "" {
		k.ConsumerGroup = defaultConsumerGroup
	}
	switch k.TimestampSource {
	case "":
		k.TimestampSource = "metric"
	case "metric", "inner", "outer":
	default:
		return fmt.Errorf("timestamp_source: %q is not one of \"metric\", \"inner\", \"outer\"", k.TimestampSource)
	}
	switch k.TimestampFallback {
	case "":
		k.TimestampFallback = "parse"
		if k.Ack {
			k.TimestampFallback = "record"
		}
	case "record", "parse":
	default:
		return fmt.Errorf("timestamp_fallback: %q is not one of \"record\", \"parse\"", k.TimestampFallback)
	}
	k.recordTimes = k.TimestampSource == "metric" && k.TimestampFallback == "record"
	switch strings.ToLower(k.ConnectionStrategy) {
	case "", "startup", "defer":
	default:
		return fmt.Errorf("connection_strategy: %q is not one of \"startup\", \"defer\"", k.ConnectionStrategy)
	}
	if k.ChannelBufferSize < 0 {
		return fmt.Errorf("channel_buffer_size: %d is negative", k.ChannelBufferSize)
	}
	if k.OutputBufferSize < 0 {
		return fmt.Errorf("output_buffer_size: %d is negative", k.OutputBufferSize)
	}
	if k.OutputBufferSize == 0 {
		k.OutputBufferSize = defaultOutputBufferSize
	}
	if k.OutputFlushInterval < 0 {
		return fmt.Errorf("output_flush_interval: %s is negative", time.Duration(k.OutputFlushInterval))
	}
	if k.OutputFlushInterval == 0 {
		k.OutputFlushInterval = defaultOutputFlushInterval
	}
	if k.StatsInterval < 0 {
		return fmt.Errorf("stats_interval: %s is negative (\"0s\" turns the stats off)", time.Duration(k.StatsInterval))
	}
	if k.TopicRefreshInterval < 0 {
		return fmt.Errorf("topic_refresh_interval: %s is negative", time.Duration(k.TopicRefreshInterval))
	}
	if k.AckSocket != "" && !k.Ack {
		return errors.New("ack_socket is set while ack = false: set one or the other")
	}
	if err := checkAckSocket(k.AckSocket); err != nil {
		return err
	}
	if k.AckTimeout < 0 {
		return fmt.Errorf("ack_timeout: %s is negative", time.Duration(k.AckTimeout))
	}
	if k.AckTimeout == 0 {
		k.AckTimeout = config.Duration(defaultAckTimeout)
	}
	if k.MsgKeyAsTag != "" && k.MsgKeyAsTag == k.TopicTag {
		// Which of the two a metric kept would be an accident of order.
		return fmt.Errorf("msg_key_as_tag and topic_tag are both %q: give the key and the topic tags of different names", k.MsgKeyAsTag)
	}
	if k.StallTimeout < 0 {
		return fmt.Errorf("stall_timeout: %s is negative (\"0s\" turns the watchdog off)", time.Duration(k.StallTimeout))
	}
	if k.SessionTimeout < 0 {
		return fmt.Errorf("session_timeout: %s is negative", time.Duration(k.SessionTimeout))
	}
	if k.SessionTimeout == 0 {
		k.SessionTimeout = config.Duration(defaultSessionTimeout)
	}
	if k.DeadLetterTopic != "" {
		for _, t := range k.Topics {
			if t == k.DeadLetterTopic {
				return fmt.Errorf("dead_letter_topic: %q is also in topics: poison messages would come back forever", t)
			}
		}
	}

	k.regexps = k.regexps[:0]
	for _, expr := range k.TopicRegexps {
		re, err := regexp.Compile(expr)
		if err != nil {
			return fmt.Errorf("topic_regexps: %q: %w", expr, err)
		}
		k.regexps = append(k.regexps, re)
	}

	k.headerTags = make(map[string]bool, len(k.MsgHeadersAsTags))
	for _, h := range k.MsgHeadersAsTags {
		// As in Telegraf, the header that names the metric is not also a tag.
		if h != k.MsgHeaderAsMetricName {
			k.headerTags[h] = true
		}
	}

	mod, err := k.generalOptions.modifier()
	if err != nil {
		return err
	}
	k.modifier = mod

	cfg, err := k.saramaConfig()
	if err != nil {
		return err
	}
	k.config = cfg
	if k.newConsumer == nil {
		k.newConsumer = sarama.NewConsumerGroup
	}
	return nil
}

// saramaConfig builds the client configuration as Telegraf's plugin does, then applies
// this plugin's tuning options.
func (k *KafkaConsumer) saramaConfig() (*sarama.Config, error) {
	cfg := sarama.NewConfig()
	// Kafka 0.10.2.0 is the oldest with consumer groups; Telegraf's default.
	cfg.Version = sarama.V0_10_2_0
	if k.Version != "" {
		v, err := sarama.ParseKafkaVersion(k.Version)
		if err != nil {
			return nil, fmt.Errorf("kafka_version: %w", err)
		}
		cfg.Version = v
	}
	if err := k.SetConfig(cfg, k.Log); err != nil {
		return nil, fmt.Errorf("kafka client options: %w", err)
	}

	switch strings.ToLower(k.Offset) {
	case "oldest", "":
		cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	case "newest":
		cfg.Consumer.Offsets.Initial = sarama.OffsetNewest
	default:
		return nil, fmt.Errorf("offset: %q is not one of \"oldest\", \"newest\"", k.Offset)
	}
	switch strings.ToLower(k.BalanceStrategy) {
	case "range", "":
		cfg.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{sarama.NewBalanceStrategyRange()}
	case "roundrobin":
		cfg.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{sarama.NewBalanceStrategyRoundRobin()}
	case "sticky":
		cfg.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{sarama.NewBalanceStrategySticky()}
	default:
		return nil, fmt.Errorf("balance_strategy: %q is not one of \"range\", \"roundrobin\", \"sticky\"", k.BalanceStrategy)
	}
	if err := k.membership(cfg); err != nil {
		return nil, err
	}
	if err := k.isolation(cfg); err != nil {
		return nil, err
	}
	cfg.Net.ResolveCanonicalBootstrapServers = k.ResolveCanonicalBootstrapServersOnly
	cfg.Consumer.MaxProcessingTime = time.Duration(k.MaxProcessingTime)
	if k.ConsumerFetchDefault != 0 {
		cfg.Consumer.Fetch.Default = int32(k.ConsumerFetchDefault)
	}

	if k.ConsumerFetchMin != 0 {
		cfg.Consumer.Fetch.Min = int32(k.ConsumerFetchMin)
	}
	if k.ConsumerFetchMax != 0 {
		cfg.Consumer.Fetch.Max = int32(k.ConsumerFetchMax)
	}
	if k.ConsumerMaxWaitTime != 0 {
		cfg.Consumer.MaxWaitTime = time.Duration(k.ConsumerMaxWaitTime)
	}
	if k.ChannelBufferSize > 0 {
		cfg.ChannelBufferSize = k.ChannelBufferSize
	}
	// What sarama fetched ahead of the claims gets a quarter of what the window holds.
	k.fetch = newFetchBudget(int64(k.MaxUndeliveredBytes) / 4)
	cfg.Consumer.Interceptors = append(cfg.Consumer.Interceptors, k.fetch)
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("kafka client options: %w", err)
	}
	return cfg, nil
}
