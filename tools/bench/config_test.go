package main

import (
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/stretchr/testify/require"

	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/dev/cnosdbdev"
	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/internal/pluginconf"
	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/plugins/outputs/cnosdb"
	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/testutil/telegraftest"
)

func testEnv(t *testing.T, version string) *env {
	t.Helper()
	return &env{n: 1000, version: version, brokerAddr: "127.0.0.1:9092", workload: workloads["wide"],
		inputBin: "/bin/telegraf-kafka-consumer", outputBin: "/bin/telegraf-cnosdb", self: "/bin/bench",
		sink: &sink{url: "http://127.0.0.1:8902", user: "root"}, lpPath: "/tmp/wide.lp"}
}

// readTOML parses a configuration the way Telegraf would have to: valid TOML.
func readTOML(t *testing.T, path string) map[string]any {
	t.Helper()
	var conf map[string]any
	_, err := toml.DecodeFile(path, &conf)
	require.NoError(t, err, path)
	return conf
}

// plugin returns the only table of kind ("inputs") and name ("kafka_consumer").
func plugin(t *testing.T, conf map[string]any, kind, name string) map[string]any {
	t.Helper()
	tables, ok := conf[kind].(map[string]any)[name].([]map[string]any)
	require.True(t, ok, "no [[%s.%s]] in %v", kind, name, conf)
	require.Len(t, tables, 1)
	return tables[0]
}

func keysOf(m map[string]any) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// What the article's kafka_consumer and outputs.http set, with the workload's parser
// options and what the benchmark needs to read the preloaded topic.
var (
	stockKafkaKeys = []string{"brokers", "consumer_group", "data_format", "json_time_format", "json_time_key",
		"kafka_version", "offset", "tag_keys", "topics"}
	articleHTTPKeys = []string{"content_encoding", "data_format", "idle_conn_timeout", "method", "password",
		"timeout", "url", "use_batch_format", "username"}
)

func TestArticleConfigIsTheArticles(t *testing.T) {
	e := testEnv(t, telegraftest.Latest)
	path, err := articleConfig(e, t.TempDir(), "group", "db")
	require.NoError(t, err)
	conf := readTOML(t, path)
	require.NotContains(t, conf, "agent", "Telegraf's agent defaults, as the article has them")
	require.Equal(t, stockKafkaKeys, keysOf(plugin(t, conf, "inputs", "kafka_consumer")))
	out := plugin(t, conf, "outputs", "http")
	require.Equal(t, articleHTTPKeys, keysOf(out))
	require.Equal(t, "http://127.0.0.1:8902/api/v1/write?db=db", out["url"])
	require.Equal(t, "identity", out["content_encoding"])
	require.Equal(t, true, out["use_batch_format"])
}

func TestTunedConfig(t *testing.T) {
	e := testEnv(t, telegraftest.Latest)
	path, err := tunedConfig(e, t.TempDir(), "group", "db")
	require.NoError(t, err)
	conf := readTOML(t, path)
	agent := conf["agent"].(map[string]any)
	require.Equal(t, map[string]any{"metric_batch_size": int64(5000), "metric_buffer_limit": int64(100000), "flush_interval": "1s"}, agent)
	in := plugin(t, conf, "inputs", "kafka_consumer")
	require.GreaterOrEqual(t, in["max_undelivered_messages"], int64(2*5000), "a batch fills while the last one is written")
	delete(in, "max_undelivered_messages")
	require.Equal(t, stockKafkaKeys, keysOf(in), "otherwise the article's input")
	require.Equal(t, articleHTTPKeys, keysOf(plugin(t, conf, "outputs", "http")), "and the article's output")
}

func TestPairConfigHasTheDefaults(t *testing.T) {
	for _, version := range telegraftest.Versions {
		t.Run(version, func(t *testing.T) {
			dir := t.TempDir()
			path, err := pairConfig(testEnv(t, version), dir, "group", "db")
			require.NoError(t, err)
			conf := readTOML(t, path)
			require.Equal(t, map[string]any{"flush_interval": "1s"}, conf["agent"],
				"Telegraf's agent defaults but for sample.conf's advice, A-tuned's flush_interval")
			require.Equal(t, []string{"command", "data_format"}, keysOf(plugin(t, conf, "inputs", "execd")))
			outKeys := []string{"command", "data_format", "use_batch_format"}
			if version == telegraftest.Article {
				outKeys = []string{"command", "data_format"}
			}
			require.Equal(t, outKeys, keysOf(plugin(t, conf, "outputs", "execd")))

			consumer := plugin(t, readTOML(t, filepath.Join(dir, "kafka_consumer.conf")), "inputs", "kafka_consumer")
			require.Equal(t, slices.DeleteFunc(slices.Clone(stockKafkaKeys), func(k string) bool { return k == "kafka_version" }), keysOf(consumer),
				"where to read and how to parse only: no ack_socket, no max_undelivered_messages, and no kafka_version, which the input asks the brokers")
			writer := plugin(t, readTOML(t, filepath.Join(dir, "cnosdb.conf")), "outputs", "cnosdb")
			require.Equal(t, []string{"database", "password", "urls", "username"}, keysOf(writer))
		})
	}
}

func TestRoutingConfigHoldsTheTopic(t *testing.T) {
	e := testEnv(t, telegraftest.Latest)
	e.n = 1_000_000
	path, err := routingConfig(e, t.TempDir(), "/tmp/progress")
	require.NoError(t, err)
	conf := readTOML(t, path)
	require.Equal(t, map[string]any{"metric_buffer_limit": int64(e.n)}, conf["agent"], "the replay does not wait for deliveries")
}

func TestOutputAloneConfigs(t *testing.T) {
	out := &sink{url: "http://127.0.0.1:8903", user: "root", password: "pw"}
	for kind, want := range map[string]struct {
		keys     []string
		inFlight int
	}{
		runOutput1:       {[]string{"database", "max_in_flight", "password", "urls", "username"}, 1},
		runOutputDefault: {[]string{"database", "password", "urls", "username"}, cnosdb.New().MaxInFlight},
	} {
		t.Run(kind, func(t *testing.T) {
			path, err := writerConfig(out, t.TempDir(), "db", outputAloneTOML(kind))
			require.NoError(t, err)
			writer := plugin(t, readTOML(t, path), "outputs", "cnosdb")
			require.Equal(t, want.keys, keysOf(writer), "the plugin's defaults but for where to write and max_in_flight")
			require.Equal(t, []any{out.url}, writer["urls"], "the output alone's sink, not the pipelines'")

			p := cnosdb.New()
			require.NoError(t, pluginconf.Load(path, "outputs", "cnosdb", p), "telegraf-cnosdb reads it")
			require.Equal(t, want.inFlight, p.MaxInFlight)
		})
	}
	require.Greater(t, defaultInFlight(), 1, "the default runs several requests at once, or the comparison says nothing")
}

func TestWriteCounterCountsWritesOnly(t *testing.T) {
	var (
		mu     sync.Mutex
		bodies []string
		sizes  []int64
	)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies, sizes = append(bodies, r.URL.RequestURI()+" "+string(b)), append(sizes, r.ContentLength)
		mu.Unlock()
	}))
	defer backend.Close()
	wc, err := startWriteCounter(backend.URL)
	require.NoError(t, err)
	defer wc.close()

	post := func(path, body string) {
		resp, err := http.Post(wc.url+path, "text/plain", strings.NewReader(body))
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
	}
	post("/api/v1/write?db=a", "m x=1 1\nm x=2 2\n")
	before := wc.counts()
	post("/api/v1/write?db=a", "m x=3 3\nm x=4 4\nm x=5 5") // no newline after the last line
	post("/api/v1/sql?db=a", "SELECT 1\n")
	require.Equal(t, writeCounts{requests: 1, lines: 3, bytes: 23, accepted: 3}, wc.counts().sub(before))
	require.Equal(t, writeCounts{requests: 2, lines: 5, bytes: 39, accepted: 5}, wc.counts())
	require.Equal(t, []string{"/api/v1/write?db=a m x=1 1\nm x=2 2\n", "/api/v1/write?db=a m x=3 3\nm x=4 4\nm x=5 5", "/api/v1/sql?db=a SELECT 1\n"}, bodies)
	require.Equal(t, []int64{16, 23, 9}, sizes, "the sink sees each request's Content-Length")
}

// The sink answers 2xx to some writes only: accepted counts their lines, and a
// recording notes each one as its answer passes.
func TestWriteCounterAcceptsTwoHundredsOnly(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		switch r.URL.Query().Get("db") {
		case "busy":
			http.Error(w, "overloaded", http.StatusServiceUnavailable)
		case "quiet":
			w.WriteHeader(http.StatusNoContent)
		}
	}))
	defer backend.Close()
	wc, err := startWriteCounter(backend.URL)
	require.NoError(t, err)
	defer wc.close()
	post := func(db, body string) {
		resp, err := http.Post(wc.url+writePath+"?db="+db, "text/plain", strings.NewReader(body))
		require.NoError(t, err)
		resp.Body.Close()
	}

	post("a", "m x=1 1\n")
	require.EqualValues(t, 1, wc.record(), "the lines accepted before the recording")
	start := time.Now()
	post("a", "m x=2 2\nm x=3 3")
	post("busy", "m x=4 4\nm x=5 5\n")
	post("quiet", "m x=6 6\n")
	acc := wc.stopRecording()
	post("a", "m x=7 7\n")

	require.Len(t, acc, 2, "the 503 is no acceptance")
	require.Equal(t, []int64{2, 1}, []int64{acc[0].lines, acc[1].lines}, "a last line without a newline counts")
	require.False(t, acc[0].at.Before(start))
	require.False(t, acc[1].at.Before(acc[0].at))
	require.Empty(t, wc.stopRecording(), "nothing after the recording stopped")
	require.Equal(t, writeCounts{requests: 5, lines: 7, bytes: 55, accepted: 5}, wc.counts())
}

func TestAcceptedRates(t *testing.T) {
	start := time.Now()
	at := func(ms int) time.Time { return start.Add(time.Duration(ms) * time.Millisecond) }
	acc := []acceptance{{at(100), 2000}, {at(200), 2000}, {at(300), 2000}, {at(600), 1000}, {at(700), 500}}
	tl, elapsed, steady := acceptedRates(start, acc, 7000)
	require.Equal(t, 600*time.Millisecond, elapsed, "until the request that took the 7000th line")
	require.InDelta(t, 5000/0.5, steady, 1e-6, "5000 lines after the first request's, in 0.5 s")
	require.Equal(t, []sample{{100 * time.Millisecond, 2000}, {200 * time.Millisecond, 4000}, {300 * time.Millisecond, 6000}, {600 * time.Millisecond, 7000}}, tl)

	_, elapsed, steady = acceptedRates(start, acc[:1], 2000)
	require.Equal(t, 100*time.Millisecond, elapsed)
	require.Zero(t, steady, "one request: no interval to time")
	_, elapsed, _ = acceptedRates(start, acc[:2], 7000)
	require.Zero(t, elapsed, "not all accepted")
}

func TestMeasurementsAlternate(t *testing.T) {
	order := func(o options, round int) []string {
		var ks []string
		for _, m := range measurements(o, round) {
			ks = append(ks, m.kind)
		}
		return ks
	}
	require.Equal(t, []string{runAArticle, runATuned, runB}, order(options{}, 1))
	require.Equal(t, []string{runB, runATuned, runAArticle}, order(options{}, 2))
	require.Equal(t, []string{runAArticle, runATuned, runB, runInput, runOutput1, runOutputDefault, runRouting, runSarama, runKcat, runSink},
		order(options{ceilings: true}, 3), "the output alone is among the runs around the pipelines")
	require.Equal(t, []string{runAArticle, runATuned, runB, runOutput1, runOutputDefault}, order(options{outputAlone: true}, 1))
	require.Equal(t, []string{runB, runATuned, runAArticle, runOutputDefault, runOutput1}, order(options{outputAlone: true}, 2),
		"neither max_in_flight always runs first")
	require.Equal(t, []string{runATuned, runB, runOutput1, runOutputDefault}, order(options{outputAlone: true, only: []string{runATuned, runB}}, 1))
}

func TestOnlyTheOutputAlone(t *testing.T) {
	t.Setenv("BENCH_N", "")
	parse := func(args ...string) options {
		o, err := parseFlags(flag.NewFlagSet("bench", flag.ContinueOnError), args)
		require.NoError(t, err)
		return o
	}
	o := parse("-only", runOutput1+","+runOutputDefault)
	require.Empty(t, o.pipelines(), "naming only output-alone runs leaves out the pipelines")
	require.Equal(t, outputAloneKinds, o.outputRuns())
	require.False(t, o.needsKafka(), "neither Kafka nor Telegraf for the output alone")
	require.Equal(t, []string{runOutputDefault, runOutput1}, func() []string {
		var ks []string
		for _, m := range measurements(o, 2) {
			ks = append(ks, m.kind)
		}
		return ks
	}())

	o = parse("-only", "B,"+runOutputDefault, "-ceilings")
	require.Equal(t, []string{runB}, o.pipelines())
	require.Equal(t, []string{runOutputDefault}, o.outputRuns(), "-only picks among the output-alone runs too")
	require.True(t, o.needsKafka())

	require.Empty(t, parse().outputRuns(), "a default run is the pipelines only")
	require.Equal(t, outputAloneKinds, parse("-output-alone").outputRuns())
	_, err := parseFlags(flag.NewFlagSet("bench", flag.ContinueOnError), []string{"-only", "output"})
	require.ErrorContains(t, err, runOutputDefault, "the error names the runs there are")
}

func TestFlagDefaults(t *testing.T) {
	t.Setenv("BENCH_N", "")
	parse := func(args ...string) options {
		o, err := parseFlags(flag.NewFlagSet("bench", flag.ContinueOnError), args)
		require.NoError(t, err)
		return o
	}
	o := parse("-n", "20000")
	require.False(t, o.ceilings, "a default run is the pipelines only")
	require.False(t, o.outputAlone)
	require.False(t, o.backlog, "20000 messages are no backlog")
	require.Equal(t, sinkCost, o.sink)
	require.Equal(t, cnosdbdev.DefaultCost().Cores, o.sinkCores)
	require.True(t, parse("-n", "50000").backlog)
	require.True(t, parse("-n", "20000", "-backlog").backlog)
	require.False(t, parse("-backlog=false").backlog)
	_, err := parseFlags(flag.NewFlagSet("bench", flag.ContinueOnError), []string{"-sink", "free"})
	require.Error(t, err)
}

func TestProcessCPUByName(t *testing.T) {
	st := procStats{procs: []procSample{{name: procTelegraf, cpu: 2}, {name: "bench -replay", cpu: 3}, {name: "bench -replay", cpu: 4}}}
	require.Equal(t, map[string]time.Duration{procTelegraf: 2, "bench -replay": 7}, st.byName())
	_, err := processCPU(os.Getpid())
	require.NoError(t, err, "a process's CPU time reads from /proc")
}
