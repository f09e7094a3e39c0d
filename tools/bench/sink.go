package main

import (
	"context"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/dev/cnosdbdev"
)

// table is where both pipelines write: stock kafka_consumer names its metrics after
// the plugin, and telegraf-kafka-consumer keeps that name as a drop-in.
const table = "kafka_consumer"

// Sinks the benchmark can write to.
const (
	sinkCost      = "cost"       // the dev server with the cost model of a real CnosDB
	sinkCountOnly = "count-only" // the dev server, free: a ceiling
	sinkReal      = "real"       // a real CnosDB at CNOSDB_URL
)

// sink is the CnosDB the pipelines write to and the benchmark counts in.
type sink struct {
	url            string // where the pipelines write: the counting proxy
	api            string // the sink itself, for SQL
	user, password string
	kind           string // sinkCost, sinkCountOnly or sinkReal
	desc           string
	pid            int // the database process, 0 when not known
	writes         *writeCounter
	close          func()
	client         *http.Client
}

// openSink starts the dev server in count-only mode in this process, with the cost
// model unless mode is count-only, or uses the real CnosDB named by CNOSDB_URL, and
// puts the counting proxy in front of it. Count-only keeps the emulator's own work
// out of the numbers; the cost model makes every write take as long as a real
// CnosDB's, so that a pipeline's requests cost what they would.
func openSink(ctx context.Context, mode string, cores int) (*sink, error) {
	s := &sink{user: "root", close: func() {}, client: &http.Client{Timeout: 30 * time.Second}}
	if u := os.Getenv("CNOSDB_URL"); u != "" {
		s.api = strings.TrimRight(u, "/")
		if v := os.Getenv("CNOSDB_USER"); v != "" {
			s.user = v
		}
		s.password = os.Getenv("CNOSDB_PASSWORD")
		s.kind = sinkReal
		s.desc = "CnosDB at " + s.api + " (CNOSDB_URL), rows counted with SELECT exact_count(*)"
		if v := os.Getenv("CNOSDB_PID"); v != "" {
			pid, err := strconv.Atoi(v)
			if err != nil {
				return nil, fmt.Errorf("CNOSDB_PID=%q: %w", v, err)
			}
			if _, err := processCPU(pid); err != nil {
				return nil, fmt.Errorf("CNOSDB_PID=%d: reading its CPU time: %w", pid, err)
			}
			s.pid = pid
			s.desc += fmt.Sprintf("; its CPU measured from pid %d (CNOSDB_PID)", pid)
		} else {
			s.desc += "; its CPU not measured (CNOSDB_PID not set)"
		}
		if err := s.ping(ctx); err != nil {
			return nil, err
		}
	} else {
		var err error
		if s, err = devSink(mode, cores); err != nil {
			return nil, err
		}
	}
	if err := s.countWrites(); err != nil {
		return nil, err
	}
	return s, nil
}

// devSink starts the dev server in this process, count-only, with the cost model of
// a real CnosDB serving cores requests at once unless mode is count-only.
func devSink(mode string, cores int) (*sink, error) {
	s := &sink{user: "root", close: func() {}, client: &http.Client{Timeout: 30 * time.Second}}
	opts := cnosdbdev.Options{CountOnly: true}
	switch mode {
	case sinkCost:
		opts.Cost = cnosdbdev.DefaultCost()
		opts.Cost.Cores = cores
	case sinkCountOnly:
	default:
		return nil, fmt.Errorf("-sink %q: want %s or %s", mode, sinkCost, sinkCountOnly)
	}
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("the CnosDB dev server: %w", err)
	}
	dev := cnosdbdev.New(opts)
	front, err := cnosdbdev.Listen("127.0.0.1:0", dev)
	if err != nil {
		return nil, fmt.Errorf("starting the CnosDB dev server: %w", err)
	}
	s.api, s.kind = front.URL(), mode
	s.close = func() { _ = front.Close() }
	s.desc = fmt.Sprintf("CnosDB dev server (emulates %s), count-only, in-process at %s", dev.Version(), s.api)
	if opts.Cost != nil {
		s.desc += ", with the cost model of a real CnosDB: " + opts.Cost.String()
	} else {
		s.desc += ", free (no cost model): a ceiling, not a CnosDB"
	}
	return s, nil
}

// countWrites puts the counting proxy in front of s: from now on s.url is the
// proxy's, and closing s closes it too.
func (s *sink) countWrites() error {
	w, err := startWriteCounter(s.api)
	if err != nil {
		s.close()
		return err
	}
	s.writes, s.url = w, w.url
	closeSink := s.close
	s.close = func() { w.close(); closeSink() }
	s.desc += "; every write goes through a counting reverse proxy in this process at " + s.url
	return nil
}

// databaseCPU is the database's CPU time so far, 0 when its process is not known.
func (s *sink) databaseCPU() time.Duration {
	if s.pid == 0 {
		return 0
	}
	d, err := processCPU(s.pid)
	if err != nil {
		return 0
	}
	return d
}

func (s *sink) ping(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.api+"/api/v1/ping", nil)
	if err != nil {
		return err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("pinging CnosDB at %s: %w", s.api, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("pinging CnosDB at %s: HTTP %d", s.api, resp.StatusCode)
	}
	return nil
}

// sql runs one statement in database db and returns the HTTP status and body.
func (s *sink) sql(ctx context.Context, db, stmt string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost,
		s.api+"/api/v1/sql?db="+url.QueryEscape(db), strings.NewReader(stmt))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(s.user+":"+s.password)))
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, "", fmt.Errorf("%s: %w", stmt, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, "", fmt.Errorf("%s: reading the answer: %w", stmt, err)
	}
	return resp.StatusCode, string(body), nil
}

func (s *sink) exec(ctx context.Context, stmt string) error {
	status, body, err := s.sql(ctx, "public", stmt)
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("%s: HTTP %d: %s", stmt, status, strings.TrimSpace(body))
	}
	return nil
}

func (s *sink) createDatabase(ctx context.Context, db string) error {
	return s.exec(ctx, "CREATE DATABASE IF NOT EXISTS "+db)
}

// dropDatabase frees what a run wrote; on a real CnosDB several million rows per
// benchmark would otherwise stay behind.
func (s *sink) dropDatabase(ctx context.Context, db string) error {
	return s.exec(ctx, "DROP DATABASE IF EXISTS "+db)
}

// freshDatabase drops db, left from an interrupted run, and creates it when create
// is set. The returned func drops it again: on a real CnosDB millions of rows per
// benchmark would otherwise stay behind.
func (s *sink) freshDatabase(ctx context.Context, db string, create bool) (func(), error) {
	if err := s.dropDatabase(ctx, db); err != nil {
		return nil, err
	}
	drop := func() {
		// A fresh context: the run's may be cancelled, the database should go anyway.
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := s.dropDatabase(cctx, db); err != nil {
			fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		}
	}
	if create {
		if err := s.createDatabase(ctx, db); err != nil {
			return nil, err
		}
	}
	return drop, nil
}

// count returns the rows in db's table, 0 while the table does not exist yet.
// exact_count(*) is what CnosDB's documentation uses; on a real CnosDB it
// deduplicates points with the same series and time.
func (s *sink) count(ctx context.Context, db string) (int64, error) {
	status, body, err := s.sql(ctx, db, "SELECT exact_count(*) FROM "+table)
	if err != nil {
		return 0, err
	}
	if status != http.StatusOK {
		if tableNotFound(status, body) {
			return 0, nil
		}
		return 0, fmt.Errorf("counting %s.%s: HTTP %d: %s", db, table, status, strings.TrimSpace(body))
	}
	records, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	if err != nil || len(records) != 2 || len(records[1]) != 1 {
		return 0, fmt.Errorf("counting %s.%s: unexpected answer %q", db, table, body)
	}
	n, err := strconv.ParseInt(records[1][0], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("counting %s.%s: %w", db, table, err)
	}
	return n, nil
}

func tableNotFound(status int, body string) bool {
	if status != http.StatusUnprocessableEntity {
		return false
	}
	var e struct {
		Message string `json:"error_message"`
	}
	return json.Unmarshal([]byte(body), &e) == nil && strings.Contains(e.Message, "Table not found")
}
