package e2e

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"

	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/testutil/kafkatest"
	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/testutil/telegraftest"
)

// bigMessage is over the Kafka defaults (1 MB), so the topics and the producer
// are configured for it.
const bigMessage = 10 << 20

// allowBigMessages raises max.message.bytes of topics above bigMessage.
func allowBigMessages(t *testing.T, b *kafkatest.Broker, topics ...string) {
	admin := b.NewClusterAdmin(t)
	limit := strconv.Itoa(bigMessage + 1<<20)
	for _, topic := range topics {
		require.NoError(t, admin.AlterConfig(sarama.TopicResource, topic, map[string]*string{"max.message.bytes": &limit}, false))
	}
}

// produceBig produces values in order to one partition with a producer that takes
// messages of bigMessage bytes.
func produceBig(t *testing.T, b *kafkatest.Broker, topic string, values [][]byte) {
	cfg := kafkatest.NewConfig()
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Return.Successes = true
	cfg.Producer.MaxMessageBytes = bigMessage + 1<<20
	cfg.Net.MaxOpenRequests = 1
	producer, err := sarama.NewSyncProducer([]string{b.Addr()}, cfg)
	require.NoError(t, err)
	defer producer.Close()
	for i, v := range values {
		_, offset, err := producer.SendMessage(&sarama.ProducerMessage{Topic: topic, Value: sarama.ByteEncoder(v)})
		require.NoError(t, err, "message %d", i)
		require.Equal(t, int64(i), offset, "message %d", i)
	}
}

// badCase is one message of TestBadInputEndToEnd and what must become of it.
type badCase struct {
	name  string
	value string
	// Exactly one of these: the row it gives (seq, station, temperature, level; ""
	// for a NULL), or the log line that reports it.
	row []string
	log string
}

// TestBadInputEndToEnd sends good messages interleaved with every kind of bad input
// through stock Telegraf and both plugins: every good message is stored with its
// exact values, each bad one is logged once with its place (topic, partition and
// offset at the input; status, CnosDB error code and the line at the output) and
// counted, and nothing else is lost.
func TestBadInputEndToEnd(t *testing.T) {
	p := newPipeline(t, 1)
	deadLetters := p.topic + "-dead"
	p.broker.CreateTopic(t, deadLetters, 1)
	allowBigMessages(t, p.broker, p.topic, deadLetters)
	start := time.Now().Add(-time.Hour).UnixMicro()

	ts := func(seq int) string { return strconv.FormatInt(start+int64(seq), 10) }
	good := func(seq int, station string) badCase {
		temperature := 20 + float64(seq)/4
		return badCase{
			name:  "good",
			value: fmt.Sprintf(`{"ts":%s,"station":%q,"seq":%d,"temperature":%g,"level":%g}`, ts(seq), station, seq, temperature, float64(seq)/8),
			row:   []string{strconv.Itoa(seq), station, strconv.FormatFloat(temperature, 'g', -1, 64), strconv.FormatFloat(float64(seq)/8, 'g', -1, 64)},
		}
	}
	inputError := func(offset int, cause string) string {
		return fmt.Sprintf(`topic %q partition 0 offset %d: %s`, p.topic, offset, cause)
	}
	var cases []badCase
	add := func(c badCase) { cases = append(cases, c) }
	seq := 0
	next := func() int { seq++; return seq }
	add(good(next(), "north"))
	bad := []func(offset int) badCase{
		func(o int) badCase {
			return badCase{name: "malformed JSON", value: `{"seq": 1, "temperature": `, log: inputError(o, "unexpected end of JSON input")}
		},
		func(o int) badCase {
			return badCase{name: "empty", value: "", log: inputError(o, "the message gave no metrics: verify the parser settings (empty value)")}
		},
		func(o int) badCase {
			return badCase{name: "10 MiB", value: `{"pad":"` + strings.Repeat("x", bigMessage) + `"}`,
				log: inputError(o, fmt.Sprintf("message exceeds max_message_len (actual %d, max 1000000)", bigMessage+10))}
		},
		func(o int) badCase {
			return badCase{name: "invalid UTF-8", value: "{\"station\":\"n\xffrth\",\"seq\":1}", log: inputError(o, "invalid UTF-8 at byte 13")}
		},
		func(o int) badCase {
			return badCase{name: "NaN", value: `{"seq":1,"temperature":NaN}`, log: inputError(o, "invalid character 'N' looking for beginning of value")}
		},
		func(o int) badCase {
			return badCase{name: "Infinity", value: `{"seq":1,"temperature":Infinity}`, log: inputError(o, "invalid character 'I' looking for beginning of value")}
		},
		func(o int) badCase {
			return badCase{name: "-Infinity", value: `{"seq":1,"temperature":-Infinity}`, log: inputError(o, "invalid character 'I' in numeric literal")}
		},
		func(o int) badCase {
			return badCase{name: "1e999", value: `{"seq":1,"temperature":1e999}`, log: inputError(o, "json: cannot unmarshal number 1e999 into Go value of type float64")}
		},
		func(int) badCase {
			// JavaScript writes NaN and infinities as null; a quoted "NaN" is a string,
			// which the json parser leaves out: the rest of the message is stored.
			s := next()
			return badCase{name: "null", value: fmt.Sprintf(`{"ts":%s,"station":"north","seq":%d,"temperature":null}`, ts(s), s),
				row: []string{strconv.Itoa(s), "north", "", ""}}
		},
		func(int) badCase {
			s := next()
			return badCase{name: `"NaN"`, value: fmt.Sprintf(`{"ts":%s,"station":"north","seq":%d,"temperature":"NaN"}`, ts(s), s),
				row: []string{strconv.Itoa(s), "north", "", ""}}
		},
		func(int) badCase {
			// JSON numbers are float64 to Telegraf's parser, those beyond int64 too.
			s := next()
			return badCase{name: "beyond int64", value: fmt.Sprintf(`{"ts":%s,"station":"north","seq":%d,"temperature":99999999999999999999999,"level":9223372036854775808}`, ts(s), s),
				row: []string{strconv.Itoa(s), "north", "1e+23", "9.223372036854776e+18"}}
		},
		func(int) badCase {
			// level is a DOUBLE column by now; a string there is refused by CnosDB.
			s := next()
			return badCase{name: "type flip", value: fmt.Sprintf(`{"ts":%s,"station":"north","seq":%d,"level":"high"}`, ts(s), s),
				log: `CnosDB rejected input line `}
		},
		func(int) badCase { return good(next(), "a b") },
		func(int) badCase { return good(next(), "a,b") },
		func(int) badCase { return good(next(), "a=b") },
		func(int) badCase {
			// CnosDB's line protocol keeps an escaped backslash as two: a tag value
			// cannot hold a lone one (see "Line protocol as CnosDB takes it" in
			// plugins/outputs/cnosdb/README.md).
			c := good(next(), `a\b "c"`)
			c.row[1] = `a\\b "c"`
			return c
		},
		func(int) badCase {
			// Line protocol cannot carry a newline in a tag: Telegraf's serializer
			// writes it as backslash n, which CnosDB then keeps with the backslash
			// doubled (see plugins/outputs/cnosdb/README.md).
			c := good(next(), "a\nb")
			c.row[1] = `a\\nb`
			return c
		},
	}
	for _, mk := range bad {
		c := mk(len(cases))
		add(c)
		add(good(next(), "south"))
	}
	values := make([][]byte, len(cases))
	for i, c := range cases {
		values[i] = []byte(c.value)
	}
	produceBig(t, p.broker, p.topic, values)

	config := p.telegrafConfigWith(t, telegraftest.Latest, fmt.Sprintf(`  tag_keys = ["station"]
  json_string_fields = ["level"]
  json_time_key = "ts"
  json_time_format = "unix_us"
  max_message_len = 1000000
  dead_letter_topic = %q
  stats_interval = "1s"
`, deadLetters), "")
	tg := telegraftest.Start(t, telegraftest.Latest, config)

	var want [][]string
	var logged []badCase
	for _, c := range cases {
		if c.row != nil {
			want = append(want, c.row)
		} else {
			logged = append(logged, c)
		}
	}
	waitForCount(t, p.target, p.db, "kafka_consumer", len(want), tg)
	var got [][]string
	for _, r := range p.target.Rows(t, p.db, "kafka_consumer") {
		got = append(got, []string{r["seq"], r["station"], r["temperature"], r["level"]})
	}
	for _, r := range got {
		for i := range r {
			if f, err := strconv.ParseFloat(r[i], 64); err == nil && i != 1 {
				r[i] = strconv.FormatFloat(f, 'g', -1, 64)
			}
		}
	}
	require.Equal(t, want, got, "every good message, with its exact values")

	// The stats count what the input refused; then every log line is out.
	waitFor(t, tg, "the stats metric counts the bad messages", func() bool {
		stats := p.target.Rows(t, p.db, "kafka_consumer_stats")
		if len(stats) == 0 {
			return false
		}
		last := stats[len(stats)-1]
		return last["parse_errors"] == "7" && last["no_metrics"] == "1" && last["dead_lettered"] == "7" &&
			last["marked_offset"] == strconv.Itoa(len(cases))
	})
	logs := tg.Logs()
	for _, c := range logged {
		require.Equal(t, 1, strings.Count(logs, c.log), "%s: logged once as %q", c.name, c.log)
	}
	rejected := regexp.MustCompile(`CnosDB rejected input line \d+, dropped after isolating it \(every other line is written\): HTTP 422, CnosDB error (\d+): .*: kafka_consumer,station=north (seq=\d+,level="high"|level="high",seq=\d+) \d+`)
	require.Len(t, rejected.FindAllString(logs, -1), 1, "the type flip: status, code and line")

	// Every message refused by the input is in the dead-letter topic, as it came.
	var dead []string
	for _, m := range p.broker.ReadAll(t, deadLetters) {
		dead = append(dead, string(m.Value))
	}
	var wantDead []string
	for _, c := range logged {
		if strings.HasPrefix(c.log, "topic ") && c.name != "empty" {
			wantDead = append(wantDead, c.value)
		}
	}
	require.Equal(t, len(wantDead), len(dead))
	for i := range dead {
		require.True(t, dead[i] == wantDead[i], "dead letter %d", i)
	}

	// The output logs the one line CnosDB refused, when it refuses it. (Its totals at
	// exit would say so too, but Telegraf may close the output's stderr before it has
	// read the last lines of a process that exited.)
	tg.Stop(t)
	require.Equal(t, 1, strings.Count(tg.Logs(), "CnosDB rejected input line "), "one line refused, logged once")
}

// waitFor polls cond until it holds; Telegraf exiting first fails the test.
func waitFor(t *testing.T, tg *telegraftest.Process, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for !cond() {
		if tg.Exited() {
			t.Fatalf("Telegraf exited before %s", what)
		}
		if time.Now().After(deadline) {
			t.Fatalf("not after 3 minutes: %s", what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestBadInputFloodIsRateLimited: 10,000 unparsable messages give a handful of log
// lines, each of them counted in the stats, and the good message after them is stored.
func TestBadInputFloodIsRateLimited(t *testing.T) {
	p := newPipeline(t, 1)
	const n = 10000
	values := make([][]byte, 0, n+1)
	for i := 0; i < n; i++ {
		values = append(values, []byte(fmt.Sprintf(`{"seq":%d,`, i)))
	}
	values = append(values, []byte(`{"seq":1,"temperature":20.5}`))
	p.broker.Produce(t, p.topic, values...)

	began := time.Now()
	tg := telegraftest.Start(t, telegraftest.Latest, p.telegrafConfigWith(t, telegraftest.Latest, "  stats_interval = \"1s\"\n", ""))
	waitForCount(t, p.target, p.db, "kafka_consumer", 1, tg)
	waitFor(t, tg, "the stats count every bad message", func() bool {
		stats := p.target.Rows(t, p.db, "kafka_consumer_stats")
		return len(stats) > 0 && stats[len(stats)-1]["parse_errors"] == strconv.Itoa(n)
	})
	elapsed := time.Since(began)
	logs := tg.Logs()
	lines := strings.Count(logs, fmt.Sprintf("topic %q partition 0 offset ", p.topic))
	// A burst of 10, then one a second at most: bounded by the run's length, not
	// by the number of bad messages.
	limit := 10 + int(elapsed/time.Second) + 1
	require.GreaterOrEqual(t, lines, 10)
	require.LessOrEqual(t, lines, limit, "log lines for %d bad messages in %v", n, elapsed)
	require.Regexp(t, `\d+ more messages failed to parse or gave no metrics and were not logged`, logs)
}
