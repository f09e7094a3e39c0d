package cnosdbdev

import (
	"fmt"
	"strings"
	"unicode"
)

// The SQL subset is tokenized and parsed by hand, following the shape of
// sqlparser-rs (the parser CnosDB builds on) so that errors read like
// CnosDB's: "sql parser error: Expected identifier, found: EOF".

type tokenKind uint8

const (
	tokEOF tokenKind = iota
	tokWord
	tokQuotedIdent
	tokString
	tokNumber
	tokSymbol
)

type sqlToken struct {
	kind  tokenKind
	text  string // as written (symbols, words, numbers)
	value string // quoted identifiers and strings without their quotes
}

// display formats a token the way sqlparser's error messages show it.
func (t sqlToken) display() string {
	switch t.kind {
	case tokEOF:
		return "EOF"
	case tokQuotedIdent:
		return `"` + t.value + `"`
	case tokString:
		return "'" + t.value + "'"
	}
	return t.text
}

func (t sqlToken) isKeyword(kw string) bool {
	return t.kind == tokWord && strings.EqualFold(t.text, kw)
}

func (t sqlToken) isSymbol(sym string) bool {
	return t.kind == tokSymbol && t.text == sym
}

// tokenizeSQL splits a statement text into tokens, dropping whitespace and
// comments.
func tokenizeSQL(sql string) ([]sqlToken, *apiError) {
	z := &sqlTokenizer{rs: []rune(sql), line: 1, col: 1}
	for len(z.rs) > 0 {
		if apiErr := z.scan(); apiErr != nil {
			return nil, apiErr
		}
	}
	return z.toks, nil
}

// sqlTokenizer keeps the line and column of the text not yet read, for the
// positions sqlparser reports in its errors.
type sqlTokenizer struct {
	rs        []rune
	line, col int
	toks      []sqlToken
}

// scan reads the next token, whitespace or comment.
func (z *sqlTokenizer) scan() *apiError {
	rs := z.rs
	r := rs[0]
	switch {
	case unicode.IsSpace(r):
		z.advance(1)
	case r == '-' && len(rs) > 1 && rs[1] == '-':
		z.skipLineComment()
	case r == '/' && len(rs) > 1 && rs[1] == '*':
		return z.skipBlockComment()
	case r == '\'' || r == '"':
		return z.quoted(r)
	case isASCIIDigit(r) || r == '.' && len(rs) > 1 && isASCIIDigit(rs[1]):
		z.number()
	case unicode.IsLetter(r) || r == '_' || r == '@' || r == '#':
		z.word()
	default:
		z.symbol()
	}
	return nil
}

func (z *sqlTokenizer) advance(n int) {
	for k := 0; k < n; k++ {
		if z.rs[0] == '\n' {
			z.line++
			z.col = 1
		} else {
			z.col++
		}
		z.rs = z.rs[1:]
	}
}

func (z *sqlTokenizer) emit(kind tokenKind, n int) {
	z.toks = append(z.toks, sqlToken{kind: kind, text: string(z.rs[:n])})
	z.advance(n)
}

func (z *sqlTokenizer) skipLineComment() {
	for len(z.rs) > 0 && z.rs[0] != '\n' {
		z.advance(1)
	}
}

func (z *sqlTokenizer) skipBlockComment() *apiError {
	startLine, startCol := z.line, z.col
	z.advance(2)
	for len(z.rs) > 0 && !(z.rs[0] == '*' && len(z.rs) > 1 && z.rs[1] == '/') {
		z.advance(1)
	}
	if len(z.rs) == 0 {
		return errSQLParser(fmt.Sprintf("Unexpected EOF while in a multi-line comment at Line: %d, Column %d", startLine, startCol))
	}
	z.advance(2)
	return nil
}

// quoted reads a string literal or a quoted identifier, in which a doubled
// quote stands for one.
func (z *sqlTokenizer) quoted(quote rune) *apiError {
	startLine, startCol := z.line, z.col
	z.advance(1)
	var b strings.Builder
	closed := false
	for len(z.rs) > 0 {
		if z.rs[0] == quote {
			if len(z.rs) > 1 && z.rs[1] == quote {
				b.WriteRune(quote)
				z.advance(2)
				continue
			}
			z.advance(1)
			closed = true
			break
		}
		b.WriteRune(z.rs[0])
		z.advance(1)
	}
	kind, what := tokString, "string literal"
	if quote == '"' {
		kind, what = tokQuotedIdent, "quoted identifier"
	}
	if !closed {
		return errSQLParser(fmt.Sprintf("Unterminated %s at Line: %d, Column %d", what, startLine, startCol))
	}
	z.toks = append(z.toks, sqlToken{kind: kind, value: b.String()})
	return nil
}

func (z *sqlTokenizer) number() {
	rs := z.rs
	n := 0
	for n < len(rs) && (isASCIIDigit(rs[n]) || rs[n] == '.') {
		n++
	}
	if n < len(rs) && (rs[n] == 'e' || rs[n] == 'E') {
		m := n + 1
		if m < len(rs) && (rs[m] == '+' || rs[m] == '-') {
			m++
		}
		if m < len(rs) && isASCIIDigit(rs[m]) {
			for m < len(rs) && isASCIIDigit(rs[m]) {
				m++
			}
			n = m
		}
	}
	z.emit(tokNumber, n)
}

func isASCIIDigit(r rune) bool { return r >= '0' && r <= '9' }

func (z *sqlTokenizer) word() {
	rs := z.rs
	n := 1
	for n < len(rs) && (unicode.IsLetter(rs[n]) || unicode.IsDigit(rs[n]) || strings.ContainsRune("_@$#", rs[n])) {
		n++
	}
	z.emit(tokWord, n)
}

func (z *sqlTokenizer) symbol() {
	n := 1
	if len(z.rs) > 1 {
		switch string(z.rs[:2]) {
		case "<=", ">=", "<>", "!=", "::":
			n = 2
		}
	}
	z.emit(tokSymbol, n)
}

// splitStatements cuts the token list at semicolons, dropping empty
// statements (so "select 1;;" is one statement).
func splitStatements(toks []sqlToken) [][]sqlToken {
	var stmts [][]sqlToken
	start := 0
	for i, t := range toks {
		if t.isSymbol(";") {
			if i > start {
				stmts = append(stmts, toks[start:i])
			}
			start = i + 1
		}
	}
	if start < len(toks) {
		stmts = append(stmts, toks[start:])
	}
	return stmts
}

type sqlParser struct {
	toks []sqlToken
	pos  int
}

func (p *sqlParser) peek() sqlToken {
	if p.pos < len(p.toks) {
		return p.toks[p.pos]
	}
	return sqlToken{kind: tokEOF}
}

func (p *sqlParser) next() sqlToken {
	t := p.peek()
	if p.pos < len(p.toks) {
		p.pos++
	}
	return t
}

func (p *sqlParser) atEnd() bool { return p.pos >= len(p.toks) }

func (p *sqlParser) parseKeyword(kw string) bool {
	if p.peek().isKeyword(kw) {
		p.pos++
		return true
	}
	return false
}

// parseKeywords consumes a keyword sequence only when all of it is there.
func (p *sqlParser) parseKeywords(kws ...string) bool {
	for i, kw := range kws {
		if p.pos+i >= len(p.toks) || !p.toks[p.pos+i].isKeyword(kw) {
			return false
		}
	}
	p.pos += len(kws)
	return true
}

func (p *sqlParser) consumeSymbol(sym string) bool {
	if p.peek().isSymbol(sym) {
		p.pos++
		return true
	}
	return false
}

func (p *sqlParser) expected(what string) *apiError {
	return errSQLParser("Expected " + what + ", found: " + p.peek().display())
}

func (p *sqlParser) expectEnd() *apiError {
	if p.atEnd() {
		return nil
	}
	return p.expected("end of statement")
}

// parseIdentifier returns a normalized identifier: unquoted names are
// lower-cased (ASCII), quoted ones are kept as written.
func (p *sqlParser) parseIdentifier() (string, *apiError) {
	t := p.peek()
	switch t.kind {
	case tokWord:
		p.pos++
		return asciiLower(t.text), nil
	case tokQuotedIdent:
		p.pos++
		return t.value, nil
	}
	return "", p.expected("identifier")
}

// parseObjectName parses "name" or "db.name".
func (p *sqlParser) parseObjectName() (db, name string, apiErr *apiError) {
	first, apiErr := p.parseIdentifier()
	if apiErr != nil {
		return "", "", apiErr
	}
	if !p.consumeSymbol(".") {
		return "", first, nil
	}
	second, apiErr := p.parseIdentifier()
	if apiErr != nil {
		return "", "", apiErr
	}
	return first, second, nil
}

func asciiLower(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if b[j] >= 'A' && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// quoteIdentifier quotes a name for use in a statement.
func quoteIdentifier(name string) string {
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
}
