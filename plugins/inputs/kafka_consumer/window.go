package kafka_consumer

import (
	"context"
	"sync"
)

// window holds the max_undelivered_messages slots and counts the bytes of line
// protocol that the messages holding them gave, up to max_undelivered_bytes: with
// the acknowledgement on, the input keeps those lines until the output confirms them.
// The window closes when every slot is taken or the bytes reach the limit, and it
// stays closed until a quarter of the slots and a quarter of the bytes are free
// again, so that reading resumes in large steps: freeing one slot at a time would
// have the consumer read, write and mark one message at a time, and the output send
// requests of a line or two (the silly window syndrome of flow control).
//
// A message's bytes are known only once it is parsed, after it took its slot; so the
// window can go past max_undelivered_bytes by the last message of each partition
// (reading stops right after), and a message larger than the limit is never stuck:
// it takes its slot while the window is open and closes it behind itself.
type window struct {
	mu       sync.Mutex
	size     int
	free     int
	reopen   int   // free slots at which a closed window opens again
	maxBytes int64 // max_undelivered_bytes
	bytes    int64 // line protocol of the messages holding slots
	// reopenBytes: a closed window opens again only with bytes at most this.
	reopenBytes int64
	closed      bool          // slots or bytes ran out, and not a quarter is free since
	paused      int           // pause calls not yet resumed: no slot is handed out, however many are free
	opened      chan struct{} // closed and replaced when the window opens
}

func newWindow(size int, maxBytes int64) *window {
	maxBytes = max(maxBytes, 1)
	return &window{
		size: size, free: size, reopen: max(size/4, 1),
		maxBytes: maxBytes, reopenBytes: maxBytes - maxBytes/4,
		opened: make(chan struct{}),
	}
}

// tryTake takes a slot if the window is open, after adding held bytes as hold does:
// the claim's loop hands over the bytes of the message it parsed last as it asks for
// the next slot, so that the window is locked once per message, not twice.
func (w *window) tryTake(held int64) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.holdLocked(held)
	if w.closed || w.paused > 0 {
		return false
	}
	w.free--
	if w.free == 0 {
		w.closed = true
	}
	return true
}

// take waits for the window to open and takes a slot; false means ctx ended first.
func (w *window) take(ctx context.Context) bool {
	for {
		if w.tryTake(0) {
			return true
		}
		w.mu.Lock()
		opened := w.opened
		shut := w.closed || w.paused > 0
		w.mu.Unlock()
		if !shut {
			continue
		}
		select {
		case <-opened:
		case <-ctx.Done():
			return false
		}
	}
}

// hold adds the n bytes of line protocol that a message holding a slot gave; the
// window closes once max_undelivered_bytes are held.
func (w *window) hold(n int64) {
	if n <= 0 {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.holdLocked(n)
}

func (w *window) holdLocked(n int64) {
	if n <= 0 {
		return
	}
	w.bytes += n
	if w.bytes >= w.maxBytes {
		w.closed = true
	}
}

// give frees n slots.
func (w *window) give(n int) {
	if n <= 0 {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.free += n
	if w.free > w.size {
		// A bug, not input: never hand out more than the limit.
		w.free = w.size
	}
	if w.free == w.size {
		// No message holds a slot, so none holds bytes. Bytes whose message was
		// finished under a tracker that was replaced since (its topic was created
		// again) are not given back one by one; they must not close the window for
		// good.
		w.bytes = 0
	}
	w.openLocked()
}

// giveBytes frees the n bytes of a message done, before its slot is freed.
func (w *window) giveBytes(n int64) {
	if n <= 0 {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.bytes = max(w.bytes-n, 0)
	w.openLocked()
}

func (w *window) openLocked() {
	if w.closed && w.free >= w.reopen && w.bytes <= w.reopenBytes {
		w.closed = false
		close(w.opened)
		w.opened = make(chan struct{})
	}
}

// pause stops handing out slots until resume, whatever is free. Pauses nest: the
// output gone and a rewrite waiting its delay each pause and resume on their own.
func (w *window) pause() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.paused++
}

// resume undoes one pause.
func (w *window) resume() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.paused == 0 {
		return
	}
	w.paused--
	if w.paused == 0 {
		close(w.opened)
		w.opened = make(chan struct{})
	}
}

// isClosed reports whether reading waits for slots or bytes.
func (w *window) isClosed() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.closed
}

// taken returns the slots in use.
func (w *window) taken() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.size - w.free
}

// held returns the bytes of line protocol held by the slots in use.
func (w *window) held() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.bytes
}
