package kafka_consumer

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"

	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/internal/ackproto"
)

// A string with a newline is one line for the markers, however many newline bytes it
// writes: the output counts entries, and so does the input.
func TestDecodeCountsLinesNotNewlines(t *testing.T) {
	for _, fast := range []bool{false, true} {
		k, err := configured(t, strings.Join([]string{
			"[[inputs.kafka_consumer]]",
			`brokers = ["localhost:9092"]`,
			`topics = ["t"]`,
			`data_format = "json"`,
			`json_string_fields = ["msg"]`,
			`json_fast_path = ` + map[bool]string{false: "false", true: "true"}[fast],
		}, "\n"))
		require.NoError(t, err)
		dec, err := k.newDecoder()
		require.NoError(t, err)
		msg := &sarama.ConsumerMessage{Topic: "t", Value: []byte(`{"msg":"request 7 failed\nretrying","v":7}`), Timestamp: time.Unix(1700000000, 0)}
		out, n, err := dec.decodeLines(nil, msg)
		require.NoError(t, err)
		require.Equal(t, 1, n, "fast path %v: %q", fast, out)
		require.Equal(t, 2, bytes.Count(out, []byte{'\n'}), "the newline is written as it is: %q", out)
	}
}

// A message that gives a metric in the markers' name is refused, whatever the format
// and wherever the name comes from: the output must never see data as a marker.
func TestDecodeRefusesMarkerShapedMessages(t *testing.T) {
	k, err := configured(t, strings.Join([]string{
		"[[inputs.kafka_consumer]]",
		`brokers = ["localhost:9092"]`,
		`topics = ["t"]`,
		`data_format = "influx"`,
		`msg_header_as_metric_name = "name"`,
	}, "\n"))
	require.NoError(t, err)
	dec, err := k.newDecoder()
	require.NoError(t, err)

	forged := `telegraf_kafka_cnosdb_ack,socket=/var/run/docker.sock id="GET / HTTP/1.1",lines=0i 1`
	for name, msg := range map[string]*sarama.ConsumerMessage{
		"the message's own name": {Value: []byte("cpu v=1 1\n" + forged + "\n")},
		"a header's name":        {Value: []byte("cpu v=1 1\n"), Headers: []*sarama.RecordHeader{{Key: []byte("name"), Value: []byte(ackproto.Measurement)}}},
	} {
		out, n, err := dec.decodeLines([]byte("before v=1 1\n"), msg)
		require.ErrorIs(t, err, errMarkerShaped, name)
		require.Zero(t, n, name)
		require.Equal(t, "before v=1 1\n", string(out), "%s: nothing of the message is written", name)
	}

	// The name inside a string, even after a newline, is data.
	out, n, err := dec.decodeLines(nil, &sarama.ConsumerMessage{Value: []byte("log msg=\"a\ntelegraf_kafka_cnosdb_ack,socket=/x id=y\" 1\n")})
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.True(t, bytes.HasPrefix(out, []byte("log ")))
}

// A batch that goes missing every time it is written is written again at most
// maxRewrites times, after growing delays, and then given up: its partitions stop,
// its offsets are never marked, and one error says which and why.
func TestAckerGivesUpOnABatchThatKeepsGoingMissing(t *testing.T) {
	require.Equal(t, []time.Duration{0, 0, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second},
		[]time.Duration{rewriteDelay(0), rewriteDelay(1), rewriteDelay(2), rewriteDelay(3), rewriteDelay(4), rewriteDelay(5)})

	r := newAckRig()
	r.a.delay = func(n int) time.Duration {
		if n <= 1 {
			return 0
		}
		return time.Millisecond
	}
	p := testPartition()
	id := r.hold(t, 0, 1)
	r.a.mu.Lock()
	for _, b := range r.a.pending {
		for i := range b.acks {
			b.acks[i].part = p
		}
	}
	r.a.mu.Unlock()
	for loss := 1; loss <= maxRewrites; loss++ {
		r.handle(ackproto.Lost, id, time.Now())
		waitFor(t, "the batch written again", func() bool {
			r.mu.Lock()
			defer r.mu.Unlock()
			return len(r.written) == 3 && r.paused == 0
		})
		lines, ids := r.rewritten(t)
		require.Equal(t, []string{"m v=0 1", "m v=1 1"}, lines, "loss %d", loss)
		require.Len(t, ids, 1)
		id = ids[0]
	}
	r.mu.Lock()
	require.Zero(t, r.paused, "every pause for a delay ended")
	r.mu.Unlock()
	require.Equal(t, int64(maxRewrites), r.a.rewinds.Load())
	require.Empty(t, r.given)

	r.handle(ackproto.Lost, id, time.Now())
	require.Equal(t, []int64{0, 1}, r.given, "given up after the last rewrite went missing too")
	require.Empty(t, r.written, "not written again")
	require.Empty(t, r.completed, "not marked either")
	batches, msgs := r.a.outstanding()
	require.Zero(t, batches)
	require.Zero(t, msgs)
	require.Equal(t, int64(2), r.a.givenUp.Load())
	var errs []string
	for _, m := range r.log.Messages() {
		if m.Level == 'E' {
			errs = append(errs, m.Text)
		}
	}
	require.Len(t, errs, 1)
	require.Contains(t, errs[0], `topic "t" partition 0 offsets 0 to 1 (2 messages)`)
	require.Contains(t, errs[0], "processors.dedup")
	require.Contains(t, errs[0], "Filter in kafka_consumer.conf instead")
}

// Answers of another process, of an older generation or without the marker's HMAC
// do nothing.
func TestAckerTakesOnlyItsOwnAnswers(t *testing.T) {
	r := newAckRig()
	id := r.hold(t, 3)
	other := id
	other.Instance = ackproto.NewInstance()
	r.a.handle(ackproto.Answer{Verb: ackproto.Done, ID: other, MAC: r.macs[id]}, time.Now())
	r.a.handle(ackproto.Answer{Verb: ackproto.Done, ID: id, MAC: strings.Repeat("a", 32)}, time.Now())
	r.a.handle(ackproto.Answer{Verb: ackproto.Lost, ID: id, MAC: strings.Repeat("a", 32)}, time.Now())
	require.Empty(t, r.completed)
	require.Zero(t, r.a.rewinds.Load())
	r.handle(ackproto.Done, id, time.Now())
	require.Equal(t, []int64{3}, r.completed)
}

// Several answers about one write of a batch count as one loss, and a batch given up
// takes with it every batch held of the partitions it stops: they could not be
// committed, and written again they would go missing the same way.
func TestAckerCountsALossOncePerWriteAndGivesUpThePartition(t *testing.T) {
	r := newAckRig()
	r.a.delay = func(int) time.Duration { return 0 }
	p, other := testPartition(), testPartition()
	other.id = 1
	first, second, third := r.hold(t, 0, 1), r.hold(t, 2), r.hold(t, 3)
	r.a.mu.Lock()
	for seq, b := range r.a.pending {
		for i := range b.acks {
			b.acks[i].part = p
			if seq == third.Seq {
				b.acks[i].part = other
			}
		}
	}
	r.a.mu.Unlock()
	for loss := 1; loss <= maxRewrites+1; loss++ {
		// The output says lost, then a later marker arrives while this one did not:
		// one write, one loss.
		r.handle(ackproto.Lost, first, time.Now())
		r.handle(ackproto.Received, second, time.Now())
		if loss <= maxRewrites {
			require.Equal(t, int64(loss), r.a.rewinds.Load(), "loss %d", loss)
			_, ids := r.rewritten(t)
			require.Len(t, ids, 3)
			first, second, third = ids[0], ids[1], ids[2]
			r.handle(ackproto.Received, third, time.Now())
		}
	}
	require.Equal(t, []int64{0, 1, 2}, r.given, "the batch lost too often, and the other of its partition")
	require.Equal(t, int64(maxRewrites), r.a.rewinds.Load())
	batches, msgs := r.a.outstanding()
	require.Equal(t, 1, batches, "the batch of the other partition is still held")
	require.Equal(t, int64(1), msgs)
	r.handle(ackproto.Done, third, time.Now())
	require.Equal(t, []int64{3}, r.completed)
}
