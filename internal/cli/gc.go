package cli

import (
	"os"
	"runtime/debug"
)

// TuneGC lets the heap grow to percent more than the live data before the garbage
// collector runs again (Go's default is 100), but never past limit bytes, where it
// collects as often as it must to stay below. Where the GOGC or GOMEMLIMIT
// environment variables are set, they decide instead.
//
// A command that allocates for every message it passes on, in code it does not
// control (sarama decodes each Kafka record into new structures), spends much of its
// CPU collecting; fewer collections trade memory it is allowed for CPU.
func TuneGC(percent int, limit int64) {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(percent)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(limit)
	}
}
