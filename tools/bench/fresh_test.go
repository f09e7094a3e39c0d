package main

import (
	"flag"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/plugins/outputs/cnosdb"
	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/testutil/telegraftest"
)

func TestFreshRunsAndTheirOrder(t *testing.T) {
	t.Setenv("BENCH_N", "")
	parse := func(args ...string) options {
		o, err := parseFlags(flag.NewFlagSet("bench", flag.ContinueOnError), args)
		require.NoError(t, err)
		return o
	}
	o := parse()
	require.Empty(t, o.freshRuns(), "a default run measures no freshness")
	require.Equal(t, 10000, o.freshRate)
	require.Equal(t, 30*time.Second, o.freshDuration)
	require.Equal(t, 5*time.Second, o.freshWarmup)

	o = parse("-freshness")
	require.Equal(t, freshKinds, o.freshRuns())
	require.Equal(t, pipelineKinds, o.pipelines(), "-freshness adds to the throughput runs")
	require.True(t, o.workloadRuns())
	require.Equal(t, []string{runATunedFresh, runBFresh}, o.freshOrder(1))
	require.Equal(t, []string{runBFresh, runATunedFresh}, o.freshOrder(2), "neither side always runs first")
	require.Equal(t, []string{runATunedFresh, runBFresh}, o.freshOrder(3))

	o = parse("-only", runATunedFresh+","+runBFresh)
	require.Empty(t, o.pipelines(), "naming only freshness runs leaves out the throughput runs")
	require.Empty(t, o.outputRuns())
	require.False(t, o.workloadRuns(), "no topic to preload")
	require.True(t, o.needsKafka())
	require.Empty(t, measurements(o, 1))

	o = parse("-only", "A-tuned,"+runBFresh)
	require.Equal(t, []string{runATuned}, o.pipelines())
	require.Equal(t, []string{runBFresh}, o.freshRuns(), "-only picks among the freshness runs too")

	for _, args := range [][]string{{"-fresh-rate", "0"}, {"-fresh-duration", "5s"}, {"-fresh-warmup", "-1s"}} {
		_, err := parseFlags(flag.NewFlagSet("bench", flag.ContinueOnError), args)
		require.Error(t, err, args)
	}
}

// A freshness run's pipelines read its own topic with the wide workload's parser,
// so that every line's time is its message's produce time, and both write it in ns:
// outputs.http names no precision (CnosDB's default, ns, and the influx serializer
// writes ns), telegraf-cnosdb's default is ns.
func TestFreshConfigsReadTheirTopicAndWriteNanoseconds(t *testing.T) {
	e := testEnv(t, telegraftest.Latest)
	e.workload = workloads[freshWorkload]
	e.topic = "bench-wide-A-tuned-fresh-1"
	dir := t.TempDir()
	path, err := tunedConfig(e, dir, "group", "db")
	require.NoError(t, err)
	conf := readTOML(t, path)
	kafka := plugin(t, conf, "inputs", "kafka_consumer")
	require.Equal(t, []any{e.topic}, kafka["topics"])
	require.Equal(t, "ts", kafka["json_time_key"])
	require.Equal(t, "unix_us", kafka["json_time_format"])
	http := plugin(t, conf, "outputs", "http")
	require.NotContains(t, http["url"], "precision")
	require.NotContains(t, http, "influx_timestamp_precision")

	_, err = pairConfig(e, dir, "group", "db")
	require.NoError(t, err)
	consumer := readTOML(t, dir+"/kafka_consumer.conf")
	require.Equal(t, []any{e.topic}, plugin(t, consumer, "inputs", "kafka_consumer")["topics"])
	writer := readTOML(t, dir+"/cnosdb.conf")
	require.NotContains(t, plugin(t, writer, "outputs", "cnosdb"), "precision")
	require.Equal(t, "ns", cnosdb.New().Precision)

	e.topic = ""
	require.Equal(t, e.workload.topic(), e.topicName(), "the throughput runs read the workload's topic")
}

func TestWideMessageAtCarriesItsTime(t *testing.T) {
	require.True(t, strings.HasPrefix(string(wideMessageAt(nil, 7, 1767225612345678)), `{"ts":1767225612345678,`))
	require.Equal(t, wideMessage(nil, 7), wideMessageAt(nil, 7, wideTimeBase+7), "the preloaded workload is unchanged")
}

func freshRun(kind string, round int, p99 time.Duration, rate int, produced int64) freshResult {
	var h delayHistogram
	// 98 of 100 at half, the 99th and 100th at p99.
	for range 98 {
		h.add(p99 / 2)
	}
	h.add(p99)
	h.add(p99)
	return freshResult{kind: kind, round: round, rate: rate, produced: produced, produceTook: 10 * time.Second,
		fresh: freshCounts{hist: h, requests: 10, lines: 1000}, span: 10 * time.Second}
}

func TestFreshTarget(t *testing.T) {
	o := options{freshness: true, freshRate: 10000, rounds: 3}
	rep := &report{opts: o, fresh: []freshResult{
		freshRun(runATunedFresh, 1, 600*time.Millisecond, 10000, 100000),
		freshRun(runBFresh, 1, 500*time.Millisecond, 10000, 100000),
		freshRun(runBFresh, 2, 900*time.Millisecond, 10000, 100000),
		freshRun(runATunedFresh, 2, 700*time.Millisecond, 10000, 100000),
		freshRun(runATunedFresh, 3, 800*time.Millisecond, 10000, 100000),
		freshRun(runBFresh, 3, 550*time.Millisecond, 10000, 100000),
	}}
	tg := rep.freshTarget()
	require.True(t, tg.met, tg.String())
	require.Contains(t, tg.String(), "B 0.550 s, A-tuned 0.700 s", "medians over the rounds")
	require.NotContains(t, tg.String(), "producer")
	require.Equal(t, 100.0, rep.freshStats(runBFresh).linesPerRequest)
	require.Equal(t, 1.0, rep.freshStats(runBFresh).reqs)

	rep.fresh[1] = freshRun(runBFresh, 1, 800*time.Millisecond, 10000, 90000) // the producer fell behind
	tg = rep.freshTarget()
	require.False(t, tg.met, "B 0.800 s > A-tuned 0.700 s")
	require.Contains(t, tg.String(), "[NOT MET]")
	require.Contains(t, tg.String(), "the producer fell below 95% of the rate in 1 run(s)")
	var b strings.Builder
	rep.freshSection(&b)
	require.Contains(t, b.String(), "| B-fresh | 1 | ok | 90000 | 0 | 9000 (below 95% of 10000) |")
	require.Contains(t, b.String(), "The producer did NOT keep up in B-fresh round(s) [1]")

	rep.fresh = rep.fresh[:1]
	require.Contains(t, rep.freshTarget().figure, "not measured")
	require.Contains(t, rep.targets()[0].name, "freshness", "the target is printed with the others")
}

func TestFreshOnlyReport(t *testing.T) {
	t.Setenv("BENCH_N", "")
	o, err := parseFlags(flag.NewFlagSet("bench", flag.ContinueOnError), []string{"-only", runATunedFresh + "," + runBFresh, "-rounds", "1"})
	require.NoError(t, err)
	rep := &report{opts: o, started: time.Now(), fresh: []freshResult{
		freshRun(runATunedFresh, 1, 600*time.Millisecond, 10000, 100000),
		freshRun(runBFresh, 1, 500*time.Millisecond, 10000, 100000),
	}}
	md := rep.markdown()
	require.Contains(t, md, "## Freshness")
	require.Contains(t, md, "[met] freshness: B p99 <= A-tuned p99")
	require.NotContains(t, md, "## Runs", "no throughput run, no table of them")
	require.NotContains(t, md, "messages per workload")
}
