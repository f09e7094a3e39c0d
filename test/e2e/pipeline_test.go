package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/dev/cnosdbdev"
	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/internal/ackproto"
	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/testutil/cnosdbtest"
	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/testutil/kafkatest"
	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/testutil/telegraftest"
)

// pipeline is one run of the pair under stock Telegraf.
type pipeline struct {
	broker *kafkatest.Broker
	target *cnosdbtest.Target
	topic  string
	group  string // the input's consumer group; the topic's name unless changed
	db     string
	format string // the input's data_format; "json" unless changed
}

func newPipeline(t *testing.T, partitions int) *pipeline {
	broker := kafkatest.Shared(t)
	topic := kafkatest.UniqueName(t, "oceanic")
	broker.CreateTopic(t, topic, partitions)
	target := cnosdbtest.Start(t, cnosdbdev.Options{})
	// The article's database; a real, shared CnosDB gets a database of the test's own.
	db := "telegraf"
	if target.Real {
		db = target.NewDatabase(t, "")
	}
	return &pipeline{broker: broker, target: target, topic: topic, group: topic, db: db, format: "json"}
}

// telegrafConfig writes the plugins' own files and returns telegraf.conf with extra
// (processors, say) appended.
func (p *pipeline) telegrafConfig(t *testing.T, version, extra string) string {
	return p.telegrafConfigWith(t, version, "", extra)
}

// telegrafConfigWith adds parserOptions to the input's table.
func (p *pipeline) telegrafConfigWith(t *testing.T, version, parserOptions, extra string) string {
	dir := t.TempDir()
	kafkaConf := writeConfig(t, dir, "kafka_consumer.conf", telegraftest.KafkaConsumer{
		Brokers: []string{p.broker.Addr()}, Topics: []string{p.topic}, ConsumerGroup: p.group, Offset: "oldest",
		DataFormat: p.format, More: parserOptions}.String())
	cnosdbConf := writeConfig(t, dir, "cnosdb.conf", telegraftest.CnosDB{
		URLs: []string{p.target.URL}, Database: p.db, Username: p.target.User, Password: p.target.Password,
		More: `  flush_interval = "200ms"`}.String())

	return telegraftest.PairConfig(version, binary("telegraf-kafka-consumer"), kafkaConf,
		binary("telegraf-cnosdb"), cnosdbConf) + extra
}

// TestPipelineIntoCnosDB: Kafka -> telegraf-kafka-consumer -> stock Telegraf ->
// telegraf-cnosdb -> CnosDB, from a 1- and a 6-partition topic, on both Telegraf
// versions; messages come from kcat, a client that is not this project's code.
func TestPipelineIntoCnosDB(t *testing.T) {
	for _, version := range telegraftest.Versions {
		for _, partitions := range []int{1, 6} {
			t.Run(fmt.Sprintf("%s/%d-partitions", version, partitions), func(t *testing.T) {
				p := newPipeline(t, partitions)
				const n = 3000
				messages, want := sensorMessages(n)
				parserOptions := ""
				if partitions > 1 {
					// Partitions are parsed in parallel: see sensorMessagesAt.
					messages, want = sensorMessagesAt(n, time.Now().UnixMicro())
					parserOptions = "  json_time_key = \"ts\"\n  json_time_format = \"unix_us\"\n"
				}
				kafkatest.ProduceWithKcat(t, p.broker, p.topic, messages)

				tg := telegraftest.Start(t, version, p.telegrafConfigWith(t, version, parserOptions, ""))
				waitForCount(t, p.target, p.db, "kafka_consumer", n, tg)
				require.Equal(t, want, storedRows(t, p.target, p.db, "kafka_consumer"), "every message, with its exact values")
				// The article queries the table back with SELECT *: time, then the three fields.
				rows := p.target.Rows(t, p.db, "kafka_consumer")
				require.Len(t, rows[0], 4)
				for _, column := range []string{"time", "pressure", "temperature", "visibility"} {
					require.Contains(t, rows[0], column)
				}
			})
		}
	}
}

// TestProcessorBetweenThePlugins: metrics pass through Telegraf's processors on their
// way from the input to the output.
func TestProcessorBetweenThePlugins(t *testing.T) {
	for _, version := range telegraftest.Versions {
		t.Run(version, func(t *testing.T) {
			p := newPipeline(t, 1)
			const n = 500
			messages, _ := sensorMessages(n)
			kafkatest.ProduceWithKcat(t, p.broker, p.topic, messages)
			tg := telegraftest.Start(t, version, p.telegrafConfig(t, version, `
[[processors.rename]]
  [[processors.rename.replace]]
    field = "temperature"
    dest = "temperature_c"
`))
			waitForCount(t, p.target, p.db, "kafka_consumer", n, tg)
			for _, r := range p.target.Rows(t, p.db, "kafka_consumer") {
				require.NotContains(t, r, "temperature")
				require.NotEmpty(t, r["temperature_c"])
			}
		})
	}
}

// TestGracefulTelegrafRestartLosesNothing stops Telegraf with SIGTERM while messages
// are flowing and starts it again: every message ends up in CnosDB.
func TestGracefulTelegrafRestartLosesNothing(t *testing.T) {
	for _, version := range telegraftest.Versions {
		t.Run(version, func(t *testing.T) {
			p := newPipeline(t, 1)
			const n = 6000
			messages, want := sensorMessages(n)
			config := p.telegrafConfig(t, version, "")

			kafkatest.ProduceWithKcat(t, p.broker, p.topic, messages[:n/2])
			first := telegraftest.Start(t, version, config)
			waitForCount(t, p.target, p.db, "kafka_consumer", n/2, first)
			// The second half arrives and Telegraf stops while reading it.
			kafkatest.ProduceWithKcat(t, p.broker, p.topic, messages[n/2:])
			first.Stop(t)

			second := telegraftest.Start(t, version, config)
			waitForCount(t, p.target, p.db, "kafka_consumer", n, second)
			require.Equal(t, want, storedRows(t, p.target, p.db, "kafka_consumer"))
		})
	}
}

// TestAnotherOutputBesideThePair: an outputs.file beside the pair, with the namedrop
// the sample configuration documents, gets every metric of the messages and none of
// the input's acknowledgement markers, and the acknowledgement still works: the
// messages outnumber max_undelivered_messages (20,000 by default), so the input reads
// them all only if telegraf-cnosdb confirms.
func TestAnotherOutputBesideThePair(t *testing.T) {
	p := newPipeline(t, 1)
	const n = 25000
	messages, want := sensorMessages(n)
	kafkatest.ProduceWithKcat(t, p.broker, p.topic, messages)
	file := filepath.Join(t.TempDir(), "metrics.out")
	tg := telegraftest.Start(t, telegraftest.Latest, p.telegrafConfig(t, telegraftest.Latest, fmt.Sprintf(`
[[outputs.file]]
  files = [%q]
  data_format = "influx"
  namedrop = [%q]
`, file, ackproto.Measurement)))
	waitForCount(t, p.target, p.db, "kafka_consumer", n, tg)
	require.Equal(t, want, storedRows(t, p.target, p.db, "kafka_consumer"))
	tg.Stop(t)
	raw, err := os.ReadFile(file)
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n")
	require.Len(t, lines, n, "one line per message in the file")
	for _, line := range lines {
		require.True(t, strings.HasPrefix(line, "kafka_consumer "), "not a metric of a message: %q", line)
	}
}

// TestAckWithoutTelegrafCnosDBSaysSo: a Telegraf whose only output is not
// telegraf-cnosdb never confirms a marker; the input says so, with what to do, rather
// than stopping in silence at max_undelivered_messages.
func TestAckWithoutTelegrafCnosDBSaysSo(t *testing.T) {
	p := newPipeline(t, 1)
	messages, _ := sensorMessages(100)
	kafkatest.ProduceWithKcat(t, p.broker, p.topic, messages)
	conf := p.telegrafConfig(t, telegraftest.Latest, "")
	// The pair's output table replaced by a file.
	i := strings.Index(conf, "[[outputs.execd]]")
	require.Positive(t, i)
	conf = conf[:i] + fmt.Sprintf("[[outputs.file]]\n  files = [%q]\n  data_format = \"influx\"\n", filepath.Join(t.TempDir(), "out"))
	tg := telegraftest.Start(t, telegraftest.Latest, conf)
	waitFor(t, tg, "the input's error about the missing telegraf-cnosdb", func() bool {
		return strings.Contains(tg.Logs(), "ack: no output has answered a marker")
	})
	require.Contains(t, tg.Logs(), "set ack = false")
}

// TestReplayThroughAProcessorLandsOnTheSameRows: messages without a time of their own,
// renamed and with a field renamed by processors.rename on their way, are read a
// second time from the start by another consumer group; every message lands on the
// row its first reading wrote, since its time comes from its Kafka record.
func TestReplayThroughAProcessorLandsOnTheSameRows(t *testing.T) {
	p := newPipeline(t, 3)
	const n = 3000
	messages, want := sensorMessages(n)
	kafkatest.ProduceWithKcat(t, p.broker, p.topic, messages)
	rename := `
[[processors.rename]]
  [[processors.rename.replace]]
    measurement = "kafka_consumer"
    dest = "sensor"
  [[processors.rename.replace]]
    field = "temperature"
    dest = "temperature_c"
`
	for round, group := range []string{p.topic, p.topic + "-replay"} {
		p.group = group
		tg := telegraftest.Start(t, telegraftest.Latest, p.telegrafConfig(t, telegraftest.Latest, rename))
		if round == 0 {
			waitForCount(t, p.target, p.db, "sensor", n, tg)
		} else {
			// Every message read again: the group's offsets reach the end of the topic.
			waitFor(t, tg, "the replay's offsets at the end of the topic", func() bool {
				total := int64(0)
				for _, off := range p.broker.CommittedOffsets(t, group, p.topic) {
					total += off
				}
				return total == n
			})
		}
		tg.Stop(t)
		require.Equal(t, n, p.target.Count(t, p.db, "sensor"), "round %d: one row per message", round+1)
	}
	var rows []string
	for _, r := range p.target.Rows(t, p.db, "sensor") {
		rows = append(rows, r["pressure"]+","+r["temperature_c"]+","+r["visibility"])
	}
	sort.Strings(rows)
	require.Equal(t, want, rows, "the values of the first reading, on the same rows")
}
