package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// runSaramaCeiling reads the topic with plain sarama partition consumers in this
// process; CPU is this process's own over the read (the in-process sink is idle then).
func runSaramaCeiling(ctx context.Context, e *env, round int) (result, error) {
	res := newResult(e, runSarama, round)
	before := selfCPU()
	n, took, err := consumeCeiling(ctx, e.brokerAddr, e.workload.topic())
	res.counted, res.elapsed, res.cpu = n, took, selfCPU()-before
	if err != nil {
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
		res.failure = err.Error()
	} else if n < int64(e.n) {
		res.failure = fmt.Sprintf("read %d of %d", n, e.n)
	}
	return res, nil
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// runKcatCeiling reads the topic with kcat, an independent librdkafka client, to
// /dev/null; -e makes it exit once every partition is read to its end.
func runKcatCeiling(ctx context.Context, e *env, round int) (result, error) {
	res := newResult(e, runKcat, round)
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		res.failure = "kcat is missing: run make deps"
		return res, nil
	}
	dir, err := runDir(e, runID(e, runKcat, round))
	if err != nil {
		return res, err
	}
	res.logPath = filepath.Join(dir, "kcat.log")
	logFile, err := os.Create(res.logPath)
	if err != nil {
		return res, err
	}
	defer logFile.Close()
	devNull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		return res, err
	}
	defer devNull.Close()
	cctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	cmd := exec.CommandContext(cctx, kcat, "-C", "-b", e.brokerAddr, "-t", e.workload.topic(),
		"-o", "beginning", "-e", "-q")
	cmd.Stdout, cmd.Stderr = devNull, logFile
	start := time.Now()
	err = cmd.Run()
	res.elapsed = time.Since(start)
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	if cmd.ProcessState != nil {
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			res.cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
			res.peakKB["kcat"] = ru.Maxrss // kilobytes on Linux
		}
	}
	var exitErr *exec.ExitError
	switch {
	case errors.Is(cctx.Err(), context.DeadlineExceeded):
		res.failure = fmt.Sprintf("timed out after %v", e.timeout)
	case errors.As(err, &exitErr):
		res.failure = fmt.Sprintf("kcat: %v (log: %s)", err, res.logPath)
	case err != nil:
		return res, fmt.Errorf("running kcat: %w", err)
	default:
		// -e exits at the end of every partition: everything was read.
		res.counted = int64(e.n)
	}
	return res, nil
}
