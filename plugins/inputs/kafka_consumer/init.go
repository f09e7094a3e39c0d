package kafka_consumer

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/IBM/sarama"

	"github.com/influxdata/telegraf/plugins/common/kafka"
)

// Init checks the options, fills in defaults and builds the sarama configuration.
// It does not connect.
func (k *KafkaConsumer) Init() error {
	if k.Log != nil {
		kafka.SetLogger(k.Log.Level())
	}
	if err := k.validate(); err != nil {
		return err
	}
	k.setDefaults()
	return k.derive()
}

// validate checks the options as the configuration gives them; an error names the
// option.
func (k *KafkaConsumer) validate() error {
	if len(k.Brokers) == 0 {
		return errors.New("brokers: at least one broker is needed")
	}
	if len(k.Topics) == 0 && len(k.TopicRegexps) == 0 {
		return errors.New("topics: no topics and no topic_regexps: nothing to consume")
	}
	for _, c := range []struct {
		option   string
		negative bool
		value    string
	}{
		{"max_message_len", k.MaxMessageLen < 0, fmt.Sprint(k.MaxMessageLen) + " is negative (0 means unlimited)"},
		{"max_undelivered_messages", k.MaxUndeliveredMessages < 0, fmt.Sprint(k.MaxUndeliveredMessages) + " is negative"},
		{"max_undelivered_bytes", k.MaxUndeliveredBytes < 0, fmt.Sprintf("%d", k.MaxUndeliveredBytes) + " is negative"},
		{"max_processing_time", k.MaxProcessingTime < 0, time.Duration(k.MaxProcessingTime).String() + " is negative"},
		{"channel_buffer_size", k.ChannelBufferSize < 0, fmt.Sprint(k.ChannelBufferSize) + " is negative"},
		{"output_buffer_size", k.OutputBufferSize < 0, fmt.Sprintf("%d", k.OutputBufferSize) + " is negative"},
		{"output_flush_interval", k.OutputFlushInterval < 0, time.Duration(k.OutputFlushInterval).String() + " is negative"},
		{"stats_interval", k.StatsInterval < 0, time.Duration(k.StatsInterval).String() + ` is negative ("0s" turns the stats off)`},
		{"topic_refresh_interval", k.TopicRefreshInterval < 0, time.Duration(k.TopicRefreshInterval).String() + " is negative"},
		{"ack_timeout", k.AckTimeout < 0, time.Duration(k.AckTimeout).String() + " is negative"},
		{"stall_timeout", k.StallTimeout < 0, time.Duration(k.StallTimeout).String() + ` is negative ("0s" turns the watchdog off)`},
		{"session_timeout", k.SessionTimeout < 0, time.Duration(k.SessionTimeout).String() + " is negative"},
	} {
		if c.negative {
			return fmt.Errorf("%s: %s", c.option, c.value)
		}
	}
	if err := k.validateChoices(); err != nil {
		return err
	}
	if k.AckSocket != "" && !k.Ack {
		return errors.New("ack_socket is set while ack = false: set one or the other")
	}
	if err := checkAckSocket(k.AckSocket); err != nil {
		return err
	}
	if k.MsgKeyAsTag != "" && k.MsgKeyAsTag == k.TopicTag {
		// Which of the two a metric kept would be an accident of order.
		return fmt.Errorf("msg_key_as_tag and topic_tag are both %q: give the key and the topic tags of different names", k.MsgKeyAsTag)
	}
	if k.DeadLetterTopic != "" && slices.Contains(k.Topics, k.DeadLetterTopic) {
		return fmt.Errorf("dead_letter_topic: %q is also in topics: poison messages would come back forever", k.DeadLetterTopic)
	}
	return nil
}

// validateChoices checks the options that take one of a few words.
func (k *KafkaConsumer) validateChoices() error {
	switch k.TimestampSource {
	case "", "metric", "inner", "outer":
	default:
		return fmt.Errorf("timestamp_source: %q is not one of \"metric\", \"inner\", \"outer\"", k.TimestampSource)
	}
	switch k.TimestampFallback {
	case "", "record", "parse":
	default:
		return fmt.Errorf("timestamp_fallback: %q is not one of \"record\", \"parse\"", k.TimestampFallback)
	}
	switch strings.ToLower(k.ConnectionStrategy) {
	case "", "startup", "defer":
	default:
		return fmt.Errorf("connection_strategy: %q is not one of \"startup\", \"defer\"", k.ConnectionStrategy)
	}
	return nil
}

// derive builds what the options imply: the topic expressions, the header tags, the
// metric modifier and the sarama configuration.
func (k *KafkaConsumer) derive() error {
	k.recordTimes = k.TimestampSource == "metric" && k.TimestampFallback == "record"
	topics, err := newTopicList(k.Topics, k.TopicRegexps, k.DeadLetterTopic, k.Log)
	if err != nil {
		return fmt.Errorf("topic_regexps: %w", err)
	}
	k.topics = topics

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
