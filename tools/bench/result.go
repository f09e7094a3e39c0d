package main

import (
	"fmt"
	"time"

	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/plugins/outputs/cnosdb"
)

// A run is one measurement of one kind on one workload in one round.
const (
	runAArticle = "A-article" // the article's pipeline exactly as CnosDB's Kafka article writes it
	runATuned   = "A-tuned"   // the same stock plugins, tuned as an expert would
	runB        = "B"         // this project's pipeline with the plugins' defaults
	runInput    = "input"     // telegraf-kafka-consumer alone, stdout to /dev/null
	runRouting  = "routing"   // Telegraf's execd routing ceiling
	runSarama   = "sarama"    // raw sarama consumer ceiling
	runKcat     = "kcat"      // kcat consumer ceiling
	runSink     = "sink"      // the sink's accept rate

	// telegraf-cnosdb alone, fed the pre-made line protocol on stdin, into a 4-core
	// cost-model sink: one request in flight, and the plugin's default.
	runOutput1       = "output-1"
	runOutputDefault = "output-default"

	// Freshness: A-tuned and B on an empty topic fed at a steady rate, each line's
	// delay from being produced to being visible in the sink.
	runATunedFresh = "A-tuned-fresh"
	runBFresh      = "B-fresh"
)

// kinds lists the runs in report order, with what each one is.
var kinds = []struct{ name, title string }{
	{runAArticle, "A-article: stock Telegraf, kafka_consumer + outputs.http as CnosDB's Kafka article sets them, no [agent] table (Telegraf's defaults)"},
	{runATuned, "A-tuned: stock Telegraf, kafka_consumer + outputs.http tuned (metric_batch_size 5000, flush_interval 1s, max_undelivered_messages 10000)"},
	{runB, "B: stock Telegraf, execd telegraf-kafka-consumer + telegraf-cnosdb, the plugins' defaults, no [agent] table (Telegraf's defaults)"},
	{runInput, "input alone: telegraf-kafka-consumer, stdout drained and discarded"},
	{runRouting, "ceiling: Telegraf's execd routing (replayed line protocol in, discarded out)"},
	{runSarama, "ceiling: raw sarama consumer to nowhere"},
	{runKcat, "ceiling: kcat to /dev/null"},
	{runSink, "ceiling: the sink's accept rate (pre-made line protocol, 2 connections)"},
	{runOutput1, "output alone, max_in_flight = 1: telegraf-cnosdb by itself, stdin fed the pre-made line protocol, into the 4-core cost-model sink (a real CnosDB with CNOSDB_URL)"},
	{runOutputDefault, fmt.Sprintf("output alone, max_in_flight = %d (the plugin's default): the same", defaultInFlight())},
	{runATunedFresh, "freshness, A-tuned: A-tuned's configuration reading an empty wide topic (6 partitions) fed at a steady rate, each message stamped with the time it is produced"},
	{runBFresh, "freshness, B: B's configuration, the plugins' defaults, the same"},
}

// freshKinds are the freshness runs, in the order of an odd round; even rounds run
// them backwards.
var freshKinds = []string{runATunedFresh, runBFresh}

// freshPipeline is the pipeline a freshness run configures.
var freshPipeline = map[string]string{runATunedFresh: runATuned, runBFresh: runB}

// outputAloneKinds are the output-alone runs, in the order of an odd round; even
// rounds run them backwards.
var outputAloneKinds = []string{runOutput1, runOutputDefault}

// defaultInFlight is telegraf-cnosdb's default max_in_flight.
func defaultInFlight() int { return cnosdb.New().MaxInFlight }

// pipelineKinds are the runs that move the topic into the sink, in the order of an
// odd round; even rounds run them backwards.
var pipelineKinds = []string{runAArticle, runATuned, runB}

// Names of the processes whose CPU the report shows one by one; any other process
// of a run (the ceilings' helpers) counts in the total only.
const (
	procTelegraf = "telegraf"
	pluginInput  = "telegraf-kafka-consumer"
	pluginOutput = "telegraf-cnosdb"
)

// sample is one reading of a run's progress.
type sample struct {
	at      time.Duration // since the run started
	counted int64
}

// result is what one run measured.
type result struct {
	workload string
	kind     string
	round    int
	n        int
	counted  int64
	final    int64         // counted again once Telegraf has stopped; -1 when not counted
	elapsed  time.Duration // start until all n were seen, or until giving up
	failure  string        // empty when all n arrived in time
	cpu      time.Duration // CPU of the run's processes until all n were seen; 0 when not measured
	procCPU  map[string]time.Duration
	dbCPU    time.Duration // the database's CPU over the run; 0 when its pid is not known
	writes   writeCounts   // what the counting proxy saw of the run
	peakKB   map[string]int64
	timeline []sample
	steady   float64 // input alone: messages/s from its first line to its last, start-up left out
	logPath  string
}

func (r result) ok() bool { return r.failure == "" }

func (r result) rate() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.counted) / r.elapsed.Seconds()
}

// flowRate is messages per second while they flow: from 1% to 99% of N counted. It
// leaves out what does not depend on the pipeline's speed, starting the processes and
// joining the group, and the wait of the last, partial batch for Telegraf's
// flush_interval (a backlog's end, which makes rate() move in steps of flush_interval
// on short runs). 0 when the timeline does not tell.
func (r result) flowRate() float64 {
	from, to := r.timeTo(0.01), r.timeTo(0.99)
	if !r.ok() || to <= from {
		return 0
	}
	return 0.98 * float64(r.n) / (to - from).Seconds()
}

// timeTo is when the run had counted frac of its messages, from its timeline; 0
// when it never did. Set beside elapsed it tells a pipeline's rate from the wait
// for its last, partial batch.
func (r result) timeTo(frac float64) time.Duration {
	for _, s := range r.timeline {
		if float64(s.counted) >= frac*float64(r.n) {
			return s.at
		}
	}
	return 0
}

// perMillion is d in seconds per million of the run's messages.
func (r result) perMillion(d time.Duration) float64 { return d.Seconds() / float64(r.n) * 1e6 }

// cpuPerMillion is CPU seconds per million messages of every process measured, the
// database's included when its pid is known; 0 when not measured.
func (r result) cpuPerMillion() float64 { return r.perMillion(r.cpu + r.dbCPU) }

// linesPerRequest is the mean size of the run's write requests, 0 without any.
func (r result) linesPerRequest() float64 {
	if r.writes.requests == 0 {
		return 0
	}
	return float64(r.writes.lines) / float64(r.writes.requests)
}

// requestRate is write requests per second over the run.
func (r result) requestRate() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.writes.requests) / r.elapsed.Seconds()
}

// addProcs records the CPU of each process of st under its name.
func (r *result) addProcs(st procStats) {
	r.cpu = st.cpu
	r.procCPU = st.byName()
}
