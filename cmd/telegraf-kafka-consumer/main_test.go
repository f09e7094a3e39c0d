package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/testutil/cmdtest"
)

// binary is this command, built once for the tests that run it as Telegraf would.
var binary string

func TestMain(m *testing.M) { cmdtest.Main(m, "telegraf-kafka-consumer", &binary) }

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kafka_consumer.conf")
	require.NoError(t, os.WriteFile(path, []byte(body), 0o600))
	return path
}

func TestFlags(t *testing.T) {
	require.Equal(t, 0, run([]string{"-version"}))
	require.Equal(t, 0, run([]string{"-sample-config"}))
	require.Equal(t, 2, run([]string{"-no-such-flag"}))
	require.Equal(t, 2, run(nil), "no -config")
}

// TestRefusesBadConfigurationNamingTheKey: a configuration the plugin cannot use
// stops the command at start with status 2 and one E! line that names the key.
func TestRefusesBadConfigurationNamingTheKey(t *testing.T) {
	const head = "[[inputs.kafka_consumer]]\n  brokers = [\"b:9092\"]\n  topics = [\"t\"]\n"
	tests := []struct{ name, config, want string }{
		{"unknown key", head + "  bogus = 1\n", "unknown option(s) bogus"},
		{"unknown parser key", head + "  data_format = \"json\"\n  json_qery = \"x\"\n", "unknown option(s) json_qery"},
		{"list given as a string", "[[inputs.kafka_consumer]]\n  brokers = \"b:9092\"\n  topics = [\"t\"]\n",
			`"inputs.kafka_consumer.brokers"): incompatible types: TOML value has type string; destination has type slice`},
		{"number given as a string", head + "  max_message_len = \"big\"\n",
			`"inputs.kafka_consumer.max_message_len"): incompatible types: TOML value has type string; destination has type integer`},
		{"bad duration", head + "  max_processing_time = \"soon\"\n", "max_processing_time"},
		{"bad value", head + "  offset = \"latest\"\n", `configuration: offset: "latest" is not one of`},
		{"bad log_level", head + "  log_level = \"loud\"\n", `log_level: "loud"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(binary, "-config", writeConfig(t, tt.config))
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			var exit *exec.ExitError
			require.ErrorAs(t, err, &exit)
			require.Equal(t, 2, exit.ExitCode())
			require.Contains(t, stderr.String(), tt.want)
			require.True(t, strings.HasPrefix(stderr.String(), "E! [inputs.kafka_consumer] "), stderr.String())
			require.Empty(t, stdout.String(), "nothing reaches Telegraf")
		})
	}
	require.Equal(t, 2, run([]string{"-config", filepath.Join(t.TempDir(), "missing.conf")}))
}
