package cnosdb

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/influxdata/telegraf/config"
	"github.com/stretchr/testify/require"

	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/dev/cnosdbdev"
	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/testutil/cnosdbtest"
)

// With the default max_in_flight several requests are under way at once, and what one
// request at a time gives still holds: a request answered 413 is split, a batch with
// lines CnosDB refuses is bisected down to them, a row written twice ends with its
// later value, and results, acknowledgements included, go on in stream order.
func TestParallelWritesKeepWhatOneAtATimeGives(t *testing.T) {
	target := cnosdbtest.Start(t, cnosdbdev.Options{})
	db := target.NewDatabase(t, "")
	// The column's type comes from the first write; with several requests at once that
	// would be whichever arrives first.
	target.Write(t, db, "par,k=seed x=0.5 1")
	c, logs := startPlugin(t, target, db, func(c *CnosDB) {
		c.MetricBatchSize = 500
		c.FlushInterval = config.Duration(50 * time.Millisecond)
	})
	require.Equal(t, 4, c.MaxInFlight, "the default")
	var res results
	c.onResult = res.add

	const n = 10000
	bad := map[int]bool{1234: true, 5678: true, 9001: true}
	var in strings.Builder
	for i := range n {
		switch {
		case bad[i]:
			fmt.Fprintf(&in, "par,k=v x=%di %d\n", i, 1000+i) // an integer where the column holds doubles
		case i == 100 || i == 600:
			// One row twice, in batches 1 and 2 (the first is split): the later value must win.
			fmt.Fprintf(&in, "par,k=twice x=%d.5 999\n", i)
		default:
			fmt.Fprintf(&in, "par,k=v x=%d.5 %d\n", i, 1000+i)
		}
	}
	// Slow answers, so that requests overlap however fast this machine reads, and the
	// first write request, batch 1's, too large.
	target.Faults().SetLatency(50 * time.Millisecond)
	target.Faults().Respond("/api/v1/write", 413, "", 1)
	s := openStream(t, c)
	feed(t, s, strings.NewReader(in.String()))
	target.Faults().SetLatency(0)

	require.GreaterOrEqual(t, target.Faults().Stats().MostAtOnce, int64(2), "requests overlapped")
	require.Positive(t, c.stats.splits.Load())
	require.Equal(t, int64(len(bad)), c.stats.rejected.Load())
	for i := range bad {
		require.Equal(t, 1, strings.Count(logs.String(), fmt.Sprintf("CnosDB rejected input line %d,", i+1)), "line %d logged once", i+1)
	}
	// The seed row, n lines, less the rejected ones and the row written twice.
	require.Equal(t, 1+n-len(bad)-1, target.Count(t, db, "par"))
	rows := target.Rows(t, db, "par")
	var twice []string
	for _, row := range rows {
		if row["k"] == "twice" {
			twice = append(twice, row["x"])
		}
	}
	require.Equal(t, []string{"600.5"}, twice)

	res.mu.Lock()
	defer res.mu.Unlock()
	require.Len(t, res.all, n/500)
	written, rejected := 0, 0
	for i, r := range res.all {
		require.Equal(t, uint64(i+1), r.Seq, "results in stream order")
		require.True(t, r.Done(), "batch %d", r.Seq)
		written += r.Written
		rejected += len(r.Rejected)
	}
	require.Equal(t, n-len(bad), written)
	require.Equal(t, len(bad), rejected)
}

// With several nodes, a node that stops answering rests while the others take its
// share of the requests in flight, and nothing is lost or reported out of order.
func TestParallelWritesAcrossNodesWithOneDown(t *testing.T) {
	up := cnosdbtest.Start(t, cnosdbdev.Options{})
	down := cnosdbtest.Start(t, cnosdbdev.Options{})
	db := up.NewDatabase(t, "")
	down.Faults().Refuse(true)
	c, _ := startPlugin(t, up, db, func(c *CnosDB) {
		c.URLs = []string{down.URL, up.URL}
		c.MetricBatchSize = 250
		c.FlushInterval = config.Duration(50 * time.Millisecond)
	})
	var res results
	c.onResult = res.add
	up.Faults().SetLatency(20 * time.Millisecond)
	s := openStream(t, c)
	feed(t, s, strings.NewReader(sensorLines(5000, "nodes")))
	up.Faults().SetLatency(0)
	require.Equal(t, 5000, up.Count(t, db, "nodes"))
	require.GreaterOrEqual(t, up.Faults().Stats().MostAtOnce, int64(2), "requests overlapped on the node that answers")
	res.requireInOrder(t, 5000)
}
