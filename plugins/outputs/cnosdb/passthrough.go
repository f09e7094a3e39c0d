package cnosdb

import "time"

// Telegraf's influx serializer writes most lines in a form CnosDB takes as it is:
// plain ASCII names, no escapes, numbers without a leading '.', a timestamp in
// nanoseconds. appendPlain copies such a line with only its timestamp converted to the
// configured precision, checking its syntax on the way, and so skips decoding and
// re-encoding every part of it. Anything else (a backslash, a byte outside printable
// ASCII, an exponent, a missing timestamp, a value that could be out of range...)
// makes it report false, and the line goes through transcode, which gives the same
// bytes for every line appendPlain takes (FuzzAppendPlainMatchesTranscode holds it
// to that).

// Which printable ASCII bytes each part of a plain line may hold: no escapes and none
// of the separators of its part.
var (
	plainName = plainSet(`, \`)
	plainKey  = plainSet(`,= \"`)
)

func plainSet(excluded string) (set [256]bool) {
	for c := 0x21; c < 0x7f; c++ {
		set[c] = true
	}
	for i := range len(excluded) {
		set[excluded[i]] = false
	}
	return set
}

// appendPlain appends entry and a newline to dst if entry is a plain line (see
// above); ok false means dst may hold part of it and the caller must cut it back.
func (e *encoder) appendPlain(dst, entry []byte) (out []byte, ok bool) {
	n := len(entry)
	i := span(entry, 0, &plainName)
	if i == 0 || entry[0] == '#' { // a comment
		return dst, false
	}
	for i < n && entry[i] == ',' {
		j := span(entry, i+1, &plainKey)
		if j == i+1 || j >= n || entry[j] != '=' {
			return dst, false
		}
		k := span(entry, j+1, &plainKey)
		if k == j+1 {
			return dst, false
		}
		i = k
	}
	if i >= n || entry[i] != ' ' {
		return dst, false
	}
	i++
	for {
		j := span(entry, i, &plainKey)
		if j == i || j >= n || entry[j] != '=' {
			return dst, false
		}
		if i = plainValue(entry, j+1); i < 0 || i >= n {
			return dst, false
		}
		if entry[i] == ' ' {
			break
		}
		if entry[i] != ',' {
			return dst, false
		}
		i++
	}
	raw := entry[i+1:]
	ts, ok := parseTimestamp(raw)
	if !ok {
		return dst, false
	}
	if e.precision == time.Nanosecond && raw[0] != '-' && (raw[0] != '0' || len(raw) == 1) {
		// Already what appendIntPlain would write.
		dst = append(dst, entry...)
		return append(dst, '\n'), true
	}
	dst = append(dst, entry[:i+1]...)
	dst = appendIntPlain(dst, ts/int64(e.precision))
	return append(dst, '\n'), true
}

// span returns the index of the first byte at or after i that set does not hold.
func span(b []byte, i int, set *[256]bool) int {
	for i < len(b) && set[b[i]] {
		i++
	}
	return i
}

// plainValue returns the index after the field value at b[i], or -1 if it is not
// one that transcode writes unchanged.
func plainValue(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		for i++; i < len(b); i++ {
			switch c := b[i]; {
			case c == '"':
				return i + 1
			case c == '\\' || c < 0x20 || c >= 0x7f:
				return -1
			}
		}
		return -1
	case 't':
		if hasPrefix(b[i:], "true") {
			return i + 4
		}
		return -1
	case 'f':
		if hasPrefix(b[i:], "false") {
			return i + 5
		}
		return -1
	}
	// A number: -?digits(.digits)? with a suffix i or u for integers. Short enough
	// that no integer overflows; longer ones, exponents and the like go to transcode.
	start := i
	if b[i] == '-' {
		i++
	}
	digits := i
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	if i == digits || i-digits > 18 {
		return -1
	}
	if i < len(b) && (b[i] == 'i' || b[i] == 'u') {
		if b[i] == 'u' && b[start] == '-' {
			return -1
		}
		return i + 1
	}
	if i < len(b) && b[i] == '.' {
		i++
		frac := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == frac || i-start > 64 {
			return -1
		}
	}
	return i
}

func hasPrefix(b []byte, s string) bool {
	return len(b) >= len(s) && string(b[:len(s)]) == s
}

// parseTimestamp parses a whole entry's tail as nanoseconds: -?digits, nothing after.
func parseTimestamp(b []byte) (int64, bool) {
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	// Today's times have 19 digits; 19 digits fit a uint64, so the check below
	// catches every overflow.
	if len(b) == 0 || len(b) > 19 {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + uint64(c-'0')
	}
	if v > 1<<63-1 {
		return 0, false
	}
	if neg {
		return -int64(v), true
	}
	return int64(v), true
}
