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
	var flags cli.Flags
	fs := flag.NewFlagSet("telegraf-cnosdb", flag.ContinueOnError)
	flags.Register(fs, "[[outputs.cnosdb]]")
	// Not a plugin option: the bound is Telegraf's, the same for every configuration;
	// the tests set other values to check it.
	shutdownTimeout := fs.Duration("shutdown-timeout", cnosdb.DefaultShutdownTimeout,
		"after stdin ends or SIGTERM or SIGINT, how long to wait for CnosDB before giving up on the lines not written")
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}

	plugin := cnosdb.New()
	if flags.PrintInfo(os.Stdout, "telegraf-cnosdb", plugin) {
		return 0
	}
	log := flags.Logger("outputs.cnosdb")
	plugin.Log = log
	if !flags.RequireConfig(log) {
		return 2
	}
	if err := pluginconf.Load(flags.Config, "outputs", "cnosdb", plugin); err != nil {
		log.Error(err)
		return 2
	}
	if err := plugin.Init(); err != nil {
		log.Errorf("configuration: %v", err)
		return 2
	}
	if w := pluginconf.ExposedSecretWarning(flags.Config, !plugin.Password.Empty()); w != "" {
		log.Warn(w)
	}
	cli.TuneGC(100, gcMemoryLimit)
	defer flags.StartProfiling("telegraf-cnosdb", log)()
	if err := plugin.Connect(); err != nil {
		log.Error(err)
		return 1
	}

	// A stop begins at the end of stdin (how Telegraf's execd output stops its child)
	// or at the first SIGTERM or SIGINT, which also stops reading. Either way what was
	// read is written for at most -shutdown-timeout: a stop must not wait without end
	// for an unreachable CnosDB, nor outlast Telegraf's window and end with a SIGKILL
	// that says nothing. A signal after that gives up at once. With a spool, what was
	// read is on disk already: a signal stops writing at once, and the rest is written
	// at the next start. One channel for all signals, so that a second one coming at
	// once is not missed.
	signals := make(chan os.Signal, 2)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(signals)
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	inputEnded := make(chan struct{})
	drained := make(chan struct{})
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
		plugin.Stopping(cause, *shutdownTimeout, again, drained)
	}()

	cfg := plugin.StdinConfig(log)
	cfg.InputEnded = func() { close(inputEnded) }
	// Reading after a signal must end before the stop gives up, so that the log of
	// what is given up counts every line read.
	cfg.ShutdownGrace = min(cfg.ShutdownGrace, *shutdownTimeout/2)
	err := execdout.Run(ctx, os.Stdin, plugin, cfg)
	if cerr := plugin.Close(); cerr != nil && err == nil {
		err = cerr
	}
	close(drained)
	<-stopped
	plugin.LogTotals()
	plugin.LogAbandoned()
	if err != nil {
		log.Errorf("reading stdin: %v", err)
		return 1
	}
	if lines, safe := plugin.Abandoned(); lines > 0 && !safe {
		return 1
	}
	return 0
}
