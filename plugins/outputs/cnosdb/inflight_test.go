package cnosdb

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/influxdata/telegraf/config"
	"github.com/influxdata/telegraf/testutil"
	"github.com/stretchr/testify/require"
)

func batchOf(seq uint64, lines ...string) *batch {
	b := &batch{seq: seq}
	for i, l := range lines {
		b.starts = append(b.starts, len(b.buf))
		b.buf = append(b.buf, l+"\n"...)
		b.sources = append(b.sources, int64(i))
	}
	return b
}

// Results go on in stream order, whichever batch finishes first.
func TestInflightHandsResultsOnInOrder(t *testing.T) {
	f := newInflight(3)
	for seq := uint64(1); seq <= 3; seq++ {
		f.start(batchOf(seq, fmt.Sprintf("t v=1 %d", seq)))
	}
	var got []uint64
	deliver := func(r Result) { got = append(got, r.Seq) }
	f.finish(Result{Seq: 3}, deliver)
	f.finish(Result{Seq: 2}, deliver)
	require.Empty(t, got, "batch 1 has no result yet")
	f.finish(Result{Seq: 1}, deliver)
	require.Equal(t, []uint64{1, 2, 3}, got)
}

// A batch that writes a row an earlier unfinished batch writes waits for it; one that
// does not, does not.
func TestInflightKeepsARowsWritesInOrder(t *testing.T) {
	f := newInflight(4)
	f.start(batchOf(1, `t,host=a v=1 100`, `t,host=b v=1 100`))
	f.start(batchOf(2, `t,host=a v=2 200`, `t,host=c v=1 100`)) // other rows
	started := make(chan uint64, 1)
	go func() {
		f.start(batchOf(3, `t,host=b v=9 100`)) // batch 1's row
		started <- 3
	}()
	select {
	case <-started:
		t.Fatal("batch 3 started while batch 1, which writes the same row, was unfinished")
	case <-time.After(50 * time.Millisecond):
	}
	f.finish(Result{Seq: 2}, func(Result) {})
	select {
	case <-started:
		t.Fatal("batch 3 started after batch 2 finished; batch 1 still holds its row")
	case <-time.After(20 * time.Millisecond):
	}
	f.finish(Result{Seq: 1}, func(Result) {})
	require.Equal(t, uint64(3), <-started)
}

func TestSeriesKey(t *testing.T) {
	require.Equal(t, `t,host=a`, string(seriesKey([]byte(`t,host=a v=1 1`))))
	require.Equal(t, `t\ x,host=a\ b`, string(seriesKey([]byte(`t\ x,host=a\ b v=1 1`))))
	require.Equal(t, `t`, string(seriesKey([]byte(`t`))))
}

// Overload halves the writers, down to one; requests written in a row add them back
// one at a time.
func TestInflightBacksOffAndRecovers(t *testing.T) {
	f := newInflight(4)
	f.observe(transient, 0, 0)
	require.Equal(t, 2, f.writers())
	f.observe(transient, 0, 0)
	f.observe(transient, 0, 0)
	require.Equal(t, 1, f.writers())
	for range growAfter - 1 {
		f.observe(written, time.Millisecond, 100)
	}
	require.Equal(t, 1, f.writers())
	f.observe(written, time.Millisecond, 100)
	require.Equal(t, 2, f.writers())
	for range 3 * growAfter {
		f.observe(written, time.Millisecond, 100)
	}
	require.Equal(t, 4, f.writers(), "never more than max_in_flight")
}

// A request much slower per line than the usual halves the writers; one as slow per
// line but larger does not, and a CnosDB that stays slower is backed off from once.
func TestInflightBacksOffWhenLatencyClimbs(t *testing.T) {
	f := newInflight(4)
	for range 40 {
		f.observe(written, 10*time.Millisecond, 2000) // 4.5 µs per line, the request included
	}
	require.Equal(t, 4, f.writers())
	f.observe(written, 50*time.Millisecond, 10000) // the same per line, 5 times the size
	require.Equal(t, 4, f.writers(), "a larger request is not a slower CnosDB")
	f.observe(written, 15*time.Millisecond, 2000) // 1.5 times: what one more writer costs
	require.Equal(t, 4, f.writers())
	f.observe(written, 40*time.Millisecond, 2000)
	require.Equal(t, 2, f.writers(), "four times as long per line")
	require.Equal(t, int64(1), f.backoffs)

	// CnosDB stays that slow: the usual catches up before the writers are gone,
	// and they grow again.
	for range 200 {
		f.observe(written, 40*time.Millisecond, 2000)
	}
	require.Equal(t, 4, f.writers(), "a lasting slowdown becomes the usual")
	require.LessOrEqual(t, f.backoffs, int64(3))
}

// With max_in_flight = 2 two requests are under way at once, and the results, acks
// included, still go on in stream order.
func TestTwoRequestsInFlight(t *testing.T) {
	var active, most atomic.Int32
	var mu sync.Mutex
	var bodies []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/write" {
			w.WriteHeader(http.StatusOK)
			return
		}
		n := active.Add(1)
		for {
			m := most.Load()
			if n <= m || most.CompareAndSwap(m, n) {
				break
			}
		}
		body, _ := io.ReadAll(r.Body)
		// The first request is the slowest: the second one finishes first.
		if strings.HasPrefix(string(body), "t v=0 ") {
			time.Sleep(200 * time.Millisecond)
		} else {
			time.Sleep(20 * time.Millisecond)
		}
		mu.Lock()
		bodies = append(bodies, string(body))
		mu.Unlock()
		active.Add(-1)
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()

	c := New()
	c.URLs = []string{srv.URL}
	c.MaxInFlight = 2
	c.MetricBatchSize = 10
	c.FlushInterval = config.Duration(time.Hour)
	c.StatsInterval = 0
	c.CreateDatabase = false
	c.Log = testutil.Logger{}
	var order []uint64
	c.onResult = func(r Result) { order = append(order, r.Seq) }
	require.NoError(t, c.Init())
	require.NoError(t, c.Connect())
	var in strings.Builder
	for i := range 40 {
		fmt.Fprintf(&in, "t v=%d %d\n", i, 1000+i)
	}
	s := openStream(t, c)
	feed(t, s, strings.NewReader(in.String()))
	s.Close()
	require.NoError(t, c.Close())
	require.Equal(t, int32(2), most.Load(), "two requests at once, never more")
	require.Equal(t, []uint64{1, 2, 3, 4}, order, "results in stream order")
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, bodies, 4)
	require.True(t, strings.HasPrefix(bodies[0], "t v=1"), "the second request finished first: %q", bodies[0][:10])
}
