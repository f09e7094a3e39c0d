package main

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/dev/cnosdbdev"
)

// Before telegraf-cnosdb creates the database and writes the first batch, the count is
// 0 rows, not an error: the demo polls it from the start (HTTP 422 "Table not found"
// used to end it).
func TestCountIsZeroUntilTheTableExists(t *testing.T) {
	front, err := cnosdbdev.Listen("127.0.0.1:0", cnosdbdev.New(cnosdbdev.Options{}))
	require.NoError(t, err)
	t.Cleanup(func() { _ = front.Close() })
	db := &cnosdb{url: front.URL(), user: "root"}

	n, err := db.count()
	require.NoError(t, err, "no database yet")
	require.Zero(t, n)

	_, err = db.sql("CREATE DATABASE IF NOT EXISTS " + database)
	require.NoError(t, err)
	n, err = db.count()
	require.NoError(t, err, "no table yet")
	require.Zero(t, n)

	req, err := http.NewRequest(http.MethodPost, front.URL()+"/api/v1/write?db="+database,
		strings.NewReader(table+" pressure=1000.5,temperature=20.1,visibility=3 1\n"+
			table+" pressure=1001.5,temperature=21.1,visibility=4 2\n"))
	require.NoError(t, err)
	req.SetBasicAuth(db.user, db.password)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	n, err = db.count()
	require.NoError(t, err)
	require.Equal(t, 2, n)

	// Other errors still are errors.
	_, err = db.sql("SELECT nonsense FROM")
	require.Error(t, err)
	require.False(t, missing(err), "%v", err)
}
