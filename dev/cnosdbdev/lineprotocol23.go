package cnosdbdev

import "unicode/utf8"

// parser23 is a port of the search-based line-protocol parser of CnosDB
// 2.3.x and 2.4.0–2.4.2 (LTS/2.3 common/protocol_parser). It is lenient:
// only "\,", "\ " and "\=" are special after a backslash, every other
// backslash stays as it is, and its searches run across newlines.
type parser23 struct {
	defaultTime int64
	names       interner
	lineValues
}

func parseLines23(data []byte, defaultTime int64) ([]Line, error) {
	p := parser23{defaultTime: defaultTime}
	var lines []Line
	spos := 0
	for {
		line, next, ok, err := p.parseLine(data, spos)
		if err != nil {
			return nil, err
		}
		if !ok {
			break
		}
		lines = append(lines, finishLine(line))
		if next >= len(data) {
			break
		}
		spos = next
	}
	return lines, nil
}

// parseLine is long on purpose, as parser243.parse is: it follows CnosDB 2.3's
// line parser step for step, so that it can be checked against that source.
func (p *parser23) parseLine(data []byte, spos int) (Line, int, bool, error) {
	n := len(data)
	for spos < n && isASCIIWhitespace(data[spos]) {
		spos++
	}
	if spos == n {
		return Line{}, 0, false, nil
	}

	epos, needUnescape, err := searchCommaSpaceInMeasurement(data, spos)
	if err != nil {
		return Line{}, 0, false, err
	}
	table, err := p.unescape(data[spos:epos], needUnescape, false)
	if err != nil {
		return Line{}, 0, false, err
	}
	line := Line{Table: table}
	spos = epos + 1

	for spos < n && data[spos-1] != ' ' {
		epos, needUnescape, err := searchEqual(data, spos)
		if err != nil {
			return Line{}, 0, false, err
		}
		key, err := p.unescape(data[spos:epos], needUnescape, true)
		if err != nil {
			return Line{}, 0, false, err
		}
		spos = epos + 1
		if spos >= n {
			return Line{}, 0, false, errInvalidSyntax
		}
		epos, needUnescape, err = searchCommaSpaceInCommon(data, spos)
		if err != nil {
			return Line{}, 0, false, err
		}
		value, err := p.unescape(data[spos:epos], needUnescape, true)
		if err != nil {
			return Line{}, 0, false, err
		}
		spos = epos + 1
		p.tags = append(p.tags, Tag{Key: key, Value: value})
	}

	for spos < n && data[spos] == ' ' {
		spos++
	}
	if spos >= n {
		return Line{}, 0, false, errInvalidSyntax
	}

	for {
		epos, needUnescape, err := searchEqual(data, spos)
		if err != nil {
			return Line{}, 0, false, err
		}
		key, err := p.unescape(data[spos:epos], needUnescape, true)
		if err != nil {
			return Line{}, 0, false, err
		}
		spos = epos + 1
		if spos >= n {
			return Line{}, 0, false, errInvalidSyntax
		}
		epos, needUnescape = searchFieldValueEnd(data, spos)
		value, err := parseFieldValue(data[spos:epos], needUnescape)
		if err != nil {
			return Line{}, 0, false, err
		}
		spos = epos + 1
		p.fields = append(p.fields, Field{Key: key, Value: value})
		if spos >= n || data[spos-1] == ' ' || data[spos-1] == '\n' || data[spos-1] == '\r' {
			break
		}
	}

	p.take(&line)
	if spos >= n {
		line.Time = p.defaultTime
		return line, spos, true, nil
	}
	if data[spos-1] == ' ' {
		for spos < n && data[spos] == ' ' {
			spos++
		}
	}
	line.Time = p.defaultTime
	if data[spos-1] == ' ' {
		ts, used, err := parseInt64UntilInvalid(data[spos:])
		if err != nil {
			return Line{}, 0, false, errTimestamp(spos)
		}
		spos += used
		line.Time = ts
	}
	return line, spos, true, nil
}

// unescape is get_unescaped_measurement (withEqual false) and
// get_unescaped_common (withEqual true).
func (p *parser23) unescape(s []byte, needUnescape, withEqual bool) (string, error) {
	if !needUnescape || len(s) == 0 {
		return p.names.get(s), nil
	}
	out := make([]byte, 0, len(s))
	for i := 0; i+1 < len(s); i++ {
		v1, v2 := s[i], s[i+1]
		if v2 == ',' || v2 == ' ' || (withEqual && v2 == '=') {
			if v1 != '\\' {
				return "", errInvalidSyntax
			}
			continue
		}
		out = append(out, v1)
	}
	out = append(out, s[len(s)-1])
	return p.names.get(out), nil
}

// The search functions walk pairs (v1, v2) from spos; the byte at spos is
// only ever v1, so it is never taken as a delimiter.

func searchCommaSpaceInMeasurement(data []byte, spos int) (int, bool, error) {
	if data[spos] == ',' {
		return 0, false, errUnexpectedToken(spos, data[spos])
	}
	needUnescape := false
	for i := spos + 1; i < len(data); i++ {
		v1, v2 := data[i-1], data[i]
		if (v2 == ' ' || v2 == ',') && v1 != '\\' {
			return i, needUnescape, nil
		}
		needUnescape = needUnescape || v2 == ',' || v2 == ' '
	}
	return 0, false, errInvalidSyntax
}

func searchCommaSpaceInCommon(data []byte, spos int) (int, bool, error) {
	if c := data[spos]; c == ' ' || c == ',' || c == '=' {
		return 0, false, errUnexpectedToken(spos, c)
	}
	needUnescape := false
	for i := spos + 1; i < len(data); i++ {
		v1, v2 := data[i-1], data[i]
		if (v2 == ' ' || v2 == ',') && v1 != '\\' {
			return i, needUnescape, nil
		}
		needUnescape = needUnescape || v2 == ',' || v2 == ' ' || v2 == '='
	}
	return 0, false, errInvalidSyntax
}

func searchEqual(data []byte, spos int) (int, bool, error) {
	if c := data[spos]; c == '=' || c == ' ' || c == ',' {
		return 0, false, errUnexpectedToken(spos, c)
	}
	needUnescape := false
	for i := spos + 1; i < len(data); i++ {
		v1, v2 := data[i-1], data[i]
		if v2 == '=' && v1 != '\\' {
			return i, needUnescape, nil
		}
		needUnescape = needUnescape || v2 == ',' || v2 == ' ' || v2 == '='
	}
	return 0, false, errInvalidSyntax
}

func searchFieldValueEnd(data []byte, spos int) (int, bool) {
	insideQuotes := data[spos] == '"'
	needUnescape := false
	v1Unescaped := false
	for i := spos + 1; i < len(data); i++ {
		v1, v2 := data[i-1], data[i]
		if v2 == '"' && (v1 != '\\' || v1Unescaped) {
			insideQuotes = !insideQuotes
			v1Unescaped = false
			continue
		}
		if insideQuotes {
			v1Unescaped = v1 == '\\' && (v2 == '"' || v2 == '\\')
			needUnescape = needUnescape || v1Unescaped
			continue
		}
		if v2 == ' ' || v2 == ',' || v2 == '\n' || v2 == '\r' {
			return i, needUnescape
		}
	}
	return len(data), needUnescape
}

// rustLossyUTF8 is String::from_utf8_lossy: every maximal invalid
// subsequence becomes one U+FFFD.
func rustLossyUTF8(b []byte) []byte {
	if utf8.Valid(b) {
		return b
	}
	out := make([]byte, 0, len(b)+16)
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r != utf8.RuneError || size > 1 {
			out = append(out, b[i:i+size]...)
			i += size
			continue
		}
		i += invalidSequenceLength(b[i:])
		out = append(out, "\ufffd"...)
	}
	return out
}

// invalidSequenceLength returns the length of the maximal prefix of b that
// starts like a UTF-8 sequence but is not one (at least 1).
func invalidSequenceLength(b []byte) int {
	lead := b[0]
	var want int
	lo, hi := byte(0x80), byte(0xBF)
	switch {
	case lead >= 0xC2 && lead <= 0xDF:
		want = 2
	case lead >= 0xE0 && lead <= 0xEF:
		want = 3
		if lead == 0xE0 {
			lo = 0xA0
		} else if lead == 0xED {
			hi = 0x9F
		}
	case lead >= 0xF0 && lead <= 0xF4:
		want = 4
		if lead == 0xF0 {
			lo = 0x90
		} else if lead == 0xF4 {
			hi = 0x8F
		}
	default:
		return 1
	}
	if len(b) < 2 || b[1] < lo || b[1] > hi {
		return 1
	}
	n := 2
	for n < want && n < len(b) && b[n] >= 0x80 && b[n] <= 0xBF {
		n++
	}
	return n
}
