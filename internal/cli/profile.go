package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"

	"github.com/influxdata/telegraf"
)

// ProfileEnv names the environment variable that gives -pprof-dir its default, so
// that profiling can be turned on for a plugin Telegraf starts without editing the
// execd command: Telegraf's children inherit its environment.
const ProfileEnv = "TELEGRAF_KAFKA_CNOSDB_PPROF"

// StartProfiling starts a CPU profile when -pprof-dir (or ProfileEnv) names a
// directory. The returned function, to be called at exit, stops it and writes the
// allocation profile beside it:
//
//	DIR/COMMAND-PID.cpu.pprof     CPU from start to exit
//	DIR/COMMAND-PID.allocs.pprof  allocations since start, and the heap in use at exit
//
// Profiling is for finding where time goes, not for production: a failure to write
// the files is logged and the command goes on.
func (f *Flags) StartProfiling(command string, log telegraf.Logger) (stop func()) {
	if f.ProfileDir == "" {
		return func() {}
	}
	base := filepath.Join(f.ProfileDir, fmt.Sprintf("%s-%d", command, os.Getpid()))
	if err := os.MkdirAll(f.ProfileDir, 0o755); err != nil {
		log.Errorf("profiling: %v", err)
		return func() {}
	}
	cpu, err := os.Create(base + ".cpu.pprof")
	if err != nil {
		log.Errorf("profiling: %v", err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(cpu); err != nil {
		log.Errorf("profiling: %v", errors.Join(err, cpu.Close()))
		return func() {}
	}
	log.Infof("profiling: writing %s.{cpu,allocs}.pprof at exit", base)
	return func() {
		pprof.StopCPUProfile()
		if err := cpu.Close(); err != nil {
			log.Errorf("profiling: %v", err)
		}
		if err := writeProfile("allocs", base+".allocs.pprof"); err != nil {
			log.Errorf("profiling: %v", err)
		}
	}
}

func writeProfile(name, path string) error {
	out, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.Lookup(name).WriteTo(out, 0); err != nil {
		return errors.Join(fmt.Errorf("writing %s: %w", path, err), out.Close())
	}
	return out.Close()
}
