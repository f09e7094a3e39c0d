package pluginconf

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	_ "github.com/influxdata/telegraf/plugins/parsers/json"
	"github.com/influxdata/telegraf/testutil"
)

type input struct {
	Brokers []string `toml:"brokers"`
	ParserOptions
}

const jsonTable = `
[[inputs.kafka_consumer]]
  brokers = ["b:9092"]
  data_format = "json"
  tag_keys = ["station"]
  json_name_key = "kind"
`

func TestTableDecodesIntoSeveralValues(t *testing.T) {
	tbl, err := ParseTable(jsonTable+"  typo = 1\n", "inputs", "kafka_consumer")
	require.NoError(t, err)
	require.True(t, tbl.Has("tag_keys"))
	require.False(t, tbl.Has("json_query"))

	var in input
	require.NoError(t, tbl.Decode(&in))
	require.Equal(t, []string{"b:9092"}, in.Brokers)
	require.Equal(t, "json", in.Format())
	require.Equal(t, []string{"json_name_key", "tag_keys", "typo"}, tbl.Unknown())

	fn, err := tbl.ParserFunc(in.Format(), testutil.Logger{})
	require.NoError(t, err)
	require.EqualError(t, tbl.CheckUnknown(), "[[inputs.kafka_consumer]]: unknown option(s) typo")

	// Each call builds a new parser with the table's options.
	p1, err := fn()
	require.NoError(t, err)
	p2, err := fn()
	require.NoError(t, err)
	require.NotSame(t, p1, p2)
	metrics, err := p1.Parse([]byte(`{"station":"s1","kind":"buoy","v":1}`))
	require.NoError(t, err)
	require.Len(t, metrics, 1)
	require.Equal(t, "buoy", metrics[0].Name())
	require.Equal(t, map[string]string{"station": "s1"}, metrics[0].Tags())
}

func TestParserFuncRefuses(t *testing.T) {
	tbl, err := ParseTable(jsonTable, "inputs", "kafka_consumer")
	require.NoError(t, err)
	_, err = tbl.ParserFunc("no_such_format", nil)
	require.EqualError(t, err, `[[inputs.kafka_consumer]]: data_format "no_such_format" is not a Telegraf parser`)

	tbl, err = ParseTable("[[inputs.kafka_consumer]]\n  tag_keys = \"station\"\n", "inputs", "kafka_consumer")
	require.NoError(t, err)
	_, err = tbl.ParserFunc("json", nil)
	require.ErrorContains(t, err, "parser json")
}

func TestParserOptionsFormat(t *testing.T) {
	require.Equal(t, "influx", ParserOptions{}.Format())
	require.Equal(t, "influx_upstream", ParserOptions{DataFormat: "influx", InfluxParserType: "upstream"}.Format())
	require.Equal(t, "influx", ParserOptions{DataFormat: "influx", InfluxParserType: "internal"}.Format())
	require.Equal(t, "csv", ParserOptions{DataFormat: "csv"}.Format())
}

func TestReadTableNamesTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.conf")
	require.NoError(t, os.WriteFile(path, []byte(jsonTable), 0o600))
	tbl, err := ReadTable(path, "inputs", "kafka_consumer")
	require.NoError(t, err)
	var in input
	require.NoError(t, tbl.Decode(&in))
	require.Equal(t, []string{"b:9092"}, in.Brokers)

	_, err = ReadTable(path, "outputs", "cnosdb")
	require.ErrorContains(t, err, "config "+path+": unexpected section")
}
