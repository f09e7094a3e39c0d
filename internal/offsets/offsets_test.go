package offsets

import (
	"math/rand"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// noTime is the timestamp of messages whose time the test does not look at.
var noTime time.Time

func TestInOrder(t *testing.T) {
	p := New()
	require.Equal(t, int64(-1), p.Mark())
	for _, off := range []int64{5, 6, 8} {
		require.NoError(t, p.Add(off, noTime))
	}
	mark, ok, err := p.Done(5)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, int64(6), mark)
	mark, ok, err = p.Done(6)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, int64(7), mark)
	// A gap in the offsets (8 follows 6) does not hold the mark back.
	mark, ok, err = p.Done(8)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, int64(9), mark)
	require.Equal(t, 0, p.InFlight())
}

func TestOutOfOrderHoldsTheMark(t *testing.T) {
	p := New()
	for off := int64(0); off < 4; off++ {
		require.NoError(t, p.Add(off, noTime))
	}
	_, ok, err := p.Done(2)
	require.NoError(t, err)
	require.False(t, ok, "offset 0 is not done: nothing may be committed")
	_, ok, err = p.Done(1)
	require.NoError(t, err)
	require.False(t, ok)
	require.Equal(t, int64(-1), p.Mark())
	require.Equal(t, 4, p.InFlight())

	mark, ok, err := p.Done(0)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, int64(3), mark, "0, 1 and 2 are done; 3 is not")
	require.Equal(t, 1, p.InFlight())
}

func TestRefuses(t *testing.T) {
	p := New()
	require.NoError(t, p.Add(10, noTime))
	require.ErrorContains(t, p.Add(10, noTime), "offset 10 handed out after offset 10")
	require.ErrorContains(t, p.Add(3, noTime), "after offset 10")
	_, _, err := p.Done(11)
	require.ErrorContains(t, err, "offset 11 is not in flight")
	_, _, err = p.Done(10)
	require.NoError(t, err)
	_, _, err = p.Done(10)
	require.ErrorContains(t, err, "not in flight")
	require.Equal(t, int64(11), p.Mark())
}

// TestRandomOrder finishes many offsets in random order and checks after every step
// that the mark is the end of the longest done prefix.
func TestRandomOrder(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	p := New()
	const n = 5000
	offsets := make([]int64, n)
	next := int64(100)
	for i := range offsets {
		next += 1 + int64(rng.Intn(3))
		offsets[i] = next
		require.NoError(t, p.Add(next, noTime))
	}
	order := rng.Perm(n)
	done := make([]bool, n)
	for _, i := range order {
		_, _, err := p.Done(offsets[i])
		require.NoError(t, err)
		done[i] = true
		want := int64(-1)
		for j := 0; j < n && done[j]; j++ {
			want = offsets[j] + 1
		}
		require.Equal(t, want, p.Mark())
	}
	require.Equal(t, 0, p.InFlight())
}

func BenchmarkAddDone(b *testing.B) {
	p := New()
	for i := 0; i < b.N; i++ {
		_ = p.Add(int64(i), noTime)
		_, _, _ = p.Done(int64(i))
	}
}

func TestAbandonHandsOutAgain(t *testing.T) {
	p := New()
	require.Equal(t, int64(-1), p.Last())
	require.NoError(t, p.Add(3, noTime))
	require.NoError(t, p.Add(4, noTime))
	require.Error(t, p.Abandon(3), "only the last one in flight")
	require.NoError(t, p.Abandon(4))
	require.Equal(t, int64(3), p.Last())
	require.NoError(t, p.Add(4, noTime), "abandoned: it may be handed out again")
	mark, _, err := p.Done(3)
	require.NoError(t, err)
	require.Equal(t, int64(4), mark)
	_, _, err = p.Done(4)
	require.NoError(t, err)
	require.Error(t, p.Abandon(4), "done: not in flight")
}

// Oldest is the timestamp of the first message not done, the one the mark waits for;
// MarkTime that of the last one behind the mark.
func TestOldestAndMarkTime(t *testing.T) {
	p := New()
	_, ok := p.Oldest()
	require.False(t, ok, "nothing handed out")
	_, ok = p.MarkTime()
	require.False(t, ok, "nothing done")

	base := time.Unix(1700000000, 0)
	at := func(s int) time.Time { return base.Add(time.Duration(s) * time.Second) }
	for off := int64(0); off < 4; off++ {
		require.NoError(t, p.Add(off, at(int(off))))
	}
	oldest, ok := p.Oldest()
	require.True(t, ok)
	require.True(t, at(0).Equal(oldest), "got %s", oldest)

	// Done out of order: 1 is confirmed, but 0 still holds the mark.
	_, _, err := p.Done(1)
	require.NoError(t, err)
	oldest, _ = p.Oldest()
	require.True(t, at(0).Equal(oldest))
	_, ok = p.MarkTime()
	require.False(t, ok, "the mark did not move")

	_, _, err = p.Done(0)
	require.NoError(t, err)
	oldest, _ = p.Oldest()
	require.True(t, at(2).Equal(oldest), "1 is done: 2 is the first not done")
	mark, ok := p.MarkTime()
	require.True(t, ok)
	require.True(t, at(1).Equal(mark), "0 and 1 are behind the mark")

	for _, off := range []int64{2, 3} {
		_, _, err = p.Done(off)
		require.NoError(t, err)
	}
	_, ok = p.Oldest()
	require.False(t, ok, "everything done")
	mark, _ = p.MarkTime()
	require.True(t, at(3).Equal(mark))
}

// Messages without a timestamp (zero, or Kafka's -1 as sarama gives it, a time before
// the epoch) are passed over instead of making the consumer decades behind.
func TestMessagesWithoutTimestampArePassedOver(t *testing.T) {
	p := New()
	withTime := time.Unix(1700000000, 0)
	require.NoError(t, p.Add(0, time.Time{}))
	require.NoError(t, p.Add(1, time.Time{}.Add(5*time.Millisecond)))
	require.NoError(t, p.Add(2, time.Unix(0, 0)))
	_, ok := p.Oldest()
	require.False(t, ok, "no message in flight has a timestamp")
	require.NoError(t, p.Add(3, withTime))
	oldest, ok := p.Oldest()
	require.True(t, ok)
	require.True(t, withTime.Equal(oldest))

	for off := int64(0); off < 3; off++ {
		_, _, err := p.Done(off)
		require.NoError(t, err)
	}
	_, ok = p.MarkTime()
	require.False(t, ok, "no message behind the mark has a timestamp")
	_, _, err := p.Done(3)
	require.NoError(t, err)
	require.NoError(t, p.Add(4, time.Time{}))
	_, _, err = p.Done(4)
	require.NoError(t, err)
	mark, ok := p.MarkTime()
	require.True(t, ok)
	require.True(t, withTime.Equal(mark), "the last message behind the mark with a timestamp")
}

func TestSizeComesBackWhenDone(t *testing.T) {
	p := New()
	require.NoError(t, p.Add(1, noTime))
	p.SetSize(1, 100)
	require.NoError(t, p.Add(2, noTime))
	p.SetSize(1, 7) // not the last one handed out: ignored
	p.SetSize(2, 200)
	_, _, size, err := p.DoneSize(2)
	require.NoError(t, err)
	require.Equal(t, int64(200), size)
	_, _, size, err = p.DoneSize(1)
	require.NoError(t, err)
	require.Equal(t, int64(100), size)
	_, _, size, err = p.DoneSize(1)
	require.Error(t, err)
	require.Zero(t, size, "nothing to give back twice")
}

// Skip moves the mark over offsets that hold nothing to read after the last message,
// only once every message handed out is done, and never back; Add takes offsets from
// the new mark on.
func TestSkip(t *testing.T) {
	p := New()
	require.True(t, p.Skip(3), "nothing handed out: offsets 0 to 2 hold nothing to read")
	require.Equal(t, int64(3), p.Mark())
	require.Equal(t, int64(2), p.Last())
	require.ErrorContains(t, p.Add(2, noTime), "after offset 2")

	require.NoError(t, p.Add(5, noTime))
	require.False(t, p.Skip(8), "offset 5 is in flight: the mark waits for it")
	require.Equal(t, int64(3), p.Mark())
	mark, _, err := p.Done(5)
	require.NoError(t, err)
	require.Equal(t, int64(6), mark)

	require.False(t, p.Skip(6), "not past the mark")
	require.False(t, p.Skip(4), "the mark never goes back")
	require.True(t, p.Skip(8), "a commit marker at 6, say, and an abort marker at 7")
	require.Equal(t, int64(8), p.Mark())
	require.Equal(t, int64(7), p.Last())
	require.Equal(t, 0, p.InFlight())

	require.NoError(t, p.Add(8, noTime))
	_, _, err = p.Done(8)
	require.NoError(t, err)
	require.Equal(t, int64(9), p.Mark())

	// A message abandoned after the last done one is left to the next claim: Skip
	// does not pass it while it is the last handed out.
	require.NoError(t, p.Add(12, noTime))
	require.NoError(t, p.Abandon(12))
	require.Equal(t, int64(11), p.Last())
	require.False(t, p.Skip(11), "Last says that offsets to 11 were handed out")
	require.True(t, p.Skip(12))
	require.NoError(t, p.Add(12, noTime), "handed out again")
}
