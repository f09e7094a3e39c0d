package kafka_consumer

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"

	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/internal/lograte"
	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/internal/offsets"
)

// BenchmarkConsume measures a partition's whole loop per message, as the consumer
// runs it: the hand-off from sarama's goroutine over a channel and its count in the
// fetch budget, the max_undelivered_messages slot and bytes, offset tracking, decoding
// to line protocol, the writer (to io.Discard) and marking.
func BenchmarkConsume(b *testing.B) {
	for _, msg := range []struct{ name, value, extra, key string }{
		{"sensor", articleMessage, "", ""},
		// The key and the topic as tags: no copy of either per message.
		{"keyed", articleMessage, "  msg_key_as_tag = \"key\"\n  topic_tag = \"topic\"\n", "buoy-7"},
		{"record", recordMessage, `  tag_keys = ["host", "region", "sensor_id"]` + "\n", ""},
		// The end-to-end benchmark's wide workload: twelve numbers with two decimals.
		{"wide", `{"pressure":12.30,"temperature":10.07,"visibility":20.14,"humidity":30.21,"wind_speed":40.28,` +
			`"wind_direction":50.35,"salinity":60.42,"wave_height":70.49,"wave_period":80.56,"current_speed":90.63,` +
			`"depth":0.70,"battery":10.77}`, "", ""},
	} {
		b.Run(msg.name, func(b *testing.B) {
			k, err := configured(b, "[[inputs.kafka_consumer]]\n  brokers = [\"b:9092\"]\n  topics = [\"t\"]\n"+
				"  data_format = \"json\"\n"+msg.extra)
			require.NoError(b, err)
			k.testMode = true
			k.window = newWindow(k.MaxUndeliveredMessages, int64(k.MaxUndeliveredBytes))
			k.writer = newWriter(io.Discard, int(k.OutputBufferSize), time.Duration(k.OutputFlushInterval))
			k.writer.free = k.window.give
			k.stats = newStats(k.ConsumerGroup)
			k.poisonLog = lograte.New(10, time.Second)
			p := &partition{topic: "t", offsets: offsets.New(), counts: k.stats.counters("t", 0),
				log: k.Log, window: k.window, fetched: k.fetch.claim("t", 0)}
			dec, err := k.newDecoder()
			require.NoError(b, err)

			// sarama hands messages over a channel of 256 from its own goroutine; a
			// ring of messages four times that is never reused while still in use.
			ring := make([]sarama.ConsumerMessage, 1024)
			for i := range ring {
				ring[i] = sarama.ConsumerMessage{Topic: "t", Value: []byte(msg.value), Timestamp: time.Unix(1700000000, 0)}
				if msg.key != "" {
					ring[i].Key = []byte(msg.key)
				}
			}
			msgs := make(chan *sarama.ConsumerMessage, 256)
			b.SetBytes(int64(len(msg.value)))
			b.ReportAllocs()
			b.ResetTimer()
			go func() {
				for i := range b.N {
					m := &ring[i%len(ring)]
					m.Offset = int64(i)
					msgs <- m
				}
				close(msgs)
			}()
			require.NoError(b, newClaimLoop(k, p, dec, msgs).run(context.Background()))
			b.StopTimer()
			require.Equal(b, int64(b.N), p.counts.messages.Load())
			require.NoError(b, k.writer.Close())
		})
	}
}
