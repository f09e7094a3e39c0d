package cnosdb

import "sync"

// byteBudget bounds the bytes of the batches flushed and not yet written, queued or
// being written, to (max_in_flight + 1) x max_request_size: every writer busy with a
// full request, and one more full request queued (a batch is flushed once it reaches
// max_request_size, so it can be over by a line). With lines of a few hundred bytes
// the 8 queued batches and those being written are a few MiB and never reach it, but
// with lines of 1 MiB each batch is a full max_request_size (16 MiB), and 8 queued
// plus 4 being written were 192 MiB. A batch larger than the budget is let through
// alone, so that nothing waits forever.
type byteBudget struct {
	mu    sync.Mutex
	freed sync.Cond
	limit int
	used  int
}

func newByteBudget(limit int) *byteBudget {
	b := &byteBudget{limit: max(limit, 1)}
	b.freed.L = &b.mu
	return b
}

// acquire waits until n more bytes fit, or until nothing is held, and takes them.
func (b *byteBudget) acquire(n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for b.used > 0 && b.used+n > b.limit {
		b.freed.Wait()
	}
	b.used += n
}

// release gives back what acquire took.
func (b *byteBudget) release(n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.used -= n
	b.freed.Broadcast()
}

// held returns the bytes taken.
func (b *byteBudget) held() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}
