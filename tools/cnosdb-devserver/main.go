// Command cnosdb-devserver serves an in-memory emulation of CnosDB's HTTP
// API (2.4.3 by default, or 2.3) for demos, benchmarks and tests on
// machines where CnosDB itself cannot run. It is a development tool, not
// part of the shipped plugins.
//
// With -admin-addr it also serves the fault-injection admin API described
// in package cnosdbdev (GET /stats, GET|POST|DELETE /faults).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/dev/cnosdbdev"
)

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func main() {
	logger := log.New(os.Stderr, "", 0)
	if err := run(logger, os.Args[1:]); err != nil {
		logger.Printf("E! cnosdb-devserver: %v", err)
		os.Exit(1)
	}
}

func run(logger *log.Logger, args []string) error {
	cfg, err := parseFlags(args)
	if err != nil {
		return err
	}
	dev, err := newServer(cfg.opts, cfg.databases)
	if err != nil {
		return err
	}

	front, err := cnosdbdev.Listen(cfg.addr, dev)
	if err != nil {
		return err
	}
	defer front.Close()

	var admin *http.Server
	adminNote := ""
	if cfg.adminAddr != "" {
		var addr net.Addr
		admin, addr, err = serveAdmin(logger, cfg.adminAddr, front, dev)
		if err != nil {
			return err
		}
		adminNote = ", admin API on http://" + addr.String()
	}
	logger.Printf("I! cnosdb-devserver: emulating CnosDB %s on %s%s%s", dev.Version(), front.URL(), adminNote, optionsNote(cfg.opts))

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt, syscall.SIGTERM)
	sig := <-stop
	logger.Printf("I! cnosdb-devserver: %v received, stopping", sig)
	if admin != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := admin.Shutdown(ctx); err != nil {
			logger.Printf("W! cnosdb-devserver: admin API shutdown: %v", err)
		}
	}
	return nil
}

type config struct {
	addr, adminAddr string
	opts            cnosdbdev.Options
	databases       []string
}

func parseFlags(args []string) (config, error) {
	fs := flag.NewFlagSet("cnosdb-devserver", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:8902", "address of the CnosDB HTTP API")
	adminAddr := fs.String("admin-addr", "", "address of the fault-injection admin API (empty: none)")
	mode := fs.String("mode", cnosdbdev.Mode24, "emulated CnosDB version: 2.4 (2.4.3) or 2.3")
	maxBody := fs.Int64("max-body", cnosdbdev.DefaultMaxBodyBytes, "largest write body in bytes, as sent (compressed or not)")
	auth := fs.Bool("auth", false, "check passwords (auth_enabled)")
	countOnly := fs.Bool("count-only", false, "only count lines per table, store nothing (for benchmarks)")
	cost := fs.Bool("cost", false, "make each write take as long as on a real CnosDB 2.4.3 (per request and per line)")
	def := cnosdbdev.DefaultCost()
	costCores := fs.Int("cost-cores", def.Cores, "with -cost: requests the emulated server serves at once")
	costPerRequest := fs.Duration("cost-per-request", def.PerRequest, "with -cost: the price of a request")
	costPerLine := fs.Duration("cost-per-line", def.PerLine, "with -cost: the price of a line, besides its fields and tags")
	costPerField := fs.Duration("cost-per-field", def.PerField, "with -cost: the price of a field")
	costPerTag := fs.Duration("cost-per-tag", def.PerTag, "with -cost: the price of a tag")
	var users, databases listFlag
	fs.Var(&users, "user", "user as name:password (repeatable; default root with an empty password)")
	fs.Var(&databases, "create-db", "database to create at start (repeatable)")
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}

	opts := cnosdbdev.Options{Mode: *mode, MaxBodyBytes: *maxBody, AuthEnabled: *auth, CountOnly: *countOnly}
	if *cost {
		def.Cores, def.PerRequest, def.PerLine, def.PerField, def.PerTag = *costCores, *costPerRequest, *costPerLine, *costPerField, *costPerTag
		opts.Cost = def
	}
	if len(users) > 0 {
		opts.Users = make(map[string]string, len(users))
		for _, u := range users {
			name, password, ok := strings.Cut(u, ":")
			if !ok || name == "" {
				return config{}, fmt.Errorf("-user %q: want name:password", u)
			}
			opts.Users[name] = password
		}
	}
	return config{addr: *addr, adminAddr: *adminAddr, opts: opts, databases: databases}, nil
}

// newServer returns the emulated server of opts, holding databases.
func newServer(opts cnosdbdev.Options, databases []string) (*cnosdbdev.Server, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	dev := cnosdbdev.New(opts)
	for _, db := range databases {
		if err := dev.CreateDatabase(db, ""); err != nil {
			return nil, fmt.Errorf("create database %q: %w", db, err)
		}
	}
	return dev, nil
}

// serveAdmin serves the fault-injection admin API of front and dev on addr
// until the returned server is shut down.
func serveAdmin(logger *log.Logger, addr string, front *cnosdbdev.Front, dev *cnosdbdev.Server) (*http.Server, net.Addr, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("admin API: %w", err)
	}
	admin := &http.Server{Handler: cnosdbdev.NewAdminHandler(front, dev), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := admin.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Printf("E! cnosdb-devserver: admin API: %v", err)
		}
	}()
	return admin, ln.Addr(), nil
}

// optionsNote lists the options that make the emulation differ from a stock
// CnosDB, for the start-up message.
func optionsNote(opts cnosdbdev.Options) string {
	note := ""
	if opts.AuthEnabled {
		note += ", auth enabled"
	}
	if opts.CountOnly {
		note += ", count-only"
	}
	if opts.Cost != nil {
		note += ", writes cost " + opts.Cost.String()
	}
	return note
}
