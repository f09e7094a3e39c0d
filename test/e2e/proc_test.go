package e2e

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// childProcess returns the pid of the child of parent whose command line contains
// name, waiting up to a minute for it to appear (Telegraf restarts execd plugins
// after restart_delay). Only children of parent are looked at: other programs on the
// machine may run the same binaries.
func childProcess(t *testing.T, parent int, name string) int {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		if pid := findChild(parent, name); pid != 0 {
			return pid
		}
		if time.Now().After(deadline) {
			t.Fatalf("no child process of pid %d running %s after a minute", parent, name)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func findChild(parent int, name string) int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		ppid, state, ok := procStat(pid)
		if !ok || ppid != parent || state == 'Z' {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && bytes.Contains(cmdline, []byte(name)) {
			return pid
		}
	}
	return 0
}

// procStat reads the parent pid and state of pid from /proc/<pid>/stat.
func procStat(pid int) (ppid int, state byte, ok bool) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, false
	}
	// "pid (comm) state ppid ...": comm may hold spaces and parentheses.
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, false
	}
	fields := strings.Fields(s[i+1:])
	if len(fields) < 2 || len(fields[0]) != 1 {
		return 0, 0, false
	}
	ppid, err = strconv.Atoi(fields[1])
	return ppid, fields[0][0], err == nil
}

// alive reports whether pid runs (a zombie has ended).
func alive(pid int) bool {
	_, state, ok := procStat(pid)
	return ok && state != 'Z'
}

// killNine sends SIGKILL to pid and waits until it has died.
func killNine(t *testing.T, pid int, what string) {
	t.Helper()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill -9 %s (pid %d): %v", what, pid, err)
	}
	waitGone(t, pid, what, time.Minute)
}

// waitGone waits until pid has ended.
func waitGone(t *testing.T, pid int, what string, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for alive(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("%s (pid %d) still runs %v later", what, pid, limit)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
