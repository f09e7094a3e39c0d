// Package cli holds what the plugins' commands share: the flags every one takes
// (-config, -version, -sample-config, -debug, -pprof-dir) and the logger they start with.
package cli

import (
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/influxdata/telegraf"

	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/internal/stderrlog"
	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/internal/version"
)

// Flags are the common options of a plugin command.
type Flags struct {
	Config  string
	Version bool
	Sample  bool
	Debug   bool
	// ProfileDir, if set, is where StartProfiling writes CPU and allocation profiles.
	ProfileDir string
}

// Register adds the common flags to fs; table names the configuration's plugin table,
// e.g. "[[outputs.cnosdb]]".
func (f *Flags) Register(fs *flag.FlagSet, table string) {
	fs.StringVar(&f.Config, "config", "", "configuration file with one "+table+" table")
	fs.BoolVar(&f.Version, "version", false, "print the version and exit")
	fs.BoolVar(&f.Sample, "sample-config", false, "print a sample configuration and exit")
	fs.BoolVar(&f.Debug, "debug", false, "log debug messages")
	fs.StringVar(&f.ProfileDir, "pprof-dir", os.Getenv(ProfileEnv),
		"write CPU and allocation profiles into this directory at exit (default $"+ProfileEnv+")")
}

// PrintInfo answers -version and -sample-config on out and reports whether it did,
// in which case the command is done.
func (f *Flags) PrintInfo(out io.Writer, command string, plugin telegraf.PluginDescriber) bool {
	switch {
	case f.Version:
		fmt.Fprintln(out, command, version.Version)
		return true
	case f.Sample:
		fmt.Fprint(out, plugin.SampleConfig())
		return true
	}
	return false
}

// Logger returns the plugin's stderr logger at the level -debug asks for.
func (f *Flags) Logger(source string) *stderrlog.Logger {
	level := telegraf.Info
	if f.Debug {
		level = telegraf.Debug
	}
	return stderrlog.New(source, level)
}

// RequireConfig logs, and reports false, when no configuration file was given.
func (f *Flags) RequireConfig(log telegraf.Logger) bool {
	if f.Config == "" {
		log.Error("no configuration file: use -config FILE (see -sample-config)")
		return false
	}
	return true
}
