package cnosdbtest

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/dev/cnosdbdev"
)

func postLines(t *testing.T, tg *Target, db, body string) (int, string, error) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, tg.URL+"/api/v1/write?db="+db, strings.NewReader(body))
	require.NoError(t, err)
	req.SetBasicAuth(tg.User, tg.Password)
	resp, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

func TestStartEmulator(t *testing.T) {
	t.Setenv("CNOSDB_URL", "")
	tg := Start(t, cnosdbdev.Options{})
	require.False(t, tg.Real)
	require.NotNil(t, tg.Dev)
	require.True(t, strings.HasPrefix(tg.URL, "http://127.0.0.1:"), tg.URL)
	require.Equal(t, "root", tg.User)

	db := tg.NewDatabase(t, "PRECISION 'ms'")
	require.True(t, strings.HasPrefix(db, "t_"), db)
	require.Len(t, db, 18)
	require.Contains(t, tg.SQL(t, "public", "SHOW DATABASES"), "\n"+db+"\n")

	require.Zero(t, tg.Count(t, db, "cpu"), "a missing table has no rows")
	require.Nil(t, tg.Rows(t, db, "cpu"))

	req, err := http.NewRequest(http.MethodPost, tg.URL+"/api/v1/write?precision=ms&db="+db,
		strings.NewReader("cpu,host=b usage=2 1690510332000\ncpu,host=a usage=1 1690510331000\ncpu,host=a usage=3 1690510331000"))
	require.NoError(t, err)
	req.SetBasicAuth(tg.User, tg.Password)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	require.Equal(t, 2, tg.Count(t, db, "cpu"))
	require.Equal(t, []map[string]string{
		{"time": "2023-07-28T02:12:11.000000000", "host": "a", "usage": "3.0"},
		{"time": "2023-07-28T02:12:12.000000000", "host": "b", "usage": "2.0"},
	}, tg.Rows(t, db, "cpu"))

	tg.Write(t, db, "mem free=1i 1")
	require.Equal(t, 1, tg.Count(t, db, "mem"))
	require.Equal(t, int64(4), tg.Dev.Stats().LinesAccepted)
}

func TestHelpersBypassFaults(t *testing.T) {
	t.Setenv("CNOSDB_URL", "")
	tg := Start(t, cnosdbdev.Options{})
	db := tg.NewDatabase(t, "")
	tg.Faults().Respond(cnosdbdev.AnyPath, http.StatusUnprocessableEntity,
		`{"error_code":"050033","error_message":"Memory Exhausted Retry Later"}`, -1)

	status, body, err := postLines(t, tg, db, "m f=1 1")
	require.NoError(t, err)
	require.Equal(t, http.StatusUnprocessableEntity, status)
	require.Contains(t, body, "Memory Exhausted Retry Later")

	tg.Write(t, db, "m f=1 1")
	require.Equal(t, 1, tg.Count(t, db, "m"))
	require.Equal(t, int64(1), tg.Faults().Stats().Responded)
}

func TestRefuseThroughTarget(t *testing.T) {
	t.Setenv("CNOSDB_URL", "")
	tg := Start(t, cnosdbdev.Options{})
	tg.Faults().Refuse(true)
	_, err := net.DialTimeout("tcp", strings.TrimPrefix(tg.URL, "http://"), 2*time.Second)
	require.True(t, errors.Is(err, syscall.ECONNREFUSED), "%v", err)
	tg.Faults().Refuse(false)
	status, _, err := postLines(t, tg, "public", "m f=1 1")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, status)
}

func TestStartWithOptions(t *testing.T) {
	t.Setenv("CNOSDB_URL", "")
	tg := Start(t, cnosdbdev.Options{Mode: cnosdbdev.Mode23, AuthEnabled: true, Users: map[string]string{"writer": "pw"}})
	require.Equal(t, "writer", tg.User)
	require.Equal(t, "pw", tg.Password)
	require.Equal(t, cnosdbdev.Mode23, tg.Dev.Mode())
	db := tg.NewDatabase(t, "")
	tg.Write(t, db, "m f=1 1\nm f=2 1")
	// 2.3 has no exact_count(*): Count falls back to COUNT(*).
	require.Equal(t, 1, tg.Count(t, db, "m"))

	status, _, err := postLines(t, tg, db, "m f=.5")
	require.NoError(t, err)
	require.Equal(t, http.StatusInternalServerError, status, "2.3 answers bad line protocol with an empty 500")
}

func TestStartAgainstARealServer(t *testing.T) {
	// Another emulator plays the real CnosDB behind CNOSDB_URL.
	real := cnosdbdev.New(cnosdbdev.Options{Users: map[string]string{"admin": "secret"}, AuthEnabled: true})
	hs := httptest.NewServer(real)
	t.Cleanup(hs.Close) // after the Target's own cleanups, which drop the database
	t.Setenv("CNOSDB_URL", hs.URL+"/")
	t.Setenv("CNOSDB_USER", "admin")
	t.Setenv("CNOSDB_PASSWORD", "secret")

	tg := Start(t, cnosdbdev.Options{})
	require.True(t, tg.Real)
	require.Nil(t, tg.Dev)
	require.NotEqual(t, hs.URL, tg.URL, "the code under test talks to the fault front")
	require.Equal(t, "admin", tg.User)

	db := tg.NewDatabase(t, "TTL 'INF'")
	status, body, err := postLines(t, tg, db, "cpu,host=a usage=1 1\ncpu,host=a usage=2 2")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, status, body)
	require.Equal(t, 2, tg.Count(t, db, "cpu"))
	require.Len(t, tg.Rows(t, db, "cpu"), 2)
	require.Equal(t, int64(2), real.Stats().LinesAccepted)

	tg.Faults().Drop(true)
	_, _, err = postLines(t, tg, db, "cpu usage=3 3")
	require.Error(t, err)
	tg.Faults().Drop(false)
	require.Equal(t, 2, tg.Count(t, db, "cpu"))
}

func TestDatabaseIsDroppedAtCleanup(t *testing.T) {
	t.Setenv("CNOSDB_URL", "")
	var tg *Target
	var db string
	t.Run("inner", func(t *testing.T) {
		tg = Start(t, cnosdbdev.Options{})
		db = tg.NewDatabase(t, "")
		require.Contains(t, tg.SQL(t, "public", "SHOW DATABASES"), db)
	})
	// The inner test's cleanups ran: the database is gone.
	req := httptest.NewRequest(http.MethodPost, "/api/v1/sql", strings.NewReader("SHOW DATABASES"))
	req.Header.Set("Authorization", "Basic cm9vdDo=")
	req.Header.Set("Content-Length", "14")
	rec := httptest.NewRecorder()
	tg.Dev.ServeHTTP(rec, req)
	require.Equal(t, http.StatusOK, rec.Code)
	require.Equal(t, "database_name\ncluster_schema\npublic\nusage_schema\n", rec.Body.String())
}

// TestStartTLS: the HTTPS front is trusted with CAFile only, and proxies to a real
// CnosDB when CNOSDB_URL is set.
func TestStartTLS(t *testing.T) {
	for _, backend := range []string{"emulator", "real"} {
		t.Run(backend, func(t *testing.T) {
			var real *cnosdbdev.Server
			if backend == "real" {
				real = cnosdbdev.New(cnosdbdev.Options{})
				hs := httptest.NewServer(real)
				t.Cleanup(hs.Close)
				t.Setenv("CNOSDB_URL", hs.URL)
			} else {
				t.Setenv("CNOSDB_URL", "")
			}
			tg := StartTLS(t, cnosdbdev.Options{})
			require.True(t, strings.HasPrefix(tg.URL, "https://127.0.0.1:"), tg.URL)
			require.FileExists(t, tg.CAFile)
			db := tg.NewDatabase(t, "")

			_, _, err := postLines(t, tg, db, "m f=1 1")
			require.ErrorContains(t, err, "x509: certificate signed by unknown authority", "not trusted without the CA")

			pem, err := os.ReadFile(tg.CAFile)
			require.NoError(t, err)
			pool := x509.NewCertPool()
			require.True(t, pool.AppendCertsFromPEM(pem))
			client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 10 * time.Second}
			req, err := http.NewRequest(http.MethodPost, tg.URL+"/api/v1/write?db="+db, strings.NewReader("m f=1 1"))
			require.NoError(t, err)
			req.SetBasicAuth(tg.User, tg.Password)
			resp, err := client.Do(req)
			require.NoError(t, err)
			resp.Body.Close()
			require.Equal(t, http.StatusOK, resp.StatusCode)
			require.Equal(t, 1, tg.Count(t, db, "m"))
			if real != nil {
				require.Equal(t, int64(1), real.Stats().LinesAccepted, "written through to the real server")
			}
		})
	}
}
