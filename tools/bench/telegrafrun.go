package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// counter says how many of the run's messages have arrived where they are counted.
type counter func(context.Context) (int64, error)

// runTelegraf starts Telegraf with conf, waits until count reaches e.n (or the
// timeout passes) and stops Telegraf; atEnd, when set, records what else the run
// measures at the moment the count was reached. Its error is for what prevents
// measuring at all; a slow or broken pipeline is a failed result.
func runTelegraf(ctx context.Context, e *env, res result, dir, conf string, count counter, atEnd func(*result)) (result, error) {
	res.logPath = filepath.Join(dir, "telegraf.log")
	proc, start, err := startTelegraf(e, res.logPath, conf)
	if err != nil {
		return res, err
	}
	defer proc.stop()

	w := waiter{e: e, res: &res, start: start, count: count, exited: proc.exited,
		exitErr: func() error { return exitedEarly("Telegraf", proc.waitErr) }}
	if err := w.wait(ctx); err != nil {
		return res, err
	}
	// CPU at the moment the last message was counted: the work of moving N
	// messages, without Telegraf's shutdown.
	res.addProcs(proc.sampler.snapshot())
	if atEnd != nil {
		atEnd(&res)
	}
	proc.stop()
	proc.peaks(&res)
	return res, nil
}

// startTelegraf starts Telegraf with conf, its output going to logPath, and returns
// it with the time it started.
func startTelegraf(e *env, logPath, conf string) (*followed, time.Time, error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("creating the Telegraf log: %w", err)
	}
	// Telegraf writes to its own copy of the descriptor.
	defer logFile.Close()
	tg := exec.Command(e.telegraf, "--config", conf)
	tg.Stdout, tg.Stderr = logFile, logFile
	var startProfiles func() (stop func())
	if e.profile {
		args, environ, start, err := profiling(filepath.Join(filepath.Dir(logPath), "profiles"))
		if err != nil {
			return nil, time.Time{}, err
		}
		tg.Args = append(tg.Args, args...)
		tg.Env = append(os.Environ(), environ...)
		startProfiles = start
	}
	start := time.Now()
	proc, err := startFollowed(tg, nil)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("starting Telegraf: %w", err)
	}
	if startProfiles != nil {
		proc.stopProfiles = startProfiles()
	}
	return proc, start, nil
}

// waiter polls a run's counter until it reaches e.n, recording the timeline and
// showing a progress line.
type waiter struct {
	e       *env
	res     *result
	start   time.Time
	count   counter
	exited  <-chan struct{}
	exitErr func() error
}

// wait fills in res.counted, res.elapsed, res.timeline and, when the run did not
// finish, res.failure.
func (w waiter) wait(ctx context.Context) error {
	res := w.res
	poll := time.NewTicker(w.e.pollEvery)
	defer poll.Stop()
	deadline := time.NewTimer(w.e.timeout)
	defer deadline.Stop()
	var (
		lastShown   int64
		lastShownAt = w.start
		lastErr     error
		lastGrowth  = w.start
		lastCounted int64
	)
	defer fmt.Println()
	defer func() {
		if res.elapsed == 0 {
			res.elapsed = time.Since(w.start)
		}
	}()
	for {
		select {
		case <-ctx.Done():
			res.failure = "interrupted"
			return ctx.Err()
		case <-w.exited:
			res.failure = w.exitErr().Error()
			return nil
		case <-deadline.C:
			res.failure = fmt.Sprintf("timed out after %v", w.e.timeout)
			if lastErr != nil {
				res.failure += fmt.Sprintf("; last count error: %v", lastErr)
			}
			return nil
		case <-poll.C:
			n, err := w.count(ctx)
			now := time.Now()
			if err != nil {
				lastErr = err
			} else {
				res.counted = n
			}
			at := now.Sub(w.start)
			res.timeline = append(res.timeline, sample{at: at, counted: res.counted})
			if res.counted >= int64(res.n) {
				res.elapsed = at
				showProgress(res, at, 0)
				return nil
			}
			if res.counted != lastCounted {
				lastCounted, lastGrowth = res.counted, now
			}
			// A pipeline that lost messages never reaches N; say so once nothing has
			// arrived for a while rather than waiting for the timeout.
			if w.e.stall > 0 && now.Sub(lastGrowth) >= w.e.stall {
				res.failure = fmt.Sprintf("stalled: nothing more arrived for %v", w.e.stall)
				if lastErr != nil {
					res.failure += fmt.Sprintf("; last count error: %v", lastErr)
				}
				return nil
			}
			if now.Sub(lastShownAt) >= time.Second {
				current := float64(res.counted-lastShown) / now.Sub(lastShownAt).Seconds()
				showProgress(res, at, current)
				lastShown, lastShownAt = res.counted, now
			}
		}
	}
}

func showProgress(res *result, elapsed time.Duration, current float64) {
	fmt.Printf("\r  %-7s round %d: %9d / %d  %5.1f%%  %8.0f msg/s average  %8.0f msg/s now  %6.1fs ",
		res.kind, res.round, res.counted, res.n, 100*float64(res.counted)/float64(res.n),
		float64(res.counted)/elapsed.Seconds(), current, elapsed.Seconds())
}
