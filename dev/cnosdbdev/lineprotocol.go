package cnosdbdev

import (
	"errors"
	"fmt"
	"math"
	"unicode/utf8"
)

// FieldType is the type CnosDB gives a line-protocol field value, and so
// the type of the column the field is stored in.
type FieldType uint8

// Field types, with the SQL type of the column they create.
const (
	FieldFloat    FieldType = iota + 1 // DOUBLE: any number without suffix
	FieldInteger                       // BIGINT: suffix i
	FieldUnsigned                      // BIGINT UNSIGNED: suffix u
	FieldBoolean                       // BOOLEAN: t, true, f, false, …
	FieldString                        // STRING: "quoted"
)

// String returns the physical type name CnosDB prints in type errors.
func (t FieldType) String() string {
	switch t {
	case FieldFloat:
		return "F64"
	case FieldInteger:
		return "I64"
	case FieldUnsigned:
		return "U64"
	case FieldBoolean:
		return "BOOL"
	case FieldString:
		return "STRING"
	}
	return "UNKNOWN"
}

// sqlType is the column type DESCRIBE TABLE shows.
func (t FieldType) sqlType() string {
	switch t {
	case FieldFloat:
		return "DOUBLE"
	case FieldInteger:
		return "BIGINT"
	case FieldUnsigned:
		return "BIGINT UNSIGNED"
	case FieldBoolean:
		return "BOOLEAN"
	case FieldString:
		return "STRING"
	}
	return "UNKNOWN"
}

// FieldValue is one typed field value. The zero value is "no value".
type FieldValue struct {
	typ  FieldType
	bits uint64
	str  string
}

// Type returns the value's type, 0 for the zero value.
func (v FieldValue) Type() FieldType { return v.typ }

// Float returns a FieldFloat value.
func (v FieldValue) Float() float64 { return math.Float64frombits(v.bits) }

// Int returns a FieldInteger value.
func (v FieldValue) Int() int64 { return int64(v.bits) }

// Uint returns a FieldUnsigned value.
func (v FieldValue) Uint() uint64 { return v.bits }

// Bool returns a FieldBoolean value.
func (v FieldValue) Bool() bool { return v.bits != 0 }

// String formats the value the way CnosDB's CSV answers do.
func (v FieldValue) String() string {
	switch v.typ {
	case FieldFloat:
		return formatFloatArrow(v.Float())
	case FieldInteger, FieldUnsigned, FieldBoolean:
		return string(appendIntegerOrBool(nil, v))
	case FieldString:
		return v.str
	}
	return ""
}

func floatValue(f float64) FieldValue   { return FieldValue{typ: FieldFloat, bits: math.Float64bits(f)} }
func integerValue(i int64) FieldValue   { return FieldValue{typ: FieldInteger, bits: uint64(i)} }
func unsignedValue(u uint64) FieldValue { return FieldValue{typ: FieldUnsigned, bits: u} }
func stringValue(s string) FieldValue   { return FieldValue{typ: FieldString, str: s} }
func booleanValue(b bool) FieldValue {
	if b {
		return FieldValue{typ: FieldBoolean, bits: 1}
	}
	return FieldValue{typ: FieldBoolean}
}

// Tag is one tag of a line.
type Tag struct {
	Key, Value string
}

// Field is one field of a line.
type Field struct {
	Key   string
	Value FieldValue
}

// Line is one parsed line-protocol line.
type Line struct {
	Table  string
	Tags   []Tag   // sorted by key; of duplicate keys the first one is kept
	Fields []Field // sorted by key; of duplicate keys the first one is kept
	// Time is the timestamp as written, in the request's precision; lines
	// without one get the parser's default time (the server time in ns).
	Time int64
}

// ParseError is a line-protocol syntax error with CnosDB's message.
type ParseError struct {
	// Message is the parser's text, e.g. "unexpect end line start at '17'";
	// the server prefixes it with "Error parsing message: ".
	Message string
	// Crash is set for input on which CnosDB's parser indexes out of
	// bounds (a field with an empty value such as "m f=,g=1"). The Rust
	// handler panics and the server closes the connection without an answer.
	Crash bool
}

func (e *ParseError) Error() string { return e.Message }

// ErrInvalidUTF8 is returned in 2.4 mode for bodies that are not UTF-8.
var ErrInvalidUTF8 = errors.New("invalid utf-8 sequence")

// ParseLineProtocol parses a write body the way the given CnosDB version
// does ("2.4" or "" for 2.4.3, "2.3" for the 2.3 / ≤2.4.2 parser):
// the whole body at once, one error rejecting everything. Lines without a
// timestamp get defaultTime. In 2.4 mode a body that is not UTF-8 is
// refused with ErrInvalidUTF8; the 2.3 server replaces invalid sequences
// with U+FFFD first. Errors are *ParseError.
func ParseLineProtocol(mode string, body []byte, defaultTime int64) ([]Line, error) {
	b, err := behaviourFor(mode)
	if err != nil {
		return nil, err
	}
	if b.lossyUTF8 {
		body = rustLossyUTF8(body)
	} else if !utf8.Valid(body) {
		return nil, ErrInvalidUTF8
	}
	return b.parseLines(body, defaultTime)
}

// Parser errors of the 2.4.3 parser (common/protocol_parser/src/line_protocol/parser.rs).

var errInvalidSyntax = &ParseError{Message: "invalid line protocol syntax"}

// errCrash marks input on which the Rust parser panics.
var errCrash = &ParseError{Message: "the parser panics on this input (index out of bounds)", Crash: true}

func errUnexpectedToken(pos int, token byte) *ParseError {
	// Rust prints the byte cast to char: bytes above 0x7f show as Latin-1.
	return &ParseError{Message: fmt.Sprintf("unexpect token '%s' at %d", string(rune(token)), pos)}
}

func errUnexpectedEnd(pos int) *ParseError {
	return &ParseError{Message: fmt.Sprintf("unexpect end line start at '%d'", pos)}
}

func errFieldValue(content []byte) *ParseError {
	return &ParseError{Message: "invalid field value: '" + string(content) + "'"}
}

func errTimestamp(pos int) *ParseError {
	return &ParseError{Message: fmt.Sprintf("fail to parse timestamp at %d", pos)}
}

// isASCIIWhitespace is Rust's u8::is_ascii_whitespace (no vertical tab).
func isASCIIWhitespace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r'
}

type parseState uint8

const (
	stateLineBegin parseState = iota
	stateTable
	stateTagKey
	stateTagValue
	stateFieldKey
	stateFieldValue
	stateTimestamp
)

// span marks a token: start, end (exclusive, 0 while unknown) and whether a
// backslash appeared in it.
type span struct {
	start, end int
	escaped    bool
}

// parser243 is a byte-for-byte port of CnosDB 2.4.3's line-protocol state
// machine, quirks included: the character that switches state after a run
// of spaces is not interpreted, a space before the newline makes the rest
// of the body a timestamp, field keys may contain spaces and commas.
type parser243 struct {
	defaultTime int64
	names       interner
	lineValues
}

// lineValues collects the tags and fields of all lines of a request in two
// shared slices; each line gets a window of them, which saves two
// allocations per line.
type lineValues struct {
	tags       []Tag
	fields     []Field
	tagStart   int
	fieldStart int
}

// take hands the values collected since the last call to line.
func (v *lineValues) take(line *Line) {
	if n := len(v.tags); n > v.tagStart {
		line.Tags = v.tags[v.tagStart:n:n]
		v.tagStart = n
	}
	if n := len(v.fields); n > v.fieldStart {
		line.Fields = v.fields[v.fieldStart:n:n]
		v.fieldStart = n
	}
}

func parseLines243(data []byte, defaultTime int64) ([]Line, error) {
	p := parser243{defaultTime: defaultTime}
	return p.parse(data)
}

// parse is one long function on purpose: it follows CnosDB's own state machine
// state for state, so that it can be checked against that source line by line;
// split up, it would no longer read as the port it is.
func (p *parser243) parse(data []byte) ([]Line, error) {
	n := estimateLines(data)
	lines := make([]Line, 0, n)
	p.tags = make([]Tag, 0, 2*n)
	p.fields = make([]Field, 0, 4*n)
	var line Line

	comment := false
	skipSpace := false
	nextEscape := false
	insideQuotes := false
	var key, val span
	status := stateLineBegin

	for index := 0; index < len(data); index++ {
		c := data[index]
		switch status {
		case stateLineBegin:
			if comment && (c == '\r' || c == '\n') {
				comment = false
				continue
			}
			if comment || isASCIIWhitespace(c) {
				continue
			}
			if c == '#' {
				comment = true
				continue
			}
			key = span{start: index}
			status = stateTable

		case stateTable:
			if skipSpace {
				if c != ' ' {
					skipSpace = false
					key = span{start: index}
					status = stateFieldKey
				}
				continue
			}
			switch {
			case nextEscape:
				if c != ',' && c != ' ' && c != '\\' && c != '"' && c != '\'' {
					return nil, errUnexpectedToken(index, c)
				}
				nextEscape = false
			case c == '\\':
				nextEscape = true
				key.escaped = true
			case c == ',':
				table, err := p.escape(data[key.start:index], key.escaped)
				if err != nil {
					return nil, err
				}
				line.Table = table
				key = span{start: index + 1}
				status = stateTagKey
			case c == ' ':
				table, err := p.escape(data[key.start:index], key.escaped)
				if err != nil {
					return nil, err
				}
				line.Table = table
				skipSpace = true
			}

		case stateTagKey:
			switch {
			case nextEscape:
				if !isKeyEscapable(c) {
					return nil, errUnexpectedToken(index, c)
				}
				nextEscape = false
			case c == '\\':
				nextEscape = true
				key.escaped = true
			case c == '=':
				key.end = index
				val = span{start: index + 1}
				status = stateTagValue
			}

		case stateTagValue:
			if skipSpace {
				if c != ' ' {
					skipSpace = false
					key = span{start: index}
					status = stateFieldKey
				}
				continue
			}
			switch {
			case nextEscape:
				if !isKeyEscapable(c) {
					return nil, errUnexpectedToken(index, c)
				}
				nextEscape = false
			case c == '\\':
				nextEscape = true
				val.escaped = true
			case c == ',' || c == ' ':
				if err := p.pushTag(data, key, val, index); err != nil {
					return nil, err
				}
				if c == ',' {
					key = span{start: index + 1}
					status = stateTagKey
				} else {
					skipSpace = true
				}
			}

		case stateFieldKey:
			switch {
			case nextEscape:
				if !isKeyEscapable(c) {
					return nil, errUnexpectedToken(index, c)
				}
				nextEscape = false
			case c == '\\':
				nextEscape = true
				key.escaped = true
			case c == '=':
				key.end = index
				val = span{start: index + 1}
				status = stateFieldValue
			}

		case stateFieldValue:
			if skipSpace {
				if c != ' ' {
					skipSpace = false
					key = span{start: index}
					status = stateTimestamp
				}
				continue
			}
			switch {
			case nextEscape:
				if c != '\'' && c != '"' && c != '\\' {
					return nil, errUnexpectedToken(index, c)
				}
				nextEscape = false
			case c == '"':
				insideQuotes = !insideQuotes
			case c == '\\':
				nextEscape = true
				val.escaped = true
			case insideQuotes:
			case c == ',':
				if err := p.pushField(data, key, val, index); err != nil {
					return nil, err
				}
				key = span{start: index + 1}
				status = stateFieldKey
			case c == ' ':
				if err := p.pushField(data, key, val, index); err != nil {
					return nil, err
				}
				key = span{start: index}
				skipSpace = true
			case c == '\r' || c == '\n':
				if err := p.pushField(data, key, val, index); err != nil {
					return nil, err
				}
				line.Time = p.defaultTime
				p.take(&line)
				lines = append(lines, finishLine(line))
				line = Line{}
				key = span{}
				status = stateLineBegin
			}

		case stateTimestamp:
			if isASCIIWhitespace(c) {
				ts := p.defaultTime
				if key.start != index {
					v, err := parseInt64(data[key.start:index])
					if err != nil {
						return nil, errTimestamp(index)
					}
					ts = v
				}
				line.Time = ts
				p.take(&line)
				lines = append(lines, finishLine(line))
				line = Line{}
				key = span{start: index + 1}
				status = stateLineBegin
			}
		}
	}

	switch status {
	case stateTimestamp:
		ts := p.defaultTime
		if key.start != 0 {
			v, _, err := parseInt64UntilInvalid(data[key.start:])
			if err != nil {
				return nil, errTimestamp(key.start)
			}
			ts = v
		}
		line.Time = ts
		p.take(&line)
		lines = append(lines, finishLine(line))
		status = stateLineBegin
	case stateFieldValue:
		if insideQuotes {
			return nil, errUnexpectedEnd(val.start)
		}
		if key.end > key.start && len(data) > val.start {
			if err := p.pushField(data, key, val, len(data)); err != nil {
				return nil, err
			}
		}
		line.Time = p.defaultTime
		p.take(&line)
		lines = append(lines, finishLine(line))
		status = stateLineBegin
	}
	if status == stateLineBegin {
		return lines, nil
	}
	return nil, errUnexpectedEnd(key.start)
}

func isKeyEscapable(c byte) bool {
	return c == ',' || c == ' ' || c == '=' || c == '\\' || c == '"' || c == '\''
}

func (p *parser243) pushTag(data []byte, key, val span, end int) error {
	k, err := p.escape(data[key.start:key.end], key.escaped)
	if err != nil {
		return err
	}
	v, err := p.escape(data[val.start:end], val.escaped)
	if err != nil {
		return err
	}
	p.tags = append(p.tags, Tag{Key: k, Value: v})
	return nil
}

func (p *parser243) pushField(data []byte, key, val span, end int) error {
	k, err := p.escape(data[key.start:key.end], key.escaped)
	if err != nil {
		return err
	}
	v, err := parseFieldValue(data[val.start:end], val.escaped)
	if err != nil {
		return err
	}
	p.fields = append(p.fields, Field{Key: k, Value: v})
	return nil
}

// escape is the 2.4.3 parser's escape(): when the token held a backslash,
// every ',', ' ' and '=' must follow a backslash, which is dropped; other
// escapes (\\, \", \') stay as two bytes.
func (p *parser243) escape(s []byte, needUnescape bool) (string, error) {
	if !needUnescape {
		return p.names.get(s), nil
	}
	if len(s) == 0 {
		return "", nil
	}
	out := make([]byte, 0, len(s))
	for i := 0; i+1 < len(s); i++ {
		v1, v2 := s[i], s[i+1]
		if v2 == ',' || v2 == ' ' || v2 == '=' {
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

// finishLine is Line::sort_dedup_and_hash: a stable sort of tags and
// fields by key, then later duplicates are dropped. Lines have few keys,
// so an insertion sort is the fastest stable sort here.
func finishLine(l Line) Line {
	for i := 1; i < len(l.Tags); i++ {
		for j := i; j > 0 && l.Tags[j].Key < l.Tags[j-1].Key; j-- {
			l.Tags[j], l.Tags[j-1] = l.Tags[j-1], l.Tags[j]
		}
	}
	for i := 1; i < len(l.Tags); i++ {
		if l.Tags[i].Key == l.Tags[i-1].Key {
			out := l.Tags[:i]
			for _, t := range l.Tags[i:] {
				if t.Key != out[len(out)-1].Key {
					out = append(out, t)
				}
			}
			l.Tags = out
			break
		}
	}
	for i := 1; i < len(l.Fields); i++ {
		for j := i; j > 0 && l.Fields[j].Key < l.Fields[j-1].Key; j-- {
			l.Fields[j], l.Fields[j-1] = l.Fields[j-1], l.Fields[j]
		}
	}
	for i := 1; i < len(l.Fields); i++ {
		if l.Fields[i].Key == l.Fields[i-1].Key {
			out := l.Fields[:i]
			for _, f := range l.Fields[i:] {
				if f.Key != out[len(out)-1].Key {
					out = append(out, f)
				}
			}
			l.Fields = out
			break
		}
	}
	return l
}

// estimateLines guesses the number of lines to size the result once.
func estimateLines(data []byte) int {
	n := len(data) / 64
	if n > 1<<20 {
		n = 1 << 20
	}
	return n
}

// interner shares the strings of repeated names (tables, keys, tag values)
// within one request, so that a large body costs few allocations.
type interner struct {
	m map[string]string
}

const maxInternedLength = 256

func (in *interner) get(b []byte) string {
	if len(b) > maxInternedLength {
		return string(b)
	}
	if s, ok := in.m[string(b)]; ok {
		return s
	}
	if in.m == nil {
		in.m = make(map[string]string)
	}
	if len(in.m) >= 1<<16 {
		return string(b)
	}
	s := string(b)
	in.m[s] = s
	return s
}
