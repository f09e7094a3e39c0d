//go:build unix

package kafkatest

import (
	"errors"
	"os"
	"syscall"
)

// The broker leads its own process group (Setpgid), so these signal the
// group: the JVM and anything it started.

func terminateGroup(p *os.Process) error { return syscall.Kill(-p.Pid, syscall.SIGTERM) }

func killGroup(p *os.Process) { _ = syscall.Kill(-p.Pid, syscall.SIGKILL) }

func killPid(pid int) error { return syscall.Kill(-pid, syscall.SIGKILL) }

func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
