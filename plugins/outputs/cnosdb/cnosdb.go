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
	"sync/atomic"
	"time"

	"github.com/influxdata/telegraf"
	"github.com/influxdata/telegraf/config"
	"github.com/influxdata/telegraf/plugins/common/tls"
	"github.com/influxdata/telegraf/plugins/outputs"

	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/internal/ackproto"
	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/internal/execdout"
)

//go:embed sample.conf
var sampleConfig string

// CnosDB writes metrics to CnosDB's HTTP API.
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

	// OnResult, when set, is called with the result of every batch, in order.
	OnResult func(Result) `toml:"-"`

	enc    encoder
	writer *writer
	stats  stats
	spool  *spool // nil without spool_dir
	acks   *acks  // answers the Kafka input's markers on stdin
	// linesRead counts the entries read from stdin that were not markers of an
	// input, those refused as malformed or too long too: the count the input's
	// markers are checked against (see package ackproto).
	linesRead int64
	urgent    bool // an input waits for the pending lines: flush them once the writer is free

	unfinished atomic.Int64  // batches flushed without a final result
	finished   chan struct{} // a value when a writer becomes free
	parallel   *inflight     // orders the writes of several writers; nil with a spool
	held       held          // what CnosDB does not have yet, for the log at a stop

	ctx        context.Context
	cancel     context.CancelFunc
	writerDone chan struct{} // closed when the queue is drained
	statsDone  chan struct{} // closed when the summary loop ends

	// Batches read from stdin: one being filled, up to queuedBatches queued, up to
	// max_in_flight being written, the queued and written ones within queueBytes. Free
	// batches are kept for reuse only if small (see poolable). With a spool, the spool
	// is the queue and free is not used.
	fill       *batch
	queue      chan *batch
	queueBytes *byteBudget
	free       chan *batch
	seq        uint64
	inflight   sync.WaitGroup // batches flushed and not yet written
	closeOnce  sync.Once
}

// idleFlush is how long stdin must stay quiet before a batch that is not full is
// written while a writer is free. The Kafka input's markers say when it has nothing
// more to send, so this only serves streams without them; it is longer than the
// pauses between Telegraf's batches under a backlog (tens of milliseconds).
const idleFlush = 200 * time.Millisecond

// StdinConfig is how the stdin loop batches for this configuration.
func (c *CnosDB) StdinConfig(log telegraf.Logger) execdout.Config {
	return execdout.Config{
		BatchEntries:  c.MetricBatchSize,
		BatchBytes:    int(c.MaxRequestSize),
		FlushInterval: time.Duration(c.FlushInterval),
		IdleFlush:     idleFlush,
		MaxEntrySize:  int(c.MaxLineSize),
		// After a signal, stdin is read on for what Telegraf already wrote to the
		// pipe; a second is ample, and ends well before DefaultShutdownTimeout gives
		// up, so that the log of what is given up counts every line read.
		ShutdownGrace: time.Second,
		Log:           log,
	}
}

// queuedBatches is how many full batches wait for a writer before reading stdin
// stops. While CnosDB is slow or down, what the Kafka input has in flight then waits
// here rather than in Telegraf's buffer, whose metric_buffer_limit (10000 by default)
// would otherwise overflow; 8 batches of 2000 lines of a few hundred bytes are a few
// MiB.
const queuedBatches = 8

// poolable reports whether a batch written is kept for reuse: only one whose buffer is
// at most a share of max_request_size, so that the free batches together take at most
// max_request_size. Batches of small lines (2000 of a few hundred bytes) are reused;
// those of large lines, a full max_request_size each, are left to the collector.
func (c *CnosDB) poolable(b *batch) bool {
	return cap(b.buf) <= int(c.MaxRequestSize)/cap(c.free)
}

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

	c.fill = &batch{}
	c.acks = newAcks(c.AckSockets, c.Log)
	c.finished = make(chan struct{}, 1)
	c.writerDone = make(chan struct{})
	if c.SpoolDir != "" {
		if err := c.openSpool(); err != nil {
			c.cancel()
			return err
		}
		go c.writeSpooled()
	} else {
		c.queue = make(chan *batch, queuedBatches)
		c.queueBytes = newByteBudget((c.MaxInFlight + 1) * int(c.MaxRequestSize))
		c.free = make(chan *batch, 1+queuedBatches+c.MaxInFlight)
		c.parallel = newInflight(c.MaxInFlight)
		c.writer.observe = c.parallel.observe
		var writers sync.WaitGroup
		for range c.MaxInFlight {
			writers.Add(1)
			go func() {
				defer writers.Done()
				c.writeQueued()
			}()
		}
		go func() {
			writers.Wait()
			close(c.writerDone)
		}()
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

// Close waits for the batches flushed so far, then stops. Abort first to stop retrying
// those too.
func (c *CnosDB) Close() error {
	c.closeOnce.Do(func() {
		switch {
		case c.spool != nil:
			c.spool.closeInput()
		case c.queue != nil:
			close(c.queue)
		default:
			return
		}
		<-c.writerDone
		c.acks.close(2 * time.Second)
		c.cancel()
		<-c.statsDone
		if c.spool != nil {
			c.closeSpool()
		}
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
	if c.OnResult != nil {
		c.OnResult(res)
	}
	if res.Aborted > 0 {
		return fmt.Errorf("stopped before %d of %d lines were written", res.Aborted, res.Lines)
	}
	return nil
}

// Add, Pending, Flush and Drain let the stdin loop of package execdout feed the plugin.

// Add transcodes one entry of Telegraf's line protocol into the batch being filled.
func (c *CnosDB) Add(entry []byte, line int64) error {
	if ackproto.IsMarker(entry) {
		// A marker alone does not flush: under a backlog more lines follow at once and
		// belong in the same request. One that says the input waits for it does, as
		// soon as the writer is free, since nothing more comes until then.
		taken, waiting := c.acks.marker(entry, c.fill.len(), line, c.linesRead)
		c.urgent = c.urgent || (waiting && c.fill.len() > 0)
		if !taken {
			// Not an input's marker, and not data either: CnosDB never gets a table
			// of that name from this plugin.
			c.linesRead++
			c.stats.malformed.Add(1)
		}
		return nil
	}
	c.linesRead++
	err := c.enc.addLineProtocol(c.fill, entry, line)
	c.held.filled(c.fill.len())
	return err
}

// FlushNow reports whether the Kafka input waits for the pending lines.
func (c *CnosDB) FlushNow() bool { return c.urgent }

// Busy reports whether every writer has a flushed batch without a final result.
func (c *CnosDB) Busy() bool {
	if c.spool != nil {
		return c.spool.status().batches > 0
	}
	return c.unfinished.Load() >= int64(c.parallel.writers())
}

// Finished receives a value when every flushed batch has its final result.
func (c *CnosDB) Finished() <-chan struct{} { return c.finished }

// started and ended count the batches without a final result, for Busy.
func (c *CnosDB) started() { c.unfinished.Add(1) }

func (c *CnosDB) ended() {
	if c.unfinished.Add(-1) < int64(c.parallel.writers()) {
		c.signalFinished()
	}
}

func (c *CnosDB) signalFinished() {
	select {
	case c.finished <- struct{}{}:
	default:
	}
}

// Malformed counts an entry of stdin dropped as malformed before Add saw it.
func (c *CnosDB) Malformed() {
	c.linesRead++
	c.stats.malformed.Add(1)
}

// Pending reports the lines and bytes in the batch being filled.
func (c *CnosDB) Pending() (lines, size int) {
	return c.fill.len(), len(c.fill.buf)
}

// Flush queues the batch being filled; it blocks while queuedBatches batches wait for
// a writer or the batches queued and being written take their byte budget, or with a
// spool, while the spool is full.
func (c *CnosDB) Flush() {
	c.urgent = false
	c.held.flushed(c.fill.len(), c.spool == nil)
	if c.spool != nil {
		if err := c.spool.append(c.ctx, c.fill); err != nil {
			c.Log.Errorf("%d lines read from stdin could not be spooled and are lost: %v", c.fill.len(), err)
			c.acks.lost()
		} else {
			c.acks.flushed(c.spool.lastIndex())
		}
		c.fill.reset()
		return
	}
	c.seq++
	c.stats.holdBatch()
	c.started()
	c.fill.seq = c.seq
	c.acks.flushed(c.seq)
	c.inflight.Add(1)
	c.fill.queued = len(c.fill.buf)
	c.queueBytes.acquire(c.fill.queued)
	size := c.fill.queued
	c.queue <- c.fill
	select {
	case b := <-c.free:
		b.reset()
		c.fill = b
	default:
		// Room for a batch like the last one: growing by appends to a full
		// max_request_size would leave a quarter of it unused, and three times as
		// much garbage, for every batch of large lines.
		c.fill = &batch{buf: make([]byte, 0, size)}
	}
}

// Drain waits until every flushed batch is written, or given up after Abort (with a
// spool: left in it).
func (c *CnosDB) Drain() {
	if c.spool != nil {
		c.spool.waitEmpty(c.writerDone)
		return
	}
	c.inflight.Wait()
}

// writeQueued is one of max_in_flight writers: it writes the batches it takes from
// the queue, and the results go on in stream order.
func (c *CnosDB) writeQueued() {
	for b := range c.queue {
		c.parallel.start(b)
		c.held.writeStarted(b.len())
		res := c.writer.write(c.ctx, b)
		c.held.writeEnded(b.len())
		c.parallel.finish(res, c.resultFinal)
		c.queueBytes.release(b.queued)
		if !c.poolable(b) {
			continue
		}
		select {
		case c.free <- b:
		default:
		}
	}
}

// resultFinal acts on the final result of a batch, in stream order.
func (c *CnosDB) resultFinal(res Result) {
	if res.Aborted > 0 {
		c.Log.Errorf("stopped before writing %d lines of batch %d (%d lines); they were not written",
			res.Aborted, res.Seq, res.Lines)
	}
	if c.OnResult != nil {
		c.OnResult(res)
	}
	c.acks.result(res)
	c.held.final(res)
	c.stats.releaseBatch()
	c.ended()
	c.inflight.Done()
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
			cur := c.snapshot()
			if cur != prev {
				c.Log.Info(cur.summary(prev, now.Sub(last)))
			}
			if n := c.writer.rejectLog.takeSuppressed(); n > 0 {
				c.Log.Errorf("%d more rejected lines were not logged one by one", n)
			}
			if n := c.writer.oddLog.takeSuppressed(); n > 0 {
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
