package execdout

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/influxdata/telegraf"
	"github.com/stretchr/testify/require"

	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/internal/stderrlog"
)

// recordingSink keeps every flushed batch.
type recordingSink struct {
	mu       sync.Mutex
	pending  []string
	size     int
	flushed  [][]string
	flushes  chan int
	drained  bool
	rejectIf string
}

func newRecordingSink() *recordingSink { return &recordingSink{flushes: make(chan int, 100)} }

func (s *recordingSink) Add(entry []byte, _ int64) error {
	if s.rejectIf != "" && strings.Contains(string(entry), s.rejectIf) {
		return errors.New("malformed: " + string(entry))
	}
	s.pending = append(s.pending, string(entry))
	s.size += len(entry)
	return nil
}

func (s *recordingSink) Pending() (int, int) { return len(s.pending), s.size }

func (s *recordingSink) Flush() {
	s.mu.Lock()
	s.flushed = append(s.flushed, s.pending)
	n := len(s.pending)
	s.mu.Unlock()
	s.pending, s.size = nil, 0
	s.flushes <- n
}

func (s *recordingSink) Drain() { s.drained = true }

func (s *recordingSink) batches() [][]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]string(nil), s.flushed...)
}

func testConfig(log telegraf.Logger) Config {
	return Config{
		BatchEntries:  3,
		BatchBytes:    1 << 20,
		FlushInterval: time.Hour,
		MaxEntrySize:  100,
		ShutdownGrace: time.Second,
		Log:           log,
	}
}

func TestRunBatchesBySizeAndFlushesAtEOF(t *testing.T) {
	sink := newRecordingSink()
	var logs bytes.Buffer
	in := strings.NewReader("a x=1\nb x=2\nc x=3\nd x=4\ne x=5\n")
	require.NoError(t, Run(context.Background(), in, sink, testConfig(stderrlog.NewWriter(&logs, "test", telegraf.Debug))))
	require.Equal(t, [][]string{{"a x=1", "b x=2", "c x=3"}, {"d x=4", "e x=5"}}, sink.batches())
	require.True(t, sink.drained)
	require.Empty(t, logs.String())
}

func TestRunFlushesByBytes(t *testing.T) {
	sink := newRecordingSink()
	cfg := testConfig(stderrlog.NewWriter(io.Discard, "test", telegraf.Debug))
	cfg.BatchEntries = 1000
	cfg.BatchBytes = 10
	require.NoError(t, Run(context.Background(), strings.NewReader("a x=1\nb x=2\nc x=3\n"), sink, cfg))
	require.Equal(t, [][]string{{"a x=1", "b x=2"}, {"c x=3"}}, sink.batches())
}

func TestRunFlushesAnIdleBatch(t *testing.T) {
	sink := newRecordingSink()
	pr, pw := io.Pipe()
	cfg := testConfig(stderrlog.NewWriter(io.Discard, "test", telegraf.Debug))
	cfg.FlushInterval = 20 * time.Millisecond
	done := make(chan error, 1)
	go func() { done <- Run(context.Background(), pr, sink, cfg) }()

	_, err := pw.Write([]byte("lonely x=1\n"))
	require.NoError(t, err)
	// The input stays open: only the interval can flush the entry.
	select {
	case n := <-sink.flushes:
		require.Equal(t, 1, n)
	case <-time.After(30 * time.Second):
		t.Fatal("an idle entry was not flushed")
	}
	require.NoError(t, pw.Close())
	require.NoError(t, <-done)
	require.Equal(t, [][]string{{"lonely x=1"}}, sink.batches())
}

// urgentSink asks for a flush after every entry that starts with "now".
type urgentSink struct {
	*recordingSink
	urgent bool
}

func (s *urgentSink) Add(entry []byte, line int64) error {
	s.urgent = strings.HasPrefix(string(entry), "now")
	return s.recordingSink.Add(entry, line)
}

func (s *urgentSink) FlushNow() bool { return s.urgent }

func TestRunFlushesWhenTheSinkAsks(t *testing.T) {
	sink := &urgentSink{recordingSink: newRecordingSink()}
	cfg := testConfig(stderrlog.NewWriter(io.Discard, "test", telegraf.Debug))
	cfg.BatchEntries = 1000
	in := strings.NewReader("a x=1\nnow x=2\nb x=3\nc x=4\nnow x=5\nd x=6\n")
	require.NoError(t, Run(context.Background(), in, sink, cfg))
	require.Equal(t, [][]string{{"a x=1", "now x=2"}, {"b x=3", "c x=4", "now x=5"}, {"d x=6"}}, sink.batches())
}

func TestRunLogsBadEntriesAndGoesOn(t *testing.T) {
	sink := newRecordingSink()
	sink.rejectIf = "garbage"
	var logs bytes.Buffer
	long := "m x=\"" + strings.Repeat("v", 200) + "\""
	in := strings.NewReader("a x=1\ngarbage\n" + long + "\nb x=2\n")
	require.NoError(t, Run(context.Background(), in, sink, testConfig(stderrlog.NewWriter(&logs, "test", telegraf.Debug))))
	require.Equal(t, [][]string{{"a x=1", "b x=2"}}, sink.batches())
	require.Contains(t, logs.String(), "E! [test] stdin: malformed: garbage\n")
	require.Contains(t, logs.String(), "E! [test] stdin: line 3: entry of 207 bytes exceeds the limit of 100 bytes, skipped\n")
}

func TestRunStopsAfterGraceWhenInputStaysOpen(t *testing.T) {
	sink := newRecordingSink()
	pr, pw := io.Pipe()
	defer pw.Close()
	cfg := testConfig(stderrlog.NewWriter(io.Discard, "test", telegraf.Debug))
	cfg.ShutdownGrace = 2 * time.Second
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, pr, sink, cfg) }()
	_, err := pw.Write([]byte("a x=1\n"))
	require.NoError(t, err)
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after the grace period")
	}
	// Everything read before the stop is flushed.
	require.Equal(t, [][]string{{"a x=1"}}, sink.batches())
}

// The end of stdin is reported before the last batch is flushed and drained: a stop
// under Telegraf starts there, and the time it allows counts from it.
func TestRunReportsTheEndOfInputBeforeDraining(t *testing.T) {
	sink := newRecordingSink()
	cfg := testConfig(stderrlog.NewWriter(io.Discard, "test", telegraf.Debug))
	var ended []int
	cfg.InputEnded = func() { ended = append(ended, len(sink.batches())) }
	require.NoError(t, Run(context.Background(), strings.NewReader("a x=1\nb x=2\nc x=3\nd x=4\n"), sink, cfg))
	require.Equal(t, []int{1}, ended, "once, before the last batch was flushed")
	require.True(t, sink.drained)

	// A stop that ends reading before stdin does is no end of the input.
	pr, pw := io.Pipe()
	defer pw.Close()
	ended = nil
	cfg.ShutdownGrace = 10 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.NoError(t, Run(ctx, pr, newRecordingSink(), cfg))
	require.Empty(t, ended)
}
