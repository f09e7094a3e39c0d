package kafka_consumer

import (
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/influxdata/telegraf"
	"github.com/stretchr/testify/require"
)

// decodeTimes decodes msg with the table conf and returns the times of its metrics.
func decodeTimes(t *testing.T, conf string, msg *sarama.ConsumerMessage) []time.Time {
	t.Helper()
	k, err := configured(t, "[[inputs.kafka_consumer]]\n  brokers = [\"b:9092\"]\n  topics = [\"t\"]\n"+conf)
	require.NoError(t, err)
	dec, err := k.newDecoder()
	require.NoError(t, err)
	out, err := dec.decode(nil, msg)
	require.NoError(t, err)
	var times []time.Time
	for _, m := range parseLines(t, string(out), func(telegraf.Metric) bool { return true }) {
		times = append(times, m.Time())
	}
	return times
}

// A message without a time of its own takes its record's: the timestamp's
// millisecond, then offset and partition below it; the same on every read, and
// through the fast JSON path, Telegraf's JSON parser and another format alike.
func TestTimelessMessagesTakeTheRecordTime(t *testing.T) {
	produced := time.UnixMilli(1700000000123)
	msg := func(value string) *sarama.ConsumerMessage {
		return &sarama.ConsumerMessage{Topic: "t", Partition: 7, Offset: 123456, Timestamp: produced, Value: []byte(value)}
	}
	want := time.Unix(0, 1700000000123*int64(time.Millisecond)+3456*100+7)
	for _, tc := range []struct{ name, conf, value string }{
		{"json fast path", "  data_format = \"json\"\n", `{"pressure":1.5}`},
		{"json parser", "  data_format = \"json\"\n  json_fast_path = false\n", `{"pressure":1.5}`},
		{"influx without timestamp", "", "sensor pressure=1.5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			first := decodeTimes(t, tc.conf, msg(tc.value))
			require.Len(t, first, 1)
			require.True(t, want.Equal(first[0]), "got %s, want %s", first[0], want)
			require.Equal(t, first, decodeTimes(t, tc.conf, msg(tc.value)), "a replay gets the same time")
		})
	}

	// A time of the message's own stays.
	own := decodeTimes(t, "  data_format = \"json\"\n  json_time_key = \"ts\"\n  json_time_format = \"unix_ms\"\n",
		msg(`{"pressure":1.5,"ts":1600000000000}`))
	require.True(t, time.UnixMilli(1600000000000).Equal(own[0]))
	own = decodeTimes(t, "", msg("sensor pressure=1.5 1600000000000000000"))
	require.True(t, time.Unix(1600000000, 0).Equal(own[0]))

	// parse keeps Telegraf's time of parsing; so does a record without a timestamp.
	before := time.Now()
	parsed := decodeTimes(t, "  data_format = \"json\"\n  timestamp_fallback = \"parse\"\n", msg(`{"pressure":1.5}`))
	require.False(t, parsed[0].Before(before))
	noTimestamp := msg(`{"pressure":1.5}`)
	noTimestamp.Timestamp = time.Time{}
	require.False(t, decodeTimes(t, "  data_format = \"json\"\n", noTimestamp)[0].Before(before))
}

// Records of one topic get distinct times within the documented limits: up to 10,000
// records per partition in one millisecond, on up to 100 partitions.
func TestRecordTimesAreUnique(t *testing.T) {
	seen := make(map[int64]bool)
	ms := time.UnixMilli(1700000000000)
	for partition := int32(0); partition < partitionsPerTopic; partition += 7 {
		for offset := int64(5000); offset < 5000+recordsPerMillisecond; offset++ {
			ts, ok := recordTime(&sarama.ConsumerMessage{Partition: partition, Offset: offset, Timestamp: ms})
			require.True(t, ok)
			require.Equal(t, ms.UnixMilli(), ts.UnixMilli(), "within the record's millisecond")
			require.False(t, seen[ts.UnixNano()], "partition %d offset %d", partition, offset)
			seen[ts.UnixNano()] = true
		}
	}
}

func TestTimestampFallbackDefault(t *testing.T) {
	k, err := configured(t, "[[inputs.kafka_consumer]]\n  brokers = [\"b:9092\"]\n  topics = [\"t\"]\n")
	require.NoError(t, err)
	require.Equal(t, "record", k.TimestampFallback)
	k, err = configured(t, "[[inputs.kafka_consumer]]\n  brokers = [\"b:9092\"]\n  topics = [\"t\"]\n  ack = false\n")
	require.NoError(t, err)
	require.Equal(t, "parse", k.TimestampFallback, "Telegraf's behaviour without the acknowledgement")
	_, err = configured(t, "[[inputs.kafka_consumer]]\n  brokers = [\"b:9092\"]\n  topics = [\"t\"]\n  timestamp_fallback = \"now\"\n")
	require.ErrorContains(t, err, `timestamp_fallback: "now" is not one of`)
}
