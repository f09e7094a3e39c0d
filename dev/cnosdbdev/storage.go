package cnosdbdev

import (
	"net/http"
	"sort"
	"strconv"
	"sync"
	"time"
)

const (
	defaultTenant   = "cnosdb"
	defaultDatabase = "public"
	timeColumn      = "time"
)

// systemDatabases exist in the default tenant from the start and cannot be
// dropped (is_system_database also protects information_schema).
var systemDatabases = []string{"public", "usage_schema", "cluster_schema"}

func isSystemDatabase(tenant, name string) bool {
	lower := asciiLower(name)
	if tenant == defaultTenant && (lower == "public" || lower == "cluster_schema") {
		return true
	}
	return lower == "information_schema" || lower == "usage_schema"
}

// store is the emulated cluster: tenants, their databases and the tables
// of each database. Each database has its own lock, so writes to
// different databases do not wait for each other.
type store struct {
	rules     *behaviour
	countOnly bool
	// shapes makes countLines count fields and tags too, for the cost model.
	shapes bool
	now    func() time.Time

	mu      sync.RWMutex
	tenants map[string]map[string]*database
}

func newStore(rules *behaviour, countOnly bool) *store {
	s := &store{
		rules:     rules,
		countOnly: countOnly,
		now:       time.Now,
		tenants:   map[string]map[string]*database{defaultTenant: {}},
	}
	for _, name := range systemDatabases {
		s.tenants[defaultTenant][name] = newDatabase(name, defaultDatabaseOptions())
	}
	return s
}

func (s *store) hasTenant(name string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	_, ok := s.tenants[name]
	return ok
}

func (s *store) database(tenant, name string) *database {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.tenants[tenant][name]
}

func (s *store) databaseNames(tenant string) []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	names := make([]string, 0, len(s.tenants[tenant]))
	for name := range s.tenants[tenant] {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

func (s *store) createDatabase(tenant, name string, opts dbOptions, ifNotExists bool) *apiError {
	s.mu.Lock()
	defer s.mu.Unlock()
	dbs, ok := s.tenants[tenant]
	if !ok {
		return newAPIError(http.StatusUnprocessableEntity, "030010", "The tenant "+tenant+" not found")
	}
	// The meta service checks the replica count before the name.
	if opts.replica > clusterDataNodes {
		return errValidNodeNotEnough(opts.replica, clusterDataNodes)
	}
	if _, exists := dbs[name]; exists {
		if ifNotExists {
			return nil
		}
		return errDatabaseAlreadyExists(name)
	}
	dbs[name] = newDatabase(name, opts)
	return nil
}

func (s *store) dropDatabase(tenant, name string, ifExists bool) *apiError {
	if isSystemDatabase(tenant, name) {
		return errForbidDropDatabase(name)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, exists := s.tenants[tenant][name]; !exists {
		if ifExists {
			return nil
		}
		return errDatabaseNotFound(name)
	}
	delete(s.tenants[tenant], name)
	return nil
}

// clusterDataNodes is the size of the emulated cluster: one node.
const clusterDataNodes = 1

// dbOptions are a database's options and configuration (CREATE DATABASE …
// WITH …). Only ttl, vnodeDuration, precision and strictWrite change how
// the emulator behaves; the others are kept for DESCRIBE DATABASE.
type dbOptions struct {
	ttl                cnosDuration
	shard              uint64
	vnodeDuration      cnosDuration
	replica            uint64
	precision          precision
	maxMemcacheSize    string
	memcachePartitions uint64
	walMaxFileSize     string
	walSync            bool
	strictWrite        bool
	maxCacheReaders    uint64
}

func defaultDatabaseOptions() dbOptions {
	return dbOptions{
		ttl:                durationInfinite,
		shard:              1,
		vnodeDuration:      durationOneYear,
		replica:            1,
		precision:          precisionNS,
		maxMemcacheSize:    "128 MiB",
		memcachePartitions: 16,
		walMaxFileSize:     "128 MiB",
		maxCacheReaders:    32,
	}
}

type database struct {
	name string
	opts dbOptions

	mu      sync.RWMutex
	buckets map[int64]struct{} // start times of the time buckets (vnodes) created so far
	tables  map[string]*table
}

func newDatabase(name string, opts dbOptions) *database {
	return &database{
		name:    name,
		opts:    opts,
		buckets: make(map[int64]struct{}),
		tables:  make(map[string]*table),
	}
}

type columnKind uint8

const (
	kindTime columnKind = iota
	kindTag
	kindField
)

type column struct {
	name  string
	kind  columnKind
	ftype FieldType // kindField only
	slot  int       // position among the table's tags or among its fields
}

// typeName is the column type as CnosDB prints it in type errors.
func (c column) typeName(p precision) string {
	switch c.kind {
	case kindTime:
		return p.timeColumnType()
	case kindTag:
		return "TAG"
	}
	return c.ftype.String()
}

type table struct {
	name    string
	columns []column // time first, then columns in the order they were created
	byName  map[string]int
	tags    int
	fields  int
	series  map[string]*series // by encoded sorted tag set

	rows   int64 // distinct (series, time) rows
	points int64 // points accepted, overwrites included (and lines in count-only mode)
	bytes  int64 // line bytes accepted in count-only mode
}

func newTable(name string) *table {
	t := &table{
		name:   name,
		byName: make(map[string]int),
		series: make(map[string]*series),
	}
	t.columns = append(t.columns, column{name: timeColumn, kind: kindTime})
	t.byName[timeColumn] = 0
	return t
}

func (t *table) addColumn(name string, kind columnKind, ftype FieldType) {
	c := column{name: name, kind: kind, ftype: ftype}
	if kind == kindTag {
		c.slot = t.tags
		t.tags++
	} else {
		c.slot = t.fields
		t.fields++
	}
	t.byName[name] = len(t.columns)
	t.columns = append(t.columns, c)
}

type tagValue struct {
	value string
	set   bool
}

type series struct {
	key  string
	tags []tagValue             // by tag slot; tags added to the table later are missing
	rows map[int64][]FieldValue // by time (database precision), values by field slot
}

// batchColumn is a column of the coordinator's per-request MutableBatch.
// Its kind is decided by the first value written to it; later values only
// need the same physical data (tags and string fields share string data,
// the time column and integer fields share i64 data).
type batchColumn struct {
	kind  columnKind
	ftype FieldType
}

func (c batchColumn) data() FieldType {
	switch c.kind {
	case kindTag:
		return FieldString
	case kindTime:
		return FieldInteger
	}
	return c.ftype
}

func expectedColumnText(t FieldType) string {
	switch t {
	case FieldFloat:
		return "Expected f64 column"
	case FieldInteger:
		return "Expected i64 column"
	case FieldUnsigned:
		return "Expected u64 column"
	case FieldBoolean:
		return "Expected bool column"
	}
	return "Expected string column"
}

// tablePlan is what one request writes to one table.
type tablePlan struct {
	name  string
	cols  map[string]batchColumn
	lines []int
}

// writeResult counts what an accepted write stored.
type writeResult struct {
	lines int
	// fields and tags are summed over the lines, for the cost model.
	fields, tags int
}

// write stores lines in tenant/db atomically: everything is checked first
// (database, timestamps, TTL, types) and nothing is stored when anything
// fails. Lines carry timestamps in reqPrecision.
func (s *store) write(tenant, dbName string, lines []Line, reqPrecision precision) (writeResult, *apiError) {
	db := s.database(tenant, dbName)
	if db == nil {
		return writeResult{}, errDatabaseNotFound(dbName)
	}
	now := s.now()

	db.mu.Lock()
	defer db.mu.Unlock()

	times, newBuckets, apiErr := s.checkTimes(db, lines, reqPrecision, now)
	if apiErr != nil {
		return writeResult{}, apiErr
	}
	plans, apiErr := s.planBatches(lines)
	if apiErr != nil {
		return writeResult{}, apiErr
	}
	for _, p := range plans {
		if apiErr := s.checkSchema(db, p); apiErr != nil {
			return writeResult{}, apiErr
		}
	}
	for _, p := range plans {
		if apiErr := s.checkFieldsPresent(p, lines); apiErr != nil {
			return writeResult{}, apiErr
		}
	}

	for start := range newBuckets {
		db.buckets[start] = struct{}{}
	}
	for _, p := range plans {
		s.apply(db, p, lines, times)
	}
	return writeResult{lines: len(lines)}, nil
}

// checkTimes converts every timestamp into the database precision and
// finds the time buckets the request needs, in line order like the
// coordinator does.
func (s *store) checkTimes(db *database, lines []Line, reqPrecision precision, now time.Time) ([]int64, map[int64]struct{}, *apiError) {
	p := db.opts.precision
	bucketLength := db.opts.vnodeDuration.in(p)
	oldest := p.now(now) - db.opts.ttl.in(p) // INF makes this very negative, never positive overflow
	times := make([]int64, len(lines))
	newBuckets := make(map[int64]struct{})
	lastBucket, haveLast := int64(0), false
	for i := range lines {
		ts, ok := convertTimestamp(reqPrecision, p, lines[i].Time)
		if !ok {
			return nil, nil, errCoordinator("timestamp overflow")
		}
		times[i] = ts
		if s.rules.ttlEveryPoint {
			if !db.opts.ttl.inf && ts < oldest {
				return nil, nil, s.rules.expiredPoint()
			}
			continue
		}
		start := bucketStart(ts, bucketLength)
		if haveLast && start == lastBucket {
			continue
		}
		lastBucket, haveLast = start, true
		if _, ok := db.buckets[start]; ok {
			continue
		}
		if _, ok := newBuckets[start]; ok {
			continue
		}
		if ts < oldest {
			return nil, nil, s.rules.expiredPoint()
		}
		newBuckets[start] = struct{}{}
	}
	if s.rules.ttlEveryPoint {
		for _, ts := range times {
			newBuckets[bucketStart(ts, bucketLength)] = struct{}{}
		}
	}
	return times, newBuckets, nil
}

// planBatches reproduces line_to_batches: per table, the first value
// written to a column decides its kind, and later values of another
// physical type fail the whole request.
func (s *store) planBatches(lines []Line) ([]*tablePlan, *apiError) {
	var plans []*tablePlan
	byName := make(map[string]*tablePlan)
	var last *tablePlan
	for i := range lines {
		l := &lines[i]
		p := last
		if p == nil || p.name != l.Table {
			p = byName[l.Table]
			if p == nil {
				p = &tablePlan{name: l.Table, cols: make(map[string]batchColumn)}
				byName[l.Table] = p
				plans = append(plans, p)
			}
			last = p
		}
		p.lines = append(p.lines, i)
		for _, t := range l.Tags {
			if c, ok := p.cols[t.Key]; ok {
				if c.data() != FieldString {
					return nil, s.rules.batchTypeConflict(t.Key, "Expected string column")
				}
				continue
			}
			p.cols[t.Key] = batchColumn{kind: kindTag}
		}
		for _, f := range l.Fields {
			ft := f.Value.typ
			if c, ok := p.cols[f.Key]; ok {
				if c.data() != ft {
					return nil, s.rules.batchTypeConflict(f.Key, expectedColumnText(ft))
				}
				continue
			}
			p.cols[f.Key] = batchColumn{kind: kindField, ftype: ft}
		}
		if c, ok := p.cols[timeColumn]; ok {
			if c.data() != FieldInteger {
				return nil, s.rules.batchTypeConflict(timeColumn, "Expected i64 type as time column")
			}
		} else {
			p.cols[timeColumn] = batchColumn{kind: kindTime}
		}
	}
	return plans, nil
}

// sortedColumns returns the plan's tag and field names in name order, the
// order of the flatbuffer schema tskv checks.
func (p *tablePlan) sortedColumns() (tags, fields []string) {
	for name, c := range p.cols {
		switch c.kind {
		case kindTag:
			tags = append(tags, name)
		case kindField:
			fields = append(fields, name)
		}
	}
	sort.Strings(tags)
	sort.Strings(fields)
	return tags, fields
}

// checkSchema is check_field_type_or_else_add: every tag must be a tag
// column and every field a field column of the same type.
func (s *store) checkSchema(db *database, p *tablePlan) *apiError {
	t := db.tables[p.name]
	if t == nil && db.opts.strictWrite && !s.countOnly {
		return s.rules.strictWriteMissingTable(db.name, p.name)
	}
	existing := func(name string) (column, bool) {
		if name == timeColumn {
			return column{name: timeColumn, kind: kindTime}, true
		}
		if t == nil {
			return column{}, false
		}
		i, ok := t.byName[name]
		if !ok {
			return column{}, false
		}
		return t.columns[i], true
	}
	tags, fields := p.sortedColumns()
	for _, name := range tags {
		c, ok := existing(name)
		switch {
		case !ok && db.opts.strictWrite:
			return s.rules.strictWriteMissingColumn(name)
		case ok && c.kind != kindTag:
			return s.rules.columnTypeConflict(name, "TAG", c.typeName(db.opts.precision))
		}
	}
	for _, name := range fields {
		c, ok := existing(name)
		ft := p.cols[name].ftype
		switch {
		case !ok && db.opts.strictWrite:
			return s.rules.strictWriteMissingColumn(name)
		case ok && (c.kind != kindField || c.ftype != ft):
			return s.rules.columnTypeConflict(name, ft.String(), c.typeName(db.opts.precision))
		}
	}
	return nil
}

// checkFieldsPresent refuses rows without any field value: tskv needs one.
func (s *store) checkFieldsPresent(p *tablePlan, lines []Line) *apiError {
	for _, i := range p.lines {
		l := &lines[i]
		has := false
		for _, f := range l.Fields {
			if p.cols[f.Key].kind == kindField {
				has = true
				break
			}
		}
		if !has {
			for _, t := range l.Tags {
				if p.cols[t.Key].kind == kindField {
					has = true
					break
				}
			}
		}
		if !has {
			return s.rules.fieldsEmpty()
		}
	}
	return nil
}

// apply creates the table or its new columns (tags, then fields, each in
// name order) and upserts the rows: per field, the last write wins.
func (s *store) apply(db *database, p *tablePlan, lines []Line, times []int64) {
	t := db.tables[p.name]
	if t == nil {
		t = newTable(p.name)
		db.tables[p.name] = t
	}
	tags, fields := p.sortedColumns()
	for _, name := range tags {
		if _, ok := t.byName[name]; !ok {
			t.addColumn(name, kindTag, 0)
		}
	}
	for _, name := range fields {
		if _, ok := t.byName[name]; !ok {
			t.addColumn(name, kindField, p.cols[name].ftype)
		}
	}

	var key []byte
	var rowTags []Tag
	var rowFields []Field
	for _, i := range p.lines {
		l := &lines[i]
		rowTags, rowFields = p.routeValues(l, rowTags[:0], rowFields[:0])

		key = key[:0]
		for _, tag := range rowTags {
			key = strconv.AppendInt(key, int64(len(tag.Key)), 10)
			key = append(key, ':')
			key = append(key, tag.Key...)
			key = strconv.AppendInt(key, int64(len(tag.Value)), 10)
			key = append(key, ':')
			key = append(key, tag.Value...)
		}
		ser := t.series[string(key)]
		if ser == nil {
			ser = &series{key: string(key), tags: make([]tagValue, t.tags), rows: make(map[int64][]FieldValue)}
			for _, tag := range rowTags {
				ser.tags[t.columns[t.byName[tag.Key]].slot] = tagValue{value: tag.Value, set: true}
			}
			t.series[ser.key] = ser
		}
		ts := times[i]
		row, ok := ser.rows[ts]
		if !ok {
			row = make([]FieldValue, t.fields)
			t.rows++
		} else if len(row) < t.fields {
			grown := make([]FieldValue, t.fields)
			copy(grown, row)
			row = grown
		}
		for _, f := range rowFields {
			row[t.columns[t.byName[f.Key]].slot] = f.Value
		}
		ser.rows[ts] = row
		t.points++
	}
}

// routeValues sorts a line's values into the batch columns they land in:
// a string field written to a column that began as a tag becomes a tag
// value, and a tag written to a string field column a string value.
func (p *tablePlan) routeValues(l *Line, tags []Tag, fields []Field) ([]Tag, []Field) {
	moved := false
	for _, t := range l.Tags {
		if p.cols[t.Key].kind == kindField {
			fields = append(fields, Field{Key: t.Key, Value: stringValue(t.Value)})
			moved = true
			continue
		}
		tags = append(tags, t)
	}
	for _, f := range l.Fields {
		if p.cols[f.Key].kind == kindTag {
			tags = append(tags, Tag{Key: f.Key, Value: f.Value.str})
			moved = true
			continue
		}
		fields = append(fields, f)
	}
	if moved {
		// The later write to a shared column wins: fields are written after tags.
		sort.SliceStable(tags, func(i, j int) bool { return tags[i].Key < tags[j].Key })
		tags = dedupKeepLast(tags)
	}
	return tags, fields
}

func dedupKeepLast(tags []Tag) []Tag {
	out := tags[:0]
	for i, t := range tags {
		if i+1 < len(tags) && tags[i+1].Key == t.Key {
			continue
		}
		out = append(out, t)
	}
	return out
}

// countLines is the count-only write: it finds each line's table name and
// counts lines and bytes, without parsing fields or storing anything.
func (s *store) countLines(tenant, dbName string, body []byte) (writeResult, *apiError) {
	db := s.database(tenant, dbName)
	if db == nil {
		return writeResult{}, errDatabaseNotFound(dbName)
	}
	type count struct{ lines, bytes int64 }
	counts := make(map[string]*count)
	total := 0
	var res writeResult
	for start := 0; start < len(body); {
		end := start
		for end < len(body) && body[end] != '\n' {
			end++
		}
		line := body[start:end]
		start = end + 1
		i := 0
		for i < len(line) && isASCIIWhitespace(line[i]) {
			i++
		}
		if i == len(line) || line[i] == '#' {
			continue
		}
		name := measurementName(line[i:])
		c := counts[string(name)]
		if c == nil {
			c = &count{}
			counts[string(name)] = c
		}
		c.lines++
		c.bytes += int64(len(line)) + 1
		total++
		if s.shapes {
			tags, fields := lineShape(line[i:])
			res.tags += tags
			res.fields += fields
		}
	}

	db.mu.Lock()
	defer db.mu.Unlock()
	for name, c := range counts {
		t := db.tables[name]
		if t == nil {
			t = newTable(name)
			db.tables[name] = t
		}
		t.points += c.lines
		t.rows += c.lines
		t.bytes += c.bytes
	}
	res.lines = total
	return res, nil
}

// measurementName returns the measurement of a line: up to the first ',' or
// ' ' that is not escaped, with "\," and "\ " unescaped.
func measurementName(line []byte) []byte {
	escaped := false
	for i, c := range line {
		switch {
		case escaped:
			escaped = false
		case c == '\\':
			escaped = true
		case c == ',' || c == ' ':
			return unescapeMeasurement(line[:i])
		}
	}
	return unescapeMeasurement(line)
}

func unescapeMeasurement(b []byte) []byte {
	for _, c := range b {
		if c == '\\' {
			out := make([]byte, 0, len(b))
			for i := 0; i < len(b); i++ {
				if b[i] == '\\' && i+1 < len(b) && (b[i+1] == ',' || b[i+1] == ' ') {
					continue
				}
				out = append(out, b[i])
			}
			return out
		}
	}
	return b
}
