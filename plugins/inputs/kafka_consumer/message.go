package kafka_consumer

import (
	"fmt"
	"sync"

	"github.com/IBM/sarama"

	"github.com/influxdata/telegraf"
	"github.com/influxdata/telegraf/plugins/parsers/json"
)

var noMetricsOnce sync.Once

// noMetricsCreatedMsg is Telegraf's message for a message that yields no metric.
const noMetricsCreatedMsg = "No metrics were created from a message. Verify your parser settings. This message is only printed once."

// decoder turns messages into line protocol the way Telegraf's plugin turns them into
// metrics. Each partition goroutine has its own, since parsers keep state.
type decoder struct {
	k      *KafkaConsumer
	parser telegraf.Parser
	// fast, if not nil, parses JSON messages first; what it cannot serve exactly
	// goes to parser.
	fast *jsonFast
	// direct says that nothing changes the fast path's metrics between parsing and
	// encoding (no headers to add, no general options), so they can be written as
	// line protocol without being made.
	direct bool
}

func (k *KafkaConsumer) newDecoder() (*decoder, error) {
	if k.parserFunc == nil {
		return nil, fmt.Errorf("no parser for data_format %q", k.Format())
	}
	p, err := k.parserFunc()
	if err != nil {
		return nil, fmt.Errorf("creating parser: %w", err)
	}
	d := &decoder{k: k, parser: p}
	if jp, ok := p.(*json.Parser); ok && k.JSONFastPath {
		d.fast = newJSONFast(jp)
	}
	d.direct = d.fast != nil && len(k.headerTags) == 0 && k.MsgHeaderAsMetricName == "" &&
		(k.modifier == nil || !k.modifier.active)
	return d, nil
}

// parse returns the metrics of buf as the parser gives them.
func (d *decoder) parse(buf []byte) ([]telegraf.Metric, error) {
	if d.fast != nil {
		if metrics, ok := d.fast.parse(buf); ok {
			return metrics, nil
		}
	}
	return d.parser.Parse(buf)
}

// decode appends the line protocol of msg's metrics to dst. An error means the
// message is poison (too long or unparsable); dst is then returned unchanged.
func (d *decoder) decode(dst []byte, msg *sarama.ConsumerMessage) ([]byte, error) {
	k := d.k
	if k.MaxMessageLen != 0 && len(msg.Value) > k.MaxMessageLen {
		return dst, fmt.Errorf("message exceeds max_message_len (actual %d, max %d)", len(msg.Value), k.MaxMessageLen)
	}
	if d.direct {
		o := lineOptions{topicTag: k.TopicTag, topic: msg.Topic}
		switch k.TimestampSource {
		case "inner":
			o.time, o.setTime = msg.Timestamp, true
		case "outer":
			o.time, o.setTime = msg.BlockTimestamp, true
		}
		if out, n, ok := d.fast.appendLines(dst, msg.Value, o); ok {
			if n == 0 {
				noMetricsOnce.Do(func() { k.Log.Debug(noMetricsCreatedMsg) })
			}
			return out, nil
		}
	}
	metrics, err := d.parse(msg.Value)
	if err != nil {
		return dst, err
	}
	if len(metrics) == 0 {
		noMetricsOnce.Do(func() { k.Log.Debug(noMetricsCreatedMsg) })
		return dst, nil
	}

	if len(k.headerTags) > 0 || k.MsgHeaderAsMetricName != "" {
		for _, header := range msg.Headers {
			key := string(header.Key)
			switch {
			case k.headerTags[key]:
				for _, m := range metrics {
					m.AddTag(key, string(header.Value))
				}
			case key == k.MsgHeaderAsMetricName:
				for _, m := range metrics {
					m.SetName(string(header.Value))
				}
			}
		}
	}
	if k.TopicTag != "" {
		for _, m := range metrics {
			m.AddTag(k.TopicTag, msg.Topic)
		}
	}
	switch k.TimestampSource {
	case "inner":
		for _, m := range metrics {
			m.SetTime(msg.Timestamp)
		}
	case "outer":
		for _, m := range metrics {
			m.SetTime(msg.BlockTimestamp)
		}
	}

	for _, m := range k.modifier.apply(metrics, k.Log) {
		var ok bool
		if dst, ok = appendMetric(dst, m); !ok {
			k.Log.Debugf("topic %q partition %d offset %d: metric %q has no field line protocol can carry; skipped",
				msg.Topic, msg.Partition, msg.Offset, m.Name())
		}
	}
	return dst, nil
}
