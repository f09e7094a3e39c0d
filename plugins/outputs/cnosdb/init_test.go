package cnosdb

import (
	"strings"
	"testing"

	"github.com/influxdata/telegraf/config"
	"github.com/stretchr/testify/require"

	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/internal/pluginconf"
)

func TestSampleConfigParsesWithDefaults(t *testing.T) {
	// Every option in sample.conf, uncommented, must be known and valid.
	c := New()
	require.NoError(t, pluginconf.Decode(uncomment(c.SampleConfig()), "outputs", "cnosdb", c))
	require.Equal(t, "/etc/telegraf/ca.pem", c.TLSCA, "the TLS examples were read")
	c.TLSCA, c.TLSCert, c.TLSKey = "", "", ""
	require.Equal(t, "/var/lib/telegraf-cnosdb/spool", c.SpoolDir, "the spool example was read")
	c.SpoolDir = "" // Init would create it
	require.NoError(t, c.Init())

	// The values shown are the defaults.
	d := New()
	require.Equal(t, d.URLs, c.URLs)
	require.Equal(t, []interface{}{d.Tenant, d.Database, d.Precision, d.Username, d.Timeout, d.ContentEncoding,
		d.MetricBatchSize, d.MaxRequestSize, d.FlushInterval, d.MaxLineSize, d.RetryInitialInterval,
		d.RetryMaxInterval, d.ServerErrorRetries, d.CreateDatabase, d.StatsInterval, d.SpoolMaxSize},
		[]interface{}{c.Tenant, c.Database, c.Precision, c.Username, c.Timeout, c.ContentEncoding,
			c.MetricBatchSize, c.MaxRequestSize, c.FlushInterval, c.MaxLineSize, c.RetryInitialInterval,
			c.RetryMaxInterval, c.ServerErrorRetries, c.CreateDatabase, c.StatsInterval, c.SpoolMaxSize})
	require.Equal(t, DatabaseOptions{TTL: "INF", Shard: 1, VnodeDuration: "1year", Replica: 1, Precision: "ns"}, c.DatabaseOptions)
}

// uncomment turns "  # key = value" lines of a sample configuration into settings.
func uncomment(sample string) string {
	lines := strings.Split(sample, "\n")
	for i, line := range lines {
		trimmed := strings.TrimLeft(line, " ")
		setting := strings.TrimPrefix(trimmed, "# ")
		if setting != trimmed && (strings.Contains(setting, " = ") || strings.HasPrefix(setting, "[")) {
			lines[i] = setting
		}
	}
	return strings.Join(lines, "\n")
}

func TestInitRefusesWithPreciseMessages(t *testing.T) {
	tests := []struct {
		name   string
		change func(*CnosDB)
		want   string
	}{
		{"no urls", func(c *CnosDB) { c.URLs = nil }, "urls: at least one CnosDB address is required"},
		{"bad scheme", func(c *CnosDB) { c.URLs = []string{"tcp://h:8902"} }, `urls: "tcp://h:8902": the scheme must be http or https`},
		{"path given", func(c *CnosDB) { c.URLs = []string{"http://h:8902/api/v1/write?db=telegraf"} }, "give the server's address only"},
		{"no host", func(c *CnosDB) { c.URLs = []string{"http://"} }, "no host"},
		{"empty tenant", func(c *CnosDB) { c.Tenant = "" }, "tenant: must not be empty"},
		{"bad database", func(c *CnosDB) { c.Database = "a/b" }, `database: "a/b" is not a CnosDB database name`},
		{"seconds precision", func(c *CnosDB) { c.Precision = "s" }, `precision: "s" is not one of "ns", "us", "ms"`},
		{"no user", func(c *CnosDB) { c.Username = "" }, "username: must not be empty"},
		{"snappy", func(c *CnosDB) { c.ContentEncoding = "snappy" }, `content_encoding: "snappy" is not "identity" or "gzip"`},
		{"zero timeout", func(c *CnosDB) { c.Timeout = 0 }, "timeout: must be positive"},
		{"zero batch", func(c *CnosDB) { c.MetricBatchSize = 0 }, "metric_batch_size: must be positive"},
		{"huge request", func(c *CnosDB) { c.MaxRequestSize = config.Size(200 << 20) }, "max_request_size: must be between 1 B and 160 MiB"},
		{"line over request", func(c *CnosDB) { c.MaxLineSize = c.MaxRequestSize + 1 }, "max_line_size: must be positive and at most max_request_size"},
		{"zero flush", func(c *CnosDB) { c.FlushInterval = 0 }, "flush_interval: must be positive"},
		{"retry order", func(c *CnosDB) { c.RetryMaxInterval = c.RetryInitialInterval / 2 }, "retry_initial_interval"},
		{"negative retries", func(c *CnosDB) { c.ServerErrorRetries = -1 }, "server_error_retries: must not be negative"},
		{"db precision", func(c *CnosDB) { c.DatabaseOptions.Precision = "s" }, `database_options: precision: "s"`},
		{"ttl quote", func(c *CnosDB) { c.DatabaseOptions.TTL = "1d'" }, "database_options: ttl"},
		{"tls files", func(c *CnosDB) { c.TLSCA = "/nonexistent/ca.pem" }, "TLS options"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := New()
			tt.change(c)
			require.ErrorContains(t, c.Init(), tt.want)
		})
	}
}
