//go:build !unix

package kafkatest

import (
	"os"
	"syscall"
)

// Without process groups the JVM itself is the only process to stop, and
// it is stopped abruptly: Windows has no SIGTERM to send it.

func sysProcAttr() *syscall.SysProcAttr { return nil }

func terminateGroup(p *os.Process) error { return p.Kill() }

func killGroup(p *os.Process) { p.Kill() }

func killPid(pid int) error {
	p, err := os.FindProcess(pid)
	if err != nil {
		return err
	}
	return p.Kill()
}

func processAlive(int) bool { return false }

func processCmdline(int) (string, error) { return "", errNoCmdline }
