package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/internal/cli"
)

// profileSlice is how long each of Telegraf's CPU profiles lasts. Telegraf serves a
// profile of a given length only, and a run's length is not known beforehand, so
// the profile is taken in slices until the run ends: go tool pprof merges the files
// it is given. The last slice, cut short by the end of the run, is lost.
const profileSlice = 2 * time.Second

// profiling prepares the CPU profiles of a run: Telegraf's, taken through its
// --pprof-addr in slices, and the plugins', which write theirs into dir when they
// exit (cli.ProfileEnv, inherited through execd). args and environ go to Telegraf's
// command; start begins the slices once Telegraf runs and returns the function
// that ends them.
func profiling(dir string) (args, environ []string, start func() (stop func()), err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, nil, fmt.Errorf("creating %s: %w", dir, err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, nil, fmt.Errorf("finding a port for Telegraf's pprof: %w", err)
	}
	addr := l.Addr().String()
	l.Close()
	start = func() func() {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			for i := 0; ctx.Err() == nil; i++ {
				path := filepath.Join(dir, fmt.Sprintf("telegraf-%03d.cpu.pprof", i))
				if err := fetchProfile(ctx, addr, path); err != nil && ctx.Err() == nil {
					// Telegraf may not listen yet.
					time.Sleep(100 * time.Millisecond)
				}
			}
		}()
		return func() { cancel(); <-done }
	}
	return []string{"--pprof-addr", addr}, []string{cli.ProfileEnv + "=" + dir}, start, nil
}

// fetchProfile writes one slice of Telegraf's CPU profile to path.
func fetchProfile(ctx context.Context, addr, path string) error {
	url := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", addr, int(profileSlice.Seconds()))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	return os.WriteFile(path, body, 0o644)
}
