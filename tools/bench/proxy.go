package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/dev/cnosdbdev"
)

// writePath is the write endpoint both pipelines post to.
const writePath = "/api/v1/write"

// writeCounts is what the proxy has seen of the write requests; accepted are the
// lines of those the sink answered with 2xx.
type writeCounts struct {
	requests, lines, bytes, accepted int64
}

func (c writeCounts) sub(o writeCounts) writeCounts {
	return writeCounts{c.requests - o.requests, c.lines - o.lines, c.bytes - o.bytes, c.accepted - o.accepted}
}

// acceptance is a write request the sink answered with 2xx: when the answer had
// passed the proxy, and the lines the request carried.
type acceptance struct {
	at    time.Time
	lines int64
}

// writeCounter is a reverse proxy in front of the sink that counts the write
// requests and the lines in their bodies. Every pipeline writes through it, so that
// lines per request and requests per second are measured in one place, the same way
// for stock Telegraf and for the plugins, and whether the sink is the dev server or
// a real CnosDB.
type writeCounter struct {
	requests, lines, bytes, accepted atomic.Int64

	mu        sync.Mutex
	recording bool
	accepts   []acceptance // while recording

	// While set, the timestamps of every accepted write's lines are read and their
	// delays to the answer recorded here.
	fresh atomic.Pointer[freshRecorder]

	url    string
	server *http.Server
	done   chan struct{}
}

// startWriteCounter listens on a free loopback port and forwards everything to
// target.
func startWriteCounter(target string) (*writeCounter, error) {
	to, err := url.Parse(target)
	if err != nil {
		return nil, fmt.Errorf("sink URL %q: %w", target, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("starting the counting proxy: %w", err)
	}
	c := &writeCounter{url: "http://" + ln.Addr().String(), done: make(chan struct{})}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) { r.SetURL(to) },
		Transport: &http.Transport{
			// Enough idle connections for every client's, so that the proxy does not
			// open a new connection per request where the client keeps one.
			MaxIdleConnsPerHost: 64,
			IdleConnTimeout:     90 * time.Second,
			// Pass the client's Accept-Encoding on unchanged.
			DisableCompression: true,
		},
		// A client stopped mid-request is normal at the end of a run: answer it
		// without filling the benchmark's output with the proxy's log.
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			http.Error(w, "bench proxy: "+err.Error(), http.StatusBadGateway)
		},
	}
	c.server = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodPost || r.URL.Path != writePath {
				proxy.ServeHTTP(w, r)
				return
			}
			c.requests.Add(1)
			// The body stays as it came, Content-Length and all: the sink sees the
			// request the client made.
			body := &countingBody{ReadCloser: r.Body, c: c}
			fresh := c.fresh.Load()
			if fresh != nil {
				body.times = &lineTimes{}
			}
			r.Body = body
			sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
			proxy.ServeHTTP(sw, r)
			if sw.code/100 == 2 {
				// The answer has passed: the lines are visible from now on.
				at := time.Now()
				c.accept(body.total())
				if fresh != nil {
					times, untimed := body.timestamps()
					fresh.observe(at, cnosdbdev.PrecisionUnit(r.URL.Query().Get("precision")), times, untimed)
				}
			}
		}),
		ReadHeaderTimeout: 30 * time.Second,
	}
	go func() {
		defer close(c.done)
		if err := c.server.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Printf("bench: counting proxy: %v\n", err)
		}
	}()
	return c, nil
}

func (c *writeCounter) counts() writeCounts {
	return writeCounts{c.requests.Load(), c.lines.Load(), c.bytes.Load(), c.accepted.Load()}
}

// accept counts the lines of a request the sink took, and notes when while recording.
func (c *writeCounter) accept(lines int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	// Under the lock, so that a recording holds every line counted since it began.
	c.accepted.Add(lines)
	if c.recording {
		c.accepts = append(c.accepts, acceptance{at: time.Now(), lines: lines})
	}
}

// record starts noting every write the sink accepts, and returns the count of
// accepted lines at that moment.
func (c *writeCounter) record() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.recording, c.accepts = true, nil
	return c.accepted.Load()
}

// stopRecording returns the writes accepted since record, in the order of their
// answers.
func (c *writeCounter) stopRecording() []acceptance {
	c.mu.Lock()
	defer c.mu.Unlock()
	acc := c.accepts
	c.recording, c.accepts = false, nil
	return acc
}

// statusWriter notes the status the sink answered with.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}

// Unwrap lets the reverse proxy flush the connection underneath.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (c *writeCounter) close() {
	_ = c.server.Close()
	<-c.done
}

// countingBody counts the lines of a write body as the proxy forwards it: by the
// time the sink has a request's lines, the proxy has counted them. The transport
// may close it from a goroutine of its own, hence the lock.
type countingBody struct {
	io.ReadCloser
	c *writeCounter

	mu    sync.Mutex
	lines int64 // newlines read so far
	last  byte  // the last byte read, to count a last line without a newline
	done  bool
	times *lineTimes // the lines' timestamps, when the proxy records freshness
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		newlines := int64(bytes.Count(p[:n], []byte{'\n'}))
		b.c.lines.Add(newlines)
		b.c.bytes.Add(int64(n))
		b.mu.Lock()
		b.lines += newlines
		b.last = p[n-1]
		if b.times != nil {
			b.times.feed(p[:n])
		}
		b.mu.Unlock()
	}
	if errors.Is(err, io.EOF) {
		b.finish()
	}
	return n, err
}

func (b *countingBody) Close() error {
	b.finish()
	return b.ReadCloser.Close()
}

func (b *countingBody) finish() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.done && b.last != 0 && b.last != '\n' {
		b.c.lines.Add(1)
	}
	b.done = true
}

// total is the lines of the body read so far, a last one without a newline
// included.
func (b *countingBody) total() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.last != 0 && b.last != '\n' {
		return b.lines + 1
	}
	return b.lines
}

// timestamps are the timestamps of the body's lines read so far, a last one without
// a newline included, and how many lines had none.
func (b *countingBody) timestamps() ([]int64, int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.times == nil {
		return nil, 0
	}
	b.times.end()
	return b.times.times, b.times.untimed
}

// recordFreshness has the proxy read the timestamps of every write the sink accepts
// from now on into f, until stopFreshness.
func (c *writeCounter) recordFreshness(f *freshRecorder) { c.fresh.Store(f) }

func (c *writeCounter) stopFreshness() { c.fresh.Store(nil) }
