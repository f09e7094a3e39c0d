package telegraftest

import "fmt"

// PairConfig returns a telegraf.conf that runs the Kafka consumer and the CnosDB writer
// (binaries and their configuration files) through execd, as sample.conf does, for
// Telegraf at version. The agent keeps Telegraf's metric_batch_size and
// metric_buffer_limit, which the plugins' defaults are sized for; flush_interval is
// short so that tests with few messages do not wait Telegraf's 10 s for them.
func PairConfig(version, consumer, consumerConf, writer, writerConf string) string {
	batchFormat := "  use_batch_format = true\n"
	if version == Article {
		batchFormat = "" // added to outputs.execd after 1.27
	}
	return fmt.Sprintf(`[agent]
  interval = "1s"
  flush_interval = "200ms"
  metric_batch_size = 1000
  metric_buffer_limit = 10000
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
