package kafka_consumer

import (
	"bytes"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/IBM/sarama"

	"github.com/influxdata/telegraf"
	"github.com/influxdata/telegraf/plugins/parsers/json"

	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/internal/ackproto"
)

// errNoMetrics marks a message that parsed but gave no metric to write: an empty
// value, or one with nothing the parser keeps (JSON without numbers, say). Telegraf's
// plugin says so once, at debug level; here each is counted and logged, rate limited,
// with its place, since it usually means a producer or parser setting is wrong.
var errNoMetrics = errors.New("the message gave no metrics: verify the parser settings")

// textFormats are the data formats whose input is text: a message in one of them that
// is not valid UTF-8 is refused, as Telegraf's json parser would silently replace the
// bad bytes and CnosDB refuses them in line protocol.
var textFormats = map[string]bool{"json": true, "json_v2": true, "influx": true, "influx_upstream": true, "csv": true, "logfmt": true}

// decoder turns messages into line protocol the way Telegraf's plugin turns them into
// metrics. Each partition goroutine has its own, since parsers keep state.
type decoder struct {
	k      *KafkaConsumer
	parser telegraf.Parser
	// fast, if not nil, parses JSON messages first; what it cannot serve exactly
	// goes to parser.
	fast *jsonFast
	// direct says that nothing changes the fast path's metrics between parsing and
	// encoding but the tags of lineTags (no headers to add, no general options), so
	// they can be written as line protocol without being made.
	direct bool

	// Scratch space of lineTags and keyValue, reused across messages.
	tags       [2]lineTag
	topic      string // the topic topicBytes holds
	topicBytes []byte
	keyBuf     []byte
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

// errMarkerShaped refuses a message that would give a metric of the acknowledgement
// marker's name: only this input writes markers, and a message must never pass for
// one (see package ackproto).
var errMarkerShaped = fmt.Errorf("the message gives a metric named %q, the name of the acknowledgement's markers, "+
	"which only this input writes; refused (rename it with a processor in kafka_consumer.conf if it is data)", ackproto.Measurement)

// decode appends the line protocol of msg's metrics to dst. An error means the
// message is poison (too long or unparsable); dst is then returned unchanged.
func (d *decoder) decode(dst []byte, msg *sarama.ConsumerMessage) ([]byte, error) {
	out, _, err := d.decodeLines(dst, msg)
	return out, err
}

// decodeLines is decode that also returns the number of lines it appended: the
// markers count lines, not newline bytes, since a string field may hold newlines.
func (d *decoder) decodeLines(dst []byte, msg *sarama.ConsumerMessage) ([]byte, int, error) {
	start := len(dst)
	out, n, err := d.appendLines(dst, msg)
	if err != nil {
		return out, 0, err
	}
	if ackproto.ContainsMarker(out[start:]) {
		return dst[:start], 0, errMarkerShaped
	}
	return out, n, nil
}

func (d *decoder) appendLines(dst []byte, msg *sarama.ConsumerMessage) ([]byte, int, error) {
	k := d.k
	if k.MaxMessageLen != 0 && len(msg.Value) > k.MaxMessageLen {
		return dst, 0, fmt.Errorf("message exceeds max_message_len (actual %d, max %d)", len(msg.Value), k.MaxMessageLen)
	}
	if textFormats[k.Format()] && !utf8.Valid(msg.Value) {
		return dst, 0, fmt.Errorf("invalid UTF-8 at byte %d", invalidUTF8At(msg.Value))
	}
	var timeless time.Time
	setTimeless := false
	if k.recordTimes {
		timeless, setTimeless = recordTime(msg)
	}
	if d.direct {
		if out, n, ok := d.appendDirect(dst, msg, timeless, setTimeless); ok {
			if n == 0 {
				return d.noMetrics(dst, msg)
			}
			return out, n, nil
		}
	}
	parsing := time.Now()
	metrics, err := d.parse(msg.Value)
	if err != nil {
		return dst, 0, err
	}
	if setTimeless {
		// A parser gives a metric without a time of its own the time it parses at.
		parsed := time.Now()
		for _, m := range metrics {
			if t := m.Time(); !t.Before(parsing) && !t.After(parsed) {
				m.SetTime(timeless)
			}
		}
	}
	if len(metrics) == 0 {
		return d.noMetrics(dst, msg)
	}
	d.fromRecord(metrics, msg)
	return d.appendKept(dst, metrics)
}

// appendDirect writes msg's lines without making metrics, when the fast JSON path
// serves the message; ok is false when it does not.
func (d *decoder) appendDirect(dst []byte, msg *sarama.ConsumerMessage, timeless time.Time, setTimeless bool) ([]byte, int, bool) {
	o := lineOptions{tags: d.lineTags(msg), timeless: timeless, setTimeless: setTimeless}
	switch d.k.TimestampSource {
	case "inner":
		o.time, o.setTime = msg.Timestamp, true
	case "outer":
		o.time, o.setTime = msg.BlockTimestamp, true
	}
	return d.fast.appendLines(dst, msg.Value, o)
}

// fromRecord gives metrics what the options take from their record: header tags
// and name, the key and topic tags, and the record's time.
func (d *decoder) fromRecord(metrics []telegraf.Metric, msg *sarama.ConsumerMessage) {
	k := d.k
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
	// The key, like the topic after it, replaces a tag of the same name from the
	// message or its headers, since the option names it on purpose.
	if k.MsgKeyAsTag != "" {
		if key := d.keyValue(msg.Key); len(key) > 0 {
			value := string(key)
			for _, m := range metrics {
				m.AddTag(k.MsgKeyAsTag, value)
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
}

// appendKept writes the metrics the general options keep as line protocol.
func (d *decoder) appendKept(dst []byte, metrics []telegraf.Metric) ([]byte, int, error) {
	kept := d.k.modifier.apply(metrics, d.k.Log)
	written := 0
	for _, m := range kept {
		var ok bool
		if dst, ok = appendMetric(dst, m); ok {
			written++
		}
	}
	if written == 0 && len(kept) > 0 {
		// Metrics the filters dropped are not a fault; metrics without a field line
		// protocol can carry (all NaN, say) are.
		return dst, 0, fmt.Errorf("%w (no field line protocol can carry)", errNoMetrics)
	}
	return dst, written, nil
}

// lineTags returns the tags that topic_tag and msg_key_as_tag add to msg's metrics on
// the fast path, sorted by key as lineOptions wants them, in scratch space that the
// next call reuses. Init refuses the two options with one name.
func (d *decoder) lineTags(msg *sarama.ConsumerMessage) []lineTag {
	k := d.k
	tags := d.tags[:0]
	if k.TopicTag != "" {
		// A partition's messages share one topic: convert it once.
		if msg.Topic != d.topic || d.topicBytes == nil {
			d.topic, d.topicBytes = msg.Topic, []byte(msg.Topic)
		}
		tags = append(tags, lineTag{key: k.TopicTag, value: d.topicBytes})
	}
	if k.MsgKeyAsTag != "" {
		if key := d.keyValue(msg.Key); len(key) > 0 {
			tags = append(tags, lineTag{key: k.MsgKeyAsTag, value: key})
			if len(tags) == 2 && tags[1].key < tags[0].key {
				tags[0], tags[1] = tags[1], tags[0]
			}
		}
	}
	return tags
}

// Limits of recordTime: records per partition per millisecond, and partitions.
const (
	recordsPerMillisecond = 10000
	partitionsPerTopic    = 100
)

// recordTime is the time of a metric whose message gives it none: the record's
// timestamp, to the millisecond as Kafka keeps it, plus a sub-millisecond part from
// its partition and offset. Reading the record again gives the same time, so a replay
// writes the same row in CnosDB (one row per table, tags and time) instead of adding
// one; and two records of a topic never share a time while no partition holds more
// than recordsPerMillisecond records of one millisecond and the topic has at most
// partitionsPerTopic partitions. Beyond them two records can share a time, and with
// the same tags, a row. The split favours records per millisecond: a producer sending
// from memory stamps well over a thousand records with one millisecond, while topics
// rarely have more than a hundred partitions. The last six digits of the time in
// nanoseconds read as the offset's last four and the partition's last two. false: the record has no timestamp (message format before
// Kafka 0.10), and the metric keeps the time it was parsed at.
func recordTime(msg *sarama.ConsumerMessage) (time.Time, bool) {
	ms := msg.Timestamp.UnixMilli()
	if msg.Timestamp.IsZero() || ms <= 0 {
		return time.Time{}, false
	}
	sub := (msg.Offset%recordsPerMillisecond)*partitionsPerTopic + int64(msg.Partition)%partitionsPerTopic
	return time.Unix(0, ms*int64(time.Millisecond)+sub).UTC(), true
}

// invalidUTF8At returns the offset of the first byte of b that is not valid UTF-8.
func invalidUTF8At(b []byte) int {
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size == 1 {
			return i
		}
		i += size
	}
	return len(b)
}

// noMetrics is the error for a message that parsed into no metric.
func (d *decoder) noMetrics(dst []byte, msg *sarama.ConsumerMessage) ([]byte, int, error) {
	if len(bytes.TrimSpace(msg.Value)) == 0 {
		return dst, 0, fmt.Errorf("%w (empty value)", errNoMetrics)
	}
	return dst, 0, errNoMetrics
}
