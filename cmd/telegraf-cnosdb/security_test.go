package main

import (
	"fmt"
	"io"
	"net/url"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/dev/cnosdbdev"
	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/testutil/cnosdbtest"
	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/testutil/syncbuf"
)

// waitTimeout bounds every wait for the process; no test asserts on timing.
const waitTimeout = time.Minute

// process is the command running as Telegraf's execd output runs it.
type process struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr *syncbuf.Buffer
	done   chan error
}

func startProcess(t *testing.T, conf string, args ...string) *process {
	t.Helper()
	p := &process{cmd: exec.Command(binary, append([]string{"-config", conf}, args...)...), stderr: &syncbuf.Buffer{}, done: make(chan error, 1)}
	p.cmd.Stderr = p.stderr
	var err error
	p.stdin, err = p.cmd.StdinPipe()
	require.NoError(t, err)
	require.NoError(t, p.cmd.Start())
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		if t.Failed() {
			t.Logf("telegraf-cnosdb stderr:\n%s", p.stderr.String())
		}
	})
	return p
}

// waitLog waits until stderr holds want.
func (p *process) waitLog(t *testing.T, want string) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !strings.Contains(p.stderr.String(), want) {
		require.True(t, time.Now().Before(deadline), "stderr never showed %q:\n%s", want, p.stderr.String())
		time.Sleep(20 * time.Millisecond)
	}
}

// finish closes stdin and waits for the exit, as at the end of Telegraf's run.
func (p *process) finish(t *testing.T) string {
	t.Helper()
	require.NoError(t, p.stdin.Close())
	select {
	case err := <-p.done:
		require.NoError(t, err, p.stderr.String())
	case <-time.After(waitTimeout):
		t.Fatalf("the process did not exit after stdin closed:\n%s", p.stderr.String())
	}
	return p.stderr.String()
}

// stop sends SIGTERM twice and waits for the exit.
func (p *process) stop(t *testing.T) string {
	t.Helper()
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	deadline := time.Now().Add(waitTimeout)
	for {
		select {
		case err := <-p.done:
			t.Logf("telegraf-cnosdb exited after the signals: %v", err)
			return p.stderr.String()
		case <-time.After(200 * time.Millisecond):
			require.True(t, time.Now().Before(deadline), "the process did not exit:\n%s", p.stderr.String())
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
		}
	}
}

func tlsConfig(target *cnosdbtest.Target, db, url, password, extra string) string {
	return fmt.Sprintf(`[[outputs.cnosdb]]
  urls = [%q]
  database = %q
  username = %q
  password = %q
  flush_interval = "100ms"
  create_database = false
%s
`, url, db, target.User, password, extra)
}

// TestHTTPSWithACustomCA: the output writes over HTTPS trusting the CA in tls_ca;
// without it, it says which URL failed and why and keeps the lines;
// insecure_skip_verify writes without checking the certificate.
func TestHTTPSWithACustomCA(t *testing.T) {
	target := cnosdbtest.StartTLS(t, cnosdbdev.Options{AuthEnabled: true, Users: map[string]string{"writer": "tls-secret"}})
	require.True(t, strings.HasPrefix(target.URL, "https://"))
	db := target.NewDatabase(t, "")

	t.Run("tls_ca", func(t *testing.T) {
		p := startProcess(t, writeConfig(t, tlsConfig(target, db, target.URL, target.Password, fmt.Sprintf("  tls_ca = %q", target.CAFile))))
		_, err := io.WriteString(p.stdin, "https_ca x=1 1\nhttps_ca x=2 2\n")
		require.NoError(t, err)
		out := p.finish(t)
		require.Equal(t, 2, target.Count(t, db, "https_ca"))
		require.Contains(t, out, "I! [outputs.cnosdb] CnosDB at "+target.URL+" is up")
	})

	t.Run("no CA", func(t *testing.T) {
		p := startProcess(t, writeConfig(t, tlsConfig(target, db, target.URL, target.Password, "")))
		_, err := io.WriteString(p.stdin, "https_noca x=1 1\nhttps_noca x=2 2\nhttps_noca x=3 3\n")
		require.NoError(t, err)
		p.waitLog(t, "W! [outputs.cnosdb] writing 3 lines to "+target.URL+" failed (attempt 1): ")
		out := p.stderr.String()
		require.Contains(t, out, "x509: certificate signed by unknown authority")
		require.Contains(t, out, "set tls_ca to the CA that signed it")
		require.Contains(t, out, "retrying, nothing is dropped")
		out = p.stop(t)
		require.Contains(t, out, "stopped before writing 3 lines of batch 1 (3 lines); they were not written")
		require.Equal(t, 0, target.Count(t, db, "https_noca"))
	})

	t.Run("insecure_skip_verify", func(t *testing.T) {
		p := startProcess(t, writeConfig(t, tlsConfig(target, db, target.URL, target.Password, "  insecure_skip_verify = true")))
		_, err := io.WriteString(p.stdin, "https_skip x=1 1\n")
		require.NoError(t, err)
		p.finish(t)
		require.Equal(t, 1, target.Count(t, db, "https_skip"))
	})
}

// TestPasswordsNeverReachTheLog runs the output at -debug with a password in the
// configuration, in the URL, and with credentials CnosDB refuses: no line of its
// stderr holds a password.
func TestPasswordsNeverReachTheLog(t *testing.T) {
	target := cnosdbtest.StartTLS(t, cnosdbdev.Options{AuthEnabled: true, Users: map[string]string{"writer": "pw-in-config-3141"}})
	db := target.NewDatabase(t, "")
	password := target.Password
	if password == "" {
		// A real CnosDB without authentication takes any password.
		password = "pw-in-config-3141"
	}
	ca := fmt.Sprintf("  tls_ca = %q", target.CAFile)
	withUser := func(user, password string) string {
		u, err := url.Parse(target.URL)
		require.NoError(t, err)
		u.User = url.UserPassword(user, password)
		return u.String()
	}

	t.Run("in the configuration", func(t *testing.T) {
		p := startProcess(t, writeConfig(t, tlsConfig(target, db, target.URL, password, ca)), "-debug")
		_, err := io.WriteString(p.stdin, "secret_cfg x=1 1\n")
		require.NoError(t, err)
		out := p.finish(t)
		require.Equal(t, 1, target.Count(t, db, "secret_cfg"))
		require.NotContains(t, out, password)
	})

	t.Run("in the URL", func(t *testing.T) {
		// The URL's credentials are the ones sent: the configured password is wrong.
		p := startProcess(t, writeConfig(t, tlsConfig(target, db, withUser(target.User, password), "not-this-one", ca)), "-debug")
		_, err := io.WriteString(p.stdin, "secret_url x=1 1\n")
		require.NoError(t, err)
		out := p.finish(t)
		require.Equal(t, 1, target.Count(t, db, "secret_url"))
		require.Contains(t, out, "CnosDB at "+target.URL+" is up", "the node is named without its credentials")
		require.NotContains(t, out, password)
		require.NotContains(t, out, "not-this-one")
	})

	t.Run("refused", func(t *testing.T) {
		// An unknown user is refused whether or not CnosDB checks passwords.
		const refused = "pw-refused-2718"
		p := startProcess(t, writeConfig(t, tlsConfig(target, db, withUser("nosuchuser", refused), refused, ca)), "-debug")
		_, err := io.WriteString(p.stdin, "secret_refused x=1 1\n")
		require.NoError(t, err)
		p.waitLog(t, "check username, password and tenant")
		out := p.stop(t)
		require.Contains(t, out, "E! [outputs.cnosdb] "+target.URL+": HTTP ")
		require.NotContains(t, out, refused)
		require.Equal(t, 0, target.Count(t, db, "secret_refused"))
	})

	t.Run("a URL that does not parse", func(t *testing.T) {
		u := strings.Replace(withUser(target.User, password), "127.0.0.1:", "127.0.0.1:x", 1)
		cmd := exec.Command(binary, "-config", writeConfig(t, tlsConfig(target, db, u, password, ca)), "-debug")
		out, err := cmd.CombinedOutput()
		require.Error(t, err)
		require.Contains(t, string(out), "E! [outputs.cnosdb] configuration: urls: an entry is not a URL: invalid port")
		require.NotContains(t, string(out), password)
	})
}
