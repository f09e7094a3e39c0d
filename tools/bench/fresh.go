package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/IBM/sarama"

	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/testutil/kafkatest"
)

// freshWorkload is what a freshness run produces: wide messages on 6 partitions,
// whose "ts" (unix_us) both pipelines take as the metric's time, so that every line
// written to the sink carries the moment its message was produced.
const freshWorkload = "wide"

// freshTail is how long a freshness run goes on producing after o.freshDuration,
// the tail's messages left out: without it the last measured messages would be the
// end of the stream, a partial batch that waits for Telegraf's flush_interval (1 s
// in both pipelines), which no steady stream has.
const freshTail = 2 * time.Second

// minProducerShare is the least of the asked rate the producer must reach for a
// freshness run to say what it says at that rate.
const minProducerShare = 0.95

// freshResult is what one freshness run measured.
type freshResult struct {
	kind  string
	round int

	rate          int           // messages per second asked for
	duration      time.Duration // of producing
	produced      int64         // messages the broker took
	produceFailed int64
	produceTook   time.Duration // from the first message to the last
	inTopic       int64         // messages in the topic after producing: more than produced when the producer resent one that had landed
	visible       int64         // lines the sink accepted, duplicates and the warm-up's included
	joined        time.Duration // from starting Telegraf until its consumer group was stable
	drained       time.Duration // from the last message produced until all were visible
	fresh         freshCounts
	span          time.Duration // from the first message produced to the last write accepted
	failure       string
	logPath       string
}

func (r freshResult) ok() bool { return r.failure == "" }

// achieved is the producer's rate, messages the broker took per second of producing.
func (r freshResult) achieved() float64 {
	if r.produceTook <= 0 {
		return 0
	}
	return float64(r.produced) / r.produceTook.Seconds()
}

// producerKeptUp says whether the producer reached minProducerShare of the asked rate.
func (r freshResult) producerKeptUp() bool {
	return r.achieved() >= minProducerShare*float64(r.rate)
}

func (r freshResult) linesPerRequest() float64 {
	if r.fresh.requests == 0 {
		return 0
	}
	return float64(r.fresh.lines) / float64(r.fresh.requests)
}

func (r freshResult) requestRate() float64 {
	if r.span <= 0 {
		return 0
	}
	return float64(r.fresh.requests) / r.span.Seconds()
}

// runFresh runs A-tuned's or B's configuration on an empty topic of its own, waits
// until its consumer group is stable, produces o.freshRate wide messages a second
// for o.freshDuration, each stamped with the moment it is produced, and waits until
// the sink has accepted them all. The counting proxy records, for each accepted
// write, the answer's time minus each line's timestamp, leaving out the messages
// produced in the first o.freshWarmup.
func runFresh(ctx context.Context, e *env, o options, kind string, round int) (freshResult, error) {
	res := freshResult{kind: kind, round: round, rate: o.freshRate, duration: o.freshDuration}
	e.workload = workloads[freshWorkload]
	id := runID(e, kind, round)
	e.topic = "bench-" + id
	defer func() { e.topic = "" }()
	db := databaseName(e.workload.name, kind, round)
	dir, err := runDir(e, id)
	if err != nil {
		return res, err
	}
	if err := ensureEmptyTopic(e); err != nil {
		return res, err
	}
	drop, err := e.sink.freshDatabase(ctx, db, true)
	if err != nil {
		return res, err
	}
	defer drop()
	group := "bench-" + id
	conf, err := freshConfig(e, kind, dir, group, db)
	if err != nil {
		return res, err
	}

	res.logPath = filepath.Join(dir, "telegraf.log")
	proc, start, err := startTelegraf(e, res.logPath, conf)
	if err != nil {
		return res, err
	}
	defer proc.stop()

	// Produce only once the consumer has its partitions, so that the warm-up is the
	// pipeline's first writes, not a wait for the group.
	if err := waitGroupStable(ctx, e.brokerAddr, group, time.Minute, proc.exited); err != nil {
		res.failure = err.Error()
		return res, ctx.Err()
	}
	res.joined = time.Since(start)

	produceStart := time.Now()
	rec := newFreshRecorder(produceStart.Add(o.freshWarmup), produceStart.Add(o.freshDuration))
	e.sink.writes.recordFreshness(rec)
	defer e.sink.writes.stopFreshness()
	ps, err := steadyProduce(ctx, e.brokerAddr, e.topic, o.freshRate, o.freshDuration+freshTail, produceStart)
	res.produced, res.produceFailed, res.produceTook = ps.produced, ps.failed, ps.took
	if err != nil {
		res.failure = err.Error()
		return res, ctx.Err()
	}
	producedAt := time.Now()
	if hwm, err := kafkatest.HighWatermarks(e.brokerAddr, e.topic); err == nil {
		res.inTopic = total(hwm)
	}
	fmt.Printf("  %s round %d: produced %d in %v (%.0f msg/s, asked %d), %d failed\n", kind, round,
		ps.produced, ps.took.Round(time.Millisecond), res.achieved(), o.freshRate, ps.failed)

	// Every message the broker took must become visible; a pipeline that loses some
	// has failed, whatever its delays.
	res.failure, err = waitVisible(ctx, o, proc, rec, ps.produced)
	if err != nil {
		return res, err
	}
	e.sink.writes.stopFreshness()
	res.settle(rec.counts(), produceStart, producedAt)
	return res, nil
}

// ensureEmptyTopic creates e.topic and checks that it holds no message: a freshness
// run takes every line the sink accepts for one of the messages it produced.
func ensureEmptyTopic(e *env) error {
	if err := kafkatest.EnsureTopic(e.brokerAddr, e.topic, int(e.workload.partitions)); err != nil {
		return err
	}
	if hwm, err := kafkatest.HighWatermarks(e.brokerAddr, e.topic); err != nil {
		return err
	} else if total(hwm) != 0 {
		return fmt.Errorf("topic %s holds %d messages, not 0 (left over from an earlier run?)", e.topic, total(hwm))
	}
	return nil
}

// freshConfig writes the configuration of the pipeline the freshness run kind measures.
func freshConfig(e *env, kind, dir, group, db string) (string, error) {
	switch freshPipeline[kind] {
	case runATuned:
		return tunedConfig(e, dir, group, db)
	case runB:
		return pairConfig(e, dir, group, db)
	}
	return "", fmt.Errorf("no freshness run %q", kind)
}

// waitVisible waits until the sink has accepted produced lines, for at most -stall
// (or -timeout), and returns the run's failure, "" when they all arrived, with ctx's
// error when it is done first.
func waitVisible(ctx context.Context, o options, proc *followed, rec *freshRecorder, produced int64) (string, error) {
	wait := o.stall
	if wait <= 0 {
		wait = o.timeout
	}
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for rec.counts().lines < produced {
		select {
		case <-ctx.Done():
			return "interrupted", ctx.Err()
		case <-proc.exited:
			return exitedEarly("Telegraf", proc.waitErr).Error(), nil
		case <-deadline.C:
			return fmt.Sprintf("%d of %d produced visible %v after the last was produced", rec.counts().lines, produced, wait), nil
		case <-tick.C:
		}
	}
	return "", nil
}

// settle takes what the sink accepted into r, once the run has stopped recording.
func (r *freshResult) settle(c freshCounts, produceStart, producedAt time.Time) {
	r.fresh = c
	r.visible = r.fresh.lines
	if r.ok() {
		r.drained = r.fresh.last.Sub(producedAt)
	}
	if !r.fresh.last.IsZero() {
		r.span = r.fresh.last.Sub(produceStart)
	}
	if r.ok() && r.fresh.untimed > 0 {
		r.failure = fmt.Sprintf("%d lines without a timestamp: the delays do not cover them", r.fresh.untimed)
	}
}

func total(hwm map[int32]int64) int64 {
	var n int64
	for _, h := range hwm {
		n += h
	}
	return n
}

// waitGroupStable waits until group has members and a stable assignment.
func waitGroupStable(ctx context.Context, addr, group string, limit time.Duration, exited <-chan struct{}) error {
	admin, err := sarama.NewClusterAdmin([]string{addr}, kafkatest.NewConfig())
	if err != nil {
		return fmt.Errorf("connecting to Kafka at %s: %w", addr, err)
	}
	defer admin.Close()
	deadline := time.Now().Add(limit)
	state := "unknown"
	for {
		groups, err := admin.DescribeConsumerGroups([]string{group})
		if err == nil && len(groups) == 1 {
			state = groups[0].State
			if state == "Stable" && len(groups[0].Members) > 0 {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("consumer group %s not stable after %v (state %s)", group, limit, state)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-exited:
			return errors.New("stock Telegraf exited before its consumer group was stable")
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// produceStats is what steadyProduce did.
type produceStats struct {
	produced, failed int64
	took             time.Duration // from start to the last message handed to the producer
}

// produceTick is how often steadyProduce hands the producer what is due: small
// enough that the rate is steady at the scale of the delays measured.
const produceTick = 2 * time.Millisecond

// steadyProduce produces rate wide messages a second to topic from start for d, in
// ticks of produceTick, each message stamped with the time it is handed to the
// producer. The producer sends as soon as it can, without lingering for a batch, and
// waits for the leader's acknowledgement, so a message's delay includes Kafka's.
func steadyProduce(ctx context.Context, addr, topic string, rate int, d time.Duration, start time.Time) (produceStats, error) {
	var ps produceStats
	cfg := kafkatest.NewConfig()
	cfg.Producer.RequiredAcks = sarama.WaitForLocal
	cfg.Producer.Partitioner = sarama.NewRoundRobinPartitioner
	cfg.Producer.Return.Successes = true
	cfg.Producer.Return.Errors = true
	cfg.Producer.Flush.Frequency = 0 // send as soon as the previous request is answered
	p, err := sarama.NewAsyncProducer([]string{addr}, cfg)
	if err != nil {
		return ps, fmt.Errorf("starting the producer: %w", err)
	}
	var (
		wg       sync.WaitGroup
		firstErr error
	)
	wg.Add(2)
	go func() {
		defer wg.Done()
		for range p.Successes() {
			ps.produced++
		}
	}()
	go func() {
		defer wg.Done()
		for e := range p.Errors() {
			if ps.failed == 0 {
				firstErr = e.Err
			}
			ps.failed++
		}
	}()
	total := int(float64(rate) * d.Seconds())
	tick := time.NewTicker(produceTick)
	sent, shown := 0, start
	for ctx.Err() == nil {
		now := time.Now()
		due := min(total, int(float64(rate)*now.Sub(start).Seconds()))
		for ; sent < due; sent++ {
			ts := time.Now()
			msg := wideMessageAt(nil, sent, ts.UnixMicro())
			p.Input() <- &sarama.ProducerMessage{Topic: topic, Value: sarama.ByteEncoder(msg)}
		}
		ps.took = time.Since(start)
		if sent >= total || now.Sub(start) >= d {
			break
		}
		if now.Sub(shown) >= time.Second {
			fmt.Printf("\r  producing %d / %d", sent, total)
			shown = now
		}
		<-tick.C
	}
	tick.Stop()
	fmt.Println()
	p.AsyncClose()
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return ps, err
	}
	if ps.failed > 0 {
		return ps, fmt.Errorf("producing: %d of %d messages failed, first: %w", ps.failed, sent, firstErr)
	}
	return ps, nil
}

// freshStats sums up the freshness runs of one kind: medians over the finished ones.
type freshStats struct {
	total, finished       int
	p50, p90, p99, max    time.Duration
	linesPerRequest, reqs float64
	achieved              float64
	slowProducer          []int // rounds whose producer fell below minProducerShare
}

func (r *report) freshStats(kind string) freshStats {
	var st freshStats
	var p50, p90, p99, mx, lpr, rps, ach []float64
	for _, res := range r.fresh {
		if res.kind != kind {
			continue
		}
		st.total++
		if !res.producerKeptUp() {
			st.slowProducer = append(st.slowProducer, res.round)
		}
		if !res.ok() {
			continue
		}
		st.finished++
		h := &res.fresh.hist
		p50 = append(p50, h.quantile(0.50).Seconds())
		p90 = append(p90, h.quantile(0.90).Seconds())
		p99 = append(p99, h.quantile(0.99).Seconds())
		mx = append(mx, h.max.Seconds())
		lpr = append(lpr, res.linesPerRequest())
		rps = append(rps, res.requestRate())
		ach = append(ach, res.achieved())
	}
	sec := func(xs []float64) time.Duration { return time.Duration(median(xs) * float64(time.Second)) }
	st.p50, st.p90, st.p99, st.max = sec(p50), sec(p90), sec(p99), sec(mx)
	st.linesPerRequest, st.reqs, st.achieved = median(lpr), median(rps), median(ach)
	return st
}

// freshSection is the report's table of the freshness runs, if any.
func (r *report) freshSection(b *strings.Builder) {
	if len(r.fresh) == 0 {
		return
	}
	o := r.opts
	fmt.Fprintf(b, "## Freshness\n\n%d %s messages/s (%s) for %v on an empty topic per run, produced by the benchmark in ticks of %v with \"ts\" the moment each is handed to the producer (acks from the leader); "+
		"the pipeline starts first and the producing once its consumer group is stable. "+
		"Delay: for every line of a write the sink answered with 2xx, the answer's time at the counting proxy minus the line's timestamp (in the write's precision), "+
		"in 1 ms buckets (a percentile is its bucket's upper edge); messages produced in the first %v (warm-up) are left out, and so are those of the %v the producer goes on for after it (so that the last measured ones are in a steady stream, not the last partial batch). "+
		"Produced: acknowledged by the broker; in the topic: the high watermarks after producing, more when the producer resent a message that had landed. "+
		"Visible: lines accepted, duplicates included. Lines per request and requests/s: every write accepted from the first message produced to the last accepted.\n\n",
		o.freshRate, freshWorkload, workloads[freshWorkload].describe(0), o.freshDuration, produceTick, o.freshWarmup, freshTail)
	b.WriteString("| run | round | result | produced | in the topic | producer msg/s | visible | delay p50 s | p90 s | p99 s | max s | lines per request | requests/s | consumer group stable after s | last visible after the last produced s |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, res := range r.fresh {
		result := "ok"
		if !res.ok() {
			result = "FAILED: " + strings.ReplaceAll(res.failure, "|", `\|`)
		}
		achieved := fmt.Sprintf("%.0f", res.achieved())
		if !res.producerKeptUp() {
			achieved += fmt.Sprintf(" (below %.0f%% of %d)", 100*minProducerShare, res.rate)
		}
		h := &res.fresh.hist
		fmt.Fprintf(b, "| %s | %d | %s | %d | %d | %s | %d | %.3f | %.3f | %.3f | %.3f | %s | %s | %.1f | %s |\n",
			res.kind, res.round, result, res.produced, res.inTopic, achieved, res.visible,
			h.quantile(0.50).Seconds(), h.quantile(0.90).Seconds(), h.quantile(0.99).Seconds(), h.max.Seconds(),
			orDash(res.linesPerRequest(), "%.0f"), orDash(res.requestRate(), "%.1f"), res.joined.Seconds(), orDash(res.drained.Seconds(), "%.3f"))
	}
	if o.rounds > 1 {
		b.WriteString("\n| run | finished | delay p50 s | p90 s | p99 s | max s (medians over the rounds) | lines per request | requests/s |\n|---|---|---|---|---|---|---|---|\n")
		for _, kind := range freshKinds {
			st := r.freshStats(kind)
			if st.total == 0 {
				continue
			}
			fmt.Fprintf(b, "| %s | %d of %d | %.3f | %.3f | %.3f | %.3f | %s | %s |\n", kind, st.finished, st.total,
				st.p50.Seconds(), st.p90.Seconds(), st.p99.Seconds(), st.max.Seconds(), orDash(st.linesPerRequest, "%.0f"), orDash(st.reqs, "%.1f"))
		}
	}
	for _, kind := range freshKinds {
		if st := r.freshStats(kind); len(st.slowProducer) > 0 {
			fmt.Fprintf(b, "\nThe producer did NOT keep up in %s round(s) %v: below %.0f%% of the asked %d msg/s, so those delays are not at that rate.\n",
				kind, st.slowProducer, 100*minProducerShare, o.freshRate)
		}
	}
	b.WriteString("\n")
}

// freshTarget checks that B's messages are visible no later than A-tuned's at p99,
// at the same steady rate.
func (r *report) freshTarget() target {
	t := target{name: fmt.Sprintf("freshness: B p99 <= A-tuned p99, %d msg/s steady", r.opts.freshRate)}
	tuned, b := r.freshStats(runATunedFresh), r.freshStats(runBFresh)
	if tuned.finished == 0 || b.finished == 0 {
		t.figure = fmt.Sprintf("not measured: needs a finished %s and %s run", runATunedFresh, runBFresh)
		return t
	}
	t.met = b.p99 <= tuned.p99
	t.figure = fmt.Sprintf("B %.3f s, A-tuned %.3f s (p99, median over rounds; p50 %.3f and %.3f s)",
		b.p99.Seconds(), tuned.p99.Seconds(), b.p50.Seconds(), tuned.p50.Seconds())
	if slow := len(tuned.slowProducer) + len(b.slowProducer); slow > 0 {
		t.figure += fmt.Sprintf("; the producer fell below %.0f%% of the rate in %d run(s)", 100*minProducerShare, slow)
	}
	return t
}
