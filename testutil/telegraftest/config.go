package telegraftest

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

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

// KafkaConsumer is an [[inputs.kafka_consumer]] table: telegraf-kafka-consumer's
// configuration file, or, since the keys are the same, stock Telegraf's plugin in a
// telegraf.conf. Empty fields are left out, so the plugin's defaults apply.
type KafkaConsumer struct {
	Brokers       []string
	Topics        []string
	ConsumerGroup string
	Offset        string // "oldest" or "newest"
	KafkaVersion  string // stock Telegraf needs it for Kafka 4; telegraf-kafka-consumer asks the brokers
	DataFormat    string
	More          string // more lines of the table, as TOML
}

// String is the table as TOML.
func (c KafkaConsumer) String() string {
	return table("inputs.kafka_consumer", c.More,
		list("brokers", c.Brokers), list("topics", c.Topics), str("consumer_group", c.ConsumerGroup),
		str("offset", c.Offset), str("kafka_version", c.KafkaVersion), str("data_format", c.DataFormat))
}

// CnosDB is an [[outputs.cnosdb]] table, telegraf-cnosdb's configuration file.
// Empty fields are left out, so the plugin's defaults apply.
type CnosDB struct {
	URLs     []string
	Database string
	Username string
	Password string
	More     string // more lines of the table, as TOML
}

// String is the table as TOML.
func (c CnosDB) String() string {
	// An empty password is a setting: CnosDB's root has none before 2.4.1.
	password := ""
	if c.Username != "" || c.Password != "" {
		password = "password = " + strconv.Quote(c.Password)
	}
	return table("outputs.cnosdb", c.More,
		list("urls", c.URLs), str("database", c.Database), str("username", c.Username), password)
}

// WriteConfig writes body to dir/name, readable by its owner only since it may hold
// a password, and returns the file's path.
func WriteConfig(dir, name, body string) (string, error) {
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		return "", fmt.Errorf("writing %s: %w", path, err)
	}
	return path, nil
}

// table is a plugin table with its settings, those that are "" left out, and more.
func table(name, more string, settings ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "[[%s]]\n", name)
	for _, s := range settings {
		if s != "" {
			fmt.Fprintf(&b, "  %s\n", s)
		}
	}
	if more != "" {
		b.WriteString(more)
		if !strings.HasSuffix(more, "\n") {
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// str is a string setting, "" when value is.
func str(key, value string) string {
	if value == "" {
		return ""
	}
	return key + " = " + strconv.Quote(value)
}

// list is a list setting, "" when values is empty.
func list(key string, values []string) string {
	if len(values) == 0 {
		return ""
	}
	quoted := make([]string, len(values))
	for i, v := range values {
		quoted[i] = strconv.Quote(v)
	}
	return key + " = [" + strings.Join(quoted, ", ") + "]"
}
