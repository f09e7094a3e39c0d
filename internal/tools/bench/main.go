// Command bench is the project's end-to-end benchmark: it preloads a Kafka topic,
// then moves it into CnosDB with stock Telegraf, alternating the seed's pipeline (A:
// kafka_consumer and outputs.http) with this project's (B: both plugins through
// execd), and reports throughput, CPU per message and peak memory of each.
// `make bench-e2e` builds the plugins and runs it; results go to
// bench-results/<timestamp>/results.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/IBM/sarama"

	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/internal/kafkatest"
	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/internal/telegraftest"
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
	binDir      string
	outRoot     string
	version     string
	workload    workload
	compression sarama.CompressionCodec
	ceiling     bool
}

func parseFlags() (options, error) {
	var o options
	flag.IntVar(&o.n, "n", 1_000_000, "messages in the topic (env BENCH_N overrides)")
	flag.IntVar(&o.rounds, "rounds", 3, "runs of each pipeline, alternating A B A B …")
	flag.DurationVar(&o.timeout, "timeout", 10*time.Minute, "give up on a run after this long and report it as failed")
	flag.StringVar(&o.binDir, "bin", "bin", "directory with telegraf-kafka-consumer and telegraf-cnosdb")
	flag.StringVar(&o.outRoot, "out", "bench-results", "directory for bench-results/<timestamp>/")
	flag.StringVar(&o.version, "telegraf", telegraftest.Latest, "stock Telegraf version")
	name := flag.String("workload", "sensor", "sensor (3 fields, 1 partition) or wide (12 fields, 6 partitions)")
	codec := flag.String("compression", "none", "producer compression: none, gzip, snappy, lz4, zstd")
	flag.BoolVar(&o.ceiling, "ceiling", true, "also measure a raw sarama consumer reading the topic to nowhere")
	flag.Parse()
	if v := os.Getenv("BENCH_N"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return o, fmt.Errorf("BENCH_N=%q: %w", v, err)
		}
		o.n = n
	}
	if o.n < 1 || o.rounds < 1 || o.timeout <= 0 {
		return o, errors.New("-n, -rounds and -timeout must be positive")
	}
	w, ok := workloads[*name]
	if !ok {
		return o, fmt.Errorf("-workload %q: want sensor or wide", *name)
	}
	o.workload = w
	if err := o.compression.UnmarshalText([]byte(*codec)); err != nil {
		return o, fmt.Errorf("-compression: %w", err)
	}
	return o, nil
}

func benchmark() error {
	o, err := parseFlags()
	if err != nil {
		return err
	}
	ctx, stopSignals := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stopSignals()
	say := func(format string, args ...any) { fmt.Printf("==> "+format+"\n", args...) }

	e := &env{n: o.n, timeout: o.timeout, version: o.version}
	for _, b := range []struct {
		dst  *string
		name string
	}{{&e.inputBin, "telegraf-kafka-consumer"}, {&e.outputBin, "telegraf-cnosdb"}} {
		path, err := filepath.Abs(filepath.Join(o.binDir, b.name))
		if err != nil {
			return err
		}
		if _, err := os.Stat(path); err != nil {
			return fmt.Errorf("%s is missing: run make build first: %w", path, err)
		}
		*b.dst = path
	}
	started := time.Now()
	e.outDir = filepath.Join(o.outRoot, started.Format("20060102-150405"))
	if err := os.MkdirAll(e.outDir, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", e.outDir, err)
	}

	say("building stock Telegraf %s (cached after the first run)", o.version)
	if e.telegraf, err = telegraftest.Build(o.version); err != nil {
		return err
	}

	work, err := os.MkdirTemp("", "telegraf-kafka-cnosdb-bench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	say("starting Apache Kafka %s (KRaft, 127.0.0.1)", kafkatest.KafkaVersion)
	broker, err := kafkatest.Launch(func(string, ...any) {}, filepath.Join(work, "kafka"), kafkatest.Options{})
	if err != nil {
		return fmt.Errorf("starting Kafka: %w", err)
	}
	defer broker.Stop()
	e.brokerAddr = broker.Addr()

	if e.sink, err = openSink(ctx); err != nil {
		return err
	}
	defer e.sink.close()
	say("sink: %s", e.sink.desc)
	// A real CnosDB answers exact_count(*) over a million rows more slowly; asking it
	// ten times a second would load the machine being measured.
	e.pollEvery = 100 * time.Millisecond
	if os.Getenv("CNOSDB_URL") != "" {
		e.pollEvery = 500 * time.Millisecond
	}

	rep := &report{opts: o, started: started, sink: e.sink.desc}
	if err := createTopic(e.brokerAddr, o.workload.partitions); err != nil {
		return err
	}
	say("preloading topic %q: %d %s messages (%d fields) on %d partition(s), compression %s",
		topic, o.n, o.workload.name, o.workload.fields, o.workload.partitions, o.compression)
	took, err := preload(ctx, e.brokerAddr, o.workload, o.n, o.compression)
	if err != nil {
		return err
	}
	rep.produceRate = float64(o.n) / took.Seconds()

	if o.ceiling {
		n, took, err := consumeCeiling(ctx, e.brokerAddr)
		if err != nil {
			return fmt.Errorf("ceiling: %w", err)
		}
		rep.ceilingRate = float64(n) / took.Seconds()
		say("ceiling: raw sarama consumer read %d messages in %v (%.0f msg/s)", n, took.Round(time.Millisecond), rep.ceilingRate)
	}

	for round := 1; round <= o.rounds; round++ {
		for _, p := range pipelines {
			say("round %d/%d, pipeline %s: %s", round, o.rounds, p.name, p.title)
			res, err := run(ctx, e, p, round)
			if err != nil {
				return fmt.Errorf("pipeline %s round %d: %w", p.name, round, err)
			}
			if !res.ok() {
				say("pipeline %s round %d FAILED: %s; %d of %d counted (log: %s)",
					p.name, round, res.failure, res.counted, res.n, res.logPath)
			}
			rep.runs = append(rep.runs, res)
		}
	}

	md := rep.markdown()
	fmt.Println()
	fmt.Print(md)
	path := filepath.Join(e.outDir, "results.md")
	if err := os.WriteFile(path, []byte(md), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	say("wrote %s (Telegraf logs and configurations under %s)", path, filepath.Join(e.outDir, "runs"))
	return nil
}

// machine describes where the benchmark ran, for the report.
func machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if name, ok := strings.CutPrefix(line, "model name"); ok {
				model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(name), ":"))
				break
			}
		}
	}
	kernel := "unknown kernel"
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel = "Linux " + strings.TrimSpace(string(b))
	}
	return fmt.Sprintf("%d CPUs (%s), %s, %s", runtime.NumCPU(), model, kernel, runtime.Version())
}
