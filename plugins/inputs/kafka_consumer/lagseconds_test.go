package kafka_consumer

import (
	"fmt"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"

	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/internal/offsets"
	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/testutil/kafkatest"
)

// fakeClaim is a claim whose high watermark the test sets.
type fakeClaim struct {
	sarama.ConsumerGroupClaim
	hwm int64
}

func (c *fakeClaim) HighWaterMarkOffset() int64 { return c.hwm }
func (c *fakeClaim) InitialOffset() int64       { return 0 }

func TestLagSeconds(t *testing.T) {
	now := time.Unix(1700000000, 0)
	ago := func(s float64) time.Time { return now.Add(-time.Duration(s * float64(time.Second))) }
	claim := &fakeClaim{}
	p := &partition{claim: claim, offsets: offsets.New()}
	secs := func() (float64, bool) { t.Helper(); return p.lagSeconds(now, claim.hwm) }
	done := func(offset int64) {
		t.Helper()
		_, _, err := p.offsets.Done(offset)
		require.NoError(t, err)
	}

	_, ok := secs()
	require.False(t, ok, "no message seen: no field")

	claim.hwm = 2
	require.NoError(t, p.offsets.Add(0, ago(10.25)))
	require.NoError(t, p.offsets.Add(1, ago(5)))
	s, ok := secs()
	require.True(t, ok)
	require.Equal(t, 10.25, s, "the age of the first message not confirmed")

	done(0)
	s, _ = secs()
	require.Equal(t, 5.0, s)

	done(1)
	s, ok = secs()
	require.True(t, ok)
	require.Zero(t, s, "caught up")

	// Messages produced but not fetched: nothing is held, and the last confirmed
	// message's age bounds theirs.
	claim.hwm = 5
	s, _ = secs()
	require.Equal(t, 5.0, s)

	// Held messages without a timestamp are passed over; the bound stays.
	require.NoError(t, p.offsets.Add(2, time.Time{}))
	s, _ = secs()
	require.Equal(t, 5.0, s)
	require.NoError(t, p.offsets.Add(3, ago(1)))
	s, _ = secs()
	require.Equal(t, 1.0, s)

	// A producer whose clock is ahead: not a negative lag.
	require.NoError(t, p.offsets.Add(4, now.Add(time.Minute)))
	done(2)
	done(3)
	s, ok = secs()
	require.True(t, ok)
	require.Zero(t, s)

	_, ok = (&partition{offsets: p.offsets}).lagSeconds(now, claim.hwm)
	require.False(t, ok, "a partition this process does not hold: no field")
}

// A partition whose messages have no timestamp (Kafka's -1) has no lag in seconds
// while it is behind, and 0 once it caught up: never the decades since the epoch.
func TestLagSecondsWithoutTimestamps(t *testing.T) {
	now := time.Unix(1700000000, 0)
	claim := &fakeClaim{hwm: 2}
	p := &partition{claim: claim, offsets: offsets.New()}
	require.NoError(t, p.offsets.Add(0, time.Time{}))
	require.NoError(t, p.offsets.Add(1, time.Time{}))
	_, ok := p.lagSeconds(now, claim.hwm)
	require.False(t, ok)
	for off := range int64(2) {
		_, _, err := p.offsets.Done(off)
		require.NoError(t, err)
	}
	s, ok := p.lagSeconds(now, claim.hwm)
	require.True(t, ok)
	require.Zero(t, s)
	claim.hwm = 3
	_, ok = p.lagSeconds(now, claim.hwm)
	require.False(t, ok, "behind, and no timestamp to tell by how long")
}

// On the broker, with the acknowledgement on and an output that holds its
// confirmations back, lag_seconds is the age of the oldest message not confirmed: it
// grows while nothing is, falls to the next batch's age when the first is confirmed,
// and to 0 when every one is. A partition no message of which was seen has none.
func TestStatsLagSecondsUntilConfirmed(t *testing.T) {
	b := kafkatest.Shared(t)
	topic := kafkatest.UniqueName(t, "lagsec")
	group := kafkatest.UniqueName(t, "g")
	b.CreateTopic(t, topic, 2)
	r := start(t, tableFor(b, topic, group, `data_format = "json"`, `ack = true`, `stats_interval = "100ms"`))
	o := &fakeOutput{t: t, out: r.out}

	// Two rounds on partition 0, produced two hours and one hour ago.
	const perRound = 20
	hoursAgo := func(h int) time.Time { return time.Now().Add(-time.Duration(h) * time.Hour).Truncate(time.Millisecond) }
	p0 := int32(0)
	produce := func(round int, ts time.Time) {
		msgs := make([]kafkatest.Message, perRound)
		for i := range msgs {
			msgs[i] = kafkatest.Message{Value: []byte(sensorLine(round*perRound + i)), Timestamp: ts, Partition: &p0}
		}
		b.ProduceMessages(t, topic, msgs...)
		waitFor(t, fmt.Sprintf("round %d written", round), func() bool {
			o.poll()
			return o.linesSeen() == (round+1)*perRound && len(o.lines) == 0
		})
	}
	produce(0, hoursAgo(2))
	firstRound := len(o.batches)
	produce(1, hoursAgo(1))

	// latest returns the last stats of each partition.
	latest := func() map[string]map[string]interface{} {
		out := make(map[string]map[string]interface{})
		for _, m := range r.out.stats(t) {
			p, _ := m.GetTag("partition")
			out[p] = m.Fields()
		}
		return out
	}
	lagSeconds := func() (float64, bool) {
		v, ok := latest()["0"]["lag_seconds"].(float64)
		return v, ok
	}
	var first float64
	waitFor(t, "lag_seconds of the first round", func() bool {
		var ok bool
		first, ok = lagSeconds()
		return ok && first >= 2*3600
	})
	require.Less(t, first, 2*3600+waitTimeout.Seconds())
	waitFor(t, "lag_seconds growing while nothing is confirmed", func() bool {
		s, _ := lagSeconds()
		return s >= first+0.5
	})
	stats := latest()
	require.Contains(t, stats, "1", "partition 1 is held")
	require.NotContains(t, stats["1"], "lag_seconds", "no message of partition 1 was seen")
	require.Equal(t, int64(0), stats["1"]["lag"])

	o.confirm(firstRound)
	waitFor(t, "lag_seconds of the second round once the first is confirmed", func() bool {
		s, _ := lagSeconds()
		return s >= 3600 && s < 2*3600
	})
	o.confirm(len(o.batches))
	waitFor(t, "lag_seconds 0 once every message is confirmed", func() bool {
		s, ok := lagSeconds()
		return ok && s == 0 && latest()["0"]["lag"] == int64(0)
	})
}
