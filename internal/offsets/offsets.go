// Package offsets tracks, for one partition, which messages were handed out for
// processing and which are done, so that a consumer commits an offset only when every
// message before it is done.
//
// Messages of a partition arrive in offset order, but may finish out of order (a
// poison message is done at once, a message whose metrics wait in a buffer later; an
// output that confirms writes could finish them in any order). Committing the offset
// of a finished message while an earlier one is still in flight would lose the earlier
// one on a crash, so a Partition only ever reports the end of the longest done prefix.
//
// Offsets that hold no message for the consumer (gaps: compacted records, transaction
// markers, the records of aborted transactions a read_committed consumer skips) are
// passed over as done. A gap after the last message handed out shows only when the
// consumer learns that nothing is left to read before some offset: Skip then moves the
// mark over it, once every message handed out is done, so that the mark stays the end
// of the longest done prefix.
//
// Each message may carry its Kafka timestamp, so that a consumer can tell how far
// behind in time it is, not only in offsets (see Oldest and MarkTime), and a size, the
// memory it holds until it is done (see SetSize and DoneSize).
package offsets

import (
	"fmt"
	"sort"
	"sync"
	"time"
)

// Partition tracks the offsets of one partition. Its methods may be called from
// several goroutines.
type Partition struct {
	mu      sync.Mutex
	pending []entry // handed out and not yet behind the mark, in offset order
	head    int     // pending[:head] are gone; kept to avoid copying on every Done
	mark    int64   // offset of the next message to consume once every earlier one is done; -1 before the first
	last    int64   // highest offset handed out; -1 before the first
	// markTime is the timestamp of the last message behind the mark that had one, in
	// Unix nanoseconds; 0 before the first.
	markTime int64
}

// entry is kept for every message in flight: a few words, since a partition may have
// tens of thousands of them. ts is in Unix nanoseconds, 0 for none.
type entry struct {
	offset int64
	ts     int64
	size   int64
	done   bool
}

// New returns a Partition with nothing handed out.
func New() *Partition {
	return &Partition{mark: -1, last: -1}
}

// Add records that the message at offset, with Kafka timestamp ts, was handed out.
// Offsets must increase from one call to the next; gaps (compacted messages,
// transaction markers) are fine. A zero ts, or one not after the Unix epoch, is no
// timestamp (Kafka's -1, messages from before Kafka 0.10): Oldest and MarkTime pass
// over it rather than report a lag of decades.
func (p *Partition) Add(offset int64, ts time.Time) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if offset <= p.last {
		return fmt.Errorf("offset %d handed out after offset %d", offset, p.last)
	}
	p.last = offset
	p.pending = append(p.pending, entry{offset: offset, ts: unixNano(ts)})
	return nil
}

// unixNano returns ts in Unix nanoseconds, or 0 if it is no timestamp.
func unixNano(ts time.Time) int64 {
	if ts.IsZero() || ts.UnixMilli() <= 0 {
		return 0
	}
	return ts.UnixNano()
}

// SetSize records the size of the message at offset, the last one handed out. It
// does nothing for another offset.
func (p *Partition) SetSize(offset, size int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if n := len(p.pending); n > p.head && p.pending[n-1].offset == offset {
		p.pending[n-1].size = size
	}
}

// Done records that the message at offset is done. It reports the new mark (the
// offset of the next message to consume, the value to commit) and whether Done
// advanced it. Done with an offset that was not handed out, or is done already,
// returns an error and changes nothing.
func (p *Partition) Done(offset int64) (mark int64, advanced bool, err error) {
	mark, advanced, _, err = p.DoneSize(offset)
	return mark, advanced, err
}

// DoneSize is Done that also returns the size SetSize recorded for the message.
func (p *Partition) DoneSize(offset int64) (mark int64, advanced bool, size int64, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	live := p.pending[p.head:]
	i := sort.Search(len(live), func(i int) bool { return live[i].offset >= offset })
	if i == len(live) || live[i].offset != offset {
		return p.mark, false, 0, fmt.Errorf("offset %d is not in flight", offset)
	}
	if live[i].done {
		return p.mark, false, 0, fmt.Errorf("offset %d is done already", offset)
	}
	live[i].done = true
	size = live[i].size
	for p.head < len(p.pending) && p.pending[p.head].done {
		e := &p.pending[p.head]
		p.mark = e.offset + 1
		if e.ts != 0 {
			p.markTime = e.ts
		}
		advanced = true
		p.head++
	}
	// Reclaim the consumed front once it is most of the slice, so memory stays
	// proportional to the messages in flight at amortised constant cost.
	if p.head == len(p.pending) {
		p.pending, p.head = p.pending[:0], 0
	} else if p.head > 1024 && p.head > len(p.pending)/2 {
		n := copy(p.pending, p.pending[p.head:])
		p.pending, p.head = p.pending[:n], 0
	}
	return p.mark, advanced, size, nil
}

// Mark returns the offset of the next message to consume once every message handed
// out before it is done, or -1 if no message is done yet.
func (p *Partition) Mark() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mark
}

// Oldest returns the timestamp of the first message, in offset order, that was handed
// out and is not done, passing over those without a timestamp: the message the mark
// waits for, whose age is how far behind the consumer is. ok is false if no message
// with a timestamp is in flight and not done.
func (p *Partition) Oldest() (ts time.Time, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, e := range p.pending[p.head:] {
		if !e.done && e.ts != 0 {
			return time.Unix(0, e.ts), true
		}
	}
	return time.Time{}, false
}

// MarkTime returns the timestamp of the last message behind the mark that had one;
// ok is false if none had.
func (p *Partition) MarkTime() (ts time.Time, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.markTime == 0 {
		return time.Time{}, false
	}
	return time.Unix(0, p.markTime), true
}

// InFlight returns how many messages were handed out and are not yet behind the mark
// (done ones waiting for an earlier one included).
func (p *Partition) InFlight() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.pending) - p.head
}

// Last returns the highest offset handed out, or -1 before the first.
func (p *Partition) Last() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.last
}

// Skip records that no message before offset to is left to hand out: the offsets
// after the last one handed out and before to hold nothing to read. If every message
// handed out is done, the mark moves to to, as it moves over a gap between two
// messages, and Add takes only offsets from to on. It reports whether the mark moved:
// not while a message is in flight, since the mark waits for it, nor if to is not past
// the mark and the last offset handed out, since the mark never goes back.
func (p *Partition) Skip(to int64) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.head < len(p.pending) || to <= p.mark || to <= p.last {
		return false
	}
	p.mark, p.last = to, to-1
	return true
}

// Abandon takes back the message at offset, the last one handed out, which will not
// be done: the next Add may hand it out again.
func (p *Partition) Abandon(offset int64) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.pending)
	if n == p.head || p.pending[n-1].offset != offset || p.pending[n-1].done {
		return fmt.Errorf("offset %d is not the last one in flight", offset)
	}
	p.pending = p.pending[:n-1]
	p.last = offset - 1
	return nil
}
