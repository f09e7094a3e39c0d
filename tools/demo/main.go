// Command demo runs the whole pipeline on one machine: a Kafka broker, CnosDB (a real
// one when CNOSDB_URL is set or cnosdb is on PATH, otherwise the dev server), stock
// Telegraf with both plugins, and a producer of the article's sensor JSON on topic
// "oceanic". It says what it waits for while it sets up, counts -duration from when
// data flows, shows a live progress line, and on Ctrl-C (or after -duration) stops
// producing, lets the pipeline catch up, prints rows queried back from CnosDB and stops
// everything it started. `make demo` builds the plugins and runs it.
package main

import (
	"context"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/IBM/sarama"

	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/dev/cnosdbdev"
	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/testutil/kafkatest"
	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/testutil/telegraftest"
)

const (
	topic      = "oceanic"
	partitions = 6
	group      = "telegraf-demo"
	database   = "telegraf"
	table      = "kafka_consumer"
)

// Bounds of the waits, so that a demo that cannot work says why instead of hanging.
const (
	flowTimeout  = 3 * time.Minute  // from Telegraf's start to the first rows in CnosDB
	stallTimeout = 30 * time.Second // catching up with no new row for this long
	stopTimeout  = 30 * time.Second // Telegraf's own stop (its execd children get 10 s)
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

// interrupts turns SIGINT and SIGTERM into a stop: first is closed at the first
// signal, and more receives one value for each later one. The demo's children run in
// process groups of their own, so that a Ctrl-C at the terminal reaches only the demo,
// which stops them in order instead of having them die under it.
type interrupts struct {
	first chan struct{}
	more  chan struct{}
	n     atomic.Int32
}

func catchInterrupts() *interrupts {
	in := &interrupts{first: make(chan struct{}), more: make(chan struct{}, 1)}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		for range sigs {
			if in.n.Add(1) == 1 {
				close(in.first)
				continue
			}
			select {
			case in.more <- struct{}{}:
			default:
			}
		}
	}()
	return in
}

func (in *interrupts) interrupted() bool { return in.n.Load() > 0 }

// console prints the demo's lines; a progress line is ended before the next one.
type console struct{ progress bool }

func (c *console) say(format string, args ...any) {
	if c.progress {
		fmt.Println()
		c.progress = false
	}
	fmt.Printf("==> "+format+"\n", args...)
}

func (c *console) show(format string, args ...any) {
	fmt.Printf("\r"+format+" ", args...)
	c.progress = true
}

func usage() {
	out := flag.CommandLine.Output()
	fmt.Fprintf(out, `Usage: demo [flags]   (make demo DEMO_ARGS="flags")

Runs Kafka, CnosDB, stock Telegraf %s with telegraf-kafka-consumer and telegraf-cnosdb,
and a producer, on this machine; -duration counts from when data flows.
  -telegraf %s   runs the Telegraf of CnosDB's Kafka article instead.
Ctrl-C stops producing and waits for the pipeline to write what was produced; a second
Ctrl-C skips that wait. Either way the demo prints its summary and exits 0.

`, telegraftest.Latest, telegraftest.Article)
	flag.PrintDefaults()
}

func since(t time.Time) time.Duration { return time.Since(t).Round(100 * time.Millisecond) }

func setupTime(began, flowedAt, stoppedAt time.Time, flowing bool) time.Duration {
	if !flowing {
		return stoppedAt.Sub(began).Round(100 * time.Millisecond)
	}
	return flowedAt.Sub(began).Round(100 * time.Millisecond)
}

// stopTelegraf stops Telegraf as a service manager would: SIGTERM, so that it stops
// its input, hands what it holds to telegraf-cnosdb and closes its stdin; SIGKILL to
// its process group after stopTimeout, or at once on another Ctrl-C (killed).
func stopTelegraf(tg *exec.Cmd, done <-chan error, intr *interrupts) (killed bool, err error) {
	_ = tg.Process.Signal(syscall.SIGTERM)
	kill := func() { _ = syscall.Kill(-tg.Process.Pid, syscall.SIGKILL) }
	select {
	case err := <-done:
		return false, err
	case <-intr.more:
		kill()
		<-done //nolint:errcheck // killed: its exit status says nothing more
		return true, nil
	case <-time.After(stopTimeout):
		kill()
		<-done //nolint:errcheck // killed: its exit status says nothing more
		return false, fmt.Errorf("killed: it had not stopped %s after SIGTERM", stopTimeout)
	}
}

// groupStable reports whether the consumer group has members with their partitions.
func groupStable(admin sarama.ClusterAdmin) bool {
	groups, err := admin.DescribeConsumerGroups([]string{group})
	if err != nil || len(groups) == 0 {
		return false
	}
	return groups[0].State == "Stable" && len(groups[0].Members) > 0
}

// producedSoFar counts messages acknowledged by Kafka.
var producedSoFar atomic.Int64

func newProducer(addr string) (sarama.SyncProducer, error) {
	cfg := kafkatest.NewConfig()
	cfg.Producer.Return.Successes = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	return sarama.NewSyncProducer([]string{addr}, cfg)
}

// produce sends the article's sensor JSON at about rate messages per second, in small
// batches, until ctx is done, and returns how many Kafka acknowledged.
func produce(ctx context.Context, p sarama.SyncProducer, rate int) int64 {
	const batchesPerSecond = 10
	per := max(rate/batchesPerSecond, 1)
	tick := time.NewTicker(time.Second / batchesPerSecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return producedSoFar.Load()
		case <-tick.C:
		}
		msgs := make([]*sarama.ProducerMessage, 0, per)
		for i := 0; i < per; i++ {
			value := fmt.Sprintf(`{"pressure":%.1f,"temperature":%.1f,"visibility":%d}`,
				980+rand.Float64()*50, 10+rand.Float64()*20, rand.IntN(15))
			msgs = append(msgs, &sarama.ProducerMessage{Topic: topic, Value: sarama.StringEncoder(value)})
		}
		if err := p.SendMessages(msgs); err != nil {
			fmt.Fprintf(os.Stderr, "\nproducing: %v\n", err)
			continue
		}
		producedSoFar.Add(int64(len(msgs)))
	}
}

// offsets returns the messages the group committed and the lag behind the high watermarks.
func offsets(admin sarama.ClusterAdmin, client sarama.Client) (committed, lag int64) {
	parts, err := client.Partitions(topic)
	if err != nil {
		return 0, 0
	}
	res, err := admin.ListConsumerGroupOffsets(group, map[string][]int32{topic: parts})
	if err != nil {
		return 0, 0
	}
	for _, p := range parts {
		hwm, err := client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			continue
		}
		off := int64(0)
		if b := res.GetBlock(topic, p); b != nil && b.Offset > 0 {
			off = b.Offset
		}
		committed += off
		lag += hwm - off
	}
	return committed, lag
}

// writeConfigs writes the pair's two configuration files, the plugins' defaults but
// for where to read and write, and the telegraf.conf that runs them.
func writeConfigs(dir, version, brokerAddr string, db *cnosdb, inputBin, outputBin string) (string, error) {
	kafkaConf, err := telegraftest.WriteConfig(dir, "kafka_consumer.conf", telegraftest.KafkaConsumer{
		Brokers: []string{brokerAddr}, Topics: []string{topic}, ConsumerGroup: group, Offset: "oldest",
		DataFormat: "json", More: `  stats_interval = "10s"`}.String())
	if err != nil {
		return "", err
	}
	cnosdbConf, err := telegraftest.WriteConfig(dir, "cnosdb.conf", telegraftest.CnosDB{
		URLs: []string{db.url}, Database: database, Username: db.user, Password: db.password,
		More: "  create_database = true\n  stats_interval = \"10s\"\n"}.String())
	if err != nil {
		return "", err
	}
	return telegraftest.WriteConfig(dir, "telegraf.conf", telegraftest.PairConfig(version, inputBin, kafkaConf, outputBin, cnosdbConf))
}

// cnosdb is the CnosDB the demo writes to.
type cnosdb struct {
	url, user, password string
	log                 string // its log, when the demo started it
	stop                func()
}

func startCnosDB(say func(string, ...any), work string, intr *interrupts) (*cnosdb, error) {
	db := &cnosdb{user: "root", stop: func() {}}
	if u := os.Getenv("CNOSDB_URL"); u != "" {
		db.url = strings.TrimRight(u, "/")
		db.user = envOr("CNOSDB_USER", "root")
		db.password = os.Getenv("CNOSDB_PASSWORD")
		say("using the real CnosDB at %s (CNOSDB_URL); waiting for it to answer", db.url)
		return db, db.waitUp(intr)
	}
	if path, err := exec.LookPath("cnosdb"); err == nil {
		cmd := exec.Command(path, "run", "--deployment-mode", "singleton")
		cmd.Dir = work
		db.log = filepath.Join(work, "cnosdb.log")
		log, err := os.Create(db.log)
		if err != nil {
			return nil, err
		}
		cmd.Stdout, cmd.Stderr = log, log
		// Its own process group, like Telegraf's: the demo stops it after the count.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			log.Close()
			return nil, fmt.Errorf("starting %s: %w", path, err)
		}
		db.url = "http://127.0.0.1:8902"
		db.stop = func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait(); log.Close() }
		say("started the real CnosDB found on PATH (%s); waiting for it to answer at %s", path, db.url)
		return db, db.waitUp(intr)
	}
	dev := cnosdbdev.New(cnosdbdev.Options{})
	front, err := cnosdbdev.Listen("127.0.0.1:0", dev)
	if err != nil {
		return nil, err
	}
	db.url = front.URL()
	db.stop = func() { _ = front.Close() }
	say("no real CnosDB (set CNOSDB_URL or put cnosdb on PATH): using the project's CnosDB dev server (emulates %s) at %s",
		dev.Version(), db.url)
	return db, nil
}

func envOr(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}

// waitUp waits until CnosDB answers its ping, for a minute at most or until Ctrl-C.
func (db *cnosdb) waitUp(intr *interrupts) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(db.url + "/api/v1/ping")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("HTTP %d", resp.StatusCode)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("CnosDB at %s does not answer /api/v1/ping after 60s: %w", db.url, err)
		}
		select {
		case <-intr.first:
			return nil
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// sqlError is CnosDB's answer to a query it did not run.
type sqlError struct {
	stmt   string
	status int
	body   string
}

func (e *sqlError) Error() string { return fmt.Sprintf("%s: HTTP %d: %s", e.stmt, e.status, e.body) }

// missing reports whether err says the table or the database does not exist yet:
// telegraf-cnosdb creates the database at its start, and CnosDB the table at the first
// write, so until then there are no rows rather than an error.
func missing(err error) bool {
	var se *sqlError
	if !errors.As(err, &se) {
		return false
	}
	body := strings.ToLower(se.body)
	return strings.Contains(body, "table not found") || strings.Contains(body, "database not found")
}

func (db *cnosdb) sql(stmt string) (string, error) {
	req, err := http.NewRequest(http.MethodPost, db.url+"/api/v1/sql?db="+url.QueryEscape(database), strings.NewReader(stmt))
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(db.user+":"+db.password)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("querying CnosDB: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", fmt.Errorf("reading CnosDB's answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", &sqlError{stmt: stmt, status: resp.StatusCode, body: strings.TrimSpace(string(body))}
	}
	return string(body), nil
}

// count returns the rows of the sensor table; 0 before the table exists.
func (db *cnosdb) count() (int, error) {
	out, err := db.sql("SELECT exact_count(*) FROM " + table)
	if missing(err) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) < 2 {
		return 0, nil
	}
	n, err := strconv.Atoi(lines[1])
	if err != nil {
		return 0, fmt.Errorf("counting rows: CnosDB answered %q: %w", out, err)
	}
	return n, nil
}
