package cnosdbdev

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"
)

const rootAuth = "Basic cm9vdDo=" // root with an empty password

// testServer is an emulator behind a real TCP listener.
type testServer struct {
	*Server
	url    string
	client *http.Client
}

func startServer(t *testing.T, opts Options) *testServer {
	t.Helper()
	s := New(opts)
	hs := httptest.NewServer(s)
	t.Cleanup(hs.Close)
	// No transparent compression: the tests see exactly what is sent.
	transport := &http.Transport{DisableCompression: true}
	t.Cleanup(transport.CloseIdleConnections)
	return &testServer{Server: s, url: hs.URL, client: &http.Client{Transport: transport}}
}

type answer struct {
	status int
	header http.Header
	body   string
}

// send makes one request with root's credentials unless header overrides
// them; a header value of "" removes the header.
func (ts *testServer) send(t *testing.T, method, path string, header map[string]string, body []byte) answer {
	t.Helper()
	req, err := http.NewRequest(method, ts.url+path, bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", rootAuth)
	for k, v := range header {
		if v == "" {
			req.Header.Del(k)
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := ts.client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return answer{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

func (ts *testServer) write(t *testing.T, db, lines string) answer {
	t.Helper()
	return ts.send(t, http.MethodPost, "/api/v1/write?db="+db, nil, []byte(lines))
}

func (ts *testServer) mustWrite(t *testing.T, db, lines string) {
	t.Helper()
	a := ts.write(t, db, lines)
	require.Equal(t, http.StatusOK, a.status, a.body)
	require.Empty(t, a.body)
}

func (ts *testServer) sql(t *testing.T, db, stmt string, header map[string]string) answer {
	t.Helper()
	return ts.send(t, http.MethodPost, "/api/v1/sql?db="+db, header, []byte(stmt))
}

func (ts *testServer) mustSQL(t *testing.T, db, stmt string) string {
	t.Helper()
	a := ts.sql(t, db, stmt, nil)
	require.Equal(t, http.StatusOK, a.status, a.body)
	return a.body
}

func errorBody(code, message string) string {
	return string(appendJSONString(append(appendJSONString([]byte(`{"error_code":`), code), `,"error_message":`...), message)) + "}"
}
