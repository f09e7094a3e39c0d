package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat. Linux
// reports 100 on every architecture Go supports, whatever the kernel's HZ.
const clockTicks = 100

// procSample is what /proc says about one process at one moment.
type procSample struct {
	name  string
	cpu   time.Duration // utime + stime of the process itself
	hwmKB int64         // VmHWM: peak resident set size
}

// treeSampler follows a process and all its descendants, keeping the last values
// seen for each pid. Children of Telegraf die with it, so their final CPU time and
// peak RSS are only known from samples taken while they run.
type treeSampler struct {
	root int

	mu   sync.Mutex
	last map[int]procSample

	stop chan struct{}
	done chan struct{}
}

func startSampler(root int, every time.Duration) *treeSampler {
	s := &treeSampler{root: root, last: map[int]procSample{}, stop: make(chan struct{}), done: make(chan struct{})}
	s.sample()
	go func() {
		defer close(s.done)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-tick.C:
				s.sample()
			}
		}
	}()
	return s
}

// Stop ends the sampling; call it before the root process is reaped.
func (s *treeSampler) Stop() {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	<-s.done
}

// sample reads every process under root once.
func (s *treeSampler) sample() {
	pids := descendants(s.root)
	seen := make(map[int]procSample, len(pids))
	for _, pid := range pids {
		ps, err := readProc(pid)
		if err != nil {
			continue // exited between the listing and the read
		}
		seen[pid] = ps
	}
	s.mu.Lock()
	for pid, ps := range seen {
		// A zombie still shows its CPU time but no VmHWM; neither value can
		// legitimately go down, so keep the largest seen.
		old := s.last[pid]
		if old.name != "" {
			ps.name = old.name // an exiting process loses its command line
		}
		ps.cpu = max(ps.cpu, old.cpu)
		ps.hwmKB = max(ps.hwmKB, old.hwmKB)
		s.last[pid] = ps
	}
	s.mu.Unlock()
}

// procStats is the result of a sampling: the processes seen and the sum of their CPU.
type procStats struct {
	cpu   time.Duration
	procs []procSample // one per pid, in no particular order
}

func (s *treeSampler) snapshot() procStats {
	s.sample()
	s.mu.Lock()
	defer s.mu.Unlock()
	var st procStats
	for _, ps := range s.last {
		st.cpu += ps.cpu
		st.procs = append(st.procs, ps)
	}
	return st
}

// byName sums the CPU of the processes by program name: Telegraf and each plugin
// are one process, the ceilings' helpers may be several.
func (st procStats) byName() map[string]time.Duration {
	m := make(map[string]time.Duration, len(st.procs))
	for _, ps := range st.procs {
		m[ps.name] += ps.cpu
	}
	return m
}

// processCPU is the CPU time pid has used so far.
func processCPU(pid int) (time.Duration, error) {
	ps, err := readProc(pid)
	if err != nil {
		return 0, err
	}
	return ps.cpu, nil
}

// descendants returns root and every process below it.
func descendants(root int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return []int{root}
	}
	children := map[int][]int{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		fields, err := statFields(pid)
		if err != nil {
			continue
		}
		ppid, err := strconv.Atoi(fields[1])
		if err != nil {
			continue
		}
		children[ppid] = append(children[ppid], pid)
	}
	out := []int{root}
	for i := 0; i < len(out); i++ {
		out = append(out, children[out[i]]...)
	}
	return out
}

// statFields returns the fields of /proc/<pid>/stat after the command name, which
// may itself contain spaces and parentheses: [0] is the state, [1] the ppid, [11]
// utime and [12] stime.
func statFields(pid int) ([]string, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return nil, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 > len(b) {
		return nil, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	fields := strings.Fields(string(b[i+2:]))
	if len(fields) < 13 {
		return nil, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(fields))
	}
	return fields, nil
}

func readProc(pid int) (procSample, error) {
	fields, err := statFields(pid)
	if err != nil {
		return procSample{}, err
	}
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return procSample{}, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	ps := procSample{cpu: time.Duration(utime+stime) * time.Second / clockTicks, name: procName(pid)}
	status, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return procSample{}, err
	}
	for line := range strings.SplitSeq(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return procSample{}, fmt.Errorf("/proc/%d/status: VmHWM: %w", pid, err)
			}
			ps.hwmKB = kb
			break
		}
	}
	return ps, nil
}

// procName is the base name of the program, from the command line rather than
// /proc/<pid>/comm, which cuts names at 15 bytes ("telegraf-kafka-"). This program's
// own modes are told apart by their first argument ("bench -replay"). A process
// without a command line (exiting) falls back to comm.
func procName(pid int) string {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	if err != nil || len(b) == 0 {
		comm, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "comm"))
		if err != nil {
			return "pid " + strconv.Itoa(pid)
		}
		return strings.TrimSpace(string(comm))
	}
	args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
	name := filepath.Base(args[0])
	if len(args) > 1 && name == filepath.Base(os.Args[0]) {
		name += " " + args[1]
	}
	return name
}
