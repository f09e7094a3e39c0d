package main

import "time"

// A run is one measurement of one kind on one workload in one round.
const (
	runA       = "A"       // the seed's pipeline
	runB       = "B"       // this project's pipeline
	runBAck    = "B-ack"   // this project's pipeline, offsets committed once CnosDB has the lines
	runInput   = "input"   // telegraf-kafka-consumer alone, stdout to /dev/null
	runRouting = "routing" // Telegraf's execd routing ceiling
	runSarama  = "sarama"  // raw sarama consumer ceiling
	runKcat    = "kcat"    // kcat consumer ceiling
	runSink    = "sink"    // the sink's accept rate
)

// kinds lists the runs in report order, with what each one is.
var kinds = []struct{ name, title string }{
	{runA, "A: stock Telegraf, kafka_consumer + outputs.http"},
	{runB, "B: stock Telegraf, execd telegraf-kafka-consumer + telegraf-cnosdb"},
	{runBAck, "B-ack: B with ack_socket (offsets committed once CnosDB has the lines), max_undelivered_messages = 20000"},
	{runInput, "input alone: telegraf-kafka-consumer, stdout drained and discarded"},
	{runRouting, "ceiling: Telegraf's execd routing (replayed line protocol in, discarded out)"},
	{runSarama, "ceiling: raw sarama consumer to nowhere"},
	{runKcat, "ceiling: kcat to /dev/null"},
	{runSink, "ceiling: the sink's accept rate (pre-made line protocol, 2 connections)"},
}

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
	elapsed  time.Duration // start until all n were seen, or until giving up
	failure  string        // empty when all n arrived in time
	cpu      time.Duration // CPU of the pipeline's processes until all n were seen; 0 when not measured
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

// cpuPerMillion is CPU seconds per million messages, 0 when not measured.
func (r result) cpuPerMillion() float64 { return r.cpu.Seconds() / float64(r.n) * 1e6 }
