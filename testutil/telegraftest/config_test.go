package telegraftest

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestTables(t *testing.T) {
	require.Equal(t, `[[inputs.kafka_consumer]]
  brokers = ["127.0.0.1:9092"]
  topics = ["a", "b"]
  consumer_group = "g"
  offset = "oldest"
  data_format = "json"
  json_time_key = "ts"
`, KafkaConsumer{Brokers: []string{"127.0.0.1:9092"}, Topics: []string{"a", "b"}, ConsumerGroup: "g",
		Offset: "oldest", DataFormat: "json", More: `  json_time_key = "ts"`}.String())
	require.Equal(t, `[[outputs.cnosdb]]
  urls = ["http://127.0.0.1:8902"]
  database = "db"
  username = "root"
  password = ""
`, CnosDB{URLs: []string{"http://127.0.0.1:8902"}, Database: "db", Username: "root"}.String())
	require.Equal(t, "[[outputs.cnosdb]]\n", CnosDB{}.String(), "nothing set, the plugin's defaults")
}
