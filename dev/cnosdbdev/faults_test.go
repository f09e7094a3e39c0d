package cnosdbdev

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const memoryExhausted = `{"error_code":"050033","error_message":"Memory Exhausted Retry Later"}`

// frontClient talks to a Front over fresh connections unless told otherwise.
func frontClient() *http.Client {
	return &http.Client{Transport: &http.Transport{DisableCompression: true, DisableKeepAlives: true}, Timeout: 10 * time.Second}
}

func startFront(t *testing.T, backend http.Handler) *Front {
	t.Helper()
	fr, err := Listen("127.0.0.1:0", backend)
	require.NoError(t, err)
	t.Cleanup(func() { _ = fr.Close() })
	return fr
}

// post sends one request; it is safe to call from several goroutines.
func post(t *testing.T, c *http.Client, u, body string) (int, string, http.Header, error) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(body))
	if err != nil {
		return 0, "", nil, err
	}
	req.Header.Set("Authorization", rootAuth)
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header, err
}

func TestFaultsRespondForNRequests(t *testing.T) {
	dev := New(Options{})
	fr := startFront(t, dev)
	c := frontClient()
	fr.Faults().Respond("/api/v1/write", http.StatusUnprocessableEntity, memoryExhausted, 2)

	for i := 0; i < 2; i++ {
		status, body, hdr, err := post(t, c, fr.URL()+"/api/v1/write?db=public", "m f=1 1")
		require.NoError(t, err)
		require.Equal(t, http.StatusUnprocessableEntity, status)
		require.Equal(t, memoryExhausted, body)
		require.Equal(t, "application/json", hdr.Get("Content-Type"))
	}
	// Other paths are not affected.
	status, body, _, err := post(t, c, fr.URL()+"/api/v1/sql?db=public", "select 1")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, status, body)
	require.Zero(t, dev.Stats().WriteRequests, "the answered requests never reach the backend")

	// The third write passes.
	status, body, _, err = post(t, c, fr.URL()+"/api/v1/write?db=public", "m f=1 1")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, status, body)

	st := fr.Faults().Stats()
	require.Equal(t, int64(4), st.Requests)
	require.Equal(t, int64(2), st.Responded)
	require.Equal(t, int64(2), st.Passed)
	require.Equal(t, int64(3), st.Paths["/api/v1/write"])
	require.Equal(t, int64(3), fr.Faults().Requests("/api/v1/write"))
	require.Equal(t, int64(4), fr.Faults().Requests(AnyPath))
}

func TestFaultsRespondUntilCleared(t *testing.T) {
	fr := startFront(t, New(Options{}))
	c := frontClient()
	fr.Faults().Respond(AnyPath, http.StatusInternalServerError, "", -1)
	for i := 0; i < 5; i++ {
		status, body, hdr, err := post(t, c, fr.URL()+"/api/v1/sql", "select 1")
		require.NoError(t, err)
		require.Equal(t, http.StatusInternalServerError, status)
		require.Empty(t, body)
		require.Empty(t, hdr.Get("Content-Type"))
	}
	require.Len(t, fr.Faults().State().Responses, 1)
	fr.Faults().Clear()
	status, _, _, err := post(t, c, fr.URL()+"/api/v1/sql", "select 1")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, status)
}

func TestFaultsRespondQueueAndConcurrency(t *testing.T) {
	fr := startFront(t, New(Options{}))
	f := fr.Faults()
	f.Respond("/api/v1/write", 422, `{"error_code":"050016","error_message":"pre-execution failed: request timed out"}`, 3)
	f.Respond("/api/v1/write", 422, memoryExhausted, 2)

	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	var mu sync.Mutex
	bodies := map[string]int{}
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			status, body, _, err := post(t, c, fr.URL()+"/api/v1/write?db=public", "m f=1 1")
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if status == http.StatusOK {
				body = "ok"
			}
			bodies[body]++
		}()
	}
	wg.Wait()
	require.Equal(t, 3, bodies[`{"error_code":"050016","error_message":"pre-execution failed: request timed out"}`])
	require.Equal(t, 2, bodies[memoryExhausted])
	require.Equal(t, 15, bodies["ok"])
	require.Empty(t, f.State().Responses)
}

func TestFaultsLatency(t *testing.T) {
	fr := startFront(t, New(Options{}))
	const delay = 50 * time.Millisecond
	fr.Faults().SetLatency(delay)
	start := time.Now()
	status, _, _, err := post(t, frontClient(), fr.URL()+"/api/v1/sql", "select 1")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, status)
	require.GreaterOrEqual(t, time.Since(start), delay)

	// A client that gives up first: the request is not passed on.
	fr.Faults().SetLatency(time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, fr.URL()+"/api/v1/sql", strings.NewReader("select 1"))
	require.NoError(t, err)
	resp, err := frontClient().Do(req)
	if err == nil {
		resp.Body.Close()
	}
	require.Error(t, err)
	fr.Faults().SetLatency(0)
}

func TestFaultsRefuseClosesThePortAndReopensIt(t *testing.T) {
	fr := startFront(t, New(Options{}))
	keepAlive := &http.Client{Transport: &http.Transport{}}
	status, _, _, err := post(t, keepAlive, fr.URL()+"/api/v1/sql", "select 1")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, status)

	fr.Faults().Refuse(true)
	_, err = net.DialTimeout("tcp", fr.Addr(), 2*time.Second)
	require.Error(t, err)
	require.True(t, errors.Is(err, syscall.ECONNREFUSED), "want connection refused, got %v", err)
	// The connection kept alive from before is gone too.
	_, _, _, err = post(t, keepAlive, fr.URL()+"/api/v1/sql", "select 1")
	require.Error(t, err)
	require.True(t, fr.Faults().State().Refuse)

	fr.Faults().Refuse(false)
	require.NoError(t, fr.Err())
	status, body, _, err := post(t, keepAlive, fr.URL()+"/api/v1/sql", "select 1")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, "Int64(1)\n1\n", body)

	// Clear also listens again.
	fr.Faults().Refuse(true)
	fr.Faults().Clear()
	status, _, _, err = post(t, frontClient(), fr.URL()+"/api/v1/sql", "select 1")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, status)
	require.Zero(t, fr.Faults().Stats().PassedWhileRefusing)
}

// TestFaultsRefuseCountsWhatItLetsThrough: a request whose headers were read
// before Refuse closed its connection was in flight and still reaches the backend;
// only one that began after the refusal took effect was let through.
func TestFaultsRefuseCountsWhatItLetsThrough(t *testing.T) {
	fr := startFront(t, New(Options{}))
	f := fr.Faults()
	h := f.Handler(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	serve := func(cs *connState) {
		req := httptest.NewRequest(http.MethodPost, "/api/v1/write?db=public", strings.NewReader("m f=1 1"))
		if cs != nil {
			req = req.WithContext(context.WithValue(req.Context(), connStateKey{}, cs))
		}
		h.ServeHTTP(httptest.NewRecorder(), req)
	}
	early := time.Now().UnixNano()
	f.Refuse(true)
	late := time.Now().UnixNano()

	read := &connState{} // headers read before the refusal, handled after it
	read.active.Store(early)
	serve(read)
	closed := &connState{} // closed by the refusal before its headers were noted
	closed.closed.Store(early)
	closed.active.Store(late)
	serve(closed)
	st := f.Stats()
	require.Equal(t, int64(2), st.Passed)
	require.Zero(t, st.PassedWhileRefusing, "requests in flight when the fault was set")

	missed := &connState{} // read on a connection the refusal did not close
	missed.active.Store(late)
	serve(missed)
	serve(nil) // without a Front: it begins as it reaches the fault layer
	require.Equal(t, int64(2), f.Stats().PassedWhileRefusing)

	f.Refuse(false)
	serve(nil)
	st = f.Stats()
	require.Equal(t, int64(5), st.Passed)
	require.Equal(t, int64(2), st.PassedWhileRefusing, "nothing counts once connections are taken again")
}

// TestFrontClosesAConnectionAcceptedAsItRefuses: a connection the server accepted
// just before Refuse closed the listener, and tracks only after, is closed too.
func TestFrontClosesAConnectionAcceptedAsItRefuses(t *testing.T) {
	fr := startFront(t, New(Options{}))
	server, client := net.Pipe()
	defer client.Close()
	require.NoError(t, client.SetWriteDeadline(time.Now().Add(5*time.Second)))
	fr.Faults().Refuse(true)
	ctx := fr.connContext(context.Background(), server)
	fr.trackConn(server, http.StateNew)
	_, err := client.Write([]byte("POST /api/v1/write HTTP/1.1\r\n"))
	require.ErrorIs(t, err, io.ErrClosedPipe)
	require.False(t, requestBegan(ctx).After(time.Now()), "a request on it began no later than its close")
	fr.Faults().Refuse(false)
	require.NoError(t, fr.Err())
}

func TestFaultsDrop(t *testing.T) {
	dev := New(Options{})
	fr := startFront(t, dev)
	keepAlive := &http.Client{Transport: &http.Transport{}}
	status, _, _, err := post(t, keepAlive, fr.URL()+"/api/v1/sql", "select 1")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, status)

	fr.Faults().Drop(true)
	// On a new connection.
	_, _, _, err = post(t, frontClient(), fr.URL()+"/api/v1/write?db=public", "m f=1 1")
	require.Error(t, err)
	// On the connection opened before.
	_, _, _, err = post(t, keepAlive, fr.URL()+"/api/v1/write?db=public", "m f=1 1")
	require.Error(t, err)
	require.GreaterOrEqual(t, fr.Faults().Stats().Dropped, int64(2))
	require.Zero(t, dev.Stats().WriteRequests)

	fr.Faults().Drop(false)
	status, _, _, err = post(t, keepAlive, fr.URL()+"/api/v1/write?db=public", "m f=1 1")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, status)
}

func TestFaultsWithoutFront(t *testing.T) {
	var f Faults
	hs := httptest.NewServer(f.Handler(New(Options{})))
	defer hs.Close()
	f.Respond("/api/v1/sql", http.StatusTeapot, "no", 1)
	status, body, _, err := post(t, frontClient(), hs.URL+"/api/v1/sql", "select 1")
	require.NoError(t, err)
	require.Equal(t, http.StatusTeapot, status)
	require.Equal(t, "no", body)
	// Without a listener to close, refusing drops requests.
	f.Refuse(true)
	_, _, _, err = post(t, frontClient(), hs.URL+"/api/v1/sql", "select 1")
	require.Error(t, err)
	f.Refuse(false)
	status, _, _, err = post(t, frontClient(), hs.URL+"/api/v1/sql", "select 1")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, status)
}

func TestProxyPassesRequestsThrough(t *testing.T) {
	dev := New(Options{})
	var mu sync.Mutex
	var seen []*http.Request
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Clone(context.Background()))
		mu.Unlock()
		dev.ServeHTTP(w, r)
	}))
	defer backend.Close()
	target, err := url.Parse(backend.URL)
	require.NoError(t, err)
	fr := startFront(t, NewProxy(target))
	c := frontClient()

	status, body, _, err := post(t, c, fr.URL()+"/api/v1/write?db=public&precision=ms", "m f=1 1")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, status, body)
	mu.Lock()
	require.Len(t, seen, 1)
	require.Equal(t, "/api/v1/write", seen[0].URL.Path)
	require.Equal(t, "db=public&precision=ms", seen[0].URL.RawQuery)
	require.Equal(t, int64(len("m f=1 1")), seen[0].ContentLength)
	require.Equal(t, rootAuth, seen[0].Header.Get("Authorization"))
	require.Empty(t, seen[0].Header.Get("Accept-Encoding"), "the proxy must not ask for compression itself")
	mu.Unlock()

	// A chunked request stays chunked, so the backend refuses it.
	req, err := http.NewRequest(http.MethodPost, fr.URL()+"/api/v1/write?db=public", io.MultiReader(strings.NewReader("m f=1 1")))
	require.NoError(t, err)
	req.Header.Set("Authorization", rootAuth)
	resp, err := c.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusInternalServerError, resp.StatusCode)

	// Faults work in front of the proxy as in front of the emulator.
	fr.Faults().Respond("/api/v1/write", 422, memoryExhausted, 1)
	status, body, _, err = post(t, c, fr.URL()+"/api/v1/write?db=public", "m f=1 1")
	require.NoError(t, err)
	require.Equal(t, 422, status)
	require.Equal(t, memoryExhausted, body)
}
