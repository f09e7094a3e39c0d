package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"math/big"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode"

	"github.com/stretchr/testify/require"

	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/testutil/kafkatest"
	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/testutil/syncbuf"
)

// waitTimeout bounds every wait for the process; no test asserts on timing.
const waitTimeout = 2 * time.Minute

// passwordAlphabet is what the broker's SCRAM set-up can carry (no spaces, commas,
// quotes, '=', brackets or backslashes), without '$', which the configuration
// loader expands, and with characters that URL-escaping changes, so that the escaped
// form differs from the plain one.
const passwordAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/%:@?&#!~*;"

// randomPassword returns 24 random characters of passwordAlphabet, at least one of
// which URL-escaping changes.
func randomPassword(t *testing.T) string {
	t.Helper()
	for {
		var b strings.Builder
		for range 24 {
			i, err := rand.Int(rand.Reader, big.NewInt(int64(len(passwordAlphabet))))
			require.NoError(t, err)
			b.WriteByte(passwordAlphabet[i.Int64()])
		}
		if p := b.String(); url.QueryEscape(p) != p {
			return p
		}
	}
}

// leakScanner finds a password, whole or in part, plain or encoded, in a text.
type leakScanner struct {
	forms map[string]string // form -> its name
}

// leakWindow is the length of the pieces of the password looked for: a truncated or
// partly masked password still counts, and 12 of 24 random characters do not occur
// in a log by chance.
const leakWindow = 12

func newLeakScanner(password string) *leakScanner {
	s := &leakScanner{forms: map[string]string{
		url.QueryEscape(password): "query-escaped",
		url.PathEscape(password):  "path-escaped",
		// A URL's userinfo escapes the password its own way: "u:<escaped>".
		strings.TrimPrefix(url.UserPassword("u", password).String(), "u:"): "URL userinfo",
		base64.StdEncoding.EncodeToString([]byte(password)):                "base64",
		base64.URLEncoding.EncodeToString([]byte(password)):                "URL base64",
		hex.EncodeToString([]byte(password)):                               "hex",
		fmt.Sprintf("%q", password):                                        "quoted",
	}}
	for i := 0; i+leakWindow <= len(password); i++ {
		s.forms[password[i:i+leakWindow]] = fmt.Sprintf("characters %d-%d", i+1, i+leakWindow)
	}
	return s
}

// find returns the name of the first form of the password in text, or "".
func (s *leakScanner) find(text string) string {
	for form, name := range s.forms {
		if strings.Contains(text, form) {
			return name
		}
	}
	return ""
}

// requireNoLeak fails the test, naming the form found, when text holds the password.
func (s *leakScanner) requireNoLeak(t *testing.T, what, text string) {
	t.Helper()
	if name := s.find(text); name != "" {
		t.Fatalf("%s holds the password (%s):\n%s", what, name, text)
	}
}

// TestTheLeakScannerFindsThePassword keeps TestPasswordsNeverReachTheLog honest: the
// scanner it trusts finds the password in every form it claims to look for.
func TestTheLeakScannerFindsThePassword(t *testing.T) {
	password := randomPassword(t)
	s := newLeakScanner(password)
	require.Empty(t, s.find("E! [inputs.kafka_consumer] nothing secret here"))
	for _, text := range []string{
		"sasl_password = " + password,
		"D! [sarama] password " + password[:leakWindow] + "***",
		"D! [sarama] ***" + password[len(password)-leakWindow:],
		"dsn=kafka://alice:" + url.QueryEscape(password) + "@127.0.0.1:9093",
		"dsn=" + (&url.URL{Scheme: "kafka", User: url.UserPassword("alice", password), Host: "h"}).String(),
		"path=/" + url.PathEscape(password),
		"auth=" + base64.StdEncoding.EncodeToString([]byte(password)),
		"auth=" + base64.URLEncoding.EncodeToString([]byte(password)),
		"bytes=" + hex.EncodeToString([]byte(password)),
		fmt.Sprintf("config: %q", password),
	} {
		require.NotEmpty(t, s.find(text), "the scanner misses the password in %q", text)
	}
}

// TestPasswordsNeverReachTheLog runs the command against a broker that takes
// SASL/SCRAM-SHA-512 over TLS, with a random password: in -test mode, consuming, with
// a wrong password, and with a configuration it refuses, at -debug and at trace level
// (where the Kafka client logs too). No output holds the password, plain or encoded;
// a wrong password is named as such with the broker, mechanism and user; a
// world-readable configuration holding the password gets a W! line.
func TestPasswordsNeverReachTheLog(t *testing.T) {
	const user = "metrics-reader"
	password := randomPassword(t)
	leaks := newLeakScanner(password)
	b := kafkatest.Start(t, kafkatest.Options{SASLSCRAM: true, Users: map[string]string{user: password}})
	topic := kafkatest.UniqueName(t, "secret")
	b.CreateTopic(t, topic, 2)
	const messages = 6
	var values [][]byte
	for i := range messages {
		values = append(values, fmt.Appendf(nil, "secret_probe,n=%d value=%di %d", i, i, i+1))
	}
	b.Produce(t, topic, values...)

	config := func(group, password, extra string) string {
		return fmt.Sprintf(`[[inputs.kafka_consumer]]
  brokers = [%q]
  topics = [%q]
  consumer_group = %q
  kafka_version = "4.1.0"
  enable_tls = true
  tls_ca = %q
  sasl_mechanism = "SCRAM-SHA-512"
  sasl_username = %q
  sasl_password = %q
  data_format = "influx"
  stats_interval = "0s"
%s`, b.SASLAddr(), topic, group, b.CAFile(), user, password, extra)
	}

	t.Run("test mode", func(t *testing.T) {
		group := kafkatest.UniqueName(t, "g")
		out, code := runToEnd(t, writeConfig(t, config(group, password, "")), "-test", "-debug")
		require.Equal(t, 0, code, out)
		require.Equal(t, messages, strings.Count(out, "secret_probe,"), out)
		require.Contains(t, out, fmt.Sprintf("D! [inputs.kafka_consumer] read %d messages", messages))
		leaks.requireNoLeak(t, "-test -debug output", out)
	})

	t.Run("consuming", func(t *testing.T) {
		for _, level := range []struct{ name, flag, extra string }{
			{"debug", "-debug", ""},
			{"trace", "", `  log_level = "trace"` + "\n"},
		} {
			t.Run(level.name, func(t *testing.T) {
				group := kafkatest.UniqueName(t, "g")
				var args []string
				if level.flag != "" {
					args = append(args, level.flag)
				}
				p := startConsumer(t, writeConfig(t, config(group, password, level.extra)), args...)
				p.waitStdout(t, "secret_probe,", messages)
				stdout, stderr := p.stop(t)
				require.Contains(t, stderr, "D! [inputs.kafka_consumer]", "the run logged at debug level")
				if level.name == "trace" {
					require.Contains(t, stderr, "[sarama]", "the Kafka client logged")
				}
				leaks.requireNoLeak(t, "stderr", stderr)
				leaks.requireNoLeak(t, "stdout", stdout)
			})
		}
	})

	t.Run("wrong password", func(t *testing.T) {
		wrong := randomPassword(t)
		wrongLeaks := newLeakScanner(wrong)
		for _, mode := range []struct {
			name  string
			args  []string
			extra string
		}{
			{"consuming", []string{"-debug"}, ""},
			{"test mode", []string{"-test", "-debug"}, ""},
			{"trace", nil, `  log_level = "trace"` + "\n"},
		} {
			t.Run(mode.name, func(t *testing.T) {
				conf := writeConfig(t, config(kafkatest.UniqueName(t, "g"), wrong, mode.extra))
				out, code := runToEnd(t, conf, mode.args...)
				require.Equal(t, 1, code, out)
				require.Contains(t, out, "E! [inputs.kafka_consumer] ")
				require.Contains(t, out, fmt.Sprintf("SASL SCRAM-SHA-512 authentication as user %q refused by %s (check sasl_username and sasl_password): ", user, b.SASLAddr()),
					"the broker, the mechanism and the user are named")
				require.Contains(t, out, "invalid credentials", "the broker's reason is kept")
				require.NotContains(t, out, "secret_probe")
				wrongLeaks.requireNoLeak(t, "output with a wrong password", out)
				leaks.requireNoLeak(t, "output with a wrong password", out)
			})
		}
	})

	t.Run("refused configuration", func(t *testing.T) {
		group := kafkatest.UniqueName(t, "g")
		for _, bad := range []struct{ name, extra, want string }{
			{"number given as a string", `  max_message_len = "big"` + "\n", `"inputs.kafka_consumer.max_message_len"): incompatible types`},
			{"unknown key", "  sasl_pasword = \"x\"\n", "unknown option(s) sasl_pasword"},
			{"bad value", `  offset = "latest"` + "\n", `offset: "latest" is not one of`},
		} {
			t.Run(bad.name, func(t *testing.T) {
				conf := writeConfig(t, config(group, password, bad.extra))
				out, code := runToEnd(t, conf)
				require.Equal(t, 2, code, out)
				require.Contains(t, out, bad.want)
				leaks.requireNoLeak(t, "the error", out)

				out, code = runToEnd(t, conf, "-sample-config")
				require.Equal(t, 0, code, out)
				require.Contains(t, out, "[[inputs.kafka_consumer]]")
				leaks.requireNoLeak(t, "-sample-config output", out)
			})
		}
		// The TOML parser quotes what it cannot read: a password of letters without
		// quotes (it quotes the leading letters), or one of digits too large for a
		// number, would be in its message.
		unquoted := strings.Map(func(r rune) rune {
			if !unicode.IsLetter(r) {
				return 'q'
			}
			return r
		}, password)
		digits := fmt.Sprint(time.Now().UnixNano()) + "73059182645517"
		for _, bad := range []struct{ name, value string }{
			{"password without quotes", unquoted},
			{"password of digits without quotes", digits},
		} {
			t.Run(bad.name, func(t *testing.T) {
				conf := strings.Replace(config(group, "PLACEHOLDER", ""), `"PLACEHOLDER"`, bad.value, 1)
				out, code := runToEnd(t, writeConfig(t, conf))
				require.Equal(t, 2, code, out)
				require.Contains(t, out, "line 10: the value of sasl_password does not parse (not shown, as it is a secret)")
				newLeakScanner(bad.value).requireNoLeak(t, "the error", out)
			})
		}
		t.Run("syntax error on the password's line", func(t *testing.T) {
			conf := strings.Replace(config(group, password, ""), fmt.Sprintf("%q", password), fmt.Sprintf("%q trailing", password), 1)
			out, code := runToEnd(t, writeConfig(t, conf))
			require.Equal(t, 2, code, out)
			require.Contains(t, out, "E! [inputs.kafka_consumer] ")
			leaks.requireNoLeak(t, "the error", out)
		})
	})

	t.Run("world-readable configuration", func(t *testing.T) {
		conf := writeConfig(t, config(kafkatest.UniqueName(t, "g"), password, ""))
		out, code := runToEnd(t, conf, "-test")
		require.Equal(t, 0, code, out)
		require.NotContains(t, out, "W! ", "a private configuration gives no warning")

		require.NoError(t, os.Chmod(conf, 0o644))
		out, code = runToEnd(t, conf, "-test")
		require.Equal(t, 0, code, out)
		require.Contains(t, out, "W! [inputs.kafka_consumer] "+conf+" holds a password and every user of this machine may read it (mode -rw-r--r--)")
		leaks.requireNoLeak(t, "the warning", out)
	})
}

// runToEnd runs the command with the configuration and returns its stdout and stderr
// together and its exit status.
func runToEnd(t *testing.T, conf string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, append([]string{"-config", conf}, args...)...)
	out, err := cmd.CombinedOutput()
	require.NoError(t, ctx.Err(), "the command did not exit:\n%s", out)
	if err != nil {
		var exit *exec.ExitError
		require.ErrorAs(t, err, &exit, "running %s", binary)
		return string(out), exit.ExitCode()
	}
	return string(out), 0
}

// consumer is the command running as Telegraf's execd input runs it.
type consumer struct {
	cmd            *exec.Cmd
	stdout, stderr *syncbuf.Buffer
	done           chan error
}

func startConsumer(t *testing.T, conf string, args ...string) *consumer {
	t.Helper()
	p := &consumer{
		cmd:    exec.Command(binary, append([]string{"-config", conf}, args...)...),
		stdout: &syncbuf.Buffer{}, stderr: &syncbuf.Buffer{}, done: make(chan error, 1),
	}
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	require.NoError(t, p.cmd.Start())
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() { _ = p.cmd.Process.Kill() })
	return p
}

// waitStdout waits until stdout holds n lines that start with prefix.
func (p *consumer) waitStdout(t *testing.T, prefix string, n int) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for countLines(p.stdout.String(), prefix) < n {
		select {
		case err := <-p.done:
			t.Fatalf("the command exited (%v) before writing %d metrics:\n%s", err, n, p.stderr.String())
		case <-time.After(50 * time.Millisecond):
		}
		require.True(t, time.Now().Before(deadline), "stdout never held %d lines %q:\nstdout:\n%s\nstderr:\n%s", n, prefix, p.stdout.String(), p.stderr.String())
	}
}

// countLines counts the lines of s that start with prefix.
func countLines(s, prefix string) int {
	n := 0
	for line := range strings.Lines(s) {
		if strings.HasPrefix(line, prefix) {
			n++
		}
	}
	return n
}

// stop sends SIGTERM, as Telegraf does when it stops, and waits for a clean exit.
func (p *consumer) stop(t *testing.T) (stdout, stderr string) {
	t.Helper()
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-p.done:
		require.NoError(t, err, p.stderr.String())
	case <-time.After(waitTimeout):
		t.Fatalf("the command did not exit after SIGTERM:\n%s", p.stderr.String())
	}
	return p.stdout.String(), p.stderr.String()
}
