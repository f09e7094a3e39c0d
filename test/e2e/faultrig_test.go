package e2e

import (
	"fmt"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/dev/cnosdbdev"
	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/testutil/cnosdbtest"
	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/testutil/kafkatest"
	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/testutil/telegraftest"
)

// faultMessages is how many messages each fault test sends, each with a unique id.
const faultMessages = 100_000

// faultTable is where the JSON parser puts the messages' metrics.
const faultTable = "kafka_consumer"

// waitLimit bounds every wait of the fault tests: generous, since the machine may be
// slow; reaching it fails the test with what was expected and what was seen.
const waitLimit = 4 * time.Minute

// faultRig is one fault test's pipeline: its own topic and database, a recorder in
// front of CnosDB (the faults are set on its front), stock Telegraf and the pair.
type faultRig struct {
	t      *testing.T
	broker *kafkatest.Broker
	topic  string
	target *cnosdbtest.Target
	db     string
	front  *cnosdbdev.Front        // what the first Telegraf's output writes to
	recs   []*recorder             // every recorder writes went through
	tgs    []*telegraftest.Process // every Telegraf the rig started
	bad    func(id int) bool
	custom func(id int) []byte // the messages, if not the rig's own
	format string              // the input's data_format
	agent  string              // settings added to telegraf.conf's [agent] table
	// noRewrites says that the input must never write messages again: waiting
	// for the ids ends as soon as Telegraf's log says it did, and gaveUp is set.
	noRewrites bool
	gaveUp     bool
	// bufferLimit, if set, replaces the metric_buffer_limit of telegraf.conf.
	bufferLimit int
	// inputExtra is added to kafka_consumer.conf's table, outputExtra to the
	// [[outputs.execd]] table of telegraf-cnosdb in telegraf.conf (a filter, say);
	// processors is appended to telegraf.conf. A Telegraf started later with another
	// output URL gets them as they are then.
	inputExtra  string
	outputExtra string
	processors  string
	configs     map[string]string // telegraf.conf by output URL
	began       time.Time
}

type rigOptions struct {
	broker     *kafkatest.Broker // nil: the package's shared broker
	partitions int               // zero: 1
	// bad, if set, picks the ids whose field v is a string where the others carry a
	// number, so that CnosDB rejects their lines; with message, the ids whose
	// messages must not be stored.
	bad func(id int) bool
	// message, if set, gives each id's message in data_format format ("json" if
	// empty) in place of the rig's own; its line must have an integer field id.
	message func(id int) []byte
	format  string
}

func newFaultRig(t *testing.T, opts rigOptions) *faultRig {
	t.Helper()
	if opts.broker == nil {
		opts.broker = kafkatest.Shared(t)
	}
	if opts.partitions < 1 {
		opts.partitions = 1
	}
	if opts.bad == nil {
		opts.bad = func(int) bool { return false }
	}
	r := &faultRig{
		t:      t,
		broker: opts.broker,
		topic:  kafkatest.UniqueName(t, "faults"),
		bad:    opts.bad,
		custom: opts.message,
		format: opts.format,
		began:  time.Now(),
	}
	if r.format == "" {
		r.format = "json"
	}
	r.broker.CreateTopic(t, r.topic, opts.partitions)
	r.target = cnosdbtest.Start(t, cnosdbdev.Options{})
	r.db = r.target.NewDatabase(t, "")
	var rec *recorder
	r.front, rec = recordingFront(t, r.target)
	r.recs = append(r.recs, rec)
	return r
}

// rec is the recorder of the first Telegraf's writes.
func (r *faultRig) rec() *recorder { return r.recs[0] }

// message is the JSON of message id: the id and a value, and no time, as the article's
// messages: the time of the row is the input's, taken from the Kafka record, so that
// a message read again lands on the same row and any row beyond one per id is a
// duplicate a user would see.
func (r *faultRig) message(id int) []byte {
	if r.custom != nil {
		return r.custom(id)
	}
	if r.bad(id) {
		return fmt.Appendf(nil, `{"id":%d,"v":"text-%d"}`, id, id)
	}
	return fmt.Appendf(nil, `{"id":%d,"v":%d.5}`, id, id)
}

// produce writes the messages with ids from..to-1 to the topic.
func (r *faultRig) produce(from, to int) {
	r.t.Helper()
	msgs := make([]kafkatest.Message, 0, to-from)
	for id := from; id < to; id++ {
		msgs = append(msgs, kafkatest.Message{Value: r.message(id)})
	}
	r.broker.ProduceMessages(r.t, r.topic, msgs...)
}

// config writes the plugins' files and returns telegraf.conf for stock Telegraf
// whose output writes to url; the same for every call with the same url, as a
// restarted Telegraf reads the same file (Telegraf names its disk buffer after it).
func (r *faultRig) config(url string) string {
	t := r.t
	t.Helper()
	if conf, ok := r.configs[url]; ok {
		return conf
	}
	dir := t.TempDir()
	parser := ""
	if r.format == "json" {
		parser = "  json_string_fields = [\"v\", \"msg\"]\n"
	}
	kafkaConf := writeConfig(t, dir, "kafka_consumer.conf", telegraftest.KafkaConsumer{
		Brokers: []string{r.broker.Addr()}, Topics: []string{r.topic}, ConsumerGroup: r.topic, Offset: "oldest",
		DataFormat: r.format, More: parser + r.inputExtra}.String())
	// retry_max_interval is short so that the writes resume soon after an outage.
	cnosdbConf := writeConfig(t, dir, "cnosdb.conf", telegraftest.CnosDB{
		URLs: []string{url}, Database: r.db, Username: r.target.User, Password: r.target.Password,
		More: "  flush_interval = \"200ms\"\n  retry_max_interval = \"2s\"\n"}.String())
	conf := telegraftest.PairConfig(telegraftest.Latest, binary("telegraf-kafka-consumer"), kafkaConf,
		binary("telegraf-cnosdb"), cnosdbConf)
	conf = strings.Replace(conf, "[agent]\n", "[agent]\n"+r.agent, 1)
	if r.outputExtra != "" {
		// Keys appended at the end land in the last table, which must be the output's.
		if last := conf[strings.LastIndex(conf, "[["):]; !strings.HasPrefix(last, "[[outputs.execd]]") {
			t.Fatalf("telegraf.conf does not end with the [[outputs.execd]] table:\n%s", last)
		}
		conf += r.outputExtra
	}
	conf += r.processors
	if r.bufferLimit > 0 {
		conf = regexp.MustCompile(`metric_buffer_limit = \d+`).ReplaceAllString(conf, fmt.Sprintf("metric_buffer_limit = %d", r.bufferLimit))
	}
	if r.configs == nil {
		r.configs = make(map[string]string)
	}
	r.configs[url] = conf
	return conf
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// writeConfig writes a configuration file into dir and returns its path.
func writeConfig(t *testing.T, dir, name, body string) string {
	t.Helper()
	path, err := telegraftest.WriteConfig(dir, name, body)
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// telegraf starts stock Telegraf writing through the rig's first front.
func (r *faultRig) telegraf() *telegraftest.Process {
	r.t.Helper()
	return r.telegrafTo(r.front.URL())
}

// telegrafTo starts stock Telegraf whose output writes to url.
func (r *faultRig) telegrafTo(url string) *telegraftest.Process {
	r.t.Helper()
	tg := telegraftest.Start(r.t, telegraftest.Latest, r.config(url))
	r.tgs = append(r.tgs, tg)
	return tg
}

// rewrites returns how many times the input wrote unconfirmed messages again, and how
// many messages that was, by the warnings in the logs of every Telegraf the rig ran.
func (r *faultRig) rewrites() (times, messages int) {
	for _, tg := range r.tgs {
		for _, m := range rewindLine.FindAllStringSubmatch(tg.Logs(), -1) {
			n, _ := strconv.Atoi(m[2])
			times++
			messages += n
		}
	}
	return times, messages
}

// waitMidStream waits until CnosDB has accepted at least a fifth of the messages,
// and fails if it has already accepted them all: a fault injected then would test
// nothing.
func (r *faultRig) waitMidStream(tgs ...*telegraftest.Process) {
	r.t.Helper()
	want := faultMessages / 5
	deadline := time.Now().Add(waitLimit)
	for {
		_, distinct := r.rec().Accepted()
		if distinct >= faultMessages-r.badCount() {
			r.t.Fatalf("CnosDB had taken all %d messages before the fault was injected; nothing was tested", distinct)
		}
		if distinct >= want {
			r.t.Logf("fault injected with %d of %d ids in CnosDB", distinct, faultMessages)
			return
		}
		r.checkRunning(tgs, fmt.Sprintf("waiting for %d ids in CnosDB, %d so far", want, distinct))
		if time.Now().After(deadline) {
			r.t.Fatalf("CnosDB took %d ids within %v; expected at least %d", distinct, waitLimit, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (r *faultRig) checkRunning(tgs []*telegraftest.Process, doing string) {
	r.t.Helper()
	for _, tg := range tgs {
		if tg.Exited() {
			r.t.Fatalf("Telegraf exited while %s", doing)
		}
	}
}

func (r *faultRig) badCount() int {
	n := 0
	for id := range faultMessages {
		if r.bad(id) {
			n++
		}
	}
	return n
}

// acceptedIDs returns the ids CnosDB accepted through any recorder.
func (r *faultRig) acceptedIDs() map[int]bool {
	ids := make(map[int]bool)
	for _, rec := range r.recs {
		rec.mu.Lock()
		for id := range rec.times {
			ids[id] = true
		}
		rec.mu.Unlock()
	}
	return ids
}

// waitAccepted waits until CnosDB has accepted every id for which want is true.
func (r *faultRig) waitAccepted(want func(id int) bool, tgs ...*telegraftest.Process) {
	r.t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		got := r.acceptedIDs()
		missing, first := 0, -1
		for id := range faultMessages {
			if want(id) && !got[id] {
				if first < 0 {
					first = id
				}
				missing++
			}
		}
		if missing == 0 {
			return
		}
		if times, messages := r.rewrites(); r.noRewrites && times > 0 {
			// What a rewrite costs shows in the result; waiting longer would only
			// wait for what may never come.
			r.t.Errorf("the input wrote unconfirmed messages again %d times (%d messages) with %d ids still missing in CnosDB",
				times, messages, missing)
			r.gaveUp = true
			return
		}
		r.checkRunning(tgs, fmt.Sprintf("waiting for %d ids still missing in CnosDB (the first: %d)", missing, first))
		if time.Now().After(deadline) {
			r.t.Fatalf("after %v, %d ids expected in CnosDB were still missing (the first: %d)", waitLimit, missing, first)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitAll waits until CnosDB has accepted every id that is not bad.
func (r *faultRig) waitAll(tgs ...*telegraftest.Process) {
	r.t.Helper()
	r.waitAccepted(func(id int) bool { return !r.bad(id) }, tgs...)
}

// storedIDs returns how many rows of the table hold each id, by SQL.
func (r *faultRig) storedIDs() map[int]int {
	r.t.Helper()
	answer := r.target.SQL(r.t, r.db, "SELECT id FROM "+faultTable)
	rows := strings.Split(strings.TrimSpace(answer), "\n")
	if len(rows) == 0 || strings.TrimSpace(rows[0]) != "id" {
		r.t.Fatalf("SELECT id answered %.200q; expected CSV with the column id", answer)
	}
	ids := make(map[int]int, len(rows))
	for _, row := range rows[1:] {
		v, err := strconv.ParseFloat(strings.TrimSpace(row), 64)
		if err != nil || v != float64(int(v)) {
			r.t.Fatalf("a row's id is %q, not a whole number", row)
		}
		ids[int(v)]++
	}
	return ids
}

// faultResult is one line of the summary.
type faultResult struct {
	name       string
	lost       int
	duplicates int64 // lines CnosDB accepted beyond one per row
	dupRows    int   // rows beyond one per id
	rewrites   int   // times the input wrote unconfirmed messages again
	duration   time.Duration
	note       string
}

// gaveUpNote is what the note of a result says when waiting ended at a rewrite.
func (r *faultRig) gaveUpNote() string {
	if !r.gaveUp {
		return ""
	}
	return "; stopped waiting at the first rewrite: lost counts the ids not stored by then"
}

// result checks CnosDB against the messages sent: every good id stored once as one
// row, no bad id stored, no row that no message asked for. Ids for which mayLose is
// true may be missing (the fault's known window); every other missing id fails the
// test. Duplicates are the lines CnosDB accepted beyond one per stored row.
func (r *faultRig) result(name string, mayLose func(id int) bool) faultResult {
	t := r.t
	t.Helper()
	stored := r.storedIDs()
	rows := 0
	for id, n := range stored {
		rows += n
		if id < 0 || id >= faultMessages {
			t.Errorf("CnosDB holds a row with id %d, which no message had", id)
		}
		if n > 1 {
			t.Errorf("CnosDB holds %d rows with id %d; a message read again must land on its row", n, id)
		}
		if r.bad(id) {
			t.Errorf("CnosDB stored id %d, whose message was to be refused", id)
		}
	}
	var lost, unexplained []int
	for id := range faultMessages {
		if stored[id] == 0 && !r.bad(id) {
			lost = append(lost, id)
			if mayLose == nil || !mayLose(id) {
				unexplained = append(unexplained, id)
			}
		}
	}
	if len(unexplained) > 0 {
		t.Errorf("%d ids are not in CnosDB (%s)", len(unexplained), summarize(unexplained))
	}
	var lines int64
	for _, rec := range r.recs {
		n, _ := rec.Accepted()
		lines += n
	}
	// The rows as CnosDB counts them (exact_count(*) on a real one), beyond one per id.
	counted := r.target.Count(t, r.db, faultTable)
	rewrites, rewritten := r.rewrites()
	res := faultResult{name: name, lost: len(lost), duplicates: lines - int64(rows), dupRows: counted - len(stored),
		rewrites: rewrites, duration: time.Since(r.began)}
	if res.dupRows != 0 {
		t.Errorf("CnosDB counts %d rows for %d ids: %d duplicate rows", counted, len(stored), res.dupRows)
	}
	if r.noRewrites && rewrites != 0 {
		t.Errorf("the input wrote unconfirmed messages again %d times (%d messages); no fault here loses any", rewrites, rewritten)
	}
	if r.target.Real {
		t.Logf("%s: duplicates are counted from the writes CnosDB answered with 200; a write CnosDB stored but answered with a timeout (422 050016) is not counted", name)
	}
	t.Logf("%s: %d of %d ids stored, %d lost, %d lines accepted by CnosDB (%d duplicates), %d rows (%d duplicate rows), %d rewrites (%d messages)",
		name, len(stored), faultMessages-r.badCount(), len(lost), lines, res.duplicates, counted, res.dupRows, rewrites, rewritten)
	return res
}

// summarize lists the first ids of a sorted list, and its range.
func summarize(ids []int) string {
	if len(ids) == 0 {
		return "none"
	}
	sort.Ints(ids)
	shown := ids
	if len(shown) > 10 {
		shown = shown[:10]
	}
	parts := make([]string, len(shown))
	for i, id := range shown {
		parts[i] = strconv.Itoa(id)
	}
	s := strings.Join(parts, ", ")
	if len(ids) > len(shown) {
		s += ", …"
	}
	return fmt.Sprintf("%s; from %d to %d", s, ids[0], ids[len(ids)-1])
}

// resultTable formats the summary printed at the end of the suite.
func resultTable(results []faultResult) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "\n%-34s %8s %16s %14s %9s %9s  %s\n", "fault", "lost", "duplicate lines", "duplicate rows", "rewrites", "duration", "note")
	for _, r := range results {
		fmt.Fprintf(&sb, "%-34s %8d %16d %14d %9d %9s  %s\n", r.name, r.lost, r.duplicates, r.dupRows, r.rewrites, r.duration.Round(time.Second), r.note)
	}
	return sb.String()
}

// giveUpLine is the input's error when a batch went on going missing each time it was
// written again and it stopped reading the batch's partition (acker.giveUpLocked):
// how often it was written again, and the topic, partition, offsets and number of
// the messages given up (one partition's; the suite's topics have one).
var giveUpLine = regexp.MustCompile(`E! .*\[inputs\.kafka_consumer\] ack: .*went on going missing each of the (\d+) times it was written again: topic "([^"]+)" partition (\d+) offsets (\d+) to (\d+) \((\d+) messages\)`)

// givenUp is one batch the input gave up on, as its error names it.
type givenUp struct {
	times       int // it was written again
	topic       string
	partition   int
	first, last int64
	messages    int
}

// givenUps returns the batches given up in logs.
func givenUps(logs string) []givenUp {
	var out []givenUp
	for _, m := range giveUpLine.FindAllStringSubmatch(logs, -1) {
		var g givenUp
		g.times, _ = strconv.Atoi(m[1])
		g.topic = m[2]
		g.partition, _ = strconv.Atoi(m[3])
		g.first, _ = strconv.ParseInt(m[4], 10, 64)
		g.last, _ = strconv.ParseInt(m[5], 10, 64)
		g.messages, _ = strconv.Atoi(m[6])
		out = append(out, g)
	}
	return out
}

// committedWatch follows the offset the consumer group named like the topic commits
// for partition 0: highest is the highest seen at any look.
type committedWatch struct {
	admin   sarama.ClusterAdmin
	topic   string
	highest int64
}

func (r *faultRig) watchCommitted() *committedWatch {
	return &committedWatch{admin: r.broker.NewClusterAdmin(r.t), topic: r.topic, highest: -1}
}

// look reads the committed offset and returns it.
func (w *committedWatch) look(t *testing.T) int64 {
	t.Helper()
	c := committedOffset(t, w.admin, w.topic)
	w.highest = max(w.highest, c)
	return c
}

// waitGiveUp waits until tg's log names a batch given up and returns it, looking at
// the committed offset every 100 ms meanwhile.
func (r *faultRig) waitGiveUp(tg *telegraftest.Process, w *committedWatch) givenUp {
	r.t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		w.look(r.t)
		if gs := givenUps(tg.Logs()); len(gs) > 0 {
			r.t.Logf("given up: topic %q partition %d offsets %d to %d (%d messages), written again %d times",
				gs[0].topic, gs[0].partition, gs[0].first, gs[0].last, gs[0].messages, gs[0].times)
			return gs[0]
		}
		times, _ := r.rewrites()
		r.checkRunning([]*telegraftest.Process{tg}, fmt.Sprintf("waiting for the input to give up a batch (%d rewrites so far)", times))
		if time.Now().After(deadline) {
			r.t.Fatalf("after %v the input had not given up a batch; it wrote unconfirmed messages again %d times", waitLimit, times)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// statsEvery is the kafka_consumer_stats interval of the faults that look at the
// input's stats (inputExtra).
const statsEvery = "  stats_interval = \"1s\"\n"

// checkReadingStopped sends ids from..faultMessages-1 after the input of tg gave up a
// batch, and checks that it reads none of them. It waits until the input's last three
// kafka_consumer_stats metrics (statsEvery) stamped after they were sent show nothing
// outstanding (no batch left to write again, however many it gave up meanwhile);
// they must count the same messages read, no more than from, and as given up the
// messages of every give-up in tg's log. No id from from on may then be in CnosDB. It
// returns the messages read. It looks at the committed offset at each round.
func (r *faultRig) checkReadingStopped(tg *telegraftest.Process, from int, w *committedWatch) int {
	t := r.t
	t.Helper()
	r.produce(from, faultMessages)
	sent := time.Now().UTC()
	deadline := time.Now().Add(waitLimit)
	type tick struct{ messages, givenUp, outstanding int }
	for {
		w.look(t)
		answer := r.target.SQL(t, r.db, "SELECT time, messages, given_up, outstanding FROM kafka_consumer_stats WHERE given_up > 0 ORDER BY time")
		var ticks []tick
		for _, row := range strings.Split(strings.TrimSpace(answer), "\n")[1:] {
			cols := strings.Split(strings.TrimSpace(row), ",")
			if len(cols) != 4 {
				t.Fatalf("kafka_consumer_stats row %q; expected time, messages, given_up, outstanding", row)
			}
			at, err := time.Parse("2006-01-02T15:04:05.999999999", strings.TrimSuffix(cols[0], "Z"))
			if err != nil {
				t.Fatalf("kafka_consumer_stats time %q: %v", cols[0], err)
			}
			if at.Before(sent) {
				continue
			}
			var k tick
			for i, v := range []*int{&k.messages, &k.givenUp, &k.outstanding} {
				if *v, err = strconv.Atoi(cols[i+1]); err != nil {
					t.Fatalf("kafka_consumer_stats row %q: messages, given_up and outstanding must be integers", row)
				}
			}
			ticks = append(ticks, k)
		}
		settled := 0
		for i := len(ticks) - 1; i >= 0 && ticks[i].outstanding == 0; i-- {
			settled++
		}
		if settled >= 3 {
			last := ticks[len(ticks)-3:]
			logged := 0
			for _, g := range givenUps(tg.Logs()) {
				logged += g.messages
			}
			for _, k := range last {
				if k.messages != last[0].messages || k.messages > from || k.givenUp != logged {
					t.Errorf("kafka_consumer_stats after the give-up and %d more messages: %+v; expected the same messages read, at most %d, and given_up %d as logged",
						faultMessages-from, last, from, logged)
					break
				}
			}
			var read []int
			for id := range r.acceptedIDs() {
				if id >= from {
					read = append(read, id)
				}
			}
			if len(read) > 0 {
				t.Errorf("%d ids sent after the input gave up are in CnosDB (%s): reading went on", len(read), summarize(read))
			}
			t.Logf("reading stopped: %d stats metrics since %d more messages were sent, the last %d with nothing outstanding, count %d messages read, %d given up",
				len(ticks), faultMessages-from, settled, last[0].messages, last[2].givenUp)
			return last[0].messages
		}
		r.checkRunning([]*telegraftest.Process{tg}, "waiting for kafka_consumer_stats after the give-up")
		if time.Now().After(deadline) {
			t.Fatalf("after %v, kafka_consumer_stats with given_up > 0 since the last messages were sent: %+v; expected the last 3 with nothing outstanding",
				waitLimit, ticks)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// checkCommitted checks, once the Telegraf that gave up g has stopped, that the
// group's committed offset, now and at every look before, is at most g's first offset,
// and that every id below it is stored once; it returns the committed offset.
func (r *faultRig) checkCommitted(g givenUp, w *committedWatch) int64 {
	t := r.t
	t.Helper()
	committed := w.look(t)
	if w.highest > g.first {
		t.Errorf("the group committed offset %d, past %d, the first offset given up", w.highest, g.first)
	}
	stored := r.storedIDs()
	var wrong []int
	for id := range int(committed) {
		if stored[id] != 1 {
			wrong = append(wrong, id)
		}
	}
	if len(wrong) > 0 {
		t.Errorf("%d ids below the committed offset %d are not stored once (%s)", len(wrong), committed, summarize(wrong))
	}
	t.Logf("committed offset %d (at most %d seen), %d ids stored", committed, w.highest, len(stored))
	return committed
}
