package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// shape is one way of writing the same lines to CnosDB: how many a request holds,
// whether the body is gzipped, and the precision of the timestamps.
type shape struct {
	name      string
	lines     int
	gzip      bool
	precision string // "ns" or "us": the timestamps are divided by 1000 for "us"
}

// shapes are what -shapes compares, the first being what telegraf-cnosdb sends by
// default. "us" applies to workloads whose times are whole microseconds only, so
// that every row keeps its time.
func shapes(w workload) []shape {
	batch := writerBatchSize()
	list := []shape{
		{"default: identity, ns", batch, false, "ns"},
		{"gzip", batch, true, "ns"},
		{fmt.Sprintf("%d lines", batch/4), batch / 4, false, "ns"},
		{fmt.Sprintf("%d lines", batch*5/2), batch * 5 / 2, false, "ns"},
	}
	if w.timeFormat == "unix_us" {
		list = append(list, shape{"precision us", batch, false, "us"})
	}
	return list
}

// shapeResult is what one shape cost.
type shapeResult struct {
	shape
	lines    int64
	requests int
	bytes    int64 // request bodies as sent
	took     time.Duration
	dbCPU    time.Duration // 0 when the database's process is not known
	failure  string
}

// runShapes writes the workload's line protocol to the sink once per shape, each
// into a fresh database over sinkConnections connections, and reports what each cost.
// Only a real CnosDB with CNOSDB_PID says what a shape costs the server: the dev
// server's cost model charges per request, line, field and tag alone.
func runShapes(ctx context.Context, s *sink, w workload, n int, dir string) ([]shapeResult, error) {
	lpPath := filepath.Join(dir, w.name+".lp")
	if err := writeLineProtocol(w, n, lpPath); err != nil {
		return nil, err
	}
	defer os.Remove(lpPath)
	var results []shapeResult
	for i, sh := range shapes(w) {
		say("%s: writing %d lines as %q", w.name, n, sh.name)
		db := fmt.Sprintf("bench_%s_shape_%d", w.name, i)
		res, err := writeShape(ctx, s, db, lpPath, sh)
		if err != nil {
			return results, fmt.Errorf("%s, %s: %w", w.name, sh.name, err)
		}
		results = append(results, res)
	}
	return results, nil
}

// writeShape writes the lines of lpPath into db in requests of shape sh.
func writeShape(ctx context.Context, s *sink, db, lpPath string, sh shape) (shapeResult, error) {
	res := shapeResult{shape: sh}
	drop, err := s.freshDatabase(ctx, db, true)
	if err != nil {
		return res, err
	}
	defer drop()
	bodies, err := shapeBodies(lpPath, sh)
	if err != nil {
		return res, err
	}
	endpoint := s.url + writePath + "?db=" + url.QueryEscape(db) + "&precision=" + sh.precision
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: sinkConnections, DisableCompression: true}}
	work := make(chan shapeBody)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	dbBefore := s.databaseCPU()
	start := time.Now()
	for range sinkConnections {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range work {
				if err := s.post(ctx, client, endpoint, b.body, sh.gzip); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					cancel()
					return
				}
			}
		}()
	}
feed:
	for _, b := range bodies {
		select {
		case work <- b:
			res.lines += int64(b.lines)
			res.requests++
			res.bytes += int64(len(b.body))
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	res.took = time.Since(start)
	if after := s.databaseCPU(); dbBefore > 0 && after > dbBefore {
		res.dbCPU = after - dbBefore
	}
	if firstErr != nil {
		res.failure = firstErr.Error()
	}
	return res, nil
}

// shapeBody is one request's body and the lines it holds.
type shapeBody struct {
	body  []byte
	lines int
}

// shapeBodies makes every request body beforehand, compression included, so that
// what is timed is CnosDB taking them.
func shapeBodies(lpPath string, sh shape) ([]shapeBody, error) {
	f, err := os.Open(lpPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 1<<20)
	var (
		bodies []shapeBody
		cur    bytes.Buffer
		lines  int
	)
	flush := func() error {
		if lines == 0 {
			return nil
		}
		body := bytes.Clone(cur.Bytes())
		if sh.gzip {
			var z bytes.Buffer
			zw := gzip.NewWriter(&z)
			if _, err := zw.Write(body); err != nil {
				return err
			}
			if err := zw.Close(); err != nil {
				return err
			}
			body = z.Bytes()
		}
		bodies = append(bodies, shapeBody{body, lines})
		cur.Reset()
		lines = 0
		return nil
	}
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, errors.New("a line longer than 1 MiB")
		}
		if len(line) > 0 {
			if sh.precision == "us" {
				if line, err = toMicroseconds(line); err != nil {
					return nil, err
				}
			}
			cur.Write(line)
			lines++
		}
		if lines == sh.lines || (errors.Is(err, io.EOF) && lines > 0) {
			if err := flush(); err != nil {
				return nil, err
			}
		}
		if errors.Is(err, io.EOF) {
			return bodies, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// toMicroseconds rewrites a line's nanosecond timestamp, which must be whole
// microseconds, in microseconds.
func toMicroseconds(line []byte) ([]byte, error) {
	trimmed := bytes.TrimRight(line, "\n")
	sp := bytes.LastIndexByte(trimmed, ' ')
	ts := trimmed[sp+1:]
	if sp < 0 || len(ts) <= 3 || !bytes.HasSuffix(ts, []byte("000")) {
		return nil, fmt.Errorf("the time of %q is not whole microseconds", trimmed)
	}
	out := append([]byte(nil), trimmed[:len(trimmed)-3]...)
	return append(out, '\n'), nil
}

// post writes one request body, gzipped or not, and wants 200 back.
func (s *sink) post(ctx context.Context, client *http.Client, endpoint string, body []byte, gzipped bool) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.SetBasicAuth(s.user, s.password)
	if gzipped {
		req.Header.Set("Content-Encoding", "gzip")
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("writing to the sink: %w", err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("writing to the sink: HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(answer)))
	}
	return nil
}

// shapesMarkdown is the table of what each shape cost, per workload.
func shapesMarkdown(sinkDesc string, n int, byWorkload map[string][]shapeResult, order []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# What the shape of a write costs CnosDB\n\n- sink: %s\n- %d lines per workload and shape, "+
		"%d requests in flight, bodies made beforehand; CPU is the database's own, from its pid (CNOSDB_PID)\n\n",
		sinkDesc, n, sinkConnections)
	b.WriteString("| workload | shape | lines per request | MiB sent | lines/s | requests/s | database CPU s per million lines | result |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|\n")
	for _, w := range order {
		for _, r := range byWorkload[w] {
			result := "ok"
			if r.failure != "" {
				result = "FAILED: " + r.failure
			}
			cpu := "–"
			if r.dbCPU > 0 && r.lines > 0 {
				cpu = fmt.Sprintf("%.2f", r.dbCPU.Seconds()*1e6/float64(r.lines))
			}
			secs := r.took.Seconds()
			fmt.Fprintf(&b, "| %s | %s | %d | %.1f | %.0f | %.1f | %s | %s |\n", w, r.name, r.shape.lines,
				float64(r.bytes)/(1<<20), float64(r.lines)/secs, float64(r.requests)/secs, cpu, result)
		}
	}
	return b.String()
}

// benchShapes is the -shapes mode: no Kafka and no Telegraf, the sink only.
func benchShapes(ctx context.Context, o options) error {
	s, err := openSink(ctx, o.sink, o.sinkCores)
	if err != nil {
		return err
	}
	defer s.close()
	outDir := filepath.Join(o.outRoot, time.Now().Format("20060102-150405"))
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", outDir, err)
	}
	work, err := os.MkdirTemp("", "bench-shapes-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	results := map[string][]shapeResult{}
	var order []string
	for _, w := range o.workloads {
		rs, err := runShapes(ctx, s, w, o.n, work)
		if err != nil {
			return err
		}
		results[w.name] = rs
		order = append(order, w.name)
	}
	md := shapesMarkdown(s.desc, o.n, results, order)
	fmt.Print("\n" + md)
	if err := os.WriteFile(filepath.Join(outDir, "shapes.md"), []byte(md), 0o644); err != nil {
		return fmt.Errorf("writing shapes.md: %w", err)
	}
	say("wrote %s", filepath.Join(outDir, "shapes.md"))
	return nil
}
