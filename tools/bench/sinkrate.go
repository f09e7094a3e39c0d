package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// sinkConnections is how many requests the sink ceiling keeps in flight: a real
// CnosDB on a 2-core machine took 1.7 times one connection's lines over 2, and
// hardly more over 4 or 8.
const sinkConnections = 2

// runSinkCeiling posts the workload's pre-made line protocol to the sink, through the
// counting proxy as the pipelines do, in batches of telegraf-cnosdb's default
// metric_batch_size over sinkConnections connections as fast as it answers: the most
// any pipeline can deliver to it.
func runSinkCeiling(ctx context.Context, e *env, round int) (result, error) {
	res := newResult(e, runSink, round)
	db := fmt.Sprintf("bench_%s_sink_%d", e.workload.name, round)
	drop, err := e.sink.freshDatabase(ctx, db, true)
	if err != nil {
		return res, err
	}
	defer drop()
	f, err := os.Open(e.lpPath)
	if err != nil {
		return res, err
	}
	defer f.Close()

	ctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	batches := make(chan []byte, 2*sinkConnections)
	var (
		accepted atomic.Int64
		wg       sync.WaitGroup
		errMu    sync.Mutex
		firstErr error
	)
	fail := func(err error) {
		errMu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		errMu.Unlock()
		cancel()
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: sinkConnections}}
	endpoint := e.sink.url + writePath + "?db=" + url.QueryEscape(db)
	writesBefore, dbBefore := e.sink.writes.counts(), e.sink.databaseCPU()
	start := time.Now()
	for range sinkConnections {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for batch := range batches {
				if err := e.sink.write(ctx, client, endpoint, batch); err != nil {
					fail(err)
					return
				}
				accepted.Add(int64(bytes.Count(batch, []byte{'\n'})))
			}
		}()
	}
	readErr := splitBatches(ctx, f, batches)
	close(batches)
	wg.Wait()
	res.elapsed = time.Since(start)
	res.counted = accepted.Load()
	res.writes = e.sink.writes.counts().sub(writesBefore)
	if dbAfter := e.sink.databaseCPU(); dbBefore > 0 && dbAfter > dbBefore {
		res.dbCPU = dbAfter - dbBefore
	}
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		res.failure = fmt.Sprintf("timed out after %v", e.timeout)
	case firstErr != nil:
		res.failure = firstErr.Error()
	case readErr != nil:
		return res, fmt.Errorf("reading %s: %w", e.lpPath, readErr)
	case res.counted < int64(e.n):
		res.failure = fmt.Sprintf("accepted %d of %d lines", res.counted, e.n)
	}
	return res, nil
}

// splitBatches sends r's lines in batches of telegraf-cnosdb's metric_batch_size; the
// file is in the page cache by now, so this keeps well ahead of the sink.
func splitBatches(ctx context.Context, r io.Reader, out chan<- []byte) error {
	batchLines := writerBatchSize()
	br := bufio.NewReaderSize(r, 1<<20)
	var batch []byte
	lines := 0
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			return errors.New("a line longer than 1 MiB")
		}
		if len(line) > 0 {
			batch = append(batch, line...)
			lines++
		}
		if lines == batchLines || (errors.Is(err, io.EOF) && lines > 0) {
			select {
			case out <- batch:
			case <-ctx.Done():
				return ctx.Err()
			}
			batch, lines = nil, 0
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// write posts one batch of line protocol and wants 200 back.
func (s *sink) write(ctx context.Context, client *http.Client, endpoint string, batch []byte) error {
	return s.post(ctx, client, endpoint, batch, false)
}
