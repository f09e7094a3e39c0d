package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// runInputAlone runs telegraf-kafka-consumer by itself with default settings, its
// stdout drained and thrown away by this program as /dev/null would: what the input
// can read and encode with nothing downstream. Draining a pipe rather than /dev/null
// lets the run count the lines written and so end at the very last one. The
// acknowledgement is off, as the input's documentation says for any output other
// than telegraf-cnosdb: nothing here would ever confirm, and the input would stop
// once max_undelivered_messages wait.
func runInputAlone(ctx context.Context, e *env, round int) (result, error) {
	id := runID(e, runInput, round)
	res := newResult(e, runInput, round)
	dir, err := runDir(e, id)
	if err != nil {
		return res, err
	}
	conf, err := consumerConfig(e, dir, "bench-"+id, "  ack = false\n")
	if err != nil {
		return res, err
	}
	res.logPath = filepath.Join(dir, "telegraf-kafka-consumer.log")
	logFile, err := os.Create(res.logPath)
	if err != nil {
		return res, err
	}
	defer logFile.Close()
	cmd := exec.Command(e.inputBin, "-config", conf)
	cmd.Stderr = logFile
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return res, err
	}
	lines := &lineCounter{}
	start := time.Now()
	// Wait closes the pipe: read it all first.
	proc, err := startFollowed(cmd, func() { lines.drain(stdout) })
	if err != nil {
		return res, fmt.Errorf("starting %s: %w", e.inputBin, err)
	}
	defer proc.stop()

	w := waiter{e: e, res: &res, start: start, exited: proc.exited,
		count:   func(context.Context) (int64, error) { return lines.n.Load(), nil },
		exitErr: func() error { return exitedEarly("telegraf-kafka-consumer", proc.waitErr) }}
	if err := w.wait(ctx); err != nil {
		return res, err
	}
	res.addProcs(proc.sampler.snapshot())
	if res.ok() {
		first, last := lines.span()
		res.elapsed = last.Sub(start)
		if last.After(first) {
			res.steady = float64(res.counted) / last.Sub(first).Seconds()
		}
	}
	proc.stop()
	proc.peaks(&res)
	return res, nil
}

// lineCounter counts the metric lines of the workload's table, leaving out the
// input's kafka_consumer_stats lines, and when the first and the last came.
type lineCounter struct {
	n           atomic.Int64
	mu          sync.Mutex
	first, last time.Time
}

var statsPrefix = []byte(table + "_stats")

func (c *lineCounter) drain(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if bytes.HasPrefix(sc.Bytes(), statsPrefix) {
			continue
		}
		now := time.Now()
		c.mu.Lock()
		if c.first.IsZero() {
			c.first = now
		}
		c.last = now
		c.mu.Unlock()
		c.n.Add(1)
	}
	// The input is stopped mid-write at the end at worst; keep the pipe drained so
	// that it never blocks on a full pipe while stopping.
	_, _ = io.Copy(io.Discard, r)
}

func (c *lineCounter) span() (first, last time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.first, c.last
}
