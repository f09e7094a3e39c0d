package cnosdb

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/influxdata/telegraf/config"
	"github.com/influxdata/telegraf/testutil"

	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/dev/cnosdbdev"
)

// benchLines is Telegraf's line protocol for the article's sensor JSON, for a wider
// record with tags, and for a line that needs re-escaping.
var benchLines = map[string][]byte{
	"sensor": []byte(`kafka_consumer pressure=1009.4,temperature=22.5,visibility=10 1690510331000000000`),
	"wide": []byte(`events,region=eu-west-1,host=server-0042,service=checkout cpu=0.731,mem=5123.5,latency_ms=12.25,` +
		`requests=1843i,errors=3i,bytes_in=918234i,bytes_out=1293841i,queue=17i,threads=64i,ok=true,` +
		`status="healthy",version="1.4.2" 1690510331000000000`),
	// A line with escapes goes the slow way, through the decoder.
	"escaped": []byte(`events,host=server\ 42,path=C:\dir cpu=0.731,status="say \"hi\"" 1690510331000000000`),
}

func reportPerLine(b *testing.B, lines int) {
	b.ReportMetric(float64(lines)/b.Elapsed().Seconds(), "lines/s")
}

// BenchmarkTranscode measures turning Telegraf's line protocol into CnosDB's, per line.
func BenchmarkTranscode(b *testing.B) {
	for name, line := range benchLines {
		b.Run(name, func(b *testing.B) {
			e := encoder{precision: time.Nanosecond, now: time.Now}
			var bt batch
			b.ReportAllocs()
			b.SetBytes(int64(len(line)))
			for i := 0; i < b.N; i++ {
				if bt.len() == 5000 {
					bt.reset()
				}
				if err := e.addLineProtocol(&bt, line, int64(i)); err != nil {
					b.Fatal(err)
				}
			}
			reportPerLine(b, b.N)
		})
	}
}

// BenchmarkWritePath measures the whole path from stdin entries to HTTP requests
// against a server that accepts everything, per line; allocs/op are per line. The
// spool variants sync every batch to a directory under the system's temporary one.
func BenchmarkWritePath(b *testing.B) {
	for _, spool := range []string{"nospool", "spool"} {
		for _, encoding := range []string{"identity", "gzip"} {
			for name, line := range benchLines {
				b.Run(fmt.Sprintf("%s/%s/%s", name, encoding, spool), func(b *testing.B) {
					benchmarkWritePath(b, line, encoding, spool == "spool")
				})
			}
		}
	}
}

func benchmarkWritePath(b *testing.B, line []byte, encoding string, spool bool) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/v1/ping" {
			_, _ = io.WriteString(w, `{"version":"bench","status":"healthy"}`)
			return
		}
		_, _ = io.Copy(io.Discard, r.Body)
	}))
	defer srv.Close()
	c := New()
	c.URLs = []string{srv.URL}
	c.CreateDatabase = false
	c.StatsInterval = 0
	c.ContentEncoding = encoding
	c.Timeout = config.Duration(time.Minute)
	c.Log = testutil.Logger{Quiet: true}
	if spool {
		c.SpoolDir = b.TempDir()
	}
	if err := c.Init(); err != nil {
		b.Fatal(err)
	}
	if err := c.Connect(); err != nil {
		b.Fatal(err)
	}
	s, err := NewStream(c)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(line)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := s.Add(line, int64(i)); err != nil {
			b.Fatal(err)
		}
		if n, _ := s.Pending(); n == c.MetricBatchSize {
			s.Flush()
		}
	}
	if n, _ := s.Pending(); n > 0 {
		s.Flush()
	}
	s.Drain()
	b.StopTimer()
	reportPerLine(b, b.N)
	if got := c.stats.written.Load(); got != int64(b.N) {
		b.Fatalf("wrote %d lines of %d", got, b.N)
	}
	s.Close()
	_ = c.Close()
}

// BenchmarkIntoCostModel measures the output alone writing full batches of the article's
// sensor lines into the dev server with a real CnosDB's cost and the parallelism of a
// server with 2 and with 4 cores, at 1, 2 and 4 requests in flight: lines/s is what the
// server took, bounded by what it charges, not by this process.
func BenchmarkIntoCostModel(b *testing.B) {
	for _, cores := range []int{2, 4} {
		for _, inFlight := range []int{1, 2, 4} {
			b.Run(fmt.Sprintf("cores=%d/max_in_flight=%d", cores, inFlight), func(b *testing.B) {
				cost := cnosdbdev.DefaultCost()
				cost.Cores = cores
				dev := cnosdbdev.New(cnosdbdev.Options{CountOnly: true, Cost: cost})
				srv := httptest.NewServer(dev)
				defer srv.Close()
				c := New()
				c.URLs = []string{srv.URL}
				c.MaxInFlight = inFlight
				c.FlushInterval = config.Duration(time.Hour)
				c.StatsInterval = 0
				c.Log = testutil.Logger{Quiet: true}
				if err := c.Init(); err != nil {
					b.Fatal(err)
				}
				if err := c.Connect(); err != nil {
					b.Fatal(err)
				}
				s, err := NewStream(c)
				if err != nil {
					b.Fatal(err)
				}
				// A time per line: lines of one row would be written in order, one
				// request at a time.
				line := benchLines["sensor"][:bytes.LastIndexByte(benchLines["sensor"], ' ')+1]
				var entry []byte
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					entry = strconv.AppendInt(append(entry[:0], line...), 1690510331000000000+int64(i), 10)
					if err := s.Add(entry, int64(i)); err != nil {
						b.Fatal(err)
					}
					if n, _ := s.Pending(); n == c.MetricBatchSize {
						s.Flush()
					}
				}
				s.Flush()
				s.Drain()
				b.StopTimer()
				s.Close()
				_ = c.Close()
				reportPerLine(b, int(dev.Stats().LinesAccepted))
			})
		}
	}
}
