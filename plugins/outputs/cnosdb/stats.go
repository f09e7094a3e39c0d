package cnosdb

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// stats counts what the plugin did; a summary goes to the log every stats_interval.
type stats struct {
	written   atomic.Int64 // lines CnosDB stored
	bytes     atomic.Int64 // bytes of those lines, before compression
	requests  atomic.Int64
	retries   atomic.Int64
	rejected  atomic.Int64 // lines CnosDB refused, dropped one by one
	malformed atomic.Int64 // input that was not line protocol, or had no storable field
	splits    atomic.Int64 // requests split to isolate a rejected line or fit the size limit

	// Sealed batches held in memory (queued or being written), and the most there were:
	// memory stays bounded however long CnosDB is away.
	inMemory     atomic.Int64
	inMemoryPeak atomic.Int64

	spool atomic.Pointer[spool] // the spool a Stream writes through, whose contents each summary shows

	mu         sync.Mutex
	lastError  string
	latencySum time.Duration
	latencyN   int64
}

func (s *stats) holdBatch() {
	n := s.inMemory.Add(1)
	for {
		peak := s.inMemoryPeak.Load()
		if n <= peak || s.inMemoryPeak.CompareAndSwap(peak, n) {
			return
		}
	}
}

func (s *stats) releaseBatch() { s.inMemory.Add(-1) }

func (s *stats) setLastError(msg string) {
	s.mu.Lock()
	s.lastError = msg
	s.mu.Unlock()
}

func (s *stats) observeLatency(d time.Duration) {
	s.mu.Lock()
	s.latencySum += d
	s.latencyN++
	s.mu.Unlock()
}

// snapshot is a copy of the counters at one moment.
type snapshot struct {
	written, bytes, requests, retries, rejected, malformed, splits int64
	lastError                                                      string
	meanLatency                                                    time.Duration
	spool                                                          spoolStatus
}

func (s *stats) snapshot() snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	snap := snapshot{
		written:   s.written.Load(),
		bytes:     s.bytes.Load(),
		requests:  s.requests.Load(),
		retries:   s.retries.Load(),
		rejected:  s.rejected.Load(),
		malformed: s.malformed.Load(),
		splits:    s.splits.Load(),
		lastError: s.lastError,
	}
	if s.latencyN > 0 {
		snap.meanLatency = s.latencySum / time.Duration(s.latencyN)
	}
	s.latencySum, s.latencyN = 0, 0
	if sp := s.spool.Load(); sp != nil {
		snap.spool = sp.status()
	}
	return snap
}

// summary describes the change since prev over the elapsed time.
func (cur snapshot) summary(prev snapshot, elapsed time.Duration) string {
	lines := cur.written - prev.written
	rate := float64(lines) / elapsed.Seconds()
	msg := fmt.Sprintf("wrote %d lines (%.0f/s, %s) in %d requests (mean %s), %d retries, %d rejected lines, %d malformed inputs; totals: %d lines, %d rejected",
		lines, rate, humanBytes(cur.bytes-prev.bytes), cur.requests-prev.requests, cur.meanLatency.Round(time.Millisecond),
		cur.retries-prev.retries, cur.rejected-prev.rejected, cur.malformed-prev.malformed, cur.written, cur.rejected)
	if sp := cur.spool; sp.limit > 0 {
		msg += fmt.Sprintf("; spool: %d batches (%d lines, %s of %s)", sp.batches, sp.lines, humanBytes(sp.bytes), humanBytes(sp.limit))
	}
	if cur.lastError != "" && cur.lastError != prev.lastError {
		msg += "; last error: " + cur.lastError
	}
	return msg
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
