package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/dev/cnosdbdev"
	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/testutil/cmdtest"
	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/testutil/cnosdbtest"
	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/testutil/syncbuf"
)

// binary is this command, built once for the tests that run it as Telegraf would.
var binary string

func TestMain(m *testing.M) { cmdtest.Main(m, "telegraf-cnosdb", &binary) }

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
	// A batch far from full and an hour-long interval: only the signal flushes it.
	target := cnosdbtest.Start(t, cnosdbdev.Options{})
	sigtermAfterReading(t, target, 100000)
}

// With batches of 500 and slow answers, SIGTERM comes while several requests are in
// flight and more batches wait: every one is written before the exit.
func TestSIGTERMFlushesEveryRequestInFlight(t *testing.T) {
	target := cnosdbtest.Start(t, cnosdbdev.Options{})
	target.Faults().SetLatency(300 * time.Millisecond)
	sigtermAfterReading(t, target, 500)
	require.GreaterOrEqual(t, target.Faults().Stats().MostAtOnce, int64(2), "requests overlapped")
}

// sigtermAfterReading writes 5,000 lines to the command's stdin, sends SIGTERM once it
// has read them all, and checks that it wrote them all and exited 0.
func sigtermAfterReading(t *testing.T, target *cnosdbtest.Target, batchSize int) {
	t.Helper()
	db := target.NewDatabase(t, "")
	conf := writeConfig(t, fmt.Sprintf(`[[outputs.cnosdb]]
  urls = [%q]
  database = %q
  username = %q
  password = %q
  create_database = false
  metric_batch_size = %d
  flush_interval = "1h"
`, target.URL, db, target.User, target.Password, batchSize))

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

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, cmd.Wait(), stderr.String())
	target.Faults().SetLatency(0)
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

// acceptedWrites is a proxy in front of CnosDB that keeps, in order, the body of every
// write CnosDB answered with success: what the server stored, duplicates included.
type acceptedWrites struct {
	mu     sync.Mutex
	bodies []string
}

func (a *acceptedWrites) start(t *testing.T, upstream string) string {
	t.Helper()
	u, err := url.Parse(upstream)
	require.NoError(t, err)
	proxy := cnosdbdev.NewProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/write" {
			proxy.ServeHTTP(w, r)
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		rec := &statusRecorder{ResponseWriter: w}
		proxy.ServeHTTP(rec, r)
		if rec.status/100 == 2 {
			a.mu.Lock()
			a.bodies = append(a.bodies, string(body))
			a.mu.Unlock()
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// values returns the x field of every accepted line, in the order CnosDB took them.
func (a *acceptedWrites) values(t *testing.T) []int {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	var xs []int
	for _, body := range a.bodies {
		for _, line := range strings.Split(strings.TrimSpace(body), "\n") {
			var x int
			var ts int64
			_, err := fmt.Sscanf(line, "kill9,host=h x=%di %d", &x, &ts)
			require.NoError(t, err, line)
			xs = append(xs, x)
		}
	}
	return xs
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(p)
}

func kill9Lines(from, to int) string {
	var sb strings.Builder
	for i := from; i < to; i++ {
		fmt.Fprintf(&sb, "kill9,host=h x=%di %d\n", i, int64(i)+1)
	}
	return sb.String()
}

// waitFor waits until the buffer shows a match of re, bounded so that a broken binary
// fails instead of hanging.
func waitFor(t *testing.T, out *syncbuf.Buffer, re string) {
	t.Helper()
	pattern := regexp.MustCompile(re)
	deadline := time.Now().Add(2 * time.Minute)
	for !pattern.MatchString(out.String()) {
		require.True(t, time.Now().Before(deadline), "no %q in:\n%s", re, out.String())
		time.Sleep(20 * time.Millisecond)
	}
}

// CnosDB goes away, lines keep arriving, and the process is killed with SIGKILL: started
// again after the outage with the same spool, it writes every line, in order.
func TestSpoolSurvivesSIGKILLDuringAnOutage(t *testing.T) {
	target := cnosdbtest.Start(t, cnosdbdev.Options{})
	db := target.NewDatabase(t, "")
	var accepted acceptedWrites
	proxy := accepted.start(t, target.URL)
	conf := writeConfig(t, fmt.Sprintf(`[[outputs.cnosdb]]
  urls = [%q]
  database = %q
  username = %q
  password = %q
  create_database = false
  metric_batch_size = 100
  flush_interval = "100ms"
  retry_initial_interval = "50ms"
  retry_max_interval = "200ms"
  stats_interval = "50ms"
  spool_dir = %q
`, proxy, db, target.User, target.Password, filepath.Join(t.TempDir(), "spool")))

	first := exec.Command(binary, "-config", conf)
	stdin, err := first.StdinPipe()
	require.NoError(t, err)
	var stderr syncbuf.Buffer
	first.Stderr = &stderr
	require.NoError(t, first.Start())
	t.Cleanup(func() { _ = first.Process.Kill() })

	// 1000 lines while CnosDB is up, then 2000 while it refuses connections.
	_, err = io.WriteString(stdin, kill9Lines(0, 1000))
	require.NoError(t, err)
	deadline := time.Now().Add(2 * time.Minute)
	for target.Count(t, db, "kill9") < 1000 {
		require.True(t, time.Now().Before(deadline), "the first 1000 lines are not written:\n%s", stderr.String())
		time.Sleep(20 * time.Millisecond)
	}
	target.Faults().Refuse(true)
	_, err = io.WriteString(stdin, kill9Lines(1000, 3000))
	require.NoError(t, err)
	waitFor(t, &stderr, `spool: \d+ batches \((2000|2100) lines`)
	require.NoError(t, first.Process.Signal(syscall.SIGKILL))
	require.Error(t, first.Wait())
	require.Contains(t, stderr.String(), "connection refused")

	// Back up; the new process reads nothing new and exits once the spool is written.
	target.Faults().Refuse(false)
	second := exec.Command(binary, "-config", conf)
	second.Stdin = strings.NewReader("")
	out, err := second.CombinedOutput()
	require.NoError(t, err, string(out))
	require.Regexp(t, `I! \[outputs.cnosdb\] spool \S+: replaying \d+ batches \((2000|2100) lines, [\d.]+ KiB\) left from an earlier run`, string(out))
	require.Equal(t, 3000, target.Count(t, db, "kill9"), "every line is stored")

	xs := accepted.values(t)
	seen := map[int]bool{}
	next := 0
	for _, x := range xs {
		if seen[x] {
			continue
		}
		require.Equal(t, next, x, "lines reach CnosDB in the order they were read")
		seen[x] = true
		next++
	}
	require.Equal(t, 3000, next)
	duplicates := len(xs) - 3000
	t.Logf("CnosDB took %d lines for 3000 read: %d written twice", len(xs), duplicates)
	require.LessOrEqual(t, duplicates, 100, "at most the batch unconfirmed at the kill is written twice")
}
