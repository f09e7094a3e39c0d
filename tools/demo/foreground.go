package main

import (
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"
)

// takeForeground moves the demo into a process group of its own and makes it the
// terminal's foreground group, so that Ctrl-C reaches the demo alone. make, which
// runs it, would otherwise get the SIGINT too and exit 130 however the demo ended.
// It returns a function that gives the terminal back; without a terminal on stdin it
// does nothing.
func takeForeground() (restore func()) {
	tty := int(os.Stdin.Fd())
	before, err := unix.IoctlGetInt(tty, unix.TIOCGPGRP)
	own := syscall.Getpgrp()
	if err != nil || before != own {
		return func() {} // no terminal, or started in the background
	}
	if err := syscall.Setpgid(0, 0); err != nil {
		return func() {}
	}
	// A process outside the foreground group that sets it is sent SIGTTOU.
	signal.Ignore(syscall.SIGTTOU)
	if err := unix.IoctlSetPointerInt(tty, unix.TIOCSPGRP, syscall.Getpgrp()); err != nil {
		_ = syscall.Setpgid(0, own) // back where Ctrl-C reaches it
		return func() {}
	}
	return func() { _ = unix.IoctlSetPointerInt(tty, unix.TIOCSPGRP, before) }
}
