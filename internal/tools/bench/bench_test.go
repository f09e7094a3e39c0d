package main

import (
	"bufio"
	"bytes"
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
		{workload: "sensor", kind: runASeed, round: 1, timeline: tl},
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
