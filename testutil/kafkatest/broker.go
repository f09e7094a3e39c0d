package kafkatest

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
)

const (
	// brokerClass and storageToolClass are the entry points in
	// kafka_2.13-<version>.jar that bin/kafka-server-start.sh and
	// bin/kafka-storage.sh run.
	brokerClass      = "kafka.Kafka"
	storageToolClass = "kafka.tools.StorageTool"

	formatTimeout = 2 * time.Minute
	stopGrace     = 20 * time.Second
	// startAttempts covers the small window in which another process may take
	// a port between freePorts closing it and the broker binding it.
	startAttempts = 3
)

var errPortInUse = errors.New("a listener port was taken by another process")

// start formats storage under dir and runs a broker there. logf receives
// progress lines; the returned broker keeps it for Stop. If ownsDir, dir is
// deleted by a later run should this test binary die without doing so.
func start(logf func(string, ...any), dir string, ownsDir bool, opts Options) (*Broker, error) {
	opts = opts.withDefaults()
	if err := validateUsers(opts.Users); err != nil {
		return nil, err
	}
	rel, err := parseRelease(opts.KafkaVersion)
	if err != nil {
		return nil, err
	}
	java, err := exec.LookPath("java")
	if err != nil {
		return nil, errors.New("java not found on PATH: the Kafka broker needs a Java 17 or newer runtime " +
			"(apt-get install -y openjdk-17-jre-headless, or run scripts/install-deps.sh)")
	}
	libs, err := ensureJars(logf, opts.KafkaVersion)
	if err != nil {
		return nil, err
	}
	cache := filepath.Dir(libs)
	reapStale(filepath.Join(cache, "run"), logf)

	b := &Broker{opts: opts, release: rel, logf: logf}
	if ownsDir {
		b.ownedDir = dir
	}
	if opts.SASLSCRAM {
		b.caPEM, b.caFile, err = writeTLSFiles(dir, rel.pemKeystore())
		if err != nil {
			return nil, fmt.Errorf("creating TLS certificates for the SASL_SSL listener: %w", err)
		}
	}
	for attempt := 1; ; attempt++ {
		b.dir = filepath.Join(dir, fmt.Sprintf("node-%d", attempt))
		err = b.run(java, libs, filepath.Join(cache, "run"))
		if err == nil {
			return b, nil
		}
		if !errors.Is(err, errPortInUse) || attempt == startAttempts {
			return nil, err
		}
		logf("kafkatest: %v; retrying with other ports", err)
	}
}

// run formats the storage in b.dir (or, on ZooKeeper, starts ZooKeeper and
// adds the SCRAM users to it), starts the broker and waits until it serves
// metadata. Whatever it started is stopped again when it fails.
func (b *Broker) run(java, libs, runDir string) error {
	if err := os.MkdirAll(b.dir, 0o755); err != nil {
		return fmt.Errorf("creating the broker directory: %w", err)
	}
	nports := 2
	if b.opts.SASLSCRAM {
		nports = 3
	}
	ports, err := freePorts(nports)
	if err != nil {
		return err
	}
	b.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[1]))
	if b.opts.SASLSCRAM {
		b.saslAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[2]))
	}
	b.java, b.libs, b.runDir = java, libs, runDir
	b.logPath = filepath.Join(b.dir, "broker.log")
	// Every release logs through SLF4J, here to the log4j2 backend that
	// maven/pom.xml adds: the log4j 1 (or reload4j) of releases before 4.0
	// is in their binary distribution, not among the Maven artifact's
	// dependencies, so no log4j.properties is needed for them.
	log4j := filepath.Join(b.dir, "log4j2.properties")
	if err := os.WriteFile(log4j, []byte(log4jConfig), 0o644); err != nil {
		return fmt.Errorf("writing log4j2.properties: %w", err)
	}
	if b.release.zooKeeper() {
		return b.runOnZooKeeper(ports)
	}

	b.clusterID, err = randomClusterID()
	if err != nil {
		return err
	}
	config := filepath.Join(b.dir, "server.properties")
	if err := writeProperties(config, b.properties(ports)); err != nil {
		return fmt.Errorf("writing server.properties: %w", err)
	}
	began := time.Now()
	if err := b.format(java, libs, config, log4j); err != nil {
		return err
	}
	b.log("kafkatest: formatted KRaft storage (cluster %s) in %v", b.clusterID, time.Since(began).Round(time.Millisecond))
	return b.launch()
}

// runOnZooKeeper is run for a release before KRaft: ZooKeeper on ports[0],
// the SCRAM users in it, then the broker.
func (b *Broker) runOnZooKeeper(ports []int) error {
	if err := b.startZooKeeper(ports[0]); err != nil {
		return err
	}
	err := b.startOnZooKeeper(ports)
	if err != nil {
		b.zk.kill()
	}
	return err
}

func (b *Broker) startOnZooKeeper(ports []int) error {
	if b.opts.SASLSCRAM {
		began := time.Now()
		if err := b.addSCRAMUsersToZooKeeper(); err != nil {
			return err
		}
		b.log("kafkatest: added %d SCRAM users to ZooKeeper in %v", len(b.opts.Users), time.Since(began).Round(time.Millisecond))
	}
	config := filepath.Join(b.dir, "server.properties")
	if err := writeProperties(config, b.properties(ports)); err != nil {
		return fmt.Errorf("writing server.properties: %w", err)
	}
	if err := b.launch(); err != nil {
		return err
	}
	// The broker took the cluster id from ZooKeeper, which made it up.
	id, err := readClusterID(filepath.Join(b.dir, "data"))
	if err != nil {
		b.proc.kill()
		return err
	}
	b.clusterID = id
	return nil
}

// launch starts the JVM on the storage and server.properties in b.dir and waits until
// it serves metadata.
func (b *Broker) launch() error {
	began := time.Now()
	config := filepath.Join(b.dir, "server.properties")
	log4j := filepath.Join(b.dir, "log4j2.properties")
	args := []string{
		"-Xms128m", "-Xmx" + b.opts.Heap,
		// As bin/kafka-run-class.sh does, minus the GC log files. Their flags
		// are the only ones that script chooses by Java version (-Xloggc
		// before 9, -Xlog after), so every release runs with these on Java 17.
		"-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-XX:InitiatingHeapOccupancyPercent=35",
		"-XX:+ExplicitGCInvokesConcurrent", "-XX:+ExitOnOutOfMemoryError", "-XX:-UsePerfData",
		"-Djava.awt.headless=true",
		"-Dlog4j2.configurationFile=" + log4j,
		"-cp", filepath.Join(b.libs, "*"),
		brokerClass, config,
	}
	proc, err := startProcess(b.java, args, b.dir, b.logPath, b.runDir, config, b.ownedDir)
	if err != nil {
		return fmt.Errorf("starting the Kafka broker: %w", err)
	}
	b.proc = proc
	b.log("kafkatest: started Kafka %s (pid %d), waiting for %s", b.opts.KafkaVersion, b.proc.pid(), b.addr)
	if err := waitProcess(b.proc, "the broker", b.logPath, b.opts.StartTimeout, b.probe); err != nil {
		b.proc.kill()
		if strings.Contains(tailFile(b.logPath, 200), "Address already in use") {
			return fmt.Errorf("%w: %w", errPortInUse, err)
		}
		return err
	}
	listeners := "PLAINTEXT " + b.addr
	if b.saslAddr != "" {
		listeners += ", SASL_SSL/SCRAM-SHA-512 " + b.saslAddr
	}
	b.log("kafkatest: broker ready in %v (%s; log %s)", time.Since(began).Round(time.Millisecond), listeners, b.logPath)
	return nil
}

// properties returns server.properties for a combined broker and controller
// on ports[0] (controller), ports[1] (PLAINTEXT) and ports[2] (SASL_SSL), or,
// on ZooKeeper, for a broker whose ZooKeeper listens on ports[0].
func (b *Broker) properties(ports []int) map[string]string {
	host := "127.0.0.1"
	listen := func(name string, port int) string { return fmt.Sprintf("%s://%s:%d", name, host, port) }
	p := map[string]string{
		"inter.broker.listener.name": "PLAINTEXT",
		"log.dirs":                   filepath.Join(b.dir, "data"),

		// One node: every internal topic must make do with one replica, and
		// one partition each keeps the first group join fast.
		"num.partitions":                                   strconv.Itoa(b.opts.Partitions),
		"default.replication.factor":                       "1",
		"min.insync.replicas":                              "1",
		"offsets.topic.replication.factor":                 "1",
		"offsets.topic.num.partitions":                     "1",
		"transaction.state.log.replication.factor":         "1",
		"transaction.state.log.min.isr":                    "1",
		"transaction.state.log.num.partitions":             "1",
		"share.coordinator.state.topic.replication.factor": "1",
		"share.coordinator.state.topic.min.isr":            "1",
		// Consumers in tests join one at a time; waiting for more is wasted.
		"group.initial.rebalance.delay.ms": "0",
		"auto.create.topics.enable":        strconv.FormatBool(b.opts.AutoCreateTopics),

		// Two cores: the defaults (8 I/O threads and so on) only cost memory.
		"num.network.threads":               "2",
		"num.io.threads":                    "2",
		"background.threads":                "2",
		"num.recovery.threads.per.data.dir": "1",
	}
	if b.release.zooKeeper() {
		p["broker.id"] = "1"
		p["zookeeper.connect"] = b.zkAddr
		p["listeners"] = listen("PLAINTEXT", ports[1])
		p["advertised.listeners"] = listen("PLAINTEXT", ports[1])
		p["listener.security.protocol.map"] = "PLAINTEXT:PLAINTEXT"
	} else {
		p["process.roles"] = "broker,controller"
		p["node.id"] = "1"
		p["controller.quorum.voters"] = fmt.Sprintf("1@%s:%d", host, ports[0])
		p["controller.listener.names"] = "CONTROLLER"
		p["listeners"] = listen("CONTROLLER", ports[0]) + "," + listen("PLAINTEXT", ports[1])
		p["advertised.listeners"] = listen("PLAINTEXT", ports[1])
		p["listener.security.protocol.map"] = "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"
	}
	if b.opts.SASLSCRAM {
		p["listeners"] += "," + listen("SASL_SSL", ports[2])
		p["advertised.listeners"] += "," + listen("SASL_SSL", ports[2])
		p["listener.security.protocol.map"] += ",SASL_SSL:SASL_SSL"
		p["sasl.enabled.mechanisms"] = "SCRAM-SHA-512"
		p["listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config"] =
			"org.apache.kafka.common.security.scram.ScramLoginModule required;"
		p["listener.name.sasl_ssl.ssl.client.auth"] = "none"
		dir := filepath.Dir(b.caFile)
		if b.release.pemKeystore() {
			// PEM files avoid a keytool step: the key and certificate chain in
			// one file, no password since the file lives in the test's temp dir.
			p["listener.name.sasl_ssl.ssl.keystore.type"] = "PEM"
			p["listener.name.sasl_ssl.ssl.keystore.location"] = filepath.Join(dir, "server.pem")
		} else {
			p["listener.name.sasl_ssl.ssl.keystore.type"] = "PKCS12"
			p["listener.name.sasl_ssl.ssl.keystore.location"] = filepath.Join(dir, "server.p12")
			p["listener.name.sasl_ssl.ssl.keystore.password"] = keystorePassword
			p["listener.name.sasl_ssl.ssl.key.password"] = keystorePassword
		}
	}
	for k, v := range b.opts.Properties {
		p[k] = v
	}
	return p
}

// format runs the storage tool, which writes meta.properties and the
// bootstrap metadata, including the SCRAM credentials.
func (b *Broker) format(java, libs, config, log4j string) error {
	args := []string{
		// A short-lived tool: optimise for start-up.
		"-Xmx256m", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-XX:-UsePerfData",
		"-Dlog4j2.configurationFile=" + log4j, "-Dkafkatest.level=warn",
		"-cp", filepath.Join(libs, "*"),
		storageToolClass, "format", "--cluster-id", b.clusterID, "--config", config,
	}
	names := make([]string, 0, len(b.opts.Users))
	for name := range b.opts.Users {
		names = append(names, name)
	}
	sort.Strings(names)
	if b.opts.SASLSCRAM {
		for _, name := range names {
			args = append(args, "--add-scram",
				fmt.Sprintf("SCRAM-SHA-512=[name=%s,password=%s]", name, b.opts.Users[name]))
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), formatTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, java, args...)
	cmd.Dir = b.dir
	cmd.SysProcAttr = sysProcAttr()
	out, err := cmd.CombinedOutput()
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("gave up after %v", formatTimeout)
		}
		return fmt.Errorf("formatting KRaft storage with %s: %w\n%s", storageToolClass, err, lastLines(string(out), 40))
	}
	return nil
}

// probe succeeds once a sarama client gets metadata naming a controller from
// the PLAINTEXT listener (and the SASL_SSL port accepts connections).
func (b *Broker) probe() error {
	cfg := NewConfig()
	cfg.Net.DialTimeout = 2 * time.Second
	cfg.Net.ReadTimeout = 5 * time.Second
	cfg.Metadata.Retry.Max = 0
	cfg.Metadata.Full = false
	client, err := newClient(b.addr, cfg)
	if err != nil {
		return err
	}
	defer client.Close()
	// With Metadata.Full off, NewClient fetches nothing: ask for it here.
	if err := client.RefreshMetadata(); err != nil {
		return err
	}
	if len(client.Brokers()) == 0 {
		return errors.New("metadata lists no brokers")
	}
	if _, err := client.Controller(); err != nil {
		return fmt.Errorf("no controller yet: %w", err)
	}
	if b.saslAddr != "" {
		conn, err := net.DialTimeout("tcp", b.saslAddr, 2*time.Second)
		if err != nil {
			return fmt.Errorf("SASL_SSL listener: %w", err)
		}
		conn.Close()
	}
	return nil
}

// freePorts returns n distinct ports that were free on 127.0.0.1 a moment
// ago. All are held open together so that they differ.
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("finding a free port: %w", err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// randomClusterID returns an id in the form of Kafka's Uuid.randomUuid: 16
// random bytes in unpadded URL-safe base64, never starting with '-' (which
// the storage tool would read as a flag).
func randomClusterID() (string, error) {
	for {
		var raw [16]byte
		if _, err := rand.Read(raw[:]); err != nil {
			return "", fmt.Errorf("generating a cluster id: %w", err)
		}
		id := base64.RawURLEncoding.EncodeToString(raw[:])
		if !strings.HasPrefix(id, "-") {
			return id, nil
		}
	}
}

// validateUsers rejects SCRAM credentials that --add-scram (or, on
// ZooKeeper, ConfigCommand's --add-config) cannot carry.
func validateUsers(users map[string]string) error {
	bad := func(s string) bool {
		if s == "" {
			return true
		}
		for _, r := range s {
			if r > unicode.MaxASCII || !unicode.IsPrint(r) || strings.ContainsRune(` ,="[]\`, r) {
				return true
			}
		}
		return false
	}
	for name, password := range users {
		if bad(name) || bad(password) {
			return fmt.Errorf("SCRAM user %q: names and passwords must be non-empty printable ASCII without spaces, commas, quotes, '=', brackets or backslashes", name)
		}
	}
	return nil
}

// writeProperties writes a Java properties file, keys sorted for a stable,
// readable file.
func writeProperties(path string, props map[string]string) error {
	keys := make([]string, 0, len(props))
	for k := range props {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var sb strings.Builder
	sb.WriteString("# Written by testutil/kafkatest for a single-node test broker.\n")
	esc := strings.NewReplacer(`\`, `\\`, "\n", `\n`)
	for _, k := range keys {
		fmt.Fprintf(&sb, "%s=%s\n", esc.Replace(k), esc.Replace(props[k]))
	}
	return os.WriteFile(path, []byte(sb.String()), 0o644)
}

// log4jConfig sends everything to stdout, which is redirected to the
// broker's log file. The level is a system property so that the storage tool
// can run quietly with the same file.
const log4jConfig = `status = warn
appender.out.type = Console
appender.out.name = OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = ${sys:kafkatest.level:-info}
rootLogger.appenderRef.out.ref = OUT
# Per-request and per-partition state chatter drowns what matters.
logger.request.name = kafka.request.logger
logger.request.level = warn
logger.state.name = state.change.logger
logger.state.level = warn
# Every client and component dumps its full configuration at start-up;
# server.properties next to the log says the same more briefly.
logger.config.name = org.apache.kafka.common.config.AbstractConfig
logger.config.level = warn
`

// tailFile returns the last n lines of the file at path, or a note saying
// why it cannot.
func tailFile(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	return lastLines(string(data), n)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
