package e2e

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/dev/cnosdbdev"
	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/testutil/cnosdbtest"
)

// recorder stands between the output and CnosDB and notes the id field of every line
// of every write CnosDB accepted (answered 200). It counts what the server took,
// duplicates included, with a real CnosDB as with the dev server, and tells when each
// id was first taken.
type recorder struct {
	next http.Handler

	mu       sync.Mutex
	accepted int64       // lines with an id in accepted writes
	times    map[int]int // id -> how many accepted writes held it
	writes   []acceptedWrite
}

// acceptedWrite is one write CnosDB answered 200, with the time its request reached
// the recorder.
type acceptedWrite struct {
	began time.Time
	ids   []int
}

// recordingFront serves a recorder in front of target behind a fault layer of its
// own: the output under test writes to the front's URL, the faults are set on the
// front, and the target's own helpers (SQL, Count) see CnosDB directly.
func recordingFront(t *testing.T, target *cnosdbtest.Target) (*cnosdbdev.Front, *recorder) {
	t.Helper()
	u, err := url.Parse(target.URL)
	if err != nil {
		t.Fatalf("target URL %q: %v", target.URL, err)
	}
	rec := &recorder{next: cnosdbdev.NewProxy(u), times: make(map[int]int)}
	front, err := cnosdbdev.Listen("127.0.0.1:0", rec)
	if err != nil {
		t.Fatalf("recording front: %v", err)
	}
	t.Cleanup(func() { _ = front.Close() })
	return front, rec
}

func (rc *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || (r.URL.Path != "/api/v1/write" && r.URL.Path != "/write") {
		rc.next.ServeHTTP(w, r)
		return
	}
	began := time.Now()
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "recorder: reading the request: "+err.Error(), http.StatusBadRequest)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	sw := &statusWriter{ResponseWriter: w}
	rc.next.ServeHTTP(sw, r)
	// No status at all: the proxy gave up because the client went away (a killed
	// output), and whether CnosDB stored the write is unknown.
	if sw.status != http.StatusOK {
		return
	}
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err == nil {
			body, err = io.ReadAll(zr)
		}
		if err != nil {
			body = nil // the suite sends no gzip; its checks would then show missing ids
		}
	}
	ids, lines := lineIDs(body)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.accepted += int64(lines)
	for _, id := range ids {
		rc.times[id]++
	}
	rc.writes = append(rc.writes, acceptedWrite{began: began, ids: ids})
}

// statusWriter notes the status sent; zero if none was.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// lineIDs returns the integer value of the field id of each line of a line-protocol
// body, and the number of lines that have one (the input's own stats metric has none).
func lineIDs(body []byte) (ids []int, lines int) {
	for len(body) > 0 {
		line := body
		if i := bytes.IndexByte(body, '\n'); i >= 0 {
			line, body = body[:i], body[i+1:]
		} else {
			body = nil
		}
		line = bytes.TrimSpace(line)
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		if id, ok := fieldID(line); ok {
			ids = append(ids, id)
			lines++
		}
	}
	return ids, lines
}

// fieldID finds " id=" or ",id=" (the field set follows the first unescaped space;
// the suite's lines carry no tags or escapes) and reads the digits after it.
func fieldID(line []byte) (int, bool) {
	for _, key := range [][]byte{[]byte(" id="), []byte(",id=")} {
		i := bytes.Index(line, key)
		if i < 0 {
			continue
		}
		id, digits := 0, 0
		for _, c := range line[i+len(key):] {
			if c < '0' || c > '9' {
				break
			}
			id = id*10 + int(c-'0')
			digits++
		}
		if digits > 0 {
			return id, true
		}
	}
	return 0, false
}

// Accepted returns the lines CnosDB accepted and the distinct ids among them.
func (rc *recorder) Accepted() (lines int64, distinct int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.accepted, len(rc.times)
}

// AcceptedBefore returns the ids of the writes whose requests arrived before t.
func (rc *recorder) AcceptedBefore(t time.Time) map[int]bool {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	ids := make(map[int]bool)
	for _, w := range rc.writes {
		if w.began.Before(t) {
			for _, id := range w.ids {
				ids[id] = true
			}
		}
	}
	return ids
}

// MinAcceptedSince returns the smallest id of the writes whose requests arrived at t
// or later, and false if there were none.
func (rc *recorder) MinAcceptedSince(t time.Time) (int, bool) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	lowest, found := 0, false
	for _, w := range rc.writes {
		if w.began.Before(t) {
			continue
		}
		for _, id := range w.ids {
			if !found || id < lowest {
				lowest, found = id, true
			}
		}
	}
	return lowest, found
}
