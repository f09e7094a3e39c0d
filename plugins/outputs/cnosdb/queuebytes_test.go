package cnosdb

import (
	"strings"
	"testing"
	"time"

	"github.com/influxdata/telegraf/config"
	"github.com/stretchr/testify/require"

	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/dev/cnosdbdev"
	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/testutil/cnosdbtest"
)

func TestByteBudgetWaitsForRoomAndLetsALargeBatchThroughAlone(t *testing.T) {
	b := newByteBudget(100)
	b.acquire(60)
	b.acquire(40)
	acquired := make(chan struct{})
	go func() {
		b.acquire(10)
		close(acquired)
	}()
	select {
	case <-acquired:
		t.Fatal("acquired past the budget")
	case <-time.After(20 * time.Millisecond):
	}
	b.release(40)
	<-acquired
	require.Equal(t, 70, b.held())

	b.release(60)
	b.release(10)
	b.acquire(500) // nothing held: larger than the budget, it goes alone
	require.Equal(t, 500, b.held())
	small := make(chan struct{})
	go func() {
		b.acquire(1)
		close(small)
	}()
	select {
	case <-small:
		t.Fatal("a batch joined the one larger than the budget")
	case <-time.After(20 * time.Millisecond):
	}
	b.release(500)
	<-small
	require.Equal(t, 1, b.held())
}

// Into a slow CnosDB, reading stops once the batches queued and being written take
// (max_in_flight + 1) x max_request_size, long before queuedBatches batches queue up,
// and every line is still written.
func TestQueueIsBoundedInBytes(t *testing.T) {
	target := cnosdbtest.Start(t, cnosdbdev.Options{})
	target.Faults().SetLatency(50 * time.Millisecond)
	db := target.NewDatabase(t, "")
	c, _ := startPlugin(t, target, db, func(c *CnosDB) {
		c.MaxInFlight = 1
		c.MaxRequestSize = config.Size(2000)
		c.MaxLineSize = config.Size(2000)
		c.MetricBatchSize = 1000
		c.FlushInterval = config.Duration(time.Hour)
	})
	s := openStream(t, c)
	feed(t, s, strings.NewReader(sensorLines(600, "bounded")))
	require.Equal(t, 600, target.Count(t, db, "bounded"))
	// Batches of about 2000 bytes: two fit the budget, and the third waits for room
	// (holdBatch counts it already). By count alone, 1 + 8 + 1 would be in memory.
	require.LessOrEqual(t, c.stats.inMemoryPeak.Load(), int64(3))
	require.Zero(t, s.queueBytes.held())
}
