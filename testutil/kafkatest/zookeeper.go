package kafkatest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

const (
	// zooKeeperClass is the standalone server that QuorumPeerMain (what
	// bin/zookeeper-server-start.sh runs) hands a configuration without
	// peers to; the zookeeper jar that Kafka depends on holds it.
	zooKeeperClass = "org.apache.zookeeper.server.ZooKeeperServerMain"
	// configCommandClass is what bin/kafka-configs.sh runs. Before KRaft it
	// writes SCRAM credentials straight into ZooKeeper, with no broker up.
	configCommandClass = "kafka.admin.ConfigCommand"
)

// startZooKeeper runs a standalone ZooKeeper for the broker on port, its
// data under b.dir, and waits until it serves.
func (b *Broker) startZooKeeper(port int) error {
	b.zkAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	config := filepath.Join(b.dir, "zookeeper.properties")
	props := map[string]string{
		"dataDir":           filepath.Join(b.dir, "zookeeper"),
		"clientPort":        strconv.Itoa(port),
		"clientPortAddress": "127.0.0.1",
		"tickTime":          "2000",
		"maxClientCnxns":    "0",
		// The AdminServer would listen on 8080, which a test must not take,
		// and needs Jetty, which Kafka's dependencies do not bring.
		"admin.enableServer": "false",
		// waitZooKeeper asks with srvr; newer ZooKeepers allow nothing else
		// by default, and this one needs nothing else.
		"4lw.commands.whitelist": "srvr",
	}
	if err := writeProperties(config, props); err != nil {
		return fmt.Errorf("writing zookeeper.properties: %w", err)
	}
	b.zkLogPath = filepath.Join(b.dir, "zookeeper.log")
	args := []string{
		// A handful of znodes: the defaults would take a quarter of the
		// machine's memory.
		"-Xms32m", "-Xmx128m", "-XX:+UseSerialGC", "-XX:-UsePerfData",
		"-Djava.awt.headless=true",
		"-Dlog4j2.configurationFile=" + filepath.Join(b.dir, "log4j2.properties"),
		"-cp", filepath.Join(b.libs, "*"),
		zooKeeperClass, config,
	}
	began := time.Now()
	proc, err := startProcess(b.java, args, b.dir, b.zkLogPath, b.runDir, config, b.ownedDir)
	if err != nil {
		return fmt.Errorf("starting ZooKeeper: %w", err)
	}
	b.zk = proc
	err = waitProcess(proc, "ZooKeeper", b.zkLogPath, b.opts.StartTimeout, func() error { return zooKeeperServes(b.zkAddr) })
	if err != nil {
		b.zk.kill()
		if strings.Contains(tailFile(b.zkLogPath, 200), "Address already in use") {
			return fmt.Errorf("%w: %w", errPortInUse, err)
		}
		return err
	}
	b.log("kafkatest: ZooKeeper (pid %d) serves on %s after %v", proc.pid(), b.zkAddr, time.Since(began).Round(time.Millisecond))
	return nil
}

// zooKeeperServes asks the ZooKeeper at addr for its state with the srvr
// command, which it answers with "Mode: standalone" once it serves clients.
func zooKeeperServes(addr string) error {
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		return err
	}
	if _, err := conn.Write([]byte("srvr")); err != nil {
		return fmt.Errorf("asking ZooKeeper for srvr: %w", err)
	}
	answer, err := io.ReadAll(conn)
	if err != nil {
		return fmt.Errorf("reading ZooKeeper's answer to srvr: %w", err)
	}
	if !bytes.Contains(answer, []byte("Mode: ")) {
		return fmt.Errorf("ZooKeeper does not serve yet: %q", strings.TrimSpace(string(answer)))
	}
	return nil
}

// addSCRAMUsersToZooKeeper writes the SCRAM-SHA-512 credentials of
// Options.Users into ZooKeeper, where a broker before KRaft reads them, one
// ConfigCommand per user since it takes one entity at a time.
func (b *Broker) addSCRAMUsersToZooKeeper() error {
	names := make([]string, 0, len(b.opts.Users))
	for name := range b.opts.Users {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		args := []string{
			// A short-lived tool: optimise for start-up.
			"-Xmx256m", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-XX:-UsePerfData",
			"-Dlog4j2.configurationFile=" + filepath.Join(b.dir, "log4j2.properties"), "-Dkafkatest.level=warn",
			"-cp", filepath.Join(b.libs, "*"),
			configCommandClass, "--zookeeper", b.zkAddr, "--alter",
			"--add-config", fmt.Sprintf("SCRAM-SHA-512=[password=%s]", b.opts.Users[name]),
			"--entity-type", "users", "--entity-name", name,
		}
		ctx, cancel := context.WithTimeout(context.Background(), formatTimeout)
		cmd := exec.CommandContext(ctx, b.java, args...)
		cmd.Dir = b.dir
		cmd.SysProcAttr = sysProcAttr()
		out, err := cmd.CombinedOutput()
		timedOut := ctx.Err() != nil
		cancel()
		if err != nil {
			if timedOut {
				err = fmt.Errorf("gave up after %v", formatTimeout)
			}
			return fmt.Errorf("adding SCRAM user %q to ZooKeeper with %s: %w\n%s", name, configCommandClass, err, lastLines(string(out), 40))
		}
	}
	return nil
}

// waitProcess waits until ready succeeds, or proc exits, or timeout passes;
// what names proc in the error, which ends with the last lines of its log.
func waitProcess(proc *process, what, logPath string, timeout time.Duration, ready func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-proc.done:
			return fmt.Errorf("%s exited during start-up (%w); last lines of %s:\n%s",
				what, proc.waitErr, logPath, tailFile(logPath, 60))
		default:
		}
		lastErr := ready()
		if lastErr == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not serve within %v (last error: %w); last lines of %s:\n%s",
				what, timeout, lastErr, logPath, tailFile(logPath, 60))
		}
		select {
		case <-proc.done:
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// readClusterID returns the cluster id that a broker on ZooKeeper wrote to
// meta.properties in logDir, which it takes from ZooKeeper at its first start.
func readClusterID(logDir string) (string, error) {
	data, err := os.ReadFile(filepath.Join(logDir, "meta.properties"))
	if err != nil {
		return "", fmt.Errorf("reading the cluster id: %w", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if id, ok := strings.CutPrefix(strings.TrimSpace(line), "cluster.id="); ok {
			return id, nil
		}
	}
	return "", errors.New("reading the cluster id: meta.properties has no cluster.id")
}
