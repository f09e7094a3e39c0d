package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/internal/cnosdbdev"
	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/internal/cnosdbtest"
)

// binary is this command, built once for the tests that run it as Telegraf would.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "telegraf-cnosdb-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "telegraf-cnosdb")
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building telegraf-cnosdb:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "cnosdb.conf")
	require.NoError(t, os.WriteFile(path, []byte(body), 0o600))
	return path
}

func TestVersionAndSampleConfig(t *testing.T) {
	out, err := exec.Command(binary, "-version").Output()
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(string(out), "telegraf-cnosdb "), string(out))

	out, err = exec.Command(binary, "-sample-config").Output()
	require.NoError(t, err)
	require.Contains(t, string(out), "[[outputs.cnosdb]]")
}

func TestRefusesBadConfigurationNamingTheKey(t *testing.T) {
	tests := []struct{ config, want string }{
		{"[[outputs.cnosdb]]\n  urls = [\"http://127.0.0.1:8902\"]\n  databse = \"telegraf\"\n", "unknown option(s) databse"},
		{"[[outputs.cnosdb]]\n  urls = \"http://127.0.0.1:8902\"\n", "outputs.cnosdb.urls"},
		{"[[outputs.cnosdb]]\n  precision = \"s\"\n", `E! [outputs.cnosdb] configuration: precision: "s" is not one of`},
		{"[[outputs.cnosdb]]\n  metric_batch_size = \"abc\"\n",
			`"outputs.cnosdb.metric_batch_size"): incompatible types: TOML value has type string; destination has type integer`},
		{"[[outputs.cnosdb]]\n  max_request_size = \"lots\"\n", "max_request_size"},
		{"[[outputs.cnosdb]]\n  [outputs.cnosdb.database_options]\n    ttl = 30\n", "outputs.cnosdb.database_options.ttl"},
	}
	for _, tt := range tests {
		cmd := exec.Command(binary, "-config", writeConfig(t, tt.config))
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		var exit *exec.ExitError
		require.ErrorAs(t, err, &exit)
		require.Equal(t, 2, exit.ExitCode(), tt.config)
		require.Contains(t, stderr.String(), tt.want)
		require.True(t, strings.HasPrefix(stderr.String(), "E! "), stderr.String())
	}
}

func TestSIGTERMFlushesWhatWasRead(t *testing.T) {
	target := cnosdbtest.Start(t, cnosdbdev.Options{})
	db := target.NewDatabase(t, "")
	conf := writeConfig(t, fmt.Sprintf(`[[outputs.cnosdb]]
  urls = [%q]
  database = %q
  username = %q
  password = %q
  create_database = false
  metric_batch_size = 100000
  flush_interval = "1h"
`, target.URL, db, target.User, target.Password))

	cmd := exec.Command(binary, "-config", conf)
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())

	const n = 5000
	var in strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&in, "term,host=h x=%d %d\n", i, int64(i)+1)
	}
	_, err = stdin.Write([]byte(in.String()))
	require.NoError(t, err)
	// Wait until the process has read the pipe empty (TIOCINQ is FIONREAD on Linux):
	// what is read must be written.
	fd := int(stdin.(*os.File).Fd())
	deadline := time.Now().Add(time.Minute)
	for {
		unread, err := unix.IoctlGetInt(fd, unix.TIOCINQ)
		require.NoError(t, err)
		if unread == 0 {
			break
		}
		require.True(t, time.Now().Before(deadline), "the process does not read its stdin")
		time.Sleep(10 * time.Millisecond)
	}

	// A batch far from full and an hour-long interval: only the signal flushes it.
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, cmd.Wait(), stderr.String())
	require.Equal(t, n, target.Count(t, db, "term"))
	for _, line := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
		require.Regexp(t, `^[EWID]! `, line, "every stderr line carries a level for Telegraf's execd")
	}
	require.Contains(t, stderr.String(), fmt.Sprintf("I! [outputs.cnosdb] totals: %d lines written", n))
}

func TestEOFFlushesAndExitsZero(t *testing.T) {
	target := cnosdbtest.Start(t, cnosdbdev.Options{})
	db := target.NewDatabase(t, "")
	conf := writeConfig(t, fmt.Sprintf("[[outputs.cnosdb]]\n  urls = [%q]\n  database = %q\n  username = %q\n  password = %q\n  flush_interval = \"1h\"\n",
		target.URL, db, target.User, target.Password))
	cmd := exec.Command(binary, "-config", conf)
	cmd.Stdin = strings.NewReader("eof x=1 1\neof x=2 2\n")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, string(out))
	require.Equal(t, 2, target.Count(t, db, "eof"))
}

func TestWarnsAboutAReadablePasswordWithoutShowingIt(t *testing.T) {
	target := cnosdbtest.Start(t, cnosdbdev.Options{})
	db := target.NewDatabase(t, "")
	// Without authentication any password is taken; a real server that checks them
	// gets its own (CNOSDB_PASSWORD).
	password := "pw-that-must-not-leak"
	if target.Password != "" {
		password = target.Password
	}
	conf := writeConfig(t, fmt.Sprintf("[[outputs.cnosdb]]\n  urls = [%q]\n  database = %q\n  username = %q\n  password = %q\n",
		target.URL, db, target.User, password))
	require.NoError(t, os.Chmod(conf, 0o644))
	cmd := exec.Command(binary, "-config", conf, "-debug")
	cmd.Stdin = strings.NewReader("leak x=1 1\n")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, string(out))
	require.Equal(t, 1, target.Count(t, db, "leak"))
	require.Contains(t, string(out), "W! [outputs.cnosdb] "+conf+" holds a password and every user of this machine may read it")
	require.NotContains(t, string(out), password)
}
