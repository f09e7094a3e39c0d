package kafka_consumer

import (
	"math"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// The scanner of jsonFast: white space, numbers and strings, read in place from the
// message's bytes, with the same results as encoding/json and Telegraf's parser.

// skipSpace returns the index of the first byte at or after i that is not JSON
// white space.
func skipSpace(buf []byte, i int) int {
	for i < len(buf) {
		switch buf[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// parseNumber parses the JSON number at buf[i] as encoding/json does into an
// interface{}: strict JSON grammar, then strconv.ParseFloat. Out of range numbers,
// which encoding/json rejects, give ok false.
func parseNumber(buf []byte, i int) (v float64, end, canonicalEnd int, ok bool) {
	start := i
	if i < len(buf) && buf[i] == '-' {
		i++
	}
	intStart := i
	switch {
	case i >= len(buf):
		return 0, i, -1, false
	case buf[i] == '0':
		i++
	case buf[i] >= '1' && buf[i] <= '9':
		i = skipDigits(buf, i+1)
	default:
		return 0, i, -1, false
	}
	digits := i - intStart
	dot := -1
	if i < len(buf) && buf[i] == '.' {
		j := skipDigits(buf, i+1)
		if j == i+1 {
			return 0, i, -1, false
		}
		dot = i
		digits += j - i - 1
		i = j
	}
	if i < len(buf) && (buf[i] == 'e' || buf[i] == 'E') {
		i++
		if i < len(buf) && (buf[i] == '+' || buf[i] == '-') {
			i++
		}
		j := skipDigits(buf, i)
		if j == i {
			return 0, i, -1, false
		}
		i = j
		digits = math.MaxInt // not canonical, and not for the exact shortcut
	}
	if digits <= 15 {
		// Up to 15 digits and no exponent: the digits are an integer below 2^53 and
		// the scale a power of ten up to 10^15, both exact in a float64, so one
		// division rounds correctly, which is what ParseFloat does. Written again
		// with AppendFloat(v, 'f', -1, 64), such a number is the text it came from
		// without the zeros that end its fraction (and the dot if nothing is left):
		// no two decimals of up to 15 digits are the same float64, so the shortest
		// text that reads back as v is that one.
		var mant uint64
		for k := intStart; k < i; k++ {
			if k != dot {
				mant = mant*10 + uint64(buf[k]-'0')
			}
		}
		v = float64(mant)
		if dot >= 0 {
			v /= pow10[i-dot-1]
		}
		if buf[start] == '-' {
			v = -v
		}
		canonicalEnd := i
		if dot >= 0 {
			for buf[canonicalEnd-1] == '0' {
				canonicalEnd--
			}
			if canonicalEnd == dot+1 {
				canonicalEnd = dot
			}
		}
		return v, i, canonicalEnd, true
	}
	v, err := strconv.ParseFloat(string(buf[start:i]), 64)
	if err != nil {
		return 0, i, -1, false
	}
	return v, i, -1, true
}

// pow10[k] is 10^k, exact in a float64 for every k here.
var pow10 = [...]float64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15}

func skipDigits(buf []byte, i int) int {
	for i < len(buf) && buf[i] >= '0' && buf[i] <= '9' {
		i++
	}
	return i
}

// appendString appends the JSON string at buf[i], unescaped, to dst and returns
// the index after its closing quote. Strings encoding/json would alter (invalid
// UTF-8 or unpaired surrogates, which it replaces by U+FFFD) or reject give ok false.
func appendString(dst, buf []byte, i int) ([]byte, int, bool) {
	i++ // the opening quote
	start := i
	ascii := true
	for i < len(buf) {
		c := buf[i]
		switch {
		case c == '"':
			if !ascii && !utf8.Valid(buf[start:i]) {
				return dst, i, false
			}
			return dst, i + 1, true
		case c < 0x20:
			return dst, i, false
		case c != '\\':
			// Copy the run of bytes that need no unescaping at once.
			j := i + 1
			for j < len(buf) && buf[j] >= 0x20 && buf[j] != '"' && buf[j] != '\\' {
				j++
			}
			for _, b := range buf[i:j] {
				if b >= utf8.RuneSelf {
					ascii = false
					break
				}
			}
			dst = append(dst, buf[i:j]...)
			i = j
		default:
			if i+1 >= len(buf) {
				return dst, i, false
			}
			switch buf[i+1] {
			case '"', '\\', '/':
				dst = append(dst, buf[i+1])
			case 'b':
				dst = append(dst, '\b')
			case 'f':
				dst = append(dst, '\f')
			case 'n':
				dst = append(dst, '\n')
			case 'r':
				dst = append(dst, '\r')
			case 't':
				dst = append(dst, '\t')
			case 'u':
				r, ok := hex4(buf, i+2)
				if !ok {
					return dst, i, false
				}
				i += 6
				if utf16.IsSurrogate(r) {
					if i+1 >= len(buf) || buf[i] != '\\' || buf[i+1] != 'u' {
						return dst, i, false
					}
					r2, ok := hex4(buf, i+2)
					if !ok {
						return dst, i, false
					}
					if r = utf16.DecodeRune(r, r2); r == utf8.RuneError {
						return dst, i, false
					}
					i += 6
				}
				dst = utf8.AppendRune(dst, r)
				continue
			default:
				return dst, i, false
			}
			i += 2
		}
	}
	return dst, i, false
}

// hex4 decodes the four hex digits of a \u escape at buf[i:].
func hex4(buf []byte, i int) (rune, bool) {
	if i+4 > len(buf) {
		return 0, false
	}
	var r rune
	for _, c := range buf[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}
