package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/IBM/sarama"

	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/testutil/kafkatest"
	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/testutil/telegraftest"
)

// demo is one run: what it was asked for, what it started, and how to stop it.
type demo struct {
	rate     int
	duration time.Duration
	version  string

	began time.Time
	intr  *interrupts
	con   console
	work  string
	// logs say why a run failed: they stay then, and go with a run that worked.
	logs []string
	// undo stops what was started, last first.
	undo []func()

	inputBin, outputBin string
	broker              *kafkatest.Broker
	db                  *cnosdb
	telegraf            *telegrafProcess
	admin               sarama.ClusterAdmin
	client              sarama.Client
}

func run() (err error) {
	binDir := flag.String("bin", "bin", "directory with telegraf-kafka-consumer and telegraf-cnosdb")
	rate := flag.Int("rate", 500, "sensor messages produced per second")
	duration := flag.Duration("duration", 0, "stop after data has flowed this long (0: at Ctrl-C)")
	version := flag.String("telegraf", telegraftest.Latest, "stock Telegraf version to run (or "+telegraftest.Article+")")
	flag.Usage = usage
	flag.Parse()

	d := &demo{rate: *rate, duration: *duration, version: *version, began: time.Now(), intr: catchInterrupts()}
	defer takeForeground()()
	if err := d.findBinaries(*binDir); err != nil {
		return err
	}
	if d.work, err = os.MkdirTemp("", "telegraf-kafka-cnosdb-demo"); err != nil {
		return err
	}
	defer d.cleanUp(&err)

	stopped, err := d.setUp()
	if err != nil || stopped {
		return err
	}
	return d.flow()
}

// cleanUp stops what the demo started and removes its files, but for the logs when
// the run failed: err then names them.
func (d *demo) cleanUp(err *error) {
	for i := len(d.undo) - 1; i >= 0; i-- {
		d.undo[i]()
	}
	if d.con.progress {
		fmt.Println() // the error goes below the progress line, not over it
	}
	if *err != nil && len(d.logs) > 0 {
		*err = fmt.Errorf("%w\nthe logs are kept: %s", *err, strings.Join(d.logs, ", "))
		return
	}
	_ = os.RemoveAll(d.work)
}

func (d *demo) say(format string, args ...any) { d.con.say(format, args...) }

func (d *demo) findBinaries(binDir string) error {
	for _, b := range []struct {
		dst  *string
		name string
	}{{&d.inputBin, "telegraf-kafka-consumer"}, {&d.outputBin, "telegraf-cnosdb"}} {
		path, err := filepath.Abs(filepath.Join(binDir, b.name))
		if err != nil {
			return err
		}
		if _, err := os.Stat(path); err != nil {
			return fmt.Errorf("%s is missing: run make build first: %w", path, err)
		}
		*b.dst = path
	}
	return nil
}

// setUp builds Telegraf, starts Kafka, CnosDB and Telegraf with the pair, and creates
// the topic. stopped says that a Ctrl-C came first: nothing was produced then.
func (d *demo) setUp() (stopped bool, err error) {
	stoppedEarly := func(during string) (bool, error) {
		d.say("interrupted while %s: nothing was produced; stopped after %s", during, since(d.began))
		return true, nil
	}

	d.say("building stock Telegraf %s (cached after the first run, which takes minutes)", d.version)
	buildStart := time.Now()
	telegraf, err := telegraftest.Build(d.version)
	if d.intr.interrupted() {
		return stoppedEarly("building Telegraf")
	}
	if err != nil {
		return false, err
	}
	if took := time.Since(buildStart); took > 2*time.Second {
		d.say("built Telegraf %s in %s", d.version, took.Round(time.Second))
	}

	d.say("starting Apache Kafka %s (KRaft, 127.0.0.1; the first run fetches its jars)", kafkatest.KafkaVersion)
	d.broker, err = kafkatest.Launch(func(format string, args ...any) {
		fmt.Printf("    "+format+"\n", args...)
	}, filepath.Join(d.work, "kafka"), kafkatest.Options{})
	if d.broker != nil {
		d.undo = append(d.undo, d.broker.Stop)
	}
	if d.intr.interrupted() {
		return stoppedEarly("starting Kafka")
	}
	if err != nil {
		return false, err
	}
	d.logs = append(d.logs, d.broker.LogFile()+" (Kafka)")

	d.db, err = startCnosDB(d.say, d.work, d.intr)
	if d.db != nil {
		d.undo = append(d.undo, d.db.stop)
		if d.db.log != "" {
			d.logs = append(d.logs, d.db.log+" (CnosDB)")
		}
	}
	if d.intr.interrupted() {
		return stoppedEarly("starting CnosDB")
	}
	if err != nil {
		return false, err
	}

	if err := kafkatest.EnsureTopic(d.broker.Addr(), topic, partitions); err != nil {
		return false, err
	}
	d.say("created topic %q (%d partitions)", topic, partitions)
	if err := d.startTelegraf(telegraf); err != nil {
		return false, err
	}
	if d.admin, err = sarama.NewClusterAdmin([]string{d.broker.Addr()}, kafkatest.NewConfig()); err != nil {
		return false, err
	}
	d.undo = append(d.undo, func() { d.admin.Close() })
	if d.client, err = sarama.NewClient([]string{d.broker.Addr()}, kafkatest.NewConfig()); err != nil {
		return false, err
	}
	d.undo = append(d.undo, func() { d.client.Close() })
	return false, nil
}

// telegrafProcess is Telegraf with the pair, in a process group of its own: the
// terminal's SIGINT must not reach Telegraf and its plugins, which the demo stops
// itself once the pipeline has caught up.
type telegrafProcess struct {
	cmd     *exec.Cmd
	done    chan error
	running bool
	logPath string
}

func (d *demo) startTelegraf(telegraf string) error {
	conf, err := writeConfigs(d.work, d.version, d.broker.Addr(), d.db, d.inputBin, d.outputBin)
	if err != nil {
		return err
	}
	tg := &telegrafProcess{logPath: filepath.Join(d.work, "telegraf.log"), done: make(chan error, 1)}
	logFile, err := os.Create(tg.logPath)
	if err != nil {
		return err
	}
	d.undo = append(d.undo, func() { logFile.Close() })
	d.logs = append([]string{tg.logPath + " (Telegraf and both plugins)"}, d.logs...)
	tg.cmd = exec.Command(telegraf, "--config", conf)
	tg.cmd.Stdout, tg.cmd.Stderr = logFile, logFile
	tg.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := tg.cmd.Start(); err != nil {
		return fmt.Errorf("starting Telegraf: %w", err)
	}
	go func() { tg.done <- tg.cmd.Wait() }()
	tg.running = true
	d.telegraf = tg
	// On a failure, Telegraf and its plugins go too, before the broker and CnosDB.
	d.undo = append(d.undo, func() {
		if tg.running {
			_ = syscall.Kill(-tg.cmd.Process.Pid, syscall.SIGKILL)
			<-tg.done //nolint:errcheck // killed: its exit status says nothing more
		}
	})
	d.say("started Telegraf %s with telegraf-kafka-consumer and telegraf-cnosdb", d.version)
	return nil
}

// exited is the error for Telegraf ending on its own with err.
func (tg *telegrafProcess) exited(err error) error {
	tg.running = false
	// Its plugins may outlive it in its process group.
	_ = syscall.Kill(-tg.cmd.Process.Pid, syscall.SIGKILL)
	return fmt.Errorf("telegraf exited (%w); see %s", err, tg.logPath)
}

// progress shows the progress line and returns the rows in CnosDB.
func (d *demo) progress(produced int64) (written int) {
	consumed, lag := offsets(d.admin, d.client)
	written, _ = d.db.count()
	d.con.show("produced %9d  consumed %9d  written %9d  lag %7d", produced, consumed, written, lag)
	return written
}

// flow produces until Ctrl-C or -duration, waits for the pipeline to catch up, stops
// Telegraf and prints what CnosDB holds.
func (d *demo) flow() error {
	producer, err := newProducer(d.broker.Addr())
	if err != nil {
		return fmt.Errorf("connecting the producer: %w", err)
	}
	prodCtx, stopProducing := context.WithCancel(context.Background())
	defer stopProducing()
	produced := make(chan int64, 1)
	go func() { produced <- produce(prodCtx, producer, d.rate) }()
	d.say("producing %d sensor messages/s to %q; Ctrl-C to stop", d.rate, topic)

	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	flowedAt, err := d.waitForFlow(tick.C)
	if err != nil {
		return err
	}
	flowing := !flowedAt.IsZero()
	if flowing {
		if err := d.produceUntilStop(tick.C); err != nil {
			return err
		}
	}
	stopProducing()
	total := <-produced
	producer.Close()
	stoppedAt := time.Now()

	skipped, err := d.catchUp(total)
	if err != nil {
		return err
	}
	caughtUp := time.Since(stoppedAt)
	if skipped {
		d.say("second Ctrl-C: not waiting for the rest; stopping Telegraf")
	} else {
		d.say("the pipeline caught up in %s; stopping Telegraf", caughtUp.Round(100*time.Millisecond))
	}
	d.telegraf.running = false
	stopping := time.Now()
	killed, stopErr := stopTelegraf(d.telegraf.cmd, d.telegraf.done, d.intr)
	if killed {
		d.say("another Ctrl-C: killed Telegraf and its plugins")
	}
	tgStop := since(stopping)

	written, err := d.showRows()
	if err != nil {
		return err
	}
	d.say("%d of %d produced messages are in CnosDB", written, total)
	flowed := "data never flowed"
	if flowing {
		flowed = fmt.Sprintf("data flowed for %s", stoppedAt.Sub(flowedAt).Round(100*time.Millisecond))
	}
	d.say("set-up %s, %s, caught up in %s, Telegraf stopped in %s: %s in all",
		setupTime(d.began, flowedAt, stoppedAt, flowing), flowed, caughtUp.Round(100*time.Millisecond), tgStop, since(d.began))
	if int64(written) < total && !skipped && !killed {
		return fmt.Errorf("%d of %d produced messages did not reach CnosDB; see %s", total-int64(written), total, d.telegraf.logPath)
	}
	if stopErr != nil {
		return fmt.Errorf("telegraf did not stop cleanly: %w; see %s", stopErr, d.telegraf.logPath)
	}
	return nil
}

// waitForFlow waits until the Kafka input has joined its group and the first rows
// are in CnosDB, and returns when that was: only then does -duration start, so that
// set-up does not eat it. A zero time: a Ctrl-C came first.
func (d *demo) waitForFlow(tick <-chan time.Time) (time.Time, error) {
	d.say("waiting for Telegraf's Kafka input to join consumer group %q", group)
	flowDeadline := time.After(flowTimeout)
	joined := false
	for !d.intr.interrupted() {
		select {
		case <-d.intr.first:
			continue
		case err := <-d.telegraf.done:
			return time.Time{}, d.telegraf.exited(err)
		case <-flowDeadline:
			return time.Time{}, fmt.Errorf("no row reached CnosDB %s after Telegraf started; see %s", flowTimeout, d.telegraf.logPath)
		case <-tick:
		}
		if !joined && groupStable(d.admin) {
			joined = true
			d.say("the Kafka input has joined %q; waiting for the first rows in CnosDB "+
				"(table %q exists once telegraf-cnosdb writes its first batch)", group, table)
		}
		if written := d.progress(producedSoFar.Load()); joined && written > 0 {
			return time.Now(), nil
		}
	}
	return time.Time{}, nil
}

// produceUntilStop shows the progress until Ctrl-C or -duration.
func (d *demo) produceUntilStop(tick <-chan time.Time) error {
	var stopAt <-chan time.Time
	if d.duration > 0 {
		stopAt = time.After(d.duration)
		d.say("data flows, %s after start; running for %s from now", since(d.began), d.duration)
	} else {
		d.say("data flows, %s after start; Ctrl-C to stop", since(d.began))
	}
	for {
		select {
		case <-d.intr.first:
			return nil
		case <-stopAt:
			return nil
		case err := <-d.telegraf.done:
			return d.telegraf.exited(err)
		case <-tick:
			d.progress(producedSoFar.Load())
		}
	}
}

// catchUp waits until every message produced is in CnosDB, while rows keep coming;
// a second Ctrl-C skips it.
func (d *demo) catchUp(total int64) (skipped bool, err error) {
	d.say("stopped producing after %d messages; waiting for the pipeline to write them all (Ctrl-C again to skip)", total)
	best, lastGain := -1, time.Now()
	for {
		written := d.progress(total)
		switch {
		case int64(written) >= total:
			return false, nil
		case written > best:
			best, lastGain = written, time.Now()
		case time.Since(lastGain) > stallTimeout:
			return false, fmt.Errorf("the pipeline stalled at %d of %d messages: no new row in %s; see %s",
				written, total, stallTimeout, d.telegraf.logPath)
		}
		select {
		case <-d.intr.more:
			return true, nil
		case err := <-d.telegraf.done:
			return false, d.telegraf.exited(err)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// showRows prints the newest rows and returns how many CnosDB holds.
func (d *demo) showRows() (int, error) {
	d.say("SELECT * FROM %s ORDER BY time DESC LIMIT 10 (database %q):", table, database)
	rows, err := d.db.sql(fmt.Sprintf("SELECT * FROM %s ORDER BY time DESC LIMIT 10", table))
	if err != nil && !missing(err) {
		return 0, err
	}
	fmt.Print(rows)
	return d.db.count()
}
