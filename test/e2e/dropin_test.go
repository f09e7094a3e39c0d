package e2e

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/packaging/telegrafd"
	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/testutil/kafkatest"
	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/testutil/telegraftest"
)

// TestTelegrafDExampleRunsThePair: for each tested Telegraf, the telegraf.d example
// the package ships for it, renamed and with nothing else changed but the paths of
// the binaries and their files, loads beside a telegraf.conf that sets nothing (no
// [agent] table: Telegraf's defaults) and moves messages from Kafka into CnosDB.
//
// Telegraf reads telegraf.d files into the same configuration as telegraf.conf, so the
// test gives it one file, the empty telegraf.conf followed by the example.
func TestTelegrafDExampleRunsThePair(t *testing.T) {
	sample, err := os.ReadFile("../../sample.conf")
	require.NoError(t, err)
	examples, err := telegrafd.Files(sample)
	require.NoError(t, err)
	for _, version := range telegraftest.Versions {
		t.Run(version, func(t *testing.T) {
			example, err := telegrafd.For(examples, version)
			require.NoError(t, err)
			p := newPipeline(t, 1)
			dir := t.TempDir()
			kafkaConf := writeConfig(t, dir, "kafka_consumer.conf", telegraftest.KafkaConsumer{
				Brokers: []string{p.broker.Addr()}, Topics: []string{p.topic}, ConsumerGroup: p.group, DataFormat: "json"}.String())
			cnosdbConf := writeConfig(t, dir, "cnosdb.conf", telegraftest.CnosDB{
				URLs: []string{p.target.URL}, Database: p.db, Username: p.target.User, Password: p.target.Password}.String())

			dropIn := string(example.Content)
			for from, to := range map[string]string{
				"/usr/bin/telegraf-kafka-consumer":  binary("telegraf-kafka-consumer"),
				"/etc/telegraf/kafka_consumer.conf": kafkaConf,
				"/usr/bin/telegraf-cnosdb":          binary("telegraf-cnosdb"),
				"/etc/telegraf/cnosdb.conf":         cnosdbConf,
			} {
				quoted := fmt.Sprintf("%q", from)
				require.Equal(t, 1, strings.Count(dropIn, quoted), "%s in %s", quoted, example.Name)
				dropIn = strings.Replace(dropIn, quoted, fmt.Sprintf("%q", to), 1)
			}
			const telegrafConf = "# telegraf.conf: Telegraf's defaults; the pair comes from telegraf.d.\n\n"

			const n = 500
			messages, want := sensorMessages(n)
			kafkatest.ProduceWithKcat(t, p.broker, p.topic, messages)
			tg := telegraftest.Start(t, version, telegrafConf+dropIn)
			deadline := time.Now().Add(time.Minute)
			for !strings.Contains(tg.Logs(), "Loaded outputs:") && !tg.Exited() && time.Now().Before(deadline) {
				time.Sleep(100 * time.Millisecond)
			}
			require.NotRegexp(t, `(?i)error loading config`, tg.Logs(), "Telegraf %s refuses %s", version, example.Name)
			require.Contains(t, tg.Logs(), "Loaded outputs: execd")
			waitForCount(t, p.target, p.db, "kafka_consumer", n, tg)
			require.Equal(t, want, storedRows(t, p.target, p.db, "kafka_consumer"), "every message, with its exact values")
		})
	}
}
