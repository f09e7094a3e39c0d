package cnosdbdev

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func adminCall(t *testing.T, adminURL, method, path, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, adminURL+path, strings.NewReader(body))
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

func TestAdminAPI(t *testing.T) {
	dev := New(Options{})
	fr := startFront(t, dev)
	admin := httptest.NewServer(NewAdminHandler(fr, dev))
	defer admin.Close()
	c := frontClient()

	_, _, _, err := post(t, c, fr.URL()+"/api/v1/write?db=public", "m f=1 1\nm f=2 2")
	require.NoError(t, err)

	status, body := adminCall(t, admin.URL, http.MethodGet, "/stats", "")
	require.Equal(t, http.StatusOK, status, body)
	var st AdminStats
	require.NoError(t, json.Unmarshal([]byte(body), &st))
	require.NotNil(t, st.Server)
	require.Equal(t, int64(2), st.Server.LinesAccepted)
	require.Equal(t, int64(1), st.Faults.Requests)
	require.Equal(t, fr.URL(), st.Target.URL)
	require.Equal(t, Mode24, st.Target.Mode)
	require.Contains(t, body, `"lines_accepted":2`)

	// respond
	status, body = adminCall(t, admin.URL, http.MethodPost, "/faults",
		`{"respond":{"path":"/api/v1/write","status":422,"body":`+jsonQuote(memoryExhausted)+`,"count":1}}`)
	require.Equal(t, http.StatusOK, status, body)
	status, body, _, err = post(t, c, fr.URL()+"/api/v1/write?db=public", "m f=3 3")
	require.NoError(t, err)
	require.Equal(t, 422, status)
	require.Equal(t, memoryExhausted, body)

	// refuse, then clear
	status, body = adminCall(t, admin.URL, http.MethodPost, "/faults", `{"refuse":true}`)
	require.Equal(t, http.StatusOK, status, body)
	require.Contains(t, body, `"refuse":true`)
	_, err = net.DialTimeout("tcp", fr.Addr(), 2*time.Second)
	require.Error(t, err)
	status, body = adminCall(t, admin.URL, http.MethodDelete, "/faults", "")
	require.Equal(t, http.StatusOK, status, body)
	require.Equal(t, `{"responses":[],"latency":"0s","refuse":false,"drop":false}`+"\n", body)
	status, _, _, err = post(t, c, fr.URL()+"/api/v1/sql", "select 1")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, status)

	// latency and drop together
	status, body = adminCall(t, admin.URL, http.MethodPost, "/faults", `{"latency":"10ms","drop":true}`)
	require.Equal(t, http.StatusOK, status, body)
	require.Contains(t, body, `"latency":"10ms"`)
	_, _, _, err = post(t, c, fr.URL()+"/api/v1/sql", "select 1")
	require.Error(t, err)
	status, body = adminCall(t, admin.URL, http.MethodGet, "/faults", "")
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, body, `"drop":true`)
	adminCall(t, admin.URL, http.MethodDelete, "/faults", "")

	// bad requests
	for _, bad := range []string{
		`not json`, `{}`, `{"latency":"soon"}`, `{"respond":{"path":"","status":422,"count":1}}`,
		`{"respond":{"path":"*","status":42,"count":1}}`, `{"respond":{"path":"*","status":422,"count":0}}`,
		`{"unknown":true}`,
	} {
		status, body = adminCall(t, admin.URL, http.MethodPost, "/faults", bad)
		require.Equal(t, http.StatusBadRequest, status, "%s -> %s", bad, body)
		require.Contains(t, body, `"error"`)
	}
	status, _ = adminCall(t, admin.URL, http.MethodPut, "/faults", "")
	require.Equal(t, http.StatusMethodNotAllowed, status)
}

func TestAdminStatsForAProxy(t *testing.T) {
	fr := startFront(t, http.NotFoundHandler())
	admin := httptest.NewServer(NewAdminHandler(fr, nil))
	defer admin.Close()
	status, body := adminCall(t, admin.URL, http.MethodGet, "/stats", "")
	require.Equal(t, http.StatusOK, status)
	require.NotContains(t, body, `"server"`)
	require.NotContains(t, body, `"mode"`)
}

func jsonQuote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
