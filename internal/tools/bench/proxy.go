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
	"sync/atomic"
	"time"
)

// writePath is the write endpoint both pipelines post to.
const writePath = "/api/v1/write"

// writeCounts is what the proxy has seen of the write requests.
type writeCounts struct {
	requests, lines, bytes int64
}

func (c writeCounts) sub(o writeCounts) writeCounts {
	return writeCounts{c.requests - o.requests, c.lines - o.lines, c.bytes - o.bytes}
}

// writeCounter is a reverse proxy in front of the sink that counts the write
// requests and the lines in their bodies. Every pipeline writes through it, so that
// lines per request and requests per second are measured in one place, the same way
// for stock Telegraf and for the plugins, and whether the sink is the dev server or
// a real CnosDB.
type writeCounter struct {
	requests, lines, bytes atomic.Int64

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
			if r.Method == http.MethodPost && r.URL.Path == writePath {
				c.requests.Add(1)
				// The body stays as it came, Content-Length and all: the sink sees
				// the request the client made.
				r.Body = &countingBody{ReadCloser: r.Body, c: c}
			}
			proxy.ServeHTTP(w, r)
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
	return writeCounts{c.requests.Load(), c.lines.Load(), c.bytes.Load()}
}

func (c *writeCounter) close() {
	_ = c.server.Close()
	<-c.done
}

// countingBody counts the lines of a write body as the proxy forwards it: by the
// time the sink has a request's lines, the proxy has counted them.
type countingBody struct {
	io.ReadCloser
	c    *writeCounter
	last byte // the last byte read, to count a last line without a newline
	done bool
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		b.c.lines.Add(int64(bytes.Count(p[:n], []byte{'\n'})))
		b.c.bytes.Add(int64(n))
		b.last = p[n-1]
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
	if !b.done && b.last != 0 && b.last != '\n' {
		b.c.lines.Add(1)
	}
	b.done = true
}
