package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/testutil/telegraftest"
)

// env is what every run shares.
type env struct {
	n          int
	timeout    time.Duration
	version    string
	telegraf   string
	inputBin   string
	outputBin  string
	self       string // this program, run by Telegraf in -replay and -discard modes
	brokerAddr string
	sink       *sink
	outSink    *sink // the output-alone runs', nil when there are none
	outDir     string
	work       string // scratch directory, removed at the end
	pollEvery  time.Duration
	stall      time.Duration // a run that counts nothing more for this long has failed
	profile    bool          // take CPU profiles of Telegraf and the plugins (profile.go)

	// The workload being measured and its pre-made line protocol.
	workload workload
	lpPath   string
	topic    string // the topic the pipelines read, when not the workload's (a freshness run's)
}

// topicName is the topic the pipelines read: the workload's, unless a run set its own.
func (e *env) topicName() string {
	if e.topic != "" {
		return e.topic
	}
	return e.workload.topic()
}

// stockKafkaTOML is the kafka_consumer table of the stock pipelines: what CnosDB's
// Kafka article sets (brokers, topics, data_format = "json"), the workload's parser
// options, and what the benchmark needs: a fresh consumer group per run, reading
// from the oldest offset, and the protocol version Kafka 4 takes, since it refuses
// the old ones Telegraf's default selects. extra is added at the end.
func stockKafkaTOML(e *env, group, extra string) string {
	table := telegraftest.KafkaConsumer{Brokers: []string{e.brokerAddr}, Topics: []string{e.topicName()},
		ConsumerGroup: group, Offset: "oldest", KafkaVersion: "4.1.0", More: e.workload.parserTOML() + extra}
	if e.version == telegraftest.Article {
		// Renamed kafka_version later.
		table.KafkaVersion, table.More = "", `  version = "3.3.1"`+"\n"+table.More
	}
	return table.String()
}

// httpOutputTOML is the article's outputs.http, setting by setting, pointed at the
// sink and the run's database.
func httpOutputTOML(e *env, db string) string {
	return fmt.Sprintf(`[[outputs.http]]
  url = %q
  timeout = "5s"
  method = "POST"
  username = %q
  password = %q
  data_format = "influx"
  use_batch_format = true
  content_encoding = "identity"
  idle_conn_timeout = 10
`, e.sink.url+writePath+"?db="+db, e.sink.user, e.sink.password)
}

// articleConfig is the article's pipeline exactly as CnosDB's Kafka article writes it:
// no [agent] table, so Telegraf's defaults (interval and flush_interval 10s,
// metric_batch_size 1000, metric_buffer_limit 10000) and kafka_consumer's
// (max_undelivered_messages 1000).
func articleConfig(e *env, dir, group, db string) (string, error) {
	path := filepath.Join(dir, "telegraf.conf")
	return path, writeFile(path, stockKafkaTOML(e, group, "")+"\n"+httpOutputTOML(e, db))
}

// defaultBufferLimit is Telegraf's default metric_buffer_limit, which A-article and B
// run with.
const defaultBufferLimit = 10000

// tunedAgentTOML and tunedKafkaTOML are what A-tuned adds to the article's pipeline,
// as an expert would set the stock plugins for a backlog: the report says why each.
const (
	tunedAgentTOML = `[agent]
  metric_batch_size = 5000
  metric_buffer_limit = 100000
  flush_interval = "1s"
`
	tunedKafkaTOML = "  max_undelivered_messages = 10000\n"
)

// tunedConfig is A-tuned: the article's pipeline with larger batches, a buffer that
// holds them, a short flush interval and enough messages in flight to fill a batch
// while the previous one is written.
func tunedConfig(e *env, dir, group, db string) (string, error) {
	path := filepath.Join(dir, "telegraf.conf")
	return path, writeFile(path, tunedAgentTOML+"\n"+stockKafkaTOML(e, group, tunedKafkaTOML)+"\n"+httpOutputTOML(e, db))
}

// consumerConfig is telegraf-kafka-consumer's configuration: default settings but
// for where to read and how to parse, as the demo writes it, plus extra. It leaves
// kafka_version unset, as a user may: the input asks the brokers.
func consumerConfig(e *env, dir, group, extra string) (string, error) {
	return telegraftest.WriteConfig(dir, "kafka_consumer.conf", telegraftest.KafkaConsumer{
		Brokers: []string{e.brokerAddr}, Topics: []string{e.topicName()}, ConsumerGroup: group, Offset: "oldest",
		More: e.workload.parserTOML() + extra}.String())
}

// writerConfig is telegraf-cnosdb's configuration: default settings but for where
// to write, plus extra.
func writerConfig(s *sink, dir, db, extra string) (string, error) {
	return telegraftest.WriteConfig(dir, "cnosdb.conf", telegraftest.CnosDB{
		URLs: []string{s.url}, Database: db, Username: s.user, Password: s.password, More: extra}.String())
}

// pairAgentTOML is B's agent: Telegraf's defaults (metric_batch_size 1000,
// metric_buffer_limit 10000, which the plugins' defaults are sized for) but for the
// flush_interval that sample.conf advises and A-tuned has too, so that a partial batch
// at the end of the backlog waits in Telegraf as long in both.
const pairAgentTOML = `[agent]
  flush_interval = "1s"
`

// execdTOML runs the pair through execd with nothing but the commands and the data
// format set, under pairAgentTOML, so that whatever B gains comes from the plugins.
func execdTOML(version, consumer, consumerConf, writer, writerConf string) string {
	batchFormat := "  use_batch_format = true\n"
	if version == telegraftest.Article {
		batchFormat = "" // added to outputs.execd after 1.27
	}
	return pairAgentTOML + fmt.Sprintf(`
[[inputs.execd]]
  command = [%q, "-config", %q]
  data_format = "influx"

[[outputs.execd]]
  command = [%q, "-config", %q]
  data_format = "influx"
%s`, consumer, consumerConf, writer, writerConf, batchFormat)
}

// pairConfig is this project's pipeline, both plugins with their default settings.
func pairConfig(e *env, dir, group, db string) (string, error) {
	consumerConf, err := consumerConfig(e, dir, group, "")
	if err != nil {
		return "", err
	}
	writerConf, err := writerConfig(e.sink, dir, db, "")
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "telegraf.conf")
	return path, writeFile(path, execdTOML(e.version, e.inputBin, consumerConf, e.outputBin, writerConf))
}

// routingConfig is the most any execd pair can get through Telegraf: an input that
// replays the workload's line protocol as fast as Telegraf reads it and an output that
// counts and discards, with B's execd settings. The agent is B's, Telegraf's defaults,
// but for a buffer that holds the whole topic: the replay does not wait for
// deliveries as a consumer does, and a smaller buffer would drop lines.
func routingConfig(e *env, dir, progress string) (string, error) {
	conf := fmt.Sprintf(`[agent]
  metric_buffer_limit = %d

[[inputs.execd]]
  command = [%q, "-replay", %q]
  data_format = "influx"

[[outputs.execd]]
  command = [%q, "-discard", %q]
  data_format = "influx"
  use_batch_format = true
`, max(e.n, defaultBufferLimit), e.self, e.lpPath, e.self, progress)
	path := filepath.Join(dir, "telegraf.conf")
	return path, writeFile(path, conf)
}

func writeFile(path, body string) error {
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// databaseName is a run's database: lower case letters, digits and underscores only,
// which CnosDB takes without quoting.
func databaseName(workload, kind string, round int) string {
	name := strings.ToLower(fmt.Sprintf("bench_%s_%s_%d", workload, kind, round))
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, name)
}

// runPipeline runs A-article, A-tuned or B once with a fresh consumer group and
// database.
func runPipeline(ctx context.Context, e *env, kind string, round int) (result, error) {
	id := runID(e, kind, round)
	db := databaseName(e.workload.name, kind, round)
	res := newResult(e, kind, round)
	dir, err := runDir(e, id)
	if err != nil {
		return res, err
	}
	// CnosDB's documented set-up creates the database by hand first; B's output would
	// create it, but creating it for every run keeps that out of what is compared.
	drop, err := e.sink.freshDatabase(ctx, db, true)
	if err != nil {
		return res, err
	}
	defer drop()
	var conf string
	switch kind {
	case runAArticle:
		conf, err = articleConfig(e, dir, "bench-"+id, db)
	case runATuned:
		conf, err = tunedConfig(e, dir, "bench-"+id, db)
	case runB:
		conf, err = pairConfig(e, dir, "bench-"+id, db)
	default:
		err = fmt.Errorf("no pipeline %q", kind)
	}
	if err != nil {
		return res, err
	}
	count := func(ctx context.Context) (int64, error) { return e.sink.count(ctx, db) }
	writesBefore, dbBefore := e.sink.writes.counts(), e.sink.databaseCPU()
	res, err = runTelegraf(ctx, e, res, dir, conf, count, func(res *result) {
		res.writes = e.sink.writes.counts().sub(writesBefore)
		if dbAfter := e.sink.databaseCPU(); dbBefore > 0 && dbAfter > dbBefore {
			res.dbCPU = dbAfter - dbBefore
		}
	})
	if err != nil || ctx.Err() != nil {
		return res, err
	}
	// Telegraf has stopped: what arrived after the N-th message, duplicates or a last
	// flush, is in the sink now.
	if n, cerr := count(ctx); cerr == nil {
		res.final = n
	}
	return res, nil
}

// runRoutingCeiling runs Telegraf with the replaying input and the discarding output
// until the output has seen every line.
func runRoutingCeiling(ctx context.Context, e *env, round int) (result, error) {
	res := newResult(e, runRouting, round)
	dir, err := runDir(e, runID(e, runRouting, round))
	if err != nil {
		return res, err
	}
	progress := filepath.Join(dir, "discarded")
	conf, err := routingConfig(e, dir, progress)
	if err != nil {
		return res, err
	}
	return runTelegraf(ctx, e, res, dir, conf, func(context.Context) (int64, error) { return readProgress(progress) }, nil)
}

func runID(e *env, kind string, round int) string {
	return fmt.Sprintf("%s-%s-%d", e.workload.name, kind, round)
}

func runDir(e *env, id string) (string, error) {
	dir := filepath.Join(e.outDir, "runs", id)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("creating %s: %w", dir, err)
	}
	return dir, nil
}

func newResult(e *env, kind string, round int) result {
	return result{workload: e.workload.name, kind: kind, round: round, n: e.n, final: -1, peakKB: map[string]int64{}}
}
