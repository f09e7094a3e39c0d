package cnosdb

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// outcome says what to do with a request after CnosDB answered it (or did not).
type outcome int

const (
	// written: CnosDB stored the lines.
	written outcome = iota
	// transient: CnosDB or the network is busy or down; send the same lines again later.
	transient
	// tooLarge: the body is over CnosDB's size limit; send the halves.
	tooLarge
	// rejected: CnosDB says some line in the request cannot be stored; find it by
	// splitting.
	rejected
	// suspect: 500 with an empty body, CnosDB 2.3's and 2.4.0's answer to a bad line,
	// which the same versions also give for failures that pass; the request is split
	// like a rejected one, but a line alone is dropped only once CnosDB is seen to
	// write (see writer.confirmBad).
	suspect
	// unknown: an answer this plugin does not know. It may mean anything, so it drops
	// nothing: the lines are sent again after a back-off, as for transient.
	unknown
	// misconfigured: authentication, tenant or database are wrong; nothing will be
	// written until an operator acts, so the lines wait and the log says what to fix.
	misconfigured
)

func (o outcome) String() string {
	return [...]string{"written", "transient", "too large", "rejected", "suspect", "unknown", "misconfigured"}[o]
}

// serverError is CnosDB's answer to a failed request.
type serverError struct {
	Status  int    `json:"-"`
	Code    string `json:"error_code"`
	Message string `json:"error_message"`
	// RetryAfter is how long the answer's Retry-After header asks to wait; zero
	// without one. CnosDB sends none, proxies and gateways in front of it may.
	RetryAfter time.Duration `json:"-"`
}

func (e *serverError) Error() string {
	if e.Code == "" && e.Message == "" {
		return fmt.Sprintf("HTTP %d %s (empty body)", e.Status, http.StatusText(e.Status))
	}
	return fmt.Sprintf("HTTP %d, CnosDB error %s: %s", e.Status, e.Code, e.Message)
}

// hasBody reports whether the answer carried a body.
func (e *serverError) hasBody() bool { return e.Code != "" || e.Message != "" }

// parseServerError reads CnosDB's JSON error body; other bodies are kept as the message.
func parseServerError(status int, body []byte) *serverError {
	e := &serverError{Status: status}
	if len(body) == 0 {
		return e
	}
	if err := json.Unmarshal(body, e); err != nil || (e.Code == "" && e.Message == "") {
		e.Code, e.Message = "", strings.TrimSpace(string(body))
	}
	return e
}

// parseRetryAfter reads a Retry-After header (RFC 9110, section 10.2.3): a number of
// seconds or an HTTP date. A date in the past, or a value that is neither, asks for no
// wait.
func parseRetryAfter(value string, now time.Time) time.Duration {
	value = strings.TrimSpace(value)
	if value == "" {
		return 0
	}
	if secs, err := strconv.ParseUint(value, 10, 32); err == nil {
		return time.Duration(secs) * time.Second
	}
	if at, err := http.ParseTime(value); err == nil && at.After(now) {
		return at.Sub(now)
	}
	return 0
}

// CnosDB answers most failures, passing or permanent, with 422; the error code (and for
// a few codes the message) tells them apart. The tables follow CnosDB's error codes.
var (
	transientCodes = map[string]bool{
		"050033": true, // memory exhausted (2.4)
		"020005": true, // memory exhausted (2.3)
		"030024": true, // rate limit reached
		"030025": true, // "please try again"
		"030053": true, // fewer live nodes than replicas
		"050016": true, // pre-execution failed: request timed out
		"050019": true, // grpc client request error
		"050023": true, // no valid replica
		"050027": true, // raft write error
		"050028": true, // raft group error
	}
	rejectedCodes = map[string]bool{
		"040004": true, // line protocol parse error
		"040015": true, // invalid UTF-8
		"050014": true, // column type conflict, mixed types in one request
		"020004": true, // column type conflict (2.3)
		"030034": true, // timestamp before the database's TTL
		"050034": true, // no fields
		"020002": true, // no fields (2.3)
	}
	misconfiguredCodes = map[string]string{
		"000000": "a required request header is missing",
		"040005": "a request header has a value CnosDB does not take (content_encoding needs CnosDB 2.3.4 or 2.4.1 and later)",
		"040006": "the Authorization header is malformed: check username and password",
		"040013": "CnosDB could not decode the compressed body: check content_encoding",
		"010016": "authentication failed: check username, password and tenant",
		"010004": "the user lacks the privilege to write (or must change its password first)",
		"030017": "the database does not exist: create it, or set create_database = true",
		"030010": "the tenant does not exist: check tenant",
		"050009": "the tenant does not exist: check tenant",
	}
)

// classify maps an answer to an outcome. Only what CnosDB says is a bad line leads to
// a line being dropped (rejected, and suspect once confirmed); an answer it does not
// explain is retried, since dropping lines on a guess loses good ones.
func classify(e *serverError) outcome {
	switch {
	case e.Status >= 200 && e.Status < 300:
		return written
	case e.Status == http.StatusRequestEntityTooLarge:
		return tooLarge
	case e.Status == http.StatusTooManyRequests:
		// CnosDB never sends 429 (API.md); a proxy or gateway in front of it does.
		return transient
	}
	msg := strings.ToLower(e.Message)
	switch {
	case transientCodes[e.Code],
		strings.Contains(msg, "memory exhausted"),
		strings.Contains(msg, "timed out"), strings.Contains(msg, "timeout"),
		// Under load CnosDB reports a lost meta connection as an auth error (010016).
		strings.Contains(msg, "request meta cluster error"):
		return transient
	case rejectedCodes[e.Code], strings.Contains(msg, "expired time data"):
		return rejected
	case misconfiguredCodes[e.Code] != "":
		return misconfigured
	}
	switch e.Status {
	case http.StatusNotFound, http.StatusMethodNotAllowed, http.StatusUnauthorized, http.StatusForbidden:
		// A wrong path, or a storage-only CnosDB node, which serves no writes.
		return misconfigured
	case http.StatusInternalServerError:
		if !e.hasBody() {
			// The bad-line answer of CnosDB 2.3.x and 2.4.0 (../shared/cnosdb/API.md,
			// "bad line protocol": "500 empty (2.3.x, 2.4.0)"). The same versions
			// answer meta errors so too (SOURCE-NOTES.md, 1.6), hence suspect, not
			// rejected.
			return suspect
		}
		// A 500 with a body is none of CnosDB's bad-line answers.
		return unknown
	}
	if e.Status >= 500 {
		// Proxies and load balancers in front of CnosDB answer 502, 503 and 504.
		return transient
	}
	return unknown
}

// hint returns what an operator should check for a misconfigured answer.
func hint(e *serverError) string {
	if h := misconfiguredCodes[e.Code]; h != "" {
		return h
	}
	switch e.Status {
	case http.StatusNotFound:
		return "the URL does not serve /api/v1/write: check urls (a storage-only CnosDB node answers 404)"
	case http.StatusMethodNotAllowed:
		return "the URL does not take POST /api/v1/write: check urls"
	}
	return "check the plugin's configuration against the CnosDB server"
}
