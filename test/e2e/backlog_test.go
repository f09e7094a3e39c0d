package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/dev/cnosdbdev"
	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/plugins/outputs/cnosdb"
	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/testutil/cnosdbtest"
	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/testutil/kafkatest"
	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/testutil/telegraftest"
)

// slowCnosDB charges writes far more than a real CnosDB does, 100 µs a line, so that
// a backlog builds up in front of it however slow this machine is: the pipeline is
// then always waiting on CnosDB, as in the collapse this test reproduces.
var slowCnosDB = &cnosdbdev.Cost{PerRequest: 2 * time.Millisecond, PerLine: 100 * time.Microsecond, Cores: 1}

// TestBacklogKeepsRequestsFull drains a backlog into a slow CnosDB and counts the
// lines of every request: with the acknowledgement on, requests must carry (nearly)
// the output's metric_batch_size, however the input's markers and freed slots fall.
// A 6-partition backlog once went in at about two lines a request: the input freed a
// slot per confirmed message and wrote a marker per message, and the output cut a
// request at every marker. The count of requests per line does not depend on the
// machine's speed.
func TestBacklogKeepsRequestsFull(t *testing.T) {
	if testing.Short() {
		t.Skip("drains a backlog through stock Telegraf; not in -short")
	}
	batch := cnosdb.New().MetricBatchSize
	for _, conf := range []struct {
		name, input string
	}{
		{"defaults", ""},
		// How the acknowledgement was set before it was the default, in the configuration
		// that collapsed.
		{"named-socket", "  ack_socket = %q\n  max_undelivered_messages = 20000\n"},
	} {
		for _, partitions := range []int{1, 6} {
			t.Run(fmt.Sprintf("%s/%d-partitions", conf.name, partitions), func(t *testing.T) {
				input, output := conf.input, ""
				if input != "" {
					// Short: a socket path takes at most 107 bytes, which t.TempDir may exceed.
					dir, err := os.MkdirTemp("", "ack")
					require.NoError(t, err)
					t.Cleanup(func() { os.RemoveAll(dir) })
					socket := filepath.Join(dir, "ack.sock")
					input = fmt.Sprintf(input, socket)
					output = fmt.Sprintf("  ack_sockets = [%q]\n", socket)
				}
				n := 8 * batch
				res := drainBacklog(t, partitions, n, input, output)
				require.Equal(t, n, res.distinct, "every message stored")
				require.Contains(t, res.logs, "ack: offsets are committed once telegraf-cnosdb confirms the lines",
					"the acknowledgement is on")
				// Full requests, but for the last one or two of the backlog.
				maxRequests := (n+batch*9/10-1)/(batch*9/10) + 2
				t.Logf("%d lines in %d requests (%.0f lines a request, metric_batch_size %d)",
					res.lines, res.requests, float64(res.lines)/float64(res.requests), batch)
				require.LessOrEqual(t, res.requests, maxRequests,
					"%d lines went to CnosDB in %d requests: %.1f lines a request where %d were waiting",
					res.lines, res.requests, float64(res.lines)/float64(res.requests), batch)
			})
		}
	}
}

type backlogResult struct {
	requests, lines, distinct int
	logs                      string
}

// drainBacklog produces n messages to a new topic of the given partitions, then runs
// the pair under stock Telegraf, with extra in the input's table and outputExtra in
// the output's, until CnosDB has them all.
func drainBacklog(t *testing.T, partitions, n int, extra, outputExtra string) backlogResult {
	t.Helper()
	broker := kafkatest.Shared(t)
	topic := kafkatest.UniqueName(t, "backlog")
	broker.CreateTopic(t, topic, partitions)
	target := cnosdbtest.Start(t, cnosdbdev.Options{Cost: slowCnosDB})
	db := target.NewDatabase(t, "")
	front, rec := recordingFront(t, target)

	start := time.Now().Add(-time.Hour).UnixMicro()
	msgs := make([]kafkatest.Message, n)
	for id := range msgs {
		msgs[id] = kafkatest.Message{Value: fmt.Appendf(nil, `{"id":%d,"ts":%d,"v":%d.5}`, id, start+int64(id), id)}
	}
	broker.ProduceMessages(t, topic, msgs...)

	dir := t.TempDir()
	kafkaConf := writeConfig(t, dir, "kafka_consumer.conf", telegraftest.KafkaConsumer{
		Brokers: []string{broker.Addr()}, Topics: []string{topic}, ConsumerGroup: topic, Offset: "oldest",
		DataFormat: "json", More: "  json_time_key = \"ts\"\n  json_time_format = \"unix_us\"\n" + extra}.String())
	cnosdbConf := writeConfig(t, dir, "cnosdb.conf", telegraftest.CnosDB{
		URLs: []string{front.URL()}, Database: db, Username: target.User, Password: target.Password, More: outputExtra}.String())
	tg := telegraftest.Start(t, telegraftest.Latest, telegraftest.PairConfig(telegraftest.Latest,
		binary("telegraf-kafka-consumer"), kafkaConf, binary("telegraf-cnosdb"), cnosdbConf))

	deadline := time.Now().Add(waitLimit)
	for {
		_, distinct := rec.Accepted()
		if distinct >= n {
			break
		}
		if tg.Exited() {
			t.Fatalf("Telegraf exited with %d of %d messages in CnosDB", distinct, n)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d messages in CnosDB after %v", distinct, n, waitLimit)
		}
		time.Sleep(50 * time.Millisecond)
	}
	tg.Stop(t)
	res := backlogResult{logs: tg.Logs()}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	res.requests = len(rec.writes)
	for _, w := range rec.writes {
		res.lines += len(w.ids)
	}
	res.distinct = len(rec.times)
	if res.requests == 0 {
		t.Fatal("no request reached CnosDB")
	}
	if strings.Contains(res.logs, "Metric buffer overflow") {
		t.Errorf("Telegraf dropped metrics (buffer overflow) with the plugins' defaults")
	}
	return res
}
