package kafka_consumer

import (
	"math"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/influxdata/telegraf"
	"github.com/influxdata/telegraf/plugins/parsers/influx"
	"github.com/influxdata/telegraf/plugins/parsers/json"
	"github.com/influxdata/telegraf/testutil"
)

// lineVariants are the options decode passes to appendLines: none, a tag that sorts
// first, last, or replaces a tag of the message, two that sort around and replace the
// message's, and a time from the message.
func lineVariants() []lineOptions {
	tags := func(kv ...string) []lineTag {
		var out []lineTag
		for i := 0; i < len(kv); i += 2 {
			out = append(out, lineTag{key: kv[i], value: []byte(kv[i+1])})
		}
		return out
	}
	return []lineOptions{
		{},
		{tags: tags("0topic", "t o,p=c\\")},
		{tags: tags("zz", "events")},
		{tags: tags("host", "replaced")},
		{tags: tags("t", `\`)},
		{tags: tags("0key", "k=1, k 2", "topic", "events")},
		{tags: tags("host", "key\tnew\nline", "zz", "events")},
		{tags: tags("a", "1", "b", "2")},
		{time: time.Unix(1700000000, 5), setTime: true},
	}
}

// checkLines compares appendLines on msg with the metric path (parse, then the tag
// and time decode adds, then appendMetric). It returns whether appendLines served
// msg; when it did not, it must leave dst as it was.
func checkLines(t testing.TB, fast *jsonFast, msg []byte, o lineOptions) bool {
	t.Helper()
	prefix := []byte("prefix\n")
	got, n, ok := fast.appendLines(prefix, msg, o)
	if !ok {
		require.Equal(t, "prefix\n", string(got), "a fallback leaves dst unchanged")
		return false
	}
	metrics, ok := fast.parse(msg)
	require.True(t, ok, "appendLines served a message parse does not")
	var want []byte
	lines := 0
	for _, m := range metrics {
		for _, tag := range o.tags {
			m.AddTag(tag.key, string(tag.value))
		}
		if o.setTime {
			m.SetTime(o.time)
		}
		var written bool
		if want, written = appendMetric(want, m); written {
			lines++
		}
	}
	require.Equal(t, lines, n)
	require.Len(t, got, len(prefix)+len(want), "%s\ngot  %q\nwant %q", msg, got, want)
	wantMetrics, wantErr := parseAll(t, want)
	gotMetrics, gotErr := parseAll(t, got[len(prefix):])
	if wantErr != nil {
		// A field key ending in a backslash: Telegraf's serializer, and so
		// appendMetric, write a line no parser takes. So must appendLines.
		require.Error(t, gotErr, "%q", got)
		return true
	}
	require.NoError(t, gotErr)
	var opts []cmp.Option
	if fast.parser.TimeKey == "" && !o.setTime {
		opts = append(opts, testutil.IgnoreTime()) // each path took time.Now()
	}
	testutil.RequireMetricsEqual(t, wantMetrics, gotMetrics, opts...)
	return true
}

// parseAll parses line protocol with Telegraf's parser, which takes the newlines
// that string fields hold as they are.
func parseAll(t testing.TB, lp []byte) ([]telegraf.Metric, error) {
	t.Helper()
	p := &influx.Parser{}
	require.NoError(t, p.Init())
	return p.Parse(lp)
}

// mustServeLines are messages of the corpus that appendLines takes with the plain
// configuration; the others it may leave to the metric path (objects without
// fields, with empty keys, or that parse does not serve).
var mustServeLines = map[string]bool{
	"article": true, "record": true, "nested objects": true, "array of objects": true, "exponents": true,
	"special keys": true, "unicode escapes": true, "escapes": true, "raw unicode": true, "long integer": true,
}

// TestAppendLinesMatchesMetricPath runs the fast path's corpus through every
// configuration and line variant.
func TestAppendLinesMatchesMetricPath(t *testing.T) {
	served, total := 0, 0
	for _, c := range fastConfigs() {
		t.Run(c.name, func(t *testing.T) {
			_, fast := newFastParser(t, c)
			for _, tc := range fastCorpus() {
				for _, o := range lineVariants() {
					total++
					if checkLines(t, fast, []byte(tc.msg), o) {
						served++
					} else if c.name == "plain" && mustServeLines[tc.name] {
						t.Errorf("%s: not served by appendLines", tc.name)
					}
				}
			}
		})
	}
	t.Logf("%d of %d served", served, total)
	require.Positive(t, served)
}

func TestAppendLinesFallsBackOnDefaultTags(t *testing.T) {
	_, fast := newFastParser(t, fastConfig{"default tags", json.Parser{DefaultTags: map[string]string{"site": "x"}}})
	out, _, ok := fast.appendLines(nil, []byte(articleMessage), lineOptions{})
	require.False(t, ok)
	require.Empty(t, out)
}

// FuzzAppendLines checks appendLines against the metric path on any input.
func FuzzAppendLines(f *testing.F) {
	for _, tc := range fastCorpus() {
		f.Add([]byte(tc.msg))
	}
	var fasts []*jsonFast
	for _, c := range fastConfigs() {
		switch c.name {
		case "plain", "tag globs", "some strings", "name key", "unix_ms":
			_, fast := newFastParser(f, c)
			fasts = append(fasts, fast)
		}
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		for _, fast := range fasts {
			for _, o := range lineVariants() {
				checkLines(t, fast, msg, o)
			}
		}
	})
}

// TestParseNumberCanonical checks parseNumber's shortcut against ParseFloat, and its
// claim that a number's text up to canonicalEnd is what AppendFloat writes, over numbers of
// every length and scale around the shortcut's limits.
func TestParseNumberCanonical(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	canonical, trimmed := 0, 0
	for range 200000 {
		digits := 1 + rng.IntN(18)
		text := make([]byte, 0, 24)
		if rng.IntN(4) == 0 {
			text = append(text, '-')
		}
		intDigits := 1 + rng.IntN(digits)
		for k := range digits {
			if k == intDigits {
				text = append(text, '.')
			}
			c := byte('0' + rng.IntN(10))
			if k == 0 && intDigits > 1 && c == '0' {
				c = '1' // JSON has no leading zeros
			}
			text = append(text, c)
		}
		if rng.IntN(8) == 0 {
			text = append(text, 'e')
			text = strconv.AppendInt(text, int64(rng.IntN(40)-20), 10)
		}
		v, end, canonicalEnd, ok := parseNumber(text, 0)
		require.True(t, ok, "%s", text)
		require.Equal(t, len(text), end)
		want, err := strconv.ParseFloat(string(text), 64)
		require.NoError(t, err)
		require.Equal(t, math.Float64bits(want), math.Float64bits(v), "%s", text)
		if canonicalEnd > 0 {
			canonical++
			if canonicalEnd < end {
				trimmed++
			}
			require.Equal(t, string(text[:canonicalEnd]), strconv.FormatFloat(v, 'f', -1, 64), "%s", text)
		}
	}
	require.Greater(t, canonical, 50000)
	require.Greater(t, trimmed, 5000)
}
