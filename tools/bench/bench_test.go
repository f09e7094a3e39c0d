package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestWideWorkloadLineProtocol(t *testing.T) {
	w := workloads["wide"]
	var total int
	for i := range 1000 {
		total += len(w.message(nil, i))
	}
	avg := total / 1000
	require.True(t, avg > 300 && avg < 450, "a wide message is about 400 bytes, not %d", avg)

	path := filepath.Join(t.TempDir(), "wide.lp")
	require.NoError(t, writeLineProtocol(w, 1000, path))
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	times := map[string]bool{}
	for sc.Scan() {
		line := sc.Text()
		head, _, _ := strings.Cut(line, " ")
		for _, tag := range []string{"region=", "sensor_type=", "station="} {
			require.Contains(t, head, tag, "tags are parsed into the series key: %s", line)
		}
		fields := strings.Fields(line)
		require.Len(t, fields, 3, line)
		require.Equal(t, 12, strings.Count(fields[1], "="), "12 fields: %s", line)
		times[fields[2]] = true
	}
	require.NoError(t, sc.Err())
	require.Len(t, times, 1000, "every message has its own time, so that no rows collapse")
	require.Contains(t, strings.Join(keys(times), " "), "1767225600000000000", "the first message's time comes from ts")
}

func keys(m map[string]bool) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

func TestSensorLineProtocolHasNoTags(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sensor.lp")
	require.NoError(t, writeLineProtocol(workloads["sensor"], 3, path))
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	require.Len(t, lines, 3)
	fields := strings.Fields(lines[0])
	require.Len(t, fields, 3, lines[0])
	require.Equal(t, table, fields[0], "no tags")
	require.ElementsMatch(t, []string{"pressure=980", "temperature=10", "visibility=0"}, strings.Split(fields[1], ","))
}

func TestReplayThenDiscardCountsEveryLine(t *testing.T) {
	dir := t.TempDir()
	lp := filepath.Join(dir, "in.lp")
	require.NoError(t, writeLineProtocol(workloads["sensor"], 5000, lp))
	var replayed bytes.Buffer
	require.NoError(t, replay(lp, &replayed, strings.NewReader("")))

	progress := filepath.Join(dir, "progress")
	n, err := readProgress(progress)
	require.NoError(t, err)
	require.Zero(t, n, "no progress file yet reads as 0")
	require.NoError(t, discard(progress, &replayed))
	n, err = readProgress(progress)
	require.NoError(t, err)
	require.EqualValues(t, 5000, n)
}

func TestLineCounterLeavesOutStats(t *testing.T) {
	var c lineCounter
	c.drain(strings.NewReader(table + " a=1 1\n" + table + "_stats,partition=0 messages=1i 2\n" + table + ",x=y a=2 3\n"))
	require.EqualValues(t, 2, c.n.Load())
}

func TestRateAt(t *testing.T) {
	tl := []sample{{250 * time.Millisecond, 0}, {500 * time.Millisecond, 100}, {time.Second, 1000}, {1500 * time.Millisecond, 2000}, {2 * time.Second, 2000}}
	require.InDelta(t, 200, rateAt(tl, 1), 1e-9, "from the start while less than a window has passed")
	require.InDelta(t, 1000, rateAt(tl, 2), 1e-9)
	require.InDelta(t, 1900, rateAt(tl, 3), 1e-9, "over the last second: (2000-100)/1s")
	require.InDelta(t, 1000, rateAt(tl, 4), 1e-9)
}

func TestWritePlot(t *testing.T) {
	path := filepath.Join(t.TempDir(), "plot.png")
	tl := []sample{{250 * time.Millisecond, 0}, {time.Second, 5000}, {2 * time.Second, 10000}}
	require.NoError(t, writePlot(path, workloads["sensor"], 10000, []result{
		{workload: "sensor", kind: runAArticle, round: 1, timeline: tl},
		{workload: "sensor", kind: runATuned, round: 1, timeline: tl},
		{workload: "sensor", kind: runB, round: 1, timeline: tl[:2]},
	}))
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.True(t, bytes.HasPrefix(b, []byte("\x89PNG")), "a PNG")
}

func TestDatabaseNamesNeedNoQuoting(t *testing.T) {
	for _, k := range kinds {
		name := databaseName("wide", k.name, 3)
		if !regexp.MustCompile(`^[a-z][a-z0-9_]*$`).MatchString(name) {
			t.Errorf("run %s: database %q would need quoting in CnosDB's SQL", k.name, name)
		}
	}
	if got := databaseName("sensor", runATuned, 1); got != "bench_sensor_a_tuned_1" {
		t.Errorf("databaseName = %q", got)
	}
}

// A benchmark of the output alone only: its table, its ratios and no pipeline's.
func TestReportOfTheOutputAlone(t *testing.T) {
	const n = 300_000
	run := func(kind string, seconds float64) result {
		res := result{workload: "sensor", kind: kind, round: 1, n: n, counted: n, final: -1,
			elapsed: time.Duration(seconds * float64(time.Second)), steady: n / (seconds - 0.1),
			procCPU: map[string]time.Duration{pluginOutput: time.Second}, cpu: time.Second,
			writes: writeCounts{requests: 150, lines: n, accepted: n}, peakKB: map[string]int64{pluginOutput: 30 << 10}}
		return res
	}
	r := &report{opts: options{n: n, rounds: 1, only: []string{runOutput1, runOutputDefault}, poll: time.Second},
		sinkKind: sinkCost, outputSink: "a 4-core dev server", outputSinkKind: sinkCost,
		workloads: []workloadInfo{{w: workloads["sensor"]}}, runs: []result{run(runOutput1, 1.6), run(runOutputDefault, 0.7)}}
	md := r.markdown()
	require.Contains(t, md, "- output alone's sink: a 4-core dev server\n")
	require.Contains(t, md, "each round runs no pipeline, then the output alone (output-1, output-default, backwards in even rounds)")
	require.Contains(t, md, "| output-1 | 1 | 1 of 1 | 200000 | 187500 | 187500 | 3.33 | 2000 | 93.8 | telegraf-cnosdb 30.0 |")
	require.Contains(t, md, fmt.Sprintf("| output-default | %d | 1 of 1 | 500000 |", defaultInFlight()))
	require.Contains(t, md, fmt.Sprintf("- output alone, default max_in_flight (%d) / max_in_flight = 1, lines/s while flowing (first to last accepted): 2.50\n", defaultInFlight()))
	require.NotContains(t, md, "B / A-tuned", "no pipeline ran")
	require.NotContains(t, md, "A-tuned messages/s while flowing, cost-model sink", "nor its targets")
	require.Contains(t, md, "- [met] sensor: output alone, default max_in_flight")
	require.NotContains(t, md, "plot-sensor.png", "no pipeline, no plot")
	require.NotContains(t, md, "| output-1 | 1 of 1 |", "the output alone is not in the pipelines' table")
}
