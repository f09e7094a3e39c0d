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
	opts      options
	started   time.Time
	took      time.Duration
	machine   string
	versions  string
	sink      string
	workloads []workloadInfo
	runs      []result
}

// stats sums up the runs of one kind on one workload.
type stats struct {
	total, finished int
	rates           []float64 // finished runs, in round order
	perRound        []string
	rate, cpu       float64 // medians over finished runs; 0 when none
	steady          float64 // median of result.steady
	peakMiB         map[string]float64
}

func (r *report) stats(workload, kind string) stats {
	st := stats{peakMiB: map[string]float64{}}
	var cpus, steady []float64
	for _, res := range r.runs {
		if res.workload != workload || res.kind != kind {
			continue
		}
		st.total++
		if !res.ok() {
			st.perRound = append(st.perRound, "failed")
			continue
		}
		st.finished++
		st.rates = append(st.rates, res.rate())
		st.perRound = append(st.perRound, fmt.Sprintf("%.0f", res.rate()))
		if res.steady > 0 {
			steady = append(steady, res.steady)
		}
		if res.cpu > 0 {
			cpus = append(cpus, res.cpuPerMillion())
		}
		for name, kb := range res.peakKB {
			st.peakMiB[name] = max(st.peakMiB[name], float64(kb)/1024)
		}
	}
	st.rate, st.cpu, st.steady = median(st.rates), median(cpus), median(steady)
	return st
}

func (r *report) markdown() string {
	var b strings.Builder
	o := r.opts
	fmt.Fprintf(&b, "# End-to-end benchmark, %s\n\n", r.started.Format(time.RFC3339))
	fmt.Fprintf(&b, "- machine: %s\n", r.machine)
	fmt.Fprintf(&b, "- versions: %s\n", r.versions)
	fmt.Fprintf(&b, "- sink: %s\n", r.sink)
	fmt.Fprintf(&b, "- %d messages per workload, %d round(s); each round runs A, B, then the input alone and the ceilings; a fresh consumer group and database per run; whole benchmark took %v\n",
		o.n, o.rounds, r.took.Round(time.Second))
	b.WriteString("- agent of every Telegraf run (as telegraftest.PairConfig): interval 1s, flush_interval 200ms, metric_batch_size 5000, metric_buffer_limit 1000000; the plugins run with their default settings\n")
	b.WriteString("- messages/s: from starting the pipeline until all N are counted where they end (the sink for A and B, sampled every " +
		fmt.Sprint(o.poll) + "); CPU s per million messages: utime+stime of every pipeline process (Telegraf and its children; not Kafka, not the sink) at that moment; peak RSS: VmHWM of each process, the largest over the rounds\n")
	b.WriteString("- input alone: its stdout is drained and thrown away by the benchmark (as /dev/null would, but counting lines), timed from its start to its N-th line; the raw sarama ceiling is timed from connecting\n")
	b.WriteString("- routing ceiling: `bench -replay` writes the workload's line protocol (made by Telegraf's own JSON parser and influx serializer) to Telegraf's execd input, `bench -discard` counts it out of the execd output\n")
	b.WriteString("- sink ceiling: the same line protocol posted in batches of 5000 lines over 2 connections\n\n")
	for _, k := range kinds {
		fmt.Fprintf(&b, "  - %s\n", k.title)
	}
	b.WriteString("\n")

	for _, wi := range r.workloads {
		w := wi.w
		fmt.Fprintf(&b, "## Workload %s\n\n%s; preloaded at %.0f msg/s, producer compression %s.\n\n",
			w.name, w.describe(wi.avgBytes), wi.produceRate, o.compression)
		b.WriteString("| run | finished | messages/s (median) | messages/s per round | CPU s per million messages | peak RSS MiB per process |\n")
		b.WriteString("|---|---|---|---|---|---|\n")
		for _, k := range kinds {
			st := r.stats(w.name, k.name)
			if st.total == 0 {
				continue
			}
			fmt.Fprintf(&b, "| %s | %d of %d | %s | %s | %s | %s |\n", k.name, st.finished, st.total,
				orDash(st.rate, "%.0f"), strings.Join(st.perRound, ", "), orDash(st.cpu, "%.2f"), peaks(st.peakMiB))
		}
		b.WriteString("\n")
		for _, rt := range r.ratios(w.name) {
			fmt.Fprintf(&b, "- %s: %s\n", rt.name, orDash(rt.value, "%.2f"))
		}
		fmt.Fprintf(&b, "\n![throughput over time, %s](plot-%s.png)\n\n", w.name, w.name)
	}

	b.WriteString("## Targets\n\n")
	for _, t := range r.targets() {
		fmt.Fprintf(&b, "- %s\n", t)
	}

	b.WriteString("\n## Runs\n\n")
	b.WriteString("| workload | run | round | result | counted | seconds | messages/s | CPU s | CPU s per million | peak RSS MiB per process |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|\n")
	for _, res := range r.runs {
		result := "ok"
		if !res.ok() {
			result = "FAILED: " + res.failure
		}
		peak := map[string]float64{}
		for name, kb := range res.peakKB {
			peak[name] = float64(kb) / 1024
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %s | %d | %.2f | %.0f | %s | %s | %s |\n", res.workload, res.kind, res.round,
			strings.ReplaceAll(result, "|", `\|`), res.counted, res.elapsed.Seconds(), res.rate(),
			orDash(res.cpu.Seconds(), "%.2f"), orDash(res.cpuPerMillion(), "%.2f"), peaks(peak))
	}
	return b.String()
}

// ratio is one comparison of medians.
type ratio struct {
	name  string
	value float64 // 0 when a side has no finished run
}

func (r *report) ratios(workload string) []ratio {
	med := func(kind string) stats { return r.stats(workload, kind) }
	a, b := med(runA), med(runB)
	div := func(x, y float64) float64 {
		if x == 0 || y == 0 {
			return 0
		}
		return x / y
	}
	return []ratio{
		{"B/A throughput", div(b.rate, a.rate)},
		{"B/A CPU per message", div(b.cpu, a.cpu)},
		{"B-ack/A throughput", div(med(runBAck).rate, a.rate)},
		{"B-ack/A CPU per message", div(med(runBAck).cpu, a.cpu)},
		{"B / Telegraf's execd routing ceiling", div(b.rate, med(runRouting).rate)},
		{"B / sink accept rate", div(b.rate, med(runSink).rate)},
		{"B / raw sarama consume rate", div(b.rate, med(runSarama).rate)},
		{"B / kcat consume rate", div(b.rate, med(runKcat).rate)},
		{"input alone / raw sarama consume rate", div(med(runInput).rate, med(runSarama).rate)},
		{"input alone from its first line to its last (start-up and group join left out) / raw sarama", div(med(runInput).steady, med(runSarama).rate)},
		{"A / Telegraf's execd routing ceiling", div(a.rate, med(runRouting).rate)},
	}
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
