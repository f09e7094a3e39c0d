package e2e

import (
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/dev/cnosdbdev"
	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/testutil/kafkatest"
	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/testutil/telegraftest"
)

// memoryExhausted is CnosDB's answer to a write under memory pressure (API.md: 422,
// error code 050033), which its own load tool retries.
const memoryExhausted = `{"error_code":"050033","error_message":"Memory Exhausted Retry Later"}`

// outage is how long CnosDB stays unavailable in the outage faults.
const outage = 30 * time.Second

// TestFault runs each fault against a pipeline of its own (Kafka, stock Telegraf, the
// pair, CnosDB behind a fault layer) carrying 100,000 messages with unique ids and no
// time of their own, as the article's, and checks at the end that every id is in CnosDB
// as one row, except where the fault's known window allows a loss, which is then
// bounded exactly. The summary table at the end lists lost ids, duplicate lines,
// duplicate rows and the input's rewrites (unconfirmed messages written again) per
// fault.
func TestFault(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the fault-injection suite takes minutes")
	}
	var (
		mu      sync.Mutex
		results []faultResult
	)
	run := func(name string, test func(t *testing.T) faultResult) {
		t.Run(name, func(t *testing.T) {
			res := test(t)
			mu.Lock()
			results = append(results, res)
			mu.Unlock()
		})
	}
	run("memory-exhausted-30s", faultMemoryExhausted)
	run("connections-refused-30s", faultConnectionsRefused)
	run("kill-9-output", faultKillOutput)
	run("kill-9-input", faultKillInput)
	run("kafka-broker-restart", faultBrokerRestart)
	run("second-telegraf-joins-and-leaves", faultSecondTelegraf)
	run("graceful-telegraf-restart", faultGracefulRestart)
	run("type-conflict-rejected-lines", faultTypeConflict)
	run("kill-9-telegraf", faultKillTelegraf)
	run("kill-9-telegraf-disk-buffer", faultKillTelegrafDiskBuffer)
	run("backlog-over-metric_buffer_limit", faultBufferOverflow)
	run("newline-in-string-field", faultNewlineInStringField)
	run("marker-shaped-message", faultMarkerShapedMessage)
	run("output-filter-drops-input-metrics", faultOutputFilter)
	run("processors-dedup", faultProcessorsDedup)
	// "report: " keeps the table in the summary of make test (tools/testsummary).
	t.Log("report: fault-injection suite, 100,000 messages per fault" + resultTable(results))
}

// outageFault runs the pipeline, sets a fault for 30 s mid-stream, clears it and
// waits for every id. letThrough counts, from the fault layer's counters before and
// at the end of the outage, the requests that began after the fault had taken effect
// and still reached CnosDB: a request already in flight when it was set (up to
// max_in_flight of them) may finish, and is not counted.
func outageFault(t *testing.T, name string, set func(*faultRig), clear func(*faultRig),
	letThrough func(before, during cnosdbdev.FaultStats) int64) faultResult {
	r := newFaultRig(t, rigOptions{})
	r.produce(0, faultMessages)
	tg := r.telegraf()
	r.waitMidStream(tg)
	set(r)
	before := r.front.Faults().Stats()
	time.Sleep(outage)
	during := r.front.Faults().Stats()
	clear(r)
	cleared := time.Now()
	if n := letThrough(before, during); n != 0 {
		t.Errorf("%d requests that began after the fault was set reached CnosDB while it was to be unavailable", n)
	}
	t.Logf("during the outage: %d requests passed in all, %d of them let through; at most %d at once in the fault layer",
		during.Passed-before.Passed, letThrough(before, during), during.MostAtOnce)
	r.waitAll(tg)
	res := r.result(name, nil)
	res.note = fmt.Sprintf("all in %v after the fault ended", time.Since(cleared).Round(100*time.Millisecond))
	return res
}

// 1. CnosDB answers 422 "Memory Exhausted Retry Later" to every write for 30 s.
func faultMemoryExhausted(t *testing.T) faultResult {
	var answered int64
	res := outageFault(t, "memory-exhausted-30s", func(r *faultRig) {
		r.front.Faults().Respond("/api/v1/write", http.StatusUnprocessableEntity, memoryExhausted, -1)
	}, func(r *faultRig) {
		answered = r.front.Faults().Stats().Responded
		r.front.Faults().Clear()
	}, func(before, during cnosdbdev.FaultStats) int64 {
		// Every write reaching the fault layer once the fault is set is answered by
		// it; a write that was not passed.
		const write = "/api/v1/write"
		return (during.Paths[write] - before.Paths[write]) - (during.Responded - before.Responded)
	})
	if answered == 0 {
		t.Errorf("no write reached CnosDB during the 30 s of Memory Exhausted: the output did not retry")
	}
	res.note = fmt.Sprintf("%d writes answered 422 050033 and retried; %s", answered, res.note)
	return res
}

// 2. CnosDB refuses connections for 30 s.
func faultConnectionsRefused(t *testing.T) faultResult {
	var front error
	res := outageFault(t, "connections-refused-30s", func(r *faultRig) {
		r.front.Faults().Refuse(true)
	}, func(r *faultRig) {
		r.front.Faults().Refuse(false)
		front = r.front.Err()
	}, func(before, during cnosdbdev.FaultStats) int64 {
		// A request read before the port closed, on a connection that was open,
		// still reaches CnosDB; only one that began after was let through.
		return during.PassedWhileRefusing - before.PassedWhileRefusing
	})
	if front != nil {
		t.Errorf("the fault front could not listen again: %v", front)
	}
	return res
}

// 3. kill -9 of the output process; Telegraf starts it again after restart_delay.
//
// Telegraf counts a metric as delivered once it is written into the output's stdin,
// so the lines in the pipe and in the output's memory at the kill would be lost; with
// the acknowledgement, the input sees the output's connection close and writes every
// batch it had not had confirmed again. Nothing may be lost; the note says how many
// ids the killed output stored and how many messages were written again.
func faultKillOutput(t *testing.T) faultResult {
	r := newFaultRig(t, rigOptions{})
	r.produce(0, faultMessages)
	tg := r.telegraf()
	old := childProcess(t, tg.Pid(), "telegraf-cnosdb")
	r.waitMidStream(tg)
	killNine(t, old, "the output telegraf-cnosdb")
	// Requests that began before this came from the killed output, later ones from
	// the new one.
	killed := time.Now()
	fresh := childProcess(t, tg.Pid(), "telegraf-cnosdb")
	_, stored := r.rec().Accepted()
	t.Logf("output pid %d killed with %d ids in CnosDB; Telegraf started pid %d", old, stored, fresh)

	r.waitAll(tg)
	tg.Stop(t)
	rewinds, reread := countRewinds(t, tg.Logs())
	storedByOld := r.rec().AcceptedBefore(killed)
	res := r.result("kill-9-output", nil)
	res.note = fmt.Sprintf("%d ids stored before the kill; %d losses, %d messages written again", len(storedByOld), rewinds, reread)
	return res
}

// rewindLine is the input's warning when it writes unconfirmed messages again.
var rewindLine = regexp.MustCompile(`\[inputs\.kafka_consumer\] ack: (.*); writing the (\d+) messages not confirmed \(\d+ batches\) again`)

// countRewinds logs the losses the input saw and returns how many there were and how
// many messages it wrote again. A kill between two confirmed batches needs none.
func countRewinds(t *testing.T, logs string) (rewinds, messages int) {
	t.Helper()
	for _, m := range rewindLine.FindAllStringSubmatch(logs, -1) {
		t.Logf("written again: %s (%s messages)", m[1], m[2])
		n, _ := strconv.Atoi(m[2])
		rewinds++
		messages += n
	}
	return rewinds, messages
}

// 4. kill -9 of the input process; Telegraf starts it again. Offsets are committed
// only for messages whose metrics reached Telegraf, so nothing is lost; what was
// marked but not committed is read again.
func faultKillInput(t *testing.T) faultResult {
	r := newFaultRig(t, rigOptions{})
	r.produce(0, faultMessages)
	tg := r.telegraf()
	old := childProcess(t, tg.Pid(), "telegraf-kafka-consumer")
	r.waitMidStream(tg)
	killNine(t, old, "the input telegraf-kafka-consumer")
	fresh := childProcess(t, tg.Pid(), "telegraf-kafka-consumer")
	t.Logf("input pid %d killed; Telegraf started pid %d", old, fresh)
	r.waitAll(tg)
	return r.result("kill-9-input", nil)
}

// 5. The Kafka broker restarts (a broker of the test's own: same ports, same data)
// while the input reads; the second half of the messages arrives after the restart,
// so the input must reconnect to read them.
func faultBrokerRestart(t *testing.T) faultResult {
	broker := kafkatest.Start(t, kafkatest.Options{})
	r := newFaultRig(t, rigOptions{broker: broker})
	half := faultMessages / 2
	r.produce(0, half)
	tg := r.telegraf()
	r.waitMidStream(tg)
	began := time.Now()
	broker.Restart(t)
	down := time.Since(began)
	r.produce(half, faultMessages)
	r.waitAll(tg)
	res := r.result("kafka-broker-restart", nil)
	res.note = fmt.Sprintf("broker stopped and started again in %v", down.Round(100*time.Millisecond))
	return res
}

// 6. A second Telegraf with the same configuration joins the consumer group while
// messages flow, takes partitions, and leaves (graceful stop).
func faultSecondTelegraf(t *testing.T) faultResult {
	r := newFaultRig(t, rigOptions{partitions: 4})
	half := faultMessages / 2
	r.produce(0, half)
	first := r.telegraf()
	r.waitMidStream(first)

	front2, rec2 := recordingFront(t, r.target)
	r.recs = append(r.recs, rec2)
	second := r.telegrafTo(front2.URL())
	waitGroupMembers(t, r.broker, r.topic, 2)
	// The rest arrives while both share the partitions.
	r.produce(half, faultMessages)
	deadline := time.Now().Add(waitLimit)
	for {
		if n, _ := rec2.Accepted(); n > 0 {
			break
		}
		r.checkRunning([]*telegraftest.Process{first, second}, "waiting for the second Telegraf to write")
		if time.Now().After(deadline) {
			t.Fatalf("the second Telegraf wrote nothing within %v of joining the group", waitLimit)
		}
		time.Sleep(20 * time.Millisecond)
	}
	second.Stop(t)
	waitGroupMembers(t, r.broker, r.topic, 1)
	r.waitAll(first)
	res := r.result("second-telegraf-joins-and-leaves", nil)
	lines, _ := rec2.Accepted()
	res.note = fmt.Sprintf("4 partitions; the second Telegraf wrote %d lines", lines)
	return res
}

// waitGroupMembers waits until the consumer group has n members and is stable.
func waitGroupMembers(t *testing.T, broker *kafkatest.Broker, group string, n int) {
	t.Helper()
	admin := broker.NewClusterAdmin(t)
	deadline := time.Now().Add(waitLimit)
	var seen string
	for {
		groups, err := admin.DescribeConsumerGroups([]string{group})
		if err == nil && len(groups) == 1 {
			g := groups[0]
			seen = fmt.Sprintf("%d members, state %s", len(g.Members), g.State)
			if len(g.Members) == n && g.State == "Stable" {
				return
			}
		} else if err != nil {
			seen = err.Error()
		}
		if time.Now().After(deadline) {
			t.Fatalf("consumer group %s: expected %d members, stable; after %v: %s", group, n, waitLimit, seen)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// 7. Telegraf stops gracefully (SIGTERM) mid-stream and starts again.
func faultGracefulRestart(t *testing.T) faultResult {
	r := newFaultRig(t, rigOptions{})
	r.produce(0, faultMessages)
	first := r.telegraf()
	r.waitMidStream(first)
	first.Stop(t)
	second := r.telegraf()
	r.waitAll(second)
	return r.result("graceful-telegraf-restart", nil)
}

// rejectedLine is the output's log line for a line CnosDB refused: stdin line number,
// status, error code and the line.
var rejectedLine = regexp.MustCompile(`CnosDB rejected input line (\d+), dropped after isolating it \(every other line is written\): HTTP (\d+), CnosDB error (\d+): .*: (` + faultTable + ` \S+ \d+)`)

// 8. Some messages carry v as a string where the others carry a number: CnosDB
// rejects those lines (type conflict). The output must name exactly those, by stdin
// line and id, with CnosDB's status and error code, and store every other line.
func faultTypeConflict(t *testing.T) faultResult {
	// 50 of 100,000, none among the first lines (the first stored line fixes v's type).
	bad := func(id int) bool { return id%2000 == 1999 }
	r := newFaultRig(t, rigOptions{bad: bad})
	r.produce(0, faultMessages)
	tg := r.telegraf()
	r.waitAll(tg)
	tg.Stop(t)

	logged := make(map[int]int)
	lineOf := make(map[int]int)
	for _, m := range rejectedLine.FindAllStringSubmatch(tg.Logs(), -1) {
		id, ok := fieldID([]byte(m[4]))
		if !ok {
			t.Errorf("rejected line without an id: %s", m[0])
			continue
		}
		logged[id]++
		// One partition, one output process: stdin carries the ids in order, with the
		// input's acknowledgement markers between its batches, so id n is on line n+1
		// plus the markers before it.
		line, err := strconv.Atoi(m[1])
		if err != nil || line < id+1 {
			t.Errorf("id %d logged as stdin line %s, expected line %d or later", id, m[1], id+1)
		}
		lineOf[id] = line
		// Type conflicts: 050014 (2.4), 020004 (2.3).
		if m[2] != "422" || (m[3] != "050014" && m[3] != "020004") {
			t.Errorf("id %d rejected with HTTP %s, CnosDB error %s; expected 422 with a type error (050014 or 020004)", id, m[2], m[3])
		}
	}
	var wrong []string
	for id := range faultMessages {
		switch {
		case bad(id) && logged[id] != 1:
			wrong = append(wrong, fmt.Sprintf("id %d logged %d times, expected once", id, logged[id]))
		case !bad(id) && logged[id] != 0:
			wrong = append(wrong, fmt.Sprintf("good id %d logged as rejected", id))
		}
	}
	ids := slices.Sorted(maps.Keys(lineOf))
	for i := 1; i < len(ids); i++ {
		if lineOf[ids[i]] <= lineOf[ids[i-1]] {
			wrong = append(wrong, fmt.Sprintf("id %d logged as stdin line %d, not after id %d's line %d",
				ids[i], lineOf[ids[i]], ids[i-1], lineOf[ids[i-1]]))
		}
	}
	if len(wrong) > 0 {
		sort.Strings(wrong)
		t.Errorf("the output's log of rejected lines is wrong:\n%s", strings.Join(wrong, "\n"))
	}
	res := r.result("type-conflict-rejected-lines", nil)
	res.note = fmt.Sprintf("%d lines rejected, each logged with its id and CnosDB's error code", len(logged))
	return res
}

// kill -9 of Telegraf itself: what it holds in memory is lost. Its children find their
// pipes closed: the output gets end of file, writes what it read and confirms it; the
// input then rewinds or dies at its next write, having committed only what the output
// confirmed. So nothing may be lost: the committed offset must never pass what CnosDB
// holds, and every id must arrive once Telegraf runs again.
//
// Messages arrive while the pipeline runs, in steps, so that Telegraf is killed in a
// steady stream.
func faultKillTelegraf(t *testing.T) faultResult {
	return killTelegraf(t, "kill-9-telegraf", "")
}

// The same with Telegraf's disk buffer (buffer_strategy = "disk", experimental in
// Telegraf), which without ack_socket narrowed the loss to what was between the input's
// pipe and the buffer.
func faultKillTelegrafDiskBuffer(t *testing.T) faultResult {
	return killTelegraf(t, "kill-9-telegraf-disk-buffer",
		fmt.Sprintf("  buffer_strategy = \"disk\"\n  buffer_directory = %q\n", t.TempDir()))
}

// killTelegraf kills Telegraf whose [agent] table has the extra settings agent.
func killTelegraf(t *testing.T, name, agent string) faultResult {
	r := newFaultRig(t, rigOptions{})
	r.agent = agent
	tg := r.telegraf()
	input := childProcess(t, tg.Pid(), "telegraf-kafka-consumer")
	output := childProcess(t, tg.Pid(), "telegraf-cnosdb")
	admin := r.broker.NewClusterAdmin(t)
	// Messages keep arriving until the kill, but at most half of them are sent before
	// it, so that however slowly this machine (or the disk buffer) writes, the kill
	// comes mid-stream.
	const step = 2000
	sent := 0
	deadline := time.Now().Add(waitLimit)
	for {
		_, stored := r.rec().Accepted()
		if sent >= faultMessages/5 && stored >= faultMessages/10 {
			t.Logf("killing Telegraf: %d messages sent, offsets committed up to %d, %d ids in CnosDB",
				sent, committedOffset(t, admin, r.topic), stored)
			break
		}
		if sent < faultMessages/2 {
			r.produce(sent, sent+step)
			sent += step
		} else if time.Now().After(deadline) {
			t.Fatalf("%d messages sent and CnosDB held %d after %v; expected a tenth", sent, stored, waitLimit)
		}
		r.checkRunning([]*telegraftest.Process{tg}, "sending messages")
		time.Sleep(50 * time.Millisecond)
	}
	tg.Kill(t)
	waitGone(t, output, "the output (end of file on stdin)", waitLimit)
	// An input that has nothing more to write does not learn that Telegraf died; a
	// service manager stops what is left of the service, as SIGTERM does here.
	deadline = time.Now().Add(10 * time.Second)
	for alive(input) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if alive(input) {
		t.Logf("the input (pid %d) was idle after Telegraf died; stopping it with SIGTERM", input)
		if err := syscall.Kill(input, syscall.SIGTERM); err != nil {
			t.Fatalf("SIGTERM to the input: %v", err)
		}
		waitGone(t, input, "the input after SIGTERM", waitLimit)
	}

	committed := committedOffset(t, admin, r.topic)
	stored := r.storedIDs()
	var window []int
	for id := range int(committed) {
		if stored[id] == 0 {
			window = append(window, id)
		}
	}
	t.Logf("after the kill: offsets committed up to %d, %d ids stored", committed, len(stored))
	if len(window) > 0 {
		t.Errorf("%d ids committed but not in CnosDB after the kill (%s): the input committed unconfirmed offsets",
			len(window), summarize(window))
	}

	again := r.telegraf()
	r.produce(sent, faultMessages)
	r.waitAll(again)
	again.Stop(t)
	res := r.result(name, nil)
	res.note = fmt.Sprintf("committed up to %d with %d ids in CnosDB at the kill", committed, len(stored))
	return res
}

// committedOffset returns the offset the group named like the topic committed for
// partition 0, -1 if none.
func committedOffset(t *testing.T, admin sarama.ClusterAdmin, topic string) int64 {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		// A broker that has just started may still be loading the group's offsets.
		resp, err := admin.ListConsumerGroupOffsets(topic, map[string][]int32{topic: {0}})
		if err == nil && resp.Err != sarama.ErrNoError {
			err = resp.Err
		}
		if err == nil {
			if b := resp.GetBlock(topic, 0); b != nil && b.Err == sarama.ErrNoError {
				return b.Offset
			} else if b != nil {
				err = b.Err
			} else {
				return -1
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("committed offsets of group %s: still failing after %v: %v", topic, waitLimit, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// overflowLine is Telegraf's warning when its buffer for an output is full.
var overflowLine = regexp.MustCompile(`Metric buffer overflow; (\d+) metrics have been dropped`)

// A backlog larger than Telegraf's metric_buffer_limit (here 10,000, Telegraf's
// default), and no other fault. Without the acknowledgement the input read ahead of
// CnosDB and Telegraf, whose buffer was full, dropped the oldest metrics, whose offsets
// were committed. With it (the default), max_undelivered_messages (20,000 by default)
// and the markers (at most an eighth more), less what telegraf-cnosdb holds (it reads
// on until 8 full batches are queued), bound what waits in Telegraf's buffer below
// the limit: Telegraf must drop nothing, and nothing may be lost.
func faultBufferOverflow(t *testing.T) faultResult {
	r := newFaultRig(t, rigOptions{})
	r.bufferLimit = 10_000
	r.produce(0, faultMessages)
	tg := r.telegraf()
	r.waitAll(tg)
	tg.Stop(t)
	dropped := 0
	for _, m := range overflowLine.FindAllStringSubmatch(tg.Logs(), -1) {
		n, _ := strconv.Atoi(m[1])
		dropped += n
	}
	if dropped > 0 {
		t.Errorf("Telegraf's log counts %d metrics dropped by buffer overflow, with the default max_undelivered_messages below metric_buffer_limit", dropped)
	}
	res := r.result("backlog-over-metric_buffer_limit", nil)
	res.note = fmt.Sprintf("metric_buffer_limit 10000, the input's defaults: Telegraf dropped %d metrics", dropped)
	return res
}

// Messages whose msg string field holds a newline, as JSON logs do: line protocol
// carries it as it is, so each message's line spans two lines of text. No fault: every
// id must be stored once, and the input must never write a message again (were the
// lines of text counted for lines of line protocol, every marker would report a loss).
func faultNewlineInStringField(t *testing.T) faultResult {
	r := newFaultRig(t, rigOptions{message: func(id int) []byte {
		return fmt.Appendf(nil, `{"id":%d,"v":%d.5,"msg":"request %d failed\nretrying"}`, id, id, id)
	}})
	r.noRewrites = true
	r.produce(0, faultMessages)
	tg := r.telegraf()
	r.waitAll(tg)
	res := r.result("newline-in-string-field", nil)
	res.note = "msg holds a newline" + r.gaveUpNote()
	return res
}

// One message among the line protocol messages (data_format = "influx") is shaped
// like the input's acknowledgement marker and names a socket the test listens on. It
// is data: nothing may connect to that socket, the input refuses the message, every
// other id is stored once and nothing is written again.
func faultMarkerShapedMessage(t *testing.T) faultResult {
	const forged = faultMessages / 2
	socket := listenForged(t)
	r := newFaultRig(t, rigOptions{
		format: "influx",
		bad:    func(id int) bool { return id == forged },
		message: func(id int) []byte {
			if id == forged {
				return []byte(socket.marker())
			}
			return fmt.Appendf(nil, "%s id=%di,v=%d.5", faultTable, id, id)
		},
	})
	r.noRewrites = true
	r.produce(0, faultMessages)
	tg := r.telegraf()
	r.waitAll(tg)
	// Once stopped, the output has read past the forged message and connected to
	// whatever it was going to.
	tg.Stop(t)
	res := r.result("marker-shaped-message", nil)
	conns := socket.connections()
	if len(conns) > 0 {
		t.Errorf("%d connections to the socket a Kafka message named; what each wrote: %q", len(conns), conns)
	}
	res.note = fmt.Sprintf("offset %d marker-shaped; %d connections to the socket it names", forged, len(conns)) + r.gaveUpNote()
	return res
}

// giveUpFirstPart is how many messages the give-up faults send before the input gives
// up; the rest follow once it has, to show that it reads none of them.
const giveUpFirstPart = faultMessages * 6 / 10

// A filter on the [[outputs.execd]] of telegraf-cnosdb drops the input's metric of one
// id: the batch holding it reaches the output one line short each time, and the output
// answers its marker "lost". The input writes it again at most 5 times, then logs one
// error naming the batch and stops reading the partition: nothing after it is read,
// and no offset from the batch on is committed. A Telegraf without the filter then
// reads on from the committed offset, and every id is stored once.
func faultOutputFilter(t *testing.T) faultResult {
	const name = "output-filter-drops-input-metrics"
	const dropped = faultMessages / 2
	r := newFaultRig(t, rigOptions{})
	// The markers and kafka_consumer_stats have no id and pass; the JSON parser makes
	// id a float.
	r.outputExtra = fmt.Sprintf("  metricpass = \"!('id' in fields) || double(fields.id) != %d.0\"\n", dropped)
	r.inputExtra = statsEvery
	r.produce(0, giveUpFirstPart)
	tg := r.telegraf()
	w := r.watchCommitted()
	g := r.waitGiveUp(tg, w)
	if g.topic != r.topic || g.partition != 0 || g.first > dropped || g.last < dropped {
		t.Errorf("given up: %+v; expected topic %q partition 0, offsets from %d or before to %d or after", g, r.topic, dropped, dropped)
	}
	read := r.checkReadingStopped(tg, giveUpFirstPart, w)
	tg.Stop(t)
	if gs := givenUps(tg.Logs()); len(gs) != 1 {
		t.Errorf("%d give-ups logged: %+v; expected one", len(gs), gs)
	}
	times, _ := countRewinds(t, tg.Logs())
	if times < 5 || times > 6 {
		t.Errorf("the input wrote unconfirmed messages again %d times; expected 5 for the batch given up, and at most one more", times)
	}
	committed := r.checkCommitted(g, w)

	// The same topic, group and database, without the filter.
	r.outputExtra = ""
	front, rec := recordingFront(t, r.target)
	r.recs = append(r.recs, rec)
	again := r.telegrafTo(front.URL())
	r.waitAll(again)
	again.Stop(t)
	if gs := givenUps(again.Logs()); len(gs) != 0 {
		t.Errorf("the Telegraf without the filter gave up %+v", gs)
	}
	res := r.result(name, nil)
	res.note = fmt.Sprintf("metricpass dropped id %d: offsets %d-%d given up after %d rewrites, %d read, committed %d; then all without the filter",
		dropped, g.first, g.last, times, read, committed)
	return res
}

// [[processors.dedup]] drops a metric that repeats the last one of its series within
// dedup_interval. Each message carries a tag of its own (key), so that each series
// holds one metric and a message written again is the same metric as the one dedup
// holds, and is dropped. (Without such a tag every metric is of one series, each
// differs from the last in id, and dedup lets everything through.) A kill -9 of the
// output makes the input write what it had not had confirmed again; dedup drops that,
// the batches go missing each time, and the input gives them up and stops reading.
// Every batch of the partition is given up with them, in one error. Nothing from the
// first batch given up on is committed. Telegraf started
// again, with the same configuration, has a new dedup cache and stores every id once.
func faultProcessorsDedup(t *testing.T) faultResult {
	const name = "processors-dedup"
	r := newFaultRig(t, rigOptions{message: func(id int) []byte {
		return fmt.Appendf(nil, `{"id":%d,"key":"k%d","v":%d.5}`, id, id, id)
	}})
	r.inputExtra = statsEvery + "  tag_keys = [\"key\"]\n"
	r.processors = "\n[[processors.dedup]]\n  dedup_interval = \"600s\"\n"
	r.produce(0, giveUpFirstPart)
	tg := r.telegraf()
	w := r.watchCommitted()
	old := childProcess(t, tg.Pid(), "telegraf-cnosdb")
	r.waitMidStream(tg)
	killNine(t, old, "the output telegraf-cnosdb")
	fresh := childProcess(t, tg.Pid(), "telegraf-cnosdb")
	_, stored := r.rec().Accepted()
	t.Logf("output pid %d killed with %d ids in CnosDB; Telegraf started pid %d", old, stored, fresh)
	g := r.waitGiveUp(tg, w)
	read := r.checkReadingStopped(tg, giveUpFirstPart, w)
	tg.Stop(t)
	gs := givenUps(tg.Logs())
	given := 0
	for _, g1 := range gs {
		given += g1.messages
		if g1.topic != r.topic || g1.partition != 0 || g1.first < g.first {
			t.Errorf("given up: %+v; expected topic %q partition 0, from offset %d on", g1, r.topic, g.first)
		}
	}
	if len(gs) != 1 {
		t.Errorf("%d give-ups logged: %+v; expected one, with every batch of the partition", len(gs), gs)
	}
	// Once when the new output answers, then 5 times as dedup drops each rewrite.
	times, _ := countRewinds(t, tg.Logs())
	if times < 5 || times > 7 {
		t.Errorf("the input wrote unconfirmed messages again %d times; expected 6 (the output's kill, then 5 for the batches given up), give or take one", times)
	}
	committed := r.checkCommitted(g, w)

	// Telegraf again, with the same configuration.
	again := r.telegraf()
	r.waitAll(again)
	again.Stop(t)
	if gs := givenUps(again.Logs()); len(gs) != 0 {
		t.Errorf("Telegraf started again gave up %+v", gs)
	}
	res := r.result(name, nil)
	res.note = fmt.Sprintf("kill -9 of the output at %d ids: %d give-ups (%d messages from offset %d), %d rewrites, %d read, committed %d; then all after a restart",
		stored, len(gs), given, g.first, times, read, committed)
	return res
}
