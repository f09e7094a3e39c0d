package kafka_consumer

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/influxdata/telegraf/testutil"
	"github.com/stretchr/testify/require"

	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/internal/ackproto"
)

// ackRig is an acker whose effects are recorded. mu guards them against the timers
// of delayed rewrites.
type ackRig struct {
	mu        sync.Mutex
	a         *acker
	completed []int64  // offsets marked done
	written   []string // what was written again, line by line
	log       *testutil.CaptureLogger
	paused    int // pause(true) calls less pause(false) calls
	macs      map[ackproto.ID]string
	given     []int64 // offsets given up on
}

func newAckRig() *ackRig {
	r := &ackRig{log: &testutil.CaptureLogger{}, macs: make(map[ackproto.ID]string)}
	r.a = newAcker("/tmp/x.sock", time.Minute, 3, r.log)
	r.a.complete = func(acks []ack) {
		for _, a := range acks {
			r.completed = append(r.completed, a.offset)
		}
	}
	r.a.giveUp = func(acks []ack, _ int64) {
		for _, a := range acks {
			r.given = append(r.given, a.offset)
		}
	}
	r.a.pause = func(on bool) {
		r.mu.Lock()
		defer r.mu.Unlock()
		if on {
			r.paused++
		} else {
			r.paused--
		}
	}
	r.a.rewrite = func(fn func(out stdout) error) error {
		r.mu.Lock()
		defer r.mu.Unlock()
		return fn(rigStdout{r})
	}
	return r
}

type rigStdout struct{ r *ackRig }

func (rigStdout) markerLines() int64 { return 0 }

func (s rigStdout) writeMarked(b []byte) error {
	s.r.written = append(s.r.written, strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")...)
	return nil
}

// hold writes a batch of the offsets, as line "m v=<offset> 1" each, and returns its
// marker's id.
func (r *ackRig) hold(t *testing.T, offsets ...int64) ackproto.ID {
	t.Helper()
	acks := make([]ack, len(offsets))
	var lines string
	for i, o := range offsets {
		acks[i] = ack{offset: o}
		lines += fmt.Sprintf("m v=%d 1\n", o)
	}
	n := int64(len(offsets))
	line, held := r.a.hold(holding{dst: []byte(lines), lines: n, markerLines: n}, acks, time.Now(), false)
	require.True(t, held)
	return r.markerID(t, strings.TrimPrefix(string(line), lines))
}

// markerID parses a marker line and keeps its HMAC for the answers to it.
func (r *ackRig) markerID(t *testing.T, line string) ackproto.ID {
	t.Helper()
	m, err := ackproto.ParseMarker([]byte(strings.TrimSuffix(line, "\n")))
	require.NoError(t, err)
	require.Equal(t, "/tmp/x.sock", m.Socket)
	require.True(t, r.a.key.Verify(m), "signed with the acker's key")
	r.macs[m.ID] = m.MAC
	return m.ID
}

// handle gives the acker an answer to the marker id, with its HMAC.
func (r *ackRig) handle(verb string, id ackproto.ID, now time.Time) {
	r.a.handle(ackproto.Answer{Verb: verb, ID: id, MAC: r.macs[id]}, now)
}

// rewritten returns the lines written again and the ids of their markers.
func (r *ackRig) rewritten(t *testing.T) (lines []string, ids []ackproto.ID) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, l := range r.written {
		if strings.HasPrefix(l, ackproto.Measurement) {
			ids = append(ids, r.markerID(t, l))
		} else {
			lines = append(lines, l)
		}
	}
	r.written = nil
	return lines, ids
}

func TestAckerMarksOnlyOnDone(t *testing.T) {
	r := newAckRig()
	first := r.hold(t, 0, 1)
	second := r.hold(t, 2)
	require.Equal(t, first.Seq+1, second.Seq)

	r.handle(ackproto.Received, first, time.Now())
	require.Empty(t, r.completed, "received is not done")
	r.handle(ackproto.Done, first, time.Now())
	require.Equal(t, []int64{0, 1}, r.completed)
	batches, msgs := r.a.outstanding()
	require.Equal(t, 1, batches)
	require.Equal(t, int64(1), msgs)

	// Another instance's or a repeated done changes nothing.
	r.handle(ackproto.Done, ackproto.ID{Instance: "0123456789abcdef", Seq: second.Seq}, time.Now())
	r.handle(ackproto.Done, first, time.Now())
	require.Equal(t, []int64{0, 1}, r.completed)

	r.handle(ackproto.Done, second, time.Now())
	require.Equal(t, []int64{0, 1, 2}, r.completed)
	require.Equal(t, int64(3), r.a.acked.Load())
	require.Zero(t, r.a.rewinds.Load())
	require.Empty(t, r.written)
}

// A marker that did not arrive while a later one did was dropped by Telegraf: every
// batch not confirmed is written again, in order, under new markers, and nothing
// confirmed is.
func TestAckerWritesAgainOnAGap(t *testing.T) {
	r := newAckRig()
	first := r.hold(t, 0)
	r.handle(ackproto.Done, first, time.Now())
	lost := r.hold(t, 1, 2)
	later := r.hold(t, 3)
	r.handle(ackproto.Received, later, time.Now())
	require.Equal(t, int64(1), r.a.rewinds.Load(), "marker %d was skipped: lost in Telegraf", lost.Seq)
	require.Equal(t, int64(3), r.a.resent.Load())
	require.Equal(t, []int64{0}, r.completed, "nothing more is marked")
	require.Contains(t, r.log.Messages()[0].Text, "writing the 3 messages not confirmed (2 batches) again")
	lines, ids := r.rewritten(t)
	require.Equal(t, []string{"m v=1 1", "m v=2 1", "m v=3 1"}, lines)
	require.Len(t, ids, 2)
	require.Equal(t, later.Generation+1, ids[0].Generation)
	require.Less(t, ids[0].Seq, ids[1].Seq)
	batches, msgs := r.a.outstanding()
	require.Equal(t, 2, batches, "they are still held")
	require.Equal(t, int64(3), msgs)

	// The old generation's acknowledgements are ignored since.
	r.handle(ackproto.Done, later, time.Now())
	r.handle(ackproto.Done, lost, time.Now())
	require.Equal(t, []int64{0}, r.completed)
	r.handle(ackproto.Done, ids[0], time.Now())
	r.handle(ackproto.Done, ids[1], time.Now())
	require.Equal(t, []int64{0, 1, 2, 3}, r.completed)
	next := r.hold(t, 4)
	require.Equal(t, ids[1].Generation, next.Generation)
	require.Greater(t, next.Seq, ids[1].Seq)
	require.Equal(t, int64(1), r.a.rewinds.Load())
}

// When the output goes, reading pauses and a marker with no lines is written for the
// next output; once that one answers, the held batches are written again and reading
// goes on.
func TestAckerWritesAgainWhenTheOutputGoes(t *testing.T) {
	r := newAckRig()
	r.a.connectionClosed()
	require.Zero(t, r.paused, "nothing outstanding: nothing to wait for")
	lines, probes := r.rewritten(t)
	require.Empty(t, lines)
	require.Len(t, probes, 1, "a marker for the next output to count from")
	r.handle(ackproto.Done, probes[0], time.Now())
	id := r.hold(t, 5)
	r.handle(ackproto.Received, id, time.Now())
	r.a.connectionClosed()
	require.Equal(t, 1, r.paused)
	require.Zero(t, r.a.rewinds.Load(), "not written again while no output reads")
	lines, probes = r.rewritten(t)
	require.Empty(t, lines)
	require.Len(t, probes, 1)
	r.a.connectionClosed() // its other connection
	require.Empty(t, r.written, "one marker for the next output")

	r.handle(ackproto.Received, probes[0], time.Now())
	require.Zero(t, r.paused)
	require.Equal(t, int64(1), r.a.rewinds.Load())
	lines, ids := r.rewritten(t)
	require.Equal(t, []string{"m v=5 1"}, lines)
	require.Len(t, ids, 2, "the batch and the marker with no lines")

	// A second connection of the old output closing is no new loss once the batches
	// were written again; a loss of the new generation is.
	r.a.writeAgain(id.Generation, "late")
	require.Empty(t, r.written)
	r.a.connectionClosed()
	_, probes = r.rewritten(t)
	r.handle(ackproto.Done, probes[0], time.Now())
	require.Equal(t, int64(2), r.a.rewinds.Load())
	lines, _ = r.rewritten(t)
	require.Equal(t, []string{"m v=5 1"}, lines)
	require.Empty(t, r.completed)
}

func TestAckerTimeoutLogsAndWaits(t *testing.T) {
	r := newAckRig()
	start := time.Now()
	id := r.hold(t, 0)
	r.handle(ackproto.Received, id, start)
	r.a.check(start.Add(30 * time.Second))
	require.Empty(t, r.log.Messages())
	r.a.check(start.Add(61 * time.Second))
	r.a.check(start.Add(62 * time.Second)) // rate limited
	require.Len(t, r.log.Messages(), 1)
	require.Contains(t, r.log.Messages()[0].Text, "no acknowledgement from telegraf-cnosdb")
	require.Contains(t, r.log.Messages()[0].Text, ackproto.Measurement)
	require.Zero(t, r.a.rewinds.Load(), "waiting is safe: nothing is written again")
}

func TestAckSocketServes(t *testing.T) {
	dir, err := os.MkdirTemp("", "ack")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "ack.sock")
	require.NoError(t, checkAckSocket(path))

	r := newAckRig()
	srv, err := listenAck(path, r.a)
	require.NoError(t, err)
	info, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), info.Mode().Perm())

	// A second listener on the same path is refused while the first lives.
	_, err = listenAck(path, newAckRig().a)
	require.ErrorContains(t, err, "another process listens")

	srv.serve(t.Context())
	id := r.hold(t, 7)
	conn, err := net.Dial("unix", path)
	require.NoError(t, err)
	greeting, err := bufio.NewReader(conn).ReadString('\n')
	require.NoError(t, err)
	instance, key, err := ackproto.ParseHello(greeting)
	require.NoError(t, err)
	require.Equal(t, r.a.instance, instance)
	require.Equal(t, r.a.key, key)
	// An answer without the marker's HMAC does nothing.
	_, err = conn.Write([]byte(ackproto.Answer{Verb: ackproto.Done, ID: id, MAC: strings.Repeat("0", 32)}.String()))
	require.NoError(t, err)
	_, err = conn.Write([]byte(ackproto.Answer{Verb: ackproto.Received, ID: id, MAC: r.macs[id]}.String() +
		ackproto.Answer{Verb: ackproto.Done, ID: id, MAC: r.macs[id]}.String()))
	require.NoError(t, err)
	require.Eventually(t, func() bool { return r.a.acked.Load() == 1 }, 10*time.Second, 5*time.Millisecond)
	conn.Close()
	srv.close()
	_, err = os.Lstat(path)
	require.True(t, os.IsNotExist(err), "the socket file is removed on close")

	// A socket file left by a dead process is replaced.
	ln, err := net.Listen("unix", path)
	require.NoError(t, err)
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	srv, err = listenAck(path, r.a)
	require.NoError(t, err)
	srv.close()
}

func TestAckSocketIsChecked(t *testing.T) {
	dir := t.TempDir()
	require.ErrorContains(t, checkAckSocket(filepath.Join(dir, "missing", "a.sock")), "the directory of")
	file := filepath.Join(dir, "file")
	require.NoError(t, os.WriteFile(file, nil, 0o600))
	require.ErrorContains(t, checkAckSocket(file), "is not a socket")
	require.ErrorContains(t, checkAckSocket("/"+strings.Repeat("x", 120)), "at most 107")
}

// A Telegraf whose output never answers a marker (not telegraf-cnosdb) is told so
// after firstAckTimeout, with what to do.
func TestAckerSaysEarlyWhenNoOutputAnswers(t *testing.T) {
	r := newAckRig()
	start := time.Now()
	r.hold(t, 0)
	r.a.check(start.Add(firstAckTimeout / 2))
	require.Empty(t, r.log.Messages())
	r.a.check(start.Add(firstAckTimeout + time.Second))
	require.Len(t, r.log.Messages(), 1)
	require.Contains(t, r.log.Messages()[0].Text, "no output has answered a marker")
	require.Contains(t, r.log.Messages()[0].Text, "set ack = false")
}

// At most maxMarkers markers wait for "done"; confirming one lets the writer mark what
// waited.
func TestAckerBoundsTheMarkersWaiting(t *testing.T) {
	r := newAckRig()
	marked := 0
	r.a.markPending = func() { marked++ }
	ids := []ackproto.ID{r.hold(t, 0), r.hold(t, 1), r.hold(t, 2)}
	_, held := r.a.hold(holding{}, []ack{{offset: 3}}, time.Now(), false)
	require.False(t, held, "a fourth marker while three wait")
	r.handle(ackproto.Done, ids[0], time.Now())
	require.Equal(t, 1, marked, "the writer is told a marker is free")
	_, held = r.a.hold(holding{}, []ack{{offset: 3}}, time.Now(), false)
	require.True(t, held)
}
