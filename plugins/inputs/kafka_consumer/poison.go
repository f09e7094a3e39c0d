package kafka_consumer

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/IBM/sarama"

	"github.com/influxdata/telegraf"
)

// Headers a dead-lettered message carries besides its own.
const (
	headerSourceTopic     = "kafka_consumer.source_topic"
	headerSourcePartition = "kafka_consumer.source_partition"
	headerSourceOffset    = "kafka_consumer.source_offset"
	headerError           = "kafka_consumer.error"
)

// deadLetter copies poison messages to a topic with a synchronous producer, so that a
// message is marked only once the copy is stored.
type deadLetter struct {
	topic    string
	producer sarama.SyncProducer
}

func newDeadLetter(brokers []string, base *sarama.Config, topic string) (*deadLetter, error) {
	cfg := *base
	cfg.Producer.Return.Successes = true
	cfg.Producer.Return.Errors = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	// Keep the message as it came: its value was too long or unparsable, not
	// something to recompress or resize.
	cfg.Producer.MaxMessageBytes = max(cfg.Producer.MaxMessageBytes, int(sarama.MaxRequestSize)-1024)
	producer, err := sarama.NewSyncProducer(brokers, &cfg)
	if err != nil {
		return nil, fmt.Errorf("dead_letter_topic %q: creating producer: %w", topic, err)
	}
	return &deadLetter{topic: topic, producer: producer}, nil
}

// send produces a copy of msg with headers naming where it came from and why it was
// refused. It retries until the broker takes it or ctx ends; in the latter case the
// message stays unmarked and the partition's next owner meets it again.
func (d *deadLetter) send(ctx context.Context, msg *sarama.ConsumerMessage, cause error, log telegraf.Logger) error {
	headers := make([]sarama.RecordHeader, 0, len(msg.Headers)+4)
	for _, h := range msg.Headers {
		headers = append(headers, *h)
	}
	headers = append(headers,
		sarama.RecordHeader{Key: []byte(headerSourceTopic), Value: []byte(msg.Topic)},
		sarama.RecordHeader{Key: []byte(headerSourcePartition), Value: strconv.AppendInt(nil, int64(msg.Partition), 10)},
		sarama.RecordHeader{Key: []byte(headerSourceOffset), Value: strconv.AppendInt(nil, msg.Offset, 10)},
		sarama.RecordHeader{Key: []byte(headerError), Value: []byte(cause.Error())},
	)
	pm := &sarama.ProducerMessage{Topic: d.topic, Headers: headers, Timestamp: msg.Timestamp}
	if msg.Key != nil {
		pm.Key = sarama.ByteEncoder(msg.Key)
	}
	if msg.Value != nil {
		pm.Value = sarama.ByteEncoder(msg.Value)
	}
	backoff := 250 * time.Millisecond
	for {
		_, _, err := d.producer.SendMessage(pm)
		if err == nil {
			return nil
		}
		log.Errorf("dead_letter_topic %q: producing the message from topic %q partition %d offset %d: %v; retrying in %v",
			d.topic, msg.Topic, msg.Partition, msg.Offset, err, backoff)
		select {
		case <-ctx.Done():
			return fmt.Errorf("dead_letter_topic %q: giving up on the message from topic %q partition %d offset %d: %w",
				d.topic, msg.Topic, msg.Partition, msg.Offset, ctx.Err())
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 10*time.Second)
	}
}

func (d *deadLetter) close() error {
	return d.producer.Close()
}
