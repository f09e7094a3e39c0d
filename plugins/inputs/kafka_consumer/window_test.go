package kafka_consumer

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Once every slot is taken, the window opens again only when a quarter is free, so
// that messages are read in large steps, not one per slot freed.
func TestWindowReopensInLargeSteps(t *testing.T) {
	w := newWindow(8)
	for range 8 {
		require.True(t, w.tryTake())
	}
	require.False(t, w.tryTake(), "every slot is taken")
	w.give(1)
	require.False(t, w.tryTake(), "one free slot does not open a closed window")
	require.True(t, w.isClosed())
	w.give(1)
	require.True(t, w.tryTake(), "a quarter free opens it")
	require.True(t, w.tryTake())
	require.False(t, w.tryTake())
	require.Equal(t, 8, w.taken())
}

func TestWindowTakeWaitsForTheWindowToOpen(t *testing.T) {
	w := newWindow(4)
	for range 4 {
		require.True(t, w.tryTake())
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
