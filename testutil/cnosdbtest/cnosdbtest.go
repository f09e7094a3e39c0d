// Package cnosdbtest gives tests a CnosDB HTTP endpoint behind a fault
// layer: the in-process emulator of package cnosdbdev by default, or a real
// CnosDB when the environment variable CNOSDB_URL is set (for example
// CNOSDB_URL=http://127.0.0.1:8902; credentials from CNOSDB_USER, default
// root, and CNOSDB_PASSWORD, default empty).
//
// The helpers of Target speak only CnosDB's public HTTP API, so the same
// test runs against both. They bypass the fault layer: faults injected
// with Target.Faults affect the code under test, not the test's own
// checks.
package cnosdbtest

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/dev/cnosdbdev"
	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/testutil/testcert"
)

// Target is a CnosDB endpoint for one test.
type Target struct {
	// URL is the base URL the code under test should use, without a
	// trailing slash. Requests to it pass the fault layer.
	URL string
	// Real is set when the backend is a real CnosDB (CNOSDB_URL).
	Real bool
	// Dev is the emulator, nil when Real.
	Dev *cnosdbdev.Server
	// User and Password are credentials the backend accepts.
	User, Password string
	// CAFile is the PEM file of the CA that signed the certificate of an
	// HTTPS Target (StartTLS); "" for plain HTTP.
	CAFile string

	front     *cnosdbdev.Front
	realURL   *url.URL
	client    *http.Client
	authValue string
}

// Start starts a Target and closes it at the end of the test. opts
// configure the emulator; a real CnosDB is used as it is.
func Start(t testing.TB, opts cnosdbdev.Options) *Target {
	t.Helper()
	return start(t, opts, false)
}

// StartTLS is Start with a URL that serves HTTPS, with a certificate for
// 127.0.0.1 and localhost signed by a CA made for this Target (CAFile).
// With CNOSDB_URL set, the HTTPS front proxies to the real CnosDB, so a
// test of TLS still writes to it.
func StartTLS(t testing.TB, opts cnosdbdev.Options) *Target {
	t.Helper()
	return start(t, opts, true)
}

func start(t testing.TB, opts cnosdbdev.Options, useTLS bool) *Target {
	t.Helper()
	tg := &Target{client: &http.Client{Timeout: 30 * time.Second}}
	var backend http.Handler

	if raw := os.Getenv("CNOSDB_URL"); raw != "" {
		u, err := url.Parse(strings.TrimSuffix(raw, "/"))
		if err != nil || u.Scheme == "" || u.Host == "" {
			t.Fatalf("cnosdbtest: CNOSDB_URL %q is not an absolute URL", raw)
		}
		tg.Real = true
		tg.realURL = u
		tg.User = envOr("CNOSDB_USER", "root")
		tg.Password = os.Getenv("CNOSDB_PASSWORD")
		backend = cnosdbdev.NewProxy(u)
	} else {
		if err := opts.Validate(); err != nil {
			t.Fatalf("cnosdbtest: %v", err)
		}
		tg.Dev = cnosdbdev.New(opts)
		tg.User, tg.Password = pickUser(opts.Users)
		backend = tg.Dev
	}
	tg.authValue = "Basic " + base64.StdEncoding.EncodeToString([]byte(tg.User+":"+tg.Password))

	var serverTLS *tls.Config
	if useTLS {
		pair, err := testcert.New("cnosdbtest")
		if err != nil {
			t.Fatalf("cnosdbtest: %v", err)
		}
		if serverTLS, err = pair.ServerConfig(); err != nil {
			t.Fatalf("cnosdbtest: %v", err)
		}
		tg.CAFile = filepath.Join(t.TempDir(), "ca.pem")
		if err := os.WriteFile(tg.CAFile, pair.CAPEM, 0o644); err != nil {
			t.Fatalf("cnosdbtest: %v", err)
		}
	}
	front, err := cnosdbdev.ListenTLS("127.0.0.1:0", backend, serverTLS)
	if err != nil {
		t.Fatalf("cnosdbtest: %v", err)
	}
	tg.front = front
	tg.URL = front.URL()
	t.Cleanup(func() {
		_ = front.Close()
		tg.client.CloseIdleConnections()
	})

	if tg.Real {
		t.Logf("cnosdbtest: real CnosDB at %s (user %q) behind a fault proxy at %s", tg.realURL.Redacted(), tg.User, tg.URL)
	} else {
		t.Logf("cnosdbtest: CnosDB emulator (%s) at %s", tg.Dev.Version(), tg.URL)
	}
	return tg
}

func envOr(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}

// pickUser returns root's credentials, or those of the first user by name.
func pickUser(users map[string]string) (string, string) {
	if users == nil {
		return "root", ""
	}
	if pw, ok := users["root"]; ok {
		return "root", pw
	}
	names := make([]string, 0, len(users))
	for name := range users {
		names = append(names, name)
	}
	sort.Strings(names)
	if len(names) == 0 {
		return "root", ""
	}
	return names[0], users[names[0]]
}

// Faults returns the fault layer in front of the backend.
func (tg *Target) Faults() *cnosdbdev.Faults { return tg.front.Faults() }

// Front returns the listener in front of the backend.
func (tg *Target) Front() *cnosdbdev.Front { return tg.front }

// Response is a backend answer.
type Response struct {
	Status int
	Header http.Header
	Body   string
}

// Do sends one request straight to the backend (past the fault layer)
// with the Target's credentials and a Content-Length. path includes the
// query string, e.g. "/api/v1/sql?db=public".
func (tg *Target) Do(t testing.TB, method, path string, header http.Header, body []byte) Response {
	t.Helper()
	resp, err := tg.do(method, path, header, body)
	if err != nil {
		t.Fatalf("cnosdbtest: %s %s: %v", method, path, err)
	}
	return resp
}

// OnlyVersion skips the test on a real CnosDB whose version does not start with
// prefix: what the test checks is the behaviour of that version, which the dev server
// emulates (Options.Mode), and another version behaves otherwise. The skip names both
// versions, and the test summary lists it.
func (tg *Target) OnlyVersion(t testing.TB, prefix, behaviour string) {
	t.Helper()
	if !tg.Real {
		return
	}
	resp := tg.Do(t, http.MethodGet, "/api/v1/ping", nil, nil)
	var ping struct {
		Version string `json:"version"`
	}
	if err := json.Unmarshal([]byte(resp.Body), &ping); err != nil || ping.Version == "" {
		t.Fatalf("cnosdbtest: the version of the CnosDB at CNOSDB_URL: HTTP %d %q: %v", resp.Status, resp.Body, err)
	}
	if !strings.HasPrefix(ping.Version, prefix) {
		t.Skipf("%s is CnosDB %s's; the CnosDB at CNOSDB_URL is %s", behaviour, prefix, ping.Version)
	}
}

func (tg *Target) do(method, path string, header http.Header, body []byte) (Response, error) {
	if tg.Real {
		req, err := http.NewRequest(method, tg.realURL.String()+path, bytes.NewReader(body))
		if err != nil {
			return Response{}, fmt.Errorf("build request: %w", err)
		}
		tg.decorate(req, header)
		resp, err := tg.client.Do(req)
		if err != nil {
			return Response{}, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return Response{}, fmt.Errorf("read answer: %w", err)
		}
		return Response{Status: resp.StatusCode, Header: resp.Header, Body: string(b)}, nil
	}
	req := httptest.NewRequest(method, path, bytes.NewReader(body))
	tg.decorate(req, header)
	req.Header.Set("Content-Length", strconv.Itoa(len(body)))
	rec := httptest.NewRecorder()
	tg.Dev.ServeHTTP(rec, req)
	return Response{Status: rec.Code, Header: rec.Header(), Body: rec.Body.String()}, nil
}

func (tg *Target) decorate(req *http.Request, header http.Header) {
	req.Header.Set("Authorization", tg.authValue)
	for k, vs := range header {
		req.Header.Del(k)
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
}

// SQL runs one statement in database db ("" for CnosDB's default) and
// returns the CSV answer; the test fails on any other status than 200.
func (tg *Target) SQL(t testing.TB, db, stmt string) string {
	t.Helper()
	resp := tg.Do(t, http.MethodPost, sqlPath(db), nil, []byte(stmt))
	if resp.Status != http.StatusOK {
		t.Fatalf("cnosdbtest: SQL %q in %s: %d %s", stmt, db, resp.Status, resp.Body)
	}
	return resp.Body
}

// Write writes line protocol to db with precision ns; the test fails on
// any other status than 200.
func (tg *Target) Write(t testing.TB, db, lines string) {
	t.Helper()
	resp := tg.Do(t, http.MethodPost, "/api/v1/write?db="+url.QueryEscape(db), nil, []byte(lines))
	if resp.Status != http.StatusOK {
		t.Fatalf("cnosdbtest: write to %s: %d %s", db, resp.Status, resp.Body)
	}
}

// NewDatabase creates a database with a unique name ("t_" and 16 hex
// digits) with the given options (the part after WITH, may be empty, e.g.
// "PRECISION 'ms' TTL '30d'") and drops it when the test ends.
func (tg *Target) NewDatabase(t testing.TB, opts string) string {
	t.Helper()
	var random [8]byte
	if _, err := rand.Read(random[:]); err != nil {
		t.Fatalf("cnosdbtest: random database name: %v", err)
	}
	name := "t_" + hex.EncodeToString(random[:])
	stmt := "CREATE DATABASE " + name
	if strings.TrimSpace(opts) != "" {
		stmt += " WITH " + opts
	}
	tg.SQL(t, "public", stmt)
	t.Cleanup(func() {
		resp, err := tg.do(http.MethodPost, "/api/v1/sql?db=public", nil, []byte("DROP DATABASE IF EXISTS "+name))
		if err != nil || resp.Status != http.StatusOK {
			t.Logf("cnosdbtest: drop database %s: %v %d %s", name, err, resp.Status, resp.Body)
		}
	})
	return name
}

// Count returns the number of distinct rows of table (exact_count(*),
// which deduplicates overwritten points; COUNT(*) where exact_count does
// not exist). A table that does not exist has 0 rows.
func (tg *Target) Count(t testing.TB, db, table string) int {
	t.Helper()
	for _, fn := range []string{"exact_count(*)", "COUNT(*)"} {
		resp := tg.Do(t, http.MethodPost, sqlPath(db), nil,
			[]byte("SELECT "+fn+" FROM "+quote(table)))
		switch {
		case resp.Status == http.StatusOK:
			records := parseCSV(t, resp.Body)
			if len(records) != 2 || len(records[1]) != 1 {
				t.Fatalf("cnosdbtest: unexpected count answer %q", resp.Body)
			}
			n, err := strconv.Atoi(records[1][0])
			if err != nil {
				t.Fatalf("cnosdbtest: count %q: %v", records[1][0], err)
			}
			return n
		case isTableNotFound(resp):
			return 0
		case fn == "exact_count(*)" && strings.Contains(resp.Body, "exact_count"):
			continue // older than 2.4.3
		default:
			t.Fatalf("cnosdbtest: count %s.%s: %d %s", db, table, resp.Status, resp.Body)
		}
	}
	return 0
}

// Rows returns the rows of table ordered by time, each as column name ->
// CSV text (NULL and the empty string both read as ""). A table that does
// not exist has no rows.
func (tg *Target) Rows(t testing.TB, db, table string) []map[string]string {
	t.Helper()
	resp := tg.Do(t, http.MethodPost, sqlPath(db), nil,
		[]byte("SELECT * FROM "+quote(table)+" ORDER BY time"))
	if isTableNotFound(resp) {
		return nil
	}
	if resp.Status != http.StatusOK {
		t.Fatalf("cnosdbtest: rows of %s.%s: %d %s", db, table, resp.Status, resp.Body)
	}
	records := parseCSV(t, resp.Body)
	if len(records) == 0 {
		return nil
	}
	header := records[0]
	rows := make([]map[string]string, 0, len(records)-1)
	for _, rec := range records[1:] {
		row := make(map[string]string, len(header))
		for i, name := range header {
			if i < len(rec) {
				row[name] = rec[i]
			}
		}
		rows = append(rows, row)
	}
	return rows
}

// sqlPath is the SQL endpoint for db; an empty db leaves the parameter out,
// so that CnosDB uses its default database public.
func sqlPath(db string) string {
	if db == "" {
		return "/api/v1/sql"
	}
	return "/api/v1/sql?db=" + url.QueryEscape(db)
}

func quote(name string) string {
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
}

func parseCSV(t testing.TB, body string) [][]string {
	t.Helper()
	r := csv.NewReader(strings.NewReader(body))
	r.FieldsPerRecord = -1
	records, err := r.ReadAll()
	if err != nil {
		t.Fatalf("cnosdbtest: parse CSV answer %q: %v", body, err)
	}
	return records
}

func isTableNotFound(resp Response) bool {
	if resp.Status != http.StatusUnprocessableEntity {
		return false
	}
	var e struct {
		Message string `json:"error_message"`
	}
	if json.Unmarshal([]byte(resp.Body), &e) != nil {
		return false
	}
	return strings.Contains(e.Message, "Table not found")
}
