package main

import (
	"bytes"
	"slices"
	"strconv"
	"sync"
	"time"
)

// lineTimestamp is the timestamp at the end of a line of line protocol, in the
// precision it was written with; false when the line has none (no third part, or a
// last part that is not an integer).
func lineTimestamp(line []byte) (int64, bool) {
	line = bytes.TrimRight(line, "\r")
	sp := bytes.LastIndexByte(line, ' ')
	// measurement[,tags] fields timestamp: a timestamp needs two spaces before it.
	if sp < 0 || bytes.IndexByte(line[:sp], ' ') < 0 {
		return 0, false
	}
	ts, err := strconv.ParseInt(string(line[sp+1:]), 10, 64)
	if err != nil {
		return 0, false
	}
	return ts, true
}

// statsLinePrefix starts the Kafka input's own kafka_consumer_stats lines, one per
// partition every stats_interval: they are no message, and their time is when they
// were made.
var statsLinePrefix = []byte("kafka_consumer_stats,")

// lineTimes collects the timestamps of the lines of a body read in pieces that
// need not end at a newline.
type lineTimes struct {
	carry   []byte // the start of a line whose newline has not been read yet
	times   []int64
	untimed int64 // non-empty lines without a timestamp
}

func (l *lineTimes) feed(p []byte) {
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			l.carry = append(l.carry, p...)
			return
		}
		line := p[:i]
		if len(l.carry) > 0 {
			l.carry = append(l.carry, line...)
			line = l.carry
		}
		l.line(line)
		l.carry = l.carry[:0]
		p = p[i+1:]
	}
}

// end takes a last line without a newline.
func (l *lineTimes) end() {
	if len(l.carry) > 0 {
		l.line(l.carry)
		l.carry = l.carry[:0]
	}
}

func (l *lineTimes) line(b []byte) {
	if len(bytes.TrimSpace(b)) == 0 || bytes.HasPrefix(b, statsLinePrefix) {
		return
	}
	if ts, ok := lineTimestamp(b); ok {
		l.times = append(l.times, ts)
	} else {
		l.untimed++
	}
}

// Resolution and span of delayHistogram.
const (
	delayBucket = time.Millisecond
	delaySpan   = 60 * time.Second
)

// delayHistogram counts delays in buckets of delayBucket up to delaySpan, so that a
// run's memory does not grow with its messages; beyond the span only the count and
// the largest are kept.
type delayHistogram struct {
	buckets []int64 // buckets[i]: delays from i to i+1 delayBucket
	over    int64   // delays of delaySpan or more
	n       int64
	max     time.Duration
}

func (h *delayHistogram) add(d time.Duration) {
	if h.buckets == nil {
		h.buckets = make([]int64, delaySpan/delayBucket)
	}
	d = max(d, 0) // a timestamp truncated to its precision cannot be later than its answer
	h.n++
	h.max = max(h.max, d)
	if i := int(d / delayBucket); i < len(h.buckets) {
		h.buckets[i]++
	} else {
		h.over++
	}
}

// quantile is the delay that a fraction q of the delays do not exceed, to within a
// bucket: the upper edge of the bucket that holds it, or the largest delay when that
// is less or the delay lies beyond the span; 0 when there are none.
func (h *delayHistogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := int64(q * float64(h.n))
	if float64(rank) < q*float64(h.n) {
		rank++ // ceil: the smallest delay with at least q of them at or below it
	}
	rank = max(rank, 1)
	var seen int64
	for i, c := range h.buckets {
		seen += c
		if seen >= rank {
			return min(time.Duration(i+1)*delayBucket, h.max)
		}
	}
	return h.max
}

// freshRecorder gathers, for a freshness run, the delay from each accepted line's
// timestamp to the sink's answer, leaving out the lines stamped before from (the
// warm-up) and from to on (the tail, produced so that the last measured messages
// travel a steady stream, not the end of one).
type freshRecorder struct {
	from, to time.Time

	mu       sync.Mutex
	hist     delayHistogram
	warm     int64 // lines stamped before from or from to on, left out
	untimed  int64 // lines without a timestamp
	requests int64 // writes accepted while recording
	lines    int64 // their lines, the warm-up's included
	last     time.Time
}

func newFreshRecorder(from, to time.Time) *freshRecorder { return &freshRecorder{from: from, to: to} }

// observe records a write accepted at at whose lines carry times in units of unit.
func (f *freshRecorder) observe(at time.Time, unit time.Duration, times []int64, untimed int64) {
	from, to, now := f.from.UnixNano(), f.to.UnixNano(), at.UnixNano()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests++
	f.lines += int64(len(times)) + untimed
	f.untimed += untimed
	f.last = at
	for _, ts := range times {
		ns := ts * int64(unit)
		if ns < from || ns >= to {
			f.warm++
			continue
		}
		f.hist.add(time.Duration(now - ns))
	}
}

// freshCounts is what a freshRecorder holds at one moment.
type freshCounts struct {
	hist                           delayHistogram
	warm, untimed, requests, lines int64
	last                           time.Time
}

func (f *freshRecorder) counts() freshCounts {
	f.mu.Lock()
	defer f.mu.Unlock()
	h := f.hist
	h.buckets = slices.Clone(h.buckets)
	return freshCounts{hist: h, warm: f.warm, untimed: f.untimed, requests: f.requests, lines: f.lines, last: f.last}
}
