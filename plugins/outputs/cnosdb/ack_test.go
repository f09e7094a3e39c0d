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
	"sync/atomic"
	"testing"
	"time"

	"github.com/influxdata/telegraf/config"
	"github.com/influxdata/telegraf/testutil"
	"github.com/stretchr/testify/require"

	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/dev/cnosdbdev"
	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/internal/ackproto"
	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/testutil/cnosdbtest"
)

// fakeInput stands for the Kafka input: it listens on a socket in the input's
// private directory, greets each connection as the input does, writes signed
// markers, and records the answers as "<verb> <seq>" ("<verb> <seq> bad HMAC" for an
// answer without the marker's HMAC). onDone, if set, is called as each "done" arrives.
type fakeInput struct {
	t        *testing.T
	path     string
	instance string
	key      ackproto.Key
	gen, seq uint64
	accepted atomic.Int64 // connections

	mu     sync.Mutex
	macs   map[uint64]string
	got    []string
	onDone func(seq uint64)
	ln     net.Listener
	conns  []net.Conn
}

func newFakeInput(t *testing.T) *fakeInput {
	t.Helper()
	dir, path, err := ackproto.MakePrivateSocketDir()
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	return listenFakeInput(t, path)
}

func listenFakeInput(t *testing.T, path string) *fakeInput {
	t.Helper()
	f := &fakeInput{t: t, path: path, instance: ackproto.NewInstance(), key: ackproto.NewKey(), macs: make(map[uint64]string)}
	ln, err := net.Listen("unix", path)
	require.NoError(t, err)
	f.ln = ln
	t.Cleanup(f.stop)
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			f.accepted.Add(1)
			f.mu.Lock()
			f.conns = append(f.conns, conn)
			f.mu.Unlock()
			go f.serve(conn)
		}
	}()
	return f
}

// stop ends the input as its process's exit would: no listener, no connection.
func (f *fakeInput) stop() {
	f.ln.Close()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.conns {
		c.Close()
	}
}

func (f *fakeInput) serve(conn net.Conn) {
	defer conn.Close()
	if _, err := io.WriteString(conn, ackproto.FormatHello(f.instance, f.key)); err != nil {
		return
	}
	sc := bufio.NewScanner(conn)
	for sc.Scan() {
		ans, err := ackproto.ParseAnswer(sc.Text())
		if err != nil {
			f.record(sc.Text())
			continue
		}
		f.mu.Lock()
		ok := f.macs[ans.ID.Seq] == ans.MAC
		onDone := f.onDone
		f.mu.Unlock()
		msg := fmt.Sprintf("%s %d", ans.Verb, ans.ID.Seq)
		if !ok || ans.ID.Instance != f.instance {
			msg += " bad HMAC"
		}
		if ans.Verb == ackproto.Done && onDone != nil {
			onDone(ans.ID.Seq)
		}
		f.record(msg)
	}
}

func (f *fakeInput) record(msg string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.got = append(f.got, msg)
}

func (f *fakeInput) messages() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.got...)
}

// marker returns the input's next marker line, with its newline, counting lines.
func (f *fakeInput) marker(lines int64, waiting bool) string {
	f.seq++
	return f.markerAt(f.seq, lines, waiting)
}

func (f *fakeInput) markerAt(seq uint64, lines int64, waiting bool) string {
	m := ackproto.Marker{Socket: f.path, ID: ackproto.ID{Instance: f.instance, Generation: f.gen, Seq: seq}, Lines: lines, Waiting: waiting}
	m.MAC = f.key.Sign(m)
	f.mu.Lock()
	f.macs[seq] = m.MAC
	f.mu.Unlock()
	return string(ackproto.AppendMarker(nil, m, time.Unix(1, 0)))
}

// hello is the first marker the input writes, with nothing before it.
func (f *fakeInput) hello() string { return f.marker(0, false) }

func entry(line string) []byte { return []byte(strings.TrimSuffix(line, "\n")) }

// A marker that follows fewer lines than it counts since its input's marker before
// is answered "lost", and so is one that does not follow the marker before; lines of
// another input in between never make a loss up.
func TestMarkerAfterDroppedLinesIsLost(t *testing.T) {
	one, other := newFakeInput(t), newFakeInput(t)
	a := newAcks(nil, testutil.Logger{Quiet: true})
	take := func(line string, read int64) {
		t.Helper()
		taken, _ := a.marker(entry(line), 0, 1, read)
		require.True(t, taken)
	}
	take(one.hello(), 0)
	take(one.marker(10, false), 10) // 10 lines, then the marker
	take(other.hello(), 10)
	take(other.marker(7, false), 17)     // the other input's 7 lines
	take(one.marker(10, false), 27)      // 3 of the other's and 7 of these: 10
	take(one.marker(10, false), 36)      // 9 of 10: one dropped
	take(other.marker(3, false), 36)     // 19 lines since its last: no loss
	one.seq++                            // marker 5 is dropped...
	take(one.marker(0, false), 36)       // ...and the next does not follow marker 4
	take(one.marker(0, false), 36)       // the one after follows it
	take(one.markerAt(3, 10, false), 60) // a copy of marker 3 says nothing...
	take(one.marker(0, false), 60)       // ...and moves nothing
	require.Eventually(t, func() bool { return len(one.messages()) == 12 && len(other.messages()) == 6 }, 10*time.Second, 5*time.Millisecond)
	require.Equal(t, []string{"received 1", "done 1", "received 2", "done 2", "received 3", "done 3", "lost 4",
		"lost 6", "received 7", "done 7", "received 8", "done 8"}, one.messages())
	require.Equal(t, []string{"received 1", "done 1", "received 2", "done 2", "received 3", "done 3"}, other.messages())
	require.Equal(t, int64(1), one.accepted.Load(), "one connection per input")

	// An output that starts in the middle of the stream cannot count the lines
	// before the first marker it reads: lost, unless the marker counts none.
	b := newAcks(nil, testutil.Logger{Quiet: true})
	taken, _ := b.marker(entry(one.marker(5, false)), 0, 1, 100)
	require.True(t, taken)
	taken, _ = b.marker(entry(one.marker(0, false)), 0, 2, 100)
	require.True(t, taken)
	require.Eventually(t, func() bool { return len(one.messages()) == 15 }, 10*time.Second, 5*time.Millisecond)
	require.Equal(t, []string{"lost 9", "received 10", "done 10"}, one.messages()[12:])
}

// Nothing read from stdin chooses what the output connects to: a marker naming a
// socket that is neither an input's private socket nor listed in ack_sockets makes
// no connection, and one whose HMAC does not verify under the key of the input
// listening there is ignored, without changing what the input's markers count.
func TestForgedMarkersDoNothing(t *testing.T) {
	in := newFakeInput(t)
	elsewhere := listenFakeInput(t, filepath.Join(t.TempDir(), "other.sock"))
	log := &testutil.CaptureLogger{}
	a := newAcks(nil, log)

	taken, _ := a.marker(entry(in.hello()), 0, 1, 0)
	require.True(t, taken)
	forged := func(socket, instance string, key ackproto.Key, seq uint64, lines int64) []byte {
		m := ackproto.Marker{Socket: socket, ID: ackproto.ID{Instance: instance, Seq: seq}, Lines: lines}
		m.MAC = key.Sign(m)
		return entry(string(ackproto.AppendMarker(nil, m, time.Unix(1, 0))))
	}
	for name, line := range map[string][]byte{
		"a socket of no input":        forged(elsewhere.path, elsewhere.instance, elsewhere.key, 2, 0),
		"another key":                 forged(in.path, in.instance, ackproto.NewKey(), 2, 0),
		"another instance":            forged(in.path, ackproto.NewInstance(), in.key, 2, 0),
		"an abstract socket":          []byte(`telegraf_kafka_cnosdb_ack,socket=@x id="0123456789abcdef/0/2",lines=0i,mac="00000000000000000000000000000000" 1`),
		"no HMAC":                     []byte(`telegraf_kafka_cnosdb_ack,socket=` + in.path + ` id="` + in.instance + `/0/2",lines=0i 1`),
		"the issue's request":         []byte(`telegraf_kafka_cnosdb_ack,socket=` + elsewhere.path + ` id="GET / HTTP/1.1",lines=0i`),
		"a path not in shortest form": forged(in.path+"/../"+filepath.Base(in.path), in.instance, in.key, 2, 0),
	} {
		taken, waiting := a.marker(line, 0, 2, 0)
		require.False(t, taken, name)
		require.False(t, waiting, name)
	}
	// The input's next marker still counts from its last one: nothing forged moved it.
	taken, _ = a.marker(entry(in.marker(10, false)), 0, 3, 10)
	require.True(t, taken)
	require.Eventually(t, func() bool { return len(in.messages()) == 4 }, 10*time.Second, 5*time.Millisecond)
	require.Equal(t, []string{"received 1", "done 1", "received 2", "done 2"}, in.messages())
	require.Zero(t, elsewhere.accepted.Load(), "nothing connected to a socket no marker may name")
	require.Equal(t, int64(1), in.accepted.Load())

	// Listed in ack_sockets, the other socket is taken.
	b := newAcks([]string{elsewhere.path}, testutil.Logger{Quiet: true})
	taken, _ = b.marker(entry(elsewhere.hello()), 0, 1, 0)
	require.True(t, taken)
	require.Eventually(t, func() bool { return len(elsewhere.messages()) == 2 }, 10*time.Second, 5*time.Millisecond)
}

// A directory in the input's naming that another user could have made, or that is
// open to others, is no input's private directory.
func TestPrivateSocketIsChecked(t *testing.T) {
	in := newFakeInput(t)
	require.NoError(t, ackproto.CheckPrivateSocket(in.path))
	dir := filepath.Dir(in.path)
	require.NoError(t, os.Chmod(dir, 0o755))
	require.ErrorContains(t, ackproto.CheckPrivateSocket(in.path), "closed to others")
	require.NoError(t, os.Chmod(dir, 0o700))
	link := dir + "-link"
	require.NoError(t, os.Symlink(dir, link))
	t.Cleanup(func() { os.Remove(link) })
	require.Error(t, ackproto.CheckPrivateSocket(filepath.Join(link, ackproto.PrivateSocketName)))
	require.ErrorContains(t, ackproto.CheckPrivateSocket(filepath.Join(t.TempDir(), "ack.sock")), "private directory")
}

func TestAcksFollowBatchResults(t *testing.T) {
	in := newFakeInput(t)
	a := newAcks(nil, testutil.Logger{Quiet: true})
	m := func(line string, fill int, read int64) bool {
		t.Helper()
		taken, waiting := a.marker(entry(line), fill, 1, read)
		require.True(t, taken)
		return waiting
	}
	// Nothing flushed, nothing pending: done at once.
	require.False(t, m(in.hello(), 0, 0))
	// Lines in the batch being filled: the marker waits for that batch (seq 1).
	require.False(t, m(in.marker(5, false), 5, 5))
	a.flushed(1)
	// Empty batch being filled, batch 1 not final: attached to it.
	require.False(t, m(in.marker(0, false), 0, 5))
	require.True(t, m(in.marker(3, true), 3, 8))
	a.flushed(2)
	a.result(Result{Seq: 1, Lines: 5, Written: 5})
	want := []string{"received 1", "done 1", "received 2", "received 3", "received 4", "done 2", "done 3"}
	require.Eventually(t, func() bool { return len(in.messages()) == len(want) }, 10*time.Second, 5*time.Millisecond)
	require.Equal(t, want, in.messages())

	// An aborted batch confirms nothing: neither its markers, nor a marker read
	// later of the same generation, whatever happens to the batches after it.
	a.result(Result{Seq: 2, Lines: 3, Aborted: 3})
	require.False(t, m(in.marker(0, false), 0, 8))
	require.False(t, m(in.marker(2, false), 2, 10))
	a.flushed(3)
	a.result(Result{Seq: 3, Lines: 2, Written: 2})
	// The input writes its batches again in a new generation, whose markers are
	// confirmed again.
	in.gen++
	require.False(t, m(in.marker(0, false), 0, 10))
	want = append(want, "received 5", "received 6", "received 7", "done 7")
	require.Eventually(t, func() bool { return len(in.messages()) == len(want) }, 10*time.Second, 5*time.Millisecond)
	a.close(5 * time.Second)
	require.Equal(t, want, in.messages())
}

func TestMarkersAreConfirmedOnlyOnceWritten(t *testing.T) {
	target := cnosdbtest.Start(t, cnosdbdev.Options{})
	db := target.NewDatabase(t, "")
	c, _ := startPlugin(t, target, db, func(c *CnosDB) {
		c.MetricBatchSize = 100
		c.FlushInterval = config.Duration(50 * time.Millisecond)
	})
	l := newFakeInput(t)
	// Each "done" must find every line before its marker in CnosDB.
	var mu sync.Mutex
	var wrong []string
	l.onDone = func(seq uint64) {
		if n := target.Count(t, db, "sensor"); n < int(seq-1)*150 {
			mu.Lock()
			wrong = append(wrong, fmt.Sprintf("marker %d done with %d lines in CnosDB, expected %d", seq, n, (seq-1)*150))
			mu.Unlock()
		}
	}
	lines := strings.Split(strings.TrimSuffix(sensorLines(600, "sensor"), "\n"), "\n")
	var in strings.Builder
	in.WriteString(l.hello())
	for i, line := range lines {
		in.WriteString(line + "\n")
		if (i+1)%150 == 0 {
			in.WriteString(l.marker(150, false))
		}
	}
	s := openStream(t, c)
	feed(t, s, strings.NewReader(in.String()))
	s.Close()
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
	require.Eventually(t, func() bool { return len(done()) >= 5 }, time.Minute, 5*time.Millisecond)
	require.Equal(t, []string{"1", "2", "3", "4", "5"}, done())
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
	s := openStream(t, c)
	cfg := s.Config()
	cfg.IdleFlush = 0
	l := newFakeInput(t)
	pr, pw := io.Pipe()
	fed := make(chan struct{})
	go func() {
		defer close(fed)
		feedWith(t, s, pr, cfg)
	}()
	_, err := io.WriteString(pw, l.hello()+sensorLines(150, "sensor")+l.marker(150, true))
	require.NoError(t, err)
	require.Eventually(t, func() bool { return slices.Contains(l.messages(), "done 2") },
		time.Minute, 5*time.Millisecond, "the lines before the marker were not written while stdin stayed open")
	require.Equal(t, 150, target.Count(t, db, "sensor"))
	require.NoError(t, pw.Close())
	<-fed
	s.Close()
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
	l := newFakeInput(t)
	pr, pw := io.Pipe()
	fed := make(chan struct{})
	s := openStream(t, c)
	go func() {
		defer close(fed)
		feed(t, s, pr)
	}()
	_, err := io.WriteString(pw, l.hello()+sensorLines(150, "sensor")+l.marker(150, false))
	require.NoError(t, err)
	require.Eventually(t, func() bool { return slices.Contains(l.messages(), "done 2") },
		time.Minute, 5*time.Millisecond, "the lines of an idle stream were not written while stdin stayed open")
	require.Equal(t, 150, target.Count(t, db, "sensor"))
	require.NoError(t, pw.Close())
	<-fed
	s.Close()
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
	s := openStream(t, c)
	cfg := s.Config()
	cfg.IdleFlush = 0 // a pause of this machine must not look like an idle stream
	l := newFakeInput(t)
	lines := strings.Split(strings.TrimSuffix(sensorLines(3000, "sensor"), "\n"), "\n")
	var in strings.Builder
	in.WriteString(l.hello())
	for i, line := range lines {
		in.WriteString(line + "\n")
		if (i+1)%150 == 0 {
			in.WriteString(l.marker(150, false))
		}
	}
	before := target.Faults().Requests("/api/v1/write")
	feedWith(t, s, strings.NewReader(in.String()), cfg)
	s.Close()
	c.Close()
	require.Equal(t, 3000, target.Count(t, db, "sensor"))
	require.Equal(t, int64(3), target.Faults().Requests("/api/v1/write")-before, "3,000 lines in batches of 1,000")
	require.Eventually(t, func() bool { return slices.Contains(l.messages(), "done 21") }, time.Minute, 5*time.Millisecond)
}

// Every entry counts as one line, however it ends: a string with newlines, escaped
// characters, a line over max_line_size that is skipped, a malformed one. The input
// counts the same way (one per metric), so none of them makes a marker lost.
func TestEveryEntryCountsOnce(t *testing.T) {
	target := cnosdbtest.Start(t, cnosdbdev.Options{})
	db := target.NewDatabase(t, "")
	c, _ := startPlugin(t, target, db, func(c *CnosDB) {
		c.MaxLineSize = config.Size(1024)
	})
	l := newFakeInput(t)
	entries := []string{
		"log,level=info msg=\"request 7 failed\nretrying\nagain\",v=7i 1",
		`log,level=warn,path=a\ b\,c\=d msg="a \"quoted\" \\ word",v=8i 2`,
		`log,level=info msg="` + strings.Repeat("x", 2000) + `",v=9i 3`, // over max_line_size
		`not line protocol`,
		`log,level=info v=10i 4`,
	}
	in := l.hello() + strings.Join(entries, "\n") + "\n" + l.marker(int64(len(entries)), true)
	s := openStream(t, c)
	feed(t, s, strings.NewReader(in))
	s.Close()
	c.Close()
	require.Eventually(t, func() bool { return len(l.messages()) == 4 }, 10*time.Second, 5*time.Millisecond)
	require.Equal(t, []string{"received 1", "done 1", "received 2", "done 2"}, l.messages())
	require.Equal(t, 3, target.Count(t, db, "log"))
}

// An input that restarts on the same named socket is a new instance: the output
// drops the connection to the old one when it closes and takes the new one's markers.
func TestInputRestartOnANamedSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ack.sock")
	old := listenFakeInput(t, path)
	a := newAcks([]string{path}, testutil.Logger{Quiet: true})
	taken, _ := a.marker(entry(old.hello()), 0, 1, 0)
	require.True(t, taken)
	require.Eventually(t, func() bool { return len(old.messages()) == 2 }, 10*time.Second, 5*time.Millisecond)
	old.stop() // Go removes the socket file as the listener closes

	restarted := listenFakeInput(t, path)
	// A marker of the old instance still in the pipe is not the new one's.
	require.Eventually(t, func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		st := a.inputs[old.instance]
		return st == nil || st.conn.gone()
	}, 10*time.Second, 5*time.Millisecond, "the closed connection is seen")
	taken, _ = a.marker(entry(old.marker(3, false)), 0, 2, 3)
	require.False(t, taken)
	taken, _ = a.marker(entry(restarted.hello()), 0, 3, 3)
	require.True(t, taken)
	taken, _ = a.marker(entry(restarted.marker(2, false)), 0, 4, 5)
	require.True(t, taken)
	require.Eventually(t, func() bool { return len(restarted.messages()) == 4 }, 10*time.Second, 5*time.Millisecond)
	require.Equal(t, []string{"received 1", "done 1", "received 2", "done 2"}, restarted.messages())
	require.Equal(t, int64(1), restarted.accepted.Load())
}
