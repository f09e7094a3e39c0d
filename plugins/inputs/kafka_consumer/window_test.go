package kafka_consumer

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/testutil/kafkatest"
)

// Once every slot is taken, the window opens again only when a quarter is free, so
// that messages are read in large steps, not one per slot freed.
func TestWindowReopensInLargeSteps(t *testing.T) {
	w := newWindow(8, 1<<20)
	for range 8 {
		require.True(t, w.tryTake(0))
	}
	require.False(t, w.tryTake(0), "every slot is taken")
	w.give(1)
	require.False(t, w.tryTake(0), "one free slot does not open a closed window")
	require.True(t, w.isClosed())
	w.give(1)
	require.True(t, w.tryTake(0), "a quarter free opens it")
	require.True(t, w.tryTake(0))
	require.False(t, w.tryTake(0))
	require.Equal(t, 8, w.taken())
}

func TestWindowTakeWaitsForTheWindowToOpen(t *testing.T) {
	w := newWindow(4, 1<<20)
	for range 4 {
		require.True(t, w.tryTake(0))
	}
	got := make(chan bool)
	go func() { got <- w.take(context.Background()) }()
	select {
	case <-got:
		t.Fatal("take returned while the window was closed")
	case <-time.After(20 * time.Millisecond):
	}
	w.give(1)
	require.True(t, <-got)

	ctx, cancel := context.WithCancel(context.Background())
	go func() { got <- w.take(ctx) }()
	cancel()
	require.False(t, <-got, "take gives up when its context ends")
}

// The bytes the messages gave close the window too, and it opens again only once a
// quarter of them is free, as with slots.
func TestWindowClosesOnBytes(t *testing.T) {
	w := newWindow(100, 1000)
	for range 4 {
		require.True(t, w.tryTake(0))
		w.hold(250)
	}
	require.True(t, w.isClosed(), "1000 bytes held")
	require.False(t, w.tryTake(0))
	w.giveBytes(100)
	w.give(1)
	require.False(t, w.tryTake(0), "a tenth of the bytes free does not open it, though most slots are free")
	w.giveBytes(150)
	w.give(1)
	require.True(t, w.tryTake(0), "a quarter of the bytes free opens it")
	require.Equal(t, 3, w.taken())
	require.Equal(t, int64(750), w.held())
}

// The claim's loop hands over the bytes of the message it parsed last with its next
// request for a slot: they count before the slot is given, and can close the window.
func TestWindowTakesTheLastMessagesBytesWithTheNextSlot(t *testing.T) {
	w := newWindow(100, 1000)
	require.True(t, w.tryTake(0))
	require.True(t, w.tryTake(600))
	require.Equal(t, int64(600), w.held())
	require.False(t, w.tryTake(600), "1200 bytes held: no slot for the next message")
	require.Equal(t, int64(1200), w.held(), "the bytes count all the same")
	require.Equal(t, 2, w.taken())
}

// A message larger than max_undelivered_bytes takes its slot while the window is
// open, and alone closes it until it is done: nothing is ever stuck behind the limit.
func TestWindowLetsAMessageLargerThanTheLimitThrough(t *testing.T) {
	w := newWindow(100, 1000)
	require.True(t, w.tryTake(0))
	w.hold(5000)
	require.True(t, w.isClosed())
	require.False(t, w.tryTake(0))

	got := make(chan bool)
	go func() { got <- w.take(context.Background()) }()
	select {
	case <-got:
		t.Fatal("take returned while the large message held the window")
	case <-time.After(20 * time.Millisecond):
	}
	w.giveBytes(5000)
	w.give(1)
	require.True(t, <-got, "done, it lets the next message through")
	w.hold(5000)
	require.True(t, w.isClosed(), "the next large one too, alone")

	// With smaller messages in flight, a large one closes the window behind itself.
	w = newWindow(100, 1000)
	require.True(t, w.tryTake(0))
	w.hold(100)
	require.True(t, w.tryTake(0))
	w.hold(3000)
	require.False(t, w.tryTake(0))
	w.giveBytes(100)
	w.give(1)
	require.False(t, w.tryTake(0), "the large one still holds more than the limit")
	w.giveBytes(3000)
	w.give(1)
	require.True(t, w.tryTake(0))
}

// Slots freed with every message done free the bytes too, even those not given back
// one by one, so that a miscount cannot close the window for good.
func TestWindowWithNoMessageHoldsNoBytes(t *testing.T) {
	w := newWindow(10, 1000)
	require.True(t, w.tryTake(0))
	w.hold(2000)
	require.False(t, w.tryTake(0))
	w.give(1)
	require.Zero(t, w.held())
	require.True(t, w.tryTake(0))
}

// Against a broker: reading stops once the lines of the unconfirmed messages reach
// max_undelivered_bytes, long before max_undelivered_messages, and goes on as the
// output confirms them, until every message is confirmed and committed.
func TestReadingStopsAtMaxUndeliveredBytes(t *testing.T) {
	const (
		messages   = 200
		limit      = 4 << 10
		partitions = 2
	)
	b := kafkatest.Shared(t)
	topic := kafkatest.UniqueName(t, "bytes")
	group := kafkatest.UniqueName(t, "g")
	b.CreateTopic(t, topic, partitions)
	values := make([][]byte, messages)
	for i := range values {
		values[i] = fmt.Appendf(nil, `padded,id=%d s="%s" %d`, i, strings.Repeat("x", 200), 1700000000000000000+i)
	}
	line := len(values[0]) + 1
	b.Produce(t, topic, values...)

	r := start(t, tableFor(b, topic, group, `ack = true`, `output_buffer_size = "512B"`,
		fmt.Sprintf("max_undelivered_bytes = %d", limit)))
	o := &fakeOutput{t: t, out: r.out}
	confirmed := 0
	for confirmed < messages {
		// Everything read is written: the input waits for the output.
		waitFor(t, "reading to stop", func() bool {
			o.poll()
			return (r.k.window.isClosed() || confirmed+o.linesSeen() == messages) &&
				len(o.lines) == 0 && o.linesSeen() == r.k.window.taken()
		})
		held := o.linesSeen()
		if confirmed+held < messages {
			// Closed by bytes, not slots: it closed at the limit and stays closed while
			// more than three quarters are held. The bytes of a confirmed batch come
			// back a partition at a time, so it may have closed again before the last
			// came back, and hold less than the limit now.
			require.Greater(t, r.k.window.held(), int64(limit-limit/4), "closed by bytes, not slots")
			require.LessOrEqual(t, held, limit/line+partitions,
				"%d lines of %d bytes unconfirmed: past max_undelivered_bytes by more than a message a partition", held, line)
		}
		t.Logf("%d lines, %d bytes unconfirmed", held, r.k.window.held())
		confirmed += len(o.confirm(len(o.batches)))
		// Every slot and byte of what was confirmed is free before reading is looked
		// at again: a window half given back is closed with fewer bytes held.
		waitFor(t, "the confirmed messages done", func() bool { return r.k.acker.acked.Load() == int64(confirmed) })
	}
	require.Zero(t, r.k.window.held(), "the bytes of every message done are given back")
	require.Zero(t, r.k.window.taken())
	r.k.Stop()
	require.Equal(t, nonEmpty(b.HighWatermarks(t, topic)), b.CommittedOffsets(t, group, topic))
}

// Pauses nest: the output gone and a rewrite waiting for its delay each pause and
// resume on their own, and reading goes on only when neither waits.
func TestWindowPausesNest(t *testing.T) {
	w := newWindow(10, 1<<20)
	w.pause()
	w.pause()
	require.False(t, w.tryTake(0))
	w.resume()
	require.False(t, w.tryTake(0), "one pause is still on")
	w.resume()
	require.True(t, w.tryTake(0))
	w.resume() // one too many changes nothing
	w.pause()
	require.False(t, w.tryTake(0))
}
