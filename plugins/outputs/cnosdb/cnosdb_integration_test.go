package cnosdb

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/influxdata/telegraf"
	"github.com/influxdata/telegraf/config"
	"github.com/influxdata/telegraf/metric"
	"github.com/stretchr/testify/require"

	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/dev/cnosdbdev"
	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/internal/execdout"
	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/internal/stderrlog"
	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/testutil/cnosdbtest"
	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/testutil/syncbuf"
)

// These tests run against the project's CnosDB dev server, or against the real CnosDB
// named by CNOSDB_URL, behind the same fault-injection front.

// startPlugin connects a plugin to db on target; change adjusts its options first.
func startPlugin(t *testing.T, target *cnosdbtest.Target, db string, change func(*CnosDB)) (*CnosDB, *syncbuf.Buffer) {
	t.Helper()
	return connectPlugin(t, func(c *CnosDB) {
		c.URLs = []string{target.URL}
		c.Database = db
		c.Username, c.Password = target.User, config.NewSecret([]byte(target.Password))
		c.RetryInitialInterval = config.Duration(20 * time.Millisecond)
		c.RetryMaxInterval = config.Duration(500 * time.Millisecond)
		if change != nil {
			change(c)
		}
	})
}

// connectPlugin connects a plugin that creates no database and logs no summary, with
// the options configure sets; its log is shown when the test fails.
func connectPlugin(t *testing.T, configure func(*CnosDB)) (*CnosDB, *syncbuf.Buffer) {
	t.Helper()
	logs := &syncbuf.Buffer{}
	c := New()
	c.CreateDatabase = false
	c.StatsInterval = 0
	c.Log = stderrlog.NewWriter(logs, "outputs.cnosdb", telegraf.Debug)
	configure(c)
	require.NoError(t, c.Init())
	require.NoError(t, c.Connect())
	t.Cleanup(func() {
		c.Close()
		if t.Failed() {
			t.Logf("plugin log:\n%s", logs.String())
		}
	})
	return c, logs
}

// openStream starts the stdin side of a connected plugin, closed before the plugin at
// the end of the test.
func openStream(t *testing.T, c *CnosDB) *Stream {
	t.Helper()
	s, err := NewStream(c)
	require.NoError(t, err)
	t.Cleanup(s.Close)
	return s
}

// feed runs the stdin loop over in until it ends and everything is written.
func feed(t *testing.T, s *Stream, in io.Reader) {
	t.Helper()
	feedWith(t, s, in, s.Config())
}

func feedWith(t *testing.T, s *Stream, in io.Reader, cfg execdout.Config) {
	t.Helper()
	require.NoError(t, execdout.Run(t.Context(), in, s, cfg))
}

// sensorLines returns n lines of the article's sensor data, one second apart.
func sensorLines(n int, table string) string {
	var sb strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&sb, "%s,station=s%d pressure=%d.5,temperature=%d.25,visibility=%di %d\n",
			table, i%7, 1000+i%50, i%40, i%10, 1690510331000000000+int64(i)*1e9)
	}
	return sb.String()
}

// eventually waits for cond, bounded so that a broken plugin fails instead of hanging.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestBatchesBySize(t *testing.T) {
	target := cnosdbtest.Start(t, cnosdbdev.Options{})
	db := target.NewDatabase(t, "")
	c, logs := startPlugin(t, target, db, func(c *CnosDB) {
		c.MetricBatchSize = 300
		c.FlushInterval = config.Duration(time.Hour)
		c.StatsInterval = config.Duration(20 * time.Millisecond)
	})
	requestsBefore := target.Faults().Requests("/api/v1/write")
	s := openStream(t, c)
	feed(t, s, strings.NewReader(sensorLines(1000, "sensor")))
	require.Equal(t, 1000, target.Count(t, db, "sensor"))
	require.Equal(t, int64(4), target.Faults().Requests("/api/v1/write")-requestsBefore, "1000 lines in batches of 300")
	require.Equal(t, int64(1000), c.stats.written.Load())
	eventually(t, "the periodic summary counts every line", func() bool {
		return strings.Contains(logs.String(), "totals: 1000 lines, 0 rejected")
	})
	require.Regexp(t, `I! \[outputs.cnosdb\] wrote \d+ lines \(\d+/s, [\d.]+ [KM]?i?B\) in \d+ requests`, logs.String())
}

func TestFlushesAnIdleBatch(t *testing.T) {
	target := cnosdbtest.Start(t, cnosdbdev.Options{})
	db := target.NewDatabase(t, "")
	c, _ := startPlugin(t, target, db, func(c *CnosDB) {
		c.FlushInterval = config.Duration(50 * time.Millisecond)
	})
	pr, pw := io.Pipe()
	done := make(chan struct{})
	s := openStream(t, c)
	go func() {
		defer close(done)
		feed(t, s, pr)
	}()
	_, err := pw.Write([]byte(sensorLines(3, "idle")))
	require.NoError(t, err)
	// stdin stays open and the batch is far from full: only the interval writes it.
	eventually(t, "3 idle lines are in CnosDB", func() bool { return target.Count(t, db, "idle") == 3 })
	require.NoError(t, pw.Close())
	<-done
}

func TestGzip(t *testing.T) {
	target := cnosdbtest.Start(t, cnosdbdev.Options{})
	db := target.NewDatabase(t, "")
	// A recording proxy shows what goes over the wire.
	var mu sync.Mutex
	var seen []string
	upstream, err := url.Parse(target.URL)
	require.NoError(t, err)
	proxy := cnosdbdev.NewProxy(upstream)
	recorder := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/v1/write" {
			mu.Lock()
			seen = append(seen, fmt.Sprintf("%s length=%d chunked=%v",
				r.Header.Get("Content-Encoding"), r.ContentLength, len(r.TransferEncoding) > 0))
			mu.Unlock()
		}
		proxy.ServeHTTP(w, r)
	}))
	defer recorder.Close()

	c, _ := startPlugin(t, target, db, func(c *CnosDB) {
		c.URLs = []string{recorder.URL}
		c.ContentEncoding = "gzip"
	})
	s := openStream(t, c)
	feed(t, s, strings.NewReader(sensorLines(2000, "zipped")))
	mu.Lock()
	require.Len(t, seen, 1)
	require.Regexp(t, `^gzip length=\d+ chunked=false$`, seen[0])
	mu.Unlock()
	require.Equal(t, 2000, target.Count(t, db, "zipped"))
	rows := target.Rows(t, db, "zipped")
	require.Equal(t, "1000.5", rows[0]["pressure"])
	require.Equal(t, "1049.5", rows[49]["pressure"])
}

func TestAuthenticationFailureWaitsAndSaysWhy(t *testing.T) {
	target := cnosdbtest.Start(t, cnosdbdev.Options{})
	db := target.NewDatabase(t, "")

	// The right user writes.
	c, _ := startPlugin(t, target, db, nil)
	s := openStream(t, c)
	feed(t, s, strings.NewReader(sensorLines(10, "auth")))
	require.Equal(t, 10, target.Count(t, db, "auth"))

	// An unknown user is refused whether or not CnosDB checks passwords; the lines wait.
	bad, logs := startPlugin(t, target, db, func(c *CnosDB) { c.Username = "nosuchuser" })
	var results []Result
	bad.onResult = func(r Result) { results = append(results, r) }
	done := make(chan struct{})
	badStream := openStream(t, bad)
	go func() {
		defer close(done)
		feed(t, badStream, strings.NewReader(sensorLines(5, "auth_bad")))
	}()
	eventually(t, "the log names the cause", func() bool {
		return strings.Contains(logs.String(), "authentication failed: check username, password and tenant")
	})
	require.Contains(t, logs.String(), "010016")
	bad.Abort()
	<-done
	require.Equal(t, []Result{{Seq: 1, Lines: 5, Aborted: 5}}, results)
	require.Equal(t, 10, target.Count(t, db, "auth"))
}

func TestBasicAuthWithPasswordCheck(t *testing.T) {
	target := cnosdbtest.Start(t, cnosdbdev.Options{AuthEnabled: true, Users: map[string]string{
		"root": "rootpw", "writer": "s3cret",
	}})
	if target.Real {
		// A real server keeps its own users; the unknown-user test above covers it.
		target.Dev = nil
	}
	db := target.NewDatabase(t, "")
	c, _ := startPlugin(t, target, db, func(c *CnosDB) {
		if !target.Real {
			c.Username, c.Password = "writer", config.NewSecret([]byte("s3cret"))
		}
	})
	s := openStream(t, c)
	feed(t, s, strings.NewReader(sensorLines(10, "basic")))
	require.Equal(t, 10, target.Count(t, db, "basic"))

	if !target.Real {
		wrong, logs := startPlugin(t, target, db, func(c *CnosDB) {
			c.Username, c.Password = "writer", config.NewSecret([]byte("wrong"))
		})
		wrongStream := openStream(t, wrong)
		done := make(chan struct{})
		go func() {
			defer close(done)
			feed(t, wrongStream, strings.NewReader(sensorLines(3, "basic_wrong")))
		}()
		eventually(t, "the wrong password is reported", func() bool {
			return strings.Contains(logs.String(), "authentication failed")
		})
		wrong.Abort()
		<-done
		require.NotContains(t, logs.String(), "wrong", "the password never appears in the log")
	}
}

func TestTenantDatabaseAndPrecisionOnTheWire(t *testing.T) {
	target := cnosdbtest.Start(t, cnosdbdev.Options{})
	db := target.NewDatabase(t, "")
	c, _ := startPlugin(t, target, db, func(c *CnosDB) { c.Precision = "ms" })
	m := metric.New("prec", map[string]string{"t": "a"}, map[string]interface{}{"x": 1.5}, time.Unix(1690510331, 987654321))
	require.NoError(t, c.Write([]telegraf.Metric{m}))
	rows := target.Rows(t, db, "prec")
	require.Len(t, rows, 1)
	require.Equal(t, "2023-07-28T02:12:11.987000000", rows[0]["time"], "truncated to ms on the wire")
	require.Equal(t, "1.5", rows[0]["x"])

	// Another tenant is asked for: CnosDB refuses, the log names the tenant as the cause.
	other, logs := startPlugin(t, target, db, func(c *CnosDB) { c.Tenant = "nosuchtenant" })
	done := make(chan error, 1)
	go func() { done <- other.Write([]telegraf.Metric{m}) }()
	eventually(t, "the unknown tenant is reported", func() bool {
		return strings.Contains(logs.String(), "tenant")
	})
	other.Abort()
	require.ErrorContains(t, <-done, "stopped before 1 of 1 lines were written")
}

func TestCreatesTheDatabase(t *testing.T) {
	target := cnosdbtest.Start(t, cnosdbdev.Options{})
	db := "created_" + strconv.FormatInt(time.Now().UnixNano(), 36)
	t.Cleanup(func() { target.SQL(t, "", fmt.Sprintf(`DROP DATABASE IF EXISTS "%s"`, db)) })
	c, logs := startPlugin(t, target, db, func(c *CnosDB) {
		c.CreateDatabase = true
		c.DatabaseOptions = DatabaseOptions{TTL: "30d", Shard: 2, VnodeDuration: "7d", Replica: 1, Precision: "us"}
	})
	require.Contains(t, logs.String(), "ensured database")
	require.Contains(t, target.SQL(t, "", "SHOW DATABASES"), "\n"+db+"\n")
	// Points inside the 30-day TTL are stored, one older than it is refused on its own.
	now := time.Now().UnixNano()
	s := openStream(t, c)
	feed(t, s, strings.NewReader(fmt.Sprintf("fresh x=1 %d\nfresh x=2 %d\nfresh x=3 %d\n",
		now-1e9, now-40*24*3600*1e9, now)))
	require.Equal(t, 2, target.Count(t, db, "fresh"))
	require.Contains(t, logs.String(), "CnosDB rejected input line 2")
	require.Contains(t, logs.String(), "030034")
	desc := target.SQL(t, "", fmt.Sprintf(`DESCRIBE DATABASE "%s"`, db))
	require.Contains(t, desc, "30days") // CnosDB prints durations the humantime way
	require.Contains(t, desc, "US")

	// Dropped while running: the plugin creates it again instead of failing.
	target.SQL(t, "", fmt.Sprintf(`DROP DATABASE "%s"`, db))
	feed(t, s, strings.NewReader(fmt.Sprintf("again x=1 %d\n", now)))
	require.Equal(t, 1, target.Count(t, db, "again"))
}

func TestOneTypeConflictIn10000(t *testing.T) {
	target := cnosdbtest.Start(t, cnosdbdev.Options{})
	db := target.NewDatabase(t, "")
	c, logs := startPlugin(t, target, db, func(c *CnosDB) { c.MetricBatchSize = 10000 })
	var results []Result
	c.onResult = func(r Result) { results = append(results, r) }
	var in strings.Builder
	for i := 0; i < 10000; i++ {
		value := fmt.Sprintf("%d.5", i)
		if i == 4321 {
			value = fmt.Sprintf("%di", i) // an integer where the column holds doubles
		}
		fmt.Fprintf(&in, "conflict,k=v x=%s %d\n", value, int64(i)+1)
	}
	s := openStream(t, c)
	feed(t, s, strings.NewReader(in.String()))
	require.Equal(t, 9999, target.Count(t, db, "conflict"))
	require.Len(t, results, 1)
	require.Equal(t, 9999, results[0].Written)
	require.Len(t, results[0].Rejected, 1)
	rej := results[0].Rejected[0]
	require.Equal(t, int64(4322), rej.Source, "the stdin line of the bad value")
	require.Equal(t, "conflict,k=v x=4321i 4322", rej.Line)
	require.Contains(t, []string{"050014", "020004"}, rej.Err.Code)
	require.Equal(t, 1, strings.Count(logs.String(), "CnosDB rejected input line 4322"), "logged once")
	require.Contains(t, logs.String(), rej.Err.Code)
	require.Equal(t, int64(1), c.stats.rejected.Load())
}

func TestTooLargeRequestIsSplit(t *testing.T) {
	target := cnosdbtest.Start(t, cnosdbdev.Options{MaxBodyBytes: 64 * 1024})
	db := target.NewDatabase(t, "")
	c, _ := startPlugin(t, target, db, func(c *CnosDB) { c.MetricBatchSize = 5000 })
	// The front answers the first request with 413 whatever the server's limit, so that
	// splitting is shown on a real CnosDB too, whose limit is 160 MiB.
	target.Faults().Respond("/api/v1/write", 413, "", 1)
	s := openStream(t, c)
	feed(t, s, strings.NewReader(sensorLines(5000, "split")))
	require.Equal(t, 5000, target.Count(t, db, "split"))
	require.Positive(t, c.stats.splits.Load())
	require.Zero(t, c.stats.rejected.Load())
}

func TestEscapesCnosDBTakes(t *testing.T) {
	target := cnosdbtest.Start(t, cnosdbdev.Options{})
	db := target.NewDatabase(t, "")
	c, _ := startPlugin(t, target, db, nil)

	// As Telegraf's influx serializer writes them: a newline in a tag value as "\n", a
	// backslash as it is, a newline in a string field as it is.
	s := openStream(t, c)
	feed(t, s, strings.NewReader(
		"esc,id=1,v=line1\\nline2 s=\"a\nb\" 1\n"+
			"esc,id=2,v=C:\\Windows s=\"C:\\\\dir \\\"q\\\"\" 2\n"))
	// Handed over as metrics: the newline is a real one.
	require.NoError(t, c.Write([]telegraf.Metric{
		metric.New("esc", map[string]string{"id": "3", "v": "line1\nline2"}, map[string]interface{}{"s": "x"}, time.Unix(0, 3)),
	}))
	rows := target.Rows(t, db, "esc")
	require.Len(t, rows, 3)
	// CnosDB keeps "\\" in a tag as two backslashes; a control character cannot be stored.
	require.Equal(t, `line1\\nline2`, rows[0]["v"])
	require.Equal(t, "a\nb", rows[0]["s"])
	require.Equal(t, `C:\\Windows`, rows[1]["v"])
	require.Equal(t, `C:\dir "q"`, rows[1]["s"])
	require.Equal(t, "line1 line2", rows[2]["v"])
}

func TestOneMebibyteLine(t *testing.T) {
	target := cnosdbtest.Start(t, cnosdbdev.Options{})
	db := target.NewDatabase(t, "")
	c, _ := startPlugin(t, target, db, nil)
	big := strings.Repeat("x", 1<<20)
	s := openStream(t, c)
	feed(t, s, strings.NewReader("small x=1 1\nbig s=\""+big+"\" 2\nsmall x=2 3\n"))
	require.Equal(t, 2, target.Count(t, db, "small"))
	rows := target.Rows(t, db, "big")
	require.Len(t, rows, 1)
	require.Len(t, rows[0]["s"], 1<<20)
}

func TestTwoURLsOneDown(t *testing.T) {
	target := cnosdbtest.Start(t, cnosdbdev.Options{})
	db := target.NewDatabase(t, "")
	// A port nothing listens on: the connection is refused.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	down := "http://" + l.Addr().String()
	require.NoError(t, l.Close())

	c, logs := startPlugin(t, target, db, func(c *CnosDB) {
		c.URLs = []string{down, target.URL}
		c.MetricBatchSize = 100
		c.RetryInitialInterval = config.Duration(time.Second)
		c.RetryMaxInterval = config.Duration(time.Minute)
	})
	s := openStream(t, c)
	feed(t, s, strings.NewReader(sensorLines(2000, "cluster")))
	require.Equal(t, 2000, target.Count(t, db, "cluster"))
	require.Contains(t, logs.String(), down+" does not answer yet")
	// Twenty batches, and the dead node rests after each failure instead of costing a
	// retry every time.
	require.Less(t, c.stats.retries.Load(), int64(20))
}

func TestServer23AnswersBadLineWith500(t *testing.T) {
	target := cnosdbtest.Start(t, cnosdbdev.Options{Mode: "2.3"})
	target.OnlyVersion(t, "2.3", "a 500 with an empty body for a line without a field")
	db := target.NewDatabase(t, "")
	c, logs := startPlugin(t, target, db, func(c *CnosDB) { c.ServerErrorRetries = 2 })
	// The plugin never sends a line CnosDB cannot parse, so this batch is built by hand.
	var b batch
	for i := 0; i < 100; i++ {
		line := fmt.Sprintf("v23 x=%d %d", i, i+1)
		if i == 37 {
			line = "v23 notafield 38"
		}
		b.starts = append(b.starts, len(b.buf))
		b.buf = append(b.buf, line+"\n"...)
		b.sources = append(b.sources, int64(i+1))
	}
	res := c.writer.write(t.Context(), &b)
	require.Equal(t, 99, res.Written)
	require.Len(t, res.Rejected, 1)
	require.Equal(t, int64(38), res.Rejected[0].Source)
	if !target.Real {
		require.Equal(t, 500, res.Rejected[0].Err.Status, "2.3 answers a bad line with 500 and no body")
	}
	require.Equal(t, 99, target.Count(t, db, "v23"))
	require.Contains(t, logs.String(), "CnosDB rejected input line 38")
}

// TestOutagesLoseNothing runs 30 s of "Memory Exhausted Retry Later" and then 30 s of
// refused connections while lines keep arriving.
func TestOutagesLoseNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("takes over a minute; run without -short")
	}
	target := cnosdbtest.Start(t, cnosdbdev.Options{})
	db := target.NewDatabase(t, "")
	c, logs := startPlugin(t, target, db, func(c *CnosDB) {
		c.MetricBatchSize = 500
		c.FlushInterval = config.Duration(100 * time.Millisecond)
		c.RetryMaxInterval = config.Duration(2 * time.Second)
	})
	const total = 30000
	lines := strings.SplitAfter(sensorLines(total, "outage"), "\n")
	pr, pw := io.Pipe()
	done := make(chan struct{})
	s := openStream(t, c)
	go func() {
		defer close(done)
		feed(t, s, pr)
	}()

	// Lines trickle in for the whole test, so some arrive during each fault.
	writerDone := make(chan error, 1)
	go func() {
		per := total / 70
		for i := 0; i < total; i += per {
			chunk := strings.Join(lines[i:min(i+per, total)], "")
			if _, err := pw.Write([]byte(chunk)); err != nil {
				writerDone <- err
				return
			}
			time.Sleep(time.Second)
		}
		writerDone <- pw.Close()
	}()

	time.Sleep(3 * time.Second)
	target.Faults().Respond("/api/v1/write", 422,
		`{"error_code":"050033","error_message":"Memory Exhausted Retry Later"}`, -1)
	time.Sleep(30 * time.Second)
	target.Faults().Clear()
	target.Faults().Refuse(true)
	time.Sleep(30 * time.Second)
	target.Faults().Refuse(false)

	require.NoError(t, <-writerDone)
	<-done
	require.Equal(t, total, target.Count(t, db, "outage"), "every line is stored")
	require.Contains(t, logs.String(), "Memory Exhausted Retry Later")
	require.Contains(t, logs.String(), "connection refused")
	require.Equal(t, int64(total), c.stats.written.Load())
	require.Zero(t, c.stats.rejected.Load())
	if target.Dev != nil {
		// Only requests CnosDB answered with 200 stored lines, so no line was stored twice.
		require.Equal(t, int64(total), target.Dev.Stats().LinesAccepted)
	}
}
