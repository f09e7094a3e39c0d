package kafka_consumer

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"

	"github.com/influxdata/telegraf"

	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/testutil/kafkatest"
)

// keyPaths are the ways decode writes a message: the fast JSON path straight to line
// protocol, the fast path through metrics (with a header tag, which the direct
// path does not serve), Telegraf's json parser, and another format from Telegraf's
// parser registry.
var keyPaths = []struct {
	name, conf, value string
	direct            bool
}{
	{"json direct", "  data_format = \"json\"\n  tag_keys = [\"key\", \"host\"]\n",
		`{"host":"h1","key":"from the message","v":1.5}`, true},
	{"json fast metrics", "  data_format = \"json\"\n  tag_keys = [\"key\", \"host\"]\n  msg_headers_as_tags = [\"none\"]\n",
		`{"host":"h1","key":"from the message","v":1.5}`, false},
	{"json parser", "  data_format = \"json\"\n  tag_keys = [\"key\", \"host\"]\n  json_fast_path = false\n",
		`{"host":"h1","key":"from the message","v":1.5}`, false},
	{"influx", "", "m,host=h1,key=from\\ the\\ message v=1.5 1700000000000000000", false},
}

// decodeKeyed decodes value with key on the table conf and returns the metrics.
func decodeKeyed(t *testing.T, conf, value string, key []byte, direct bool) []telegraf.Metric {
	t.Helper()
	k, err := configured(t, "[[inputs.kafka_consumer]]\n  brokers = [\"b:9092\"]\n  topics = [\"t\"]\n"+conf)
	require.NoError(t, err)
	dec, err := k.newDecoder()
	require.NoError(t, err)
	require.Equal(t, direct, dec.direct, "the path under test")
	msg := &sarama.ConsumerMessage{Topic: "sea", Key: key, Value: []byte(value), Timestamp: time.UnixMilli(1700000000000)}
	out, err := dec.decode(nil, msg)
	require.NoError(t, err)
	require.True(t, strings.HasSuffix(string(out), "\n"))
	return parseLines(t, string(out), func(telegraf.Metric) bool { return true })
}

// msg_key_as_tag gives every path the same tag: the key as it is, escaped so that
// spaces, commas and equals signs survive; "0x" and hex for a key that is not UTF-8;
// and no tag for a message without a key, which keeps the message's own tag.
func TestMsgKeyAsTagOnEveryPath(t *testing.T) {
	for _, path := range keyPaths {
		t.Run(path.name, func(t *testing.T) {
			conf := path.conf + "  msg_key_as_tag = \"key\"\n  topic_tag = \"topic\"\n"
			for _, tc := range []struct {
				name string
				key  []byte
				want string // the tag key; "" for the message's own
			}{
				{"plain", []byte("buoy-7"), "buoy-7"},
				{"escaping", []byte(`a b,c=d "e" ü`), `a b,c=d "e" ü`},
				// As in every tag, Telegraf's serializer writes a tab or a newline
				// as a backslash and a letter, which keeps the line one line;
				// parsers read them back as written.
				{"control characters", []byte("tab\there\nnewline"), `tab\there\nnewline`},
				{"not UTF-8", []byte{0xff, 0x00, 'k', 0x80}, "0xff006b80"},
				{"no key", nil, "from the message"},
				{"empty key", []byte{}, "from the message"},
			} {
				got := decodeKeyed(t, conf, path.value, tc.key, path.direct)
				require.Len(t, got, 1, tc.name)
				require.Equal(t, map[string]string{"host": "h1", "key": tc.want, "topic": "sea"}, got[0].Tags(), tc.name)
			}
		})
	}
}

// Without the option the key is no tag, and the message's own tag stays.
func TestMsgKeyAsTagOff(t *testing.T) {
	for _, path := range keyPaths {
		got := decodeKeyed(t, path.conf, path.value, []byte("buoy-7"), path.direct)
		require.Equal(t, map[string]string{"host": "h1", "key": "from the message"}, got[0].Tags(), path.name)
	}
}

// The direct path writes the key's tag in its place among the message's tags, byte
// for byte as the metric path does, wherever its name sorts.
func TestMsgKeyAsTagDirectMatchesMetrics(t *testing.T) {
	for _, name := range []string{"0first", "host", "k", "topic", "zz"} {
		table := "[[inputs.kafka_consumer]]\n  brokers = [\"b:9092\"]\n  topics = [\"t\"]\n  data_format = \"json\"\n" +
			"  tag_keys = [\"key\", \"host\"]\n  timestamp_source = \"inner\"\n  msg_key_as_tag = \"" + name + "\"\n"
		if name != "topic" {
			table += "  topic_tag = \"topic\"\n"
		}
		var outs []string
		for _, fast := range []string{"true", "false"} {
			k, err := configured(t, table+"  json_fast_path = "+fast+"\n")
			require.NoError(t, err)
			dec, err := k.newDecoder()
			require.NoError(t, err)
			require.Equal(t, fast == "true", dec.direct)
			msg := &sarama.ConsumerMessage{Topic: "sea", Key: []byte("k=1, 2"), Timestamp: time.UnixMilli(1700000000000),
				Value: []byte(`{"host":"h1","key":"from the message","v":1.5}`)}
			out, err := dec.decode(nil, msg)
			require.NoError(t, err)
			outs = append(outs, string(out))
		}
		require.Equal(t, outs[1], outs[0], "msg_key_as_tag = %q", name)
	}
}

func TestMsgKeyAsTagAndTopicTagDiffer(t *testing.T) {
	_, err := configured(t, "[[inputs.kafka_consumer]]\n  brokers = [\"b:9092\"]\n  topics = [\"t\"]\n"+
		"  msg_key_as_tag = \"source\"\n  topic_tag = \"source\"\n")
	require.ErrorContains(t, err, `msg_key_as_tag and topic_tag are both "source"`)
}

// Keyed messages read from the broker carry their key as a tag on the fast JSON path,
// through Telegraf's json parser and through the influx parser; a message without a
// key, or with an empty one, gets none.
func TestMsgKeyAsTagFromBroker(t *testing.T) {
	b := kafkatest.Shared(t)
	keys := []struct {
		key  []byte
		want string // "" for no tag
	}{
		{[]byte("buoy-7"), "buoy-7"},
		{[]byte("a b,c=d"), "a b,c=d"},
		{[]byte{0xff, 0xfe, 'x'}, "0xfffe78"},
		{nil, ""},
		{[]byte{}, ""},
	}
	jsonTopic := kafkatest.UniqueName(t, "keys-json")
	influxTopic := kafkatest.UniqueName(t, "keys-influx")
	for _, topic := range []string{jsonTopic, influxTopic} {
		b.CreateTopic(t, topic, 2)
		msgs := make([]kafkatest.Message, len(keys))
		for i, k := range keys {
			value := fmt.Sprintf(`{"i":%d}`, i)
			if topic == influxTopic {
				value = fmt.Sprintf("kafka_consumer i=%d", i)
			}
			msgs[i] = kafkatest.Message{Key: k.key, Value: []byte(value)}
		}
		b.ProduceMessages(t, topic, msgs...)
	}

	for _, path := range []struct{ name, topic, conf string }{
		{"json fast path", jsonTopic, `data_format = "json"`},
		{"json parser", jsonTopic, "data_format = \"json\"\njson_fast_path = false"},
		{"influx", influxTopic, `data_format = "influx"`},
	} {
		t.Run(path.name, func(t *testing.T) {
			group := kafkatest.UniqueName(t, "g")
			r := start(t, tableFor(b, path.topic, group, path.conf, `msg_key_as_tag = "key"`))
			waitFor(t, "every message", func() bool { return len(r.out.metrics(t)) >= len(keys) })
			r.k.Stop()
			got := r.out.metrics(t)
			require.Len(t, got, len(keys))
			for _, m := range got {
				v, ok := m.GetField("i")
				require.True(t, ok)
				var i int
				switch v := v.(type) {
				case float64:
					i = int(v)
				case int64:
					i = int(v)
				}
				want := map[string]string{}
				if keys[i].want != "" {
					want["key"] = keys[i].want
				}
				require.Equal(t, want, m.Tags(), "message %d", i)
			}
		})
	}
}
