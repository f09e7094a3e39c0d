package main

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// workloadInfo is what the report says about one workload's topic.
type workloadInfo struct {
	w           workload
	avgBytes    float64
	produceRate float64
}

// report gathers the runs and renders them as Markdown.
type report struct {
	opts       options
	started    time.Time
	took       time.Duration
	machine    string
	versions   string
	sink       string
	sinkKind   string // sinkCost, sinkCountOnly or sinkReal
	dbMeasured bool   // the database's CPU is measured (CNOSDB_PID)
	workloads  []workloadInfo
	runs       []result
	fresh      []freshResult

	// Where the output-alone runs write, "" when there are none.
	outputSink, outputSinkKind string
}

// shownProcs are the processes whose CPU the tables show in a column of their own.
var shownProcs = []string{procTelegraf, pluginInput, pluginOutput}

// stats sums up the runs of one kind on one workload.
type stats struct {
	total, finished int
	rates           []float64 // finished runs, in round order
	flowRates       []float64
	perRound        []string
	// Medians over finished runs; 0 when none. cpu is the total per million
	// messages, procCPU the same per process, db the database's.
	rate, cpu, db      float64
	flow               float64 // median flowRate
	procCPU            map[string]float64
	linesPerRequest    float64
	requestRate        float64
	steady             float64 // median of result.steady
	peakMiB            map[string]float64
	allStored          bool  // every run finished, and counted exactly N once Telegraf had stopped
	minFinal, maxFinal int64 // over the runs counted after stopping; -1 when none
}

func (r *report) stats(workload, kind string) stats {
	st := stats{peakMiB: map[string]float64{}, procCPU: map[string]float64{}, allStored: true, minFinal: -1, maxFinal: -1}
	var cpus, dbs, lpr, rps, steady []float64
	procs := map[string][]float64{}
	for _, res := range r.runs {
		if res.workload != workload || res.kind != kind {
			continue
		}
		st.total++
		if res.final >= 0 {
			if st.minFinal < 0 || res.final < st.minFinal {
				st.minFinal = res.final
			}
			st.maxFinal = max(st.maxFinal, res.final)
		}
		if !res.ok() || res.final != int64(res.n) {
			st.allStored = false
		}
		if !res.ok() {
			st.perRound = append(st.perRound, "failed")
			continue
		}
		st.finished++
		st.rates = append(st.rates, res.rate())
		st.flowRates = append(st.flowRates, res.flowRate())
		st.perRound = append(st.perRound, fmt.Sprintf("%.0f", res.rate()))
		if res.steady > 0 {
			steady = append(steady, res.steady)
		}
		if res.cpu > 0 {
			cpus = append(cpus, res.cpuPerMillion())
		}
		if res.dbCPU > 0 {
			dbs = append(dbs, res.perMillion(res.dbCPU))
		}
		for name, d := range res.procCPU {
			procs[name] = append(procs[name], res.perMillion(d))
		}
		if res.writes.requests > 0 {
			lpr = append(lpr, res.linesPerRequest())
			rps = append(rps, res.requestRate())
		}
		for name, kb := range res.peakKB {
			st.peakMiB[name] = max(st.peakMiB[name], float64(kb)/1024)
		}
	}
	if st.total == 0 {
		st.allStored = false
	}
	for name, xs := range procs {
		st.procCPU[name] = median(xs)
	}
	st.rate, st.cpu, st.db, st.steady = median(st.rates), median(cpus), median(dbs), median(steady)
	st.flow = median(st.flowRates)
	st.linesPerRequest, st.requestRate = median(lpr), median(rps)
	return st
}

func (r *report) markdown() string {
	var b strings.Builder
	r.header(&b)
	if !r.opts.workloadRuns() {
		// Only freshness runs: none of the throughput runs' figures apply.
		r.freshOnlyScope(&b)
		r.freshSection(&b)
		r.targetsSection(&b)
		return b.String()
	}
	r.scope(&b)
	r.howMeasured(&b)
	r.kindsRun(&b)
	b.WriteString("\n" + tunedWhy + "\n")

	for _, wi := range r.workloads {
		r.workloadSection(&b, wi)
	}
	r.freshSection(&b)
	r.targetsSection(&b)
	r.runsSection(&b)
	return b.String()
}

// header is the report's title and where it was measured.
func (r *report) header(b *strings.Builder) {
	fmt.Fprintf(b, "# End-to-end benchmark, %s\n\n", r.started.Format(time.RFC3339))
	fmt.Fprintf(b, "- machine: %s\n", r.machine)
	fmt.Fprintf(b, "- versions: %s\n", r.versions)
	fmt.Fprintf(b, "- sink: %s\n", r.sink)
	if r.outputSink != "" {
		fmt.Fprintf(b, "- output alone's sink: %s\n", r.outputSink)
	}
}

// freshOnlyScope says what a benchmark of the freshness runs alone ran.
func (r *report) freshOnlyScope(b *strings.Builder) {
	o := r.opts
	fmt.Fprintf(b, "- %d round(s) of the freshness runs only (%s, backwards in even rounds), a fresh topic, consumer group and database per run; whole benchmark took %v\n\n",
		o.rounds, strings.Join(o.freshRuns(), ", "), r.took.Round(time.Second))
	for _, kind := range o.freshRuns() {
		fmt.Fprintf(b, "  - %s\n", kindTitle(kind))
	}
	b.WriteString("\n")
}

// scope says how many messages and rounds the benchmark ran, and what each round ran.
func (r *report) scope(b *strings.Builder) {
	o := r.opts
	fmt.Fprintf(b, "- %d messages per workload, %d round(s); each round runs %s; a fresh consumer group and database per run; whole benchmark took %v\n",
		o.n, o.rounds, roundRuns(o), r.took.Round(time.Second))
}

// roundRuns lists the runs of a round, in an odd round's order.
func roundRuns(o options) string {
	var then []string
	if o.ceilings {
		then = append(then, "the input alone")
	}
	if outputs := o.outputRuns(); len(outputs) > 0 {
		then = append(then, "the output alone ("+strings.Join(outputs, ", ")+", backwards in even rounds)")
	}
	if o.ceilings {
		then = append(then, "the ceilings")
	}
	if fresh := o.freshRuns(); len(fresh) > 0 {
		then = append(then, "after every workload, the freshness runs ("+strings.Join(fresh, ", ")+", backwards in even rounds)")
	}
	runs := "no pipeline"
	if pipelines := o.pipelines(); len(pipelines) > 0 {
		runs = strings.Join(pipelines, ", ") + " (backwards in even rounds)"
	}
	if len(then) > 0 {
		runs += ", then " + strings.Join(then, ", ")
	}
	return runs
}

// howMeasured says what each figure of the tables is, for the runs that were made.
func (r *report) howMeasured(b *strings.Builder) {
	o := r.opts
	b.WriteString("- messages/s: from starting the pipeline until all N are counted where they end (the sink for the pipelines, sampled every " +
		fmt.Sprint(o.poll) + "); while flowing: from 1% to 99% of N counted, which leaves out starting the processes and joining the group, and the wait of the last, partial batch for Telegraf's flush_interval, both the same whatever the pipeline's speed; the speed targets use it\n")
	b.WriteString("- CPU s per million messages: utime+stime of each process at the moment the N-th message was counted; total: every process of the run (Telegraf and its children)")
	if r.dbMeasured {
		b.WriteString(" and the database")
	}
	b.WriteString("; the benchmark's own process (its counting proxy")
	if r.sinkKind != sinkReal {
		b.WriteString(", the in-process dev server")
	}
	b.WriteString(") is not counted\n")
	b.WriteString("- lines per request and requests/s: POST " + writePath + " requests and the lines of their bodies as the counting proxy in front of the sink saw them, from the run's start until the N-th message was counted; the same proxy for every run and sink\n")
	b.WriteString("- peak RSS: VmHWM of each process, the largest over the rounds\n")
	b.WriteString("- after stop: the sink's count once Telegraf has stopped, duplicates included where the sink counts them; seconds to 99%: when 99% of N had arrived, which tells a pipeline's rate from the wait for its last, partial batch (up to flush_interval)\n")
	if o.ceilings {
		b.WriteString("- input alone: its stdout is drained and thrown away by the benchmark (as /dev/null would, but counting lines), timed from its start to its N-th line; the raw sarama ceiling is timed from connecting\n")
		b.WriteString("- routing ceiling: `bench -replay` writes the workload's line protocol (made by Telegraf's own JSON parser and influx serializer) to Telegraf's execd input, `bench -discard` counts it out of the execd output; B's execd and agent settings, with a buffer for the whole topic\n")
		fmt.Fprintf(b, "- sink ceiling: the same line protocol posted in batches of %d lines over %d connections\n", writerBatchSize(), sinkConnections)
	}
	if len(o.outputRuns()) > 0 {
		b.WriteString("- output alone: telegraf-cnosdb by itself with its defaults (but for max_in_flight = 1 in " + runOutput1 + "), its stdin a pipe the benchmark fills with the line protocol of the routing ceiling as fast as it reads, kept open until the N-th line is accepted as Telegraf's execd keeps it; " +
			"a line is accepted when the sink's 2xx answer to its write passes the counting proxy; lines/s while flowing: from the first accepted write to the one that took the N-th line, the first write's lines left out; start to all N: from starting the process; CPU: telegraf-cnosdb's own\n")
	}
	b.WriteString("\n")
}

// kindsRun lists what each kind of run the benchmark made is.
func (r *report) kindsRun(b *strings.Builder) {
	o := r.opts
	for _, k := range kinds {
		if slices.Contains(pipelineKinds, k.name) || o.ceilings && !slices.Contains(freshKinds, k.name) ||
			slices.Contains(o.outputRuns(), k.name) || slices.Contains(o.freshRuns(), k.name) {
			fmt.Fprintf(b, "  - %s\n", k.title)
		}
	}
}

// targetsSection lists the targets and whether each was met.
func (r *report) targetsSection(b *strings.Builder) {
	b.WriteString("## Targets\n\n")
	for _, t := range r.targets() {
		fmt.Fprintf(b, "- %s\n", t)
	}
}

// runsSection is the table of every run, in the order they ran.
func (r *report) runsSection(b *strings.Builder) {
	b.WriteString("\n## Runs\n\n")
	b.WriteString("| workload | run | round | result | counted | after stop | seconds | seconds to 99% | messages/s | CPU s | CPU s per million | lines per request | requests/s | peak RSS MiB per process |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, res := range r.runs {
		result := "ok"
		if !res.ok() {
			result = "FAILED: " + res.failure
		}
		peak := map[string]float64{}
		for name, kb := range res.peakKB {
			peak[name] = float64(kb) / 1024
		}
		final := "–"
		if res.final >= 0 {
			final = fmt.Sprint(res.final)
		}
		fmt.Fprintf(b, "| %s | %s | %d | %s | %d | %s | %.2f | %s | %.0f | %s | %s | %s | %s | %s |\n", res.workload, res.kind, res.round,
			strings.ReplaceAll(result, "|", `\|`), res.counted, final, res.elapsed.Seconds(), orDash(res.timeTo(0.99).Seconds(), "%.2f"), res.rate(),
			orDash((res.cpu+res.dbCPU).Seconds(), "%.2f"), orDash(res.cpuPerMillion(), "%.2f"),
			orDash(res.linesPerRequest(), "%.0f"), orDash(res.requestRate(), "%.1f"), peaks(peak))
	}
}

// tunedWhy says what A-tuned changes in the article's pipeline and why.
const tunedWhy = `A-tuned is the article's pipeline with what an expert would change for a backlog:

- ` + "`metric_batch_size = 5000`" + ` (default 1000): a CnosDB write costs about 0.55 ms whatever its size, so fewer, larger requests.
- ` + "`metric_buffer_limit = 100000`" + ` (default 10000): room for 20 batches while a write is slow, so that none is dropped.
- ` + "`flush_interval = \"1s\"`" + ` (default 10s): Telegraf writes a full batch at once, but the last, partial one would wait up to 10 s.
- ` + "`max_undelivered_messages = 10000`" + ` in kafka_consumer (default 1000): at least twice metric_batch_size, so that the next batch fills while one is being written; with 1000 in flight a batch of 5000 would never fill and every write would wait for the flush interval.
- ` + "`use_batch_format = true`" + ` and ` + "`content_encoding = \"identity\"`" + ` in outputs.http, as the article has them: one request per batch rather than per metric, and no gzip, which CnosDB refuses since Telegraf streams it without a Content-Length.
`

// workloadSection is one workload's table of medians and its ratios.
func (r *report) workloadSection(b *strings.Builder, wi workloadInfo) {
	w := wi.w
	if wi.produceRate > 0 {
		fmt.Fprintf(b, "## Workload %s\n\n%s; preloaded at %.0f msg/s, producer compression %s.\n\n",
			w.name, w.describe(wi.avgBytes), wi.produceRate, r.opts.compression)
	} else {
		fmt.Fprintf(b, "## Workload %s\n\n%s; no topic: only the output alone ran, from its line protocol.\n\n", w.name, w.describe(0))
	}
	cols := []string{"run", "finished", "messages/s while flowing, 1% to 99% (median)", "messages/s, start to all N (median)", "messages/s per round (start to all N)"}
	for _, p := range shownProcs {
		cols = append(cols, "CPU s/M "+p)
	}
	if r.dbMeasured {
		cols = append(cols, "CPU s/M database")
	}
	cols = append(cols, "CPU s/M total", "lines per request", "requests/s", "peak RSS MiB per process")
	var rows []string
	for _, k := range kinds {
		st := r.stats(w.name, k.name)
		if st.total == 0 || slices.Contains(outputAloneKinds, k.name) {
			continue
		}
		row := []string{k.name, fmt.Sprintf("%d of %d", st.finished, st.total), orDash(st.flow, "%.0f"), orDash(st.rate, "%.0f"), strings.Join(st.perRound, ", ")}
		for _, p := range shownProcs {
			row = append(row, orDash(st.procCPU[p], "%.2f"))
		}
		if r.dbMeasured {
			row = append(row, orDash(st.db, "%.2f"))
		}
		row = append(row, orDash(st.cpu, "%.2f"), orDash(st.linesPerRequest, "%.0f"), orDash(st.requestRate, "%.1f"), peaks(st.peakMiB))
		rows = append(rows, fmt.Sprintf("| %s |\n", strings.Join(row, " | ")))
	}
	if len(rows) > 0 {
		fmt.Fprintf(b, "| %s |\n|%s\n%s", strings.Join(cols, " | "), strings.Repeat("---|", len(cols)), strings.Join(rows, ""))
		b.WriteString("\nCPU s/M: CPU seconds per million messages, medians over the rounds.\n\n")
	}
	r.outputAloneSection(b, w.name)
	for _, rt := range r.ratios(w.name) {
		fmt.Fprintf(b, "- %s: %s\n", rt.name, orDash(rt.value, "%.2f"))
	}
	if r.plotted(w.name) {
		fmt.Fprintf(b, "\n![throughput over time, %s](plot-%s.png)\n", w.name, w.name)
	}
	b.WriteString("\n")
}

// outputAloneSection is the table of the output-alone runs of a workload, if any.
func (r *report) outputAloneSection(b *strings.Builder, workload string) {
	var rows []string
	for _, kind := range outputAloneKinds {
		st := r.stats(workload, kind)
		if st.total == 0 {
			continue
		}
		inFlight := defaultInFlight()
		if kind == runOutput1 {
			inFlight = 1
		}
		rows = append(rows, fmt.Sprintf("| %s | %d | %d of %d | %s | %s | %s | %s | %s | %s | %s |", kind, inFlight,
			st.finished, st.total, orDash(st.steady, "%.0f"), orDash(st.rate, "%.0f"), strings.Join(st.perRound, ", "),
			orDash(st.procCPU[pluginOutput], "%.2f"), orDash(st.linesPerRequest, "%.0f"), orDash(st.requestRate, "%.1f"), peaks(st.peakMiB)))
	}
	if len(rows) == 0 {
		return
	}
	fmt.Fprintf(b, "Output alone, into %s:\n\n", r.outputSink)
	b.WriteString("| run | max_in_flight | finished | lines/s while flowing, first to last accepted (median) | lines/s, start to all N (median) | lines/s per round (start to all N) | CPU s per million lines telegraf-cnosdb | lines per request | requests/s | peak RSS MiB |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|\n")
	b.WriteString(strings.Join(rows, "\n") + "\n\n")
}

// plotted says whether workload has a plot: one of its pipelines ran.
func (r *report) plotted(workload string) bool {
	return slices.ContainsFunc(r.runs, func(res result) bool {
		return res.workload == workload && slices.Contains(pipelineKinds, res.kind)
	})
}

// ratio is one comparison of medians.
type ratio struct {
	name  string
	value float64 // 0 when a side has no finished run
}

func div(x, y float64) float64 {
	if x == 0 || y == 0 {
		return 0
	}
	return x / y
}

// ratios compare B and A-article with A-tuned, the strongest stock pipeline, and with
// -ceilings the pipelines with the ceilings.
func (r *report) ratios(workload string) []ratio {
	med := func(kind string) stats { return r.stats(workload, kind) }
	article, tuned, b := med(runAArticle), med(runATuned), med(runB)
	var rs []ratio
	if len(r.opts.pipelines()) > 0 {
		rs = append(rs,
			ratio{"B / A-tuned messages/s while flowing (1% to 99%)", div(b.flow, tuned.flow)},
			ratio{"B / A-tuned messages/s (start to all N)", div(b.rate, tuned.rate)},
			ratio{"B / A-tuned CPU per message (total)", div(b.cpu, tuned.cpu)},
			ratio{"A-article / A-tuned messages/s", div(article.rate, tuned.rate)},
			ratio{"A-article / A-tuned CPU per message (total)", div(article.cpu, tuned.cpu)},
		)
	}
	if len(r.opts.outputRuns()) > 0 {
		one, def := med(runOutput1), med(runOutputDefault)
		rs = append(rs,
			ratio{fmt.Sprintf("output alone, default max_in_flight (%d) / max_in_flight = 1, lines/s while flowing (first to last accepted)", defaultInFlight()), div(def.steady, one.steady)},
			ratio{fmt.Sprintf("output alone, default max_in_flight (%d) / max_in_flight = 1, lines/s (start to all N)", defaultInFlight()), div(def.rate, one.rate)},
		)
	}
	if !r.opts.ceilings {
		return rs
	}
	routingTelegraf, sarama := med(runRouting).procCPU[procTelegraf], med(runSarama).cpu
	leastCPU := 0.0
	if routingTelegraf > 0 && sarama > 0 {
		leastCPU = div(routingTelegraf+sarama, tuned.cpu)
	}
	return append(rs,
		ratio{"B / Telegraf's execd routing ceiling", div(b.rate, med(runRouting).rate)},
		ratio{"B / sink accept rate", div(b.rate, med(runSink).rate)},
		ratio{"B / raw sarama consume rate", div(b.rate, med(runSarama).rate)},
		ratio{"B / kcat consume rate", div(b.rate, med(runKcat).rate)},
		ratio{"input alone / raw sarama consume rate", div(med(runInput).rate, med(runSarama).rate)},
		ratio{"input alone from its first line to its last (start-up and group join left out) / raw sarama", div(med(runInput).steady, med(runSarama).rate)},
		ratio{"A-tuned / Telegraf's execd routing ceiling", div(tuned.rate, med(runRouting).rate)},
		// What no execd pair can beat on this machine: Telegraf routing pre-made lines
		// as fast as it can, and, for CPU, Telegraf's share of that plus a bare sarama
		// consumer's, with nothing spent on decoding, acknowledging or writing.
		ratio{"bound: Telegraf's execd routing ceiling / A-tuned, messages/s while flowing (the most an execd pair can reach)", div(med(runRouting).flow, tuned.flow)},
		ratio{"bound: (Telegraf's CPU in the routing ceiling + raw sarama's) / A-tuned's CPU per message (the least an execd pair can spend)", leastCPU},
	)
}

// peaks lists peak RSS per process, largest first.
func peaks(mib map[string]float64) string {
	if len(mib) == 0 {
		return "–"
	}
	names := slices.SortedFunc(maps.Keys(mib), func(x, y string) int {
		if mib[x] != mib[y] {
			if mib[x] > mib[y] {
				return -1
			}
			return 1
		}
		return strings.Compare(x, y)
	})
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = fmt.Sprintf("%s %.1f", n, mib[n])
	}
	return strings.Join(parts, ", ")
}

// median of xs, or 0 when there are none.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(xs))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func orDash(v float64, format string) string {
	if v == 0 {
		return "–"
	}
	return fmt.Sprintf(format, v)
}
