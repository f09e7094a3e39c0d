// Command bench is the project's end-to-end benchmark. On one machine it preloads a
// Kafka topic per workload, then, round after round, moves it into CnosDB with stock
// Telegraf running the article's pipeline as CnosDB's Kafka article sets it (A-article:
// kafka_consumer and outputs.http, Telegraf's defaults), the same plugins tuned
// (A-tuned), and this project's (B: both plugins through execd, their defaults and
// Telegraf's). The sink is the CnosDB dev server with the cost of a real CnosDB's
// writes, or a real CnosDB (CNOSDB_URL), behind a proxy that counts the requests.
// With -ceilings it also measures the input alone and the ceilings around the
// pipelines: a raw sarama consumer and kcat reading the topic, Telegraf's own execd
// routing rate, and the sink's accept rate. With -output-alone (and -ceilings) it
// measures telegraf-cnosdb by itself, fed the workload's line protocol on stdin, into
// a cost-model sink of 4 cores, with one request in flight and with its default. It
// reports throughput, CPU per message
// per process, lines per request, requests per second and peak memory of each, the
// ratios, and the targets met.
// `make bench-e2e` builds the plugins and runs it; results go to
// bench-results/<timestamp>/ (results.md, timeline.csv, plot-<workload>.png).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/IBM/sarama"

	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/dev/cnosdbdev"
	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/testutil/kafkatest"
	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/testutil/telegraftest"
)

func main() {
	if err := benchmark(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

type options struct {
	n           int
	rounds      int
	timeout     time.Duration
	poll        time.Duration
	binDir      string
	outRoot     string
	version     string
	workloads   []workload
	compression sarama.CompressionCodec
	ceilings    bool
	outputAlone bool
	only        []string // pipeline and output-alone runs to make; see pipelines and outputRuns
	backlog     bool
	sink        string
	sinkCores   int
	stall       time.Duration
	profile     bool
	shapes      bool

	// Freshness runs: -freshness makes both, -only picks among them.
	freshness                  bool
	freshRate                  int
	freshDuration, freshWarmup time.Duration

	// Modes in which Telegraf runs this program for the routing ceiling.
	replay, discard string
}

// parseFlags reads the command line, args without the program name, into options.
func parseFlags(fs *flag.FlagSet, args []string) (options, error) {
	var o options
	workloadNames, codec := defineFlags(fs, &o)
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if o.replay != "" || o.discard != "" {
		return o, nil
	}
	if v := os.Getenv("BENCH_N"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return o, fmt.Errorf("BENCH_N=%q: %w", v, err)
		}
		o.n = n
	}
	if err := o.check(); err != nil {
		return o, err
	}
	// -backlog defaults to whether the topic is large enough for the check.
	backlogSet := false
	fs.Visit(func(f *flag.Flag) { backlogSet = backlogSet || f.Name == "backlog" })
	if !backlogSet {
		o.backlog = o.n >= backlogMin
	}
	list := workloadOrder
	if *workloadNames != "all" {
		list = strings.Split(*workloadNames, ",")
	}
	for _, name := range list {
		w, ok := workloads[strings.TrimSpace(name)]
		if !ok {
			return o, fmt.Errorf("-workload %q: want sensor, wide or all", name)
		}
		o.workloads = append(o.workloads, w)
	}
	if err := o.compression.UnmarshalText([]byte(*codec)); err != nil {
		return o, fmt.Errorf("-compression: %w", err)
	}
	return o, nil
}

// defineFlags defines the command's flags on fs, each setting its field of o, but for
// -workload and -compression: their strings become o's workloads and codec in parseFlags.
func defineFlags(fs *flag.FlagSet, o *options) (workloadNames, codec *string) {
	fs.IntVar(&o.n, "n", 1_000_000, "messages in each workload's topic (env BENCH_N overrides)")
	fs.IntVar(&o.rounds, "rounds", 3, "rounds; each runs A-article, A-tuned and B (and with -ceilings the rest), medians are quoted")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Minute, "give up on a run after this long and report it as failed")
	fs.DurationVar(&o.stall, "stall", time.Minute, "fail a run once nothing more has arrived for this long (0: wait for -timeout)")
	fs.DurationVar(&o.poll, "poll", 250*time.Millisecond, "how often to count what has arrived (the timeline's resolution)")
	fs.StringVar(&o.binDir, "bin", "bin", "directory with telegraf-kafka-consumer and telegraf-cnosdb")
	fs.StringVar(&o.outRoot, "out", "bench-results", "directory for bench-results/<timestamp>/")
	fs.StringVar(&o.version, "telegraf", telegraftest.Latest, "stock Telegraf version")
	workloadNames = fs.String("workload", "all", "sensor (3 fields, 1 partition), wide (12 fields and 3 tags, 6 partitions) or all")
	codec = fs.String("compression", "none", "producer compression: none, gzip, snappy, lz4, zstd")
	fs.BoolVar(&o.ceilings, "ceilings", false, "also run the input alone and the ceilings (sarama, kcat, execd routing, sink)")
	fs.BoolVar(&o.outputAlone, "output-alone", false, fmt.Sprintf("also run telegraf-cnosdb alone, fed the line protocol on stdin, into a %d-core cost-model sink, with max_in_flight = 1 and its default (%s, %s; on with -ceilings)",
		outputAloneCores, runOutput1, runOutputDefault))
	fs.BoolVar(&o.freshness, "freshness", false, fmt.Sprintf("also measure freshness: %s and %s on an empty wide topic fed at -fresh-rate, how long after it is produced each message is visible in the sink",
		runATunedFresh, runBFresh))
	fs.IntVar(&o.freshRate, "fresh-rate", 10000, "messages per second a freshness run produces")
	fs.DurationVar(&o.freshDuration, "fresh-duration", 30*time.Second, "how long a freshness run produces")
	fs.DurationVar(&o.freshWarmup, "fresh-warmup", 5*time.Second, "the first part of a freshness run's production left out of its delays")
	onlyKinds := slices.Concat(pipelineKinds, outputAloneKinds, freshKinds)
	fs.Func("only", fmt.Sprintf("comma-separated runs to make of %s; naming only output-alone runs makes no pipeline run; the ratios need A-tuned and B, or both output-alone runs", strings.Join(onlyKinds, ", ")), func(v string) error {
		for _, kind := range strings.Split(v, ",") {
			if !slices.Contains(onlyKinds, kind) {
				return fmt.Errorf("-only: %q is not one of %s", kind, strings.Join(onlyKinds, ", "))
			}
			o.only = append(o.only, kind)
		}
		return nil
	})
	fs.BoolVar(&o.backlog, "backlog", false, fmt.Sprintf("check that B stores a backlog of at least %d messages (5 x Telegraf's default metric_buffer_limit) with the defaults; on by default when -n >= %d", backlogMin, backlogMin))
	fs.StringVar(&o.sink, "sink", sinkCost, "the dev server's mode: cost (a real CnosDB's cost per request and per line) or count-only (free, a ceiling); ignored with CNOSDB_URL")
	fs.IntVar(&o.sinkCores, "sink-cores", cnosdbdev.DefaultCost().Cores, "requests the cost-model sink serves at once")
	fs.BoolVar(&o.profile, "profile", false, "write CPU profiles of Telegraf (through --pprof-addr, in 2 s slices while the run lasts) and of the plugins into each run's profiles/ (go tool pprof merges the files it is given)")
	fs.BoolVar(&o.shapes, "shapes", false, "instead of the runs, write each workload's line protocol to the sink in several request shapes (size, gzip, precision) and report what each cost; only a real CnosDB (CNOSDB_URL, CNOSDB_PID) says what a shape costs the server")
	fs.StringVar(&o.replay, "replay", "", "internal: write this line protocol file to stdout (execd input of the routing ceiling)")
	fs.StringVar(&o.discard, "discard", "", "internal: count stdin's lines into this file (execd output of the routing ceiling)")
	return workloadNames, codec
}

// check says what is wrong with the numbers and the sink asked for, if anything.
func (o options) check() error {
	if o.n < 1 || o.rounds < 1 || o.timeout <= 0 || o.poll <= 0 || o.sinkCores < 1 {
		return errors.New("-n, -rounds, -timeout, -poll and -sink-cores must be positive")
	}
	if o.stall < 0 {
		return errors.New("-stall must not be negative")
	}
	if o.freshRate < 1 || o.freshWarmup < 0 || o.freshDuration <= o.freshWarmup {
		return errors.New("-fresh-rate must be positive and -fresh-duration longer than -fresh-warmup")
	}
	if o.sink != sinkCost && o.sink != sinkCountOnly {
		return fmt.Errorf("-sink %q: want %s or %s", o.sink, sinkCost, sinkCountOnly)
	}
	return nil
}

// pipelines are the pipeline runs to make, in an odd round's order: those -only
// names, or all when it names nothing.
func (o options) pipelines() []string {
	var kinds []string
	for _, kind := range pipelineKinds {
		if len(o.only) == 0 || slices.Contains(o.only, kind) {
			kinds = append(kinds, kind)
		}
	}
	return kinds
}

// outputRuns are the output-alone runs to make, in an odd round's order: those -only
// names, or both with -output-alone or -ceilings.
func (o options) outputRuns() []string {
	var named []string
	for _, kind := range outputAloneKinds {
		if slices.Contains(o.only, kind) {
			named = append(named, kind)
		}
	}
	switch {
	case len(named) > 0:
		return named
	case o.outputAlone || o.ceilings:
		return slices.Clone(outputAloneKinds)
	}
	return nil
}

// freshRuns are the freshness runs to make, in an odd round's order: those -only
// names, or both with -freshness.
func (o options) freshRuns() []string {
	var named []string
	for _, kind := range freshKinds {
		if slices.Contains(o.only, kind) {
			named = append(named, kind)
		}
	}
	if len(named) == 0 && o.freshness {
		return slices.Clone(freshKinds)
	}
	return named
}

// freshOrder is the freshness runs of round, backwards in even rounds.
func (o options) freshOrder(round int) []string {
	kinds := o.freshRuns()
	if round%2 == 0 {
		slices.Reverse(kinds)
	}
	return kinds
}

// workloadRuns says whether any run uses the workloads' topics or line protocol;
// when only freshness runs are named, none is preloaded.
func (o options) workloadRuns() bool {
	return len(o.pipelines()) > 0 || o.ceilings || len(o.outputRuns()) > 0
}

// needsKafka says whether any run reads a topic; the output alone does not, and
// when it is all that runs, neither Kafka nor Telegraf is started.
func (o options) needsKafka() bool {
	return len(o.pipelines()) > 0 || o.ceilings || len(o.freshRuns()) > 0
}

func say(format string, args ...any) { fmt.Printf("==> "+format+"\n", args...) }

func benchmark() error {
	o, err := parseFlags(flag.CommandLine, os.Args[1:])
	if err != nil {
		return err
	}
	switch {
	case o.replay != "":
		return replay(o.replay, os.Stdout, os.Stdin)
	case o.discard != "":
		return discard(o.discard, os.Stdin)
	}
	ctx, stopSignals := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stopSignals()
	if o.shapes {
		return benchShapes(ctx, o)
	}

	e, cleanup, err := setUp(ctx, o)
	defer cleanup()
	if err != nil {
		return err
	}
	rep := &report{opts: o, started: time.Now(), machine: machine(), versions: versions(e),
		sink: e.sink.desc, sinkKind: e.sink.kind, dbMeasured: e.sink.pid != 0}
	if e.outSink != nil {
		rep.outputSink, rep.outputSinkKind = outputAloneDesc(e.outSink), e.outSink.kind
	}
	for _, w := range o.workloads {
		if !o.workloadRuns() {
			break
		}
		info, err := prepareWorkload(ctx, e, w, o)
		if err != nil {
			return err
		}
		rep.workloads = append(rep.workloads, info)
		for round := 1; round <= o.rounds; round++ {
			for _, m := range measurements(o, round) {
				say("%s, round %d/%d: %s", w.name, round, o.rounds, m.title)
				res, err := m.run(ctx, e, round)
				if err != nil {
					return fmt.Errorf("%s %s round %d: %w", w.name, m.kind, round, err)
				}
				if !res.ok() {
					say("%s %s round %d FAILED: %s; %d of %d counted (log: %s)",
						w.name, m.kind, round, res.failure, res.counted, res.n, res.logPath)
				}
				rep.runs = append(rep.runs, res)
			}
		}
	}
	for round := 1; round <= o.rounds && len(o.freshRuns()) > 0; round++ {
		for _, kind := range o.freshOrder(round) {
			say("freshness, round %d/%d: %s", round, o.rounds, kindTitle(kind))
			res, err := runFresh(ctx, e, o, kind, round)
			if err != nil {
				return fmt.Errorf("%s round %d: %w", kind, round, err)
			}
			if !res.ok() {
				say("%s round %d FAILED: %s (log: %s)", kind, round, res.failure, res.logPath)
			}
			rep.fresh = append(rep.fresh, res)
		}
	}
	rep.took = time.Since(rep.started)
	return writeResults(e.outDir, rep)
}

// measurement is one kind of run in a round.
type measurement struct {
	kind, title string
	run         func(context.Context, *env, int) (result, error)
}

// measurements are the runs of one round: the pipelines first, in pipelineKinds'
// order in odd rounds and backwards in even ones, so that neither side always runs
// first on a fresh machine nor last on a warm one; then the input alone, the output
// alone (its two runs alternating the same way) and the ceilings.
func measurements(o options, round int) []measurement {
	pipelines, outputs := o.pipelines(), o.outputRuns()
	if round%2 == 0 {
		slices.Reverse(pipelines)
		slices.Reverse(outputs)
	}
	var ms []measurement
	for _, kind := range pipelines {
		ms = append(ms, measurement{kind, "", func(ctx context.Context, e *env, r int) (result, error) {
			return runPipeline(ctx, e, kind, r)
		}})
	}
	if o.ceilings {
		ms = append(ms, measurement{runInput, "", runInputAlone})
	}
	for _, kind := range outputs {
		ms = append(ms, measurement{kind, "", func(ctx context.Context, e *env, r int) (result, error) {
			return runOutputAlone(ctx, e, kind, r)
		}})
	}
	if o.ceilings {
		ms = append(ms,
			measurement{runRouting, "", runRoutingCeiling},
			measurement{runSarama, "", runSaramaCeiling},
			measurement{runKcat, "", runKcatCeiling},
			measurement{runSink, "", runSinkCeiling},
		)
	}
	for i := range ms {
		ms[i].title = kindTitle(ms[i].kind)
	}
	return ms
}

// kindTitle is what a run of kind is, for the progress lines.
func kindTitle(kind string) string {
	for _, k := range kinds {
		if k.name == kind {
			return k.title
		}
	}
	return kind
}

// setUp finds the binaries, builds Telegraf and starts Kafka and the sink; cleanup
// undoes what was done, also after an error.
func setUp(ctx context.Context, o options) (*env, func(), error) {
	var undo []func()
	cleanup := func() {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
	}
	e := &env{n: o.n, timeout: o.timeout, version: o.version, pollEvery: o.poll, stall: o.stall, profile: o.profile}
	for _, b := range []struct {
		dst  *string
		name string
	}{{&e.inputBin, "telegraf-kafka-consumer"}, {&e.outputBin, "telegraf-cnosdb"}} {
		path, err := filepath.Abs(filepath.Join(o.binDir, b.name))
		if err != nil {
			return nil, cleanup, err
		}
		if _, err := os.Stat(path); err != nil {
			return nil, cleanup, fmt.Errorf("%s is missing: run make build first: %w", path, err)
		}
		*b.dst = path
	}
	self, err := os.Executable()
	if err != nil {
		return nil, cleanup, fmt.Errorf("finding this program for the routing ceiling: %w", err)
	}
	e.self = self
	e.outDir = filepath.Join(o.outRoot, time.Now().Format("20060102-150405"))
	if err := os.MkdirAll(e.outDir, 0o755); err != nil {
		return nil, cleanup, fmt.Errorf("creating %s: %w", e.outDir, err)
	}

	work, err := os.MkdirTemp("", "telegraf-kafka-cnosdb-bench")
	if err != nil {
		return nil, cleanup, err
	}
	e.work = work
	undo = append(undo, func() { os.RemoveAll(work) })

	if o.needsKafka() {
		say("building stock Telegraf %s (cached after the first run)", o.version)
		if e.telegraf, err = telegraftest.Build(o.version); err != nil {
			return nil, cleanup, err
		}
		say("starting Apache Kafka %s (KRaft, 127.0.0.1)", kafkatest.KafkaVersion)
		broker, err := kafkatest.Launch(func(string, ...any) {}, filepath.Join(work, "kafka"), kafkatest.Options{})
		if err != nil {
			return nil, cleanup, fmt.Errorf("starting Kafka: %w", err)
		}
		undo = append(undo, broker.Stop)
		e.brokerAddr = broker.Addr()
	} else {
		say("only the output alone runs: neither Telegraf nor Kafka is started")
	}

	if e.sink, err = openSink(ctx, o.sink, o.sinkCores); err != nil {
		return nil, cleanup, err
	}
	undo = append(undo, e.sink.close)
	say("sink: %s", e.sink.desc)
	// A real CnosDB answers exact_count(*) over a million rows more slowly; asking it
	// four times a second would load the machine being measured.
	if e.sink.kind == sinkReal {
		e.pollEvery = max(e.pollEvery, 500*time.Millisecond)
	}
	if len(o.outputRuns()) > 0 {
		if e.outSink, err = openOutputSink(e.sink); err != nil {
			return nil, cleanup, err
		}
		if e.outSink != e.sink {
			undo = append(undo, e.outSink.close)
		}
		say("output alone's sink: %s", outputAloneDesc(e.outSink))
	}
	return e, cleanup, nil
}

// prepareWorkload fills w's topic, unless no run reads it, and writes its line
// protocol for the ceilings and the output alone.
func prepareWorkload(ctx context.Context, e *env, w workload, o options) (workloadInfo, error) {
	info := workloadInfo{w: w}
	e.workload = w
	if o.needsKafka() {
		if err := kafkatest.EnsureTopic(e.brokerAddr, w.topic(), int(w.partitions)); err != nil {
			return info, err
		}
		say("preloading topic %q: %d %s messages on %d partition(s), compression %s",
			w.topic(), o.n, w.name, w.partitions, o.compression)
		took, avg, err := preload(ctx, e.brokerAddr, w, o.n, o.compression)
		if err != nil {
			return info, err
		}
		info.avgBytes, info.produceRate = avg, float64(o.n)/took.Seconds()
	}
	e.lpPath = filepath.Join(e.work, w.name+".lp")
	if o.ceilings || len(o.outputRuns()) > 0 {
		say("writing the %s workload's line protocol for the ceilings and the output alone", w.name)
		if err := writeLineProtocol(w, o.n, e.lpPath); err != nil {
			return info, err
		}
	}
	return info, nil
}

// writeResults prints the report and writes results.md, timeline.csv and a plot per
// workload.
func writeResults(dir string, rep *report) error {
	md := rep.markdown()
	fmt.Println()
	fmt.Print(md)
	if err := os.WriteFile(filepath.Join(dir, "results.md"), []byte(md), 0o644); err != nil {
		return fmt.Errorf("writing results.md: %w", err)
	}
	if err := writeTimelines(filepath.Join(dir, "timeline.csv"), rep.runs); err != nil {
		return err
	}
	for _, wi := range rep.workloads {
		if !rep.plotted(wi.w.name) {
			continue
		}
		if err := writePlot(filepath.Join(dir, "plot-"+wi.w.name+".png"), wi.w, rep.opts.n, rep.runs); err != nil {
			return err
		}
	}
	fmt.Println()
	fmt.Println("Targets:")
	for _, t := range rep.targets() {
		fmt.Println("  " + t.String())
	}
	say("wrote %s (results.md, timeline.csv, plots; logs and configurations under runs/)", dir)
	return nil
}
