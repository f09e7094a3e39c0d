package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/internal/telegraftest"
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
	outDir     string
	work       string // scratch directory, removed at the end
	pollEvery  time.Duration

	// The workload being measured and its pre-made line protocol.
	workload workload
	lpPath   string
}

// agentTOML is the agent table of every Telegraf run, the one telegraftest.PairConfig
// gives B, so that A, B and the routing ceiling differ only in their plugins.
const agentTOML = `[agent]
  interval = "1s"
  flush_interval = "200ms"
  metric_batch_size = 5000
  metric_buffer_limit = 1000000
  omit_hostname = true
`

// stockConfig is the seed's pipeline, as in CnosDB's Kafka article.
func stockConfig(e *env, dir, group, db string) (string, error) {
	conf := agentTOML + fmt.Sprintf(`
[[inputs.kafka_consumer]]
  brokers = [%q]
  topics = [%q]
  consumer_group = %q
  offset = "oldest"
  kafka_version = "4.1.0"
%s
[[outputs.http]]
  url = %q
  method = "POST"
  username = %q
  password = %q
  data_format = "influx"
  use_batch_format = true
  content_encoding = "identity"
`, e.brokerAddr, e.workload.topic(), group, e.workload.parserTOML(),
		e.sink.url+"/api/v1/write?db="+db, e.sink.user, e.sink.password)
	path := filepath.Join(dir, "telegraf.conf")
	return path, writeFile(path, conf)
}

// consumerConfig is telegraf-kafka-consumer's configuration, default settings but
// for where to read and how to parse, as the demo writes it, plus extra.
func consumerConfig(e *env, dir, group, extra string) (string, error) {
	path := filepath.Join(dir, "kafka_consumer.conf")
	return path, writeFile(path, fmt.Sprintf(`[[inputs.kafka_consumer]]
  brokers = [%q]
  topics = [%q]
  consumer_group = %q
  offset = "oldest"
  kafka_version = "4.1.0"
%s%s`, e.brokerAddr, e.workload.topic(), group, e.workload.parserTOML(), extra))
}

// ackTOML turns the acknowledgement on, with max_undelivered_messages sized for the
// agent's batches as the README says (at least twice metric_batch_size). The socket
// lives in the scratch directory, whose path is short: a socket path takes at most
// 107 bytes.
func ackTOML(e *env, group string) string {
	return fmt.Sprintf("  ack_socket = %q\n  max_undelivered_messages = 20000\n", filepath.Join(e.work, group+".sock"))
}

// pairConfig is this project's pipeline, both plugins with default settings, and
// with ack the acknowledgement from the output to the input.
func pairConfig(e *env, dir, group, db string, ack bool) (string, error) {
	extra := ""
	if ack {
		extra = ackTOML(e, group)
	}
	consumerConf, err := consumerConfig(e, dir, group, extra)
	if err != nil {
		return "", err
	}
	writerConf := filepath.Join(dir, "cnosdb.conf")
	if err := writeFile(writerConf, fmt.Sprintf(`[[outputs.cnosdb]]
  urls = [%q]
  database = %q
  username = %q
  password = %q
  create_database = true
`, e.sink.url, db, e.sink.user, e.sink.password)); err != nil {
		return "", err
	}
	path := filepath.Join(dir, "telegraf.conf")
	return path, writeFile(path, telegraftest.PairConfig(e.version, e.inputBin, consumerConf, e.outputBin, writerConf))
}

// routingConfig is the most any execd pair can get through Telegraf: an input that
// replays the workload's line protocol as fast as Telegraf reads it and an output that
// counts and discards, with B's agent and execd settings.
func routingConfig(e *env, dir, progress string) (string, error) {
	conf := agentTOML + fmt.Sprintf(`
[[inputs.execd]]
  command = [%q, "-replay", %q]
  signal = "none"
  restart_delay = "1s"
  data_format = "influx"

[[outputs.execd]]
  command = [%q, "-discard", %q]
  restart_delay = "1s"
  data_format = "influx"
  use_batch_format = true
`, e.self, e.lpPath, e.self, progress)
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

// runPipeline runs A, B or B-ack once with a fresh consumer group and database.
func runPipeline(ctx context.Context, e *env, kind string, round int) (result, error) {
	id := runID(e, kind, round)
	db := databaseName(e.workload.name, kind, round)
	res := newResult(e, kind, round)
	dir, err := runDir(e, id)
	if err != nil {
		return res, err
	}
	// CnosDB's documented set-up creates the database by hand first; B's output has
	// create_database = true.
	drop, err := e.sink.freshDatabase(ctx, db, kind == runA)
	if err != nil {
		return res, err
	}
	defer drop()
	var conf string
	if kind == runA {
		conf, err = stockConfig(e, dir, "bench-"+id, db)
	} else {
		conf, err = pairConfig(e, dir, "bench-"+id, db, kind == runBAck)
	}
	if err != nil {
		return res, err
	}
	return runTelegraf(ctx, e, res, dir, conf, func(ctx context.Context) (int64, error) { return e.sink.count(ctx, db) })
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
	return runTelegraf(ctx, e, res, dir, conf, func(context.Context) (int64, error) { return readProgress(progress) })
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
	return result{workload: e.workload.name, kind: kind, round: round, n: e.n, peakKB: map[string]int64{}}
}
