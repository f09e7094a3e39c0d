package cnosdbdev

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// lineBody returns n lines of a Telegraf-like cpu measurement over 100
// hosts, with timestamps from start on (one per line, in ns).
func lineBody(n int, start int64) []byte {
	var b strings.Builder
	b.Grow(n * 110)
	for i := 0; i < n; i++ {
		host := i % 100
		b.WriteString("cpu,cpu=cpu-total,host=host-")
		b.WriteString(strconv.Itoa(host))
		b.WriteString(" usage_idle=")
		b.WriteString(strconv.FormatFloat(float64(i%1000)/10, 'f', -1, 64))
		b.WriteString(",usage_user=1.25,usage_system=0.5,processes=")
		b.WriteString(strconv.Itoa(i))
		b.WriteString("i ")
		b.WriteString(strconv.FormatInt(start+int64(i), 10))
		b.WriteByte('\n')
	}
	return []byte(b.String())
}

func serveWrite(s *Server, db string, body []byte) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, "/api/v1/write?db="+db, strings.NewReader(string(body)))
	req.Header.Set("Authorization", rootAuth)
	req.Header.Set("Content-Length", strconv.Itoa(len(body)))
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	return rec
}

// BenchmarkWrite measures the emulator's write path (parse, check, store)
// in lines per second, without the network.
func BenchmarkWrite(b *testing.B) {
	const linesPerRequest = 10_000
	for _, mode := range []struct {
		name string
		opts Options
	}{
		{"store", Options{}},
		{"count-only", Options{CountOnly: true}},
	} {
		b.Run(mode.name, func(b *testing.B) {
			s := New(mode.opts)
			if err := s.CreateDatabase("bench", ""); err != nil {
				b.Fatal(err)
			}
			bodies := make([][]byte, 16)
			for i := range bodies {
				bodies[i] = lineBody(linesPerRequest, 1_700_000_000_000_000_000+int64(i)*linesPerRequest)
			}
			b.SetBytes(int64(len(bodies[0])))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if rec := serveWrite(s, "bench", bodies[i%len(bodies)]); rec.Code != http.StatusOK {
					b.Fatalf("write: %d %s", rec.Code, rec.Body.String())
				}
			}
			b.ReportMetric(float64(b.N)*linesPerRequest/b.Elapsed().Seconds(), "lines/s")
		})
	}
}

func TestManyLinesConcurrently(t *testing.T) {
	// Large enough to catch quadratic behaviour, small enough for -race.
	total := 400_000
	if testing.Short() {
		total = 40_000
	}
	const writers = 4
	s := New(Options{})
	require.NoError(t, s.CreateDatabase("big", ""))
	require.NoError(t, s.CreateDatabase("other", ""))
	per := total / writers
	// At most half a writer's share, so that writers never write the same times and
	// each writes to both databases.
	chunk := min(20_000, per/2)
	var wg sync.WaitGroup
	errs := make(chan string, writers)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for off := 0; off < per; off += chunk {
				body := lineBody(chunk, int64(w*per+off))
				db := "big"
				if off%(2*chunk) != 0 {
					db = "other"
				}
				if rec := serveWrite(s, db, body); rec.Code != http.StatusOK {
					errs <- fmt.Sprintf("writer %d: %d %s", w, rec.Code, rec.Body.String())
					return
				}
			}
		}(w)
	}
	// Reads while writing.
	for i := 0; i < 5; i++ {
		_, apiErr := s.executeSQL(defaultTenant, "big", "SHOW TABLES")
		require.Nil(t, apiErr)
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
	count := func(db string) int64 {
		rs, apiErr := s.executeSQL(defaultTenant, db, "SELECT exact_count(*) FROM cpu")
		require.Nil(t, apiErr)
		return rs.rows[0][0].Int()
	}
	require.Equal(t, int64(total), count("big")+count("other"))
	require.Equal(t, int64(total), s.Stats().LinesAccepted)
}
