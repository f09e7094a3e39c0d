package kafka_consumer

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/influxdata/telegraf"
	"github.com/influxdata/telegraf/metric"
	"github.com/influxdata/telegraf/plugins/parsers/json"
	"github.com/influxdata/telegraf/plugins/serializers/influx"
)

// TestAppendMetricMatchesTelegraf checks appendMetric byte for byte against
// Telegraf's influx serializer over names, tags and fields that need escaping or
// cannot be written.
func TestAppendMetricMatchesTelegraf(t *testing.T) {
	ts := time.Unix(1700000000, 123456789)
	metrics := []telegraf.Metric{
		metric.New("cpu", map[string]string{"host": "a"}, map[string]interface{}{"v": 1.5}, ts),
		metric.New("we ird,name=x", map[string]string{"t k,=": "t v,= \t\n\r\f"}, map[string]interface{}{"f k,= ": `s "q" \ tab	nl
`}, ts),
		metric.New("ints", nil, map[string]interface{}{"i": int64(-5), "u": uint64(math.MaxUint64), "b": true, "f": false}, ts),
		metric.New("floats", nil, map[string]interface{}{"big": 1e300, "small": 1e-300, "neg": math.Copysign(0, -1), "nan": math.NaN(), "inf": math.Inf(1), "ok": 2.0}, ts),
		metric.New("onlynan", nil, map[string]interface{}{"nan": math.NaN()}, ts),
		metric.New("", nil, map[string]interface{}{"v": 1.0}, ts),
		metric.New("trailing", map[string]string{`k\`: `v\\`, "empty": "", `\`: "x"}, map[string]interface{}{"v": 1.0, "": 2.0}, ts),
		metric.New("unicode ü", map[string]string{"städte": "köln"}, map[string]interface{}{"😀": "ünï"}, time.Unix(0, 0)),
		metric.New("neg time", nil, map[string]interface{}{"v": int64(1)}, time.Unix(-5, 0)),
	}
	ser := &influx.Serializer{UintSupport: true}
	require.NoError(t, ser.Init())
	for _, m := range metrics {
		want, err := ser.SerializeBatch([]telegraf.Metric{m})
		require.NoError(t, err)
		got, ok := appendMetric([]byte("prefix|"), m)
		require.Equal(t, "prefix|"+string(want), string(got), "metric %q", m.Name())
		require.Equal(t, len(want) > 0, ok)
	}
}

// The cost per message of what each partition does: parse the article's sensor JSON
// and append line protocol, with Telegraf's json parser; and, for comparison, with
// Telegraf's serializer, which allocates a copy per call.
var benchMessage = []byte(`{"pressure":1013.25,"temperature":21.5,"visibility":10,"station":"buoy-17"}`)

func benchParser(b *testing.B) *json.Parser {
	p := &json.Parser{TagKeys: []string{"station"}, MetricName: "kafka_consumer"}
	require.NoError(b, p.Init())
	return p
}

func BenchmarkDecodeAppend(b *testing.B) {
	p := benchParser(b)
	buf := make([]byte, 0, 64<<10)
	b.SetBytes(int64(len(benchMessage)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		metrics, err := p.Parse(benchMessage)
		if err != nil {
			b.Fatal(err)
		}
		for _, m := range metrics {
			buf, _ = appendMetric(buf, m)
		}
		if len(buf) > 60<<10 {
			buf = buf[:0]
		}
	}
}

func BenchmarkDecodeTelegrafSerializer(b *testing.B) {
	p := benchParser(b)
	ser := &influx.Serializer{UintSupport: true}
	require.NoError(b, ser.Init())
	buf := make([]byte, 0, 64<<10)
	b.SetBytes(int64(len(benchMessage)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		metrics, err := p.Parse(benchMessage)
		if err != nil {
			b.Fatal(err)
		}
		out, err := ser.SerializeBatch(metrics)
		if err != nil {
			b.Fatal(err)
		}
		buf = append(buf, out...)
		if len(buf) > 60<<10 {
			buf = buf[:0]
		}
	}
}

func BenchmarkAppendMetric(b *testing.B) {
	metrics, err := benchParser(b).Parse(benchMessage)
	require.NoError(b, err)
	buf := make([]byte, 0, 64<<10)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		buf, _ = appendMetric(buf[:0], metrics[0])
	}
}
