package cnosdbdev

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// AnyPath makes a Respond fault apply to every path.
const AnyPath = "*"

// Faults injects failures in front of any http.Handler: the emulator or a
// reverse proxy to a real CnosDB. It is safe for concurrent use; the zero
// value injects nothing. Wrap a handler with Handler; Refuse needs a Front
// to close and reopen the listening socket.
type Faults struct {
	mu        sync.Mutex
	responses []*cannedResponse
	latency   time.Duration
	refusing  bool
	dropping  bool
	refuser   func(on bool) // set by Front
	// refusedAt is when Refuse took effect (the listener and every connection
	// closed); zero while connections are not refused.
	refusedAt time.Time

	requests   int64
	responded  int64
	dropped    int64
	passed     int64
	leaked     int64 // passed, begun after refusedAt
	perPath    map[string]int64
	active     int64 // requests in the fault layer now
	mostAtOnce int64
}

type cannedResponse struct {
	path      string
	status    int
	body      string
	remaining int // < 0: until cleared
}

// FaultStats counts what the fault layer did with requests.
type FaultStats struct {
	Requests  int64            `json:"requests"`  // requests that reached the fault layer
	Responded int64            `json:"responded"` // answered with a canned response
	Dropped   int64            `json:"dropped"`   // connections closed without an answer
	Passed    int64            `json:"passed"`    // handed to the backend
	Paths     map[string]int64 `json:"paths"`     // requests per URL path
	// MostAtOnce is the most requests that were in the fault layer at once, from
	// their arrival to the end of their answer: what a client had in flight.
	MostAtOnce int64 `json:"most_at_once"`
	// PassedWhileRefusing counts the requests handed to the backend that began
	// after Refuse had taken effect, while it was in effect: what the Front let
	// through when it was to refuse every connection. A request begins when the
	// Front has read its headers; one read before Refuse closed its connection,
	// in flight when the fault was set, still reaches the backend and is counted
	// in Passed only.
	PassedWhileRefusing int64 `json:"passed_while_refusing"`
}

// FaultState describes the faults currently set.
type FaultState struct {
	Responses []CannedResponse `json:"responses"`
	Latency   string           `json:"latency"`
	Refuse    bool             `json:"refuse"`
	Drop      bool             `json:"drop"`
}

// CannedResponse is a pending Respond fault.
type CannedResponse struct {
	Path   string `json:"path"`
	Status int    `json:"status"`
	Body   string `json:"body"`
	Count  int    `json:"count"` // requests left; negative: until cleared
}

// Respond answers the next n requests to path (AnyPath for every path)
// with status and body instead of passing them on; n < 0 keeps answering
// until Clear. A body that looks like JSON is sent as application/json,
// like CnosDB's error bodies. Several faults for one path are used one
// after the other.
func (f *Faults) Respond(path string, status int, body string, n int) {
	if n == 0 {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.responses = append(f.responses, &cannedResponse{path: path, status: status, body: body, remaining: n})
}

// SetLatency delays every request by d before it is handled; zero removes
// the delay. A request whose client gives up is not passed on.
func (f *Faults) SetLatency(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.latency = d
}

// Refuse closes the listening socket of the Front the faults belong to,
// and the open connections, so that connection attempts are refused; off
// listens again on the same address. Without a Front, requests are
// dropped instead.
func (f *Faults) Refuse(on bool) {
	f.mu.Lock()
	f.refusing = on
	refuser := f.refuser
	if !on {
		f.refusedAt = time.Time{}
	}
	f.mu.Unlock()
	if refuser == nil {
		return
	}
	refuser(on)
	if on {
		// In effect once the listener and the connections are closed: a request
		// read before then was in flight.
		f.mu.Lock()
		if f.refusing && f.refusedAt.IsZero() {
			f.refusedAt = time.Now()
		}
		f.mu.Unlock()
	}
}

// Drop makes the server accept connections and close them without
// answering, including requests arriving on connections already open.
func (f *Faults) Drop(on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.dropping = on
}

// Clear removes every fault; counters are kept.
func (f *Faults) Clear() {
	f.mu.Lock()
	f.responses = nil
	f.latency = 0
	f.dropping = false
	wasRefusing := f.refusing
	f.refusing = false
	f.refusedAt = time.Time{}
	refuser := f.refuser
	f.mu.Unlock()
	if wasRefusing && refuser != nil {
		refuser(false)
	}
}

// Stats returns the counters.
func (f *Faults) Stats() FaultStats {
	f.mu.Lock()
	defer f.mu.Unlock()
	paths := make(map[string]int64, len(f.perPath))
	for p, n := range f.perPath {
		paths[p] = n
	}
	return FaultStats{Requests: f.requests, Responded: f.responded, Dropped: f.dropped, Passed: f.passed,
		Paths: paths, MostAtOnce: f.mostAtOnce, PassedWhileRefusing: f.leaked}
}

// Requests returns how many requests for path reached the fault layer
// (all paths for AnyPath).
func (f *Faults) Requests(path string) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	if path == AnyPath {
		return f.requests
	}
	return f.perPath[path]
}

// State returns the faults currently set.
func (f *Faults) State() FaultState {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := FaultState{Responses: []CannedResponse{}, Refuse: f.refusing, Drop: f.dropping, Latency: f.latency.String()}
	for _, r := range f.responses {
		st.Responses = append(st.Responses, CannedResponse{Path: r.path, Status: r.status, Body: r.body, Count: r.remaining})
	}
	return st
}

func (f *Faults) dropsConnections() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.dropping
}

func (f *Faults) countDroppedConnection() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.dropped++
}

type faultAction uint8

const (
	actionPass faultAction = iota
	actionRespond
	actionDrop
)

// decide counts a request that began at began and picks what happens to it.
func (f *Faults) decide(path string, began time.Time) (faultAction, *cannedResponse, time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests++
	f.active++
	f.mostAtOnce = max(f.mostAtOnce, f.active)
	if f.perPath == nil {
		f.perPath = make(map[string]int64)
	}
	f.perPath[path]++
	if f.dropping || (f.refusing && f.refuser == nil) {
		f.dropped++
		return actionDrop, nil, f.latency
	}
	for i, r := range f.responses {
		if r.path != path && r.path != AnyPath {
			continue
		}
		answer := *r
		if r.remaining > 0 {
			r.remaining--
			if r.remaining == 0 {
				f.responses = append(f.responses[:i:i], f.responses[i+1:]...)
			}
		}
		f.responded++
		return actionRespond, &answer, f.latency
	}
	f.passed++
	if !f.refusedAt.IsZero() && !began.Before(f.refusedAt) {
		f.leaked++
	}
	return actionPass, nil, f.latency
}

// Handler wraps next with the faults.
func (f *Faults) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		action, canned, latency := f.decide(r.URL.Path, requestBegan(r.Context()))
		defer f.leave()
		if latency > 0 {
			if !sleepContext(r.Context(), latency) {
				return
			}
		}
		switch action {
		case actionDrop:
			if !closeWithoutAnswer(w) {
				w.WriteHeader(http.StatusServiceUnavailable)
			}
		case actionRespond:
			_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, maxDrainBytes))
			h := w.Header()
			if b := strings.TrimSpace(canned.body); strings.HasPrefix(b, "{") || strings.HasPrefix(b, "[") {
				h.Set("Content-Type", "application/json")
			}
			h.Set("Content-Length", strconv.Itoa(len(canned.body)))
			w.WriteHeader(canned.status)
			_, _ = io.WriteString(w, canned.body)
		default:
			next.ServeHTTP(w, r)
		}
	})
}

// connState is what a Front knows of a connection, in Unix nanoseconds: when
// it read the headers of the current request, and when it closed the
// connection; zero if it has not.
type connState struct {
	active atomic.Int64
	closed atomic.Int64
}

type connStateKey struct{}

// requestBegan returns when the request of ctx began: when the Front read its
// headers or, if it closed the connection before it noted that, when it closed
// it (nothing is read from a closed connection). Without a Front: now, when
// the request reaches the fault layer.
func requestBegan(ctx context.Context) time.Time {
	cs, ok := ctx.Value(connStateKey{}).(*connState)
	if !ok {
		return time.Now()
	}
	began := cs.active.Load()
	if closed := cs.closed.Load(); closed != 0 && (began == 0 || closed < began) {
		began = closed
	}
	if began == 0 {
		return time.Now()
	}
	return time.Unix(0, began)
}

// leave counts the end of a request decide counted.
func (f *Faults) leave() {
	f.mu.Lock()
	f.active--
	f.mu.Unlock()
}

func sleepContext(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// Front is a TCP listener serving a backend handler behind Faults. Its
// address stays the same while it refuses connections.
type Front struct {
	faults  *Faults
	addr    string
	tls     *tls.Config // nil serves plain HTTP
	server  *http.Server
	serving sync.WaitGroup

	mu        sync.Mutex
	listener  net.Listener // nil while refusing
	conns     map[net.Conn]*connState
	closed    bool
	listenErr error
}

// Listen serves backend on addr ("127.0.0.1:0" picks a free port) behind
// a new set of Faults.
func Listen(addr string, backend http.Handler) (*Front, error) {
	return ListenTLS(addr, backend, nil)
}

// ListenTLS is Listen serving HTTPS with config (nil serves plain HTTP). The
// faults act below TLS: a dropped connection is closed before the handshake.
func ListenTLS(addr string, backend http.Handler, config *tls.Config) (*Front, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	fr := &Front{
		faults: &Faults{},
		addr:   ln.Addr().String(),
		tls:    config,
		conns:  make(map[net.Conn]*connState),
	}
	fr.faults.refuser = fr.setRefusing
	fr.server = &http.Server{
		Handler:           fr.faults.Handler(backend),
		ReadHeaderTimeout: 30 * time.Second,
		ConnContext:       fr.connContext,
		ConnState:         fr.trackConn,
	}
	fr.listener = ln
	fr.serve(ln)
	return fr, nil
}

// URL returns "http://host:port", or "https://host:port" when serving TLS.
func (fr *Front) URL() string {
	if fr.tls != nil {
		return "https://" + fr.addr
	}
	return "http://" + fr.addr
}

// Addr returns the listening address, host:port.
func (fr *Front) Addr() string { return fr.addr }

// Faults returns the faults in front of the backend.
func (fr *Front) Faults() *Faults { return fr.faults }

// Err returns the error of the last attempt to listen again after Refuse,
// if it failed.
func (fr *Front) Err() error {
	fr.mu.Lock()
	defer fr.mu.Unlock()
	return fr.listenErr
}

// Close stops serving and closes every connection.
func (fr *Front) Close() error {
	fr.mu.Lock()
	fr.closed = true
	fr.listener = nil
	fr.mu.Unlock()
	err := fr.server.Close()
	fr.serving.Wait()
	return err
}

func (fr *Front) serve(ln net.Listener) {
	fr.serving.Add(1)
	go func() {
		defer fr.serving.Done()
		// Serve returns when the listener is closed by Refuse or Close.
		var served net.Listener = dropListener{Listener: ln, faults: fr.faults}
		if fr.tls != nil {
			served = tls.NewListener(served, fr.tls)
		}
		_ = fr.server.Serve(served)
	}()
}

// connContext tracks a connection the server has just accepted; its state goes
// with each of its requests.
func (fr *Front) connContext(ctx context.Context, c net.Conn) context.Context {
	cs := &connState{}
	fr.mu.Lock()
	fr.conns[c] = cs
	fr.mu.Unlock()
	return context.WithValue(ctx, connStateKey{}, cs)
}

func (fr *Front) trackConn(c net.Conn, state http.ConnState) {
	fr.mu.Lock()
	defer fr.mu.Unlock()
	switch state {
	case http.StateNew:
		// Accepted just before Refuse closed the listener: close it, or its
		// requests would pass while connections are refused.
		if fr.listener == nil {
			fr.closeConn(c)
		}
	case http.StateActive:
		if cs := fr.conns[c]; cs != nil {
			cs.active.Store(time.Now().UnixNano())
		}
	case http.StateClosed, http.StateHijacked:
		delete(fr.conns, c)
	}
}

// closeConn closes a connection and notes when; fr.mu is held.
func (fr *Front) closeConn(c net.Conn) {
	if cs := fr.conns[c]; cs != nil {
		cs.closed.CompareAndSwap(0, time.Now().UnixNano())
	}
	_ = c.Close()
	delete(fr.conns, c)
}

// setRefusing closes the listener and every connection, or listens again
// on the same address.
func (fr *Front) setRefusing(on bool) {
	fr.mu.Lock()
	defer fr.mu.Unlock()
	if fr.closed {
		return
	}
	if on {
		if fr.listener != nil {
			_ = fr.listener.Close()
			fr.listener = nil
		}
		for c := range fr.conns {
			fr.closeConn(c)
		}
		return
	}
	if fr.listener != nil {
		return
	}
	// The port was ours a moment ago; retry briefly in case the kernel has
	// not released it yet.
	var ln net.Listener
	var err error
	for attempt := 0; attempt < 50; attempt++ {
		if ln, err = net.Listen("tcp", fr.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		fr.listenErr = fmt.Errorf("listen again on %s: %w", fr.addr, err)
		return
	}
	fr.listenErr = nil
	fr.listener = ln
	fr.serve(ln)
}

// dropListener closes accepted connections while the faults drop them.
type dropListener struct {
	net.Listener
	faults *Faults
}

func (l dropListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if !l.faults.dropsConnections() {
			return c, nil
		}
		l.faults.countDroppedConnection()
		_ = c.Close()
	}
}

// NewProxy returns a reverse proxy to target that passes requests through
// unchanged: same method, path, query, headers and body (a request with
// Content-Length keeps it, a chunked one stays chunked), and answers
// through unchanged, compressed or not.
func NewProxy(target *url.URL) http.Handler {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.DisableCompression = true
	return &httputil.ReverseProxy{
		// SetURL also sets the Host header to the target's; no
		// X-Forwarded-* headers are added.
		Rewrite:   func(pr *httputil.ProxyRequest) { pr.SetURL(target) },
		Transport: transport,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if errors.Is(err, context.Canceled) {
				return
			}
			http.Error(w, "proxy to "+target.Redacted()+": "+err.Error(), http.StatusBadGateway)
		},
	}
}
