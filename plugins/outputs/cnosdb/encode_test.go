package cnosdb

import (
	"math"
	"testing"
	"time"

	"github.com/influxdata/telegraf"
	"github.com/influxdata/telegraf/metric"
	"github.com/stretchr/testify/require"
)

func TestAddMetricWritesWhatCnosDBParses(t *testing.T) {
	ts := time.Unix(1690510331, 123456789)
	tests := []struct {
		name      string
		metric    telegraf.Metric
		precision time.Duration
		want      string
	}{
		{
			name: "all field types",
			metric: withFields(metric.New("cpu", map[string]string{"host": "a"}, nil, ts),
				"b", true, "f", 1.5, "i", int64(-3), "s", "text", "u", uint64(4), "whole", 2.0),
			precision: time.Nanosecond,
			want:      `cpu,host=a b=true,f=1.5,i=-3i,s="text",u=4u,whole=2 1690510331123456789` + "\n",
		},
		{
			name: "escapes CnosDB takes",
			metric: metric.New("my meas,x", map[string]string{"tag key": "a,b=c d"}, map[string]interface{}{
				"field=key": 1.0,
			}, ts),
			precision: time.Nanosecond,
			want:      `my\ meas\,x,tag\ key=a\,b\=c\ d field\=key=1 1690510331123456789` + "\n",
		},
		{
			name: "control characters in names and tags become spaces, backslashes are doubled",
			metric: metric.New("m", map[string]string{"path": `C:\Windows`, "text": "line1\nline2\ttab"}, map[string]interface{}{
				"x": 1.0,
			}, ts),
			precision: time.Nanosecond,
			want:      `m,path=C:\\Windows,text=line1\ line2\ tab x=1 1690510331123456789` + "\n",
		},
		{
			name: "string fields keep newlines and escape quotes and backslashes",
			metric: metric.New("m", nil, map[string]interface{}{
				"s": "say \"hi\"\nC:\\dir",
			}, ts),
			precision: time.Nanosecond,
			want:      "m s=\"say \\\"hi\\\"\nC:\\\\dir\" 1690510331123456789\n",
		},
		{
			name: "NaN and infinity are dropped, other fields stay",
			metric: withFields(metric.New("m", nil, nil, ts),
				"nan", math.NaN(), "inf", math.Inf(1), "ok", 0.25),
			precision: time.Nanosecond,
			want:      "m ok=0.25 1690510331123456789\n",
		},
		{
			name:      "empty tag values are left out",
			metric:    metric.New("m", map[string]string{"empty": "", "t": "v"}, map[string]interface{}{"x": int64(1)}, ts),
			precision: time.Nanosecond,
			want:      "m,t=v x=1i 1690510331123456789\n",
		},
		{
			name:      "millisecond precision truncates",
			metric:    withFields(metric.New("m", nil, nil, ts), "x", 1e-7, "y", 1e22),
			precision: time.Millisecond,
			want:      "m x=1e-07,y=1e+22 1690510331123\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := encoder{precision: tt.precision, now: time.Now}
			var b batch
			require.NoError(t, e.addMetric(&b, tt.metric, 0))
			require.Equal(t, tt.want, string(b.buf))
			require.Equal(t, 1, b.len())
		})
	}
}

// withFields adds fields in the given order; a map would not keep one.
func withFields(m telegraf.Metric, kv ...interface{}) telegraf.Metric {
	for i := 0; i < len(kv); i += 2 {
		m.AddField(kv[i].(string), kv[i+1])
	}
	return m
}

func TestAddMetricWithoutStorableFields(t *testing.T) {
	e := encoder{precision: time.Nanosecond, now: time.Now}
	var b batch
	m := metric.New("m", nil, map[string]interface{}{"nan": math.NaN()}, time.Unix(1, 0))
	require.ErrorIs(t, e.addMetric(&b, m, 7), errNoFields)
	require.Equal(t, 0, b.len())
	require.Empty(t, b.buf)
}

func TestAddLineProtocolTranscodesTelegrafOutput(t *testing.T) {
	now := time.Unix(1700000000, 0)
	tests := []struct {
		name  string
		entry string
		want  string
	}{
		{
			name:  "the article's sensor line passes unchanged",
			entry: `kafka_consumer pressure=1009.4,temperature=22.5,visibility=10 1690510331000000000`,
			want:  `kafka_consumer pressure=1009.4,temperature=22.5,visibility=10 1690510331000000000`,
		},
		{
			name:  "escapes Telegraf writes for whitespace in tags are kept as data",
			entry: `m,t=a\nb,p=C:\Windows x=1i 1`,
			want:  `m,t=a\\nb,p=C:\\Windows x=1i 1`,
		},
		{
			name:  "escaped separators stay escaped",
			entry: `m\ x,t\ k=a\,b\=c f\=k="s" 1`,
			want:  `m\ x,t\ k=a\,b\=c f\=k="s" 1`,
		},
		{
			name:  "string field escapes from older Telegraf become the characters",
			entry: `m s="a\nb\tc\\d\"e" 1`,
			want:  "m s=\"a\nb\tc\\\\d\\\"e\" 1",
		},
		{
			name:  "a number starting with a dot is rewritten",
			entry: `m x=.5,y=-.25 1`,
			want:  `m x=0.5,y=-0.25 1`,
		},
		{
			name:  "missing timestamp takes the time of reading",
			entry: `m x=1u`,
			want:  `m x=1u 1700000000000000000`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := encoder{precision: time.Nanosecond, now: func() time.Time { return now }}
			var b batch
			require.NoError(t, e.addLineProtocol(&b, []byte(tt.entry), 3))
			require.Equal(t, tt.want+"\n", string(b.buf))
			require.Equal(t, []int64{3}, b.sources)
		})
	}
}

func TestAddLineProtocolRefusesGarbage(t *testing.T) {
	e := encoder{precision: time.Nanosecond, now: time.Now}
	var b batch
	require.NoError(t, e.addLineProtocol(&b, []byte("ok x=1 1"), 1))
	for _, bad := range []string{
		"garbage",
		"m x=1 notatime",
		"m x=NaN 1",
		"m,t=1 1",
		"m x=1,y 1",
		"m x=\xff 1",
		"m 9223372036854775808i",
	} {
		err := e.addLineProtocol(&b, []byte(bad), 2)
		require.Error(t, err, bad)
		require.Contains(t, err.Error(), "line 2")
	}
	require.NoError(t, e.addLineProtocol(&b, []byte("# comment"), 3))
	require.NoError(t, e.addLineProtocol(&b, []byte("   "), 4))
	require.Equal(t, "ok x=1 1\n", string(b.buf), "a refused entry leaves nothing behind")
}

func TestBatchSpans(t *testing.T) {
	e := encoder{precision: time.Nanosecond, now: time.Now}
	var b batch
	for _, l := range []string{"a x=1 1", "b x=2 2", "c x=3 3"} {
		require.NoError(t, e.addLineProtocol(&b, []byte(l), 0))
	}
	require.Equal(t, "b x=2 2", string(b.line(1)))
	require.Equal(t, "c x=3 3", string(b.line(2)))
	require.Equal(t, "b x=2 2\nc x=3 3\n", string(b.span(1, 3)))
	require.Equal(t, "a x=1 1\n", string(b.span(0, 1)))
}

// FuzzAppendPlainMatchesTranscode holds the fast path to its promise: every line it
// takes, it writes byte for byte as transcode does.
func FuzzAppendPlainMatchesTranscode(f *testing.F) {
	for _, seed := range []string{
		`kafka_consumer pressure=1009.4,temperature=22.5,visibility=10 1690510331000000000`,
		`events,region=eu-west-1,host=server-0042 cpu=0.731,requests=1843i,big=18446744073709551u,ok=true,off=false,status="healthy go" 1690510331000000000`,
		`m x=-0.5,y=-3i,z=007i -1`,
		`m x=1 9223372036854775807`,
		`m x=1 9223372036854775808`,
		`m x=1 -9223372036854775807`,
		`m x=1.`,
		`m x=.5 1`,
		`m x=1e5 1`,
		`m x=123456789012345678901234567890 1`,
		`m x=1234567890123456789i 1`,
		`m x=-1u 1`,
		`m x=t 1`,
		`m x=True 1`,
		`m x="a\"b" 1`,
		`m,t=a\ b x=1 1`,
		`m,t= x=1 1`,
		`m,=v x=1 1`,
		`m  x=1 1`,
		`m x=1  1`,
		`m x=1 1 `,
		`m x=1,y=2`,
		`a=b x=1 1`,
		`m x=1,x=2 1`,
		"m s=\"caf\xc3\xa9\" 1",
		"m s=\"a\nb\" 1",
	} {
		f.Add(seed, int64(1))
		f.Add(seed, int64(1e6))
	}
	now := time.Unix(1700000000, 0)
	f.Fuzz(func(t *testing.T, entry string, unit int64) {
		precision := time.Nanosecond
		switch unit % 3 {
		case 1:
			precision = time.Microsecond
		case 2:
			precision = time.Millisecond
		}
		e := encoder{precision: precision, now: func() time.Time { return now }}
		plain, ok := e.appendPlain([]byte("prefix\n"), []byte(entry))
		if !ok {
			return
		}
		want, err := e.transcode([]byte("prefix\n"), []byte(entry))
		if err != nil {
			t.Fatalf("appendPlain took %q, which transcode refuses: %v", entry, err)
		}
		if string(plain) != string(want) {
			t.Fatalf("%q: appendPlain wrote %q, transcode %q", entry, plain, want)
		}
	})
}
