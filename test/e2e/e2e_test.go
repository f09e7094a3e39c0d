// Package e2e runs the plugins the way users do: stock Telegraf, built at pinned
// versions, with a real Kafka broker and CnosDB (the dev server, or CNOSDB_URL).
package e2e

import (
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/testutil/kafkatest"
)

// binDir holds the project's binaries, built once for the whole package.
var binDir string

func TestMain(m *testing.M) {
	// A fixed place per checkout, rebuilt each run: kafkatest.Main exits without
	// returning, so a temporary directory could not be removed, and two checkouts
	// tested at once must not overwrite each other's binaries.
	cache, err := os.UserCacheDir()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	checkout, err := filepath.Abs("../..")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	dir := filepath.Join(cache, "telegraf-kafka-cnosdb", "e2e-bin",
		fmt.Sprintf("%x", sha256.Sum256([]byte(checkout)))[:16])
	binDir = dir
	for _, name := range []string{"telegraf-cnosdb", "telegraf-kafka-consumer"} {
		build := exec.Command("go", "build", "-o", filepath.Join(dir, name), "../../cmd/"+name)
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "building %s: %v\n", name, err)
			os.Exit(1)
		}
	}
	kafkatest.Main(m)
}

func binary(name string) string { return filepath.Join(binDir, name) }
