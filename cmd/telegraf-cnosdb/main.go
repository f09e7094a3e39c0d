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

func main() {
	os.Exit(run())
}

func run() int {
	var flags cli.Flags
	fs := flag.NewFlagSet("telegraf-cnosdb", flag.ContinueOnError)
	flags.Register(fs, "[[outputs.cnosdb]]")
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
	defer flags.StartProfiling("telegraf-cnosdb", log)()
	if err := plugin.Connect(); err != nil {
		log.Error(err)
		return 1
	}

	// The first SIGTERM or SIGINT stops reading and writes what was read; a second one
	// stops retrying too. With a spool, what was read is on disk already: the first one
	// stops writing, and the rest is written at the next start.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	go func() {
		<-ctx.Done()
		if plugin.Spooling() {
			log.Info("stopping: lines read so far go to the spool and are written at the next start")
			plugin.Abort()
			return
		}
		again := make(chan os.Signal, 1)
		signal.Notify(again, syscall.SIGTERM, syscall.SIGINT)
		<-again
		log.Warn("second signal: giving up on lines not yet written")
		plugin.Abort()
	}()

	err := execdout.Run(ctx, os.Stdin, plugin, plugin.StdinConfig(log))
	if cerr := plugin.Close(); cerr != nil && err == nil {
		err = cerr
	}
	plugin.LogTotals()
	if err != nil {
		log.Errorf("reading stdin: %v", err)
		return 1
	}
	return 0
}
