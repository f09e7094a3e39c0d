package cnosdb

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/influxdata/telegraf"
	"github.com/influxdata/telegraf/config"
	"github.com/influxdata/telegraf/plugins/common/tls"
	"github.com/influxdata/telegraf/plugins/outputs"

	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/internal/ackproto"
	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/internal/lograte"
)

//go:embed sample.conf
var sampleConfig string

// CnosDB writes metrics to CnosDB's HTTP API: it holds the configuration and the
// writer that takes a batch to CnosDB's nodes, retrying and isolating rejected lines
// until every line has a final result. Telegraf hands it metrics through Write; run as
// telegraf-cnosdb, a Stream hands it the line protocol read from stdin.
type CnosDB struct {
	URLs                 []string        `toml:"urls"`
	Tenant               string          `toml:"tenant"`
	Database             string          `toml:"database"`
	Precision            string          `toml:"precision"`
	Username             string          `toml:"username"`
	Password             config.Secret   `toml:"password"`
	Timeout              config.Duration `toml:"timeout"`
	ContentEncoding      string          `toml:"content_encoding"`
	MetricBatchSize      int             `toml:"metric_batch_size"`
	MaxInFlight          int             `toml:"max_in_flight"`
	MaxRequestSize       config.Size     `toml:"max_request_size"`
	FlushInterval        config.Duration `toml:"flush_interval"`
	MaxLineSize          config.Size     `toml:"max_line_size"`
	RetryInitialInterval config.Duration `toml:"retry_initial_interval"`
	RetryMaxInterval     config.Duration `toml:"retry_max_interval"`
	ServerErrorRetries   int             `toml:"server_error_retries"`
	CreateDatabase       bool            `toml:"create_database"`
	DatabaseOptions      DatabaseOptions `toml:"database_options"`
	StatsInterval        config.Duration `toml:"stats_interval"`
	SpoolDir             string          `toml:"spool_dir"`
	SpoolMaxSize         config.Size     `toml:"spool_max_size"`
	AckSockets           []string        `toml:"ack_sockets"`
	tls.ClientConfig

	Log telegraf.Logger `toml:"-"`

	// onResult, when set, is called with the result of every batch, in order: tests
	// see through it what each write did.
	onResult func(Result)

	enc    encoder
	writer *writer
	stats  stats

	ctx       context.Context
	cancel    context.CancelFunc // stops the retries of every write (Abort)
	statsDone chan struct{}      // closed when the summary loop ends
	closeOnce sync.Once
}

// rejectLogBurst is how many rejected lines are logged one by one at once, and in a
// minute after that; stats_interval's summary counts the rest.
const rejectLogBurst = 100

// maxInFlightLimit bounds max_in_flight: CnosDB's intake stops growing well before.
const maxInFlightLimit = 64

// maxBodySize is CnosDB's limit for a write request; larger requests are refused.
const maxBodySize = 160 * 1024 * 1024

func (*CnosDB) SampleConfig() string {
	return sampleConfig
}

// Init checks the configuration; every message names the option and what it takes.
func (c *CnosDB) Init() error {
	if len(c.URLs) == 0 {
		return errors.New("urls: at least one CnosDB address is required, e.g. [\"http://127.0.0.1:8902\"]")
	}
	for _, raw := range c.URLs {
		if err := checkURL(raw); err != nil {
			return err
		}
	}
	if c.Tenant == "" {
		return errors.New("tenant: must not be empty (CnosDB's default tenant is \"cnosdb\")")
	}
	if c.Database == "" || strings.ContainsAny(c.Database, "/") || strings.TrimSpace(c.Database) != c.Database {
		return fmt.Errorf("database: %q is not a CnosDB database name (not empty, no '/', no surrounding spaces)", c.Database)
	}
	switch c.Precision {
	case "ns", "us", "ms":
	default:
		// CnosDB silently reads any other precision as ns, which would shift every point.
		return fmt.Errorf("precision: %q is not one of \"ns\", \"us\", \"ms\" (the only precisions CnosDB takes)", c.Precision)
	}
	if c.Username == "" {
		return errors.New("username: must not be empty: CnosDB needs a user on every request, even with authentication off (its default user is \"root\")")
	}
	switch c.ContentEncoding {
	case "identity", "gzip":
	default:
		return fmt.Errorf("content_encoding: %q is not \"identity\" or \"gzip\"", c.ContentEncoding)
	}
	if c.Timeout <= 0 {
		return fmt.Errorf("timeout: must be positive, got %s", time.Duration(c.Timeout))
	}
	if c.MetricBatchSize <= 0 {
		return fmt.Errorf("metric_batch_size: must be positive, got %d", c.MetricBatchSize)
	}
	if c.MaxInFlight < 1 || c.MaxInFlight > maxInFlightLimit {
		return fmt.Errorf("max_in_flight: must be between 1 and %d, got %d", maxInFlightLimit, c.MaxInFlight)
	}
	if c.MaxRequestSize <= 0 || c.MaxRequestSize > maxBodySize {
		return fmt.Errorf("max_request_size: must be between 1 B and 160 MiB (CnosDB's limit), got %d B", c.MaxRequestSize)
	}
	if c.FlushInterval <= 0 {
		return fmt.Errorf("flush_interval: must be positive, got %s", time.Duration(c.FlushInterval))
	}
	if c.MaxLineSize <= 0 || c.MaxLineSize > c.MaxRequestSize {
		return fmt.Errorf("max_line_size: must be positive and at most max_request_size (%d B), got %d B", c.MaxRequestSize, c.MaxLineSize)
	}
	if c.RetryInitialInterval <= 0 || c.RetryMaxInterval < c.RetryInitialInterval {
		return fmt.Errorf("retry_initial_interval (%s) must be positive and at most retry_max_interval (%s)",
			time.Duration(c.RetryInitialInterval), time.Duration(c.RetryMaxInterval))
	}
	if c.ServerErrorRetries < 0 {
		return fmt.Errorf("server_error_retries: must not be negative, got %d", c.ServerErrorRetries)
	}
	if c.StatsInterval < 0 {
		return fmt.Errorf("stats_interval: must not be negative, got %s", time.Duration(c.StatsInterval))
	}
	if err := c.checkSpool(); err != nil {
		return err
	}
	for _, path := range c.AckSockets {
		if err := ackproto.CheckSocketPath(path); err != nil {
			return fmt.Errorf("ack_sockets: %w", err)
		}
	}
	if err := c.DatabaseOptions.check(); err != nil {
		return fmt.Errorf("database_options: %w", err)
	}
	if _, err := c.TLSConfig(); err != nil {
		return fmt.Errorf("TLS options: %w", err)
	}
	return nil
}

// checkURL checks one entry of urls. Its messages show the URL without its password,
// since they go to the log.
func checkURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			// url.Error repeats the URL, password included.
			err = uerr.Err
		}
		return fmt.Errorf("urls: an entry is not a URL: %w", err)
	}
	shown := u.Redacted()
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("urls: %q: the scheme must be http or https", shown)
	}
	if u.Host == "" {
		return fmt.Errorf("urls: %q: no host", shown)
	}
	if strings.Trim(u.Path, "/") != "" || u.RawQuery != "" {
		return fmt.Errorf("urls: %q: give the server's address only, like \"http://127.0.0.1:8902\"; "+
			"the plugin adds /api/v1/write and its parameters (tenant, database, precision)", shown)
	}
	return nil
}

// Connect prepares the HTTP client, checks that the nodes answer and creates the
// database when configured to. An unreachable CnosDB is not an error here: writes wait
// for it.
func (c *CnosDB) Connect() error {
	tlsConfig, err := c.TLSConfig()
	if err != nil {
		return fmt.Errorf("TLS options: %w", err)
	}
	password, err := c.Password.Get()
	if err != nil {
		return fmt.Errorf("reading password: %w", err)
	}
	authorization := basicAuth(c.Username, password.Bytes())
	password.Destroy()

	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = tlsConfig
	transport.Proxy = http.ProxyFromEnvironment
	transport.MaxIdleConnsPerHost = 4
	cl := &client{
		http:          &http.Client{Transport: transport, Timeout: time.Duration(c.Timeout)},
		authorization: authorization,
		gzip:          c.ContentEncoding == "gzip",
	}
	nodes := make([]*node, 0, len(c.URLs))
	for _, u := range c.URLs {
		nodes = append(nodes, newNode(u, c.Tenant, c.Database, c.Precision,
			time.Duration(c.RetryInitialInterval), time.Duration(c.RetryMaxInterval)))
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.writer = &writer{
		rejectLog:          lograte.New(rejectLogBurst, time.Minute/rejectLogBurst),
		oddLog:             lograte.New(rejectLogBurst, time.Minute/rejectLogBurst),
		client:             cl,
		nodes:              nodes,
		log:                c.Log,
		stats:              &c.stats,
		serverErrorRetries: c.ServerErrorRetries,
	}
	if c.CreateDatabase {
		c.writer.createDatabase = c.createDatabase
	}
	c.enc = encoder{precision: precisionUnit(c.Precision), now: time.Now}

	c.checkNodes()
	if c.CreateDatabase {
		if err := c.createDatabase(c.ctx); err != nil {
			c.Log.Warnf("could not create database %q (writes will say why if it is missing): %v", c.Database, err)
		}
	}

	c.statsDone = make(chan struct{})
	go c.logStats()
	return nil
}

func precisionUnit(p string) time.Duration {
	switch p {
	case "us":
		return time.Microsecond
	case "ms":
		return time.Millisecond
	}
	return time.Nanosecond
}

// checkNodes pings every node once, so that the log says early which one is unreachable.
func (c *CnosDB) checkNodes() {
	for _, n := range c.writer.nodes {
		ctx, cancel := context.WithTimeout(c.ctx, time.Duration(c.Timeout))
		version, err := ping(ctx, c.writer.client, n)
		cancel()
		if err != nil {
			c.Log.Warnf("CnosDB at %s does not answer yet (%v%s); writes wait for it", n.base, err, tlsHint(err))
			continue
		}
		c.Log.Infof("CnosDB at %s is up (version %s); writing to tenant %q, database %q, precision %s",
			n.base, version, c.Tenant, c.Database, c.Precision)
	}
}

// Close stops the summary loop. Write returns only once its metrics are written, so
// nothing is pending here; a Stream is closed first.
func (c *CnosDB) Close() error {
	c.closeOnce.Do(func() {
		if c.cancel == nil {
			return
		}
		c.cancel()
		<-c.statsDone
	})
	return nil
}

// Abort stops the retries of writes under way; they report their lines as not written.
// With a spool, they stay in it for the next start.
func (c *CnosDB) Abort() {
	if c.cancel != nil {
		c.cancel()
	}
}

// Write writes metrics handed over by Telegraf (when the plugin runs inside Telegraf or
// a shim). It returns once every metric is written or isolated as rejected; it returns
// an error only when the plugin is stopped first, so that Telegraf keeps the metrics.
func (c *CnosDB) Write(metrics []telegraf.Metric) error {
	b := &batch{}
	for i, m := range metrics {
		if err := c.enc.addMetric(b, m, int64(i)); err != nil {
			c.stats.malformed.Add(1)
			c.Log.Errorf("metric %q dropped: %v", m.Name(), err)
		}
	}
	res := c.writer.write(c.ctx, b)
	if c.onResult != nil {
		c.onResult(res)
	}
	if res.Aborted > 0 {
		return fmt.Errorf("stopped before %d of %d lines were written", res.Aborted, res.Lines)
	}
	return nil
}

func (c *CnosDB) logStats() {
	defer close(c.statsDone)
	if c.StatsInterval == 0 {
		return
	}
	t := time.NewTicker(time.Duration(c.StatsInterval))
	defer t.Stop()
	prev := snapshot{}
	last := time.Now()
	for {
		select {
		case <-c.ctx.Done():
			return
		case now := <-t.C:
			cur := c.stats.snapshot()
			if cur != prev {
				c.Log.Info(cur.summary(prev, now.Sub(last)))
			}
			if n := c.writer.rejectLog.TakeSuppressed(); n > 0 {
				c.Log.Errorf("%d more rejected lines were not logged one by one", n)
			}
			if n := c.writer.oddLog.TakeSuppressed(); n > 0 {
				c.Log.Warnf("%d more successes with a body were not logged one by one", n)
			}
			prev, last = cur, now
		}
	}
}

// LogTotals logs what the plugin did since it started.
func (c *CnosDB) LogTotals() {
	cur := c.stats.snapshot()
	c.Log.Infof("totals: %d lines written (%s) in %d requests, %d retries, %d rejected lines, %d malformed inputs",
		cur.written, humanBytes(cur.bytes), cur.requests, cur.retries, cur.rejected, cur.malformed)
}

// New returns the plugin with its defaults.
func New() *CnosDB {
	return &CnosDB{
		URLs:                 []string{"http://127.0.0.1:8902"},
		Tenant:               "cnosdb",
		Database:             "public",
		Precision:            "ns",
		Username:             "root",
		Timeout:              config.Duration(10 * time.Second),
		ContentEncoding:      "identity",
		MetricBatchSize:      2000,
		MaxInFlight:          4,
		MaxRequestSize:       config.Size(16 * 1024 * 1024),
		FlushInterval:        config.Duration(time.Second),
		MaxLineSize:          config.Size(1024 * 1024 * 4),
		RetryInitialInterval: config.Duration(250 * time.Millisecond),
		RetryMaxInterval:     config.Duration(30 * time.Second),
		ServerErrorRetries:   3,
		CreateDatabase:       true,
		StatsInterval:        config.Duration(time.Minute),
		SpoolMaxSize:         config.Size(1 << 30),
	}
}

func init() {
	outputs.Add("cnosdb", func() telegraf.Output { return New() })
}
