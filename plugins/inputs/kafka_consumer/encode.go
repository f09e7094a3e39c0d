package kafka_consumer

import (
	"math"
	"strconv"
	"strings"

	"github.com/influxdata/telegraf"
)

// appendMetric appends m as one line of line protocol to dst, byte for byte what
// Telegraf's influx serializer writes with influx_uint_support on (so that unsigned
// fields stay unsigned through execd) and no line length limit. Fields that line
// protocol cannot carry (NaN, ±Inf, an empty key) are left out, as the serializer
// does; a metric left without fields or without a name yields nothing and ok false.
//
// Unlike the serializer it allocates nothing and writes straight into the caller's
// buffer, which is what makes one write per buffer instead of per metric cheap.
func appendMetric(dst []byte, m telegraf.Metric) (out []byte, ok bool) {
	start := len(dst)
	if m.Name() == "" {
		return dst, false
	}
	dst = appendEscaped(dst, m.Name(), nameEscapes)
	for _, tag := range m.TagList() {
		// Keys and values ending in a backslash cannot be written; the serializer
		// drops the backslashes after escaping, and then tags left empty.
		key := strings.TrimRight(tag.Key, `\`)
		value := strings.TrimRight(tag.Value, `\`)
		if key == "" || value == "" {
			continue
		}
		dst = append(dst, ',')
		dst = appendEscaped(dst, key, escapes)
		dst = append(dst, '=')
		dst = appendEscaped(dst, value, escapes)
	}
	dst = append(dst, ' ')
	first := true
	for _, field := range m.FieldList() {
		if field.Key == "" {
			continue
		}
		mark := len(dst)
		if !first {
			dst = append(dst, ',')
		}
		dst = appendEscaped(dst, field.Key, escapes)
		dst = append(dst, '=')
		switch v := field.Value.(type) {
		case float64:
			if math.IsNaN(v) || math.IsInf(v, 0) {
				dst = dst[:mark]
				continue
			}
			dst = strconv.AppendFloat(dst, v, 'f', -1, 64)
		case int64:
			dst = append(strconv.AppendInt(dst, v, 10), 'i')
		case uint64:
			dst = append(strconv.AppendUint(dst, v, 10), 'u')
		case string:
			dst = append(dst, '"')
			dst = appendEscaped(dst, v, stringFieldEscapes)
			dst = append(dst, '"')
		case bool:
			dst = strconv.AppendBool(dst, v)
		default:
			dst = dst[:mark]
			continue
		}
		first = false
	}
	if first {
		return dst[:start], false
	}
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, m.Time().UnixNano(), 10)
	return append(dst, '\n'), true
}

// The characters Telegraf's serializer escapes in each part of a line.
var (
	escapes            = newEscapeSet("\t\n\f\r ,=")
	nameEscapes        = newEscapeSet("\t\n\f\r ,")
	stringFieldEscapes = newEscapeSet("\\\"")
)

// escapeSet says which bytes need a backslash; a table, since the check runs for
// every byte of every name, key and value.
type escapeSet [256]bool

func newEscapeSet(special string) *escapeSet {
	var set escapeSet
	for i := range len(special) {
		set[special[i]] = true
	}
	return &set
}

func appendEscaped[S ~string | ~[]byte](dst []byte, s S, special *escapeSet) []byte {
	i := 0
	for i < len(s) && !special[s[i]] {
		i++
	}
	if i == len(s) {
		return append(dst, s...)
	}
	dst = append(dst, s[:i]...)
	for ; i < len(s); i++ {
		c := s[i]
		if !special[c] {
			dst = append(dst, c)
			continue
		}
		switch c {
		case '\t':
			dst = append(dst, '\\', 't')
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\f':
			dst = append(dst, '\\', 'f')
		case '\r':
			dst = append(dst, '\\', 'r')
		default:
			dst = append(dst, '\\', c)
		}
	}
	return dst
}
