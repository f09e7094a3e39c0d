package telegraftest

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// PairConfig returns a telegraf.conf that runs the Kafka consumer and the CnosDB writer
// (binaries and their configuration files) through execd, as sample.conf does, for
// Telegraf at version.
func PairConfig(version, consumer, consumerConf, writer, writerConf string) string {
	batchFormat := "  use_batch_format = true\n"
	if version == Seed {
		batchFormat = "" // added to outputs.execd after 1.27
	}
	return fmt.Sprintf(`[agent]
  interval = "1s"
  flush_interval = "200ms"
  metric_batch_size = 5000
  metric_buffer_limit = 1000000
  omit_hostname = true

[[inputs.execd]]
  command = [%q, "-config", %q]
  signal = "none"
  restart_delay = "1s"
  data_format = "influx"

[[outputs.execd]]
  command = [%q, "-config", %q]
  restart_delay = "1s"
  data_format = "influx"
%s`, consumer, consumerConf, writer, writerConf, batchFormat)
}

// AckSocket returns a path for the input's ack_socket in a directory of its own that
// is removed when the test ends: short, since a Unix socket path takes at most 107
// bytes, which a test's TempDir may exceed. The pair's configuration in tests, as in
// sample.conf, has the input commit offsets only once the output confirms the lines.
func AckSocket(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "ack")
	if err != nil {
		t.Fatalf("directory for ack_socket: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "ack.sock")
}
