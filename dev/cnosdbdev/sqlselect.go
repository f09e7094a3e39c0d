package cnosdbdev

import (
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

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
		return selectInteger(t, sql)
	}
	q, apiErr := parseSelectQuery(p, sql)
	if apiErr != nil {
		return nil, apiErr
	}
	return sess.runSelect(q)
}

func selectInteger(t sqlToken, sql string) (*resultSet, *apiError) {
	v, err := strconv.ParseInt(t.text, 10, 64)
	if err != nil {
		return nil, unsupported(sql)
	}
	return &resultSet{
		columns: []resultColumn{{name: "Int64(" + t.text + ")", typ: resultInt}},
		rows:    [][]FieldValue{{integerValue(v)}},
	}, nil
}

// parseSelectQuery parses what follows SELECT, up to the end of the
// statement.
func parseSelectQuery(p *sqlParser, sql string) (selectQuery, *apiError) {
	q := selectQuery{limit: -1}
	if apiErr := q.parseProjection(p, sql); apiErr != nil {
		return q, apiErr
	}
	if !p.parseKeyword("FROM") {
		return q, unsupported(sql)
	}
	db, table, apiErr := p.parseObjectName()
	if apiErr != nil {
		return q, apiErr
	}
	q.db, q.table = db, table
	if p.parseKeyword("WHERE") {
		if apiErr := q.parseWhere(p, sql); apiErr != nil {
			return q, apiErr
		}
	}
	if p.parseKeywords("ORDER", "BY") {
		if apiErr := q.parseOrderBy(p, sql); apiErr != nil {
			return q, apiErr
		}
	}
	if p.parseKeyword("LIMIT") {
		t := p.next()
		n, err := strconv.ParseInt(t.text, 10, 64)
		if t.kind != tokNumber || err != nil || n < 0 {
			return q, unsupported(sql)
		}
		q.limit = n
	}
	if !p.atEnd() {
		return q, unsupported(sql)
	}
	return q, nil
}

func (q *selectQuery) parseProjection(p *sqlParser, sql string) *apiError {
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
			return unsupported(sql)
		}
	default:
		q.projection = projectColumns
		for {
			name, apiErr := p.parseIdentifier()
			if apiErr != nil {
				return apiErr
			}
			q.columns = append(q.columns, name)
			if !p.consumeSymbol(",") {
				break
			}
		}
	}
	return nil
}

func (q *selectQuery) parseWhere(p *sqlParser, sql string) *apiError {
	for {
		c, ok := parseComparison(p)
		if !ok {
			return unsupported(sql)
		}
		q.where = append(q.where, c)
		if !p.parseKeyword("AND") {
			return nil
		}
	}
}

func (q *selectQuery) parseOrderBy(p *sqlParser, sql string) *apiError {
	name, apiErr := p.parseIdentifier()
	if apiErr != nil {
		return apiErr
	}
	if name != timeColumn {
		return unsupported(sql)
	}
	q.ordered = true
	if p.parseKeyword("DESC") {
		q.orderDesc = true
	} else {
		p.parseKeyword("ASC")
	}
	return nil
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

	filters := make([]boundComparison, 0, len(q.where))
	for _, c := range q.where {
		col, apiErr := t.sqlColumn(c.column)
		if apiErr != nil {
			return nil, apiErr
		}
		filters = append(filters, boundComparison{comparison: c, col: col, prec: prec})
	}

	if q.projection == projectCount || q.projection == projectExactCount {
		return sess.countRows(q, t, filters)
	}

	cols := t.columns
	if q.projection == projectColumns {
		cols = make([]column, 0, len(q.columns))
		for _, name := range q.columns {
			col, apiErr := t.sqlColumn(name)
			if apiErr != nil {
				return nil, apiErr
			}
			cols = append(cols, col)
		}
	}
	rs := &resultSet{columns: resultColumns(cols, prec)}
	rows := q.orderAndLimit(collectRows(t, filters))
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

// sqlColumn finds a column named in a query.
func (t *table) sqlColumn(name string) (column, *apiError) {
	i, ok := t.byName[name]
	if !ok {
		return column{}, errNoSuchColumn(name)
	}
	return t.columns[i], nil
}

func (sess *sqlSession) countRows(q selectQuery, t *table, filters []boundComparison) (*resultSet, *apiError) {
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

func (q selectQuery) orderAndLimit(rows []rowRef) []rowRef {
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
	return rows
}

func resultColumns(cols []column, prec precision) []resultColumn {
	out := make([]resultColumn, len(cols))
	for i, c := range cols {
		switch c.kind {
		case kindTime:
			out[i] = resultColumn{name: c.name, typ: resultTime, prec: prec}
		case kindTag:
			out[i] = resultColumn{name: c.name, typ: resultString}
		default:
			out[i] = resultColumn{name: c.name, typ: resultTypeOfField(c.ftype)}
		}
	}
	return out
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
	var ok bool
	switch {
	case b.col.kind == kindTime:
		cmp, ok = b.compareTime(v)
	case v.typ == FieldString:
		cmp, ok = b.compareString(v), true
	case v.typ == FieldBoolean:
		cmp, ok = b.compareBool(v)
	default:
		cmp, ok = b.compareNumber(v)
	}
	return ok && b.holds(cmp)
}

// compareTime reports false when the literal is not a time.
func (b boundComparison) compareTime(v FieldValue) (int, bool) {
	lit := b.lit
	var want int64
	if lit.kind == tokString {
		ts, ok := parseTimestampLiteral(lit.value, b.prec)
		if !ok {
			return 0, false
		}
		want = ts
	} else {
		n, err := strconv.ParseInt(lit.text, 10, 64)
		if err != nil {
			return 0, false
		}
		want = n
		if b.neg {
			want = -n
		}
	}
	return compareInt(v.Int(), want), true
}

func (b boundComparison) compareString(v FieldValue) int {
	lit := b.lit
	text := lit.value
	if lit.kind == tokNumber {
		text = lit.text
		if b.neg {
			text = "-" + text
		}
	} else if lit.kind == tokWord {
		text = asciiLower(lit.text)
	}
	return strings.Compare(v.str, text)
}

// compareBool reports false when the literal is not TRUE or FALSE.
func (b boundComparison) compareBool(v FieldValue) (int, bool) {
	if b.lit.kind != tokWord {
		return 0, false
	}
	want := b.lit.isKeyword("TRUE")
	switch {
	case v.Bool() == want:
		return 0, true
	case v.Bool():
		return 1, true
	}
	return -1, true
}

// compareNumber reports false when the literal is not a number or the
// stored value is NaN.
func (b boundComparison) compareNumber(v FieldValue) (int, bool) {
	if b.lit.kind != tokNumber {
		return 0, false
	}
	want, err := strconv.ParseFloat(b.lit.text, 64)
	if err != nil {
		return 0, false
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
		return 0, false
	}
	switch {
	case have < want:
		return -1, true
	case have > want:
		return 1, true
	}
	return 0, true
}

// holds applies the comparison operator to the outcome of a comparison.
func (b boundComparison) holds(cmp int) bool {
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
