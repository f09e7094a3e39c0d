package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// benchRun is a finished run of n messages taking seconds, with CPU per process and
// the writes the proxy counted; what the targets see of it.
func benchRun(w, kind string, round, n int, seconds float64, cpu map[string]time.Duration, requests int64) result {
	res := result{workload: w, kind: kind, round: round, n: n, counted: int64(n), final: int64(n),
		elapsed: time.Duration(seconds * float64(time.Second)), procCPU: cpu,
		writes: writeCounts{requests: requests, lines: int64(n)}, peakKB: map[string]int64{}}
	for _, d := range cpu {
		res.cpu += d
	}
	// A steady flow: 1% after a tenth of the time, 99% after nine tenths.
	at := func(f float64) time.Duration { return time.Duration(f * seconds * float64(time.Second)) }
	res.timeline = []sample{{at(0.1), int64(n / 100)}, {at(0.9), int64(n * 99 / 100)}, {at(1), int64(n)}}
	return res
}

func targetStates(r *report) map[string]bool {
	got := map[string]bool{}
	for _, tg := range r.targets() {
		got[tg.name] = tg.met
	}
	return got
}

func TestTargets(t *testing.T) {
	const n = 1_000_000
	batch := writerBatchSize()
	// 95% of the writer's batch size per request.
	b := benchRun("sensor", runB, 1, n, 10, map[string]time.Duration{
		procTelegraf: 2 * time.Second, pluginInput: 2 * time.Second, pluginOutput: time.Second}, int64(float64(n)/(0.95*float64(batch))))
	b.peakKB = map[string]int64{pluginInput: 50 << 10, pluginOutput: 120 << 10}
	r := &report{opts: options{n: n, backlog: true}, sinkKind: sinkCost, workloads: []workloadInfo{{w: workloads["sensor"]}}, runs: []result{
		benchRun("sensor", runAArticle, 1, n, 100, map[string]time.Duration{procTelegraf: 20 * time.Second}, 1000),
		benchRun("sensor", runATuned, 1, n, 21, map[string]time.Duration{procTelegraf: 8 * time.Second}, 200),
		b,
	}}
	require.Equal(t, map[string]bool{
		"sensor: B >= 2.0 x A-tuned messages/s while flowing, cost-model sink":                                                                               true,  // 2.1
		"sensor: B's total CPU per message <= 0.5 x A-tuned's, cost-model sink":                                                                              false, // 5/8
		"sensor: B >= 1.5 x A-tuned messages/s while flowing, into a real CnosDB":                                                                            false, // not measured
		fmt.Sprintf("sensor: B's lines per request >= 90%% of telegraf-cnosdb's default metric_batch_size (%d)", batch):                                      true,  // 95%
		"sensor: each plugin process <= 100 MiB RSS with a 1000000-message backlog, default settings":                                                        false, // output 120 MiB
		fmt.Sprintf("sensor: backlog of 1000000 messages (100.0x metric_buffer_limit) with defaults: all stored, >= %.0f lines/request", 0.9*float64(batch)): true,
	}, targetStates(r))
	for _, tg := range r.targets() {
		switch tg.name {
		case "sensor: B >= 1.5 x A-tuned messages/s while flowing, into a real CnosDB":
			require.Equal(t, "not measured: CNOSDB_URL not set", tg.figure)
		case "sensor: B >= 2.0 x A-tuned messages/s while flowing, cost-model sink":
			// Both measures of speed.
			require.Equal(t, "2.10 (B 122500 msg/s, A-tuned 58333 msg/s); start to all N: 2.10 (B 100000 msg/s, A-tuned 47619 msg/s)", tg.figure)
		}
	}
}

func TestTargetsNeedTheirSink(t *testing.T) {
	const n = 20_000
	runs := []result{
		benchRun("wide", runATuned, 1, n, 2, map[string]time.Duration{procTelegraf: time.Second}, 4),
		benchRun("wide", runB, 1, n, 1, map[string]time.Duration{procTelegraf: time.Second}, 4),
	}
	r := &report{opts: options{n: n}, sinkKind: sinkCountOnly, workloads: []workloadInfo{{w: workloads["wide"]}}, runs: runs}
	for _, tg := range r.targets() {
		switch tg.name {
		case "wide: B >= 2.0 x A-tuned messages/s while flowing, cost-model sink":
			require.False(t, tg.met, "a count-only sink does not check a cost-model target")
			require.Contains(t, tg.figure, "not measured: the sink is count-only")
		case "wide: B >= 1.5 x A-tuned messages/s while flowing, into a real CnosDB":
			require.False(t, tg.met)
		}
		require.NotContains(t, tg.name, "backlog of", "no backlog check unless asked for")
	}
	r.sinkKind = sinkReal
	require.True(t, targetStates(r)["wide: B >= 1.5 x A-tuned messages/s while flowing, into a real CnosDB"])
}

func TestBacklogTarget(t *testing.T) {
	batch := 0.9 * float64(writerBatchSize())
	name := fmt.Sprintf("sensor: backlog of 50000 messages (5.0x metric_buffer_limit) with defaults: all stored, >= %.0f lines/request", batch)
	run := func(final int64, failure string) result {
		res := benchRun("sensor", runB, 1, 50_000, 5, map[string]time.Duration{procTelegraf: time.Second}, int64(50_000/batch))
		res.final, res.failure = final, failure
		return res
	}
	check := func(runs ...result) target {
		r := &report{opts: options{n: 50_000, backlog: true}, sinkKind: sinkCost, workloads: []workloadInfo{{w: workloads["sensor"]}}, runs: runs}
		for _, tg := range r.targets() {
			if tg.name == name {
				return tg
			}
		}
		t.Fatalf("no target %q", name)
		return target{}
	}
	require.True(t, check(run(50_000, ""), run(50_000, "")).met)
	tg := check(run(50_000, ""), run(50_012, ""))
	require.False(t, tg.met, "duplicates are not 'every message stored once'")
	require.Contains(t, tg.figure, "50000 to 50012 counted once Telegraf had stopped")
	tg = check(run(41_000, "stalled: nothing more arrived for 1m0s"))
	require.False(t, tg.met)
	require.Contains(t, tg.figure, "0 of 1 B runs finished")

	small := &report{opts: options{n: 20_000, backlog: true}, workloads: []workloadInfo{{w: workloads["sensor"]}}}
	for _, tg := range small.targets() {
		if tg.name == fmt.Sprintf("sensor: backlog of 20000 messages (2.0x metric_buffer_limit) with defaults: all stored, >= %.0f lines/request", batch) {
			require.False(t, tg.met)
			require.Contains(t, tg.figure, "fewer than 5 x Telegraf's default metric_buffer_limit")
			return
		}
	}
	t.Fatal("-backlog with a small topic still reports the target")
}

func TestMediansOverRounds(t *testing.T) {
	var runs []result
	for round, seconds := range []float64{10, 30, 20} {
		runs = append(runs, benchRun("sensor", runB, round+1, 100_000, seconds,
			map[string]time.Duration{pluginOutput: time.Duration(round+1) * time.Second}, int64(20*(round+1))))
	}
	st := (&report{runs: runs}).stats("sensor", runB)
	require.Equal(t, 3, st.finished)
	require.InDelta(t, 5000, st.rate, 1e-9, "the median of 10000, 3333 and 5000 msg/s")
	require.InDelta(t, 20, st.procCPU[pluginOutput], 1e-9, "the median of 10, 20 and 30 s per million")
	require.InDelta(t, 2500, st.linesPerRequest, 1e-9, "the median of 5000, 2500 and 1667")
	require.True(t, st.allStored)
}

// outputRun is a finished output-alone run whose lines flowed at steady lines/s.
func outputRun(w, kind string, round, n int, steady float64) result {
	res := benchRun(w, kind, round, n, float64(n)/steady+0.1, map[string]time.Duration{pluginOutput: time.Second}, int64(n/writerBatchSize()))
	res.steady = steady
	return res
}

func TestInFlightTarget(t *testing.T) {
	const n = 300_000
	name := fmt.Sprintf("sensor: output alone, default max_in_flight (%d) >= 1.7 x max_in_flight = 1, lines/s while flowing, 4-core cost-model sink", defaultInFlight())
	check := func(kind string, runs ...result) target {
		t.Helper()
		r := &report{opts: options{n: n, outputAlone: true}, sinkKind: sinkCost, outputSinkKind: kind,
			workloads: []workloadInfo{{w: workloads["sensor"]}}, runs: runs}
		for _, tg := range r.targets() {
			if strings.Contains(tg.name, "output alone") {
				return tg
			}
		}
		t.Fatal("no output-alone target")
		return target{}
	}
	tg := check(sinkCost, outputRun("sensor", runOutput1, 1, n, 250_000), outputRun("sensor", runOutputDefault, 1, n, 500_000))
	require.Equal(t, name, tg.name)
	require.True(t, tg.met)
	require.Equal(t, "2.00 (default 500000 lines/s, max_in_flight = 1 250000 lines/s)", tg.figure)
	require.Equal(t, "[met] "+name+": 2.00 (default 500000 lines/s, max_in_flight = 1 250000 lines/s)", tg.String())

	tg = check(sinkCost, outputRun("sensor", runOutput1, 1, n, 250_000), outputRun("sensor", runOutputDefault, 1, n, 400_000))
	require.False(t, tg.met, "1.6 x")
	require.True(t, strings.HasPrefix(tg.String(), "[NOT MET] "), tg.String())
	require.Contains(t, tg.figure, "1.60 (default 400000 lines/s")

	tg = check(sinkCost, outputRun("sensor", runOutputDefault, 1, n, 500_000))
	require.False(t, tg.met)
	require.Contains(t, tg.figure, "not measured", "max_in_flight = 1 did not run")

	tg = check(sinkReal, outputRun("sensor", runOutput1, 1, n, 100_000), outputRun("sensor", runOutputDefault, 1, n, 180_000))
	require.True(t, tg.met)
	require.Contains(t, tg.name, "into a real CnosDB (CNOSDB_URL)", "the cores setting does not apply to a real CnosDB")

	r := &report{opts: options{n: n}, sinkKind: sinkCost, workloads: []workloadInfo{{w: workloads["sensor"]}}}
	for _, tg := range r.targets() {
		require.NotContains(t, tg.name, "output alone", "no output-alone target unless it ran")
	}
}

func TestOutputAloneMedians(t *testing.T) {
	const n = 300_000
	var runs []result
	for round, steady := range []float64{200_000, 300_000, 250_000} {
		runs = append(runs, outputRun("wide", runOutput1, round+1, n, steady))
	}
	st := (&report{runs: runs}).stats("wide", runOutput1)
	require.InDelta(t, 250_000, st.steady, 1e-9, "the median while flowing")
	require.InDelta(t, float64(writerBatchSize()), st.linesPerRequest, 1)
	require.InDelta(t, 1e6/n, st.procCPU[pluginOutput], 1e-9, "1 s of CPU over n lines, per million")
}

func TestBoundsFromTheCeilings(t *testing.T) {
	const n = 1_000_000
	r := &report{opts: options{n: n, ceilings: true, only: []string{runATuned, runB}}, sinkKind: sinkCost,
		workloads: []workloadInfo{{w: workloads["wide"]}}, runs: []result{
			benchRun("wide", runATuned, 1, n, 20, map[string]time.Duration{procTelegraf: 30 * time.Second}, 200),
			benchRun("wide", runB, 1, n, 15, map[string]time.Duration{procTelegraf: 12 * time.Second}, 500),
			// Telegraf's routing takes 13 of the 15 CPU seconds; the replaying and
			// discarding processes are the benchmark's, not a pair's.
			benchRun("wide", runRouting, 1, n, 10, map[string]time.Duration{procTelegraf: 13 * time.Second, "bench -replay": 2 * time.Second}, 0),
			benchRun("wide", runSarama, 1, n, 2, map[string]time.Duration{"sarama": 2 * time.Second}, 0),
		}}
	got := map[string]float64{}
	for _, rt := range r.ratios("wide") {
		got[rt.name] = rt.value
	}
	require.InDelta(t, 2.0, got["bound: Telegraf's execd routing ceiling / A-tuned, messages/s while flowing (the most an execd pair can reach)"], 1e-9)
	require.InDelta(t, 0.5, got["bound: (Telegraf's CPU in the routing ceiling + raw sarama's) / A-tuned's CPU per message (the least an execd pair can spend)"], 1e-9)
}
