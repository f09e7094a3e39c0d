// Command demo runs the whole pipeline on one machine: a Kafka broker, CnosDB (a real
// one when CNOSDB_URL is set or cnosdb is on PATH, otherwise the dev server), stock
// Telegraf with both plugins, and a producer of the seed's sensor JSON on topic
// "oceanic". It shows a live progress line; on Ctrl-C (or after -duration) it lets the
// pipeline catch up, prints rows queried back from CnosDB and stops everything it
// started. `make demo` builds the plugins and runs it.
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

	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/internal/cnosdbdev"
	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/internal/kafkatest"
	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/internal/telegraftest"
)

const (
	topic    = "oceanic"
	group    = "telegraf-demo"
	database = "telegraf"
	table    = "kafka_consumer"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run() error {
	binDir := flag.String("bin", "bin", "directory with telegraf-kafka-consumer and telegraf-cnosdb")
	rate := flag.Int("rate", 500, "sensor messages produced per second")
	duration := flag.Duration("duration", 0, "stop after this long (0: at Ctrl-C)")
	version := flag.String("telegraf", telegraftest.Latest, "stock Telegraf version to run")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}

	work, err := os.MkdirTemp("", "telegraf-kafka-cnosdb-demo")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	say := func(format string, args ...any) { fmt.Printf("==> "+format+"\n", args...) }

	inputBin, err := filepath.Abs(filepath.Join(*binDir, "telegraf-kafka-consumer"))
	if err != nil {
		return err
	}
	outputBin, err := filepath.Abs(filepath.Join(*binDir, "telegraf-cnosdb"))
	if err != nil {
		return err
	}
	for _, b := range []string{inputBin, outputBin} {
		if _, err := os.Stat(b); err != nil {
			return fmt.Errorf("%s is missing: run make build first: %w", b, err)
		}
	}

	say("building stock Telegraf %s (cached after the first run)", *version)
	telegraf, err := telegraftest.Build(*version)
	if err != nil {
		return err
	}

	say("starting Apache Kafka %s (KRaft, 127.0.0.1)", kafkatest.KafkaVersion)
	broker, err := kafkatest.Launch(func(string, ...any) {}, filepath.Join(work, "kafka"), kafkatest.Options{})
	if err != nil {
		return err
	}
	defer broker.Stop()

	db, err := startCnosDB(say, work)
	if err != nil {
		return err
	}
	defer db.stop()

	if err := createTopic(broker.Addr()); err != nil {
		return err
	}
	say("created topic %q", topic)

	conf, err := writeConfigs(work, *version, broker.Addr(), db, inputBin, outputBin)
	if err != nil {
		return err
	}
	logPath := filepath.Join(work, "telegraf.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logFile.Close()
	tg := exec.Command(telegraf, "--config", conf)
	tg.Stdout, tg.Stderr = logFile, logFile
	tg.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := tg.Start(); err != nil {
		return fmt.Errorf("starting Telegraf: %w", err)
	}
	tgDone := make(chan error, 1)
	go func() { tgDone <- tg.Wait() }()
	say("running Telegraf %s with telegraf-kafka-consumer and telegraf-cnosdb (log: %s)", *version, logPath)

	producer, err := newProducer(broker.Addr())
	if err != nil {
		return err
	}
	produced := make(chan int64, 1)
	go func() { produced <- produce(ctx, producer, *rate) }()

	say("producing %d sensor messages/s to %q; Ctrl-C to stop", *rate, topic)
	admin, err := sarama.NewClusterAdmin([]string{broker.Addr()}, kafkatest.NewConfig())
	if err != nil {
		return err
	}
	defer admin.Close()
	client, err := sarama.NewClient([]string{broker.Addr()}, kafkatest.NewConfig())
	if err != nil {
		return err
	}
	defer client.Close()

	progress := func(n int64) (consumed, lag int64, written int) {
		consumed, lag = offsets(admin, client)
		written, _ = db.count()
		fmt.Printf("\rproduced %9d  consumed %9d  written %9d  lag %7d ", n, consumed, written, lag)
		return consumed, lag, written
	}
	var total int64
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
loop:
	for {
		select {
		case <-ctx.Done():
			total = <-produced
			break loop
		case err := <-tgDone:
			return fmt.Errorf("telegraf exited (%w); see %s", err, logPath)
		case <-tick.C:
			progress(producedSoFar.Load())
		}
	}
	producer.Close()

	fmt.Println()
	say("stopped producing after %d messages; waiting for the pipeline to catch up", total)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if _, _, written := progress(total); int64(written) >= total {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	fmt.Println()
	_ = tg.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-tgDone:
		if err != nil {
			fmt.Fprintf(os.Stderr, "telegraf: %v (log: %s)\n", err, logPath)
		}
	case <-time.After(30 * time.Second):
		_ = tg.Process.Kill()
	}

	say("SELECT * FROM %s ORDER BY time DESC LIMIT 10 (database %q):", table, database)
	rows, err := db.sql(fmt.Sprintf("SELECT * FROM %s ORDER BY time DESC LIMIT 10", table))
	if err != nil {
		return err
	}
	fmt.Print(rows)
	written, err := db.count()
	if err != nil {
		return err
	}
	say("%d of %d produced messages are in CnosDB", written, total)
	return nil
}

// producedSoFar counts messages acknowledged by Kafka.
var producedSoFar atomic.Int64

func newProducer(addr string) (sarama.SyncProducer, error) {
	cfg := kafkatest.NewConfig()
	cfg.Producer.Return.Successes = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	return sarama.NewSyncProducer([]string{addr}, cfg)
}

// produce sends the seed's sensor JSON at about rate messages per second, in small
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

func createTopic(addr string) error {
	admin, err := sarama.NewClusterAdmin([]string{addr}, kafkatest.NewConfig())
	if err != nil {
		return err
	}
	defer admin.Close()
	err = admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: 6, ReplicationFactor: 1}, false)
	if err != nil && !errors.Is(err, sarama.ErrTopicAlreadyExists) {
		return fmt.Errorf("creating topic %s: %w", topic, err)
	}
	// The broker names partition leaders a moment before they take writes.
	deadline := time.Now().Add(30 * time.Second)
	for {
		client, err := sarama.NewClient([]string{addr}, kafkatest.NewConfig())
		if err == nil {
			_, err = client.GetOffset(topic, 5, sarama.OffsetNewest)
			client.Close()
		}
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("topic %s not ready: %w", topic, err)
		}
		time.Sleep(200 * time.Millisecond)
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

func writeConfigs(dir, version, brokerAddr string, db *cnosdb, inputBin, outputBin string) (string, error) {
	files := map[string]string{
		"kafka_consumer.conf": fmt.Sprintf(`[[inputs.kafka_consumer]]
  brokers = [%q]
  topics = [%q]
  consumer_group = %q
  offset = "oldest"
  kafka_version = "4.1.0"
  data_format = "json"
  stats_interval = "10s"
`, brokerAddr, topic, group),
		"cnosdb.conf": fmt.Sprintf(`[[outputs.cnosdb]]
  urls = [%q]
  database = %q
  username = %q
  password = %q
  create_database = true
  stats_interval = "10s"
`, db.url, database, db.user, db.password),
	}
	files["telegraf.conf"] = telegraftest.PairConfig(version, inputBin, filepath.Join(dir, "kafka_consumer.conf"),
		outputBin, filepath.Join(dir, "cnosdb.conf"))
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			return "", err
		}
	}
	return filepath.Join(dir, "telegraf.conf"), nil
}

// cnosdb is the CnosDB the demo writes to.
type cnosdb struct {
	url, user, password string
	stop                func()
}

func startCnosDB(say func(string, ...any), work string) (*cnosdb, error) {
	db := &cnosdb{user: "root", stop: func() {}}
	if u := os.Getenv("CNOSDB_URL"); u != "" {
		db.url = strings.TrimRight(u, "/")
		db.user = envOr("CNOSDB_USER", "root")
		db.password = os.Getenv("CNOSDB_PASSWORD")
		say("using the real CnosDB at %s (CNOSDB_URL)", db.url)
		return db, db.waitUp()
	}
	if path, err := exec.LookPath("cnosdb"); err == nil {
		cmd := exec.Command(path, "run", "--deployment-mode", "singleton")
		cmd.Dir = work
		log, err := os.Create(filepath.Join(work, "cnosdb.log"))
		if err != nil {
			return nil, err
		}
		cmd.Stdout, cmd.Stderr = log, log
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			return nil, fmt.Errorf("starting %s: %w", path, err)
		}
		db.url = "http://127.0.0.1:8902"
		db.stop = func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait(); log.Close() }
		say("started the real CnosDB found on PATH (%s) at %s", path, db.url)
		return db, db.waitUp()
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

func (db *cnosdb) waitUp() error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(db.url + "/api/v1/ping")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("CnosDB at %s does not answer /api/v1/ping", db.url)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func (db *cnosdb) sql(stmt string) (string, error) {
	req, err := http.NewRequest(http.MethodPost, db.url+"/api/v1/sql?db="+url.QueryEscape(database), strings.NewReader(stmt))
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(db.user+":"+db.password)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: HTTP %d: %s", stmt, resp.StatusCode, body)
	}
	return string(body), nil
}

// count returns the rows of the sensor table; 0 before the table exists.
func (db *cnosdb) count() (int, error) {
	out, err := db.sql("SELECT exact_count(*) FROM " + table)
	if err != nil {
		return 0, err
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) < 2 {
		return 0, nil
	}
	return strconv.Atoi(lines[1])
}
