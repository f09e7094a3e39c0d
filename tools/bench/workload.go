package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/influxdata/telegraf/plugins/parsers/json"
	"github.com/influxdata/telegraf/plugins/serializers/influx"
)

// workload is what a topic holds: how many partitions and what each message says,
// and how both pipelines are told to parse it.
type workload struct {
	name       string
	partitions int32
	fields     int
	tags       []string // JSON keys both pipelines turn into tags
	timeKey    string   // JSON key both pipelines take the metric time from, "" for none
	timeFormat string
	message    func(buf []byte, i int) []byte
}

// The order in which -workload all runs them.
var workloadOrder = []string{"sensor", "wide"}

var workloads = map[string]workload{
	// The article's sensor JSON on one partition.
	"sensor": {name: "sensor", partitions: 1, fields: 3, message: sensorMessage},
	// Twelve numeric fields and three tags on six partitions: more parsing per message
	// and a consumer that serves several partitions at once. Every message carries its
	// own time, so that on a real CnosDB no two rows of a series share one and collapse.
	"wide": {name: "wide", partitions: 6, fields: 12, tags: []string{"station", "region", "sensor_type"},
		timeKey: "ts", timeFormat: "unix_us", message: wideMessage},
}

func (w workload) topic() string { return "bench-" + w.name }

// describe says what the messages are, for the report; avgBytes is left out when 0
// (no topic was preloaded).
func (w workload) describe(avgBytes float64) string {
	s := fmt.Sprintf("%d numeric fields", w.fields)
	if len(w.tags) > 0 {
		s += fmt.Sprintf(", %d tags (%s)", len(w.tags), strings.Join(w.tags, ", "))
	}
	if w.timeKey != "" {
		s += fmt.Sprintf(", time from %q (%s)", w.timeKey, w.timeFormat)
	}
	if avgBytes > 0 {
		s += fmt.Sprintf(", %.0f bytes of JSON on average", avgBytes)
	}
	return fmt.Sprintf("%s, %d partition(s)", s, w.partitions)
}

// parserTOML is the JSON parser configuration both pipelines get, indented for a
// plugin table.
func (w workload) parserTOML() string {
	var b strings.Builder
	b.WriteString("  data_format = \"json\"\n")
	if len(w.tags) > 0 {
		fmt.Fprintf(&b, "  tag_keys = [%s]\n", quoteList(w.tags))
	}
	if w.timeKey != "" {
		fmt.Fprintf(&b, "  json_time_key = %q\n  json_time_format = %q\n", w.timeKey, w.timeFormat)
	}
	return b.String()
}

func quoteList(xs []string) string {
	q := make([]string, len(xs))
	for i, x := range xs {
		q[i] = strconv.Quote(x)
	}
	return strings.Join(q, ", ")
}

// sensorMessage appends message i, values varying with i so that no two
// consecutive messages are the same.
func sensorMessage(buf []byte, i int) []byte {
	buf = append(buf, `{"pressure":`...)
	buf = strconv.AppendFloat(buf, 980+float64(i%5000)/100, 'f', 2, 64)
	buf = append(buf, `,"temperature":`...)
	buf = strconv.AppendFloat(buf, 10+float64(i%2000)/100, 'f', 2, 64)
	buf = append(buf, `,"visibility":`...)
	buf = strconv.AppendInt(buf, int64(i%15), 10)
	return append(buf, '}')
}

var wideNames = [...]string{
	"pressure", "temperature", "visibility", "humidity", "wind_speed", "wind_direction",
	"salinity", "wave_height", "wave_period", "current_speed", "water_depth", "battery_voltage",
}

var (
	regions     = [...]string{"north-atlantic", "south-atlantic", "north-pacific", "south-pacific", "indian-ocean", "arctic", "southern-ocean"}
	sensorTypes = [...]string{"moored-buoy-mk2", "drifting-buoy-mk1", "coastal-station-mk3"}
)

// wideTimeBase is the first message's time in microseconds (2026-01-01T00:00:00Z);
// message i is i microseconds later.
const wideTimeBase = 1767225600_000000

// wideMessage appends message i of about 400 bytes: a time, three tags (200
// stations, 7 regions, 3 sensor types) and twelve fields.
func wideMessage(buf []byte, i int) []byte { return wideMessageAt(buf, i, wideTimeBase+int64(i)) }

// wideMessageAt is wide message i with the time ts in microseconds: a freshness run
// stamps each message with the moment it is produced.
func wideMessageAt(buf []byte, i int, ts int64) []byte {
	buf = append(buf, `{"ts":`...)
	buf = strconv.AppendInt(buf, ts, 10)
	buf = append(buf, `,"station":"station-`...)
	buf = strconv.AppendInt(buf, 10000+int64(i%200), 10)
	buf = append(buf, `","region":"`...)
	buf = append(buf, regions[i%len(regions)]...)
	buf = append(buf, `","sensor_type":"`...)
	buf = append(buf, sensorTypes[i%len(sensorTypes)]...)
	buf = append(buf, '"')
	for k, name := range wideNames {
		buf = append(buf, `,"`...)
		buf = append(buf, name...)
		buf = append(buf, `":`...)
		buf = strconv.AppendFloat(buf, float64((i+k*997)%1000000)/1000+100, 'f', 3, 64)
	}
	return append(buf, '}')
}

// writeLineProtocol writes n messages of w as the line protocol Telegraf's own JSON
// parser and influx serializer make of them, for the routing and sink ceilings: the
// same lines the pipelines carry, pre-made.
func writeLineProtocol(w workload, n int, path string) error {
	parser := &json.Parser{MetricName: table, TagKeys: w.tags, TimeKey: w.timeKey, TimeFormat: w.timeFormat}
	if err := parser.Init(); err != nil {
		return fmt.Errorf("JSON parser: %w", err)
	}
	ser := &influx.Serializer{}
	if err := ser.Init(); err != nil {
		return fmt.Errorf("influx serializer: %w", err)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	out := bufio.NewWriterSize(f, 1<<20)
	var msg []byte
	for i := range n {
		msg = w.message(msg[:0], i)
		metrics, err := parser.Parse(msg)
		if err == nil && len(metrics) != 1 {
			err = fmt.Errorf("%d metrics, not 1", len(metrics))
		}
		if err != nil {
			f.Close()
			return fmt.Errorf("parsing message %d %s: %w", i, msg, err)
		}
		line, err := ser.Serialize(metrics[0])
		if err != nil {
			f.Close()
			return fmt.Errorf("message %d: %w", i, err)
		}
		if _, err := out.Write(line); err != nil {
			f.Close()
			return fmt.Errorf("writing %s: %w", path, err)
		}
	}
	if err := out.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return f.Close()
}
