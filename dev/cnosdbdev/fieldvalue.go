package cnosdbdev

import (
	"errors"
	"math"
	"strconv"
)

// parseFieldValue is CnosDB's parse_field_value, shared by the 2.3 and the
// 2.4.3 parser: the first byte decides the type.
func parseFieldValue(buf []byte, needUnescape bool) (FieldValue, error) {
	if len(buf) == 0 {
		// Rust indexes buf[0] here and panics.
		return FieldValue{}, errCrash
	}
	switch buf[0] {
	case 't', 'T':
		return parseBooleanField(buf, true)
	case 'f', 'F':
		return parseBooleanField(buf, false)
	case '"':
		return parseStringField(buf, needUnescape)
	case '+', '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		return parseNumericField(buf)
	}
	return FieldValue{}, errFieldValue(buf)
}

func parseBooleanField(buf []byte, value bool) (FieldValue, error) {
	if len(buf) == 1 {
		return booleanValue(value), nil
	}
	switch string(buf) {
	case "true", "True", "TRUE", "false", "False", "FALSE":
		return booleanValue(value), nil
	}
	return FieldValue{}, errFieldValue(buf)
}

func parseStringField(buf []byte, needUnescape bool) (FieldValue, error) {
	if len(buf) < 2 || buf[0] != '"' || buf[len(buf)-1] != '"' {
		return FieldValue{}, errFieldValue(buf)
	}
	s, err := unescapeStringField(buf[1:len(buf)-1], needUnescape)
	if err != nil {
		return FieldValue{}, err
	}
	return stringValue(s), nil
}

// unescapeStringField is escaped_field_value: "\"" becomes '"' and "\\"
// becomes '\'; a backslash before anything else stays.
func unescapeStringField(buf []byte, needUnescape bool) (string, error) {
	if !needUnescape {
		return string(buf), nil
	}
	if len(buf) == 0 {
		return "", nil
	}
	out := make([]byte, 0, len(buf))
	inUnescape := false
	for i := 0; i+1 < len(buf); i++ {
		v1, v2 := buf[i], buf[i+1]
		if v1 == '\\' && (v2 == '"' || v2 == '\\') {
			if inUnescape && v2 == '"' {
				return "", errFieldValue(buf)
			}
			if !inUnescape {
				inUnescape = true
				continue
			}
		}
		out = append(out, v1)
		inUnescape = false
	}
	out = append(out, buf[len(buf)-1])
	return string(out), nil
}

func parseNumericField(buf []byte) (FieldValue, error) {
	switch buf[len(buf)-1] {
	case 'i':
		v, err := parseInt64(buf[:len(buf)-1])
		if err != nil {
			return FieldValue{}, errFieldValue(buf)
		}
		return integerValue(v), nil
	case 'u':
		v, err := parseUint64(buf[:len(buf)-1])
		if err != nil {
			return FieldValue{}, errFieldValue(buf)
		}
		return unsignedValue(v), nil
	}
	v, ok := parseFastFloat(buf)
	if !ok {
		return FieldValue{}, errFieldValue(buf)
	}
	return floatValue(v), nil
}

// Integer parsing with the rules of atoi_simd 0.15 (the crate CnosDB uses):
// only decimal digits, an optional leading '-' for signed types and no '+',
// at most 19 digits for i64 and 20 for u64 (leading zeros count).

var errBadInteger = errors.New("invalid integer")

const (
	maxInt64Digits  = 19
	maxUint64Digits = 20
)

// digitsPrefix returns the number of leading ASCII digits of b.
func digitsPrefix(b []byte) int {
	n := 0
	for n < len(b) && b[n] >= '0' && b[n] <= '9' {
		n++
	}
	return n
}

// accumulate parses a run of digits into a uint64, refusing values above limit.
func accumulate(digits []byte, limit uint64) (uint64, bool) {
	var v uint64
	for _, c := range digits {
		d := uint64(c - '0')
		if v > (limit-d)/10 {
			return 0, false
		}
		v = v*10 + d
	}
	return v, true
}

// parseInt64UntilInvalid is atoi_simd::parse_until_invalid::<i64>: it
// parses the leading number and reports how many bytes it used.
func parseInt64UntilInvalid(b []byte) (int64, int, error) {
	neg := len(b) > 0 && b[0] == '-'
	digits := b
	if neg {
		digits = b[1:]
	}
	n := digitsPrefix(digits)
	if n == 0 || n > maxInt64Digits {
		return 0, 0, errBadInteger
	}
	limit := uint64(math.MaxInt64)
	if neg {
		limit++
	}
	v, ok := accumulate(digits[:n], limit)
	if !ok {
		return 0, 0, errBadInteger
	}
	used := n
	if neg {
		used++
		return int64(-v), used, nil // unsigned negation: -(MaxInt64+1) becomes MinInt64
	}
	return int64(v), used, nil
}

// parseInt64 is atoi_simd::parse::<i64>: the whole slice must be the number.
func parseInt64(b []byte) (int64, error) {
	v, used, err := parseInt64UntilInvalid(b)
	if err != nil || used != len(b) {
		return 0, errBadInteger
	}
	return v, nil
}

// parseUint64 is atoi_simd::parse_pos::<u64>.
func parseUint64(b []byte) (uint64, error) {
	n := digitsPrefix(b)
	if n == 0 || n != len(b) || n > maxUint64Digits {
		return 0, errBadInteger
	}
	v, ok := accumulate(b, math.MaxUint64)
	if !ok {
		return 0, errBadInteger
	}
	return v, nil
}

// parseFastFloat accepts exactly what the fast-float crate's parse accepts:
// [+-] digits [. digits] [(e|E) [+-] digits] with at least one mantissa
// digit, or [+-] nan / inf / infinity in any case; nothing may follow.
// The value is correctly rounded, as fast-float's is.
func parseFastFloat(b []byte) (float64, bool) {
	s := b
	neg := false
	if len(s) > 0 && (s[0] == '+' || s[0] == '-') {
		neg = s[0] == '-'
		s = s[1:]
	}
	if len(s) == 0 {
		return 0, false
	}
	if special, ok := parseInfNaN(s); ok {
		if neg {
			return -special, true
		}
		return special, true
	}
	i := digitsPrefix(s)
	mantissaDigits := i
	if i < len(s) && s[i] == '.' {
		i++
		after := digitsPrefix(s[i:])
		mantissaDigits += after
		i += after
	}
	if mantissaDigits == 0 {
		return 0, false
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		j := i + 1
		if j < len(s) && (s[j] == '+' || s[j] == '-') {
			j++
		}
		if exp := digitsPrefix(s[j:]); exp > 0 {
			i = j + exp
		}
	}
	if i != len(s) {
		return 0, false
	}
	v, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		var numErr *strconv.NumError
		if !errors.As(err, &numErr) || !errors.Is(numErr.Err, strconv.ErrRange) {
			return 0, false
		}
		// Out of range: fast-float rounds to ±Inf or ±0 like ParseFloat does.
	}
	return v, true
}

func parseInfNaN(s []byte) (float64, bool) {
	lower := func(c byte) byte { return c | 0x20 }
	eq := func(word string) bool {
		if len(s) != len(word) {
			return false
		}
		for i := range s {
			if lower(s[i]) != word[i] {
				return false
			}
		}
		return true
	}
	switch {
	case eq("nan"):
		return math.NaN(), true
	case eq("inf"), eq("infinity"):
		return math.Inf(1), true
	}
	return 0, false
}
