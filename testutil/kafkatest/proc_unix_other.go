//go:build unix && !linux

package kafkatest

import "syscall"

func sysProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }

func processCmdline(int) (string, error) { return "", errNoCmdline }
