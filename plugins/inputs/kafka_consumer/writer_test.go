package kafka_consumer

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/influxdata/telegraf/testutil"

	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/internal/offsets"
)

type countingWriter struct {
	syncBuffer
	writes int
	fail   error
}

func (w *countingWriter) Write(p []byte) (int, error) {
	if w.fail != nil {
		return 0, w.fail
	}
	w.writes++
	return w.syncBuffer.Write(p)
}

func testPartition() *partition {
	return &partition{topic: "t", offsets: offsets.New(), counts: &partitionCounts{}, log: testutil.Logger{}}
}

func TestWriterMarksOnlyAfterWriting(t *testing.T) {
	out := &countingWriter{}
	w := newWriter(out, 100, time.Hour)
	freed := 0
	w.free = func(n int) { freed += n }
	p := testPartition()
	for off := int64(0); off < 3; off++ {
		require.NoError(t, p.offsets.Add(off, time.Time{}))
	}

	require.NoError(t, w.Write([]byte("a v=1 1\n"), 1, []ack{{p, 0}, {p, 1}}))
	require.Equal(t, 0, out.writes, "below the buffer size and before the interval nothing is written")
	require.Equal(t, int64(-1), p.offsets.Mark())

	require.NoError(t, w.Write(make([]byte, 100), 0, []ack{{p, 2}}))
	require.Equal(t, 1, out.writes, "a full buffer is written at once, in one write")
	require.Equal(t, int64(3), p.offsets.Mark())
	require.Equal(t, 3, freed, "every max_undelivered_messages slot is free again")
}

func TestWriterFlushesWhenIdle(t *testing.T) {
	out := &countingWriter{}
	w := newWriter(out, 1<<20, time.Millisecond)
	defer w.Close()
	require.NoError(t, w.Write([]byte("lone v=1 1\n"), 1, nil))
	waitFor(t, "the lone line on the output", func() bool { return out.String() == "lone v=1 1\n" })
}

func TestWriterKeepsItsError(t *testing.T) {
	out := &countingWriter{fail: errors.New("broken pipe")}
	w := newWriter(out, 10, time.Hour)
	p := testPartition()
	require.NoError(t, p.offsets.Add(7, time.Time{}))
	err := w.Write(make([]byte, 20), 0, []ack{{p, 7}})
	require.ErrorContains(t, err, "writing metrics: broken pipe")
	require.Equal(t, int64(-1), p.offsets.Mark(), "nothing is marked when the write failed")
	require.ErrorIs(t, w.Write(nil, 0, nil), out.fail)
	require.ErrorIs(t, w.Err(), out.fail)
}

// While the acker refuses markers (too many wait for "done"), the lines are written
// and their acks wait in the writer; markPending gives them a marker later, saying
// whether the reader waits for it.
func TestWriterHoldsAcksUntilAMarkerIsFree(t *testing.T) {
	out := &countingWriter{}
	w := newWriter(out, 1<<20, time.Hour)
	var markers []bool    // the waiting flag of each marker written
	var batches []string  // the lines each marker's batch holds
	var counts [][2]int64 // the lines of each batch, and those its marker counts
	refuse := true
	w.hold = func(h holding, acks []ack, _ time.Time, waiting bool) ([]byte, bool) {
		if refuse {
			return h.dst, false
		}
		markers = append(markers, waiting)
		batches = append(batches, string(h.before)+string(h.dst))
		counts = append(counts, [2]int64{h.lines, h.markerLines})
		return append(h.dst, fmt.Sprintf("marker acks=%d\n", len(acks))...), true
	}
	p := testPartition()
	require.NoError(t, p.offsets.Add(0, time.Time{}))
	require.NoError(t, p.offsets.Add(1, time.Time{}))
	require.NoError(t, w.Write([]byte("a v=1 1\n"), 1, []ack{{p, 0}}))
	require.NoError(t, w.FlushWaiting())
	require.Equal(t, "a v=1 1\n", out.String(), "the lines go out without a marker")
	require.NoError(t, w.Write([]byte("b v=1 1\n"), 1, []ack{{p, 1}}))
	require.NoError(t, w.Flush())

	refuse = false
	w.markPending()
	require.Equal(t, "a v=1 1\nb v=1 1\nmarker acks=2\n", out.String())
	require.Equal(t, []bool{true}, markers, "the reader that waited is still waiting")
	require.Equal(t, []string{"a v=1 1\nb v=1 1\n"}, batches, "the batch holds the lines written before its marker")
	require.Equal(t, [][2]int64{{2, 2}}, counts, "lines, not newline bytes, are counted")
	w.markPending()
	require.Len(t, markers, 1, "nothing left to mark")
}

// Batches written again go out whole and in order, before anything written after, and
// what waits for a marker follows them.
func TestWriterRewritesBeforeAnythingNew(t *testing.T) {
	out := &countingWriter{}
	w := newWriter(out, 1<<20, time.Hour)
	w.hold = func(h holding, _ []ack, _ time.Time, _ bool) ([]byte, bool) { return h.dst, false }
	p := testPartition()
	require.NoError(t, p.offsets.Add(0, time.Time{}))
	require.NoError(t, w.Write([]byte("waits v=1 1\n"), 1, []ack{{p, 0}}))
	require.NoError(t, w.Flush())
	require.NoError(t, w.Write([]byte("new v=1 1\n"), 1, nil))
	require.NoError(t, w.rewrite(func(out stdout) error {
		require.Equal(t, int64(1), out.markerLines(), "the line written without a marker")
		return out.writeMarked([]byte("old v=1 1\nold v=2 1\n"))
	}))
	require.Equal(t, int64(1), w.sinceMarker, "what waits for a marker, written again after the rewrite")
	require.NoError(t, w.Flush())
	require.Equal(t, "waits v=1 1\nold v=1 1\nold v=2 1\nwaits v=1 1\nnew v=1 1\n", out.String())
}

// Lines reach stdout in writes of at most a pipe's atomic size, each ending at a line's
// end, so that a kill never leaves a cut line in the pipe; a longer line goes whole.
func TestWriteWholeLines(t *testing.T) {
	var buf []byte
	for i := range 500 {
		buf = fmt.Appendf(buf, "sensor id=%di,v=%d.5 %d\n", i, i, 1700000000000000000+i)
	}
	long := append(bytes.Repeat([]byte("x"), 2*pipeBuf), '\n')
	buf = append(buf, long...)
	buf = append(buf, "tail v=1 1\n"...)
	out := &recordingWriter{}
	require.NoError(t, writeWholeLines(out, buf))
	require.Equal(t, string(buf), string(bytes.Join(out.writes, nil)))
	for _, w := range out.writes {
		require.Equal(t, byte('\n'), w[len(w)-1], "every write ends a line")
		if len(w) > pipeBuf {
			require.Equal(t, string(long), string(w), "only a line longer than a pipe's atomic size goes over it")
		}
	}
	require.Greater(t, len(out.writes), len(buf)/pipeBuf)
}

type recordingWriter struct{ writes [][]byte }

func (w *recordingWriter) Write(p []byte) (int, error) {
	w.writes = append(w.writes, append([]byte(nil), p...))
	return len(p), nil
}
