package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestLineTimestamp(t *testing.T) {
	for _, c := range []struct {
		line string
		ts   int64
		ok   bool
	}{
		{"m x=1 1767225600000000000", 1767225600000000000, true},
		{"kafka_consumer,region=arctic,station=station-10001 pressure=100.5,temperature=3 1767225600000001000", 1767225600000001000, true},
		{"m x=1 1767225600000000000\r", 1767225600000000000, true},
		{"m x=1", 0, false},          // no timestamp: the fields are the last part
		{"m x=1,y=2i", 0, false},     // nor here
		{"m s=\"a b\" 12", 12, true}, // a space in a string field is before the last one
		{"m s=\"a 5\"", 0, false},    // a last part that looks like a number but is not one
		{"m x=1 12x", 0, false},
		{"", 0, false},
	} {
		ts, ok := lineTimestamp([]byte(c.line))
		require.Equal(t, c.ok, ok, c.line)
		require.Equal(t, c.ts, ts, c.line)
	}
}

func TestLineTimesAcrossReads(t *testing.T) {
	var l lineTimes
	body := "m x=1 100\nm x=2 200\n\nm x=3\nkafka_consumer_stats,partition=0 lag=0i 300\nm x=4 400\nm x=5 500"
	// In pieces of 7 bytes: lines split anywhere, the timestamp too.
	for b := []byte(body); len(b) > 0; {
		n := min(7, len(b))
		l.feed(b[:n])
		b = b[n:]
	}
	require.Equal(t, []int64{100, 200, 400}, l.times, "the last line waits for its newline or the end")
	l.end()
	require.Equal(t, []int64{100, 200, 400, 500}, l.times)
	require.EqualValues(t, 1, l.untimed, "the line without a timestamp; the empty one and the input's stats line are no message")
}

func TestDelayHistogramPercentiles(t *testing.T) {
	var h delayHistogram
	require.Zero(t, h.quantile(0.99), "no delays")
	// 1000 delays of 0.5 ms, 1.5 ms, ... 999.5 ms.
	for i := range 1000 {
		h.add(time.Duration(i)*time.Millisecond + 500*time.Microsecond)
	}
	require.EqualValues(t, 1000, h.n)
	require.Equal(t, 500*time.Millisecond, h.quantile(0.50), "the 500th delay, 499.5 ms, is in the bucket up to 500 ms")
	require.Equal(t, 900*time.Millisecond, h.quantile(0.90))
	require.Equal(t, 990*time.Millisecond, h.quantile(0.99))
	require.Equal(t, 999500*time.Microsecond, h.quantile(1), "never more than the largest")
	require.Equal(t, 999500*time.Microsecond, h.max)
	require.Equal(t, time.Millisecond, h.quantile(0), "the smallest's bucket")

	// Ten delays past the span: counted, and the top quantiles say the largest.
	for i := range 10 {
		h.add(delaySpan + time.Duration(i)*time.Second)
	}
	require.EqualValues(t, 10, h.over)
	require.Equal(t, 990*time.Millisecond, h.quantile(0.98), "1000 of 1010 are within the span")
	require.Equal(t, delaySpan+9*time.Second, h.quantile(0.999))
	require.Len(t, h.buckets, int(delaySpan/delayBucket), "bounded whatever the count")

	var neg delayHistogram
	neg.add(-time.Millisecond)
	require.Zero(t, neg.quantile(0.5), "a negative delay counts as none")
}

// The proxy reads the timestamps of the writes the sink accepts, in the precision
// each write names, and leaves out the warm-up's lines and the refused writes.
func TestWriteCounterRecordsFreshness(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if r.URL.Query().Get("db") == "busy" {
			http.Error(w, "overloaded", http.StatusServiceUnavailable)
		}
	}))
	defer backend.Close()
	wc, err := startWriteCounter(backend.URL)
	require.NoError(t, err)
	defer wc.close()
	post := func(query, body string) {
		resp, err := http.Post(wc.url+writePath+"?"+query, "text/plain", strings.NewReader(body))
		require.NoError(t, err)
		resp.Body.Close()
	}

	now := time.Now()
	ago := func(d time.Duration) time.Time { return now.Add(-d) }
	post("db=a", fmt.Sprintf("m x=1 %d\n", ago(time.Second).UnixNano())) // before the recording
	rec := newFreshRecorder(ago(3*time.Second), now)
	wc.recordFreshness(rec)
	post("db=a", fmt.Sprintf("m x=1 %d\nm x=2 %d\nm x=3\n", ago(4*time.Second).UnixNano(), ago(2*time.Second).UnixNano()))
	post("db=a&precision=us", fmt.Sprintf("m x=1 %d\nm x=2 %d", ago(time.Second).UnixMicro(), ago(time.Second).UnixMicro()))
	post("db=b&precision=ms", fmt.Sprintf("m x=1 %d\n", ago(1500*time.Millisecond).UnixMilli()))
	post("db=busy", fmt.Sprintf("m x=1 %d\n", ago(time.Hour).UnixNano()))
	post("db=a", fmt.Sprintf("m x=1 %d\n", now.UnixNano())) // the tail
	wc.stopFreshness()
	post("db=a", fmt.Sprintf("m x=1 %d\n", ago(time.Minute).UnixNano()))

	c := rec.counts()
	require.EqualValues(t, 4, c.requests, "the 503 is not visible, and the writes outside the recording are not counted")
	require.EqualValues(t, 7, c.lines)
	require.EqualValues(t, 2, c.warm, "stamped before the warm-up's end, and in the tail")
	require.EqualValues(t, 1, c.untimed)
	require.EqualValues(t, 4, c.hist.n)
	require.Zero(t, c.hist.over, "no hour-old line: the refused write's")
	require.GreaterOrEqual(t, c.hist.max, 2*time.Second)
	require.Less(t, c.hist.max, 3*time.Second, "the largest delay, the ns line's of 2 s")
	require.GreaterOrEqual(t, c.hist.quantile(0.25), time.Second, "us and ms read in their precision, not as ns")
	require.Less(t, c.hist.quantile(0.5), 2*time.Second)
}
