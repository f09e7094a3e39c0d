package lograte

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestBurstThenOnePerInterval(t *testing.T) {
	l := New(3, time.Second)
	start := time.Unix(1700000000, 0)
	for i := range 3 {
		require.True(t, l.Allow(start), "line %d of the burst", i)
	}
	require.False(t, l.Allow(start))
	require.False(t, l.Allow(start.Add(999*time.Millisecond)))
	require.Equal(t, int64(2), l.TakeSuppressed())
	require.Equal(t, int64(0), l.TakeSuppressed(), "counting starts again")

	require.True(t, l.Allow(start.Add(time.Second)), "a token per interval")
	require.False(t, l.Allow(start.Add(time.Second)))

	// A long quiet refills the burst, and no more.
	later := start.Add(time.Hour)
	for i := range 3 {
		require.True(t, l.Allow(later), "line %d of the burst after a quiet hour", i)
	}
	require.False(t, l.Allow(later))
	require.Equal(t, int64(2), l.TakeSuppressed())
}

func TestConcurrentUse(t *testing.T) {
	l := New(10, time.Hour)
	now := time.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	allowed := 0
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				if l.Allow(now) {
					mu.Lock()
					allowed++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	require.Equal(t, 10, allowed)
	require.Equal(t, int64(790), l.TakeSuppressed())
}
