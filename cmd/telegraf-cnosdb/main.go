// Command telegraf-cnosdb writes the metrics Telegraf's execd output hands it on stdin
// to CnosDB.
//
//	[[outputs.execd]]
//	  command = ["/usr/bin/telegraf-cnosdb", "-config", "/etc/telegraf/cnosdb.conf"]
//	  data_format = "influx"
//
// It does not use the plugin shim's output loop, which drops a batch whenever a write
// fails and stops at the first line longer than 64 KiB; package execdout reads stdin
// instead and the plugin retries until CnosDB takes the lines.
package main

import (
	"context"
	"errors"
	"flag"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/influxdata/telegraf"

	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/internal/cli"
	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/internal/execdout"
	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/internal/pluginconf"
	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/plugins/outputs/cnosdb"
)

// gcMemoryLimit is where the garbage collector starts collecting more often than Go's
// default (see cli.TuneGC), unless GOGC or GOMEMLIMIT say otherwise. With lines of a
// few hundred bytes the heap stays far below it. With lines of 1 MiB the batches
// queued, being written and filling are up to about 110 MiB live, and Go's default
// would let the heap grow to twice that before collecting: the limit keeps the
// process under about 170 MiB resident instead of 250.
const gcMemoryLimit = 160 << 20

func main() {
	os.Exit(run())
}

func run() int {
	var c command
	if code, ok := c.configure(os.Args[1:]); !ok {
		return code
	}
	cli.TuneGC(100, gcMemoryLimit)
	defer c.flags.StartProfiling("telegraf-cnosdb", c.log)()
	if err := c.plugin.Connect(); err != nil {
		c.log.Error(err)
		return 1
	}
	stream, err := cnosdb.NewStream(c.plugin)
	if err != nil {
		c.log.Error(err)
		_ = c.plugin.Close()
		return 1
	}
	return c.serve(stream)
}

// command is one run of telegraf-cnosdb.
type command struct {
	flags           cli.Flags
	shutdownTimeout time.Duration
	plugin          *cnosdb.CnosDB
	log             telegraf.Logger
}

// configure reads the flags and the configuration file; ok is false when the
// command ends here, with code.
func (c *command) configure(args []string) (code int, ok bool) {
	fs := flag.NewFlagSet("telegraf-cnosdb", flag.ContinueOnError)
	c.flags.Register(fs, "[[outputs.cnosdb]]")
	// Not a plugin option: the bound is Telegraf's, the same for every configuration;
	// the tests set other values to check it.
	fs.DurationVar(&c.shutdownTimeout, "shutdown-timeout", cnosdb.DefaultShutdownTimeout,
		"after stdin ends or SIGTERM or SIGINT, how long to wait for CnosDB before giving up on the lines not written")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0, false
		}
		return 2, false
	}

	c.plugin = cnosdb.New()
	if c.flags.PrintInfo(os.Stdout, "telegraf-cnosdb", c.plugin) {
		return 0, false
	}
	c.log = c.flags.Logger("outputs.cnosdb")
	c.plugin.Log = c.log
	if !c.flags.RequireConfig(c.log) {
		return 2, false
	}
	if err := pluginconf.Load(c.flags.Config, "outputs", "cnosdb", c.plugin); err != nil {
		c.log.Error(err)
		return 2, false
	}
	if err := c.plugin.Init(); err != nil {
		c.log.Errorf("configuration: %v", err)
		return 2, false
	}
	if w := pluginconf.ExposedSecretWarning(c.flags.Config, !c.plugin.Password.Empty()); w != "" {
		c.log.Warn(w)
	}
	return 0, true
}

// serve writes what stdin brings until it ends or a signal comes, and says how the
// stop went.
func (c *command) serve(stream *cnosdb.Stream) int {
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	// One channel for all signals, so that a second one coming at once is not missed.
	signals := make(chan os.Signal, 2)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(signals)
	inputEnded := make(chan struct{})
	drained := make(chan struct{})
	stopped := c.watchStop(stream, signals, stop, inputEnded, drained)

	cfg := stream.Config()
	cfg.InputEnded = func() { close(inputEnded) }
	// Reading after a signal must end before the stop gives up, so that the log of
	// what is given up counts every line read.
	cfg.ShutdownGrace = min(cfg.ShutdownGrace, c.shutdownTimeout/2)
	err := execdout.Run(ctx, os.Stdin, stream, cfg)
	stream.Close()
	if cerr := c.plugin.Close(); cerr != nil && err == nil {
		err = cerr
	}
	close(drained)
	<-stopped
	c.plugin.LogTotals()
	stream.LogAbandoned()
	if err != nil {
		c.log.Errorf("reading stdin: %v", err)
		return 1
	}
	if lines, safe := stream.Abandoned(); lines > 0 && !safe {
		return 1
	}
	return 0
}

// watchStop starts the stop at the end of stdin (how Telegraf's execd output stops
// its child) or at the first SIGTERM or SIGINT, which also stops reading (stop).
// Either way what was read is written for at most -shutdown-timeout: a stop must not
// wait without end for an unreachable CnosDB, nor outlast Telegraf's window and end
// with a SIGKILL that says nothing. A signal after that gives up at once. With a
// spool, what was read is on disk already: a signal stops writing at once, and the
// rest is written at the next start. The returned channel is closed once the stop is
// over, or at once when everything was written (drained) first.
func (c *command) watchStop(stream *cnosdb.Stream, signals <-chan os.Signal, stop func(), inputEnded, drained <-chan struct{}) <-chan struct{} {
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		cause := cnosdb.StdinClosed
		select {
		case sig := <-signals:
			cause = "SIGTERM"
			if sig == syscall.SIGINT {
				cause = "SIGINT"
			}
			stop()
		case <-inputEnded:
		case <-drained:
			return
		}
		again := make(chan struct{})
		go func() {
			select {
			case <-signals:
				close(again)
			case <-drained:
			}
		}()
		stream.Stopping(cause, c.shutdownTimeout, again, drained)
	}()
	return stopped
}
