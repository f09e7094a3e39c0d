package kafka_consumer

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/influxdata/telegraf"
	"github.com/influxdata/telegraf/plugins/parsers/json"
	"github.com/influxdata/telegraf/testutil"
)

// fastCase is a message of the differential corpus; served says whether the fast
// path must take it with the plain configuration, rather than fall back.
type fastCase struct {
	name   string
	msg    string
	served bool
	// variant marks a message derived from another; served is not checked.
	variant bool
}

const (
	articleMessage = `{"pressure":1009.4,"temperature":22.5,"visibility":10}`
	recordMessage  = `{"host":"edge-gw-0042.plant-7.example.net","region":"eu-central-1","sensor_id":"press-line-3/ch-07",` +
		`"firmware":"v4.12.3-rc1+build.20231114","temperature":22.53,"humidity":41.2,"pressure":1009.42,` +
		`"voltage":229.87,"current":3.142,"power":722.3,"frequency":49.98,"rpm":1480,` +
		`"vibration":{"x":0.0123,"y":0.0087,"z":0.0311},"status_code":200,` +
		`"location":"hall B, line 3, cabinet 7, rack position 12"}`
)

func fastCorpus() []fastCase {
	many := make([]string, 0, 40)
	for i := range 40 {
		many = append(many, fmt.Sprintf(`"f%02d":%d.5`, i, i))
	}
	manyFields := "{" + strings.Join(many, ",") + "}"
	manyDup := "{" + strings.Join(many, ",") + `,"f17":1}`
	deep := func(n int) string { return strings.Repeat(`{"a":`, n) + "1" + strings.Repeat("}", n) }

	cases := []fastCase{
		{"article", articleMessage, true, false},
		{"record", recordMessage, true, false},
		{"empty object", `{}`, true, false},
		{"surrounding white space", " \t\r\n{\"a\":1}  \n", true, false},
		{"white space everywhere", `{ "a" : 1 , "b" : [ 1 , 2 ] , "c" : { } }`, true, false},
		{"nested objects", `{"a":{"b":{"c":1,"d":2},"e":3}}`, true, false},
		{"array", `{"a":[1,2,3]}`, true, false},
		{"array of objects", `{"a":[{"b":1},{"b":2,"c":[true]}]}`, true, false},
		{"nested arrays", `{"a":[[1,2],[3],[]]}`, true, false},
		{"null", `{"a":null}`, true, false},
		{"null and number", `{"a":null,"b":1}`, true, false},
		{"booleans", `{"a":true,"b":false,"c":1}`, true, false},
		{"string and number", `{"s":"str","n":1}`, true, false},
		{"unicode escapes", `{"u":"\u00fc\u4e2d\ud83d\ude00","n":1}`, true, false},
		{"upper case hex", `{"u":"\uD83D\uDE00","n":1}`, true, false},
		{"escapes", `{"e":"a\"b\\c\/d\b\f\n\r\t","n":1}`, true, false},
		{"nul escape", `{"a":"\u0000","n":1}`, true, false},
		{"raw unicode", `{"ü":"ünï","😀":1,"中文":2}`, true, false},
		{"escaped key", `{"k\u0041":1,"x\ty":2}`, true, false},
		{"largest float", `{"max":1.7976931348623157e308,"nmax":-1.7976931348623157e308}`, true, false},
		{"smallest float", `{"min":5e-324,"norm":2.2250738585072014e-308}`, true, false},
		{"underflow", `{"tiny":1e-400}`, true, false},
		{"overflow", `{"big":1e309}`, false, false},
		{"overflow negative", `{"big":-1e400}`, false, false},
		{"negative zero", `{"neg":-0,"negf":-0.0}`, true, false},
		{"exponents", `{"e":1E+2,"f":-1.5e-3,"g":0.0,"h":1e0,"i":2E-0}`, true, false},
		{"long integer", `{"i":12345678901234567890123,"j":9007199254740993}`, true, false},
		{"many digits", `{"pi":3.14159265358979323846264338327950288419716939937510582097494459}`, true, false},
		{"leading zero", `{"a":01}`, false, false},
		{"trailing dot", `{"a":1.}`, false, false},
		{"leading dot", `{"a":.5}`, false, false},
		{"plus sign", `{"a":+1}`, false, false},
		{"lone minus", `{"n":-}`, false, false},
		{"empty exponent", `{"n":1e}`, false, false},
		{"signed empty exponent", `{"n":1e+}`, false, false},
		{"hex number", `{"n":0x10}`, false, false},
		{"NaN", `{"n":NaN}`, false, false},
		{"duplicate key", `{"a":1,"a":2}`, false, false},
		{"duplicate key with null", `{"a":1,"a":null}`, false, false},
		{"duplicate object key", `{"a":{"x":1},"a":{"y":2}}`, false, false},
		{"flattened collision", `{"a_b":1,"a":{"b":2}}`, false, false},
		{"array index collision", `{"a":[1,2],"a_0":3}`, false, false},
		{"top-level array", `[{"a":1},{"b":2}]`, true, false},
		{"top-level array same keys", `[{"a":1},{"a":2}]`, true, false},
		{"empty top-level array", `[]`, true, false},
		{"empty top-level array spaced", ` [ ] `, true, false},
		{"array of numbers", `[1,2]`, false, false},
		{"array with null", `[{"a":1},null]`, false, false},
		{"array of arrays", `[[{"a":1}]]`, false, false},
		{"unterminated array", `[{"a":1}`, false, false},
		{"array trailing comma", `[{"a":1},]`, false, false},
		{"top-level null", `null`, false, false},
		{"top-level string", `"str"`, false, false},
		{"top-level number", `42`, false, false},
		{"top-level bool", `true`, false, false},
		{"empty", ``, false, false},
		{"only white space", "  \n\t ", false, false},
		{"truncated", `{"a":1`, false, false},
		{"truncated key", `{"a`, false, false},
		{"truncated escape", `{"a":"\`, false, false},
		{"truncated unicode", `{"a":"\u12`, false, false},
		{"trailing brace", `{"a":1}}`, false, false},
		{"two objects", `{"a":1} {"b":2}`, false, false},
		{"unquoted key", `{a:1}`, false, false},
		{"single quotes", `{'a':1}`, false, false},
		{"bad literal", `{"a":tru}`, false, false},
		{"bad null", `{"a":nul}`, false, false},
		{"literal with suffix", `{"a":truex}`, false, false},
		{"unterminated string", `{"a":"x`, false, false},
		{"invalid UTF-8", "{\"a\":\"\xff\",\"n\":1}", false, false},
		{"invalid UTF-8 key", "{\"\xc3\":1}", false, false},
		{"lone surrogate", `{"a":"\ud800","n":1}`, false, false},
		{"surrogate then letter", `{"a":"\ud83d\u0041","n":1}`, false, false},
		{"raw control character", "{\"a\":\"\x01\"}", false, false},
		{"raw newline in string", "{\"a\":\"x\ny\"}", false, false},
		{"invalid escape", `{"a":"\q"}`, false, false},
		{"byte order mark", "\xef\xbb\xbf{\"a\":1}", false, false},
		{"vertical tab after", "{\"a\":1}\v", false, false},
		{"no-break space after", "{\"a\":1}\u00a0", false, false},
		{"trailing comma", `{"a":1,}`, false, false},
		{"missing colon", `{"a" 1}`, false, false},
		{"missing comma", `{"a":1 "b":2}`, false, false},
		{"double comma in array", `{"a":[1,,2]}`, false, false},
		{"empty key", `{"":1}`, true, false},
		{"empty key object", `{"":{"b":1}}`, true, false},
		{"empty key array", `{"":[1,2]}`, true, false},
		{"empty nested key", `{"a":{"":1,"b":{"":2}}}`, true, false},
		{"empty containers", `{"a":{},"b":[],"c":1}`, true, false},
		{"nesting 10", deep(10), true, false},
		{"nesting 70", deep(70), false, false},
		{"many fields", manyFields, true, false},
		{"many fields duplicate", manyDup, false, false},
		{"named", `{"name":"cpu","host":"h1","ts":1700000000,"time":"2023-11-14T22:13:20Z","v":1}`, true, false},
		{"fractional unix", `{"ts":1700000000.123456,"v":1}`, true, false},
		{"string unix", `{"ts":"1700000000","v":1}`, true, false},
		{"negative unix", `{"ts":-1.5,"v":1}`, true, false},
		{"huge unix", `{"ts":1e20,"v":1}`, true, false},
		{"tiny unix", `{"ts":1e-12,"v":1}`, true, false},
		{"boolean time", `{"ts":true,"time":false,"v":1}`, true, false},
		{"time with offset", `{"time":"2023-11-14T22:13:20.123+02:00","v":2}`, true, false},
		{"time without zone", `{"time":"2023-11-14 22:13:20","v":2}`, true, false},
		{"bad time", `{"time":"garbage","ts":"garbage","v":2}`, true, false},
		{"nested time", `{"meta":{"ts":1700000000,"src":"x"},"v":1}`, true, false},
		{"clock time", `{"clock":"22:13:20","v":1}`, true, false},
		{"tags and fields", `{"tags":{"host":"a","dc":"b"},"fields":{"x":1,"y":"s"}}`, true, false},
		{"non-string tags", `{"b":true,"host":true,"num_tag":3.25,"big_tag":1e21}`, true, false},
		{"numeric name", `{"name":5,"v":1}`, true, false},
		{"empty name", `{"name":"","v":1}`, true, false},
		{"array with times", `[{"ts":1,"v":1},{"ts":2.5,"v":2}]`, true, false},
		{"array missing time", `[{"ts":1,"v":1},{"v":2}]`, true, false},
		{"array mixed", `[{"v":1},{"x":"y","host":"h"}]`, true, false},
		{"newlines in values", `{"a":"line1\nline2","b":"tab\there","host":"h o,s=t"}`, true, false},
		{"special keys", `{"a b":1,"c,d":2,"e=f":3,"g\\h":4}`, true, false},
		{"no fields", `{"host":"h","s":"x"}`, true, false},
	}

	// Each object again with the time keys of the time configurations in front, so
	// that those configurations see the whole corpus.
	const times = `"ts":1700000000.123456,"time":"2023-11-14T22:13:20.5+02:00","clock":"22:13:20","meta":{"ts":17e8}`
	for _, c := range cases[:len(cases):len(cases)] {
		msg := strings.TrimLeft(c.msg, " \t\r\n")
		if !strings.HasPrefix(msg, "{") {
			continue
		}
		sep := ","
		if strings.HasPrefix(strings.TrimLeft(msg[1:], " \t\r\n"), "}") {
			sep = ""
		}
		cases = append(cases, fastCase{c.name + " with times", "{" + times + sep + msg[1:], false, true})
	}
	return cases
}

// fastConfig is a json parser configuration of the differential test.
type fastConfig struct {
	name   string
	parser json.Parser
}

func fastConfigs() []fastConfig {
	return []fastConfig{
		{"plain", json.Parser{}},
		{"tag globs", json.Parser{TagKeys: []string{"host", "region", "sensor_*", "b", "num_tag", "big_tag", "tags_*", "name", "ü", "a*"}}},
		{"all strings", json.Parser{StringFields: []string{"*"}}},
		{"some strings", json.Parser{StringFields: []string{"s", "e", "u", "a*", "host", "firmware", "f?"}, TagKeys: []string{"host"}}},
		{"name key", json.Parser{NameKey: "name", TagKeys: []string{"host"}}},
		{"nested name key", json.Parser{NameKey: "tags_host"}},
		{"unix", json.Parser{TimeKey: "ts", TimeFormat: "unix"}},
		{"unix_ms", json.Parser{TimeKey: "ts", TimeFormat: "unix_ms", TagKeys: []string{"host"}}},
		{"unix_us", json.Parser{TimeKey: "ts", TimeFormat: "unix_us"}},
		{"unix_ns", json.Parser{TimeKey: "ts", TimeFormat: "unix_ns", StringFields: []string{"*"}}},
		{"nested unix", json.Parser{TimeKey: "meta_ts", TimeFormat: "unix"}},
		{"rfc3339", json.Parser{TimeKey: "time", TimeFormat: "rfc3339"}},
		{"RFC3339Nano in zone", json.Parser{TimeKey: "time", TimeFormat: "RFC3339Nano", Timezone: "America/New_York"}},
		{"layout in zone", json.Parser{TimeKey: "time", TimeFormat: "2006-01-02 15:04:05", Timezone: "Asia/Kolkata"}},
		{"clock layout", json.Parser{TimeKey: "clock", TimeFormat: "15:04:05"}},
		{"time key is tag key", json.Parser{TimeKey: "ts", TimeFormat: "unix", TagKeys: []string{"ts", "host"}, StringFields: []string{"ts"}}},
		{"not strict", json.Parser{TimeKey: "ts", TimeFormat: "unix"}},
		{"default tags", json.Parser{TagKeys: []string{"host"}, DefaultTags: map[string]string{"site": "x", "host": "default"}}},
	}
}

// newFastParser returns Telegraf's parser for c, configured as the registry does,
// and the fast path for it.
func newFastParser(t testing.TB, c fastConfig) (*json.Parser, *jsonFast) {
	t.Helper()
	p := c.parser
	p.MetricName = "kafka_consumer"
	p.Strict = c.name != "not strict"
	p.Log = testutil.Logger{}
	require.NoError(t, p.Init())
	return &p, newJSONFast(&p)
}

// checkFastPath compares the fast path with Telegraf's parser on msg. It returns
// whether the fast path served msg. A fallback cannot differ: the message then goes
// to Telegraf's parser.
func checkFastPath(t testing.TB, p *json.Parser, fast *jsonFast, msg []byte) bool {
	t.Helper()
	before := time.Now()
	got, ok := fast.parse(msg)
	if !ok {
		return false
	}
	// Only now Telegraf's parser, which can take very long on some inputs the fast
	// path leaves to it (a unix time string with a huge exponent).
	want, wantErr := p.Parse(msg)
	after := time.Now()
	require.NoError(t, wantErr, "fast path accepted a message Telegraf rejects")
	require.Len(t, got, len(want))

	var opts []cmp.Option
	if p.TimeKey == "" {
		// Both take time.Now(): check that both did, then compare the rest.
		for i := range got {
			for _, m := range []telegraf.Metric{want[i], got[i]} {
				require.False(t, m.Time().Before(before.Truncate(0)) || m.Time().After(after), "time %v is not now", m.Time())
			}
		}
		opts = append(opts, testutil.IgnoreTime())
	}
	testutil.RequireMetricsEqual(t, want, got, opts...)
	return true
}

// TestJSONFastPathMatchesTelegraf runs the corpus through every configuration,
// comparing the fast path with Telegraf's parser, and the decoder (fast path with
// fallback) with Telegraf's parser, rejections included.
func TestJSONFastPathMatchesTelegraf(t *testing.T) {
	corpus := fastCorpus()
	require.GreaterOrEqual(t, len(corpus), 60)
	total, served := 0, 0
	for _, c := range fastConfigs() {
		t.Run(c.name, func(t *testing.T) {
			p, fast := newFastParser(t, c)
			require.NotNil(t, fast, "configuration not served")
			dec := &decoder{parser: p, fast: fast}
			servedHere := 0
			defer func() { t.Logf("%d of %d served", servedHere, len(corpus)) }()
			for _, tc := range corpus {
				total++
				ok := checkFastPath(t, p, fast, []byte(tc.msg))
				if ok {
					served++
					servedHere++
				}
				if c.name == "plain" && !tc.variant {
					require.Equal(t, tc.served, ok, "%s: served", tc.name)
				}

				// Through the decoder, a rejection is Telegraf's own error.
				_, wantErr := p.Parse([]byte(tc.msg))
				_, err := dec.parse([]byte(tc.msg))
				if wantErr == nil {
					require.NoError(t, err, tc.name)
				} else {
					require.EqualError(t, err, wantErr.Error(), tc.name)
				}
			}
		})
	}
	t.Logf("%d messages × configurations, %d served by the fast path, the rest by Telegraf's parser", total, served)
}

// TestJSONFastPathConfigFallback lists the configurations left to Telegraf's parser.
func TestJSONFastPathConfigFallback(t *testing.T) {
	for _, p := range []json.Parser{
		{Query: "readings"},
		{TimeKey: "ts"},
		{TimeKey: "ts", TimeFormat: "timestamp_tz_ms"},
		{TimeKey: "ts", TimeFormat: "unixdate"},
		{TimeKey: "ts", TimeFormat: "Jan 2 15:04:05 MST 2006"},
	} {
		p.MetricName = "kafka_consumer"
		require.NoError(t, p.Init())
		require.Nil(t, newJSONFast(&p), "%+v", p)
	}
}

// TestJSONFastPathOption checks the wiring: json_fast_path is on by default, and
// off leaves every message to Telegraf's parser.
func TestJSONFastPathOption(t *testing.T) {
	conf := "[[inputs.kafka_consumer]]\n  brokers = [\"b:9092\"]\n  topics = [\"t\"]\n  data_format = \"json\"\n"
	k, err := configured(t, conf)
	require.NoError(t, err)
	require.True(t, k.JSONFastPath)
	dec, err := k.newDecoder()
	require.NoError(t, err)
	require.NotNil(t, dec.fast)

	k, err = configured(t, conf+"  json_fast_path = false\n")
	require.NoError(t, err)
	slow, err := k.newDecoder()
	require.NoError(t, err)
	require.Nil(t, slow.fast)

	// Both give the same line protocol, but for the order of fields, which
	// Telegraf's parser takes from a map; and both reject what Telegraf rejects.
	msg := &sarama.ConsumerMessage{Topic: "t", Value: []byte(recordMessage), Timestamp: time.Unix(1700000000, 0)}
	dec.k.TimestampSource, slow.k.TimestampSource = "inner", "inner"
	fastOut, err := dec.decode(nil, msg)
	require.NoError(t, err)
	slowOut, err := slow.decode(nil, msg)
	require.NoError(t, err)
	require.NotEmpty(t, fastOut)
	all := func(telegraf.Metric) bool { return true }
	testutil.RequireMetricsEqual(t, parseLines(t, string(slowOut), all), parseLines(t, string(fastOut), all))
	msg.Value = []byte(`{"a":1e999}`)
	_, slowErr := slow.decode(nil, msg)
	_, fastErr := dec.decode(nil, msg)
	require.Error(t, slowErr)
	require.Equal(t, slowErr, fastErr)

	k, err = configured(t, conf+"  json_query = \"x\"\n")
	require.NoError(t, err)
	dec, err = k.newDecoder()
	require.NoError(t, err)
	require.Nil(t, dec.fast)
}

// FuzzJSONFastPath checks on any input that the fast path either falls back or
// gives exactly Telegraf's metrics, under a few configurations.
func FuzzJSONFastPath(f *testing.F) {
	for _, tc := range fastCorpus() {
		f.Add([]byte(tc.msg))
	}
	type pair struct {
		p    *json.Parser
		fast *jsonFast
	}
	var pairs []pair
	for _, c := range fastConfigs() {
		switch c.name {
		case "plain", "tag globs", "some strings", "name key", "unix_ms", "rfc3339", "clock layout":
			p, fast := newFastParser(f, c)
			pairs = append(pairs, pair{p, fast})
		}
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		for _, pr := range pairs {
			checkFastPath(t, pr.p, pr.fast, msg)
		}
	})
}

// BenchmarkJSONDecode compares, per message, Telegraf's json parser and the fast
// path, each followed by the line protocol encoder, and the fast path writing line
// protocol without making metrics (lines), which decode uses when it can.
func BenchmarkJSONDecode(b *testing.B) {
	c := fastConfig{"bench", json.Parser{TagKeys: []string{"host", "region", "sensor_id"}}}
	for _, msg := range []struct{ name, msg string }{
		{"sensor", articleMessage},
		{"record", recordMessage},
	} {
		buf := []byte(msg.msg)
		b.Run(msg.name+"/telegraf", func(b *testing.B) {
			p, _ := newFastParser(b, c)
			benchDecode(b, buf, p.Parse)
		})
		b.Run(msg.name+"/fast", func(b *testing.B) {
			_, fast := newFastParser(b, c)
			benchDecode(b, buf, func(buf []byte) ([]telegraf.Metric, error) {
				metrics, ok := fast.parse(buf)
				if !ok {
					return nil, errors.New("not served")
				}
				return metrics, nil
			})
		})
		b.Run(msg.name+"/lines", func(b *testing.B) {
			_, fast := newFastParser(b, c)
			out := make([]byte, 0, 64<<10)
			b.SetBytes(int64(len(buf)))
			b.ReportAllocs()
			for b.Loop() {
				var ok bool
				if out, _, ok = fast.appendLines(out[:0], buf, lineOptions{}); !ok {
					b.Fatal("not served")
				}
			}
		})
	}
}

func benchDecode(b *testing.B, msg []byte, parse func([]byte) ([]telegraf.Metric, error)) {
	out := make([]byte, 0, 64<<10)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		metrics, err := parse(msg)
		if err != nil {
			b.Fatal(err)
		}
		for _, m := range metrics {
			out, _ = appendMetric(out[:0], m)
		}
	}
}
