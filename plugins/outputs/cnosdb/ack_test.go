package cnosdb

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/influxdata/telegraf/config"
	"github.com/influxdata/telegraf/testutil"
	"github.com/stretchr/testify/require"

	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/internal/ackproto"
	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/internal/cnosdbdev"
	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/internal/cnosdbtest"
)

// ackListener stands for the Kafka input: it records the messages on its socket, and
// calls onDone (if set) as each "done" arrives.
type ackListener struct {
	path   string
	mu     sync.Mutex
	got    []string
	onDone func(id string)
}

func listenForAcks(t *testing.T) *ackListener {
	t.Helper()
	dir, err := os.MkdirTemp("", "ack") // short: a socket path takes 107 bytes at most
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	l := &ackListener{path: filepath.Join(dir, "ack.sock")}
	ln, err := net.Listen("unix", l.path)
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				sc := bufio.NewScanner(conn)
				for sc.Scan() {
					if id, ok := strings.CutPrefix(sc.Text(), "done "); ok && l.onDone != nil {
						l.onDone(id)
					}
					l.mu.Lock()
					l.got = append(l.got, sc.Text())
					l.mu.Unlock()
				}
			}()
		}
	}()
	return l
}

func (l *ackListener) messages() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.got...)
}

func markerLine(socket string, seq uint64) string {
	return string(ackproto.AppendMarker(nil, ackproto.Marker{Socket: socket, ID: ackproto.ID{Instance: "in", Seq: seq}.String()}, time.Unix(1, 0)))
}

// waitingMarkerLine is the marker of an input that reads nothing more until it hears
// "done".
func waitingMarkerLine(socket string, seq uint64) string {
	return string(ackproto.AppendMarker(nil, ackproto.Marker{Socket: socket, ID: ackproto.ID{Instance: "in", Seq: seq}.String(), Waiting: true}, time.Unix(1, 0)))
}

// A marker that follows fewer lines than it counts since its input's marker before
// is answered "lost"; lines of another input in between never make a loss up.
func TestMarkerAfterDroppedLinesIsLost(t *testing.T) {
	one, other := listenForAcks(t), listenForAcks(t)
	a := newAcks(testutil.Logger{Quiet: true})
	m := func(socket string, seq uint64, lines int64) []byte {
		id := ackproto.ID{Instance: "in", Seq: seq}.String()
		return ackproto.AppendMarker(nil, ackproto.Marker{Socket: socket, ID: id, Lines: lines}, time.Unix(1, 0))
	}
	a.marker(m(one.path, 1, 10), 0, 11, 10)  // 10 lines, then the marker
	a.marker(m(other.path, 1, 7), 0, 19, 17) // the other input's 7 lines
	a.marker(m(one.path, 2, 10), 0, 30, 27)  // 3 of the other's and 7 of these: 10
	a.marker(m(one.path, 3, 10), 0, 40, 36)  // 9 of 10: one dropped
	a.marker(m(other.path, 2, 3), 0, 41, 36) // 19 lines since its last: no loss
	a.marker(m(one.path, 4, 0), 0, 42, 36)   // a marker that does not count
	require.Eventually(t, func() bool { return len(one.messages()) == 7 && len(other.messages()) == 4 }, 10*time.Second, 5*time.Millisecond)
	require.Equal(t, []string{"received in/0/1", "done in/0/1", "received in/0/2", "done in/0/2", "lost in/0/3",
		"received in/0/4", "done in/0/4"}, one.messages())
	require.Equal(t, []string{"received in/0/1", "done in/0/1", "received in/0/2", "done in/0/2"}, other.messages())
}

func TestAcksFollowBatchResults(t *testing.T) {
	l := listenForAcks(t)
	a := newAcks(testutil.Logger{})
	m := func(seq uint64) []byte {
		return []byte(strings.TrimSuffix(markerLine(l.path, seq), "\n"))
	}
	// Nothing flushed, nothing pending: done at once.
	require.False(t, a.marker(m(1), 0, 1, 0))
	// Lines in the batch being filled: the marker waits for that batch (seq 1).
	require.False(t, a.marker(m(2), 5, 2, 5))
	a.flushed(1)
	// Empty batch being filled, batch 1 not final: attached to it.
	require.False(t, a.marker(m(3), 0, 3, 5))
	require.False(t, a.marker(m(4), 3, 4, 8))
	a.flushed(2)
	a.result(Result{Seq: 1, Lines: 5, Written: 5})
	want := []string{"received in/0/1", "done in/0/1", "received in/0/2", "received in/0/3", "received in/0/4",
		"done in/0/2", "done in/0/3"}
	require.Eventually(t, func() bool { return len(l.messages()) == len(want) }, 10*time.Second, 5*time.Millisecond)
	require.Equal(t, want, l.messages())

	// An aborted batch confirms nothing.
	a.result(Result{Seq: 2, Lines: 3, Aborted: 3})
	a.close(5 * time.Second)
	require.Equal(t, want, l.messages())
}

func TestMarkersAreConfirmedOnlyOnceWritten(t *testing.T) {
	target := cnosdbtest.Start(t, cnosdbdev.Options{})
	db := target.NewDatabase(t, "")
	c, _ := startPlugin(t, target, db, func(c *CnosDB) {
		c.MetricBatchSize = 100
		c.FlushInterval = config.Duration(50 * time.Millisecond)
	})
	l := listenForAcks(t)
	// Each "done" must find every line before its marker in CnosDB.
	var mu sync.Mutex
	var wrong []string
	l.onDone = func(id string) {
		parsed, err := ackproto.ParseID(id)
		if err != nil {
			return
		}
		if n := target.Count(t, db, "sensor"); n < int(parsed.Seq)*150 {
			mu.Lock()
			wrong = append(wrong, fmt.Sprintf("%s done with %d lines in CnosDB, expected %d", id, n, parsed.Seq*150))
			mu.Unlock()
		}
	}
	lines := strings.Split(strings.TrimSuffix(sensorLines(600, "sensor"), "\n"), "\n")
	var in strings.Builder
	for i, line := range lines {
		in.WriteString(line + "\n")
		if (i+1)%150 == 0 {
			in.WriteString(markerLine(l.path, uint64((i+1)/150)))
		}
	}
	feed(t, c, strings.NewReader(in.String()))
	c.Close()
	require.Equal(t, 600, target.Count(t, db, "sensor"))
	require.NotContains(t, target.SQL(t, db, "SHOW TABLES"), ackproto.Measurement, "a marker reached CnosDB")
	done := func() []string {
		var ids []string
		for _, msg := range l.messages() {
			if id, ok := strings.CutPrefix(msg, "done "); ok {
				ids = append(ids, id)
			}
		}
		return ids
	}
	require.Eventually(t, func() bool { return len(done()) >= 4 }, time.Minute, 5*time.Millisecond)
	require.Equal(t, []string{"in/0/1", "in/0/2", "in/0/3", "in/0/4"}, done())
	mu.Lock()
	defer mu.Unlock()
	require.Empty(t, wrong)
}

// TestAWaitingMarkerFlushesAtOnce: an input that waits on the lines before its
// marker gets them written without waiting for a full batch, for flush_interval (an
// hour here) or for stdin to go idle (never here).
func TestAWaitingMarkerFlushesAtOnce(t *testing.T) {
	target := cnosdbtest.Start(t, cnosdbdev.Options{})
	db := target.NewDatabase(t, "")
	c, _ := startPlugin(t, target, db, func(c *CnosDB) {
		c.FlushInterval = config.Duration(time.Hour)
	})
	cfg := c.StdinConfig(c.Log)
	cfg.IdleFlush = 0
	l := listenForAcks(t)
	pr, pw := io.Pipe()
	fed := make(chan struct{})
	go func() {
		defer close(fed)
		feedWith(t, c, pr, cfg)
	}()
	_, err := io.WriteString(pw, sensorLines(150, "sensor")+waitingMarkerLine(l.path, 1))
	require.NoError(t, err)
	require.Eventually(t, func() bool { return slices.Contains(l.messages(), "done in/0/1") },
		time.Minute, 5*time.Millisecond, "the lines before the marker were not written while stdin stayed open")
	require.Equal(t, 150, target.Count(t, db, "sensor"))
	require.NoError(t, pw.Close())
	<-fed
	c.Close()
}

// TestAnIdleStreamIsFlushed: lines followed by a marker that does not wait are written
// once stdin has been quiet for a moment, long before flush_interval.
func TestAnIdleStreamIsFlushed(t *testing.T) {
	target := cnosdbtest.Start(t, cnosdbdev.Options{})
	db := target.NewDatabase(t, "")
	c, _ := startPlugin(t, target, db, func(c *CnosDB) {
		c.FlushInterval = config.Duration(time.Hour)
	})
	l := listenForAcks(t)
	pr, pw := io.Pipe()
	fed := make(chan struct{})
	go func() {
		defer close(fed)
		feed(t, c, pr)
	}()
	_, err := io.WriteString(pw, sensorLines(150, "sensor")+markerLine(l.path, 1))
	require.NoError(t, err)
	require.Eventually(t, func() bool { return slices.Contains(l.messages(), "done in/0/1") },
		time.Minute, 5*time.Millisecond, "the lines of an idle stream were not written while stdin stayed open")
	require.Equal(t, 150, target.Count(t, db, "sensor"))
	require.NoError(t, pw.Close())
	<-fed
	c.Close()
}

// TestMarkersDoNotCutRequests: markers that do not wait, one every 150 lines of a
// stream that keeps coming, leave the requests as large as metric_batch_size.
func TestMarkersDoNotCutRequests(t *testing.T) {
	target := cnosdbtest.Start(t, cnosdbdev.Options{})
	db := target.NewDatabase(t, "")
	c, _ := startPlugin(t, target, db, func(c *CnosDB) {
		c.MetricBatchSize = 1000
		c.FlushInterval = config.Duration(time.Hour)
	})
	cfg := c.StdinConfig(c.Log)
	cfg.IdleFlush = 0 // a pause of this machine must not look like an idle stream
	l := listenForAcks(t)
	lines := strings.Split(strings.TrimSuffix(sensorLines(3000, "sensor"), "\n"), "\n")
	var in strings.Builder
	for i, line := range lines {
		in.WriteString(line + "\n")
		if (i+1)%150 == 0 {
			in.WriteString(markerLine(l.path, uint64((i+1)/150)))
		}
	}
	before := target.Faults().Requests("/api/v1/write")
	feedWith(t, c, strings.NewReader(in.String()), cfg)
	c.Close()
	require.Equal(t, 3000, target.Count(t, db, "sensor"))
	require.Equal(t, int64(3), target.Faults().Requests("/api/v1/write")-before, "3,000 lines in batches of 1,000")
	require.Eventually(t, func() bool { return slices.Contains(l.messages(), "done in/0/20") }, time.Minute, 5*time.Millisecond)
}
