package cnosdbdev

import (
	"sort"
	"strconv"
	"strings"
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
		dbName, name, apiErr := sess.lastObjectName(p)
		if apiErr != nil {
			return nil, apiErr
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
		return sess.describeDatabase(p)
	case p.parseKeyword("TABLE"):
		return sess.describeTable(p)
	}
	return nil, unsupported(sql)
}

func (sess *sqlSession) describeDatabase(p *sqlParser) (*resultSet, *apiError) {
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
}

// lastObjectName parses a table's name, [database.]table, that ends the statement;
// without a database it is the session's.
func (sess *sqlSession) lastObjectName(p *sqlParser) (dbName, name string, apiErr *apiError) {
	if dbName, name, apiErr = p.parseObjectName(); apiErr != nil {
		return "", "", apiErr
	}
	if apiErr := p.expectEnd(); apiErr != nil {
		return "", "", apiErr
	}
	if dbName == "" {
		dbName = sess.db
	}
	return dbName, name, nil
}

func (sess *sqlSession) describeTable(p *sqlParser) (*resultSet, *apiError) {
	dbName, name, apiErr := sess.lastObjectName(p)
	if apiErr != nil {
		return nil, apiErr
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
	return tableDescription(t, db.opts.precision), nil
}

// tableDescription lists a table's columns; the caller holds the
// database's lock.
func tableDescription(t *table, prec precision) *resultSet {
	rs := &resultSet{columns: []resultColumn{
		{name: "column_name", typ: resultString},
		{name: "data_type", typ: resultString},
		{name: "column_type", typ: resultString},
		{name: "compression_codec", typ: resultString},
	}}
	for _, c := range t.columns {
		dataType, columnType := prec.sqlTimeType(), "TIME"
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
	return rs
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
	var texts databaseOptionTexts
	for {
		more, apiErr := parseDatabaseOption(p, &opts, &texts)
		if apiErr != nil {
			return opts, apiErr
		}
		if !more {
			break
		}
	}
	apiErr := texts.apply(&opts)
	return opts, apiErr
}

// databaseOptionTexts holds the options whose values are checked only once
// the whole option list has been parsed, as the planner does.
type databaseOptionTexts struct {
	ttl, vnode, prec, walSync, strict *string
}

// parseDatabaseOption parses one option and its value. It reports false,
// having consumed nothing, when the next token does not name an option.
func parseDatabaseOption(p *sqlParser, opts *dbOptions, texts *databaseOptionTexts) (bool, *apiError) {
	t := p.peek()
	if t.kind != tokWord {
		return false, nil
	}
	option := strings.ToUpper(t.text)
	var target **string
	var number *uint64
	switch option {
	case "TTL":
		target = &texts.ttl
	case "VNODE_DURATION":
		target = &texts.vnode
	case "PRECISION":
		target = &texts.prec
	case "WAL_SYNC":
		target = &texts.walSync
	case "STRICT_WRITE":
		target = &texts.strict
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
		return false, nil
	}
	p.next()
	p.consumeSymbol("=")
	if number != nil {
		return true, parseNumberOption(p, option, number)
	}
	v, apiErr := p.parseStringValue()
	if apiErr != nil {
		return false, apiErr
	}
	switch option {
	case "MAX_MEMCACHE_SIZE":
		opts.maxMemcacheSize = v
	case "WAL_MAX_FILE_SIZE":
		opts.walMaxFileSize = v
	default:
		*target = &v
	}
	return true, nil
}

func parseNumberOption(p *sqlParser, option string, dst *uint64) *apiError {
	v, apiErr := p.parseNumber()
	if apiErr != nil {
		return apiErr
	}
	if v == 0 && option == "SHARD" {
		return errSQLParser("shard number should be greater than 0")
	}
	if v == 0 && option == "REPLICA" {
		return errSQLParser("replica number should be greater than 0")
	}
	*dst = v
	return nil
}

// apply sets the values that pass the planner's checks and stops at the
// first that does not.
func (texts databaseOptionTexts) apply(opts *dbOptions) *apiError {
	if texts.ttl != nil {
		d, err := parseCnosDuration(*texts.ttl)
		if err != nil {
			return errSQLParser(*texts.ttl + " is not a valid duration or duration overflow")
		}
		opts.ttl = d
	}
	if texts.vnode != nil {
		d, err := parseCnosDuration(*texts.vnode)
		if err != nil {
			return errSQLParser(*texts.vnode + " is not a valid duration or duration overflow")
		}
		opts.vnodeDuration = d
	}
	if texts.prec != nil {
		pr, ok := parsePrecision(*texts.prec)
		if !ok {
			return errSQLParser(*texts.prec + " is not a valid precision, use like 'ms', 'us', 'ns'")
		}
		opts.precision = pr
	}
	for _, b := range []struct {
		text *string
		dst  *bool
	}{{texts.walSync, &opts.walSync}, {texts.strict, &opts.strictWrite}} {
		if b.text == nil {
			continue
		}
		switch *b.text {
		case "true":
			*b.dst = true
		case "false":
			*b.dst = false
		default:
			return errSQLParser(*b.text + " is not a valid bool value, use like 'true', 'false'")
		}
	}
	return nil
}
