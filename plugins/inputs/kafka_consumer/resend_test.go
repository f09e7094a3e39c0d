package kafka_consumer

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/internal/ackproto"
	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/testutil/kafkatest"
)

// fakeOutput reads the plugin's stdout as telegraf-cnosdb would and answers its
// markers on the acknowledgement socket when told to.
type fakeOutput struct {
	t    *testing.T
	out  *syncBuffer
	read int // bytes of out parsed so far
	conn net.Conn
	// batches are the lines of each marker seen, in order, with the marker's id.
	batches []outputBatch
	lines   []string // lines seen and not yet followed by a marker
	counted int64    // lines seen since the last marker, stats included
}

type outputBatch struct {
	m     ackproto.Marker
	lines []string
	// counted is the lines seen since the marker before, and said what the
	// marker says it follows.
	counted, said int64
}

// poll parses what the plugin wrote since the last call.
func (o *fakeOutput) poll() {
	text := o.out.String()[o.read:]
	end := strings.LastIndexByte(text, '\n')
	if end < 0 {
		return
	}
	o.read += end + 1
	for _, line := range strings.Split(text[:end], "\n") {
		if !ackproto.IsMarker([]byte(line)) {
			o.counted++
			if !strings.HasPrefix(line, statsMeasurement) {
				o.lines = append(o.lines, line)
			}
			continue
		}
		m, err := ackproto.ParseMarker([]byte(line))
		require.NoError(o.t, err)
		if o.conn == nil {
			o.conn, err = net.Dial("unix", m.Socket)
			require.NoError(o.t, err)
			greeting, err := bufio.NewReader(o.conn).ReadString('\n')
			require.NoError(o.t, err)
			_, key, err := ackproto.ParseHello(greeting)
			require.NoError(o.t, err)
			require.True(o.t, key.Verify(m), "the marker is signed with the key of the greeting")
		}
		// As telegraf-cnosdb does on reading a marker.
		_, err = fmt.Fprint(o.conn, ackproto.Answer{Verb: ackproto.Received, ID: m.ID, MAC: m.MAC})
		require.NoError(o.t, err)
		o.batches = append(o.batches, outputBatch{m: m, lines: o.lines, counted: o.counted, said: m.Lines})
		o.lines = nil
		o.counted = 0
	}
}

// confirm says "done" for the first n batches not yet confirmed and returns their lines.
func (o *fakeOutput) confirm(n int) []string {
	var lines []string
	for _, b := range o.batches[:n] {
		_, err := fmt.Fprint(o.conn, ackproto.Answer{Verb: ackproto.Received, ID: b.m.ID, MAC: b.m.MAC},
			ackproto.Answer{Verb: ackproto.Done, ID: b.m.ID, MAC: b.m.MAC})
		require.NoError(o.t, err)
		lines = append(lines, b.lines...)
	}
	o.batches = o.batches[n:]
	return lines
}

// held returns the lines of the batches not confirmed.
func (o *fakeOutput) held() []string {
	var lines []string
	for _, b := range o.batches {
		lines = append(lines, b.lines...)
	}
	return lines
}

func (o *fakeOutput) linesSeen() int {
	n := len(o.lines)
	for _, b := range o.batches {
		n += len(b.lines)
	}
	return n
}

// rounds of roundSize messages each make n, produced a round at a time once the
// last is written, so that each round makes batches of its own.
const (
	rounds    = 6
	roundSize = 100
	n         = rounds * roundSize
)

func produceInRounds(t *testing.T, b *kafkatest.Broker, topic string, o *fakeOutput) {
	t.Helper()
	for round := range rounds {
		values := make([][]byte, roundSize)
		for i := range values {
			values[i] = fmt.Appendf(nil, `{"id":%d}`, round*roundSize+i)
		}
		b.Produce(t, topic, values...)
		waitFor(t, "the round written", func() bool {
			o.poll()
			return o.linesSeen() == (round+1)*roundSize && len(o.lines) == 0
		})
	}
}

// ackTable is a plugin table with the acknowledgement on and small batches, so that
// a few hundred messages make many markers.
func ackTable(b *kafkatest.Broker, topic, group string) string {
	return tableFor(b, topic, group, `data_format = "json"`, `ack = true`, `output_buffer_size = "512B"`,
		`json_fast_path = true`)
}

// When the output goes (its connection closes) with batches unconfirmed, exactly the
// lines of those batches are written again, under new markers, and the session goes
// on: nothing is read from Kafka again and the group does not rebalance.
func TestLossWritesAgainOnlyWhatWasNotConfirmed(t *testing.T) {
	b := kafkatest.Shared(t)
	topic := kafkatest.UniqueName(t, "resend")
	group := kafkatest.UniqueName(t, "g")
	b.CreateTopic(t, topic, 2)
	r := start(t, ackTable(b, topic, group))
	o := &fakeOutput{t: t, out: r.out}
	produceInRounds(t, b, topic, o)
	require.GreaterOrEqual(t, len(o.batches), rounds, "a batch a round at least")
	confirmed := o.confirm(len(o.batches) / 2)
	waitFor(t, "the confirmed offsets marked", func() bool { return r.k.acker.acked.Load() == int64(len(confirmed)) })
	unconfirmed := o.held()
	rebalances := r.k.stats.rebalances.Load()

	o.batches = nil
	require.NoError(t, o.conn.Close())
	o.conn = nil
	waitFor(t, "the unconfirmed lines written again", func() bool { o.poll(); return o.linesSeen() >= len(unconfirmed) })
	require.Equal(t, unconfirmed, o.held(), "the lines of the unconfirmed batches, in order, and nothing else")
	require.Equal(t, int64(1), r.k.acker.rewinds.Load())
	require.Equal(t, int64(len(unconfirmed)), r.k.acker.resent.Load())

	o.confirm(len(o.batches))
	waitFor(t, "every message confirmed", func() bool { return r.k.acker.acked.Load() == n })
	require.Equal(t, rebalances, r.k.stats.rebalances.Load(), "the session went on")
	o.poll()
	require.Empty(t, o.batches, "nothing more was written")
	require.Empty(t, o.lines)
	r.k.Stop()
	require.Equal(t, nonEmpty(b.HighWatermarks(t, topic)), b.CommittedOffsets(t, group, topic))
}

// A session that ends (a rebalance, the broker gone) while batches wait for the
// output does not have them written twice: the next session skips what this process
// read, and marks what the earlier one's batches finish.
func TestNewSessionSkipsWhatWasReadBefore(t *testing.T) {
	b := kafkatest.Shared(t)
	topic := kafkatest.UniqueName(t, "sessions")
	group := kafkatest.UniqueName(t, "g")
	b.CreateTopic(t, topic, 2)
	r := start(t, ackTable(b, topic, group))
	o := &fakeOutput{t: t, out: r.out}
	produceInRounds(t, b, topic, o)
	o.confirm(len(o.batches) / 3)
	rebalances := r.k.stats.rebalances.Load()

	// End the session, as a change of the topic list does.
	r.k.topics.changed <- struct{}{}
	waitFor(t, "a new session", func() bool { return r.k.stats.rebalances.Load() > rebalances })
	skipped := func() int64 {
		var s int64
		for id := range int32(2) {
			s += r.k.stats.counters(topic, id).skipped.Load()
		}
		return s
	}
	waitFor(t, "the messages read before skipped", func() bool { return skipped() > 0 })

	o.confirm(len(o.batches))
	waitFor(t, "every message confirmed", func() bool { return r.k.acker.acked.Load() == n })
	waitFor(t, "the committed offsets at the end", func() bool {
		return fmt.Sprint(nonEmpty(b.HighWatermarks(t, topic))) == fmt.Sprint(b.CommittedOffsets(t, group, topic))
	})
	o.poll()
	require.Empty(t, o.batches, "no message was written twice")
	require.Empty(t, o.lines)
	require.Positive(t, skipped())
	require.Zero(t, r.k.acker.rewinds.Load())
}

// Each marker counts the lines written since the one before, so that the output can
// tell lines Telegraf dropped; told "lost", the input writes again what it holds.
func TestLostLinesAreWrittenAgain(t *testing.T) {
	b := kafkatest.Shared(t)
	topic := kafkatest.UniqueName(t, "lost")
	group := kafkatest.UniqueName(t, "g")
	b.CreateTopic(t, topic, 2)
	r := start(t, ackTable(b, topic, group))
	o := &fakeOutput{t: t, out: r.out}
	produceInRounds(t, b, topic, o)
	require.Zero(t, o.batches[0].said, "the first marker has nothing before it")
	for _, batch := range o.batches[1:] {
		require.Positive(t, batch.said, "marker %s", batch.m.ID)
		require.Equal(t, batch.counted, batch.said, "marker %s", batch.m.ID)
	}
	confirmed := o.confirm(len(o.batches) / 2)
	waitFor(t, "the confirmed offsets marked", func() bool { return r.k.acker.acked.Load() == int64(len(confirmed)) })
	unconfirmed := o.held()

	// As telegraf-cnosdb says when fewer lines came than the marker counts.
	_, err := fmt.Fprint(o.conn, ackproto.Answer{Verb: ackproto.Lost, ID: o.batches[0].m.ID, MAC: o.batches[0].m.MAC})
	require.NoError(t, err)
	o.batches = nil
	waitFor(t, "the unconfirmed lines written again", func() bool { o.poll(); return o.linesSeen() >= len(unconfirmed) })
	require.Equal(t, unconfirmed, o.held(), "the lines of the unconfirmed batches, in order")
	require.Equal(t, int64(1), r.k.acker.rewinds.Load())
	for _, batch := range o.batches {
		require.Equal(t, batch.counted, batch.said, "marker %s, written again", batch.m.ID)
	}
	o.confirm(len(o.batches))
	waitFor(t, "every message confirmed", func() bool { return r.k.acker.acked.Load() == n })
	r.k.Stop()
	require.Equal(t, nonEmpty(b.HighWatermarks(t, topic)), b.CommittedOffsets(t, group, topic))
}
