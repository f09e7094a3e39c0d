package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// outputAloneCores is how many requests at once the output alone's sink serves: a
// real CnosDB's cost per request and per line, with the parallelism of a 4-core
// server, so that what several requests in flight gain is not capped by the 2 cores
// the cost model was measured on.
const outputAloneCores = 4

// openOutputSink is the sink of the output-alone runs: the real CnosDB when the
// pipelines write to one, otherwise a dev server of its own with the cost model and
// outputAloneCores, whatever -sink and -sink-cores say, behind its own counting proxy.
func openOutputSink(main *sink) (*sink, error) {
	if main.kind == sinkReal {
		return main, nil
	}
	s, err := devSink(sinkCost, outputAloneCores)
	if err != nil {
		return nil, err
	}
	if err := s.countWrites(); err != nil {
		return nil, err
	}
	return s, nil
}

// outputAloneDesc says where the output-alone runs write, for the report.
func outputAloneDesc(s *sink) string {
	if s.kind == sinkReal {
		return fmt.Sprintf("the real CnosDB of the pipelines (CNOSDB_URL), so the %d-core setting does not apply", outputAloneCores)
	}
	return s.desc
}

// outputAloneTOML is what an output-alone run of kind sets beyond writerConfig's
// defaults: max_in_flight = 1 for runOutput1, nothing for runOutputDefault, which so
// runs with whatever the plugin's default is.
func outputAloneTOML(kind string) string {
	if kind == runOutput1 {
		return "  max_in_flight = 1\n"
	}
	return ""
}

// runOutputAlone runs telegraf-cnosdb by itself with default settings (but for
// max_in_flight = 1 in runOutput1), its stdin a pipe the benchmark fills with the
// workload's pre-made line protocol as fast as it reads, into the output alone's sink
// through its counting proxy. Stdin stays open until the N-th line is accepted, as
// Telegraf's execd keeps it open, so that the run measures writing, not the flush at
// the end of the input. The count is the proxy's: the lines of the write requests the
// sink answered with 2xx, timed as their answers pass.
func runOutputAlone(ctx context.Context, e *env, kind string, round int) (result, error) {
	id := runID(e, kind, round)
	db := databaseName(e.workload.name, kind, round)
	res := newResult(e, kind, round)
	dir, err := runDir(e, id)
	if err != nil {
		return res, err
	}
	s := e.outSink
	// As for the pipelines: CnosDB's documented set-up creates the database first.
	drop, err := s.freshDatabase(ctx, db, true)
	if err != nil {
		return res, err
	}
	defer drop()
	conf, err := writerConfig(s, dir, db, outputAloneTOML(kind))
	if err != nil {
		return res, err
	}
	lp, err := os.Open(e.lpPath)
	if err != nil {
		return res, err
	}
	defer lp.Close()
	res.logPath = filepath.Join(dir, "telegraf-cnosdb.log")
	logFile, err := os.Create(res.logPath)
	if err != nil {
		return res, err
	}
	defer logFile.Close()

	cmd := exec.Command(e.outputBin, "-config", conf)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return res, err
	}
	acceptedBefore := s.writes.record()
	defer s.writes.stopRecording()
	writesBefore, dbBefore := s.writes.counts(), s.databaseCPU()
	start := time.Now()
	proc, err := startFollowed(cmd, nil)
	if err != nil {
		return res, fmt.Errorf("starting %s: %w", e.outputBin, err)
	}
	defer proc.stop()
	// Closing stdin at the end ends the copy, should the output have stopped reading.
	go func() { _, _ = io.Copy(stdin, lp) }()

	w := waiter{e: e, res: &res, start: start, exited: proc.exited,
		count:   func(context.Context) (int64, error) { return s.writes.accepted.Load() - acceptedBefore, nil },
		exitErr: func() error { return exitedEarly(pluginOutput, proc.waitErr) }}
	if err := w.wait(ctx); err != nil {
		return res, err
	}
	res.addProcs(proc.sampler.snapshot())
	res.writes = s.writes.counts().sub(writesBefore)
	if dbAfter := s.databaseCPU(); dbBefore > 0 && dbAfter > dbBefore {
		res.dbCPU = dbAfter - dbBefore
	}
	if tl, elapsed, steady := acceptedRates(start, s.writes.stopRecording(), res.n); res.ok() && elapsed > 0 {
		res.timeline, res.elapsed, res.steady, res.counted = tl, elapsed, steady, int64(res.n)
	}
	// End of input: the output writes what it holds, none by now, and exits.
	_ = stdin.Close()
	proc.stop()
	proc.peaks(&res)
	return res, nil
}

// acceptedRates reads the writes accepted during an output-alone run that began at
// start: its timeline, one sample per accepted request; elapsed, from start until the
// n-th line was accepted; and steady, lines per second from the first accepted request
// to the one that took the n-th line, the lines of the first left out, since they were
// written before the clock started. steady is 0 when one request took them all, and
// elapsed 0 when fewer than n were accepted.
func acceptedRates(start time.Time, acc []acceptance, n int) (timeline []sample, elapsed time.Duration, steady float64) {
	var total int64
	for i, a := range acc {
		total += a.lines
		timeline = append(timeline, sample{at: a.at.Sub(start), counted: total})
		if total < int64(n) {
			continue
		}
		elapsed = a.at.Sub(start)
		if i > 0 && a.at.After(acc[0].at) {
			steady = float64(total-acc[0].lines) / a.at.Sub(acc[0].at).Seconds()
		}
		break
	}
	return timeline, elapsed, steady
}
