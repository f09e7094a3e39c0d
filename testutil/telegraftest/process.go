package telegraftest

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/testutil/syncbuf"
)

// Process is a running Telegraf.
type Process struct {
	cmd    *exec.Cmd
	logs   *syncbuf.Buffer
	done   chan struct{}
	err    error
	config string
}

// Start runs Telegraf at version with the given telegraf.conf text. It is stopped at
// the end of the test; its log is printed when the test failed.
func Start(t testing.TB, version, config string) *Process {
	t.Helper()
	binary := Binary(t, version)
	path := filepath.Join(t.TempDir(), "telegraf.conf")
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	p := &Process{logs: &syncbuf.Buffer{}, done: make(chan struct{}), config: path}
	p.cmd = exec.Command(binary, "--config", path)
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	// Telegraf's own children (the execd plugins) die with it if the test binary dies.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("telegraftest: starting Telegraf %s: %v", version, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.Stop(t)
		if t.Failed() {
			t.Logf("Telegraf %s log:\n%s", version, p.Logs())
		}
	})
	return p
}

// Logs returns what Telegraf wrote so far.
func (p *Process) Logs() string { return p.logs.String() }

// Exited reports whether Telegraf has stopped on its own.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Stop stops Telegraf gracefully (SIGTERM: it flushes its outputs and closes the execd
// plugins' stdin), killing it only if it has not exited after a minute.
func (p *Process) Stop(t testing.TB) {
	t.Helper()
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(time.Minute):
		_ = p.cmd.Process.Kill()
		<-p.done
		t.Errorf("telegraftest: Telegraf did not stop within a minute of SIGTERM")
	}
}

// Pid is Telegraf's process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Kill ends Telegraf with SIGKILL, as the kernel's OOM killer or kill -9 would: it
// flushes nothing. Its execd children are not signalled; they find their pipes closed.
func (p *Process) Kill(t testing.TB) {
	t.Helper()
	select {
	case <-p.done:
		t.Fatalf("telegraftest: Telegraf had already exited (%v) when it was to be killed", p.err)
	default:
	}
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatalf("telegraftest: killing Telegraf (pid %d): %v", p.Pid(), err)
	}
	<-p.done
}
