package cnosdb

import (
	"math"
	"strconv"
)

// CnosDB 2.4.3's line-protocol parser accepts, after a backslash, only the characters
// it lists for each position, and Telegraf's influx serializer writes escapes it
// refuses (\n, \t, \r, \f) and lone backslashes. One refused line fails a whole
// request, so every line is written here in the form that both 2.3 and 2.4 take:
//
//   - measurement, tag keys, tag values, field keys: ',' ' ' (and '=' except in the
//     measurement) are escaped with a backslash; a backslash is written as "\\", which
//     CnosDB keeps as two backslashes; control characters (newline, tab, CR, FF, other
//     bytes below 0x20 and DEL) cannot be written at all and become a space.
//   - string field values: '"' and '\' are escaped; every other byte, newlines
//     included, is written as it is, which CnosDB stores unchanged.

// appendName appends a measurement name.
func appendName(dst []byte, s []byte) []byte {
	return appendEscaped(dst, s, false)
}

// appendKey appends a tag key, tag value or field key.
func appendKey(dst []byte, s []byte) []byte {
	return appendEscaped(dst, s, true)
}

func appendEscaped(dst, s []byte, escapeEquals bool) []byte {
	for _, c := range s {
		switch {
		case c == ',' || c == ' ' || c == '\\' || (c == '=' && escapeEquals):
			dst = append(dst, '\\', c)
		case c < 0x20 || c == 0x7f:
			dst = append(dst, '\\', ' ')
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

func appendStringField(dst, s []byte) []byte {
	dst = append(dst, '"')
	for _, c := range s {
		if c == '"' || c == '\\' {
			dst = append(dst, '\\')
		}
		dst = append(dst, c)
	}
	return append(dst, '"')
}

// appendFloat writes a float the way CnosDB parses it: no leading '.', no NaN or
// infinity (callers drop those), exponent form only where the plain form gets long.
func appendFloat(dst []byte, v float64) []byte {
	if a := math.Abs(v); a != 0 && (a < 1e-4 || a >= 1e21) {
		return strconv.AppendFloat(dst, v, 'e', -1, 64)
	}
	return strconv.AppendFloat(dst, v, 'f', -1, 64)
}

func appendInt(dst []byte, v int64) []byte {
	return append(strconv.AppendInt(dst, v, 10), 'i')
}

func appendUint(dst []byte, v uint64) []byte {
	return append(strconv.AppendUint(dst, v, 10), 'u')
}

func appendBool(dst []byte, v bool) []byte {
	if v {
		return append(dst, "true"...)
	}
	return append(dst, "false"...)
}
