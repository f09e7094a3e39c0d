package kafka_consumer

import (
	"fmt"
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/testutil/kafkatest"
)

// TestTopicRegexpsFollowNewTopics: topics that match topic_regexps are read, those
// created later too once topic_refresh_interval finds them, and the dead-letter topic
// never, though it matches.
func TestTopicRegexpsFollowNewTopics(t *testing.T) {
	b := kafkatest.Shared(t)
	prefix := kafkatest.UniqueName(t, "re")
	first, later, dlq := prefix+"-first", prefix+"-later", prefix+"-dlq"
	group := kafkatest.UniqueName(t, "g")
	b.CreateTopic(t, first, 1)
	b.CreateTopic(t, dlq, 1)
	b.Produce(t, first, []byte(sensorLine(0)), []byte(sensorLine(1)))
	b.Produce(t, dlq, []byte(sensorLine(2)))

	r := start(t, fmt.Sprintf(`[[inputs.kafka_consumer]]
  brokers = [%q]
  topic_regexps = [%q]
  consumer_group = %q
  kafka_version = "4.1.0"
  offset = "oldest"
  topic_refresh_interval = "200ms"
  dead_letter_topic = %q
  data_format = "json"
  topic_tag = "topic"
  stats_interval = "0s"
  ack = false
`, b.Addr(), "^"+regexp.QuoteMeta(prefix)+"-", group, dlq))
	waitFor(t, "the first topic", func() bool { return len(r.out.metrics(t)) >= 2 })

	b.CreateTopic(t, later, 1)
	b.Produce(t, later, []byte(sensorLine(3)))
	waitFor(t, "the topic created later", func() bool { return len(r.out.metrics(t)) >= 3 })
	r.k.Stop()

	byTopic := map[string][]int64{}
	for _, m := range r.out.metrics(t) {
		topic, _ := m.GetTag("topic")
		v, _ := m.GetField("visibility")
		byTopic[topic] = append(byTopic[topic], int64(v.(float64)))
	}
	require.Equal(t, map[string][]int64{first: {0, 1}, later: {3}}, byTopic)
}
