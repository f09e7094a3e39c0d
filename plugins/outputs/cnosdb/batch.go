package cnosdb

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/influxdata/line-protocol/v2/lineprotocol"
	"github.com/influxdata/telegraf"
)

// batch holds lines in the form CnosDB takes, each ending in '\n', and where each
// line starts, so that a rejected request can be split.
type batch struct {
	buf    []byte
	starts []int // starts[i] is the offset of line i in buf
	// sources[i] says where line i came from (its stdin line), for error messages.
	sources []int64
	seq     uint64 // order of the batch, counted from 1
	// queued is what the batch took of the queue's byte budget when it was flushed.
	queued int
}

func (b *batch) len() int { return len(b.starts) }

func (b *batch) reset() {
	b.buf = b.buf[:0]
	b.starts = b.starts[:0]
	b.sources = b.sources[:0]
}

// line returns line i without its newline.
func (b *batch) line(i int) []byte {
	end := len(b.buf)
	if i+1 < len(b.starts) {
		end = b.starts[i+1]
	}
	return b.buf[b.starts[i] : end-1]
}

// span returns lines [lo, hi) as one request body.
func (b *batch) span(lo, hi int) []byte {
	end := len(b.buf)
	if hi < len(b.starts) {
		end = b.starts[hi]
	}
	return b.buf[b.starts[lo]:end]
}

// errNoFields marks a line whose every field was dropped: CnosDB needs at least one.
var errNoFields = errors.New("no field left that CnosDB can store (NaN and infinite values are dropped)")

// encoder turns metrics and Telegraf's line protocol into CnosDB's.
type encoder struct {
	precision time.Duration
	decoder   *lineprotocol.Decoder
	now       func() time.Time
}

func (e *encoder) timestamp(dst []byte, t time.Time) []byte {
	ns := t.UnixNano()
	return appendIntPlain(dst, ns/int64(e.precision))
}

func appendIntPlain(dst []byte, v int64) []byte {
	return strconv.AppendInt(dst, v, 10)
}

// addMetric appends one metric.
func (e *encoder) addMetric(b *batch, m telegraf.Metric, source int64) error {
	start := len(b.buf)
	buf := appendName(b.buf, []byte(m.Name()))
	for _, tag := range m.TagList() {
		if tag.Key == "" || tag.Value == "" {
			continue
		}
		buf = append(buf, ',')
		buf = appendKey(buf, []byte(tag.Key))
		buf = append(buf, '=')
		buf = appendKey(buf, []byte(tag.Value))
	}
	sep := byte(' ')
	fields := 0
	for _, f := range m.FieldList() {
		mark := len(buf)
		buf = append(buf, sep)
		buf = appendKey(buf, []byte(f.Key))
		buf = append(buf, '=')
		switch v := f.Value.(type) {
		case float64:
			if math.IsNaN(v) || math.IsInf(v, 0) {
				buf = buf[:mark]
				continue
			}
			buf = appendFloat(buf, v)
		case int64:
			buf = appendInt(buf, v)
		case uint64:
			buf = appendUint(buf, v)
		case bool:
			buf = appendBool(buf, v)
		case string:
			buf = appendStringField(buf, []byte(v))
		default:
			buf = buf[:mark]
			continue
		}
		sep = ','
		fields++
	}
	if fields == 0 {
		b.buf = buf[:start]
		return errNoFields
	}
	buf = append(buf, ' ')
	buf = e.timestamp(buf, m.Time())
	b.buf = append(buf, '\n')
	b.starts = append(b.starts, start)
	b.sources = append(b.sources, source)
	return nil
}

// addLineProtocol appends one entry of Telegraf's line protocol. Blank lines and
// comments add nothing.
func (e *encoder) addLineProtocol(b *batch, entry []byte, source int64) error {
	if len(bytes.TrimSpace(entry)) == 0 || entry[0] == '#' {
		return nil
	}
	start := len(b.buf)
	buf, ok := e.appendPlain(b.buf, entry)
	var err error
	if !ok {
		buf, err = e.transcode(buf[:start], entry)
	}
	if err != nil {
		b.buf = b.buf[:start]
		return fmt.Errorf("line %d: %w", source, err)
	}
	b.buf = buf
	b.starts = append(b.starts, start)
	b.sources = append(b.sources, source)
	return nil
}

// transcode decodes an entry that appendPlain does not take and writes it again in
// the form CnosDB takes.
func (e *encoder) transcode(buf, entry []byte) ([]byte, error) {
	if e.decoder == nil {
		e.decoder = lineprotocol.NewDecoderWithBytes(nil)
	}
	dec := e.decoder
	*dec = *lineprotocol.NewDecoderWithBytes(entry)
	if !dec.Next() {
		return buf, errors.New("empty entry")
	}
	name, err := dec.Measurement()
	if err != nil {
		return buf, err
	}
	buf = appendName(buf, name)
	if buf, err = appendTags(buf, dec); err != nil {
		return buf, err
	}
	if buf, err = appendFields(buf, dec); err != nil {
		return buf, err
	}
	ts, err := dec.Time(lineprotocol.Nanosecond, e.now())
	if err != nil {
		return buf, err
	}
	buf = append(buf, ' ')
	buf = e.timestamp(buf, ts)
	return append(buf, '\n'), nil
}

func appendTags(buf []byte, dec *lineprotocol.Decoder) ([]byte, error) {
	for {
		key, value, err := dec.NextTag()
		if err != nil {
			return buf, err
		}
		if key == nil {
			return buf, nil
		}
		buf = append(buf, ',')
		buf = appendKey(buf, key)
		buf = append(buf, '=')
		buf = appendKey(buf, value)
	}
}

// appendFields appends the fields; a line without one cannot be stored.
func appendFields(buf []byte, dec *lineprotocol.Decoder) ([]byte, error) {
	sep := byte(' ')
	for {
		key, kind, raw, err := dec.NextFieldBytes()
		if err != nil {
			return buf, err
		}
		if key == nil {
			break
		}
		buf = append(buf, sep)
		buf = appendKey(buf, key)
		buf = append(buf, '=')
		if buf, err = appendFieldValue(buf, kind, raw); err != nil {
			return buf, fmt.Errorf("field %q: %w", key, err)
		}
		sep = ','
	}
	if sep == ' ' {
		return buf, errNoFields
	}
	return buf, nil
}

func appendFieldValue(buf []byte, kind lineprotocol.ValueKind, raw []byte) ([]byte, error) {
	value, err := lineprotocol.NewValueFromBytes(kind, raw)
	if err != nil {
		return buf, err
	}
	switch kind {
	case lineprotocol.Float:
		v := value.FloatV()
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return buf, fmt.Errorf("%v cannot be stored", v)
		}
		if raw[0] == '.' || (len(raw) > 1 && raw[0] == '-' && raw[1] == '.') {
			return appendFloat(buf, v), nil // CnosDB refuses a number that starts with '.'
		}
		return append(buf, raw...), nil
	case lineprotocol.Int:
		return append(append(buf, raw...), 'i'), nil
	case lineprotocol.Uint:
		return append(append(buf, raw...), 'u'), nil
	case lineprotocol.Bool:
		return appendBool(buf, value.BoolV()), nil
	case lineprotocol.String:
		return appendStringField(buf, value.BytesV()), nil
	}
	return buf, fmt.Errorf("unknown value kind %v", kind)
}
