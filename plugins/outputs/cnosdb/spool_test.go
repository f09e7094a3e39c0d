package cnosdb

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/influxdata/telegraf/config"
	"github.com/influxdata/telegraf/testutil"
	"github.com/stretchr/testify/require"

	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/dev/cnosdbdev"
	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/testutil/cnosdbtest"
)

// spoolOn turns the spool on in dir with batches of batchSize lines.
func spoolOn(dir string, batchSize int) func(*CnosDB) {
	return func(c *CnosDB) {
		c.SpoolDir = dir
		c.MetricBatchSize = batchSize
		c.FlushInterval = config.Duration(50 * time.Millisecond)
	}
}

// results collects what OnResult reports.
type results struct {
	mu  sync.Mutex
	all []Result
}

func (r *results) add(res Result) {
	r.mu.Lock()
	r.all = append(r.all, res)
	r.mu.Unlock()
}

// requireInOrder checks that batches were reported whole and one after the other.
func (r *results) requireInOrder(t *testing.T, lines int) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	written := 0
	for i, res := range r.all {
		require.Zero(t, res.Aborted, "batch %d", res.Seq)
		require.Empty(t, res.Rejected, "batch %d", res.Seq)
		if i > 0 {
			require.Equal(t, r.all[i-1].Seq+1, res.Seq, "batches are written in order")
		}
		written += res.Written
	}
	require.Equal(t, lines, written)
}

// A long outage: every batch read goes to disk, memory holds at most the one being
// retried, and when CnosDB is back everything is written in order.
func TestSpoolKeepsMemoryBoundedDuringAnOutage(t *testing.T) {
	target := cnosdbtest.Start(t, cnosdbdev.Options{})
	db := target.NewDatabase(t, "")
	target.Faults().Refuse(true)
	c, logs := startPlugin(t, target, db, spoolOn(t.TempDir(), 50))
	var got results
	c.onResult = got.add

	const batches, total = 200, 200 * 50
	pr, pw := io.Pipe()
	done := make(chan struct{})
	s := openStream(t, c)
	go func() {
		defer close(done)
		feed(t, s, pr)
	}()
	_, err := pw.Write([]byte(sensorLines(total, "spooled")))
	require.NoError(t, err)
	eventually(t, "every batch is in the spool", func() bool {
		return s.spool.status().batches == batches
	})
	st := s.spool.status()
	require.Equal(t, int64(total), st.lines)
	require.LessOrEqual(t, c.stats.inMemoryPeak.Load(), int64(1),
		"only the batch being retried is held in memory, whatever the outage's length")
	require.Zero(t, c.stats.written.Load())
	require.Contains(t, logs.String(), "connection refused")

	target.Faults().Refuse(false)
	require.NoError(t, pw.Close())
	<-done
	require.Equal(t, total, target.Count(t, db, "spooled"))
	got.requireInOrder(t, total)
	require.Equal(t, int64(batches), int64(len(got.all)))
	require.Equal(t, spoolStatus{limit: int64(c.SpoolMaxSize)}, s.spool.status(), "the spool is empty")
	require.LessOrEqual(t, c.stats.inMemoryPeak.Load(), int64(1))
	require.Equal(t, int64(1), target.Faults().Stats().MostAtOnce,
		"with a spool, one request at a time whatever max_in_flight")
}

// countingReader counts what the plugin read from its input.
type countingReader struct {
	r    io.Reader
	read atomic.Int64
}

func (cr *countingReader) Read(p []byte) (int, error) {
	n, err := cr.r.Read(p)
	cr.read.Add(int64(n))
	return n, err
}

// A full spool stops reading the input, says so, and drains when CnosDB is back.
func TestSpoolFullStopsReading(t *testing.T) {
	target := cnosdbtest.Start(t, cnosdbdev.Options{})
	db := target.NewDatabase(t, "")
	target.Faults().Refuse(true)
	c, logs := startPlugin(t, target, db, func(c *CnosDB) {
		spoolOn(t.TempDir(), 100)(c)
		c.MaxRequestSize = 16 << 10
		c.MaxLineSize = 4 << 10
		c.SpoolMaxSize = 64 << 10
	})
	const total = 20000 // about 1.7 MiB, far more than the spool takes
	input := sensorLines(total, "full")
	in := &countingReader{r: strings.NewReader(input)}
	done := make(chan struct{})
	s := openStream(t, c)
	go func() {
		defer close(done)
		feed(t, s, in)
	}()
	eventually(t, "the spool reports it is full", func() bool {
		return strings.Contains(logs.String(), "W! [outputs.cnosdb] spool full: ")
	})
	require.Regexp(t, `spool full: [\d.]+ KiB in \d+ batches \(\d+ lines\), limit spool_max_size = 64.0 KiB, `+
		`the next batch needs [\d.]+ KiB; oldest batch spooled \S+ ago; not reading from Telegraf until CnosDB takes some`,
		logs.String())
	st := s.spool.status()
	require.LessOrEqual(t, st.bytes, int64(64<<10), "the spool keeps to its limit")
	// Reading stopped: what was read fits in the spool, the batch being filled and one
	// read buffer, far from the whole input.
	require.Less(t, in.read.Load(), int64(len(input)/4), "the input is not read while the spool is full")
	require.LessOrEqual(t, c.stats.inMemoryPeak.Load(), int64(1))

	target.Faults().Refuse(false)
	<-done
	require.Equal(t, total, target.Count(t, db, "full"))
	require.Equal(t, int64(len(input)), in.read.Load())
	require.Contains(t, logs.String(), "spool: room again after ")
}

// spoolWhileDown feeds lines to a plugin spooling in dir, in batches of 100, while
// CnosDB refuses connections, and stops it once all the batches are in the spool.
func spoolWhileDown(t *testing.T, target *cnosdbtest.Target, db, dir, lines string, batches int64) {
	t.Helper()
	target.Faults().Refuse(true)
	defer target.Faults().Refuse(false)
	c, _ := startPlugin(t, target, db, spoolOn(dir, 100))
	pr, pw := io.Pipe()
	done := make(chan struct{})
	s := openStream(t, c)
	go func() {
		defer close(done)
		feed(t, s, pr)
	}()
	_, err := pw.Write([]byte(lines))
	require.NoError(t, err)
	eventually(t, "every batch is in the spool", func() bool { return s.spool.status().batches == batches })
	c.Abort()
	require.NoError(t, pw.Close())
	<-done
	s.Close()
	require.NoError(t, c.Close())
}

// spoolSegments returns the segment files of a spool directory.
func spoolSegments(t *testing.T, dir string) []segmentFile {
	t.Helper()
	segs, err := listSegments(dir)
	require.NoError(t, err)
	return segs
}

// A crash can leave the last entry cut short, and a disk can damage one in the middle:
// the plugin says where, and writes every intact batch.
func TestSpoolSurvivesADamagedEntryAndACutTail(t *testing.T) {
	target := cnosdbtest.Start(t, cnosdbdev.Options{})
	db := target.NewDatabase(t, "")
	dir := t.TempDir()

	// CnosDB is down: five batches of 100 lines wait in the spool when the plugin stops.
	spoolWhileDown(t, target, db, dir, sensorLines(500, "damaged"), 5)

	segs := spoolSegments(t, dir)
	require.Len(t, segs, 1)
	seg := segs[0].path
	data, err := os.ReadFile(seg)
	require.NoError(t, err)
	// Flip a byte in the lines of the second entry.
	size, w := binary.Uvarint(data)
	second := int(size) + w
	size, w = binary.Uvarint(data[second:])
	data[second+w+int(size)-10] ^= 0xff
	// A sixth entry cut short, as a crash in the middle of appending leaves it.
	tail := len(data)
	data = binary.AppendUvarint(data, 5000)
	data = append(data, "only part of an entry"...)
	require.NoError(t, os.WriteFile(seg, data, 0o640))

	// Started again with CnosDB up and nothing new on stdin: the intact batches are written.
	var got results
	c2, logs := startPlugin(t, target, db, func(c *CnosDB) {
		spoolOn(dir, 100)(c)
		c.onResult = got.add // set before the replay starts
	})
	s2 := openStream(t, c2)
	feed(t, s2, strings.NewReader(""))
	require.Equal(t, 400, target.Count(t, db, "damaged"), "every intact batch is written")
	require.Contains(t, logs.String(), fmt.Sprintf(
		"W! [outputs.cnosdb] spool: %s: entry 6 at offset %d is cut short or damaged (%d bytes from there to the end of the file); "+
			"probably cut by a crash", seg, tail, len(data)-tail))
	require.Contains(t, logs.String(), "kept the 5 intact entries before it")
	require.Contains(t, logs.String(), fmt.Sprintf(
		"E! [outputs.cnosdb] spool: batch 2 (%s, offset %d) is damaged (checksum ", seg, second))
	require.Contains(t, logs.String(), "replaying 5 batches (500 lines,")
	require.Len(t, got.all, 4)
	require.Equal(t, []uint64{1, 3, 4, 5}, []uint64{got.all[0].Seq, got.all[1].Seq, got.all[2].Seq, got.all[3].Seq})
	s2.Close()
	require.NoError(t, c2.Close())
	segs = spoolSegments(t, dir)
	require.Len(t, segs, 1)
	info, err := os.Stat(segs[0].path)
	require.NoError(t, err)
	require.Zero(t, info.Size(), "written batches are removed from the spool")
}

func TestSpoolOptionsAreChecked(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(file, nil, 0o600))
	tests := []struct {
		name   string
		change func(*CnosDB)
		want   string
	}{
		{"zero size", func(c *CnosDB) { c.SpoolMaxSize = 0 }, "spool_max_size: must be positive, got 0 B"},
		{"smaller than two requests", func(c *CnosDB) { c.SpoolDir, c.SpoolMaxSize = t.TempDir(), 20<<20 },
			"spool_max_size: must be at least twice max_request_size (16.0 MiB), so that a whole batch fits; got 20.0 MiB"},
		{"cannot create", func(c *CnosDB) { c.SpoolDir = "/proc/nonexistent/spool" },
			`spool_dir: cannot create "/proc/nonexistent/spool": mkdir /proc/nonexistent: no such file or directory`},
		{"a file", func(c *CnosDB) { c.SpoolDir = file }, fmt.Sprintf("spool_dir: cannot create %q", file)},
		{"not writable", func(c *CnosDB) { c.SpoolDir = "/proc/self" }, `spool_dir: "/proc/self" is not writable`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := New()
			tt.change(c)
			require.ErrorContains(t, c.Init(), tt.want)
		})
	}

	// Without spool_dir the size is not held against max_request_size.
	c := New()
	c.SpoolMaxSize = 1 << 20
	require.NoError(t, c.Init())
}

func TestSpoolRefusesASecondProcess(t *testing.T) {
	target := cnosdbtest.Start(t, cnosdbdev.Options{})
	db := target.NewDatabase(t, "")
	dir := t.TempDir()
	first, _ := startPlugin(t, target, db, spoolOn(dir, 100))
	openStream(t, first)

	second := New()
	second.URLs = []string{target.URL}
	second.Database, second.CreateDatabase, second.StatsInterval = db, false, 0
	second.Username, second.Password = target.User, config.NewSecret([]byte(target.Password))
	second.Log = testutil.Logger{Quiet: true}
	spoolOn(dir, 100)(second)
	require.NoError(t, second.Init())
	require.NoError(t, second.Connect())
	defer second.Close()
	_, err := NewStream(second)
	require.EqualError(t, err, fmt.Sprintf(
		"spool_dir: %q is in use by another process (pid %d); give every telegraf-cnosdb its own spool_dir", dir, os.Getpid()))
}

// Damage that breaks the framing of an older file: the log cannot find the entries
// after it, so the spool is written anew with every intact entry.
func TestSpoolRebuildsAroundBrokenFraming(t *testing.T) {
	defer func(size int) { spoolSegmentSize = size }(spoolSegmentSize)
	spoolSegmentSize = 16 << 10 // two batches per file
	target := cnosdbtest.Start(t, cnosdbdev.Options{})
	db := target.NewDatabase(t, "")
	dir := t.TempDir()

	spoolWhileDown(t, target, db, dir, sensorLines(2000, "reframed"), 20)

	segs := spoolSegments(t, dir)
	require.Greater(t, len(segs), 5)
	first := segs[0].path
	data, err := os.ReadFile(first)
	require.NoError(t, err)
	size, w := binary.Uvarint(data)
	second := int(size) + w
	require.Equal(t, 2, binary.PutUvarint(data[second:], 16383), "the second entry's length, two bytes, now runs past the file's end")
	require.NoError(t, os.WriteFile(first, data, 0o640))

	c2, logs := startPlugin(t, target, db, spoolOn(dir, 100))
	s2 := openStream(t, c2)
	feed(t, s2, strings.NewReader(""))
	require.Equal(t, 1900, target.Count(t, db, "reframed"), "every intact batch is written")
	require.Contains(t, logs.String(), fmt.Sprintf(
		"E! [outputs.cnosdb] spool: %s: entry 2 at offset %d is cut short or damaged (%d bytes from there to the end of the file); "+
			"writing the spool anew with every intact entry", first, second, len(data)-second))
	require.Regexp(t, `E! \[outputs.cnosdb\] spool: kept 19 intact entries; the damaged files are in \S+/damaged-\d+T[\d.]+`, logs.String())
	require.Contains(t, logs.String(), "replaying 19 batches (1900 lines,")
	aside, err := filepath.Glob(filepath.Join(dir, "damaged-*", "*"))
	require.NoError(t, err)
	require.Len(t, aside, len(segs), "the old files are kept for a look")
}
