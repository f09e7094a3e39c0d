package cnosdbdev

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// apiError is one failure answer of the HTTP API, exactly as CnosDB sends it.
//
// CnosDB answers most failures with a JSON body
// {"error_code":"MMCCCC","error_message":"…"} (MM = module: 01 query,
// 02 tskv, 03 meta, 04 http, 05 coordinator; CCCC = variant); warp's own
// rejections and unmapped errors are answered with an empty body.
type apiError struct {
	status  int
	code    string // empty: the answer has no body
	message string

	// closeConnection reproduces a panic in CnosDB's request handler: the
	// connection is closed without any answer.
	closeConnection bool
}

func (e *apiError) Error() string {
	if e.closeConnection {
		return "connection closed without an answer"
	}
	if e.code == "" {
		return http.StatusText(e.status)
	}
	return fmt.Sprintf("%d %s: %s", e.status, e.code, e.message)
}

// emptyAnswer is an error answered with a status and no body.
func emptyAnswer(status int) *apiError { return &apiError{status: status} }

func newAPIError(status int, code, message string) *apiError {
	return &apiError{status: status, code: code, message: message}
}

// Answers produced by warp's filters before any CnosDB code runs.
var (
	errNotFound         = emptyAnswer(http.StatusNotFound)
	errMethodNotAllowed = emptyAnswer(http.StatusMethodNotAllowed)
	errPayloadTooLarge  = emptyAnswer(http.StatusRequestEntityTooLarge)
	// errUnhandledRejection covers every rejection CnosDB's handle_rejection
	// has no arm for (missing Content-Length, malformed query string,
	// header values that are not visible ASCII): 500 with an empty body.
	errUnhandledRejection = emptyAnswer(http.StatusInternalServerError)
	errHandlerPanic       = &apiError{status: http.StatusInternalServerError, closeConnection: true}
)

// HTTP module (04) and warp.

func errMissingAuthorization() *apiError {
	return newAPIError(http.StatusBadRequest, "000000", `Missing request header "authorization"`)
}

func errInvalidHeader(reason string) *apiError {
	return newAPIError(http.StatusBadRequest, "040005", "Invalid header: "+reason)
}

func errParseAuth(rawHeader string) *apiError {
	return newAPIError(http.StatusBadRequest, "040006", "Parse auth, malformed basic auth encoding: "+rawHeader)
}

func errDecodeRequest(reason string) *apiError {
	return newAPIError(http.StatusBadRequest, "040013", "Error decode request: "+reason)
}

func errParseLineProtocol(reason string) *apiError {
	return newAPIError(http.StatusUnprocessableEntity, "040004", "Error parsing message: "+reason)
}

// errInvalidUTF8 carries simdutf8's basic error, which has no position.
func errInvalidUTF8() *apiError {
	return newAPIError(http.StatusUnprocessableEntity, "040015", "Invalid utf-8 sequence: invalid utf-8 sequence")
}

func errFetchResult(reason string) *apiError {
	return newAPIError(http.StatusUnprocessableEntity, "040007", "Fetch result: "+reason)
}

// Query module (01).

func errAuth(reason string) *apiError {
	return newAPIError(http.StatusUnprocessableEntity, "010016", "Auth error: "+reason)
}

func errUserNotFound(user string) *apiError {
	return errAuth("The user " + user + " not found")
}

func errTenantNotFound(tenant string) *apiError {
	return errAuth("The tenant " + tenant + " not found")
}

func errAccessDenied(user string) *apiError {
	return errAuth("Access denied for user '" + user + "' (using xxx) username or password invalid")
}

func errSQLParser(reason string) *apiError {
	return newAPIError(http.StatusUnprocessableEntity, "010009", "sql parser error: "+reason)
}

func errMultiStatement(n int, sql string) *apiError {
	return newAPIError(http.StatusUnprocessableEntity, "010013",
		fmt.Sprintf("Multi-statement not allow, found num:%d, sql:%s", n, sql))
}

func errNotImplemented(what string) *apiError {
	return newAPIError(http.StatusUnprocessableEntity, "010005", "This feature is not implemented: "+what)
}

func errPlanning(reason string) *apiError {
	return newAPIError(http.StatusUnprocessableEntity, "010001", "Datafusion: Error during planning: "+reason)
}

func errTableNotFoundInQuery(tenant, db, table string) *apiError {
	return errPlanning(fmt.Sprintf("Table not found, tenant: %s db: %s, table: %s", tenant, db, table))
}

// errNoSuchColumn approximates DataFusion's schema error for an unknown
// column name.
func errNoSuchColumn(column string) *apiError {
	return newAPIError(http.StatusUnprocessableEntity, "010001",
		"Datafusion: Schema error: No field named "+rustDebugString(column)+".")
}

func errForbidDropDatabase(name string) *apiError {
	return newAPIError(http.StatusUnprocessableEntity, "010065", fmt.Sprintf("Database %q forbid drop", name))
}

// Meta module (03).

func errDatabaseNotFound(db string) *apiError {
	return newAPIError(http.StatusUnprocessableEntity, "030017", "Database not found: "+rustDebugString(db))
}

func errDatabaseAlreadyExists(db string) *apiError {
	return newAPIError(http.StatusUnprocessableEntity, "030018", "Database "+rustDebugString(db)+" already exists")
}

func errTableNotFoundInMeta(table string) *apiError {
	return newAPIError(http.StatusUnprocessableEntity, "030019", "Table not found: "+rustDebugString(table))
}

func errValidNodeNotEnough(need uint64, found int) *apiError {
	return newAPIError(http.StatusUnprocessableEntity, "030053",
		fmt.Sprintf("Valid node is not enough, need: %d, but found: %d", need, found))
}

func errCreateExpiredBucket() *apiError {
	return newAPIError(http.StatusUnprocessableEntity, "030034", "Operation not support: create expired bucket")
}

// Coordinator module (05): CommonError carries a bare message.

func errCoordinator(message string) *apiError {
	return newAPIError(http.StatusUnprocessableEntity, "050014", message)
}

// rustDebugString formats s the way Rust's {:?} formats a str: in double
// quotes, with quotes, backslashes and control characters escaped.
func rustDebugString(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case 0:
			b.WriteString(`\0`)
		default:
			if r == utf8.RuneError || unicode.IsPrint(r) || r == ' ' {
				b.WriteRune(r)
			} else {
				b.WriteString(`\u{` + strconv.FormatInt(int64(r), 16) + `}`)
			}
		}
	}
	b.WriteByte('"')
	return b.String()
}

// writeAPIError sends e as CnosDB does. A handler panic is reproduced by
// closing the connection; when the connection cannot be taken over the
// request is answered with an empty 500 instead.
func writeAPIError(w http.ResponseWriter, e *apiError) {
	if e.closeConnection {
		if closeWithoutAnswer(w) {
			return
		}
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	if e.code == "" {
		w.WriteHeader(e.status)
		return
	}
	body := make([]byte, 0, 48+len(e.message))
	body = append(body, `{"error_code":`...)
	body = appendJSONString(body, e.code)
	body = append(body, `,"error_message":`...)
	body = appendJSONString(body, e.message)
	body = append(body, '}')
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(e.status)
	_, _ = w.Write(body)
}

// closeWithoutAnswer closes the client connection of w without writing a
// response. It reports false when w does not support taking over the
// connection (HTTP/2, test recorders).
func closeWithoutAnswer(w http.ResponseWriter) bool {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return false
	}
	_ = conn.Close()
	return true
}
