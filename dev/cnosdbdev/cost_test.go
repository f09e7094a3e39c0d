package cnosdbdev

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The default cost reproduces the single-connection figures measured on CnosDB 2.4.3
// (API.md, "What a write costs the server") within 12 %.
func TestDefaultCostMatchesMeasuredCnosDB(t *testing.T) {
	c := DefaultCost()
	for _, m := range []struct {
		name                string
		lines, fields, tags int
		measured            time.Duration
	}{
		{"2 sensor lines", 2, 3, 0, 620 * time.Microsecond},
		{"500 sensor lines", 500, 3, 0, 1900 * time.Microsecond},
		{"5,000 sensor lines", 5000, 3, 0, 14500 * time.Microsecond},
		{"2 wide lines", 2, 12, 3, 570 * time.Microsecond},
		{"5,000 wide lines", 5000, 12, 3, 50 * time.Millisecond},
	} {
		got := c.price(m.lines, m.lines*m.fields, m.lines*m.tags)
		ratio := float64(got) / float64(m.measured)
		require.InDelta(t, 1, ratio, 0.12, "%s: model %s, measured %s", m.name, got, m.measured)
	}
}

// Over several connections the intake of the default 2-core server is 1.71 times one
// connection's (measured: 589k / 344k lines/s), and does not grow beyond 2.
func TestCostParallelIntake(t *testing.T) {
	for _, tc := range []struct {
		connections int
		want        float64
	}{{1, 1}, {2, 1.71}, {4, 1.71}, {8, 1.71}} {
		m := newMeter(DefaultCost())
		start := time.Unix(0, 0)
		// Each connection sends 100 requests of 5,000 sensor lines back to back: the
		// next one arrives when its previous one is done.
		next := make([]time.Time, tc.connections)
		for i := range next {
			next[i] = start
		}
		var last time.Time
		for range 100 {
			for i := range next {
				end, _ := m.reserve(next[i], 5000, 15000, 0)
				next[i] = end
				if end.After(last) {
					last = end
				}
			}
		}
		one := DefaultCost().price(5000, 15000, 0)
		intake := float64(100*tc.connections) * float64(one) / float64(last.Sub(start))
		require.InDelta(t, tc.want, intake, 0.03, "%d connections", tc.connections)
	}
}

// A request that finds every core busy waits for the first one free.
func TestCostQueuesWhenCoresAreBusy(t *testing.T) {
	m := newMeter(&Cost{PerRequest: time.Millisecond, Cores: 1})
	at := time.Unix(0, 0)
	end1, _ := m.reserve(at, 0, 0, 0)
	end2, charged := m.reserve(at, 0, 0, 0)
	require.Equal(t, at.Add(time.Millisecond), end1)
	require.Equal(t, at.Add(2*time.Millisecond), end2)
	require.Equal(t, time.Millisecond, charged)
}

func TestLineShape(t *testing.T) {
	for _, tc := range []struct {
		line         string
		tags, fields int
	}{
		{`t a=1 1`, 0, 1},
		{`t a=1,b=2,c=3`, 0, 3},
		{`t,x=1,y=2 a=1,b=2 1700000000000000000`, 2, 2},
		{`t\,u,x\ y=1 a="p, q r",b=2 1`, 1, 2},
		{`t a="say \"hi, there\"",b=true 1`, 0, 2},
	} {
		tags, fields := lineShape([]byte(tc.line))
		require.Equal(t, [2]int{tc.tags, tc.fields}, [2]int{tags, fields}, tc.line)
	}
}

// Writes are charged by their shape, in both storage modes, and refused ones by
// their request alone.
func TestWritesAreCharged(t *testing.T) {
	cost := &Cost{PerRequest: time.Millisecond, PerLine: 10 * time.Microsecond, PerField: time.Microsecond,
		PerTag: 100 * time.Nanosecond, Cores: 1}
	for _, countOnly := range []bool{false, true} {
		t.Run(fmt.Sprintf("count-only=%v", countOnly), func(t *testing.T) {
			ts := startServer(t, Options{CountOnly: countOnly, Cost: cost})
			var body strings.Builder
			for i := range 100 {
				fmt.Fprintf(&body, "wide,a=1,b=2,c=3 f1=%d,f2=2,f3=3 %d\n", i, 1700000000000000000+i)
			}
			start := time.Now()
			a := ts.send(t, http.MethodPost, "/api/v1/write?db=public", nil, []byte(body.String()))
			took := time.Since(start)
			require.Equal(t, http.StatusOK, a.status, a.body)
			want := time.Millisecond + 100*(10*time.Microsecond+3*time.Microsecond+300*time.Nanosecond)
			require.Equal(t, want, ts.Stats().Charged)
			// Waited at least the price (a slow machine only adds to it).
			require.GreaterOrEqual(t, took, want)

			a = ts.send(t, http.MethodPost, "/api/v1/write?db=public", map[string]string{"Content-Encoding": "nope"}, []byte("t f=1 1\n"))
			require.Equal(t, http.StatusBadRequest, a.status)
			require.Equal(t, want+time.Millisecond, ts.Stats().Charged)
		})
	}
}

func TestCostIsValidated(t *testing.T) {
	require.Error(t, Options{Cost: &Cost{Cores: 0}}.Validate())
	require.Error(t, Options{Cost: &Cost{Cores: 1, PerLine: -1}}.Validate())
	require.NoError(t, Options{Cost: DefaultCost()}.Validate())
}
