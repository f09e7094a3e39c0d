package main

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/internal/kafkatest"
)

// report gathers the runs and renders them as Markdown.
type report struct {
	opts        options
	started     time.Time
	sink        string
	produceRate float64
	ceilingRate float64
	runs        []runResult
}

// processes are the columns of peak RSS, in pipeline order.
var processes = []string{"telegraf", "telegraf-kafka-consumer", "telegraf-cnosdb"}

func (r *report) markdown() string {
	var b strings.Builder
	o := r.opts
	fmt.Fprintf(&b, "# End-to-end benchmark, %s\n\n", r.started.Format(time.RFC3339))
	fmt.Fprintf(&b, "- machine: %s\n", machine())
	fmt.Fprintf(&b, "- Telegraf %s, Apache Kafka %s (KRaft, loopback), sink: %s\n", o.version, kafkatest.KafkaVersion, r.sink)
	fmt.Fprintf(&b, "- workload %s: %d messages, %d fields, %d partition(s), producer compression %s; preloaded at %.0f msg/s\n",
		o.workload.name, o.n, o.workload.fields, o.workload.partitions, o.compression, r.produceRate)
	if r.ceilingRate > 0 {
		fmt.Fprintf(&b, "- ceiling: a raw sarama consumer reads the topic at %.0f msg/s (no parsing, no output)\n", r.ceilingRate)
	}
	fmt.Fprintf(&b, "- A: %s; B: %s\n", pipelines[0].title, pipelines[1].title)
	b.WriteString("- agent (both, from telegraftest.PairConfig): interval 1s, flush_interval 200ms, metric_batch_size 5000, metric_buffer_limit 1000000\n")
	b.WriteString("- messages/s: Telegraf start until the sink counts all messages; CPU: utime+stime of Telegraf and its children at that moment; ")
	b.WriteString("CPU at exit: wait4's count after Telegraf stopped, shutdown included\n\n")

	b.WriteString("## Medians\n\n")
	b.WriteString("| pipeline | runs finished | messages/s | CPU s per million messages |")
	for _, p := range processes {
		fmt.Fprintf(&b, " peak RSS %s MiB |", p)
	}
	b.WriteString("\n|---|---|---|---|" + strings.Repeat("---|", len(processes)) + "\n")
	med := map[string][2]float64{}
	for _, p := range pipelines {
		var rates, cpus []float64
		peaks := map[string][]float64{}
		total := 0
		for _, res := range r.runs {
			if res.pipeline != p.name {
				continue
			}
			total++
			if !res.ok() {
				continue
			}
			rates = append(rates, res.rate())
			cpus = append(cpus, res.cpuPerMillion())
			for _, name := range processes {
				if kb, ok := res.peakKB[name]; ok {
					peaks[name] = append(peaks[name], float64(kb)/1024)
				}
			}
		}
		med[p.name] = [2]float64{median(rates), median(cpus)}
		fmt.Fprintf(&b, "| %s | %d of %d | %s | %s |", p.name, len(rates), total,
			orDash(median(rates), "%.0f"), orDash(median(cpus), "%.2f"))
		for _, name := range processes {
			fmt.Fprintf(&b, " %s |", orDash(median(peaks[name]), "%.1f"))
		}
		b.WriteString("\n")
	}
	a, bb := med["A"], med["B"]
	b.WriteString("\n")
	if a[0] > 0 && bb[0] > 0 {
		fmt.Fprintf(&b, "B/A throughput: %.2f×; B/A CPU per message: %.2f×\n\n", bb[0]/a[0], bb[1]/a[1])
	} else {
		b.WriteString("B/A: not computed, a pipeline has no finished run\n\n")
	}

	b.WriteString("## Runs\n\n")
	b.WriteString("| pipeline | round | result | counted | seconds | messages/s | CPU s | CPU s per million | CPU s at exit |")
	for _, p := range processes {
		fmt.Fprintf(&b, " peak RSS %s MiB |", p)
	}
	b.WriteString("\n|---|---|---|---|---|---|---|---|---|" + strings.Repeat("---|", len(processes)) + "\n")
	for _, res := range r.runs {
		result := "ok"
		if !res.ok() {
			result = "FAILED: " + res.failure
		}
		fmt.Fprintf(&b, "| %s | %d | %s | %d | %.1f | %.0f | %.2f | %.2f | %.2f |", res.pipeline, res.round,
			strings.ReplaceAll(result, "|", `\|`), res.counted, res.elapsed.Seconds(), res.rate(),
			res.cpu.Seconds(), res.cpuPerMillion(), res.cpuExit.Seconds())
		for _, name := range processes {
			kb, ok := res.peakKB[name]
			if !ok {
				b.WriteString(" – |")
				continue
			}
			fmt.Fprintf(&b, " %.1f |", float64(kb)/1024)
		}
		b.WriteString("\n")
	}
	return b.String()
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
