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
	var toks []sqlToken
	rs := []rune(sql)
	line, col := 1, 1
	advance := func(n int) {
		for k := 0; k < n; k++ {
			if rs[0] == '\n' {
				line++
				col = 1
			} else {
				col++
			}
			rs = rs[1:]
		}
	}
	for len(rs) > 0 {
		r := rs[0]
		switch {
		case unicode.IsSpace(r):
			advance(1)
		case r == '-' && len(rs) > 1 && rs[1] == '-':
			for len(rs) > 0 && rs[0] != '\n' {
				advance(1)
			}
		case r == '/' && len(rs) > 1 && rs[1] == '*':
			startLine, startCol := line, col
			advance(2)
			for len(rs) > 0 && !(rs[0] == '*' && len(rs) > 1 && rs[1] == '/') {
				advance(1)
			}
			if len(rs) == 0 {
				return nil, errSQLParser(fmt.Sprintf("Unexpected EOF while in a multi-line comment at Line: %d, Column %d", startLine, startCol))
			}
			advance(2)
		case r == '\'' || r == '"':
			startLine, startCol := line, col
			quote := r
			advance(1)
			var b strings.Builder
			closed := false
			for len(rs) > 0 {
				if rs[0] == quote {
					if len(rs) > 1 && rs[1] == quote {
						b.WriteRune(quote)
						advance(2)
						continue
					}
					advance(1)
					closed = true
					break
				}
				b.WriteRune(rs[0])
				advance(1)
			}
			if !closed {
				what := "string literal"
				if quote == '"' {
					what = "quoted identifier"
				}
				return nil, errSQLParser(fmt.Sprintf("Unterminated %s at Line: %d, Column %d", what, startLine, startCol))
			}
			kind := tokString
			if quote == '"' {
				kind = tokQuotedIdent
			}
			toks = append(toks, sqlToken{kind: kind, value: b.String()})
		case r >= '0' && r <= '9' || r == '.' && len(rs) > 1 && rs[1] >= '0' && rs[1] <= '9':
			n := 0
			for n < len(rs) && (rs[n] >= '0' && rs[n] <= '9' || rs[n] == '.') {
				n++
			}
			if n < len(rs) && (rs[n] == 'e' || rs[n] == 'E') {
				m := n + 1
				if m < len(rs) && (rs[m] == '+' || rs[m] == '-') {
					m++
				}
				if m < len(rs) && rs[m] >= '0' && rs[m] <= '9' {
					for m < len(rs) && rs[m] >= '0' && rs[m] <= '9' {
						m++
					}
					n = m
				}
			}
			toks = append(toks, sqlToken{kind: tokNumber, text: string(rs[:n])})
			advance(n)
		case unicode.IsLetter(r) || r == '_' || r == '@' || r == '#':
			n := 1
			for n < len(rs) && (unicode.IsLetter(rs[n]) || unicode.IsDigit(rs[n]) || strings.ContainsRune("_@$#", rs[n])) {
				n++
			}
			toks = append(toks, sqlToken{kind: tokWord, text: string(rs[:n])})
			advance(n)
		default:
			sym := string(r)
			if len(rs) > 1 {
				switch two := string(rs[:2]); two {
				case "<=", ">=", "<>", "!=", "::":
					sym = two
				}
			}
			toks = append(toks, sqlToken{kind: tokSymbol, text: sym})
			advance(len([]rune(sym)))
		}
	}
	return toks, nil
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
