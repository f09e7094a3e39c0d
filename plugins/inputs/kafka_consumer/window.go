package kafka_consumer

import (
	"context"
	"sync"
)

// window holds the max_undelivered_messages slots. Once every slot is taken it stays
// closed until a quarter of them are free again, so that reading resumes in large
// steps: freeing one slot at a time would have the consumer read, write and mark one
// message at a time, and the output send requests of a line or two (the silly window
// syndrome of flow control).
type window struct {
	mu     sync.Mutex
	size   int
	free   int
	reopen int           // free slots at which a closed window opens again
	closed bool          // every slot was taken, and fewer than reopen are free since
	paused bool          // no slot is handed out, however many are free
	opened chan struct{} // closed and replaced when the window opens
}

func newWindow(size int) *window {
	return &window{size: size, free: size, reopen: max(size/4, 1), opened: make(chan struct{})}
}

// tryTake takes a slot if the window is open.
func (w *window) tryTake() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed || w.paused {
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
		if w.tryTake() {
			return true
		}
		w.mu.Lock()
		opened := w.opened
		shut := w.closed || w.paused
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
	if w.closed && w.free >= w.reopen {
		w.closed = false
		close(w.opened)
		w.opened = make(chan struct{})
	}
}

// pause stops handing out slots until resume, whatever is free.
func (w *window) pause() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.paused = true
}

// resume undoes pause.
func (w *window) resume() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.paused {
		return
	}
	w.paused = false
	close(w.opened)
	w.opened = make(chan struct{})
}

// isClosed reports whether reading waits for slots.
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
