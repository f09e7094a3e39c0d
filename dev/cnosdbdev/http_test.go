package cnosdbdev

import (
	"bytes"
	"compress/zlib"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/stretchr/testify/require"
)

type step struct {
	path, body string
}

type exchangeCase struct {
	name     string
	opts     Options
	setup    []step
	method   string // POST when empty
	path     string
	header   map[string]string
	body     string
	status   int
	wantBody string
	wantType string // Content-Type; empty: none
}

func runExchanges(t *testing.T, cases []exchangeCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ts := startServer(t, tc.opts)
			for _, s := range tc.setup {
				a := ts.send(t, http.MethodPost, s.path, nil, []byte(s.body))
				require.Equal(t, http.StatusOK, a.status, "setup %s %q: %s", s.path, s.body, a.body)
			}
			method := tc.method
			if method == "" {
				method = http.MethodPost
			}
			a := ts.send(t, method, tc.path, tc.header, []byte(tc.body))
			require.Equal(t, tc.status, a.status, a.body)
			require.Equal(t, tc.wantBody, a.body)
			require.Equal(t, tc.wantType, a.header.Get("Content-Type"))
		})
	}
}

const jsonType = "application/json"

func TestRoutes(t *testing.T) {
	runExchanges(t, []exchangeCase{
		{name: "ping GET", method: http.MethodGet, path: "/api/v1/ping", status: 200,
			wantBody: `{"version":"` + New(Options{}).Version() + `","status":"healthy"}`, wantType: jsonType},
		{name: "ping HEAD", method: http.MethodHead, path: "/api/v1/ping", status: 200, wantType: jsonType},
		{name: "ping needs no credentials", method: http.MethodGet, path: "/api/v1/ping",
			header: map[string]string{"Authorization": ""}, status: 200,
			wantBody: `{"version":"` + New(Options{}).Version() + `","status":"healthy"}`, wantType: jsonType},
		{name: "ping POST", path: "/api/v1/ping", status: 405},
		{name: "write GET", method: http.MethodGet, path: "/api/v1/write", status: 405},
		{name: "write PUT", method: http.MethodPut, path: "/api/v1/write", status: 405},
		{name: "sql DELETE", method: http.MethodDelete, path: "/api/v1/sql", status: 405},
		{name: "sql HEAD", method: http.MethodHead, path: "/api/v1/sql", status: 405},
		{name: "unknown path", path: "/api/v1/xx", status: 404},
		{name: "root path", method: http.MethodGet, path: "/", status: 404},
	})
}

func TestPingVersions(t *testing.T) {
	v24 := New(Options{}).Version()
	require.True(t, strings.HasPrefix(v24, "2.4.3, revision: dev, build_time: "), v24)
	_, err := time.Parse(time.RFC3339, strings.TrimPrefix(v24, "2.4.3, revision: dev, build_time: "))
	require.NoError(t, err)
	require.Equal(t, "2.3.5, revision dev", New(Options{Mode: Mode23}).Version())
}

func TestWriteStatusAndErrorCodes(t *testing.T) {
	createDB := func(stmt string) step { return step{path: "/api/v1/sql", body: stmt} }
	writePublic := func(lines string) step { return step{path: "/api/v1/write?db=public", body: lines} }
	runExchanges(t, []exchangeCase{
		{name: "accepted: 200, empty body, no Content-Type", path: "/api/v1/write?db=public", body: "m,t=a f=1 1", status: 200},
		{name: "empty body is accepted", path: "/api/v1/write?db=public", status: 200},
		{name: "db defaults to public", path: "/api/v1/write", body: "m f=1 1", status: 200},
		{name: "unknown parameters are ignored", path: "/api/v1/write?db=public&pretty=true&consistency=any", body: "m f=1 1", status: 200},
		{name: "missing Authorization", path: "/api/v1/write?db=public", header: map[string]string{"Authorization": ""},
			body: "m f=1", status: 400, wantType: jsonType,
			wantBody: `{"error_code":"000000","error_message":"Missing request header \"authorization\""}`},
		{name: "Bearer token", path: "/api/v1/write?db=public", header: map[string]string{"Authorization": "Bearer abc"},
			body: "m f=1", status: 400, wantType: jsonType,
			wantBody: errorBody("040006", "Parse auth, malformed basic auth encoding: Bearer abc")},
		{name: "malformed base64", path: "/api/v1/write?db=public", header: map[string]string{"Authorization": "Basic !!!"},
			body: "m f=1", status: 400, wantType: jsonType,
			wantBody: errorBody("040006", "Parse auth, malformed basic auth encoding: Basic !!!")},
		{name: "base64 without colon", path: "/api/v1/write?db=public", header: map[string]string{"Authorization": "Basic cm9vdA=="},
			body: "m f=1", status: 400, wantType: jsonType,
			wantBody: errorBody("040006", "Parse auth, malformed basic auth encoding: Basic cm9vdA==")},
		{name: "unknown user with auth off", path: "/api/v1/write?db=public", header: map[string]string{"Authorization": "Basic Ym9iOg=="},
			body: "m f=1", status: 422, wantType: jsonType,
			wantBody: errorBody("010016", "Auth error: The user bob not found")},
		{name: "any password with auth off", path: "/api/v1/write?db=public", header: map[string]string{"Authorization": "Basic cm9vdDp3cm9uZw=="},
			body: "m f=1", status: 200},
		{name: "unknown tenant", path: "/api/v1/write?db=public&tenant=foo", body: "m f=1", status: 422, wantType: jsonType,
			wantBody: errorBody("010016", "Auth error: The tenant foo not found")},
		{name: "wrong password with auth on", opts: Options{AuthEnabled: true, Users: map[string]string{"root": "secret"}},
			path: "/api/v1/write?db=public", body: "m f=1", status: 422, wantType: jsonType,
			wantBody: errorBody("010016", "Auth error: Access denied for user 'root' (using xxx) username or password invalid")},
		{name: "right password with auth on", opts: Options{AuthEnabled: true, Users: map[string]string{"root": "secret"}},
			path: "/api/v1/write?db=public", header: map[string]string{"Authorization": "Basic cm9vdDpzZWNyZXQ="}, body: "m f=1", status: 200},
		{name: "unknown database", path: "/api/v1/write?db=telegraf", body: "cpu usage=1", status: 422, wantType: jsonType,
			wantBody: `{"error_code":"030017","error_message":"Database not found: \"telegraf\""}`},
		{name: "database name is case-sensitive", setup: []step{createDB("CREATE DATABASE Telegraf")},
			path: "/api/v1/write?db=Telegraf", body: "cpu usage=1", status: 422, wantType: jsonType,
			wantBody: `{"error_code":"030017","error_message":"Database not found: \"Telegraf\""}`},
		{name: "bad line protocol", path: "/api/v1/write?db=public", body: "test,t2=t22,f2=2 1642176000000000000",
			status: 422, wantType: jsonType,
			wantBody: errorBody("040004", "Error parsing message: unexpect end line start at '17'")},
		{name: "line protocol is checked before the database", path: "/api/v1/write?db=nosuch", body: "m f=.5",
			status: 422, wantType: jsonType, wantBody: errorBody("040004", "Error parsing message: invalid field value: '.5'")},
		{name: "invalid UTF-8", path: "/api/v1/write?db=public", body: "m,t=\xff f=1", status: 422, wantType: jsonType,
			wantBody: errorBody("040015", "Invalid utf-8 sequence: invalid utf-8 sequence")},
		{name: "Content-Encoding is case-sensitive", path: "/api/v1/write?db=public", header: map[string]string{"Content-Encoding": "GZIP"},
			body: "m f=1", status: 400, wantType: jsonType,
			wantBody: errorBody("040005", "Invalid header: content encoding not support: GZIP")},
		{name: "undecodable gzip body", path: "/api/v1/write?db=public", header: map[string]string{"Content-Encoding": "gzip"},
			body: "m f=1", status: 400, wantType: jsonType, wantBody: errorBody("040013", "Error decode request: invalid gzip header")},
		{name: "zlib is not raw deflate", path: "/api/v1/write?db=public", header: map[string]string{"Content-Encoding": "deflate"},
			body: string(zlibCompress(t, "m f=1")), status: 400, wantType: jsonType,
			wantBody: errorBody("040013", "Error decode request: corrupt deflate stream")},
		{name: "body over the limit", opts: Options{MaxBodyBytes: 10}, path: "/api/v1/write?db=public", body: "m f=1 1234567890", status: 413},
		{name: "body at the limit", opts: Options{MaxBodyBytes: 11}, path: "/api/v1/write?db=public", body: "m f=1 12345", status: 200},
		{name: "limit applies to the compressed size", opts: Options{MaxBodyBytes: 200},
			path: "/api/v1/write?db=public", header: map[string]string{"Content-Encoding": "gzip"},
			body: string(gzipCompress(t, strings.Repeat("m,t=a f=1 1\n", 100))), status: 200},
		{name: "duplicate query parameter", path: "/api/v1/write?db=public&db=public", body: "m f=1", status: 500},
		{name: "column type conflict", setup: []step{writePublic("cpu usage_idle=1.5 1")},
			path: "/api/v1/write?db=public", body: "cpu usage_idle=2i 2", status: 422, wantType: jsonType,
			wantBody: errorBody("050014", "Apply engine failed: DataSchemaError: Column 'usage_idle' type error, found I64 expected F64")},
		{name: "field where a tag is", setup: []step{writePublic("cpu,host=a f=1 1")},
			path: "/api/v1/write?db=public", body: "cpu host=1 2", status: 422, wantType: jsonType,
			wantBody: errorBody("050014", "Apply engine failed: DataSchemaError: Column 'host' type error, found F64 expected TAG")},
		{name: "tag where a field is", setup: []step{writePublic("cpu f=1 1")},
			path: "/api/v1/write?db=public", body: "cpu,f=x g=1 2", status: 422, wantType: jsonType,
			wantBody: errorBody("050014", "Apply engine failed: DataSchemaError: Column 'f' type error, found TAG expected F64")},
		{name: "a field named time", path: "/api/v1/write?db=public", body: "cpu time=1i 2", status: 422, wantType: jsonType,
			wantBody: errorBody("050014", "Apply engine failed: DataSchemaError: Column 'time' type error, found I64 expected TimestampNanosecond")},
		{name: "a tag named time", path: "/api/v1/write?db=public", body: "cpu,time=x f=1 2", status: 422, wantType: jsonType,
			wantBody: errorBody("050014", "line to batch error: Expected i64 type as time column")},
		{name: "one field with two types in a request", path: "/api/v1/write?db=public", body: "cpu f=1i 1\ncpu f=2 2",
			status: 422, wantType: jsonType, wantBody: errorBody("050014", "line to batch error: Expected f64 column")},
		{name: "a tag and a field of one name in a request", path: "/api/v1/write?db=public", body: "cpu,x=a f=1 1\ncpu x=2i 2",
			status: 422, wantType: jsonType, wantBody: errorBody("050014", "line to batch error: Expected i64 column")},
		{name: "point older than the TTL", setup: []step{createDB("CREATE DATABASE short WITH TTL '1d'")},
			path: "/api/v1/write?db=short", body: "cpu f=1 1000000000", status: 422, wantType: jsonType,
			wantBody: errorBody("030034", "Operation not support: create expired bucket")},
		{name: "no timestamp with precision=ms overflows", path: "/api/v1/write?db=public&precision=ms", body: "cpu f=1",
			status: 422, wantType: jsonType, wantBody: errorBody("050014", "timestamp overflow")},
		{name: "a line without fields", path: "/api/v1/write?db=public", body: "cpu f=",
			status: 422, wantType: jsonType, wantBody: errorBody("050014", "Apply engine failed: Fields can't be empty")},
		{name: "header values must be ASCII", path: "/api/v1/write?db=public", header: map[string]string{"Accept": "t\u00e9xt/csv"},
			body: "m f=1", status: 500},
		{name: "mock InfluxDB endpoint needs no credentials", path: "/write?db=public",
			header: map[string]string{"Authorization": ""}, body: "m f=1 1", status: 200},
		{name: "mock InfluxDB endpoint with a missing database", path: "/write?db=nosuch", body: "m f=1 1",
			status: 422, wantType: jsonType, wantBody: errorBody("030017", `Database not found: "nosuch"`)},
	})
}

func TestWriteStatusAndErrorCodes23(t *testing.T) {
	v23 := Options{Mode: Mode23}
	runExchanges(t, []exchangeCase{
		{name: "bad line protocol: 500 with an empty body", opts: v23, path: "/api/v1/write?db=public",
			body: "test,t2=t22,f2=2 1642176000000000000", status: 500},
		{name: "lenient escapes are accepted", opts: v23, path: "/api/v1/write?db=public",
			body: `m,path=C:\Windows s="a\nb" 1`, status: 200},
		{name: "invalid UTF-8 is replaced, not refused", opts: v23, path: "/api/v1/write?db=public",
			body: "m,t=\xff f=1 1", status: 200},
		{name: "column type conflict", opts: v23, setup: []step{{path: "/api/v1/write?db=public", body: "cpu f=1 1"}},
			path: "/api/v1/write?db=public", body: "cpu f=1i 2", status: 422, wantType: jsonType,
			wantBody: errorBody("020004", "DataSchemaError: unrecognized field type f")},
		{name: "snappy did not exist yet", opts: v23, path: "/api/v1/write?db=public",
			header: map[string]string{"Content-Encoding": "snappy"}, body: "m f=1", status: 400, wantType: jsonType,
			wantBody: errorBody("040005", "Invalid header: content encoding not support: snappy")},
		{name: "undecodable body: 500 with an empty body", opts: v23, path: "/api/v1/write?db=public",
			header: map[string]string{"Content-Encoding": "gzip"}, body: "m f=1", status: 500},
		{name: "expired point", opts: v23, setup: []step{{path: "/api/v1/sql", body: "CREATE DATABASE short WITH TTL '1d'"}},
			path: "/api/v1/write?db=short", body: "cpu f=1 1000000000", status: 422, wantType: jsonType,
			wantBody: errorBody("050014", "write expired time data not permit")},
	})
}

func TestChunkedWriteIsRefused(t *testing.T) {
	for _, mode := range []string{Mode24, Mode23} {
		s := New(Options{Mode: mode})
		seen := make(chan []string, 1)
		hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			seen <- r.TransferEncoding
			s.ServeHTTP(w, r)
		}))
		// A reader of unknown length makes the client send chunked.
		body := io.MultiReader(strings.NewReader("m f=1 1\n"), strings.NewReader("m f=2 2\n"))
		req, err := http.NewRequest(http.MethodPost, hs.URL+"/api/v1/write?db=public", body)
		require.NoError(t, err)
		req.Header.Set("Authorization", rootAuth)
		resp, err := hs.Client().Do(req)
		require.NoError(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		hs.Close()
		require.Equal(t, []string{"chunked"}, <-seen)
		require.Equal(t, http.StatusInternalServerError, resp.StatusCode)
		require.Empty(t, b)
		require.Equal(t, int64(0), s.Stats().LinesAccepted)
	}
}

func (ts *testServer) mustCount(t *testing.T, db, table string) int {
	t.Helper()
	a := ts.sql(t, db, "SELECT exact_count(*) FROM "+table, nil)
	if a.status == http.StatusUnprocessableEntity && strings.Contains(a.body, "Table not found") {
		return 0
	}
	require.Equal(t, http.StatusOK, a.status, a.body)
	lines := strings.Split(strings.TrimSuffix(a.body, "\n"), "\n")
	require.Len(t, lines, 2, a.body)
	require.Equal(t, "COUNT(UInt8(1))", lines[0])
	n := 0
	for _, c := range lines[1] {
		n = n*10 + int(c-'0')
	}
	return n
}

func TestParserCrashClosesTheConnection(t *testing.T) {
	ts := startServer(t, Options{})
	req, err := http.NewRequest(http.MethodPost, ts.url+"/api/v1/write?db=public", strings.NewReader("m f=,g=1"))
	require.NoError(t, err)
	req.Header.Set("Authorization", rootAuth)
	resp, err := ts.client.Do(req)
	if err == nil {
		resp.Body.Close()
	}
	require.Error(t, err, "the server must close the connection without an answer")
	// The server itself keeps serving.
	ts.mustWrite(t, "public", "m f=1 1")
}

func TestWholeRequestIsRejected(t *testing.T) {
	tests := []struct {
		name string
		body string
	}{
		{"bad last line", "good f=1 1\ngood f=2 2\nbad f=.5 3"},
		{"type conflict on the last line", "good f=1 1\nother g=1i 2\nother g=2 3"},
		{"expired point on the last line", "good f=1 1700000000000000000\ngood f=2 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := startServer(t, Options{})
			ts.mustSQL(t, "public", "CREATE DATABASE d WITH TTL '3650d'")
			a := ts.write(t, "d", tt.body)
			require.Equal(t, http.StatusUnprocessableEntity, a.status, a.body)
			require.Zero(t, ts.mustCount(t, "d", "good"))
			require.Zero(t, ts.mustCount(t, "d", "other"))
			require.Equal(t, "table_name\n", ts.mustSQL(t, "d", "SHOW TABLES"), "no table may be created")
		})
	}
}

func TestUpsertExampleFromCnosDB(t *testing.T) {
	// e2e client_tests.rs, "bug test for 1387".
	ts := startServer(t, Options{})
	ts.mustWrite(t, "public", "ma,ta=a1 fa=1 1690510331000000000")
	ts.mustWrite(t, "public", "ma,ta=a1 fb=2 1690510331000000000")
	require.Equal(t, "time,ta,fa,fb\n2023-07-28T02:12:11.000000000,a1,1.0,2.0\n", ts.mustSQL(t, "public", "select * from ma"))

	// The last write of a field wins, the other fields stay.
	ts.mustWrite(t, "public", "ma,ta=a1 fa=3 1690510331000000000\nma,ta=a1 fa=4 1690510331000000000")
	require.Equal(t, "time,ta,fa,fb\n2023-07-28T02:12:11.000000000,a1,4.0,2.0\n", ts.mustSQL(t, "public", "select * from ma"))
	require.Equal(t, "COUNT(UInt8(1))\n1\n", ts.mustSQL(t, "public", "SELECT exact_count(*) FROM ma"))
	// COUNT(*) of 2.4.3 may still count the overwritten points.
	require.Equal(t, "COUNT(UInt8(1))\n4\n", ts.mustSQL(t, "public", "SELECT COUNT(*) FROM ma"))
}

func TestPrecision(t *testing.T) {
	tests := []struct {
		dbPrecision, param string
		ts                 string
		want               string
	}{
		{"ns", "ns", "1690510331123456789", "2023-07-28T02:12:11.123456789"},
		{"ns", "us", "1690510331123456", "2023-07-28T02:12:11.123456000"},
		{"ns", "ms", "1690510331123", "2023-07-28T02:12:11.123000000"},
		{"ns", "MS", "1690510331123", "2023-07-28T02:12:11.123000000"},
		{"ns", "s", "1690510331123456789", "2023-07-28T02:12:11.123456789"}, // unknown: nanoseconds
		{"ns", "", "1690510331123456789", "2023-07-28T02:12:11.123456789"},
		{"ms", "ns", "1690510331123456789", "2023-07-28T02:12:11.123000000"}, // truncated to the database precision
		{"us", "ms", "1690510331123", "2023-07-28T02:12:11.123000000"},
		{"ns", "ns", "-1", "1969-12-31T23:59:59.999999999"},
	}
	for _, tt := range tests {
		t.Run(tt.dbPrecision+"/"+tt.param+"/"+tt.ts, func(t *testing.T) {
			ts := startServer(t, Options{})
			ts.mustSQL(t, "public", "CREATE DATABASE d WITH PRECISION '"+tt.dbPrecision+"'")
			a := ts.send(t, http.MethodPost, "/api/v1/write?db=d&precision="+tt.param, nil, []byte("m f=1 "+tt.ts))
			require.Equal(t, http.StatusOK, a.status, a.body)
			require.Equal(t, "time,f\n"+tt.want+",1.0\n", ts.mustSQL(t, "d", "SELECT * FROM m"))
		})
	}
}

func TestMissingTimestampIsServerTime(t *testing.T) {
	ts := startServer(t, Options{})
	before := time.Now()
	ts.mustWrite(t, "public", "m,t=a f=1\nm,t=b f=2")
	after := time.Now()
	a := ts.sql(t, "public", "SELECT * FROM m", map[string]string{"Accept": "application/nd-json"})
	require.Equal(t, http.StatusOK, a.status, a.body)
	lines := strings.Split(strings.TrimSpace(a.body), "\n")
	require.Len(t, lines, 2)
	// Every line of one request gets the same default time.
	stamp := func(l string) string {
		i := strings.Index(l, `"time":"`)
		require.GreaterOrEqual(t, i, 0, l)
		return l[i+8 : i+8+strings.Index(l[i+8:], `"`)]
	}
	require.Equal(t, stamp(lines[0]), stamp(lines[1]))
	got, err := time.Parse("2006-01-02T15:04:05.999999999", stamp(lines[0]))
	require.NoError(t, err)
	require.False(t, got.Before(before.UTC().Truncate(time.Microsecond)), "%v before %v", got, before)
	require.False(t, got.After(after.UTC()), "%v after %v", got, after)
}

func TestContentEncodings(t *testing.T) {
	body := "cpu,host=a usage=1 1\ncpu,host=b usage=2 2\n"
	for _, tt := range []struct {
		encoding string
		compress func(t *testing.T, s string) []byte
	}{
		{"identity", func(_ *testing.T, s string) []byte { return []byte(s) }},
		{"gzip", gzipCompress},
		{"deflate", deflateCompress},
		{"br", brotliCompress},
		{"zstd", zstdCompress},
		{"snappy", snappyCompress},
		{"lz4", lz4Compress},
	} {
		t.Run(tt.encoding, func(t *testing.T) {
			ts := startServer(t, Options{})
			a := ts.send(t, http.MethodPost, "/api/v1/write?db=public",
				map[string]string{"Content-Encoding": tt.encoding}, tt.compress(t, body))
			require.Equal(t, http.StatusOK, a.status, a.body)
			require.Equal(t, 2, ts.mustCount(t, "public", "cpu"))

			// SQL bodies may be compressed too.
			a = ts.send(t, http.MethodPost, "/api/v1/sql?db=public",
				map[string]string{"Content-Encoding": tt.encoding}, tt.compress(t, "select 1"))
			require.Equal(t, http.StatusOK, a.status, a.body)
			require.Equal(t, "Int64(1)\n1\n", a.body)
		})
	}
}

func gzipCompress(t *testing.T, s string) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	_, err := w.Write([]byte(s))
	require.NoError(t, err)
	require.NoError(t, w.Close())
	return buf.Bytes()
}

func deflateCompress(t *testing.T, s string) []byte {
	var buf bytes.Buffer
	w, err := flate.NewWriter(&buf, flate.DefaultCompression)
	require.NoError(t, err)
	_, err = w.Write([]byte(s))
	require.NoError(t, err)
	require.NoError(t, w.Close())
	return buf.Bytes()
}

func zlibCompress(t *testing.T, s string) []byte {
	var buf bytes.Buffer
	w := zlib.NewWriter(&buf)
	_, err := w.Write([]byte(s))
	require.NoError(t, err)
	require.NoError(t, w.Close())
	return buf.Bytes()
}

func brotliCompress(t *testing.T, s string) []byte {
	var buf bytes.Buffer
	w := brotli.NewWriter(&buf)
	_, err := w.Write([]byte(s))
	require.NoError(t, err)
	require.NoError(t, w.Close())
	return buf.Bytes()
}

func zstdCompress(t *testing.T, s string) []byte {
	enc, err := zstd.NewWriter(nil)
	require.NoError(t, err)
	defer enc.Close()
	return enc.EncodeAll([]byte(s), nil)
}

func snappyCompress(t *testing.T, s string) []byte {
	var buf bytes.Buffer
	w := snappy.NewBufferedWriter(&buf)
	_, err := w.Write([]byte(s))
	require.NoError(t, err)
	require.NoError(t, w.Close())
	return buf.Bytes()
}

func lz4Compress(t *testing.T, s string) []byte {
	var buf bytes.Buffer
	w := lz4.NewWriter(&buf)
	_, err := w.Write([]byte(s))
	require.NoError(t, err)
	require.NoError(t, w.Close())
	return buf.Bytes()
}

func TestStats(t *testing.T) {
	ts := startServer(t, Options{})
	ts.mustWrite(t, "public", "m f=1 1\nm f=2 2")
	require.Equal(t, http.StatusUnprocessableEntity, ts.write(t, "public", "m f=1 1\n# comment\nm f=.5 2").status)
	ts.mustSQL(t, "public", "select 1")
	ts.send(t, http.MethodGet, "/api/v1/ping", nil, nil)
	st := ts.Stats()
	require.Equal(t, Stats{
		Requests:      4,
		WriteRequests: 2,
		SQLRequests:   1,
		LinesAccepted: 2,
		LinesRejected: 2,
		Bytes:         int64(len("m f=1 1\nm f=2 2") + len("m f=1 1\n# comment\nm f=.5 2")),
	}, st)
}

func TestCountOnly(t *testing.T) {
	ts := startServer(t, Options{CountOnly: true})
	ts.mustWrite(t, "public", "cpu,host=a f=1 1\ncpu,host=a f=1 1\n# c\n\nmy\\ mem,x=1 f=2\n")
	require.Equal(t, "COUNT(UInt8(1))\n2\n", ts.mustSQL(t, "public", "SELECT COUNT(*) FROM cpu"))
	require.Equal(t, "COUNT(UInt8(1))\n2\n", ts.mustSQL(t, "public", "SELECT exact_count(*) FROM cpu"))
	require.Equal(t, "COUNT(UInt8(1))\n1\n", ts.mustSQL(t, "public", `SELECT COUNT(*) FROM "my mem"`))
	require.Equal(t, "table_name\ncpu\nmy mem\n", ts.mustSQL(t, "public", "SHOW TABLES"))
	require.Equal(t, int64(3), ts.Stats().LinesAccepted)
	// The database must still exist.
	require.Equal(t, http.StatusUnprocessableEntity, ts.write(t, "nosuch", "cpu f=1").status)
}

func TestHugeLines(t *testing.T) {
	ts := startServer(t, Options{})
	long := strings.Repeat("x", 2<<20)
	ts.mustWrite(t, "public", "m,t="+long+" s=\""+long+"\" 1\nm,t=short s=\"y\" 2")
	require.Equal(t, 2, ts.mustCount(t, "public", "m"))
	a := ts.sql(t, "public", "SELECT s FROM m WHERE t = 'short'", nil)
	require.Equal(t, "s\ny\n", a.body)

	// A 2 MiB line that breaks the grammar at its end is refused as a whole.
	a = ts.write(t, "public", "m,t=a s=\""+long+"\" 3\nm f=.5")
	require.Equal(t, http.StatusUnprocessableEntity, a.status)
	require.Contains(t, a.body, "invalid field value: '.5'")
	require.Equal(t, 2, ts.mustCount(t, "public", "m"))
}

func TestPrecisionUnit(t *testing.T) {
	require.Equal(t, time.Nanosecond, PrecisionUnit(""), "CnosDB's default")
	require.Equal(t, time.Nanosecond, PrecisionUnit("ns"))
	require.Equal(t, time.Microsecond, PrecisionUnit("us"))
	require.Equal(t, time.Microsecond, PrecisionUnit("US"), "any case")
	require.Equal(t, time.Millisecond, PrecisionUnit("ms"))
	require.Equal(t, time.Nanosecond, PrecisionUnit("s"), "CnosDB reads what it does not take as ns")
}
