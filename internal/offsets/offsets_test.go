package offsets

import (
	"math/rand"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestInOrder(t *testing.T) {
	p := New()
	require.Equal(t, int64(-1), p.Mark())
	for _, off := range []int64{5, 6, 8} {
		require.NoError(t, p.Add(off))
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
		require.NoError(t, p.Add(off))
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
	require.NoError(t, p.Add(10))
	require.ErrorContains(t, p.Add(10), "offset 10 handed out after offset 10")
	require.ErrorContains(t, p.Add(3), "after offset 10")
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
		require.NoError(t, p.Add(next))
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
		_ = p.Add(int64(i))
		_, _, _ = p.Done(int64(i))
	}
}

func TestAbandonHandsOutAgain(t *testing.T) {
	p := New()
	require.Equal(t, int64(-1), p.Last())
	require.NoError(t, p.Add(3))
	require.NoError(t, p.Add(4))
	require.Error(t, p.Abandon(3), "only the last one in flight")
	require.NoError(t, p.Abandon(4))
	require.Equal(t, int64(3), p.Last())
	require.NoError(t, p.Add(4), "abandoned: it may be handed out again")
	mark, _, err := p.Done(3)
	require.NoError(t, err)
	require.Equal(t, int64(4), mark)
	_, _, err = p.Done(4)
	require.NoError(t, err)
	require.Error(t, p.Abandon(4), "done: not in flight")
}
