package cnosdbdev

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// maxDrainBytes is how much of a refused body is read before answering,
// so that a client still sending gets the answer instead of a reset.
const maxDrainBytes = 256 << 20

// readBody applies warp's content_length_limit, then reads the body: a
// request without Content-Length (chunked) is refused, one whose
// Content-Length exceeds limit gets an empty 413.
func (s *Server) readBody(r *http.Request, limit int64) ([]byte, *apiError) {
	if r.ContentLength < 0 || r.Header.Get("Content-Length") == "" {
		drain(r.Body)
		return nil, s.rules.missingContentLength()
	}
	if r.ContentLength > limit {
		drain(r.Body)
		return nil, errPayloadTooLarge
	}
	body := make([]byte, r.ContentLength)
	if _, err := io.ReadFull(r.Body, body); err != nil {
		return nil, errUnhandledRejection
	}
	return body, nil
}

func drain(body io.Reader) {
	_, _ = io.Copy(io.Discard, io.LimitReader(body, maxDrainBytes))
}

// requestHeaders are the headers CnosDB's handle_header extracts. A value
// that is not visible ASCII makes warp reject the request (500, empty).
type requestHeaders struct {
	accept            string
	hasAccept         bool
	acceptEncoding    string
	hasAcceptEncoding bool
	contentEncoding   string
	hasContentEnc     bool
	authorization     string
}

func readHeaders(r *http.Request) (requestHeaders, *apiError) {
	var h requestHeaders
	var ok bool
	var apiErr *apiError
	if h.accept, h.hasAccept, apiErr = headerString(r, "Accept"); apiErr != nil {
		return h, apiErr
	}
	if h.acceptEncoding, h.hasAcceptEncoding, apiErr = headerString(r, "Accept-Encoding"); apiErr != nil {
		return h, apiErr
	}
	if h.contentEncoding, h.hasContentEnc, apiErr = headerString(r, "Content-Encoding"); apiErr != nil {
		return h, apiErr
	}
	if h.authorization, ok, apiErr = headerString(r, "Authorization"); apiErr != nil {
		return h, apiErr
	}
	if !ok {
		return h, errMissingAuthorization()
	}
	return h, nil
}

// headerString returns the first value of a header, like warp's header
// filters do.
func headerString(r *http.Request, name string) (string, bool, *apiError) {
	values := r.Header.Values(name)
	if len(values) == 0 {
		return "", false, nil
	}
	v := values[0]
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < 0x20 && c != '\t') || c >= 0x7f {
			return "", true, errUnhandledRejection
		}
	}
	return v, true, nil
}

// parseBasicAuth is Header::try_get_basic_auth: "Basic " and the standard,
// padded base64 of UTF-8 "user:password" (the password may be empty).
func parseBasicAuth(raw string) (user, password string, apiErr *apiError) {
	const prefix = "Basic "
	if !strings.HasPrefix(raw, prefix) {
		return "", "", errParseAuth(raw)
	}
	decoded, err := base64.StdEncoding.Strict().DecodeString(raw[len(prefix):])
	if err != nil || !utf8.Valid(decoded) {
		return "", "", errParseAuth(raw)
	}
	user, password, found := strings.Cut(string(decoded), ":")
	if !found {
		return "", "", errParseAuth(raw)
	}
	return user, password, nil
}

// authenticate is DBMS::authenticate. With authentication off CnosDB only
// looks the user and the tenant up; with it on every failure is the same
// "Access denied".
func (s *Server) authenticate(user, password, tenant string) *apiError {
	stored, known := s.users[user]
	if s.opts.AuthEnabled {
		if !known || !s.store.hasTenant(tenant) || stored != password {
			return errAccessDenied(user)
		}
		return nil
	}
	if !known {
		return errUserNotFound(user)
	}
	if !s.store.hasTenant(tenant) {
		return errTenantNotFound(tenant)
	}
	return nil
}

// queryParams parses a query string like serde_urlencoded into CnosDB's
// parameter structs: known keys may appear once (a duplicate fails the
// request with an empty 500), unknown keys are ignored.
func queryParams(rawQuery string, known ...string) (map[string]string, *apiError) {
	params := make(map[string]string)
	for _, pair := range strings.Split(rawQuery, "&") {
		if pair == "" {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		key, value := formDecode(k), formDecode(v)
		isKnown := false
		for _, name := range known {
			if key == name {
				isKnown = true
				break
			}
		}
		if !isKnown {
			continue
		}
		if _, dup := params[key]; dup {
			return nil, errUnhandledRejection
		}
		params[key] = value
	}
	return params, nil
}

// formDecode is application/x-www-form-urlencoded decoding as the url
// crate does it: '+' is a space, malformed percent escapes stay as they
// are, invalid UTF-8 becomes U+FFFD.
func formDecode(s string) string {
	if !strings.ContainsAny(s, "+%") {
		return s
	}
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '+':
			out = append(out, ' ')
		case c == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]):
			out = append(out, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
		default:
			out = append(out, c)
		}
	}
	return string(rustLossyUTF8(out))
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

func paramOr(params map[string]string, key, fallback string) string {
	if v, ok := params[key]; ok {
		return v
	}
	return fallback
}

// decodeRequestBody applies the request's Content-Encoding.
func (s *Server) decodeRequestBody(h requestHeaders, body []byte) ([]byte, *apiError) {
	if !h.hasContentEnc {
		return body, nil
	}
	if !s.rules.acceptsEncoding(h.contentEncoding) {
		return nil, errInvalidHeader("content encoding not support: " + h.contentEncoding)
	}
	decoded, reason := decodeBody(h.contentEncoding, body)
	if reason != "" {
		return nil, s.rules.decodeError(reason)
	}
	return decoded, nil
}

// serveWrite is POST /api/v1/write, checked in CnosDB's order: body size,
// headers, query string, Content-Encoding, credentials, UTF-8, line
// protocol, then the database and the data.
func (s *Server) serveWrite(w http.ResponseWriter, r *http.Request) {
	body, apiErr := s.readBody(r, s.opts.MaxBodyBytes)
	if apiErr != nil {
		writeAPIError(w, apiErr)
		return
	}
	s.stats.bytes.Add(int64(len(body)))
	h, apiErr := readHeaders(r)
	if apiErr != nil {
		s.refuseWrite(w, apiErr, body)
		return
	}
	params, apiErr := queryParams(r.URL.RawQuery, "precision", "tenant", "db")
	if apiErr != nil {
		s.refuseWrite(w, apiErr, body)
		return
	}
	decoded, apiErr := s.decodeRequestBody(h, body)
	if apiErr != nil {
		s.refuseWrite(w, apiErr, body)
		return
	}
	user, password, apiErr := parseBasicAuth(h.authorization)
	if apiErr != nil {
		s.refuseWrite(w, apiErr, decoded)
		return
	}
	tenant := paramOr(params, "tenant", defaultTenant)
	if apiErr := s.authenticate(user, password, tenant); apiErr != nil {
		s.refuseWrite(w, apiErr, decoded)
		return
	}
	reqPrecision, _ := parsePrecision(params["precision"]) // anything unknown is ns
	db := paramOr(params, "db", defaultDatabase)
	s.writeLines(r.Context(), w, tenant, db, reqPrecision, decoded)
}

// serveInfluxWrite is CnosDB's mock InfluxDB endpoint POST /write: no body
// limit, no Content-Encoding, user root with an empty password, tenant
// cnosdb, nanoseconds.
func (s *Server) serveInfluxWrite(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxDecodedBytes))
	if err != nil {
		writeAPIError(w, errUnhandledRejection)
		return
	}
	s.stats.bytes.Add(int64(len(body)))
	db := defaultDatabase
	for _, pair := range strings.Split(r.URL.RawQuery, "&") {
		if k, v, _ := strings.Cut(pair, "="); formDecode(k) == "db" {
			db = formDecode(v)
		}
	}
	if apiErr := s.authenticate("root", "", defaultTenant); apiErr != nil {
		s.refuseWrite(w, apiErr, body)
		return
	}
	s.writeLines(r.Context(), w, defaultTenant, db, precisionNS, body)
}

// chargeWrite makes a write of the given shape take what Options.Cost says; a
// refused write is charged its request only.
func (s *Server) chargeWrite(ctx context.Context, lines, fields, tags int) {
	if s.meter == nil {
		return
	}
	s.stats.charged.Add(int64(s.meter.charge(ctx, lines, fields, tags)))
}

func (s *Server) writeLines(ctx context.Context, w http.ResponseWriter, tenant, db string, reqPrecision precision, body []byte) {
	if s.opts.CountOnly {
		res, apiErr := s.store.countLines(tenant, db, body)
		if apiErr != nil {
			s.refuseWrite(w, apiErr, body)
			return
		}
		s.chargeWrite(ctx, res.lines, res.fields, res.tags)
		s.stats.linesAccepted.Add(int64(res.lines))
		w.WriteHeader(http.StatusOK)
		return
	}

	if s.rules.lossyUTF8 {
		body = rustLossyUTF8(body)
	} else if !utf8.Valid(body) {
		s.refuseWrite(w, s.rules.invalidUTF8(), body)
		return
	}
	lines, err := s.rules.parseLines(body, time.Now().UnixNano())
	if err != nil {
		var parseErr *ParseError
		if !errors.As(err, &parseErr) {
			parseErr = &ParseError{Message: err.Error()}
		}
		s.refuseWrite(w, s.rules.lineProtocolError(parseErr), body)
		return
	}
	fields, tags := shapeOf(lines)
	s.chargeWrite(ctx, len(lines), fields, tags)
	res, apiErr := s.store.write(tenant, db, lines, reqPrecision)
	if apiErr != nil {
		s.stats.linesRejected.Add(int64(len(lines)))
		writeAPIError(w, apiErr)
		return
	}
	s.stats.linesAccepted.Add(int64(res.lines))
	// CnosDB answers 200 with an empty body and no Content-Type.
	w.WriteHeader(http.StatusOK)
}

func (s *Server) refuseWrite(w http.ResponseWriter, apiErr *apiError, body []byte) {
	if s.meter != nil {
		s.stats.charged.Add(int64(s.meter.charge(context.Background(), 0, 0, 0)))
	}
	s.stats.linesRejected.Add(int64(countCandidateLines(body)))
	writeAPIError(w, apiErr)
}

// countCandidateLines counts the lines of a body that are neither blank
// nor comments, for the statistics of refused writes.
func countCandidateLines(body []byte) int {
	n := 0
	for start := 0; start < len(body); {
		end := start
		for end < len(body) && body[end] != '\n' {
			end++
		}
		i := start
		for i < end && isASCIIWhitespace(body[i]) {
			i++
		}
		if i < end && body[i] != '#' {
			n++
		}
		start = end + 1
	}
	return n
}

// serveSQL is POST /api/v1/sql.
func (s *Server) serveSQL(w http.ResponseWriter, r *http.Request) {
	body, apiErr := s.readBody(r, maxSQLBodyBytes)
	if apiErr != nil {
		writeAPIError(w, apiErr)
		return
	}
	h, apiErr := readHeaders(r)
	if apiErr != nil {
		writeAPIError(w, apiErr)
		return
	}
	params, apiErr := queryParams(r.URL.RawQuery, "tenant", "db", "chunked", "target_partitions", "stream_trigger_interval")
	if apiErr != nil {
		writeAPIError(w, apiErr)
		return
	}
	if v, ok := params["chunked"]; ok && v != "true" && v != "false" {
		writeAPIError(w, errUnhandledRejection)
		return
	}
	if v, ok := params["target_partitions"]; ok {
		if _, err := strconv.ParseUint(strings.TrimPrefix(v, "+"), 10, 64); err != nil {
			writeAPIError(w, errUnhandledRejection)
			return
		}
	}
	decoded, apiErr := s.decodeRequestBody(h, body)
	if apiErr != nil {
		writeAPIError(w, apiErr)
		return
	}
	user, password, apiErr := parseBasicAuth(h.authorization)
	if apiErr != nil {
		writeAPIError(w, apiErr)
		return
	}
	tenant := paramOr(params, "tenant", defaultTenant)
	if apiErr := s.authenticate(user, password, tenant); apiErr != nil {
		writeAPIError(w, apiErr)
		return
	}
	format, apiErr := resultFormatFor(h.accept)
	if apiErr != nil {
		writeAPIError(w, apiErr)
		return
	}
	encoding, apiErr := s.answerEncoding(h)
	if apiErr != nil {
		writeAPIError(w, apiErr)
		return
	}

	result, apiErr := s.executeSQL(tenant, paramOr(params, "db", defaultDatabase), string(rustLossyUTF8(decoded)))
	if apiErr != nil {
		writeAPIError(w, apiErr)
		return
	}
	out, apiErr := format.render(result)
	if apiErr != nil {
		writeAPIError(w, apiErr)
		return
	}
	hdr := w.Header()
	hdr.Set("Content-Type", format.contentType)
	if encoding != "" {
		encoded, err := encodeBody(encoding, out)
		if err != nil {
			writeAPIError(w, newAPIError(http.StatusUnprocessableEntity, "040014", "Error encode response: "+err.Error()))
			return
		}
		out = encoded
		hdr.Set("Content-Encoding", encoding)
	}
	hdr.Set("Content-Length", strconv.Itoa(len(out)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out)
}

// answerEncoding is get_accept_encoding_from_header: the first
// comma-separated token that is exactly a supported encoding; a header
// without any is refused.
func (s *Server) answerEncoding(h requestHeaders) (string, *apiError) {
	if !h.hasAcceptEncoding {
		return "", nil
	}
	for _, token := range strings.Split(h.acceptEncoding, ",") {
		if token = strings.TrimSpace(token); s.rules.acceptsEncoding(token) {
			return token, nil
		}
	}
	return "", errInvalidHeader("accept encoding not support: " + h.acceptEncoding +
		", only support: " + strings.Join(s.rules.contentEncodings, ", "))
}
