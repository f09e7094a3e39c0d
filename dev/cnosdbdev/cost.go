package cnosdbdev

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Cost is what a write costs the server, so that clients meet the throttle a real
// CnosDB puts on them: a fixed price per request, whatever its size, and a price per
// line that grows with its fields and tags. The server serves Cores requests at once;
// a request that finds every core busy waits for one, and each other busy core slows
// it by Contention, as cores that share memory and locks do.
//
// The time is spent waiting, not computing, so that the emulator does not take the
// CPU the processes under test need; what is charged shows in Stats.Charged.
type Cost struct {
	PerRequest time.Duration
	PerLine    time.Duration
	PerField   time.Duration
	PerTag     time.Duration
	Cores      int
	Contention float64
}

// DefaultCost returns the costs measured on a real CnosDB 2.4.3 (singleton, 2 cores,
// loopback; ../shared/cnosdb/API.md): a request costs about 0.55 ms, a line with 3
// float fields and no tags about 2.8 µs, one with 12 float fields and 3 tags about
// 10 µs. Over 2 connections the intake is 1.71 times one connection's, and it stays
// there with 4 and 8.
func DefaultCost() *Cost {
	return &Cost{
		PerRequest: 550 * time.Microsecond,
		PerLine:    550 * time.Nanosecond,
		PerField:   750 * time.Nanosecond,
		PerTag:     200 * time.Nanosecond,
		Cores:      2,
		Contention: 0.17,
	}
}

// Validate reports a cost that cannot be charged.
func (c *Cost) Validate() error {
	if c.PerRequest < 0 || c.PerLine < 0 || c.PerField < 0 || c.PerTag < 0 {
		return fmt.Errorf("cost: negative price in %s", c)
	}
	if c.Cores < 1 {
		return fmt.Errorf("cost: %d cores; at least 1 is needed", c.Cores)
	}
	if c.Contention < 0 {
		return fmt.Errorf("cost: negative contention %g", c.Contention)
	}
	return nil
}

// String describes the cost for logs and reports.
func (c *Cost) String() string {
	return fmt.Sprintf("%s per request + %s per line + %s per field + %s per tag, %d cores (+%.0f%% per other busy core)",
		c.PerRequest, c.PerLine, c.PerField, c.PerTag, c.Cores, 100*c.Contention)
}

// price is what a request of the given shape costs on an idle core.
func (c *Cost) price(lines, fields, tags int) time.Duration {
	return c.PerRequest + time.Duration(lines)*c.PerLine + time.Duration(fields)*c.PerField + time.Duration(tags)*c.PerTag
}

// meter keeps, per core, the time at which it is next free: a request is given the
// core free soonest and ends its price later, so that a late wake-up of this process
// never lowers the server's capacity.
type meter struct {
	cost   Cost
	mu     sync.Mutex
	freeAt []time.Time
}

func newMeter(c *Cost) *meter {
	return &meter{cost: *c, freeAt: make([]time.Time, c.Cores)}
}

// reserve books a core for a request of the given shape arriving at now and returns
// when it is done and the time it was charged.
func (m *meter) reserve(now time.Time, lines, fields, tags int) (end time.Time, charged time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	core := 0
	for i, t := range m.freeAt {
		if t.Before(m.freeAt[core]) {
			core = i
		}
	}
	start := now
	if m.freeAt[core].After(start) {
		start = m.freeAt[core]
	}
	busy := 0
	for i, t := range m.freeAt {
		if i != core && t.After(start) {
			busy++
		}
	}
	charged = time.Duration(float64(m.cost.price(lines, fields, tags)) * (1 + m.cost.Contention*float64(busy)))
	end = start.Add(charged)
	m.freeAt[core] = end
	return end, charged
}

// charge waits until a request of the given shape, arriving now, is done, or until
// ctx ends (the client went away; its core stays booked, as the server's work would).
func (m *meter) charge(ctx context.Context, lines, fields, tags int) time.Duration {
	end, charged := m.reserve(time.Now(), lines, fields, tags)
	wait := time.Until(end)
	if wait <= 0 {
		return charged
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
	return charged
}

// shapeOf counts the lines, fields and tags of parsed lines.
func shapeOf(lines []Line) (fields, tags int) {
	for i := range lines {
		fields += len(lines[i].Fields)
		tags += len(lines[i].Tags)
	}
	return fields, tags
}

// lineShape counts the tags and fields of one line of line protocol without parsing
// it, for the count-only mode: unescaped commas before the first unescaped space are
// tag separators, and those after it, outside double quotes, field separators.
func lineShape(line []byte) (tags, fields int) {
	section := 0 // 0 measurement and tags, 1 fields, 2 timestamp
	quoted, escaped := false, false
	for _, c := range line {
		switch {
		case escaped:
			escaped = false
		case c == '\\':
			escaped = true
		case quoted:
			quoted = c != '"'
		case section == 1 && c == '"':
			quoted = true
		case c == ',' && section == 0:
			tags++
		case c == ',' && section == 1:
			fields++
		case c == ' ':
			section++
			if section == 1 {
				fields = 1
			}
		}
		if section == 2 {
			break
		}
	}
	return tags, fields
}
