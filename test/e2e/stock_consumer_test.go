package e2e

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/dev/cnosdbdev"
	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/testutil/cnosdbtest"
	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/testutil/kafkatest"
	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/testutil/telegraftest"
)

// sensorMessages returns n messages of the article's sensor JSON, each with values no
// other message has, and the rows CnosDB must hold for them (pressure,temperature,visibility).
func sensorMessages(n int) (messages []string, rows []string) {
	return sensorMessagesAt(n, 0)
}

// sensorMessagesAt adds a "ts" member (microseconds since the epoch, from start on;
// JSON numbers become float64, exact for microseconds but not for nanoseconds) when
// start is not zero. Without one each metric takes the time it was parsed at, and CnosDB keeps
// one row per table, tags and time: two partitions parsed in parallel can stamp two
// messages with the same nanosecond, and the second overwrites the first.
func sensorMessagesAt(n int, start int64) (messages []string, rows []string) {
	for i := 0; i < n; i++ {
		pressure := 1000 + float64(i)/100
		temperature := float64(i%400)/10 - 5
		visibility := i % 20
		ts := ""
		if start != 0 {
			ts = fmt.Sprintf(`,"ts":%d`, start+int64(i))
		}
		messages = append(messages, fmt.Sprintf(`{"pressure":%g,"temperature":%g,"visibility":%d%s}`, pressure, temperature, visibility, ts))
		rows = append(rows, fmt.Sprintf("%s,%s,%s", cnosFloat(pressure), cnosFloat(temperature), cnosFloat(float64(visibility))))
	}
	sort.Strings(rows)
	return messages, rows
}

// cnosFloat formats a DOUBLE as CnosDB's CSV does: integral values keep ".0".
func cnosFloat(v float64) string {
	s := fmt.Sprintf("%g", v)
	if !strings.ContainsAny(s, ".e") {
		s += ".0"
	}
	return s
}

func storedRows(t *testing.T, target *cnosdbtest.Target, db, table string) []string {
	var rows []string
	for _, r := range target.Rows(t, db, table) {
		rows = append(rows, r["pressure"]+","+r["temperature"]+","+r["visibility"])
	}
	sort.Strings(rows)
	return rows
}

func waitForCount(t *testing.T, target *cnosdbtest.Target, db, table string, want int, tg *telegraftest.Process) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		got := target.Count(t, db, table)
		if got == want {
			return
		}
		if got > want {
			t.Fatalf("%d rows in %s, more than the %d expected", got, table, want)
		}
		if tg.Exited() {
			t.Fatalf("Telegraf exited with %d of %d rows written", got, want)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d rows in %s after 3 minutes", got, want, table)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestStockConsumerIntoCnosDB runs the article's pipeline with this project's output in
// place of outputs.http: stock Telegraf's kafka_consumer (JSON) -> outputs.execd ->
// telegraf-cnosdb -> CnosDB, on both Telegraf versions.
func TestStockConsumerIntoCnosDB(t *testing.T) {
	broker := kafkatest.Shared(t)
	for _, version := range telegraftest.Versions {
		t.Run(version, func(t *testing.T) {
			topic := kafkatest.UniqueName(t, "oceanic")
			broker.CreateTopic(t, topic, 1)
			const n = 2000
			messages, want := sensorMessages(n)
			kafkatest.ProduceWithKcat(t, broker, topic, messages)

			target := cnosdbtest.Start(t, cnosdbdev.Options{})
			db := target.NewDatabase(t, "")
			dir := t.TempDir()
			outputConf := writeConfig(t, dir, "cnosdb.conf", telegraftest.CnosDB{
				URLs: []string{target.URL}, Database: db, Username: target.User, Password: target.Password,
				More: `  flush_interval = "200ms"`}.String())

			// Kafka 4 refuses the old protocol versions Telegraf's default kafka_version
			// selects; each Telegraf takes the newest version its sarama knows.
			stock := telegraftest.KafkaConsumer{Brokers: []string{broker.Addr()}, Topics: []string{topic},
				ConsumerGroup: topic, Offset: "oldest", KafkaVersion: "4.1.0", DataFormat: "json"}
			batchFormat := "  use_batch_format = true\n"
			if version == telegraftest.Article {
				stock.KafkaVersion, stock.More = "", `  version = "3.3.1"` // renamed kafka_version later
				batchFormat = ""                                           // added to outputs.execd after 1.27
			}
			tg := telegraftest.Start(t, version, fmt.Sprintf(`[agent]
  interval = "1s"
  flush_interval = "200ms"
  metric_batch_size = 1000
  metric_buffer_limit = 100000
  omit_hostname = true

%s
[[outputs.execd]]
  command = [%q, "-config", %q]
  data_format = "influx"
%s`, stock, binary("telegraf-cnosdb"), outputConf, batchFormat))

			waitForCount(t, target, db, "kafka_consumer", n, tg)
			require.Equal(t, want, storedRows(t, target, db, "kafka_consumer"), "every message, with its exact values")

			tg.Stop(t)
			require.Contains(t, tg.Logs(), fmt.Sprintf("totals: %d lines written", n),
				"the output's summary reaches Telegraf's log when Telegraf stops")
		})
	}
}
