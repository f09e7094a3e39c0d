package kafka_consumer

import (
	"math"
	"strconv"
	"strings"
	"time"
)

// lineOptions are what decode adds to the metrics of a message when it writes them
// straight to line protocol.
type lineOptions struct {
	// tags are added to every line, sorted by key with no key twice; each replaces
	// a tag of the message with the same key, as topic_tag and msg_key_as_tag do.
	tags []lineTag
	// time, if setTime, replaces every metric's time, as timestamp_source does.
	time    time.Time
	setTime bool
	// timeless, if setTimeless, is the time of a metric whose message gives it none
	// (see recordTime).
	timeless    time.Time
	setTimeless bool
}

// lineTag is a tag decode adds to every metric of a message. The value is bytes, as
// Kafka gives a message's key and headers, so that none is copied per message.
type lineTag struct {
	key   string
	value []byte
}

// appendLines appends the line protocol of the metrics buf holds to dst, as parse
// followed by appendMetric would write them (fields in the message's order rather
// than in the order of Go's map iteration), without building the metrics: most of a
// message's cost in the parse-then-serialize path is allocating them. n is the number
// of lines; ok false means the caller must take the metric path, and dst is then
// returned as it came. That is the case for whatever parse does not serve, for a
// parser with default tags, and for a metric that would be left without a name or
// without fields, whose debug message is the metric path's.
func (d *jsonFast) appendLines(dst, buf []byte, o lineOptions) (out []byte, n int, ok bool) {
	if len(d.parser.DefaultTags) > 0 {
		return dst, 0, false
	}
	start := len(dst)
	d.lines, d.lp, d.lineOpts, d.nlines = true, dst, o, 0
	_, ok = d.parse(buf)
	out, n = d.lp, d.nlines
	// Keep no reference to the message's key past the call.
	d.lines, d.lp, d.lineOpts = false, nil, lineOptions{}
	if !ok {
		return out[:start], 0, false
	}
	return out, n, true
}

// appendLine appends the line of the object parse just read to d.lp.
func (d *jsonFast) appendLine(now time.Time) bool {
	name, ts, ok := d.nameAndTime(now)
	if !ok || name == "" {
		return false
	}
	if d.lineOpts.setTime {
		ts = d.lineOpts.time
	} else if d.lineOpts.setTimeless && len(d.timeKey) == 0 {
		ts = d.lineOpts.timeless
	}
	lp := appendEscaped(d.lp, name, nameEscapes)
	lp = d.appendTags(lp)
	lp = append(lp, ' ')
	lp, fields := d.appendFields(lp)
	if fields == 0 {
		return false
	}
	lp = append(lp, ' ')
	lp = strconv.AppendInt(lp, ts.UnixNano(), 10)
	d.lp = append(lp, '\n')
	d.nlines++
	return true
}

// appendTags appends the tags, in the order of their keys as a metric keeps them,
// merged with the tags decode adds, which are sorted too.
func (d *jsonFast) appendTags(lp []byte) []byte {
	d.tagIdx = d.tagIdx[:0]
	for i := range d.entries {
		if e := &d.entries[i]; e.isValue() && !e.dropped && d.infos[i].tag {
			d.tagIdx = append(d.tagIdx, i)
			for j := len(d.tagIdx) - 1; j > 0 && string(d.key(d.tagIdx[j])) < string(d.key(d.tagIdx[j-1])); j-- {
				d.tagIdx[j], d.tagIdx[j-1] = d.tagIdx[j-1], d.tagIdx[j]
			}
		}
	}
	extra := d.lineOpts.tags
	for _, i := range d.tagIdx {
		key := d.infos[i].name
		replaced := false
		for len(extra) > 0 && extra[0].key <= key {
			lp = appendTag(lp, extra[0].key, extra[0].value)
			replaced = replaced || extra[0].key == key
			extra = extra[1:]
		}
		if replaced {
			continue
		}
		e := &d.entries[i]
		switch e.kind {
		case kindString:
			lp = appendTag(lp, key, d.str(e))
		case kindBool:
			lp = appendTag(lp, key, strconv.FormatBool(e.boolean))
		case kindNumber:
			lp = appendTag(lp, key, d.appendNumber(d.num[:0], e))
		}
	}
	for _, tag := range extra {
		lp = appendTag(lp, tag.key, tag.value)
	}
	return lp
}

// appendFields appends the fields line protocol can carry and says how many.
func (d *jsonFast) appendFields(lp []byte) ([]byte, int) {
	fields := 0
	for i := range d.entries {
		e := &d.entries[i]
		if !e.isValue() || e.dropped {
			continue
		}
		info := d.infos[i]
		if info.tag || info.name == "" {
			continue
		}
		mark := len(lp)
		if fields > 0 {
			lp = append(lp, ',')
		}
		lp = appendEscaped(lp, info.name, escapes)
		lp = append(lp, '=')
		switch {
		case e.kind == kindNumber:
			if math.IsNaN(e.num) || math.IsInf(e.num, 0) {
				lp = lp[:mark]
				continue
			}
			lp = d.appendNumber(lp, e)
		case !info.stringField:
			lp = lp[:mark]
			continue
		case e.kind == kindString:
			lp = append(lp, '"')
			lp = appendEscaped(lp, d.str(e), stringFieldEscapes)
			lp = append(lp, '"')
		case e.kind == kindBool:
			lp = strconv.AppendBool(lp, e.boolean)
		}
		fields++
	}
	return lp, fields
}

// appendTag appends ",key=value" as appendMetric writes a tag, or nothing where
// appendMetric would leave the tag out.
func appendTag[V ~string | ~[]byte](dst []byte, key string, value V) []byte {
	key = strings.TrimRight(key, `\`)
	for len(value) > 0 && value[len(value)-1] == '\\' {
		value = value[:len(value)-1]
	}
	if key == "" || len(value) == 0 {
		return dst
	}
	dst = append(dst, ',')
	dst = appendEscaped(dst, key, escapes)
	dst = append(dst, '=')
	return appendEscaped(dst, value, escapes)
}

// appendNumber appends e's number as AppendFloat(num, 'f', -1, 64) writes it: the
// message's own text where parseNumber found it to be just that.
func (d *jsonFast) appendNumber(dst []byte, e *entry) []byte {
	if e.raw[1] > e.raw[0] {
		return append(dst, d.msg[e.raw[0]:e.raw[1]]...)
	}
	return strconv.AppendFloat(dst, e.num, 'f', -1, 64)
}
