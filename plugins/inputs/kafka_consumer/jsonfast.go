package kafka_consumer

import (
	"bytes"
	"hash/maphash"
	"math"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/influxdata/telegraf"
	"github.com/influxdata/telegraf/filter"
	"github.com/influxdata/telegraf/metric"
	"github.com/influxdata/telegraf/plugins/parsers/json"
)

// jsonFast decodes the messages Telegraf's json parser would parse, for the
// configurations and inputs where it can give exactly the same metrics, without
// building the map[string]interface{} tree that parser goes through.
//
// It is conservative: parse reports ok false for anything it does not reproduce
// exactly (invalid JSON, duplicate keys, keys that collide once flattened, invalid
// UTF-8, numbers out of range, a time it cannot parse...) and the caller then hands
// the message to Telegraf's parser, which gives the metrics or the error. So a message
// is never rejected here, and one Telegraf rejects is rejected by Telegraf.
//
// A jsonFast is not safe for concurrent use; each partition has its own.
type jsonFast struct {
	parser       *json.Parser // for DefaultTags, which may be set after Init
	name         string
	tagFilter    filter.Filter
	stringFilter filter.Filter
	nameKey      []byte
	timeKey      []byte
	unixFactor   int64  // nanoseconds per unit for the unix formats, else 0
	timeLayout   string // time.ParseInLocation layout for the other formats
	location     *time.Location

	// Scratch space, reused across messages.
	path    []byte  // flattened key of the value being parsed
	keys    []byte  // flattened keys of entries
	strs    []byte  // unescaped string values of entries
	entries []entry // every value of the current object, nested ones included
	slots   []int32 // hash set of entries for unique
	seed    maphash.Seed
	out     []telegraf.Metric
	fields  map[string]interface{}

	// With lines set, parse writes each object's line protocol to lp (see
	// appendLines) instead of making metrics.
	lines    bool
	lp       []byte
	lineOpts lineOptions
	nlines   int
	tagIdx   []int
	num      []byte

	// The keys of the last object, their spans in keys, and what the filters say
	// of each entry's key (see sameKeys); infos is valid for the current object.
	prevKeys  []byte
	prevSpans [][2]int32
	infos     []keyInfo
	msg       []byte // the message being parsed

	// Interned key properties and tag values: messages of a topic mostly share
	// their keys and many tag values, and Metric needs them as strings.
	keyCache   map[string]keyInfo
	valueCache map[string]string
}

// Bounds of the caches, so that keys and values that never repeat cannot grow
// them forever; longer strings are not cached.
const (
	maxKeyCache   = 4096
	maxValueCache = 4096
	maxCachedLen  = 128
	// Objects with more bytes of keys than this are not remembered by sameKeys.
	maxRememberedKeys = 4096
)

// Bounds of the scratch space. Flattened keys repeat their parents' keys, so deeply
// nested documents with long keys could need far more than their own size; those
// go to Telegraf. Buffers grown past keepScratch by a large message are released
// rather than kept for the life of the partition.
const (
	maxKeyBytes = 16 << 20
	keepScratch = 1 << 20
)

// maxJSONDepth is the deepest nesting served; deeper documents fall back. It keeps
// the recursion shallow, and such documents are not what metrics look like.
const maxJSONDepth = 64

type entryKind uint8

const (
	kindNull entryKind = iota
	kindContainer
	kindNumber
	kindString
	kindBool
)

// entry is one value of an object at any depth, with its flattened key. Nulls and
// nested objects and arrays are kept too, only so that duplicate keys are noticed.
type entry struct {
	key [2]int32 // keys[key[0]:key[1]]
	str [2]int32 // strs[str[0]:str[1]] for kindString
	// raw is where in the message a number's text, or the part of it before
	// trailing zeros, is what AppendFloat(num, 'f', -1, 64) writes; else empty.
	raw     [2]int32
	num     float64
	kind    entryKind
	boolean bool
	dropped bool // the time key, which is not a field
}

type keyInfo struct {
	name        string
	tag         bool
	stringField bool
}

// newJSONFast returns a fast path that gives the metrics p gives, or nil if p's
// configuration is one the fast path does not serve.
func newJSONFast(p *json.Parser) *jsonFast {
	// json_query selects with gjson paths before parsing; not reproduced here.
	if p.Query != "" {
		return nil
	}
	d := &jsonFast{
		parser:     p,
		name:       p.MetricName,
		nameKey:    []byte(p.NameKey),
		timeKey:    []byte(p.TimeKey),
		seed:       maphash.MakeSeed(),
		fields:     make(map[string]interface{}),
		keyCache:   make(map[string]keyInfo),
		valueCache: make(map[string]string),
	}
	var err error
	if d.tagFilter, err = filter.Compile(p.TagKeys); err != nil {
		return nil
	}
	if d.stringFilter, err = filter.Compile(p.StringFields); err != nil {
		return nil
	}
	if p.Timezone != "" {
		// The parser's Init loaded the same name, so this cannot fail in practice.
		if d.location, err = time.LoadLocation(p.Timezone); err != nil {
			return nil
		}
	}
	if p.TimeKey != "" {
		if !d.setTimeFormat(p.TimeFormat) {
			return nil
		}
	}
	return d
}

// setTimeFormat resolves json_time_format the way Telegraf's internal.ParseTimestamp
// does, for the formats served: the unix ones and layouts without a zone
// abbreviation (Telegraf resolves abbreviations through the time zone database).
func (d *jsonFast) setTimeFormat(format string) bool {
	switch format {
	case "":
		// Telegraf rejects every object: "use of 'json_time_key' requires 'json_time_format'".
		return false
	case "unix":
		d.unixFactor = int64(time.Second)
		return true
	case "unix_ms":
		d.unixFactor = int64(time.Millisecond)
		return true
	case "unix_us":
		d.unixFactor = int64(time.Microsecond)
		return true
	case "unix_ns":
		d.unixFactor = int64(time.Nanosecond)
		return true
	case "timestamp_tz", "timestamp_tz_ms", "timestamp_tz_us", "timestamp_tz_ns":
		return false
	}
	layout := format
	switch strings.ToLower(format) {
	case "ansic":
		layout = time.ANSIC
	case "unixdate":
		layout = time.UnixDate
	case "rubydate":
		layout = time.RubyDate
	case "rfc822":
		layout = time.RFC822
	case "rfc822z":
		layout = time.RFC822Z
	case "rfc850":
		layout = time.RFC850
	case "rfc1123":
		layout = time.RFC1123
	case "rfc1123z":
		layout = time.RFC1123Z
	case "rfc3339":
		layout = time.RFC3339
	case "rfc3339nano":
		layout = time.RFC3339Nano
	case "stamp":
		layout = time.Stamp
	case "stampmilli":
		layout = time.StampMilli
	case "stampmicro":
		layout = time.StampMicro
	case "stampnano":
		layout = time.StampNano
	}
	if strings.Contains(layout, "MST") {
		return false
	}
	d.timeLayout = layout
	return true
}

// parse returns the metrics of buf, or ok false if the fast path cannot tell them
// exactly; the metrics are then those of Telegraf's parser, or its error. The returned
// slice is reused by the next call.
func (d *jsonFast) parse(buf []byte) (metrics []telegraf.Metric, ok bool) {
	d.out = d.out[:0]
	d.msg = buf
	defer d.release()
	i := skipSpace(buf, 0)
	if i == len(buf) {
		return nil, false
	}
	// Telegraf takes one time for all metrics of a message; with a time key every
	// metric has its own, or falls back.
	var now time.Time
	if len(d.timeKey) == 0 {
		now = time.Now().UTC()
	}
	switch buf[i] {
	case '{':
		if i, ok = d.object(buf, i, now); !ok {
			return nil, false
		}
	case '[':
		i = skipSpace(buf, i+1)
		if i < len(buf) && buf[i] == ']' {
			i++
			break
		}
		for {
			// Every element must be an object; Telegraf rejects anything else.
			if i >= len(buf) || buf[i] != '{' {
				return nil, false
			}
			if i, ok = d.object(buf, i, now); !ok {
				return nil, false
			}
			i = skipSpace(buf, i)
			if i >= len(buf) {
				return nil, false
			}
			if buf[i] == ']' {
				i++
				break
			}
			if buf[i] != ',' {
				return nil, false
			}
			i = skipSpace(buf, i+1)
		}
	default:
		// null, scalars, a BOM or exotic white space: Telegraf's parser decides.
		return nil, false
	}
	// Only JSON white space may follow; Telegraf trims Unicode white space, so
	// anything else goes to it.
	if skipSpace(buf, i) != len(buf) {
		return nil, false
	}
	return d.out, true
}

// release drops scratch buffers a large message has grown.
func (d *jsonFast) release() {
	d.msg = nil
	if cap(d.path) > keepScratch {
		d.path = nil
	}
	if cap(d.keys) > keepScratch {
		d.keys = nil
	}
	if cap(d.strs) > keepScratch {
		d.strs = nil
	}
	if cap(d.entries) > keepScratch/64 {
		d.entries = nil
		d.slots = nil
		d.infos = nil
		d.prevSpans = nil
	}
}

// object parses the top-level object at buf[i] into one metric appended to d.out
// and returns the index after it.
func (d *jsonFast) object(buf []byte, i int, now time.Time) (int, bool) {
	d.path, d.keys, d.strs, d.entries = d.path[:0], d.keys[:0], d.strs[:0], d.entries[:0]
	i, ok := d.members(buf, i, 0, 1)
	if !ok {
		return i, false
	}
	if !d.sameKeys() {
		if !d.unique() {
			return i, false
		}
		d.rememberKeys()
	}
	if d.lines {
		return i, d.appendLine(now)
	}
	m, ok := d.metric(now)
	if !ok {
		return i, false
	}
	d.out = append(d.out, m)
	return i, true
}

// members parses the object at buf[i] whose flattened key is d.path[:plen].
func (d *jsonFast) members(buf []byte, i, plen, depth int) (int, bool) {
	i = skipSpace(buf, i+1)
	if i < len(buf) && buf[i] == '}' {
		return i + 1, true
	}
	for {
		if i >= len(buf) || buf[i] != '"' {
			return i, false
		}
		// As Telegraf's flattener: the key, prefixed by the parent's key and "_"
		// unless the parent's key is empty.
		d.path = d.path[:plen]
		if plen > 0 {
			d.path = append(d.path, '_')
		}
		var ok bool
		if d.path, i, ok = appendString(d.path, buf, i); !ok {
			return i, false
		}
		i = skipSpace(buf, i)
		if i >= len(buf) || buf[i] != ':' {
			return i, false
		}
		if i, ok = d.value(buf, skipSpace(buf, i+1), len(d.path), depth); !ok {
			return i, false
		}
		i = skipSpace(buf, i)
		if i >= len(buf) {
			return i, false
		}
		switch buf[i] {
		case ',':
			i = skipSpace(buf, i+1)
		case '}':
			return i + 1, true
		default:
			return i, false
		}
	}
}

// elements parses the array at buf[i] whose flattened key is d.path[:plen].
func (d *jsonFast) elements(buf []byte, i, plen, depth int) (int, bool) {
	i = skipSpace(buf, i+1)
	if i < len(buf) && buf[i] == ']' {
		return i + 1, true
	}
	for n := 0; ; n++ {
		d.path = d.path[:plen]
		if plen > 0 {
			d.path = append(d.path, '_')
		}
		d.path = strconv.AppendInt(d.path, int64(n), 10)
		var ok bool
		if i, ok = d.value(buf, i, len(d.path), depth); !ok {
			return i, false
		}
		i = skipSpace(buf, i)
		if i >= len(buf) {
			return i, false
		}
		switch buf[i] {
		case ',':
			i = skipSpace(buf, i+1)
		case ']':
			return i + 1, true
		default:
			return i, false
		}
	}
}

// value parses the value at buf[i], whose flattened key is d.path[:plen], into
// entries.
func (d *jsonFast) value(buf []byte, i, plen, depth int) (int, bool) {
	if i >= len(buf) || len(d.keys)+plen > maxKeyBytes {
		return i, false
	}
	e := entry{key: [2]int32{int32(len(d.keys)), int32(len(d.keys) + plen)}}
	d.keys = append(d.keys, d.path[:plen]...)
	var ok bool
	switch c := buf[i]; {
	case c == '{' || c == '[':
		if depth >= maxJSONDepth {
			return i, false
		}
		e.kind = kindContainer
		d.entries = append(d.entries, e)
		if c == '{' {
			return d.members(buf, i, plen, depth+1)
		}
		return d.elements(buf, i, plen, depth+1)
	case c == '"':
		e.kind = kindString
		start := len(d.strs)
		if d.strs, i, ok = appendString(d.strs, buf, i); !ok {
			return i, false
		}
		e.str = [2]int32{int32(start), int32(len(d.strs))}
	case c == 't':
		if !bytes.HasPrefix(buf[i:], []byte("true")) {
			return i, false
		}
		e.kind, e.boolean, i = kindBool, true, i+4
	case c == 'f':
		if !bytes.HasPrefix(buf[i:], []byte("false")) {
			return i, false
		}
		e.kind, i = kindBool, i+5
	case c == 'n':
		if !bytes.HasPrefix(buf[i:], []byte("null")) {
			return i, false
		}
		e.kind, i = kindNull, i+4
	case c == '-' || c >= '0' && c <= '9':
		e.kind = kindNumber
		start := i
		var canonicalEnd int
		if e.num, i, canonicalEnd, ok = parseNumber(buf, i); !ok {
			return i, false
		}
		if canonicalEnd > 0 {
			e.raw = [2]int32{int32(start), int32(canonicalEnd)}
		}
	default:
		return i, false
	}
	d.entries = append(d.entries, e)
	return i, true
}

// unique reports whether no two values of the object share a flattened key. JSON
// with duplicate keys, or keys that collide once flattened ({"a_b":1,"a":{"b":2}}),
// leaves Telegraf's result to the order of encoding/json's last-wins rule and Go's
// map iteration; those go to Telegraf.
func (d *jsonFast) unique() bool {
	n := len(d.entries)
	if n <= 8 {
		for i := 1; i < n; i++ {
			ki := d.key(i)
			for j := range i {
				if bytes.Equal(ki, d.key(j)) {
					return false
				}
			}
		}
		return true
	}
	// An open-addressing set of entry indexes, at most half full.
	size := 16
	for size < 2*n {
		size *= 2
	}
	mask := uint64(size - 1)
	d.slots = slices.Grow(d.slots[:0], size)[:size]
	for i := range d.slots {
		d.slots[i] = -1
	}
	for i := range n {
		k := d.key(i)
		for h := maphash.Bytes(d.seed, k) & mask; ; h = (h + 1) & mask {
			j := d.slots[h]
			if j < 0 {
				d.slots[h] = int32(i)
				break
			}
			if bytes.Equal(k, d.key(int(j))) {
				return false
			}
		}
	}
	return true
}

// sameKeys reports whether the object just parsed has the flattened keys, in the
// same order, of the last one rememberKeys saw. Messages of a topic mostly do; their
// keys are then known to be unique, and infos holds what the filters say of them.
func (d *jsonFast) sameKeys() bool {
	if len(d.entries) != len(d.prevSpans) || !bytes.Equal(d.keys, d.prevKeys) {
		return false
	}
	for i := range d.entries {
		if d.entries[i].key != d.prevSpans[i] {
			return false
		}
	}
	return true
}

// rememberKeys fills infos for the entries of the object just parsed, and keeps its
// keys for sameKeys unless they are large.
func (d *jsonFast) rememberKeys() {
	d.infos = slices.Grow(d.infos[:0], len(d.entries))[:len(d.entries)]
	for i := range d.entries {
		d.infos[i] = keyInfo{}
		if d.entries[i].isValue() {
			d.infos[i] = d.keyInfo(d.key(i))
		}
	}
	if len(d.keys) > maxRememberedKeys {
		d.prevKeys, d.prevSpans = d.prevKeys[:0], d.prevSpans[:0]
		return
	}
	d.prevKeys = append(d.prevKeys[:0], d.keys...)
	d.prevSpans = d.prevSpans[:0]
	for i := range d.entries {
		d.prevSpans = append(d.prevSpans, d.entries[i].key)
	}
}

func (d *jsonFast) key(i int) []byte {
	k := d.entries[i].key
	return d.keys[k[0]:k[1]]
}

func (d *jsonFast) str(e *entry) []byte { return d.strs[e.str[0]:e.str[1]] }

// isValue reports whether e is what Telegraf's flattener makes a field of.
func (e *entry) isValue() bool {
	return e.kind == kindNumber || e.kind == kindString || e.kind == kindBool
}

// find returns the entry with a field's flattened key, or nil.
func (d *jsonFast) find(key []byte) *entry {
	for i := range d.entries {
		if e := &d.entries[i]; e.isValue() && bytes.Equal(d.key(i), key) {
			return e
		}
	}
	return nil
}

// metric builds the metric of the parsed object as Telegraf's parseObject and
// switchFieldToTag do.
func (d *jsonFast) metric(now time.Time) (telegraf.Metric, bool) {
	name, ts, ok := d.nameAndTime(now)
	if !ok {
		return nil, false
	}

	// The fields go through a map that metric.New copies into a slice of the right
	// size: cheaper than growing the metric's slice field by field.
	fields := d.fields
	defer clear(fields)
	var tags []int
	for i := range d.entries {
		e := &d.entries[i]
		if !e.isValue() || e.dropped {
			continue
		}
		info := d.infos[i]
		switch {
		case info.tag:
			tags = append(tags, i)
		case e.kind == kindNumber:
			fields[info.name] = e.num
		case !info.stringField:
			// Telegraf keeps strings and booleans only where json_string_fields says.
		case e.kind == kindString:
			fields[info.name] = string(d.str(e))
		case e.kind == kindBool:
			fields[info.name] = e.boolean
		}
	}
	m := metric.New(name, nil, fields, ts)
	for k, v := range d.parser.DefaultTags {
		m.AddTag(k, v)
	}
	for _, i := range tags {
		e := &d.entries[i]
		key := d.infos[i].name
		switch e.kind {
		case kindString:
			m.AddTag(key, d.intern(d.str(e)))
		case kindBool:
			m.AddTag(key, strconv.FormatBool(e.boolean))
		case kindNumber:
			m.AddTag(key, strconv.FormatFloat(e.num, 'f', -1, 64))
		}
	}
	return m, true
}

// nameAndTime returns the metric name and time of the parsed object, and marks the
// time key dropped; ok false means the time is one the fast path does not convert.
func (d *jsonFast) nameAndTime(now time.Time) (name string, ts time.Time, ok bool) {
	name = d.name
	if len(d.nameKey) > 0 {
		if e := d.find(d.nameKey); e != nil && e.kind == kindString {
			name = d.intern(d.str(e))
		}
	}
	ts = now
	if len(d.timeKey) > 0 {
		e := d.find(d.timeKey)
		if e == nil {
			return "", ts, false
		}
		if ts, ok = d.parseTime(e); !ok {
			return "", ts, false
		}
		e.dropped = true
		if ts.Year() == 0 {
			ts = ts.AddDate(time.Now().Year(), 0, 0)
		}
	}
	return name, ts, true
}

// parseTime is Telegraf's internal.ParseTimestamp for the formats served; ok false
// means the value is one the fast path does not convert (Telegraf may still, or
// may reject it).
func (d *jsonFast) parseTime(e *entry) (time.Time, bool) {
	if d.unixFactor != 0 {
		// Telegraf also accepts strings, sanitised and parsed as big.Rat; those
		// are rare and go to it.
		if e.kind != kindNumber {
			return time.Time{}, false
		}
		return unixTime(e.num, d.unixFactor), true
	}
	if e.kind != kindString {
		return time.Time{}, false
	}
	loc := d.location
	if loc == nil {
		loc = time.UTC
	}
	ts, err := time.ParseInLocation(d.timeLayout, string(d.str(e)), loc)
	if err != nil {
		return time.Time{}, false
	}
	return ts, true
}

// unixTime converts v units of factor nanoseconds since the epoch as Telegraf does,
// which is floor(v*factor) computed exactly with big.Rat, then truncated to int64.
// Whole numbers that fit take a shortcut giving the same result.
func unixTime(v float64, factor int64) time.Time {
	if v == math.Trunc(v) && math.Abs(v) < 1<<53 {
		if n := int64(v); n <= math.MaxInt64/factor && n >= math.MinInt64/factor {
			return time.Unix(0, n*factor).UTC()
		}
	}
	var f big.Rat
	f.SetFloat64(v) // v is finite: it came from JSON
	num := f.Num()
	num.Mul(num, big.NewInt(factor))
	var t big.Int
	t.Div(num, f.Denom())
	return time.Unix(0, t.Int64()).UTC()
}

// keyInfo returns the key as a string and whether tag_keys and json_string_fields
// match it.
func (d *jsonFast) keyInfo(key []byte) keyInfo {
	if info, ok := d.keyCache[string(key)]; ok {
		return info
	}
	name := string(key)
	info := keyInfo{
		name:        name,
		tag:         d.tagFilter != nil && d.tagFilter.Match(name),
		stringField: d.stringFilter != nil && d.stringFilter.Match(name),
	}
	if len(d.keyCache) < maxKeyCache && len(name) <= maxCachedLen {
		d.keyCache[name] = info
	}
	return info
}

// intern returns b as a string, shared with earlier equal values.
func (d *jsonFast) intern(b []byte) string {
	if s, ok := d.valueCache[string(b)]; ok {
		return s
	}
	s := string(b)
	if len(d.valueCache) < maxValueCache && len(s) <= maxCachedLen {
		d.valueCache[s] = s
	}
	return s
}
