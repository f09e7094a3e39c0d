package cnosdbdev

import (
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

// The SQL the emulator understands, one statement per request:
//
//	SELECT <integer>
//	SELECT * | COUNT(*) | exact_count(*) | col[, col…] FROM [db.]table
//	    [WHERE col <op> literal [AND …]] [ORDER BY time [ASC|DESC]] [LIMIT n]
//	SHOW DATABASES
//	SHOW TABLES [ON db]
//	CREATE DATABASE [IF NOT EXISTS] name [WITH option value …]
//	DROP DATABASE [IF EXISTS] name [AFTER '…']
//	DROP TABLE [IF EXISTS] [db.]table
//	DESCRIBE|DESC DATABASE name
//	DESCRIBE|DESC TABLE [db.]table
//
// Other statements CnosDB knows (INSERT, ALTER, …) are answered with
// 010005 "This feature is not implemented".

// resultType is the Arrow type of an answer column.
type resultType uint8

const (
	resultTime resultType = iota
	resultString
	resultFloat
	resultInt
	resultUint
	resultBool
)

type resultColumn struct {
	name string
	typ  resultType
	prec precision // resultTime only
}

// resultSet is an SQL answer. A nil *resultSet is the answer of a
// statement without output (DDL): an empty body in every format.
type resultSet struct {
	columns []resultColumn
	rows    [][]FieldValue // zero FieldValue is NULL; time values are FieldInteger
}

func resultTypeOfField(t FieldType) resultType {
	switch t {
	case FieldFloat:
		return resultFloat
	case FieldInteger:
		return resultInt
	case FieldUnsigned:
		return resultUint
	case FieldBoolean:
		return resultBool
	}
	return resultString
}

// sqlSession is the context of one SQL request.
type sqlSession struct {
	s      *Server
	tenant string
	db     string
}

// executeSQL runs one request body: it must hold one statement.
func (s *Server) executeSQL(tenant, db, sql string) (*resultSet, *apiError) {
	toks, apiErr := tokenizeSQL(sql)
	if apiErr != nil {
		return nil, apiErr
	}
	stmts := splitStatements(toks)
	if len(stmts) > 1 {
		return nil, errMultiStatement(len(stmts), sql)
	}
	if len(stmts) == 0 {
		return nil, nil
	}
	sess := &sqlSession{s: s, tenant: tenant, db: db}
	p := &sqlParser{toks: stmts[0]}
	first := p.peek()
	switch {
	case first.isKeyword("SELECT"):
		p.next()
		return sess.selectStatement(p, sql)
	case first.isKeyword("SHOW"):
		p.next()
		return sess.showStatement(p, sql)
	case first.isKeyword("CREATE"):
		p.next()
		return sess.createStatement(p, sql)
	case first.isKeyword("DROP"):
		p.next()
		return sess.dropStatement(p, sql)
	case first.isKeyword("DESCRIBE"), first.isKeyword("DESC"):
		p.next()
		return sess.describeStatement(p, sql)
	}
	for _, kw := range []string{"INSERT", "ALTER", "UPDATE", "DELETE", "EXPLAIN", "GRANT", "REVOKE", "COPY", "COMPACT", "RECOVER", "KILL", "WITH", "VALUES", "TRUNCATE"} {
		if first.isKeyword(kw) {
			return nil, unsupported(sql)
		}
	}
	return nil, p.expected("an SQL statement")
}

func unsupported(sql string) *apiError {
	return errNotImplemented("the CnosDB development server does not support this statement: " + strings.TrimSpace(sql))
}

func (sess *sqlSession) showStatement(p *sqlParser, sql string) (*resultSet, *apiError) {
	switch {
	case p.parseKeyword("DATABASES"):
		if apiErr := p.expectEnd(); apiErr != nil {
			return nil, apiErr
		}
		rs := &resultSet{columns: []resultColumn{{name: "database_name", typ: resultString}}}
		for _, name := range sess.s.store.databaseNames(sess.tenant) {
			rs.rows = append(rs.rows, []FieldValue{stringValue(name)})
		}
		return rs, nil
	case p.parseKeyword("TABLES"):
		dbName := sess.db
		if p.parseKeyword("ON") {
			name, apiErr := p.parseIdentifier()
			if apiErr != nil {
				return nil, apiErr
			}
			dbName = name
		}
		if apiErr := p.expectEnd(); apiErr != nil {
			return nil, apiErr
		}
		rs := &resultSet{columns: []resultColumn{{name: "table_name", typ: resultString}}}
		if db := sess.s.store.database(sess.tenant, dbName); db != nil {
			db.mu.RLock()
			names := make([]string, 0, len(db.tables))
			for name := range db.tables {
				names = append(names, name)
			}
			db.mu.RUnlock()
			sort.Strings(names)
			for _, name := range names {
				rs.rows = append(rs.rows, []FieldValue{stringValue(name)})
			}
		}
		return rs, nil
	}
	return nil, unsupported(sql)
}

func (sess *sqlSession) dropStatement(p *sqlParser, sql string) (*resultSet, *apiError) {
	switch {
	case p.parseKeyword("DATABASE"):
		ifExists := p.parseKeywords("IF", "EXISTS")
		name, apiErr := p.parseIdentifier()
		if apiErr != nil {
			return nil, apiErr
		}
		if p.parseKeyword("AFTER") {
			if _, apiErr := p.parseStringValue(); apiErr != nil {
				return nil, apiErr
			}
		}
		if apiErr := p.expectEnd(); apiErr != nil {
			return nil, apiErr
		}
		return nil, sess.s.store.dropDatabase(sess.tenant, name, ifExists)
	case p.parseKeyword("TABLE"):
		ifExists := p.parseKeywords("IF", "EXISTS")
		dbName, name, apiErr := p.parseObjectName()
		if apiErr != nil {
			return nil, apiErr
		}
		if apiErr := p.expectEnd(); apiErr != nil {
			return nil, apiErr
		}
		if dbName == "" {
			dbName = sess.db
		}
		db := sess.s.store.database(sess.tenant, dbName)
		if db == nil {
			if ifExists {
				return nil, nil
			}
			return nil, errDatabaseNotFound(dbName)
		}
		db.mu.Lock()
		defer db.mu.Unlock()
		if _, ok := db.tables[name]; !ok {
			if ifExists {
				return nil, nil
			}
			return nil, errTableNotFoundInMeta(name)
		}
		delete(db.tables, name)
		return nil, nil
	}
	return nil, unsupported(sql)
}

func (sess *sqlSession) describeStatement(p *sqlParser, sql string) (*resultSet, *apiError) {
	switch {
	case p.parseKeyword("DATABASE"):
		name, apiErr := p.parseIdentifier()
		if apiErr != nil {
			return nil, apiErr
		}
		if apiErr := p.expectEnd(); apiErr != nil {
			return nil, apiErr
		}
		db := sess.s.store.database(sess.tenant, name)
		if db == nil {
			return nil, errDatabaseNotFound(name)
		}
		o := db.opts
		return &resultSet{
			columns: []resultColumn{
				{name: "ttl", typ: resultString},
				{name: "shard", typ: resultUint},
				{name: "vnode_duration", typ: resultString},
				{name: "replica", typ: resultUint},
				{name: "precision", typ: resultString},
				{name: "max_memcache_size", typ: resultString},
				{name: "memcache_partitions", typ: resultUint},
				{name: "wal_max_file_size", typ: resultString},
				{name: "wal_sync", typ: resultBool},
				{name: "strict_write", typ: resultBool},
				{name: "max_cache_readers", typ: resultUint},
			},
			rows: [][]FieldValue{{
				stringValue(o.ttl.String()),
				unsignedValue(o.shard),
				stringValue(o.vnodeDuration.String()),
				unsignedValue(o.replica),
				stringValue(o.precision.String()),
				stringValue(o.maxMemcacheSize),
				unsignedValue(o.memcachePartitions),
				stringValue(o.walMaxFileSize),
				booleanValue(o.walSync),
				booleanValue(o.strictWrite),
				unsignedValue(o.maxCacheReaders),
			}},
		}, nil
	case p.parseKeyword("TABLE"):
		dbName, name, apiErr := p.parseObjectName()
		if apiErr != nil {
			return nil, apiErr
		}
		if apiErr := p.expectEnd(); apiErr != nil {
			return nil, apiErr
		}
		if dbName == "" {
			dbName = sess.db
		}
		db := sess.s.store.database(sess.tenant, dbName)
		if db == nil {
			return nil, errDatabaseNotFound(dbName)
		}
		db.mu.RLock()
		defer db.mu.RUnlock()
		t := db.tables[name]
		if t == nil {
			return nil, errTableNotFoundInMeta(sess.tenant + "." + dbName + "." + name)
		}
		rs := &resultSet{columns: []resultColumn{
			{name: "column_name", typ: resultString},
			{name: "data_type", typ: resultString},
			{name: "column_type", typ: resultString},
			{name: "compression_codec", typ: resultString},
		}}
		for _, c := range t.columns {
			dataType, columnType := db.opts.precision.sqlTimeType(), "TIME"
			switch c.kind {
			case kindTag:
				dataType, columnType = "STRING", "TAG"
			case kindField:
				dataType, columnType = c.ftype.sqlType(), "FIELD"
			}
			rs.rows = append(rs.rows, []FieldValue{
				stringValue(c.name), stringValue(dataType), stringValue(columnType), stringValue("DEFAULT"),
			})
		}
		return rs, nil
	}
	return nil, unsupported(sql)
}

// parseStringValue is CnosDB's parse_string_value: only a single-quoted
// string is a string value.
func (p *sqlParser) parseStringValue() (string, *apiError) {
	t := p.peek()
	switch t.kind {
	case tokString:
		p.pos++
		return t.value, nil
	case tokNumber:
		p.pos++
		return "", errSQLParser("expected string value, but found : " + t.text)
	case tokWord:
		if t.isKeyword("TRUE") || t.isKeyword("FALSE") || t.isKeyword("NULL") {
			p.pos++
			return "", errSQLParser("expected string value, but found : " + asciiLower(t.text))
		}
	case tokQuotedIdent:
		p.pos++
		return "", errSQLParser("expected string value, but found : " + t.display())
	}
	return "", p.expected("a concrete value")
}

// parseNumber is CnosDB's parse_number::<u64>.
func (p *sqlParser) parseNumber() (uint64, *apiError) {
	t := p.peek()
	if t.kind != tokNumber {
		return 0, p.expected("literal number")
	}
	p.pos++
	v, err := strconv.ParseUint(t.text, 10, 64)
	if err != nil {
		return 0, errSQLParser("this option should be a unsigned number, but get " + t.text)
	}
	return v, nil
}

func (sess *sqlSession) createStatement(p *sqlParser, sql string) (*resultSet, *apiError) {
	if !p.parseKeyword("DATABASE") {
		return nil, unsupported(sql)
	}
	ifNotExists := p.parseKeywords("IF", "NOT", "EXISTS")
	name, apiErr := p.parseIdentifier()
	if apiErr != nil {
		return nil, apiErr
	}
	if strings.Contains(name, "/") {
		return nil, errSQLParser("not supported keyword contains '/': " + name)
	}
	if strings.TrimSpace(name) == "" {
		return nil, errSQLParser("Name cannot be empty or contain only spaces")
	}
	opts, apiErr := parseDatabaseOptions(p)
	if apiErr != nil {
		return nil, apiErr
	}
	if apiErr := p.expectEnd(); apiErr != nil {
		return nil, apiErr
	}
	return nil, sess.s.store.createDatabase(sess.tenant, name, opts, ifNotExists)
}

// parseDatabaseOptions is parse_database_options_and_config followed by the
// planner's checks of the values. Options come in any order, each with an
// optional '='.
func parseDatabaseOptions(p *sqlParser) (dbOptions, *apiError) {
	opts := defaultDatabaseOptions()
	if !p.parseKeyword("WITH") {
		return opts, nil
	}
	var ttl, vnode, prec, walSync, strict *string
options:
	for {
		t := p.peek()
		if t.kind != tokWord {
			break
		}
		option := strings.ToUpper(t.text)
		var target **string
		var number *uint64
		switch option {
		case "TTL":
			target = &ttl
		case "VNODE_DURATION":
			target = &vnode
		case "PRECISION":
			target = &prec
		case "WAL_SYNC":
			target = &walSync
		case "STRICT_WRITE":
			target = &strict
		case "MAX_MEMCACHE_SIZE", "WAL_MAX_FILE_SIZE":
		case "SHARD":
			number = &opts.shard
		case "REPLICA":
			number = &opts.replica
		case "MEMCACHE_PARTITIONS":
			number = &opts.memcachePartitions
		case "MAX_CACHE_READERS":
			number = &opts.maxCacheReaders
		default:
			break options
		}
		p.next()
		p.consumeSymbol("=")
		if number != nil {
			v, apiErr := p.parseNumber()
			if apiErr != nil {
				return opts, apiErr
			}
			if v == 0 && option == "SHARD" {
				return opts, errSQLParser("shard number should be greater than 0")
			}
			if v == 0 && option == "REPLICA" {
				return opts, errSQLParser("replica number should be greater than 0")
			}
			*number = v
			continue
		}
		v, apiErr := p.parseStringValue()
		if apiErr != nil {
			return opts, apiErr
		}
		switch option {
		case "MAX_MEMCACHE_SIZE":
			opts.maxMemcacheSize = v
		case "WAL_MAX_FILE_SIZE":
			opts.walMaxFileSize = v
		default:
			*target = &v
		}
	}
	if ttl != nil {
		d, err := parseCnosDuration(*ttl)
		if err != nil {
			return opts, errSQLParser(*ttl + " is not a valid duration or duration overflow")
		}
		opts.ttl = d
	}
	if vnode != nil {
		d, err := parseCnosDuration(*vnode)
		if err != nil {
			return opts, errSQLParser(*vnode + " is not a valid duration or duration overflow")
		}
		opts.vnodeDuration = d
	}
	if prec != nil {
		pr, ok := parsePrecision(*prec)
		if !ok {
			return opts, errSQLParser(*prec + " is not a valid precision, use like 'ms', 'us', 'ns'")
		}
		opts.precision = pr
	}
	for _, b := range []struct {
		text *string
		dst  *bool
	}{{walSync, &opts.walSync}, {strict, &opts.strictWrite}} {
		if b.text == nil {
			continue
		}
		switch *b.text {
		case "true":
			*b.dst = true
		case "false":
			*b.dst = false
		default:
			return opts, errSQLParser(*b.text + " is not a valid bool value, use like 'true', 'false'")
		}
	}
	return opts, nil
}

// Queries.

type projectionKind uint8

const (
	projectAll projectionKind = iota
	projectColumns
	projectCount
	projectExactCount
)

type comparison struct {
	column string
	op     string // = != <> < <= > >=
	lit    sqlToken
	neg    bool // a '-' before a number
}

type selectQuery struct {
	projection projectionKind
	columns    []string
	db, table  string
	where      []comparison
	orderDesc  bool
	ordered    bool
	limit      int64 // -1: none
}

func (sess *sqlSession) selectStatement(p *sqlParser, sql string) (*resultSet, *apiError) {
	// SELECT <integer literal>
	if t := p.peek(); t.kind == tokNumber && p.pos+1 == len(p.toks) {
		v, err := strconv.ParseInt(t.text, 10, 64)
		if err != nil {
			return nil, unsupported(sql)
		}
		return &resultSet{
			columns: []resultColumn{{name: "Int64(" + t.text + ")", typ: resultInt}},
			rows:    [][]FieldValue{{integerValue(v)}},
		}, nil
	}

	q := selectQuery{limit: -1}
	switch {
	case p.consumeSymbol("*"):
		q.projection = projectAll
	case p.peek().isKeyword("COUNT") || p.peek().isKeyword("EXACT_COUNT"):
		q.projection = projectCount
		if p.peek().isKeyword("EXACT_COUNT") {
			q.projection = projectExactCount
		}
		p.next()
		if !p.consumeSymbol("(") || !p.consumeSymbol("*") || !p.consumeSymbol(")") {
			return nil, unsupported(sql)
		}
	default:
		q.projection = projectColumns
		for {
			name, apiErr := p.parseIdentifier()
			if apiErr != nil {
				return nil, apiErr
			}
			q.columns = append(q.columns, name)
			if !p.consumeSymbol(",") {
				break
			}
		}
	}
	if !p.parseKeyword("FROM") {
		return nil, unsupported(sql)
	}
	db, table, apiErr := p.parseObjectName()
	if apiErr != nil {
		return nil, apiErr
	}
	q.db, q.table = db, table
	if p.parseKeyword("WHERE") {
		for {
			c, ok := parseComparison(p)
			if !ok {
				return nil, unsupported(sql)
			}
			q.where = append(q.where, c)
			if !p.parseKeyword("AND") {
				break
			}
		}
	}
	if p.parseKeywords("ORDER", "BY") {
		name, apiErr := p.parseIdentifier()
		if apiErr != nil {
			return nil, apiErr
		}
		if name != timeColumn {
			return nil, unsupported(sql)
		}
		q.ordered = true
		if p.parseKeyword("DESC") {
			q.orderDesc = true
		} else {
			p.parseKeyword("ASC")
		}
	}
	if p.parseKeyword("LIMIT") {
		t := p.next()
		n, err := strconv.ParseInt(t.text, 10, 64)
		if t.kind != tokNumber || err != nil || n < 0 {
			return nil, unsupported(sql)
		}
		q.limit = n
	}
	if !p.atEnd() {
		return nil, unsupported(sql)
	}
	return sess.runSelect(q)
}

func parseComparison(p *sqlParser) (comparison, bool) {
	name, apiErr := p.parseIdentifier()
	if apiErr != nil {
		return comparison{}, false
	}
	op := p.next()
	if op.kind != tokSymbol {
		return comparison{}, false
	}
	switch op.text {
	case "=", "!=", "<>", "<", "<=", ">", ">=":
	default:
		return comparison{}, false
	}
	c := comparison{column: name, op: op.text}
	if p.consumeSymbol("-") {
		c.neg = true
	}
	lit := p.next()
	switch {
	case lit.kind == tokNumber:
	case lit.kind == tokString && !c.neg:
	case (lit.isKeyword("TRUE") || lit.isKeyword("FALSE")) && !c.neg:
	default:
		return comparison{}, false
	}
	c.lit = lit
	return c, true
}

func (sess *sqlSession) runSelect(q selectQuery) (*resultSet, *apiError) {
	dbName := q.db
	if dbName == "" {
		dbName = sess.db
	}
	db := sess.s.store.database(sess.tenant, dbName)
	if db == nil {
		return nil, errTableNotFoundInQuery(sess.tenant, dbName, q.table)
	}
	db.mu.RLock()
	defer db.mu.RUnlock()
	t := db.tables[q.table]
	if t == nil {
		return nil, errTableNotFoundInQuery(sess.tenant, dbName, q.table)
	}
	prec := db.opts.precision

	lookup := func(name string) (column, *apiError) {
		i, ok := t.byName[name]
		if !ok {
			return column{}, errNoSuchColumn(name)
		}
		return t.columns[i], nil
	}
	filters := make([]boundComparison, 0, len(q.where))
	for _, c := range q.where {
		col, apiErr := lookup(c.column)
		if apiErr != nil {
			return nil, apiErr
		}
		filters = append(filters, boundComparison{comparison: c, col: col, prec: prec})
	}

	if q.projection == projectCount || q.projection == projectExactCount {
		if q.projection == projectExactCount && !sess.s.rules.exactCount {
			return nil, sess.s.rules.exactCountMissing()
		}
		var n int64
		switch {
		case len(filters) > 0:
			n = int64(len(collectRows(t, filters)))
		case q.projection == projectCount && sess.s.rules.countStarCountsOverwrites:
			n = t.points
		default:
			n = t.rows
		}
		return &resultSet{
			columns: []resultColumn{{name: "COUNT(UInt8(1))", typ: resultInt}},
			rows:    [][]FieldValue{{integerValue(n)}},
		}, nil
	}

	cols := t.columns
	if q.projection == projectColumns {
		cols = make([]column, 0, len(q.columns))
		for _, name := range q.columns {
			col, apiErr := lookup(name)
			if apiErr != nil {
				return nil, apiErr
			}
			cols = append(cols, col)
		}
	}
	rs := &resultSet{columns: make([]resultColumn, len(cols))}
	for i, c := range cols {
		switch c.kind {
		case kindTime:
			rs.columns[i] = resultColumn{name: c.name, typ: resultTime, prec: prec}
		case kindTag:
			rs.columns[i] = resultColumn{name: c.name, typ: resultString}
		default:
			rs.columns[i] = resultColumn{name: c.name, typ: resultTypeOfField(c.ftype)}
		}
	}

	rows := collectRows(t, filters)
	if q.ordered {
		if q.orderDesc {
			sort.SliceStable(rows, func(i, j int) bool { return rows[i].ts > rows[j].ts })
		} else {
			sort.SliceStable(rows, func(i, j int) bool { return rows[i].ts < rows[j].ts })
		}
	}
	if q.limit >= 0 && int64(len(rows)) > q.limit {
		rows = rows[:q.limit]
	}
	rs.rows = make([][]FieldValue, len(rows))
	for i, r := range rows {
		out := make([]FieldValue, len(cols))
		for j, c := range cols {
			out[j] = r.value(c)
		}
		rs.rows[i] = out
	}
	return rs, nil
}

// rowRef points at one stored row.
type rowRef struct {
	s      *series
	ts     int64
	values []FieldValue
}

func (r rowRef) value(c column) FieldValue {
	switch c.kind {
	case kindTime:
		return integerValue(r.ts)
	case kindTag:
		if c.slot < len(r.s.tags) && r.s.tags[c.slot].set {
			return stringValue(r.s.tags[c.slot].value)
		}
		return FieldValue{}
	}
	if c.slot < len(r.values) {
		return r.values[c.slot]
	}
	return FieldValue{}
}

// collectRows returns the rows that pass all filters, series by series in
// the order of their tag sets, each series in time order.
func collectRows(t *table, filters []boundComparison) []rowRef {
	keys := make([]string, 0, len(t.series))
	for k := range t.series {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var rows []rowRef
	var times []int64
	for _, k := range keys {
		s := t.series[k]
		times = times[:0]
		for ts := range s.rows {
			times = append(times, ts)
		}
		sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
	rowLoop:
		for _, ts := range times {
			r := rowRef{s: s, ts: ts, values: s.rows[ts]}
			for _, f := range filters {
				if !f.matches(r.value(f.col)) {
					continue rowLoop
				}
			}
			rows = append(rows, r)
		}
	}
	return rows
}

type boundComparison struct {
	comparison
	col  column
	prec precision
}

// matches compares a stored value with the literal. NULL never matches.
// Strings compare as text (a number literal by its text, as DataFusion
// coerces it), numbers numerically, time with numbers in the database
// precision or with timestamp strings.
func (b boundComparison) matches(v FieldValue) bool {
	if v.typ == 0 {
		return false
	}
	var cmp int
	lit := b.lit
	switch {
	case b.col.kind == kindTime:
		var want int64
		if lit.kind == tokString {
			ts, ok := parseTimestampLiteral(lit.value, b.prec)
			if !ok {
				return false
			}
			want = ts
		} else {
			n, err := strconv.ParseInt(lit.text, 10, 64)
			if err != nil {
				return false
			}
			want = n
			if b.neg {
				want = -n
			}
		}
		cmp = compareInt(v.Int(), want)
	case v.typ == FieldString:
		text := lit.value
		if lit.kind == tokNumber {
			text = lit.text
			if b.neg {
				text = "-" + text
			}
		} else if lit.kind == tokWord {
			text = asciiLower(lit.text)
		}
		cmp = strings.Compare(v.str, text)
	case v.typ == FieldBoolean:
		if lit.kind != tokWord {
			return false
		}
		want := lit.isKeyword("TRUE")
		if v.Bool() == want {
			cmp = 0
		} else if v.Bool() {
			cmp = 1
		} else {
			cmp = -1
		}
	default:
		if lit.kind != tokNumber {
			return false
		}
		want, err := strconv.ParseFloat(lit.text, 64)
		if err != nil {
			return false
		}
		if b.neg {
			want = -want
		}
		var have float64
		switch v.typ {
		case FieldFloat:
			have = v.Float()
		case FieldInteger:
			have = float64(v.Int())
		case FieldUnsigned:
			have = float64(v.Uint())
		}
		if math.IsNaN(have) {
			return false
		}
		switch {
		case have < want:
			cmp = -1
		case have > want:
			cmp = 1
		}
	}
	switch b.op {
	case "=":
		return cmp == 0
	case "!=", "<>":
		return cmp != 0
	case "<":
		return cmp < 0
	case "<=":
		return cmp <= 0
	case ">":
		return cmp > 0
	case ">=":
		return cmp >= 0
	}
	return false
}

func compareInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// parseTimestampLiteral reads '2023-07-28T02:12:11' style literals (UTC).
func parseTimestampLiteral(s string, p precision) (int64, bool) {
	for _, layout := range []string{
		time.RFC3339Nano,
		"2006-01-02T15:04:05.999999999",
		"2006-01-02 15:04:05.999999999",
		"2006-01-02",
	} {
		if t, err := time.Parse(layout, s); err == nil {
			return p.now(t), true
		}
	}
	return 0, false
}
