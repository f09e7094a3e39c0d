package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/internal/telegraftest"
)

// pipeline is one way of moving the topic into CnosDB with stock Telegraf.
type pipeline struct {
	name  string // "A", "B"
	title string
	// configure writes the configuration files into dir and returns telegraf.conf.
	configure func(e *env, dir, group, db string) (string, error)
	// prepare runs before Telegraf starts.
	prepare func(ctx context.Context, e *env, db string) error
}

var pipelines = []pipeline{
	{
		name:      "A",
		title:     "stock kafka_consumer + outputs.http",
		configure: stockConfig,
		// CnosDB's documented set-up creates the database by hand first.
		prepare: func(ctx context.Context, e *env, db string) error { return e.sink.createDatabase(ctx, db) },
	},
	{
		name:      "B",
		title:     "execd telegraf-kafka-consumer + telegraf-cnosdb",
		configure: pairConfig,
		prepare:   func(context.Context, *env, string) error { return nil }, // create_database = true
	},
}

// env is what every run shares.
type env struct {
	n          int
	timeout    time.Duration
	version    string
	telegraf   string
	inputBin   string
	outputBin  string
	brokerAddr string
	sink       *sink
	outDir     string
	pollEvery  time.Duration
}

// stockConfig is the seed's pipeline, as in CnosDB's Kafka article, with the same
// agent settings as telegraftest.PairConfig gives B, so that only the plugins differ.
func stockConfig(e *env, dir, group, db string) (string, error) {
	conf := fmt.Sprintf(`[agent]
  interval = "1s"
  flush_interval = "200ms"
  metric_batch_size = 5000
  metric_buffer_limit = 1000000
  omit_hostname = true

[[inputs.kafka_consumer]]
  brokers = [%q]
  topics = [%q]
  consumer_group = %q
  offset = "oldest"
  kafka_version = "4.1.0"
  data_format = "json"

[[outputs.http]]
  url = %q
  method = "POST"
  username = %q
  password = %q
  data_format = "influx"
  use_batch_format = true
  content_encoding = "identity"
`, e.brokerAddr, topic, group, e.sink.url+"/api/v1/write?db="+db, e.sink.user, e.sink.password)
	path := filepath.Join(dir, "telegraf.conf")
	return path, writeFile(path, conf)
}

// pairConfig is this project's pipeline, configured as the demo does.
func pairConfig(e *env, dir, group, db string) (string, error) {
	consumerConf := filepath.Join(dir, "kafka_consumer.conf")
	if err := writeFile(consumerConf, fmt.Sprintf(`[[inputs.kafka_consumer]]
  brokers = [%q]
  topics = [%q]
  consumer_group = %q
  offset = "oldest"
  kafka_version = "4.1.0"
  data_format = "json"
  stats_interval = "10s"
`, e.brokerAddr, topic, group)); err != nil {
		return "", err
	}
	writerConf := filepath.Join(dir, "cnosdb.conf")
	if err := writeFile(writerConf, fmt.Sprintf(`[[outputs.cnosdb]]
  urls = [%q]
  database = %q
  username = %q
  password = %q
  create_database = true
  stats_interval = "10s"
`, e.sink.url, db, e.sink.user, e.sink.password)); err != nil {
		return "", err
	}
	path := filepath.Join(dir, "telegraf.conf")
	return path, writeFile(path, telegraftest.PairConfig(e.version, e.inputBin, consumerConf, e.outputBin, writerConf))
}

func writeFile(path, body string) error {
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// runResult is what one run measured.
type runResult struct {
	pipeline string
	round    int
	n        int
	counted  int64
	elapsed  time.Duration // Telegraf start until the sink counted n, or until giving up
	failure  string        // empty when every message arrived in time
	cpu      time.Duration // Telegraf and its children until the sink counted n
	cpuExit  time.Duration // the same from wait4 after Telegraf exited, shutdown included
	peakKB   map[string]int64
	logPath  string
}

func (r runResult) ok() bool { return r.failure == "" }

func (r runResult) rate() float64 { return float64(r.counted) / r.elapsed.Seconds() }

// cpuPerMillion is CPU seconds per million messages.
func (r runResult) cpuPerMillion() float64 { return r.cpu.Seconds() / float64(r.n) * 1e6 }

// run starts Telegraf for p with a fresh consumer group and database, waits until the
// sink counts every message (or the timeout passes) and stops Telegraf. Its error is
// for what prevents measuring at all; a slow or broken pipeline is a failed result.
func run(ctx context.Context, e *env, p pipeline, round int) (runResult, error) {
	id := fmt.Sprintf("%s-%d", strings.ToLower(p.name), round)
	db := "bench_" + strings.ReplaceAll(id, "-", "_")
	res := runResult{pipeline: p.name, round: round, n: e.n, peakKB: map[string]int64{}}
	dir := filepath.Join(e.outDir, "runs", id)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return res, fmt.Errorf("creating %s: %w", dir, err)
	}
	if err := e.sink.dropDatabase(ctx, db); err != nil {
		return res, err
	}
	defer func() {
		// A fresh context: the run's may be cancelled, the database should go anyway.
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := e.sink.dropDatabase(cctx, db); err != nil {
			fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		}
	}()
	if err := p.prepare(ctx, e, db); err != nil {
		return res, err
	}
	conf, err := p.configure(e, dir, "bench-"+id, db)
	if err != nil {
		return res, err
	}
	res.logPath = filepath.Join(dir, "telegraf.log")
	logFile, err := os.Create(res.logPath)
	if err != nil {
		return res, fmt.Errorf("creating the Telegraf log: %w", err)
	}
	defer logFile.Close()

	tg := exec.Command(e.telegraf, "--config", conf)
	tg.Stdout, tg.Stderr = logFile, logFile
	// Telegraf must not outlive the benchmark, whatever ends it.
	tg.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	start := time.Now()
	if err := tg.Start(); err != nil {
		return res, fmt.Errorf("starting Telegraf: %w", err)
	}
	// exited is closed once Telegraf is reaped; waitErr is then its exit status.
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = tg.Wait(); close(exited) }()
	sampler := startSampler(tg.Process.Pid, 200*time.Millisecond)
	stop := func() {
		select {
		case <-exited:
		default:
			_ = tg.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(30 * time.Second):
				_ = tg.Process.Kill()
				<-exited
			}
		}
		sampler.Stop()
	}
	defer stop()

	res.counted, res.failure, err = waitForCount(ctx, e, p, round, db, start, exited, func() error { return waitErr })
	res.elapsed = time.Since(start)
	if err != nil {
		return res, err
	}
	// CPU at the moment the last message was counted: the work of moving N
	// messages, without Telegraf's shutdown.
	st := sampler.snapshot()
	res.cpu = st.cpu
	stop()
	st = sampler.snapshot()
	for _, ps := range st.procs {
		res.peakKB[ps.name] = max(res.peakKB[ps.name], ps.hwmKB)
	}
	if tg.ProcessState != nil {
		// wait4 counts Telegraf and the children it waited for.
		if ru, ok := tg.ProcessState.SysUsage().(*syscall.Rusage); ok {
			res.cpuExit = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		}
	}
	return res, nil
}

// waitForCount polls the sink until it counts e.n rows, showing a progress line. It
// returns the count reached and, when the run did not finish, why.
func waitForCount(ctx context.Context, e *env, p pipeline, round int, db string, start time.Time,
	exited <-chan struct{}, exitErr func() error) (int64, string, error) {
	poll := time.NewTicker(e.pollEvery)
	defer poll.Stop()
	deadline := time.NewTimer(e.timeout)
	defer deadline.Stop()
	var (
		counted, lastShown int64
		lastShownAt        = start
		lastErr            error
	)
	defer fmt.Println()
	for {
		select {
		case <-ctx.Done():
			return counted, "interrupted", ctx.Err()
		case <-exited:
			return counted, fmt.Sprintf("Telegraf exited early (%v)", exitErr()), nil
		case <-deadline.C:
			why := fmt.Sprintf("timed out after %v", e.timeout)
			if lastErr != nil {
				why += fmt.Sprintf("; last count error: %v", lastErr)
			}
			return counted, why, nil
		case now := <-poll.C:
			n, err := e.sink.count(ctx, db)
			if err != nil {
				lastErr = err
			} else {
				counted = n
			}
			if counted >= int64(e.n) {
				showProgress(p, round, counted, e.n, time.Since(start), 0)
				return counted, "", nil
			}
			if now.Sub(lastShownAt) >= time.Second {
				current := float64(counted-lastShown) / now.Sub(lastShownAt).Seconds()
				showProgress(p, round, counted, e.n, now.Sub(start), current)
				lastShown, lastShownAt = counted, now
			}
		}
	}
}

func showProgress(p pipeline, round int, counted int64, n int, elapsed time.Duration, current float64) {
	fmt.Printf("\r  %s round %d: %9d / %d  %5.1f%%  %8.0f msg/s average  %8.0f msg/s now  %6.1fs ",
		p.name, round, counted, n, 100*float64(counted)/float64(n),
		float64(counted)/elapsed.Seconds(), current, elapsed.Seconds())
}
