package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// replay is the input of the routing ceiling, run by Telegraf's execd input: it
// copies the pre-made line protocol in path to stdout as fast as Telegraf reads it,
// then waits for Telegraf to close stdin, since an execd input that exits is
// restarted and would send everything again.
func replay(path string, stdout io.Writer, stdin io.Reader) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	out := bufio.NewWriterSize(stdout, 1<<20)
	if _, err := io.Copy(out, f); err != nil {
		return fmt.Errorf("replaying %s: %w", path, err)
	}
	if err := out.Flush(); err != nil {
		return fmt.Errorf("replaying %s: %w", path, err)
	}
	_, err = io.Copy(io.Discard, stdin)
	return err
}

// discard is the output of the routing ceiling, run by Telegraf's execd output: it
// counts the lines on stdin and throws them away, writing the count to the progress
// file after every read (one pwrite per batch Telegraf sends) for the benchmark to poll.
func discard(progress string, stdin io.Reader) error {
	f, err := os.OpenFile(progress, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	var lines int64
	report := func() error {
		// Fixed width, so that a reader never sees the tail of a longer old number.
		_, err := f.WriteAt(fmt.Appendf(nil, "%020d\n", lines), 0)
		return err
	}
	buf := make([]byte, 1<<20)
	for {
		n, err := stdin.Read(buf)
		if n > 0 {
			lines += int64(bytes.Count(buf[:n], []byte{'\n'}))
			if werr := report(); werr != nil {
				return fmt.Errorf("writing %s: %w", progress, werr)
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// readProgress reads what discard wrote; 0 until it has started.
func readProgress(path string) (int64, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) || len(b) == 0 {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	return n, nil
}
