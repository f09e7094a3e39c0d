package main

import (
	"fmt"

	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/plugins/outputs/cnosdb"
)

// target is one of the goals the benchmark checks.
type target struct {
	name   string
	met    bool
	figure string
}

func (t target) String() string {
	state := "NOT MET"
	if t.met {
		state = "met"
	}
	return fmt.Sprintf("[%s] %s: %s", state, t.name, t.figure)
}

const (
	// B against A-tuned: its rate while flowing and its CPU per message into the
	// cost-model sink, and its rate into a real CnosDB.
	goalSpeedup         = 2.0
	goalCPUShare        = 0.5
	goalSpeedupRealSink = 1.5
	// B's requests against telegraf-cnosdb's batch size.
	minBatchFill = 0.9
	// rssLimitMiB is the most each plugin process may hold with a full backlog.
	rssLimitMiB = 100
	rssBacklog  = 1_000_000
	// backlogMin is the smallest topic the backlog check takes: five times what
	// Telegraf buffers by default, so that a pipeline without flow control would
	// drop messages.
	backlogMin = 5 * defaultBufferLimit
	// With -ceilings: B against Telegraf's routing, the input against sarama.
	minRoutingPart = 0.8
	minInputPart   = 0.7
	// The output alone: what its default max_in_flight gains over one request at a
	// time, into a cost-model sink with the cores to serve them.
	minInFlightGain = 1.7
)

// writerBatchSize is telegraf-cnosdb's default metric_batch_size: the request size
// its defaults aim for.
func writerBatchSize() int { return cnosdb.New().MetricBatchSize }

// targets checks the medians of every workload against the goals.
func (r *report) targets() []target {
	var ts []target
	batch := writerBatchSize()
	for _, wi := range r.workloads {
		w := wi.w.name
		// Naming only output-alone runs in -only leaves out the pipelines' targets,
		// which could not be measured.
		if len(r.opts.pipelines()) > 0 || r.opts.ceilings {
			ts = append(ts, r.pipelineTargets(w, batch)...)
		}
		if len(r.opts.outputRuns()) > 0 {
			ts = append(ts, r.inFlightTarget(w))
		}
	}
	if len(r.opts.freshRuns()) > 0 {
		ts = append(ts, r.freshTarget())
	}
	return ts
}

// pipelineTargets checks a workload's pipelines and, with -ceilings, what is
// around them.
func (r *report) pipelineTargets(w string, batch int) []target {
	var ts []target
	tuned, b := r.stats(w, runATuned), r.stats(w, runB)

	speed := ratioTarget(fmt.Sprintf("%s: B >= %.1f x A-tuned messages/s while flowing, cost-model sink", w, goalSpeedup),
		b.flow, tuned.flow, ">=", goalSpeedup, "B %.0f msg/s, A-tuned %.0f msg/s")
	speed.figure += startToAllN(b, tuned)
	cpu := ratioTarget(fmt.Sprintf("%s: B's total CPU per message <= %.1f x A-tuned's, cost-model sink", w, goalCPUShare),
		b.cpu, tuned.cpu, "<=", goalCPUShare, "B %.2f CPU s per million, A-tuned %.2f")
	if why := r.notCostSink(); why != "" {
		speed = target{name: speed.name, figure: why}
		cpu = target{name: cpu.name, figure: why}
	}
	ts = append(ts, speed, cpu)

	onReal := ratioTarget(fmt.Sprintf("%s: B >= %.1f x A-tuned messages/s while flowing, into a real CnosDB", w, goalSpeedupRealSink),
		b.flow, tuned.flow, ">=", goalSpeedupRealSink, "B %.0f msg/s, A-tuned %.0f msg/s")
	onReal.figure += startToAllN(b, tuned)
	if b.db > 0 && tuned.db > 0 {
		onReal.figure += fmt.Sprintf("; CnosDB's CPU per million: %.2f s under B, %.2f under A-tuned", b.db, tuned.db)
	}
	if r.sinkKind != sinkReal {
		onReal = target{name: onReal.name, figure: "not measured: CNOSDB_URL not set"}
	}
	ts = append(ts, onReal)

	fill := target{name: fmt.Sprintf("%s: B's lines per request >= %.0f%% of telegraf-cnosdb's default metric_batch_size (%d)", w, 100*minBatchFill, batch)}
	if b.linesPerRequest == 0 {
		fill.figure = "not measured: no B run finished"
	} else {
		fill.met = b.linesPerRequest >= minBatchFill*float64(batch)
		fill.figure = fmt.Sprintf("%.0f lines per request (median over B's rounds), %.1f requests/s", b.linesPerRequest, b.requestRate)
	}
	ts = append(ts, fill)

	rss := target{name: fmt.Sprintf("%s: each plugin process <= %d MiB RSS with a %d-message backlog, default settings", w, rssLimitMiB, rssBacklog)}
	in, inOK := b.peakMiB[pluginInput]
	out, outOK := b.peakMiB[pluginOutput]
	if !inOK || !outOK {
		rss.figure = "not measured: no B run finished"
	} else {
		rss.met = in <= rssLimitMiB && out <= rssLimitMiB && r.opts.n >= rssBacklog
		rss.figure = fmt.Sprintf("peak over B's rounds: %s %.1f MiB, %s %.1f MiB", pluginInput, in, pluginOutput, out)
		if r.opts.n < rssBacklog {
			rss.figure += fmt.Sprintf(" (backlog only %d messages: run with the default N to check)", r.opts.n)
		}
	}
	ts = append(ts, rss)

	if r.opts.backlog {
		ts = append(ts, r.backlogTarget(w, b, batch))
	}

	if r.opts.ceilings {
		routing, input, sarama := r.stats(w, runRouting), r.stats(w, runInput), r.stats(w, runSarama)
		ts = append(ts,
			ratioTarget(fmt.Sprintf("%s: B >= %.0f%% of Telegraf's execd routing ceiling", w, 100*minRoutingPart), b.rate, routing.rate, ">=", minRoutingPart,
				"B %.0f msg/s, ceiling %.0f msg/s"),
			ratioTarget(fmt.Sprintf("%s: input alone >= %.0f%% of the raw sarama consume rate", w, 100*minInputPart), input.rate, sarama.rate, ">=", minInputPart,
				"input alone %.0f msg/s, sarama %.0f msg/s"),
		)
	}
	return ts
}

// inFlightTarget checks that the output alone with its default max_in_flight takes
// minInFlightGain times the lines per second it takes with one request in flight.
func (r *report) inFlightTarget(w string) target {
	sink := fmt.Sprintf("%d-core cost-model sink", outputAloneCores)
	if r.outputSinkKind == sinkReal {
		sink = "into a real CnosDB (CNOSDB_URL)"
	}
	def, one := r.stats(w, runOutputDefault), r.stats(w, runOutput1)
	return ratioTarget(fmt.Sprintf("%s: output alone, default max_in_flight (%d) >= %.1f x max_in_flight = 1, lines/s while flowing, %s",
		w, defaultInFlight(), minInFlightGain, sink),
		def.steady, one.steady, ">=", minInFlightGain, "default %.0f lines/s, max_in_flight = 1 %.0f lines/s")
}

// notCostSink says why the cost-model targets cannot be checked, "" when they can.
func (r *report) notCostSink() string {
	switch r.sinkKind {
	case sinkCost:
		return ""
	case sinkReal:
		return "not measured: the sink is a real CnosDB (CNOSDB_URL), not the cost model"
	default:
		return "not measured: the sink is count-only (run with -sink cost)"
	}
}

// backlogTarget checks that B with every default stores a backlog several times
// Telegraf's default buffer, every message once, in requests of nearly the writer's
// batch size.
func (r *report) backlogTarget(w string, b stats, batch int) target {
	n := r.opts.n
	t := target{name: fmt.Sprintf("%s: backlog of %d messages (%.1fx metric_buffer_limit) with defaults: all stored, >= %.0f lines/request",
		w, n, float64(n)/defaultBufferLimit, minBatchFill*float64(batch))}
	switch {
	case n < backlogMin:
		t.figure = fmt.Sprintf("not measured: the topic holds %d messages, fewer than 5 x Telegraf's default metric_buffer_limit (%d); run with -n %d or more",
			n, defaultBufferLimit, backlogMin)
		return t
	case b.total == 0:
		t.figure = "not measured: no B run"
		return t
	}
	stored := "all stored"
	if !b.allStored {
		stored = fmt.Sprintf("NOT all stored: %d of %d B runs finished", b.finished, b.total)
		if b.minFinal >= 0 {
			stored += fmt.Sprintf(", %d to %d counted once Telegraf had stopped", b.minFinal, b.maxFinal)
		}
	}
	t.met = b.allStored && b.linesPerRequest >= minBatchFill*float64(batch)
	t.figure = fmt.Sprintf("%s, %.0f lines/request", stored, b.linesPerRequest)
	return t
}

// startToAllN is the other measure of speed, from the start to all N, for a target's
// figure; "" when a side has no finished run.
func startToAllN(b, tuned stats) string {
	if b.rate == 0 || tuned.rate == 0 {
		return ""
	}
	return fmt.Sprintf("; start to all N: %.2f (B %.0f msg/s, A-tuned %.0f msg/s)", b.rate/tuned.rate, b.rate, tuned.rate)
}

// ratioTarget compares x/y with limit; figures formats x and y.
func ratioTarget(name string, x, y float64, op string, limit float64, figures string) target {
	t := target{name: name}
	if x == 0 || y == 0 {
		t.figure = "not measured: a run it needs did not run or did not finish"
		return t
	}
	v := x / y
	t.met = (op == ">=" && v >= limit) || (op == "<=" && v <= limit)
	t.figure = fmt.Sprintf("%.2f ("+figures+")", v, x, y)
	return t
}
