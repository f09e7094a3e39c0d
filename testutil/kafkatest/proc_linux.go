package kafkatest

import (
	"bytes"
	"os"
	"strconv"
	"syscall"
)

func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{
		Setpgid: true,
		// If the test binary dies without cleaning up (SIGKILL, a -timeout
		// panic), the kernel kills the JVM with it.
		Pdeathsig: syscall.SIGKILL,
	}
}

func processCmdline(pid int) (string, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return "", err
	}
	return string(bytes.ReplaceAll(data, []byte{0}, []byte{' '})), nil
}
