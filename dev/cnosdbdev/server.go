package cnosdbdev

import (
	"fmt"
	"net/http"
	"sync/atomic"
	"time"
)

// DefaultMaxBodyBytes is CnosDB's write_sql_limit: 160 MiB of request body
// as sent (compressed bodies are measured before decompression).
const DefaultMaxBodyBytes = 160 << 20

// maxSQLBodyBytes is CnosDB's query_sql_limit.
const maxSQLBodyBytes = 16 << 20

// Options configure a Server.
type Options struct {
	// Mode is the emulated version: "2.4" (default, CnosDB 2.4.3) or "2.3".
	Mode string
	// MaxBodyBytes limits write bodies by their Content-Length (the size
	// as sent, compressed or not); larger ones get 413 with an empty body.
	// Zero means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// AuthEnabled checks passwords. When it is off any password is
	// accepted, but the user must exist, as in CnosDB.
	AuthEnabled bool
	// Users maps user names to passwords. Nil means {"root": ""}. All
	// users are administrators.
	Users map[string]string
	// CountOnly is a fast mode for benchmarks: write bodies are only split
	// into lines and counted per database and table, nothing is stored.
	// SELECT COUNT(*) and exact_count(*) answer from the counters.
	CountOnly bool
	// Cost, when set, makes each write take as long as it would on a real CnosDB
	// (see DefaultCost); nil answers as fast as the emulator can.
	Cost *Cost
}

// Validate reports options New would refuse.
func (o Options) Validate() error {
	if _, err := behaviourFor(o.Mode); err != nil {
		return err
	}
	if o.MaxBodyBytes < 0 {
		return fmt.Errorf("negative MaxBodyBytes %d", o.MaxBodyBytes)
	}
	if o.Cost != nil {
		return o.Cost.Validate()
	}
	return nil
}

// Server is an in-memory server that answers CnosDB's HTTP API the way
// CnosDB 2.4.3 (or 2.3) does. It implements http.Handler.
type Server struct {
	opts      Options
	rules     *behaviour
	store     *store
	users     map[string]string
	buildTime string
	stats     counters
	meter     *meter // nil without Options.Cost
}

type counters struct {
	requests      atomic.Int64
	writeRequests atomic.Int64
	sqlRequests   atomic.Int64
	linesAccepted atomic.Int64
	linesRejected atomic.Int64
	bytes         atomic.Int64
	charged       atomic.Int64
}

// Stats are the Server's request counters.
type Stats struct {
	Requests      int64 `json:"requests"`       // every request the server answered
	WriteRequests int64 `json:"write_requests"` // POST /api/v1/write and /write
	SQLRequests   int64 `json:"sql_requests"`   // POST /api/v1/sql
	LinesAccepted int64 `json:"lines_accepted"` // lines of accepted writes
	LinesRejected int64 `json:"lines_rejected"` // lines of refused writes whose body was read
	Bytes         int64 `json:"bytes"`          // write body bytes received, as sent
	// Charged is the time the cost model made writes take (Options.Cost).
	Charged time.Duration `json:"charged_ns"`
}

// New returns a Server with the public, usage_schema and cluster_schema
// databases of the default tenant "cnosdb". It panics when opts does not
// Validate; check options that come from users with Validate first.
func New(opts Options) *Server {
	if err := opts.Validate(); err != nil {
		panic("cnosdbdev: " + err.Error())
	}
	rules, _ := behaviourFor(opts.Mode)
	if opts.MaxBodyBytes == 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	users := make(map[string]string, len(opts.Users))
	for user, password := range opts.Users {
		users[user] = password
	}
	if opts.Users == nil {
		users["root"] = ""
	}
	opts.Mode = rules.mode
	st := newStore(rules, opts.CountOnly)
	var m *meter
	if opts.Cost != nil {
		m = newMeter(opts.Cost)
		st.shapes = true
	}
	return &Server{
		meter:     m,
		opts:      opts,
		rules:     rules,
		store:     st,
		users:     users,
		buildTime: time.Now().UTC().Format(time.RFC3339),
	}
}

// Mode returns the emulated version, "2.4" or "2.3".
func (s *Server) Mode() string { return s.rules.mode }

// Version returns what the ping answer reports as the version.
func (s *Server) Version() string { return s.rules.pingVersion(s.buildTime) }

// Stats returns a snapshot of the request counters.
func (s *Server) Stats() Stats {
	return Stats{
		Requests:      s.stats.requests.Load(),
		WriteRequests: s.stats.writeRequests.Load(),
		SQLRequests:   s.stats.sqlRequests.Load(),
		LinesAccepted: s.stats.linesAccepted.Load(),
		LinesRejected: s.stats.linesRejected.Load(),
		Bytes:         s.stats.bytes.Load(),
		Charged:       time.Duration(s.stats.charged.Load()),
	}
}

// CreateDatabase creates a database in the default tenant, like
// "CREATE DATABASE IF NOT EXISTS name WITH <with>" (with may be empty).
func (s *Server) CreateDatabase(name, with string) error {
	stmt := "CREATE DATABASE IF NOT EXISTS " + quoteIdentifier(name)
	if with != "" {
		stmt += " WITH " + with
	}
	if _, apiErr := s.executeSQL(defaultTenant, defaultDatabase, stmt); apiErr != nil {
		return apiErr
	}
	return nil
}

// ServeHTTP routes requests like CnosDB's query node: unknown paths get 404
// and known paths with another method 405, both with empty bodies.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.stats.requests.Add(1)
	switch r.URL.Path {
	case "/api/v1/ping":
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			writeAPIError(w, errMethodNotAllowed)
			return
		}
		s.servePing(w)
	case "/api/v1/write":
		if r.Method != http.MethodPost {
			writeAPIError(w, errMethodNotAllowed)
			return
		}
		s.stats.writeRequests.Add(1)
		s.serveWrite(w, r)
	case "/api/v1/sql":
		if r.Method != http.MethodPost {
			writeAPIError(w, errMethodNotAllowed)
			return
		}
		s.stats.sqlRequests.Add(1)
		s.serveSQL(w, r)
	case "/write":
		if r.Method != http.MethodPost {
			writeAPIError(w, errMethodNotAllowed)
			return
		}
		s.stats.writeRequests.Add(1)
		s.serveInfluxWrite(w, r)
	default:
		writeAPIError(w, errNotFound)
	}
}

func (s *Server) servePing(w http.ResponseWriter) {
	body := []byte(`{"version":`)
	body = appendJSONString(body, s.Version())
	body = append(body, `,"status":"healthy"}`...)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}
