package kafka_consumer

import (
	"errors"
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

func testPartition(slots chan struct{}) *partition {
	return &partition{topic: "t", offsets: offsets.New(), counts: &partitionCounts{},
		release: func() { <-slots }, log: testutil.Logger{}}
}

func TestWriterMarksOnlyAfterWriting(t *testing.T) {
	out := &countingWriter{}
	w := newWriter(out, 100, time.Hour)
	slots := make(chan struct{}, 10)
	p := testPartition(slots)
	for off := int64(0); off < 3; off++ {
		slots <- struct{}{}
		require.NoError(t, p.offsets.Add(off))
	}

	require.NoError(t, w.Write([]byte("a v=1 1\n"), []ack{{p, 0}, {p, 1}}))
	require.Equal(t, 0, out.writes, "below the buffer size and before the interval nothing is written")
	require.Equal(t, int64(-1), p.offsets.Mark())

	require.NoError(t, w.Write(make([]byte, 100), []ack{{p, 2}}))
	require.Equal(t, 1, out.writes, "a full buffer is written at once, in one write")
	require.Equal(t, int64(3), p.offsets.Mark())
	require.Empty(t, slots, "every max_undelivered_messages slot is free again")
}

func TestWriterFlushesWhenIdle(t *testing.T) {
	out := &countingWriter{}
	w := newWriter(out, 1<<20, time.Millisecond)
	defer w.Close()
	require.NoError(t, w.Write([]byte("lone v=1 1\n"), nil))
	waitFor(t, "the lone line on the output", func() bool { return out.String() == "lone v=1 1\n" })
}

func TestWriterKeepsItsError(t *testing.T) {
	out := &countingWriter{fail: errors.New("broken pipe")}
	w := newWriter(out, 10, time.Hour)
	slots := make(chan struct{}, 1)
	p := testPartition(slots)
	slots <- struct{}{}
	require.NoError(t, p.offsets.Add(7))
	err := w.Write(make([]byte, 20), []ack{{p, 7}})
	require.ErrorContains(t, err, "writing metrics: broken pipe")
	require.Equal(t, int64(-1), p.offsets.Mark(), "nothing is marked when the write failed")
	require.ErrorIs(t, w.Write(nil, nil), out.fail)
	require.ErrorIs(t, w.Err(), out.fail)
}
