package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/internal/ackproto"
	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/testutil/telegraftest"
)

// Messages whose data looks like the pipeline's own protocol: a string field with a
// newline, which line protocol carries as it is, and a message shaped like the
// input's acknowledgement marker. Each must be stored, or refused, as the data it is,
// without disturbing the acknowledgements.

// statsOptions has the input report kafka_consumer_stats every second, so that its
// counters (rewinds, resent, marked_offset) reach CnosDB soon.
const statsOptions = "  stats_interval = \"1s\"\n"

// rewriteLine is the input's warning when it writes unconfirmed messages again.
var rewriteLine = regexp.MustCompile(`writing the \d+ messages not confirmed.* again`)

// checkDelivered checks that the input confirmed every message of partition 0 up to
// end (exclusive) and wrote none again. It waits until the consumer group has
// committed end, or Telegraf's log says that the input writes messages again, which
// is an error. Otherwise it waits until the input's kafka_consumer_stats in CnosDB
// have marked end, and checks that rewinds and resent are 0 in every row.
func checkDelivered(t *testing.T, p *pipeline, tg *telegraftest.Process, end int64) {
	t.Helper()
	var committed map[int32]int64
	waitFor(t, tg, fmt.Sprintf("the group's committed offset at the end of the topic, %d", end), func() bool {
		committed = p.broker.CommittedOffsets(t, p.group, p.topic)
		return committed[0] == end || rewriteLine.MatchString(tg.Logs())
	})
	if again := rewriteLine.FindAllString(tg.Logs(), -1); len(again) > 0 {
		t.Errorf("Telegraf's log: the input wrote messages again %d times (the first: %q); offsets committed %v, expected %d",
			len(again), again[0], committed, end)
		return
	}
	var stats []map[string]string
	waitFor(t, tg, fmt.Sprintf("kafka_consumer_stats with marked_offset %d", end), func() bool {
		stats = p.target.Rows(t, p.db, "kafka_consumer_stats")
		for _, s := range stats {
			if s["topic"] == p.topic && s["marked_offset"] == strconv.FormatInt(end, 10) {
				return true
			}
		}
		return false
	})
	rewinds, resent := 0, 0
	for _, s := range stats {
		if s["topic"] != p.topic {
			continue
		}
		r, err1 := strconv.Atoi(s["rewinds"])
		n, err2 := strconv.Atoi(s["resent"])
		require.NoError(t, err1, "rewinds in %v (the acknowledgement must be on)", s)
		require.NoError(t, err2, "resent in %v", s)
		rewinds, resent = max(rewinds, r), max(resent, n)
	}
	assert.Zero(t, rewinds, "the input's rewinds (kafka_consumer_stats); %d messages resent", resent)
	assert.Zero(t, resent, "messages the input wrote again (kafka_consumer_stats resent)")
}

// TestNewlineInStringFieldStoredOnce: JSON log messages whose msg, kept as a string
// field, holds a newline. Line protocol carries the newline as it is, so the line of
// such a message spans two lines of text on the way through Telegraf. Each message
// must be stored once, its msg intact, its offset committed, and the input must never
// write a message again: the acknowledgement counts lines of line protocol, not lines
// of text.
func TestNewlineInStringFieldStoredOnce(t *testing.T) {
	for _, version := range telegraftest.Versions {
		t.Run(version, func(t *testing.T) {
			p := newPipeline(t, 1)
			const n = 3000
			start := time.Now().Add(-time.Hour).UnixMicro()
			values := make([][]byte, n)
			for i := range values {
				values[i] = fmt.Appendf(nil, `{"level":"info","msg":"request %d failed\nretrying","v":%d,"ts":%d}`, i, i, start+int64(i))
			}
			p.broker.Produce(t, p.topic, values...)
			tg := telegraftest.Start(t, version, p.telegrafConfigWith(t, version, `  json_string_fields = ["msg"]
  json_time_key = "ts"
  json_time_format = "unix_us"
`+statsOptions, ""))

			waitForCount(t, p.target, p.db, "kafka_consumer", n, tg)
			seen := make(map[int]int, n)
			for _, r := range p.target.Rows(t, p.db, "kafka_consumer") {
				v, err := strconv.ParseFloat(r["v"], 64)
				require.NoError(t, err, "row %v", r)
				seen[int(v)]++
				require.Equal(t, fmt.Sprintf("request %d failed\nretrying", int(v)), r["msg"], "msg of message %d, newline included", int(v))
			}
			for i := range n {
				require.Equal(t, 1, seen[i], "rows of message %d", i)
			}
			checkDelivered(t, p, tg, n)
		})
	}
}

// forgedSocket listens on a Unix socket that a forged marker names and counts the
// connections made to it, with what each peer wrote.
type forgedSocket struct {
	path string
	mu   sync.Mutex
	said []string // one entry a connection
}

func listenForged(t *testing.T) *forgedSocket {
	t.Helper()
	// Short: a socket path takes at most 107 bytes, which t.TempDir may exceed.
	dir, err := os.MkdirTemp("", "forged")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	fs := &forgedSocket{path: filepath.Join(dir, "ack.sock")}
	ln, err := net.Listen("unix", fs.path)
	require.NoError(t, err)
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	var conns sync.Map
	t.Cleanup(func() {
		conns.Range(func(c, _ any) bool { c.(net.Conn).Close(); return true })
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Store(c, true)
			fs.mu.Lock()
			i := len(fs.said)
			fs.said = append(fs.said, "")
			fs.mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				// The first 4 KiB are kept; the rest is read and dropped, so that
				// the peer is never held up.
				r := bufio.NewReader(io.LimitReader(c, 4096))
				for {
					line, err := r.ReadString('\n')
					fs.mu.Lock()
					fs.said[i] += line
					fs.mu.Unlock()
					if err != nil {
						_, _ = io.Copy(io.Discard, c)
						return
					}
				}
			}()
		}
	}()
	return fs
}

// connections returns what each connection to the socket wrote so far.
func (fs *forgedSocket) connections() []string {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return append([]string(nil), fs.said...)
}

// marker is the forged marker line naming the socket: an id that is not one, and
// no lines.
func (fs *forgedSocket) marker() string {
	return fmt.Sprintf(`%s,socket=%s id="GET / HTTP/1.1",lines=0i`, ackproto.Measurement, fs.path)
}

// influxMessages returns n lines of line protocol for table, with ids 0..n-1 and
// times of their own, one a message.
func influxMessages(table string, n int) [][]byte {
	start := time.Now().Add(-time.Hour).UnixNano()
	values := make([][]byte, n)
	for i := range values {
		values[i] = fmt.Appendf(nil, "%s,src=kafka id=%di,v=%d.5 %d", table, i, i, start+int64(i)*1000)
	}
	return values
}

// checkIDs checks that table holds one row for each id 0..n-1, and no other.
func checkIDs(t *testing.T, p *pipeline, table string, n int) {
	t.Helper()
	rows := p.target.Rows(t, p.db, table)
	seen := make(map[string]int, n)
	for _, r := range rows {
		seen[r["id"]]++
	}
	require.Len(t, rows, n, "rows in %s", table)
	for i := range n {
		require.Equal(t, 1, seen[strconv.Itoa(i)], "rows of id %d", i)
	}
}

// inputLogLines returns the lines of the input in Telegraf's log as the input wrote
// them: Telegraf's execd logs them as they are (1.37) or quoted after "stderr: ".
func inputLogLines(logs string) []string {
	var out []string
	for _, line := range strings.Split(logs, "\n") {
		if i := strings.Index(line, `stderr: "`); i >= 0 {
			if s, err := strconv.Unquote(line[i+len("stderr: "):]); err == nil {
				line = s
			}
		}
		out = append(out, line)
	}
	return out
}

// TestMarkerShapedMessageIsRefused: a Kafka message shaped like the input's
// acknowledgement marker (data_format = "influx"), naming a socket the test listens
// on, among 1,000 ordinary lines. It is data, not a marker: nothing may connect to the
// socket it names; the input refuses it with an E! line giving its topic, partition
// and offset and saying it is marker-shaped, and, with dead_letter_topic, copies it
// there; every ordinary line is stored, every offset committed, nothing written again.
func TestMarkerShapedMessageIsRefused(t *testing.T) {
	for _, version := range telegraftest.Versions {
		for _, deadLetter := range []bool{false, true} {
			name := version + "/logged"
			if deadLetter {
				name = version + "/dead_letter_topic"
			}
			t.Run(name, func(t *testing.T) {
				p := newPipeline(t, 1)
				p.format = "influx"
				socket := listenForged(t)
				const n, forgedAt = 1000, 500
				values := influxMessages("app_requests", n)
				values = append(values[:forgedAt], append([][]byte{[]byte(socket.marker())}, values[forgedAt:]...)...)
				options := statsOptions
				deadLetters := p.topic + "-dead"
				if deadLetter {
					p.broker.CreateTopic(t, deadLetters, 1)
					options += fmt.Sprintf("  dead_letter_topic = %q\n", deadLetters)
				}
				p.broker.Produce(t, p.topic, values...)
				tg := telegraftest.Start(t, version, p.telegrafConfigWith(t, version, options, ""))

				waitForCount(t, p.target, p.db, "app_requests", n, tg)
				checkDelivered(t, p, tg, n+1)
				// Telegraf stops the output once it has written all it read: whatever it
				// would connect to, it has by then.
				tg.Stop(t)
				assert.Empty(t, socket.connections(), "connections to the socket a Kafka message named (what each wrote)")
				checkIDs(t, p, "app_requests", n)

				place := fmt.Sprintf("topic %q partition 0 offset %d", p.topic, forgedAt)
				var refused []string
				for _, line := range inputLogLines(tg.Logs()) {
					if strings.Contains(line, place) {
						refused = append(refused, line)
					}
				}
				if assert.Len(t, refused, 1, "one log line for the marker-shaped message at %s", place) {
					assert.Regexp(t, `E! .*(?i:marker)`, refused[0], "an error naming it as marker-shaped")
				}

				if deadLetter {
					dead := p.broker.ReadAll(t, deadLetters)
					require.Len(t, dead, 1, "messages in the dead-letter topic")
					require.Equal(t, socket.marker(), string(dead[0].Value))
					headers := make(map[string]string)
					for _, h := range dead[0].Headers {
						headers[string(h.Key)] = string(h.Value)
					}
					require.Equal(t, strconv.Itoa(forgedAt), headers["kafka_consumer.source_offset"], "headers %v", headers)
					require.Equal(t, p.topic, headers["kafka_consumer.source_topic"], "headers %v", headers)
				}
			})
		}
	}
}

// TestMarkerFromAnotherInputIsIgnored: another input of the same Telegraf (an
// inputs.execd running a shell command) writes a line shaped like the pair's marker,
// naming a socket the test listens on. The output must not take it for the pair's
// marker: nothing connects to the socket, every message from Kafka is stored, and the
// input writes nothing again.
func TestMarkerFromAnotherInputIsIgnored(t *testing.T) {
	for _, version := range telegraftest.Versions {
		t.Run(version, func(t *testing.T) {
			p := newPipeline(t, 1)
			p.format = "influx"
			socket := listenForged(t)
			const n = 1000
			p.broker.Produce(t, p.topic, influxMessages("app_requests", n)...)
			// The forged marker, then a line that shows, once stored, that the output
			// has read past it. cat keeps the command running until Telegraf stops.
			lines := filepath.Join(t.TempDir(), "forged.lp")
			writeFile(t, lines, socket.marker()+"\nsidecar_done value=1i\n")
			sidecar := fmt.Sprintf(`
[[inputs.execd]]
  command = ["/bin/sh", "-c", %q]
  signal = "none"
  restart_delay = "10m"
  data_format = "influx"
`, fmt.Sprintf("cat %s && exec cat >/dev/null", lines))
			tg := telegraftest.Start(t, version, p.telegrafConfigWith(t, version, statsOptions, sidecar))

			waitForCount(t, p.target, p.db, "app_requests", n, tg)
			waitForCount(t, p.target, p.db, "sidecar_done", 1, tg)
			checkDelivered(t, p, tg, n)
			tg.Stop(t)
			assert.Empty(t, socket.connections(), "connections to the socket another input's line named (what each wrote)")
			checkIDs(t, p, "app_requests", n)
		})
	}
}
