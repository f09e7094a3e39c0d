package main

import (
	"fmt"
	"os/exec"
	"syscall"
	"time"
)

// followed is a started process whose tree is sampled until it is stopped.
type followed struct {
	cmd     *exec.Cmd
	exited  chan struct{} // closed once the process is reaped
	waitErr error         // its exit status, once exited is closed
	sampler *treeSampler
	// stopProfiles ends the CPU profiles of a run with -profile, before the
	// process is asked to stop so that its shutdown is left out.
	stopProfiles func()
}

// startFollowed starts cmd, which must not outlive the benchmark, and samples its
// process tree; beforeWait runs before the process is reaped (to drain its pipes).
func startFollowed(cmd *exec.Cmd, beforeWait func()) (*followed, error) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	f := &followed{cmd: cmd, exited: make(chan struct{})}
	go func() {
		if beforeWait != nil {
			beforeWait()
		}
		f.waitErr = cmd.Wait()
		close(f.exited)
	}()
	f.sampler = startSampler(cmd.Process.Pid, 200*time.Millisecond)
	return f, nil
}

// stop asks the process to end, kills it after 30 s, and ends the sampling. It may
// be called more than once.
func (f *followed) stop() {
	if f.stopProfiles != nil {
		f.stopProfiles()
		f.stopProfiles = nil
	}
	select {
	case <-f.exited:
	default:
		_ = f.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-f.exited:
		case <-time.After(30 * time.Second):
			_ = f.cmd.Process.Kill()
			<-f.exited
		}
	}
	f.sampler.Stop()
}

// peaks records the peak RSS of every process seen in res.
func (f *followed) peaks(res *result) {
	for _, ps := range f.sampler.snapshot().procs {
		res.peakKB[ps.name] = max(res.peakKB[ps.name], ps.hwmKB)
	}
}

// exitedEarly says that a process ended before the run was over.
func exitedEarly(name string, err error) error {
	if err == nil {
		return fmt.Errorf("%s exited early with status 0", name)
	}
	return fmt.Errorf("%s exited early: %w", name, err)
}
