package cnosdb

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/influxdata/telegraf/config"
	"github.com/stretchr/testify/require"

	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/testutil/syncbuf"
)

// answer is what the scripted server sends for one write.
type answer struct {
	status int
	header map[string]string
	body   string
}

// scriptedWrite is an HTTP server that answers each write as its script says, by the
// request's number (from 0) and body, with 204 where the script says nil. Every other
// path gets a ping's answer, so that the plugin's ping at Connect succeeds.
type scriptedWrite struct {
	srv    *httptest.Server
	script func(n int, body string) *answer

	mu       sync.Mutex
	arrivals []time.Time
	bodies   []string
}

func startScripted(t *testing.T, script func(n int, body string) *answer) *scriptedWrite {
	t.Helper()
	s := &scriptedWrite{script: script}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/write" {
			_, _ = io.WriteString(w, `{"version":"2.4.3","status":"healthy"}`)
			return
		}
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		n := len(s.bodies)
		s.arrivals = append(s.arrivals, time.Now())
		s.bodies = append(s.bodies, string(body))
		s.mu.Unlock()
		a := s.script(n, string(body))
		if a == nil {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		for k, v := range a.header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(a.status)
		_, _ = io.WriteString(w, a.body)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

// requests returns the bodies received so far and when each arrived.
func (s *scriptedWrite) requests() ([]string, []time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.bodies...), append([]time.Time(nil), s.arrivals...)
}

// scriptedPlugin connects the plugin to s with short retries.
func scriptedPlugin(t *testing.T, s *scriptedWrite, change func(*CnosDB)) (*CnosDB, *syncbuf.Buffer) {
	t.Helper()
	return connectPlugin(t, func(c *CnosDB) {
		c.URLs = []string{s.srv.URL}
		c.RetryInitialInterval = config.Duration(10 * time.Millisecond)
		c.RetryMaxInterval = config.Duration(100 * time.Millisecond)
		if change != nil {
			change(c)
		}
	})
}

// linesBatch returns a batch of the lines, numbered from 1 as on stdin.
func linesBatch(t *testing.T, c *CnosDB, lines ...string) *batch {
	t.Helper()
	b := &batch{seq: 1}
	for i, l := range lines {
		require.NoError(t, c.enc.addLineProtocol(b, []byte(l), int64(i+1)))
	}
	return b
}

// A 429 says how long to wait, in seconds or as a date: the plugin waits at least
// that long (the back-off alone would be 10 ms), and then writes everything.
func TestTooManyRequestsWaitsForRetryAfter(t *testing.T) {
	tests := []struct {
		name       string
		retryAfter func() string
		least      time.Duration
	}{
		{"seconds", func() string { return "1" }, time.Second},
		// A date has whole seconds: two seconds from now is at least one away.
		{"HTTP date", func() string { return time.Now().Add(2 * time.Second).UTC().Format(http.TimeFormat) }, time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startScripted(t, func(n int, _ string) *answer {
				if n == 0 {
					return &answer{status: http.StatusTooManyRequests, header: map[string]string{"Retry-After": tt.retryAfter()}}
				}
				return nil
			})
			c, logs := scriptedPlugin(t, s, func(c *CnosDB) { c.RetryMaxInterval = config.Duration(5 * time.Second) })
			res := c.writer.write(t.Context(), linesBatch(t, c, "m x=1 1", "m x=2 2"))
			require.Equal(t, Result{Seq: 1, Lines: 2, Written: 2}, res, "nothing rejected")
			bodies, at := s.requests()
			require.Len(t, bodies, 2)
			require.Equal(t, bodies[0], bodies[1], "the same lines again")
			require.GreaterOrEqual(t, at[1].Sub(at[0]), tt.least, "the wait Retry-After asked for")
			require.Contains(t, logs.String(), "HTTP 429 Too Many Requests (empty body) (Retry-After ")
			require.Contains(t, logs.String(), "retrying, nothing is dropped")
		})
	}
}

// A Retry-After longer than retry_max_interval is cut to it: a wrong header must not
// stall the writes for an hour.
func TestRetryAfterIsCappedByRetryMaxInterval(t *testing.T) {
	s := startScripted(t, func(n int, _ string) *answer {
		if n == 0 {
			return &answer{status: http.StatusTooManyRequests, header: map[string]string{"Retry-After": "3600"}}
		}
		return nil
	})
	c, _ := scriptedPlugin(t, s, func(c *CnosDB) { c.RetryMaxInterval = config.Duration(200 * time.Millisecond) })
	res := c.writer.write(t.Context(), linesBatch(t, c, "m x=1 1"))
	require.Equal(t, 1, res.Written)
	_, at := s.requests()
	require.Len(t, at, 2)
	wait := at[1].Sub(at[0])
	require.GreaterOrEqual(t, wait, 200*time.Millisecond)
	require.Less(t, wait, 2*time.Second, "the wait is cut to about retry_max_interval")
}

// Answers this plugin does not know drop nothing: the same lines are sent again,
// and written once the server takes them.
func TestUnknownAnswersAreRetriedNotRejected(t *testing.T) {
	tests := []struct {
		name   string
		answer answer
		log    string
	}{
		{"418", answer{status: http.StatusTeapot, body: "I'm a teapot"}, "HTTP 418, CnosDB error : I'm a teapot (an answer this plugin does not know"},
		{"422 with an unknown code", answer{status: 422, body: `{"error_code":"999999","error_message":"something new"}`},
			"HTTP 422, CnosDB error 999999: something new (an answer this plugin does not know"},
		{"500 with a body but no code", answer{status: 500, body: "Internal Server Error"}, "HTTP 500, CnosDB error : Internal Server Error"},
		{"500 without a body", answer{status: 500}, "HTTP 500 Internal Server Error (empty body)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startScripted(t, func(n int, _ string) *answer {
				if n < 3 {
					return &tt.answer
				}
				return nil
			})
			// Fewer retries of a 500 without a body than the server fails: a batch of
			// one line is then confirmed bad only if an empty write is taken, and the
			// server refuses that too.
			c, logs := scriptedPlugin(t, s, func(c *CnosDB) { c.ServerErrorRetries = 1 })
			res := c.writer.write(t.Context(), linesBatch(t, c, "m x=1 1"))
			require.Equal(t, Result{Seq: 1, Lines: 1, Written: 1}, res, "nothing rejected")
			require.Zero(t, c.stats.rejected.Load())
			bodies, _ := s.requests()
			require.Equal(t, "m x=1 1\n", bodies[len(bodies)-1], "the line itself was written")
			require.Contains(t, logs.String(), tt.log)
			require.Contains(t, logs.String(), "retrying, nothing is dropped")
			require.NotContains(t, logs.String(), "E! ")
		})
	}
}

// A 500 without a body is CnosDB 2.3's answer to a bad line: the request is split
// until the line stands alone, and it is dropped only once an empty write to the
// same server is taken, which shows that the answer is about the line.
func TestServerErrorWithoutBodyIsolatesTheBadLine(t *testing.T) {
	s := startScripted(t, func(_ int, body string) *answer {
		if strings.Contains(body, "bad") {
			return &answer{status: http.StatusInternalServerError}
		}
		return nil
	})
	c, logs := scriptedPlugin(t, s, func(c *CnosDB) { c.ServerErrorRetries = 1 })
	lines := make([]string, 8)
	for i := range lines {
		lines[i] = "m x=" + string(rune('0'+i)) + " 1"
	}
	lines[5] = "m bad=1 1"
	res := c.writer.write(t.Context(), linesBatch(t, c, lines...))
	require.Equal(t, 7, res.Written)
	require.Len(t, res.Rejected, 1)
	require.Equal(t, int64(6), res.Rejected[0].Source)
	require.True(t, res.Done(), "a rejected line is done: the input may commit it")
	bodies, _ := s.requests()
	require.Contains(t, bodies, "", "the empty write that confirms the line is bad")
	require.Contains(t, logs.String(), "E! [outputs.cnosdb] CnosDB rejected input line 6, dropped after isolating it "+
		"(every other line is written): HTTP 500 Internal Server Error (empty body); CnosDB 2.3 and 2.4.0 answer a bad line so")
}

// A 2xx with a body is counted as written, and said: CnosDB sends none.
func TestSuccessWithABodyIsLogged(t *testing.T) {
	s := startScripted(t, func(int, string) *answer {
		return &answer{status: http.StatusOK, body: `{"error_code":"050014","error_message":"partial write: 1 line dropped"}`}
	})
	c, logs := scriptedPlugin(t, s, nil)
	res := c.writer.write(t.Context(), linesBatch(t, c, "m x=1 1", "m x=2 2"))
	require.Equal(t, 2, res.Written)
	require.Contains(t, logs.String(), "W! [outputs.cnosdb] "+s.srv.URL+
		` answered 2 lines with HTTP 200 and a body, which CnosDB never sends on success: "050014 partial write: 1 line dropped"`)
}
