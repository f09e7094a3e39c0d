package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/internal/ackproto"
	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/plugins/outputs/cnosdb"
	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/testutil/syncbuf"
)

// closedPort returns the address of a TCP port nothing listens on: connections are
// refused, as to a CnosDB that is down.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

// ackListener stands for the Kafka input's acknowledgement socket: it greets each
// connection as the input does and reads what the output says. It returns the input's
// first marker, for stdin.
func ackListener(t *testing.T) string {
	t.Helper()
	dir, path, err := ackproto.MakePrivateSocketDir()
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	l, err := net.Listen("unix", path)
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	instance, key := ackproto.NewInstance(), ackproto.NewKey()
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				_, _ = io.WriteString(conn, ackproto.FormatHello(instance, key))
				_, _ = io.Copy(io.Discard, bufio.NewReader(conn))
			}()
		}
	}()
	// The input's first marker, which counts no lines before it.
	m := ackproto.Marker{Socket: path, ID: ackproto.ID{Instance: instance, Seq: 1}}
	m.MAC = key.Sign(m)
	return string(ackproto.AppendMarker(nil, m, time.Now()))
}

type stopRun struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr *syncbuf.Buffer
	done   chan error
}

// startUnreachable runs the command against a CnosDB that refuses connections, feeds
// it lines (after ackMarker, a marker of the Kafka input, if set) and waits until it
// has read them.
func startUnreachable(t *testing.T, lines int, ackMarker string, args ...string) *stopRun {
	t.Helper()
	conf := writeConfig(t, fmt.Sprintf(`[[outputs.cnosdb]]
  urls = ["http://%s"]
  database = "stop"
  metric_batch_size = 100
  flush_interval = "100ms"
  retry_initial_interval = "50ms"
  retry_max_interval = "200ms"
`, closedPort(t)))
	cmd := exec.Command(binary, append([]string{"-config", conf}, args...)...)
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	r := &stopRun{cmd: cmd, stdin: stdin, stderr: &syncbuf.Buffer{}, done: make(chan error, 1)}
	cmd.Stderr = r.stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	go func() { r.done <- cmd.Wait() }()

	var in strings.Builder
	in.WriteString(ackMarker)
	for i := 0; i < lines; i++ {
		fmt.Fprintf(&in, "stop,host=h x=%d %d\n", i, int64(i)+1)
	}
	_, err = io.WriteString(stdin, in.String())
	require.NoError(t, err)
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
	// Let the writers take the first batches, so that some are being written.
	time.Sleep(300 * time.Millisecond)
	return r
}

var holdingLine = regexp.MustCompile(`(?P<level>[IW])! \[outputs\.cnosdb\] stopping \((?P<cause>[^)]+)\): (?:(?P<batches>\d+) batches \((?P<lines>\d+) lines\) not yet written \((?P<writing>\d+) being written, (?P<queued>\d+) queued\)|no batch waiting for CnosDB) and (?P<filling>\d+) lines being filled; they are written while CnosDB answers, for up to (?P<bound>\S+) \((?P<signals>a second signal|a signal) gives up at once\); lines not written by then (?P<fate>.*)`)

// holding is the line that says, when a stop begins, what the process holds.
type holding map[string]string

// findHolding returns the holding line in out, or nil.
func findHolding(out string) holding {
	m := holdingLine.FindStringSubmatch(out)
	if m == nil {
		return nil
	}
	h := holding{"line": m[0]}
	for i, name := range holdingLine.SubexpNames() {
		if name != "" {
			h[name] = m[i]
		}
	}
	return h
}

// signal sends SIGTERM and returns the holding line, which must come at once.
func (r *stopRun) signal(t *testing.T) holding {
	t.Helper()
	require.NoError(t, r.cmd.Process.Signal(syscall.SIGTERM))
	deadline := time.Now().Add(time.Second)
	for {
		if h := findHolding(r.stderr.String()); h != nil {
			return h
		}
		require.True(t, time.Now().Before(deadline), "no line saying what is held within 1s of SIGTERM:\n%s", r.stderr.String())
		time.Sleep(10 * time.Millisecond)
	}
}

// telegrafStop stops the process as Telegraf's execd output does (internal/process,
// Process.Stop and gracefulStop, in Telegraf 1.27.1 as in 1.37.2): it closes stdin,
// sends SIGTERM 5 s later and SIGKILL 5 s after that. It returns the process's exit
// status, how long after the close it exited, and whether it had to be killed.
func (r *stopRun) telegrafStop(t *testing.T) (exitCode int, took time.Duration, killed bool) {
	t.Helper()
	const step = 5 * time.Second
	began := time.Now()
	require.NoError(t, r.stdin.Close())
	var err error
	select {
	case err = <-r.done:
	case <-time.After(step):
		require.NoError(t, r.cmd.Process.Signal(syscall.SIGTERM))
		select {
		case err = <-r.done:
		case <-time.After(step):
			killed = true
			require.NoError(t, r.cmd.Process.Kill())
			err = <-r.done
		}
	}
	took = time.Since(began)
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode(), took, killed
	}
	require.NoError(t, err)
	return 0, took, killed
}

func (r *stopRun) wait(t *testing.T, within time.Duration) (exitCode int) {
	t.Helper()
	select {
	case err := <-r.done:
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return exit.ExitCode()
		}
		require.NoError(t, err)
		return 0
	case <-time.After(within):
		t.Fatalf("still running %s after SIGTERM:\n%s", within, r.stderr.String())
		return -1
	}
}

func heldLines(t *testing.T, h holding) int {
	t.Helper()
	n := 0
	for _, s := range []string{h["lines"], h["filling"]} {
		if s == "" {
			continue
		}
		v, err := strconv.Atoi(s)
		require.NoError(t, err)
		n += v
	}
	return n
}

func requireLevels(t *testing.T, stderr string) {
	t.Helper()
	for _, line := range strings.Split(strings.TrimSpace(stderr), "\n") {
		require.Regexp(t, `^[EWID]! `, line, "every stderr line carries a level for Telegraf's execd")
	}
}

// With CnosDB unreachable, SIGTERM says at once what is held and that it would be lost
// (no spool, no acknowledgement), and the process gives up and exits within the bound.
func TestSIGTERMWithCnosDBDownEndsWithinTheBound(t *testing.T) {
	const bound = 2 * time.Second
	r := startUnreachable(t, 500, "", "-shutdown-timeout", bound.String())
	began := time.Now()
	h := r.signal(t)
	require.Equal(t, "W", h["level"], "lines that would be lost are a warning")
	require.Equal(t, "SIGTERM", h["cause"])
	require.Equal(t, 500, heldLines(t, h), h["line"])
	require.Equal(t, bound.String(), h["bound"])
	require.Equal(t, "a second signal", h["signals"])
	require.Contains(t, h["fate"], "are lost")

	// The bound, the second of reading stdin Telegraf may still have written to, and
	// the acknowledgements' two seconds at Close at most.
	require.Equal(t, 1, r.wait(t, bound+10*time.Second), "lines were lost")
	elapsed := time.Since(began)
	t.Logf("exited %s after SIGTERM", elapsed.Round(time.Millisecond))
	require.GreaterOrEqual(t, elapsed, bound)
	out := r.stderr.String()
	require.Contains(t, out, "W! [outputs.cnosdb] stopping: CnosDB did not take what was read within 2s: giving up on ")
	require.Contains(t, out, "E! [outputs.cnosdb] stopped with 500 lines not written, which are lost")
	requireLevels(t, out)
}

// With the Kafka input's acknowledgement on, the lines not written are read again: the
// holding line says so, as information, and the exit status is 0.
func TestSIGTERMWithAcknowledgementSaysLinesAreReadAgain(t *testing.T) {
	const bound = 2 * time.Second
	r := startUnreachable(t, 300, ackListener(t), "-shutdown-timeout", bound.String())
	h := r.signal(t)
	require.Equal(t, "I", h["level"], h["line"])
	require.Equal(t, 300, heldLines(t, h), h["line"])
	require.Contains(t, h["fate"], "are read again from Kafka at the input's next start")
	require.Equal(t, 0, r.wait(t, bound+10*time.Second), r.stderr.String())
	out := r.stderr.String()
	require.Contains(t, out, "W! [outputs.cnosdb] stopped with 300 lines not written, which are read again from Kafka")
	requireLevels(t, out)
}

// A second signal gives up at once, well before the bound.
func TestSecondSignalGivesUpAtOnce(t *testing.T) {
	r := startUnreachable(t, 500, "", "-shutdown-timeout", "1m")
	h := r.signal(t)
	require.Equal(t, "1m0s", h["bound"])
	began := time.Now()
	require.NoError(t, r.cmd.Process.Signal(syscall.SIGTERM))
	require.Equal(t, 1, r.wait(t, 10*time.Second))
	t.Logf("exited %s after the second SIGTERM", time.Since(began).Round(time.Millisecond))
	out := r.stderr.String()
	require.Contains(t, out, "W! [outputs.cnosdb] a signal while stopping: giving up on ")
	require.Contains(t, out, "E! [outputs.cnosdb] stopped with 500 lines not written")
	requireLevels(t, out)
}

// Stopped as Telegraf's execd output stops it, with CnosDB unreachable and the default
// bound, the process gives up on its own 4 s after stdin closes, says what it did not
// write and where that goes, and exits before Telegraf's SIGKILL would come: at once
// after giving up without the acknowledgement, within its 2 s for the last words to
// the input with it.
func TestTelegrafStopWithCnosDBDownEndsBeforeSIGKILL(t *testing.T) {
	tests := []struct {
		name     string
		ack      bool
		exitCode int
		level    string
		fate     string
		last     string
	}{
		{"without acknowledgement", false, 1, "W", "are lost: no spool_dir keeps them",
			"E! [outputs.cnosdb] stopped with 500 lines not written, which are lost"},
		{"with acknowledgement", true, 0, "I", "are read again from Kafka at the input's next start",
			"W! [outputs.cnosdb] stopped with 500 lines not written, which are read again from Kafka"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			marker := ""
			if tt.ack {
				marker = ackListener(t)
			}
			r := startUnreachable(t, 500, marker)
			code, took, killed := r.telegrafStop(t)
			out := r.stderr.String()
			t.Logf("exited %s after stdin closed", took.Round(time.Millisecond))
			require.False(t, killed, "Telegraf had to kill it:\n%s", out)
			require.Less(t, took, 10*time.Second)
			require.GreaterOrEqual(t, took, cnosdb.DefaultShutdownTimeout, "it tried for the whole bound")
			require.Equal(t, tt.exitCode, code, out)

			h := findHolding(out)
			require.NotNil(t, h, "no line saying what is held:\n%s", out)
			require.Equal(t, tt.level, h["level"], h["line"])
			require.Equal(t, "stdin closed", h["cause"])
			require.Equal(t, 500, heldLines(t, h), h["line"])
			require.Equal(t, "3s", h["bound"], "what is left of the bound after a second of quiet")
			require.Equal(t, "a signal", h["signals"])
			require.Contains(t, h["fate"], tt.fate)
			require.Regexp(t, `W! \[outputs\.cnosdb\] stopping: CnosDB did not take what was read within 4s: giving up on `+
				`\d+ batches \(500 lines\) not yet written`, out)
			require.Contains(t, out, tt.last)
			requireLevels(t, out)
		})
	}
}
