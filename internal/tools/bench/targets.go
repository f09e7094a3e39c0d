package main

import "fmt"

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

// rssLimitMiB is the most each plugin process may hold with a full backlog.
const (
	rssLimitMiB    = 100
	rssBacklog     = 1_000_000
	pluginInput    = "telegraf-kafka-consumer"
	pluginOutput   = "telegraf-cnosdb"
	minThroughput  = 2.0
	maxCPUShare    = 0.5
	minRoutingPart = 0.8
	minInputPart   = 0.7
)

// targets checks the medians of every workload against the goals.
func (r *report) targets() []target {
	var ts []target
	for _, wi := range r.workloads {
		w := wi.w.name
		a, b := r.stats(w, runA), r.stats(w, runB)
		routing, input, sarama := r.stats(w, runRouting), r.stats(w, runInput), r.stats(w, runSarama)
		ts = append(ts,
			ratioTarget(fmt.Sprintf("%s: B/A throughput >= %.1f", w, minThroughput), b.rate, a.rate, ">=", minThroughput,
				"B %.0f msg/s, A %.0f msg/s"),
			ratioTarget(fmt.Sprintf("%s: B's CPU per message <= %.1f x A's", w, maxCPUShare), b.cpu, a.cpu, "<=", maxCPUShare,
				"B %.2f CPU s per million, A %.2f"),
			ratioTarget(fmt.Sprintf("%s: B >= %.0f%% of Telegraf's execd routing ceiling", w, 100*minRoutingPart), b.rate, routing.rate, ">=", minRoutingPart,
				"B %.0f msg/s, ceiling %.0f msg/s"),
			ratioTarget(fmt.Sprintf("%s: input alone >= %.0f%% of the raw sarama consume rate", w, 100*minInputPart), input.rate, sarama.rate, ">=", minInputPart,
				"input alone %.0f msg/s, sarama %.0f msg/s"),
		)
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
	}
	return ts
}

// ratioTarget compares x/y with limit; figures formats x and y.
func ratioTarget(name string, x, y float64, op string, limit float64, figures string) target {
	t := target{name: name}
	if x == 0 || y == 0 {
		t.figure = "not measured: a run it needs did not finish"
		return t
	}
	v := x / y
	t.met = (op == ">=" && v >= limit) || (op == "<=" && v <= limit)
	t.figure = fmt.Sprintf("%.2f ("+figures+")", v, x, y)
	return t
}
