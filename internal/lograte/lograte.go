// Package lograte keeps a flood of like lines out of Telegraf's log: a burst of them
// is logged, then one per interval, and the lines held back are counted, so that the
// log still says how many there were.
package lograte

import (
	"sync"
	"time"
)

// Limiter lets through a burst of lines, then one per interval. It is safe for
// concurrent use.
type Limiter struct {
	burst    int
	interval time.Duration

	mu         sync.Mutex
	tokens     int
	last       time.Time // when a token was last taken
	suppressed int64
}

// New returns a limiter that lets burst lines through at once, and one more for each
// interval that passes.
func New(burst int, interval time.Duration) *Limiter {
	return &Limiter{burst: burst, interval: interval, tokens: burst}
}

// Allow reports whether a line may be logged at now; one that may not is counted.
func (l *Limiter) Allow(now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if elapsed := now.Sub(l.last); elapsed >= l.interval && l.tokens < l.burst {
		l.tokens = min(l.burst, l.tokens+int(elapsed/l.interval))
	}
	if l.tokens == 0 {
		l.suppressed++
		return false
	}
	l.tokens--
	l.last = now
	return true
}

// TakeSuppressed returns how many lines were held back since it was last called,
// and starts counting again.
func (l *Limiter) TakeSuppressed() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := l.suppressed
	l.suppressed = 0
	return n
}
