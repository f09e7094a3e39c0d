package telegraftest

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strconv"
	"testing"

	"github.com/influxdata/telegraf/plugins/parsers/influx"
	"github.com/influxdata/telegraf/plugins/parsers/influx/influx_upstream"
	serializer "github.com/influxdata/telegraf/plugins/serializers/influx"
)

// Telegraf's own share of the execd pair's work, per metric: inputs.execd parses the
// consumer's line protocol, outputs.execd serializes the metrics again for
// telegraf-cnosdb. No execd plugin can avoid either; these benchmarks measure them
// with Telegraf's code, for each parser Telegraf offers, so that the pair's CPU can be
// set against what Telegraf alone spends.

// execdLines is what telegraf-kafka-consumer writes for the benchmark's workloads.
func execdLines(name string, n int) []byte {
	var buf []byte
	for i := range n {
		switch name {
		case "sensor":
			buf = append(buf, "kafka_consumer pressure="...)
			buf = strconv.AppendFloat(buf, 980+float64(i%5000)/100, 'f', -1, 64)
			buf = append(buf, ",temperature="...)
			buf = strconv.AppendFloat(buf, 10+float64(i%2000)/100, 'f', -1, 64)
			buf = append(buf, ",visibility="...)
			buf = strconv.AppendInt(buf, int64(i%15), 10)
		case "wide":
			buf = append(buf, "kafka_consumer,host=edge-0042,region=eu-central-1,site=plant-7 "...)
			for k := range 12 {
				if k > 0 {
					buf = append(buf, ',')
				}
				buf = append(buf, "field_"...)
				buf = strconv.AppendInt(buf, int64(k), 10)
				buf = append(buf, '=')
				buf = strconv.AppendFloat(buf, float64((i+k*997)%10000)/100, 'f', -1, 64)
			}
		}
		buf = append(buf, ' ')
		buf = strconv.AppendInt(buf, 1700000000000000000+int64(i), 10)
		buf = append(buf, '\n')
	}
	return buf
}

const benchLines = 5000

// BenchmarkExecdInputParse is inputs.execd reading stdin with data_format = "influx":
// the internal parser streams (execd's cmdReadOutStream); with influx_parser_type =
// "upstream" execd reads line by line and parses each (cmdReadOut). Per metric.
func BenchmarkExecdInputParse(b *testing.B) {
	for _, workload := range []string{"sensor", "wide"} {
		data := execdLines(workload, benchLines)
		b.Run(workload+"/internal", func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				p := influx.NewStreamParser(bytes.NewReader(data))
				n := 0
				for {
					_, err := p.Next()
					if errors.Is(err, influx.EOF) {
						break
					}
					if err != nil {
						b.Fatal(err)
					}
					n++
				}
				if n != benchLines {
					b.Fatalf("%d metrics", n)
				}
			}
			perMetric(b)
		})
		b.Run(workload+"/upstream", func(b *testing.B) {
			p := &influx_upstream.Parser{}
			if err := p.Init(); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				r := bufio.NewReaderSize(bytes.NewReader(data), 64*1024) // execd's buffer_size
				n := 0
				for {
					line, err := r.ReadBytes('\n')
					if errors.Is(err, io.EOF) {
						break
					}
					metrics, err := p.Parse(line)
					if err != nil {
						b.Fatal(err)
					}
					n += len(metrics)
				}
				if n != benchLines {
					b.Fatalf("%d metrics", n)
				}
			}
			perMetric(b)
		})
	}
}

// BenchmarkExecdOutputSerialize is outputs.execd writing a batch of metrics with
// data_format = "influx", use_batch_format on and off. Per metric.
func BenchmarkExecdOutputSerialize(b *testing.B) {
	for _, workload := range []string{"sensor", "wide"} {
		p := &influx.Parser{}
		if err := p.Init(); err != nil {
			b.Fatal(err)
		}
		metrics, err := p.Parse(execdLines(workload, benchLines))
		if err != nil {
			b.Fatal(err)
		}
		for _, batch := range []bool{true, false} {
			name := workload + "/batch"
			if !batch {
				name = workload + "/each"
			}
			b.Run(name, func(b *testing.B) {
				s := &serializer.Serializer{}
				if err := s.Init(); err != nil {
					b.Fatal(err)
				}
				b.ReportAllocs()
				for b.Loop() {
					if batch {
						if _, err := s.SerializeBatch(metrics); err != nil {
							b.Fatal(err)
						}
						continue
					}
					for _, m := range metrics {
						if _, err := s.Serialize(m); err != nil {
							b.Fatal(err)
						}
					}
				}
				perMetric(b)
			})
		}
	}
}

// perMetric reports time and allocations per metric rather than per batch.
func perMetric(b *testing.B) {
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchLines), "ns/metric")
}
