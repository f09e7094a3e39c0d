package kafkatest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// process is a running broker JVM. It leads its own process group, so that
// signals reach it and anything it may spawn, and not the test binary.
type process struct {
	cmd     *exec.Cmd
	pidFile string
	done    chan struct{} // closed when the process has been reaped
	waitErr error         // valid once done is closed
}

// startProcess runs java with args in dir, its output appended to logPath,
// and records it in runDir so that a later run can kill it should this test
// binary die without cleaning up. config identifies the process there;
// removeDir, if not empty, is a directory that the later run deletes too.
func startProcess(java string, args []string, dir, logPath, runDir, config, removeDir string) (*process, error) {
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening the broker log: %w", err)
	}
	// The child holds its own descriptor; ours is not needed after Start.
	defer logFile.Close()

	cmd := exec.Command(java, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	register(p)
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
		unregister(p)
	}()
	p.pidFile = writePidFile(runDir, cmd.Process.Pid, config, removeDir)
	return p, nil
}

func (p *process) pid() int { return p.cmd.Process.Pid }

// stop asks the broker to shut down cleanly and kills it if it has not
// exited after grace.
func (p *process) stop(grace time.Duration) error {
	defer p.removePidFile()
	select {
	case <-p.done:
		return nil
	default:
	}
	if err := terminateGroup(p.cmd.Process); err != nil {
		// Most likely it exited between the check above and now.
		select {
		case <-p.done:
			return nil
		default:
		}
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(grace):
	}
	killGroup(p.cmd.Process)
	select {
	case <-p.done:
		return fmt.Errorf("did not exit within %v of SIGTERM; killed it", grace)
	case <-time.After(10 * time.Second):
		return errors.New("still running 10s after SIGKILL")
	}
}

// kill ends the broker at once, without waiting for it.
func (p *process) kill() {
	select {
	case <-p.done:
	default:
		killGroup(p.cmd.Process)
	}
	p.removePidFile()
}

func (p *process) removePidFile() {
	if p.pidFile != "" {
		os.Remove(p.pidFile)
	}
}

// writePidFile records pid as a broker owned by this test binary. It is
// best effort: without it only the stale-process clean-up is lost.
func writePidFile(runDir string, pid int, config, removeDir string) string {
	if err := os.MkdirAll(runDir, 0o755); err != nil {
		return ""
	}
	path := filepath.Join(runDir, strconv.Itoa(pid)+".pid")
	content := fmt.Sprintf("owner %d\nconfig %s\n", os.Getpid(), config)
	if removeDir != "" {
		content += fmt.Sprintf("remove %s\n", removeDir)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		return ""
	}
	return path
}

// reapStale kills brokers recorded in runDir whose test binary no longer
// runs: a binary killed by a signal, or by go test's -timeout, runs no
// cleanup. A process is killed only if its command line still names the
// recorded server.properties, so that a reused pid is left alone.
func reapStale(runDir string, logf func(string, ...any)) {
	entries, err := os.ReadDir(runDir)
	if err != nil {
		return
	}
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".pid") {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSuffix(name, ".pid"))
		if err != nil {
			continue
		}
		path := filepath.Join(runDir, name)
		data, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		var owner int
		var config, removeDir string
		for _, line := range strings.Split(string(data), "\n") {
			key, value, _ := strings.Cut(line, " ")
			switch key {
			case "owner":
				owner, _ = strconv.Atoi(value)
			case "config":
				config = value
			case "remove":
				removeDir = value
			}
		}
		if owner == 0 || config == "" || owner == os.Getpid() || processAlive(owner) {
			continue
		}
		if cmdline, err := processCmdline(pid); err == nil && strings.Contains(cmdline, config) {
			if err := killPid(pid); err == nil {
				logf("kafkatest: killed broker pid %d left behind by test process %d", pid, owner)
			}
		} else if processAlive(pid) && errors.Is(err, errNoCmdline) {
			// Cannot tell whether it is still ours: leave both alone.
			continue
		}
		// Only directories that Shared made are deleted, whatever the file
		// says.
		if removeDir != "" && strings.HasPrefix(filepath.Base(removeDir), sharedDirPrefix) {
			os.RemoveAll(removeDir)
		}
		os.Remove(path)
	}
}

var errNoCmdline = errors.New("cannot read process command lines on this system")
