package cnosdb

import (
	"bytes"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"
)

// inflight lets up to max_in_flight batches be written at once while keeping what
// writing one at a time gives:
//
//   - batches start in stream order, and one that writes a row (table, tags and time)
//     an earlier unfinished batch also writes waits for it, so that the later value
//     wins in CnosDB, which keeps the last write of a field (its upsert rule), retries
//     and splits included;
//   - results are handed on in stream order, so that an acknowledgement confirms a
//     batch only once it and every earlier one have a final result;
//   - the number of writers is halved when CnosDB says it is overloaded, or does not
//     answer, or when a request takes more than climbFactor times as long per line as
//     the requests before it, and grows by one after growAfter requests written in a
//     row (additive increase, multiplicative decrease, as TCP's congestion control
//     does).
type inflight struct {
	seed maphash.Seed
	max  int

	mu        sync.Mutex
	changed   *sync.Cond
	limit     int          // writers allowed now, 1 to max
	shown     atomic.Int32 // limit, for writers, which deliver calls under mu
	active    int          // writers at work
	streak    int          // requests written since the last overload or growth
	backoffs  int64        // times the limit was halved
	usual     float64      // moving average of a written request's time per line, ns
	nextStart uint64       // the seq that may start next
	writing   map[uint64]map[uint64]struct{}
	results   map[uint64]Result // finished out of order, by seq
	next      uint64            // the seq whose result is handed on next
}

const (
	// growAfter is how many requests must be written in a row before one more
	// writer may work.
	growAfter = 8

	// climbFactor is how much slower per line than usual a written request must be
	// for its latency to count as climbing. Writers added one at a time raise the
	// latency of a saturated CnosDB by less (3 on 2 cores: 1.5 times), so the
	// writers' own growth does not trip it; CnosDB slowing down (a flush, a
	// compaction, memory pressure) or a slower network path does.
	climbFactor = 2.5

	// requestLines is what a request costs CnosDB beyond its lines, in lines: about
	// 0.55 ms against about 3 µs per line (../shared/cnosdb/API.md), so that small
	// and large requests compare.
	requestLines = 200

	// usualWeight is the weight of the newest request in the usual time per line:
	// about the last 30 requests count.
	usualWeight = 1.0 / 32
)

func newInflight(maxInFlight int) *inflight {
	f := &inflight{
		seed:      maphash.MakeSeed(),
		max:       maxInFlight,
		limit:     maxInFlight,
		nextStart: 1,
		writing:   make(map[uint64]map[uint64]struct{}),
		results:   make(map[uint64]Result),
		next:      1,
	}
	f.changed = sync.NewCond(&f.mu)
	f.shown.Store(int32(maxInFlight))
	return f
}

// start waits until batch b may be written: every earlier batch has started, a writer
// is free, and no earlier batch being written shares a row with b.
func (f *inflight) start(b *batch) {
	var rows map[uint64]struct{}
	if f.max > 1 {
		rows = f.rows(b)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for b.seq != f.nextStart || f.active >= f.limit || f.overlapsEarlier(b.seq, rows) {
		f.changed.Wait()
	}
	f.active++
	f.nextStart++
	f.writing[b.seq] = rows
	f.changed.Broadcast()
}

// finish records r, the result of a batch that start let through, and hands on to
// deliver every result that may now go, in stream order. deliver runs holding the
// lock that keeps that order: it must not call start, finish or observe.
func (f *inflight) finish(r Result, deliver func(Result)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.active--
	delete(f.writing, r.Seq)
	f.changed.Broadcast()
	f.results[r.Seq] = r
	for {
		next, ok := f.results[f.next]
		if !ok {
			return
		}
		delete(f.results, f.next)
		f.next++
		deliver(next)
	}
}

// observe adjusts the number of writers to the outcome of one request, which took
// took and carried lines.
func (f *inflight) observe(o outcome, took time.Duration, lines int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch o {
	case transient:
		f.halve()
	case written:
		perLine := float64(took) / float64(lines+requestLines)
		climbed := f.usual > 0 && perLine > climbFactor*f.usual
		if f.usual == 0 {
			f.usual = perLine
		} else {
			// A lasting change becomes the usual after a few dozen requests, so
			// that a slower CnosDB is backed off from once, not for ever.
			f.usual += usualWeight * (perLine - f.usual)
		}
		if climbed {
			f.halve()
			return
		}
		f.streak++
		if f.streak >= growAfter && f.limit < f.max {
			f.limit++
			f.streak = 0
			f.shown.Store(int32(f.limit))
			f.changed.Broadcast()
		}
	}
}

// halve halves the writers, down to one, and starts the streak that adds them back
// again. f.mu must be held.
func (f *inflight) halve() {
	f.streak = 0
	if f.limit > 1 {
		f.limit /= 2
		f.backoffs++
		f.shown.Store(int32(f.limit))
	}
}

// writers returns the writers allowed now.
func (f *inflight) writers() int { return int(f.shown.Load()) }

func (f *inflight) overlapsEarlier(seq uint64, rows map[uint64]struct{}) bool {
	if len(rows) == 0 {
		return false
	}
	for s, other := range f.writing {
		if s < seq && overlaps(rows, other) {
			return true
		}
	}
	return false
}

func overlaps(a, b map[uint64]struct{}) bool {
	if len(b) < len(a) {
		a, b = b, a
	}
	for k := range a {
		if _, ok := b[k]; ok {
			return true
		}
	}
	return false
}

// rows returns a hash of each row b writes: its series (measurement and tags, the
// line up to its first unescaped space) and its time (after its last space).
func (f *inflight) rows(b *batch) map[uint64]struct{} {
	rows := make(map[uint64]struct{}, b.len())
	var h maphash.Hash
	h.SetSeed(f.seed)
	for i := range b.len() {
		line := b.line(i)
		h.Reset()
		_, _ = h.Write(seriesKey(line))
		_ = h.WriteByte(' ')
		if j := bytes.LastIndexByte(line, ' '); j >= 0 {
			_, _ = h.Write(line[j+1:])
		}
		rows[h.Sum64()] = struct{}{}
	}
	return rows
}

// seriesKey is the line up to its first space that no backslash escapes.
func seriesKey(line []byte) []byte {
	for i := 0; i < len(line); i++ {
		switch line[i] {
		case '\\':
			i++
		case ' ':
			return line[:i]
		}
	}
	return line
}
