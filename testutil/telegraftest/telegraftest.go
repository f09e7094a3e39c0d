// Package telegraftest builds stock Telegraf at pinned versions and runs it in tests,
// so that the plugins are tested the way users run them: as children of Telegraf's
// execd input and output.
//
// Telegraf is built from the Go module proxy with its "custom" build tag and only the
// plugins the tests use, then cached outside the repository, so a rebuild happens only
// for a new version or plugin set.
package telegraftest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The Telegraf versions the project is tested with: the one it builds against, and
// the one CnosDB's Kafka article used.
const (
	Latest  = "v1.37.2"
	Article = "v1.27.1"
)

// Versions lists every tested version, newest first.
var Versions = []string{Latest, Article}

// plugins are the Telegraf plugins compiled in: what the tests and the benchmarks run.
var plugins = []string{
	"inputs.execd", "outputs.execd",
	"inputs.kafka_consumer", "outputs.http",
	"processors.rename", "processors.dedup", "outputs.file", "outputs.discard",
	"parsers.json", "parsers.influx", "serializers.influx",
}

var buildMu sync.Mutex

// Binary returns the path of stock Telegraf at version, building it on first use.
// It fails the test, naming the missing piece, when Telegraf cannot be built.
func Binary(t testing.TB, version string) string {
	t.Helper()
	path, err := Build(version)
	if err != nil {
		t.Fatalf("telegraftest: %v", err)
	}
	return path
}

func cacheDir() (string, error) {
	if dir := os.Getenv("TELEGRAF_CACHE_DIR"); dir != "" {
		return dir, nil
	}
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("finding a cache directory (set TELEGRAF_CACHE_DIR): %w", err)
	}
	return filepath.Join(base, "telegraf-kafka-cnosdb", "telegraf"), nil
}

// Build returns the path of stock Telegraf at version, building it on first use.
func Build(version string) (string, error) {
	buildMu.Lock()
	defer buildMu.Unlock()

	tags := "custom," + strings.Join(plugins, ",")
	sum := sha256.Sum256([]byte(tags))
	root, err := cacheDir()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(root, version+"-"+hex.EncodeToString(sum[:4]))
	binary := filepath.Join(dir, "telegraf")
	if _, err := os.Stat(binary); err == nil {
		return binary, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	// Several test binaries may build at once; the lock makes the others wait.
	lock, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", fmt.Errorf("locking %s: %w", dir, err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) //nolint:errcheck // released on close anyway
	if _, err := os.Stat(binary); err == nil {
		return binary, nil
	}

	goTool, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("building Telegraf %s needs the go command on PATH: %w", version, err)
	}
	tmp := filepath.Join(dir, "tmp")
	if err := os.RemoveAll(tmp); err != nil {
		return "", err
	}
	// go install pkg@version builds with Telegraf's own go.mod, so the dependencies are
	// exactly those of the release.
	cmd := exec.Command(goTool, "install", "-trimpath", "github.com/influxdata/telegraf/cmd/telegraf@"+version)
	cmd.Env = append(os.Environ(), "GOBIN="+tmp, "GOFLAGS=-tags="+tags, "CGO_ENABLED=0")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("building Telegraf %s (go install github.com/influxdata/telegraf/cmd/telegraf@%s, tags %s): %w\n%s",
			version, version, tags, err, out.String())
	}
	if err := os.Rename(filepath.Join(tmp, "telegraf"), binary); err != nil {
		return "", err
	}
	fmt.Fprintf(os.Stderr, "telegraftest: built Telegraf %s in %s\n", version, time.Since(start).Round(time.Second))
	return binary, os.RemoveAll(tmp)
}
