package cnosdb

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/klauspost/compress/gzip"
)

// node is one CnosDB HTTP endpoint.
type node struct {
	base     string // scheme://host:port, without user info or a trailing slash: safe to log
	writeURL string
	sqlURL   string
	// authorization, when the URL carried user info, replaces the client's, so that
	// credentials live in a header and never in a URL that could reach a log.
	authorization string

	mu        sync.Mutex
	downUntil time.Time // not used for writes before then, unless every node is down
	failures  int       // consecutive failed requests
	backoff   *backoff.ExponentialBackOff
}

// client sends requests to CnosDB.
type client struct {
	http          *http.Client
	authorization string
	gzip          bool
	gzipPool      sync.Pool
}

// newNode returns the node at raw, a URL that checkURL accepted.
func newNode(raw, tenant, database, precision string, initial, maxInterval time.Duration) *node {
	var authorization string
	base := raw
	if u, err := url.Parse(raw); err == nil && u.User != nil {
		password, _ := u.User.Password()
		authorization = basicAuth(u.User.Username(), []byte(password))
		u.User = nil
		base = u.String()
	}
	base = strings.TrimRight(base, "/")
	q := url.Values{}
	q.Set("db", database)
	q.Set("tenant", tenant)
	q.Set("precision", precision)
	sq := url.Values{}
	sq.Set("tenant", tenant)
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = initial
	b.MaxInterval = maxInterval
	b.MaxElapsedTime = 0 // a node is retried for as long as it takes
	b.Reset()
	return &node{
		backoff:       b,
		base:          base,
		writeURL:      base + "/api/v1/write?" + q.Encode(),
		sqlURL:        base + "/api/v1/sql?" + sq.Encode(),
		authorization: authorization,
	}
}

// authorize sets the Authorization header of a request to n.
func (c *client) authorize(req *http.Request, n *node) {
	if n.authorization != "" {
		req.Header.Set("Authorization", n.authorization)
		return
	}
	req.Header.Set("Authorization", c.authorization)
}

func basicAuth(user string, password []byte) string {
	raw := make([]byte, 0, len(user)+1+len(password))
	raw = append(append(append(raw, user...), ':'), password...)
	return "Basic " + base64.StdEncoding.EncodeToString(raw)
}

// compressedBody holds a request body; CnosDB needs a Content-Length, so a compressed
// body is built in memory before the request, never streamed.
type compressedBody struct {
	buf bytes.Buffer
	zw  *gzip.Writer
}

// body returns what to send for payload, and a function that releases it.
func (c *client) body(payload []byte) ([]byte, func(), error) {
	if !c.gzip {
		return payload, func() {}, nil
	}
	cb, _ := c.gzipPool.Get().(*compressedBody)
	if cb == nil {
		cb = &compressedBody{}
		cb.zw, _ = gzip.NewWriterLevel(&cb.buf, gzip.BestSpeed)
	}
	cb.buf.Reset()
	cb.zw.Reset(&cb.buf)
	if _, err := cb.zw.Write(payload); err != nil {
		return nil, nil, fmt.Errorf("compressing: %w", err)
	}
	if err := cb.zw.Close(); err != nil {
		return nil, nil, fmt.Errorf("compressing: %w", err)
	}
	return cb.buf.Bytes(), func() { c.gzipPool.Put(cb) }, nil
}

// write posts payload to n and returns CnosDB's answer; a transport error (refused,
// reset, timed out) is returned as err.
func (c *client) write(ctx context.Context, n *node, payload []byte) (*serverError, error) {
	body, release, err := c.body(payload)
	if err != nil {
		return nil, err
	}
	defer release()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.writeURL, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.ContentLength = int64(len(body))
	c.authorize(req, n)
	req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	if c.gzip {
		req.Header.Set("Content-Encoding", "gzip")
	}
	return c.do(req)
}

// sql runs one statement; the answer body is returned on success.
func (c *client) sql(ctx context.Context, n *node, database, statement string) ([]byte, *serverError, error) {
	u := n.sqlURL
	if database != "" {
		u += "&db=" + url.QueryEscape(database)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(statement))
	if err != nil {
		return nil, nil, err
	}
	c.authorize(req, n)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, nil, fmt.Errorf("reading answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, parseServerError(resp.StatusCode, body), nil
	}
	return body, nil, nil
}

func (c *client) do(req *http.Request) (*serverError, error) {
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	// Errors are small JSON documents; a bounded read keeps the connection reusable
	// without trusting the server's size.
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64*1024))
	if err != nil {
		return nil, fmt.Errorf("reading answer: %w", err)
	}
	answer := parseServerError(resp.StatusCode, body)
	answer.RetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	return answer, nil
}
