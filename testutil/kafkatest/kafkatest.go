// Package kafkatest runs a real, single-node Apache Kafka broker for tests,
// demos and benchmarks.
//
// The broker is the official Kafka release run from its Maven jars (fetched
// once into a cache directory by fetch-kafka.sh) in KRaft mode, as a combined
// broker and controller listening on 127.0.0.1; a release before 3.5
// (Options.KafkaVersion) runs on a ZooKeeper of its own instead. Nothing is
// mocked: clients speak the Kafka protocol to the same code that runs in
// production.
//
// Start runs a broker owned by one test; Shared runs one broker per test
// binary, which a package enables by calling Main from its TestMain:
//
//	func TestMain(m *testing.M) { kafkatest.Main(m) }
//
//	func TestSomething(t *testing.T) {
//		b := kafkatest.Shared(t)
//		b.CreateTopic(t, "metrics", 3)
//		b.Produce(t, "metrics", []byte("cpu value=1"))
//	}
//
// The harness needs java (17 or newer) on PATH, and mvn on the first run to
// fetch the jars; scripts/install-deps.sh installs both, and kcat for ProduceWithKcat.
// Missing tools make the tests fail, not skip, so that a machine that cannot
// run them is noticed.
package kafkatest

import (
	"fmt"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/influxdata/telegraf"
	"github.com/influxdata/telegraf/plugins/common/kafka"
)

// KafkaVersion is the Apache Kafka release the harness runs. It must equal
// kafka.version in maven/pom.xml and the default in fetch-kafka.sh (a test
// checks this). 4.1 is the newest release line that sarama v1.46 knows by
// name (sarama.V4_1_0_0), so clients and broker agree on protocol versions.
const KafkaVersion = "4.1.2"

// SaramaVersion is the protocol version announced by the sarama
// configurations this package builds; it matches KafkaVersion.
var SaramaVersion = sarama.V4_1_0_0

// Defaults for Options.
const (
	DefaultUser         = "alice"
	DefaultPassword     = "alice-secret"
	DefaultHeap         = "512m"
	DefaultStartTimeout = 90 * time.Second
)

// Options configures a broker started with Start.
type Options struct {
	// SASLSCRAM adds a SASL_SSL listener that authenticates clients with
	// SCRAM-SHA-512 and serves a certificate for 127.0.0.1 and localhost
	// signed by a CA generated for this broker (see CAFile). The PLAINTEXT
	// listener at Addr stays available for set-up and checks.
	SASLSCRAM bool
	// Users maps SCRAM user names to passwords. They are created when the
	// storage is formatted, or on ZooKeeper before the broker starts. Nil
	// means {DefaultUser: DefaultPassword}. Names and passwords must be
	// printable ASCII without spaces, commas, quotes, '=' or brackets, which
	// the syntax of the storage tool's --add-scram and of ConfigCommand's
	// --add-config reserves.
	Users map[string]string
	// Partitions is the broker's num.partitions, the partition count of
	// topics created without one (auto-created topics, or CreateTopic with
	// partitions < 1). Zero means 1.
	Partitions int
	// AutoCreateTopics lets the broker create topics on first use. Off by
	// default so that a test that forgets CreateTopic fails instead of
	// silently depending on broker defaults.
	AutoCreateTopics bool
	// Heap is the JVM's maximum heap, as in -Xmx. Empty means DefaultHeap.
	Heap string
	// StartTimeout bounds the wait for the broker to serve metadata.
	// Zero means DefaultStartTimeout.
	StartTimeout time.Duration
	// Properties are added to server.properties last, overriding the
	// harness's own settings.
	Properties map[string]string
	// KafkaVersion is the Apache Kafka release to run, for a test of how
	// clients meet another broker; its jars are fetched on first use (with
	// mvn, as for the package's KafkaVersion, which empty means) next to
	// those of KafkaVersion. Releases from 3.5 on run in KRaft mode; older
	// ones (from 2.4, the first built for Scala 2.13) run on ZooKeeper, which
	// the broker starts and Stop stops with it, and which holds the SCRAM
	// credentials: KRaft's storage tool takes them only from 3.5. 2.5.1 (on
	// ZooKeeper, on Java 17 although it was released for 8 and 11) and 3.9.1
	// are known to run, with and without SASLSCRAM.
	KafkaVersion string
}

func (o Options) withDefaults() Options {
	if o.SASLSCRAM && o.Users == nil {
		o.Users = map[string]string{DefaultUser: DefaultPassword}
	}
	if o.Partitions < 1 {
		o.Partitions = 1
	}
	if o.Heap == "" {
		o.Heap = DefaultHeap
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = DefaultStartTimeout
	}
	if o.KafkaVersion == "" {
		o.KafkaVersion = KafkaVersion
	}
	return o
}

// Broker is a running Kafka broker. Its methods may be called from several
// goroutines.
type Broker struct {
	opts      Options
	dir       string
	clusterID string
	addr      string
	saslAddr  string
	caFile    string
	caPEM     []byte
	logPath   string
	ownedDir  string // deleted by reapStale after a crash; see start
	proc      *process
	release   release
	zk        *process // the broker's ZooKeeper, nil in KRaft mode
	zkAddr    string
	zkLogPath string
	java      string // what launch needs to start the broker again
	libs      string
	runDir    string

	logMu sync.Mutex
	logf  func(format string, args ...any)

	stopOnce sync.Once
}

// Addr is the host:port of the PLAINTEXT listener.
func (b *Broker) Addr() string { return b.addr }

// SASLAddr is the host:port of the SASL_SSL (SCRAM-SHA-512) listener, or ""
// when the broker was started without Options.SASLSCRAM.
func (b *Broker) SASLAddr() string { return b.saslAddr }

// CAFile is the path of the PEM file holding the CA certificate that signed
// the SASL_SSL listener's certificate, or "" without Options.SASLSCRAM.
func (b *Broker) CAFile() string { return b.caFile }

// CACertPEM returns the PEM encoding of the CA certificate behind CAFile, or
// nil without Options.SASLSCRAM.
func (b *Broker) CACertPEM() []byte { return append([]byte(nil), b.caPEM...) }

// Users returns the SCRAM credentials the broker accepts, by user name.
func (b *Broker) Users() map[string]string {
	users := make(map[string]string, len(b.opts.Users))
	for name, password := range b.opts.Users {
		users[name] = password
	}
	return users
}

// ClusterID is the KRaft cluster id the storage was formatted with, or, on
// ZooKeeper, the id the broker found there.
func (b *Broker) ClusterID() string { return b.clusterID }

// ZooKeeperAddr is the host:port of the broker's ZooKeeper, or "" in KRaft
// mode.
func (b *Broker) ZooKeeperAddr() string { return b.zkAddr }

// LogFile is the path of the broker's log. It is removed together with the
// broker's directory when the test ends; tests that fail print its tail.
func (b *Broker) LogFile() string { return b.logPath }

func (b *Broker) log(format string, args ...any) {
	b.logMu.Lock()
	logf := b.logf
	b.logMu.Unlock()
	if logf != nil {
		logf(format, args...)
	}
}

func (b *Broker) setLogger(logf func(format string, args ...any)) {
	b.logMu.Lock()
	b.logf = logf
	b.logMu.Unlock()
}

// Launch starts a broker outside a test, for the demo and the benchmarks: its files go
// in dir, logf receives its progress, and the caller stops it with Stop.
func Launch(logf func(string, ...any), dir string, opts Options) (*Broker, error) {
	return start(logf, dir, false, opts)
}

// Start runs a broker for the calling test and stops it when the test and
// its subtests end. It fails the test, naming the missing piece, when java or
// mvn are missing or the broker does not come up within
// Options.StartTimeout.
func Start(t testing.TB, opts Options) *Broker {
	t.Helper()
	b, err := start(t.Logf, t.TempDir(), false, opts)
	if err != nil {
		t.Fatalf("kafkatest: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			b.log("kafkatest: last lines of %s:\n%s", b.logPath, tailFile(b.logPath, 40))
		}
		b.Stop()
		// Later log calls would go to a finished test.
		b.setLogger(nil)
	})
	return b
}

// Stop stops the broker, and then its ZooKeeper if it has one: SIGTERM,
// then SIGKILL if it has not exited within a grace period. It is safe to
// call more than once; Start and Main call it anyway. Tests may call it to
// see how a client copes with a lost broker, but must not stop the broker
// returned by Shared.
func (b *Broker) Stop() {
	b.stopOnce.Do(func() {
		// The broker first: without its ZooKeeper it would spend the grace
		// period trying to reach it to deregister.
		began := time.Now()
		if err := b.proc.stop(stopGrace); err != nil {
			b.log("kafkatest: stopping broker (pid %d): %v", b.proc.pid(), err)
		} else {
			b.log("kafkatest: stopped broker (pid %d) in %v", b.proc.pid(), time.Since(began).Round(time.Millisecond))
		}
		if b.zk == nil {
			return
		}
		began = time.Now()
		if err := b.zk.stop(stopGrace); err != nil {
			b.log("kafkatest: stopping ZooKeeper (pid %d): %v", b.zk.pid(), err)
			return
		}
		b.log("kafkatest: stopped ZooKeeper (pid %d) in %v", b.zk.pid(), time.Since(began).Round(time.Millisecond))
	})
}

// Restart stops the broker cleanly and starts it again on the same ports and data
// directory, as an operator restarting Kafka does: clients see it go away and come
// back with every topic, message and committed offset. A ZooKeeper keeps running.
// It must not be called on the broker returned by Shared, nor at the same time as
// Stop.
func (b *Broker) Restart(t testing.TB) {
	t.Helper()
	began := time.Now()
	if err := b.proc.stop(stopGrace); err != nil {
		t.Fatalf("kafkatest: restarting: stopping the broker (pid %d): %v", b.proc.pid(), err)
	}
	if err := b.launch(); err != nil {
		t.Fatalf("kafkatest: restarting: starting the broker again on %s: %v", b.addr, err)
	}
	b.log("kafkatest: restarted the broker in %v", time.Since(began).Round(time.Millisecond))
}

// The broker shared by the tests of one test binary.
var (
	mainCalled atomic.Bool
	shared     struct {
		mu  sync.Mutex
		b   *Broker
		dir string
		err error
	}
	// sharedDir is shared.dir for the signal handler, which cannot wait for
	// shared.mu.
	sharedDir atomic.Pointer[string]
)

// sharedDirPrefix names the temporary directories of shared brokers.
const sharedDirPrefix = "kafkatest-shared-"

// Shared returns the test binary's shared broker (plain, without SASL),
// starting it on first use. Starting Kafka takes seconds, so tests that can
// share one should: each test then creates its own uniquely named topics.
// The package's TestMain must call Main, which stops the broker at the end.
func Shared(t testing.TB) *Broker {
	t.Helper()
	if !mainCalled.Load() {
		t.Fatal("kafkatest: Shared needs the package's TestMain to call kafkatest.Main(m), which stops the broker after the tests")
	}
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.err != nil {
		t.Fatalf("kafkatest: the shared broker failed to start earlier: %v", shared.err)
	}
	if shared.b != nil {
		return shared.b
	}
	dir, err := os.MkdirTemp("", sharedDirPrefix+"*")
	if err != nil {
		shared.err = fmt.Errorf("creating the shared broker's directory: %w", err)
		t.Fatalf("kafkatest: %v", shared.err)
	}
	b, err := start(t.Logf, dir, true, Options{})
	if err != nil {
		os.RemoveAll(dir)
		shared.err = err
		t.Fatalf("kafkatest: %v", err)
	}
	// t belongs to whichever test came first; after it, speak only when the
	// run is verbose, and to stderr.
	b.setLogger(stderrLogf)
	shared.b, shared.dir = b, dir
	sharedDir.Store(&dir)
	return b
}

func stderrLogf(format string, args ...any) {
	if testing.Verbose() {
		fmt.Fprintf(os.Stderr, format+"\n", args...)
	}
}

// Main runs the tests and then stops the shared broker, if one was started.
// Packages that use Shared call it from TestMain. It also stops every broker
// of the test binary when the binary is interrupted (SIGINT, SIGTERM), since
// cleanup functions do not run then.
func Main(m *testing.M) {
	mainCalled.Store(true)
	// Telegraf's Kafka plugins set sarama's global logger once, at their first Init;
	// set it before any client of this package's brokers runs, which would read it
	// meanwhile.
	kafka.SetLogger(telegraf.Info)
	stopSignals := stopBrokersOnSignal()
	code := m.Run()
	stopSignals()
	shared.mu.Lock()
	if shared.b != nil {
		shared.b.Stop()
		if code != 0 {
			// The log goes with the directory; keep what may explain a failure.
			fmt.Fprintf(os.Stderr, "kafkatest: last lines of the shared broker's log:\n%s\n", tailFile(shared.b.logPath, 30))
		}
		os.RemoveAll(shared.dir)
	}
	shared.mu.Unlock()
	os.Exit(code)
}

// live holds the broker (and ZooKeeper) processes that are running, for the
// signal handler: from their start, since a signal may come while one starts.
var live struct {
	mu    sync.Mutex
	procs map[*process]struct{}
}

func register(p *process) {
	live.mu.Lock()
	defer live.mu.Unlock()
	if live.procs == nil {
		live.procs = make(map[*process]struct{})
	}
	live.procs[p] = struct{}{}
}

func unregister(p *process) {
	live.mu.Lock()
	defer live.mu.Unlock()
	delete(live.procs, p)
}

func stopBrokersOnSignal() (stop func()) {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case sig := <-sigs:
			live.mu.Lock()
			procs := make([]*process, 0, len(live.procs))
			for p := range live.procs {
				procs = append(procs, p)
			}
			live.mu.Unlock()
			for _, p := range procs {
				p.kill()
			}
			if dir := sharedDir.Load(); dir != nil {
				os.RemoveAll(*dir)
			}
			// Die of the same signal, as the binary would have without us.
			signal.Reset(sig)
			if p, err := os.FindProcess(os.Getpid()); err == nil {
				_ = p.Signal(sig)
			}
			time.Sleep(time.Second)
			os.Exit(2)
		case <-done:
		}
	}()
	return func() {
		signal.Stop(sigs)
		close(done)
	}
}
