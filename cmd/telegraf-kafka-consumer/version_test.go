package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/testutil/kafkatest"
)

// A stock table for Kafka 4 without kafka_version: stock Telegraf logs EOF every two
// seconds and reads nothing; the command asks the broker and reads every message.
func TestStockTableWithoutKafkaVersionReadsKafka4(t *testing.T) {
	b := kafkatest.Start(t, kafkatest.Options{})
	topic := kafkatest.UniqueName(t, "untuned")
	b.CreateTopic(t, topic, 2)
	const n = 50
	values := make([][]byte, n)
	for i := range values {
		values[i] = fmt.Appendf(nil, "untuned i=%di", i)
	}
	b.Produce(t, topic, values...)

	conf := writeConfig(t, fmt.Sprintf(`[[inputs.kafka_consumer]]
  brokers = [%q]
  topics = [%q]
  consumer_group = %q
  data_format = "influx"
  ack = false
`, b.Addr(), topic, kafkatest.UniqueName(t, "g")))
	p := startConsumer(t, conf)
	p.waitStdout(t, "untuned ", n)
	_, stderr := p.stop(t)
	require.Contains(t, stderr, "I! [inputs.kafka_consumer] kafka_version unset: the broker at "+b.Addr()+
		" serves Kafka 4.x APIs (Fetch from v4 only); using 4.0.0\n")
	require.NotContains(t, stderr, "EOF")
	require.False(t, strings.Contains(stderr, "E! "), stderr)
}
