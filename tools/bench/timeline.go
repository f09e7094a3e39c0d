package main

import (
	"encoding/csv"
	"fmt"
	"os"
	"strconv"
	"time"
)

// rateWindow smooths the throughput curves: the rate at a sample is the count
// gained over the window before it.
const rateWindow = time.Second

// writeTimelines writes every sampled run's progress as CSV: one row per sample,
// with the rate over the second before it.
func writeTimelines(path string, runs []result) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	_ = w.Write([]string{"workload", "run", "round", "seconds", "counted", "messages_per_second"})
	for _, r := range runs {
		for i, s := range r.timeline {
			_ = w.Write([]string{r.workload, r.kind, strconv.Itoa(r.round),
				strconv.FormatFloat(s.at.Seconds(), 'f', 3, 64), strconv.FormatInt(s.counted, 10),
				strconv.FormatFloat(rateAt(r.timeline, i), 'f', 0, 64)})
		}
	}
	w.Flush()
	if err := w.Error(); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return f.Close()
}

// rateAt is the messages per second at sample i, over the last rateWindow or more
// (from the start of the run for the first samples).
func rateAt(tl []sample, i int) float64 {
	from := sample{}
	for k := i - 1; k >= 0; k-- {
		if tl[i].at-tl[k].at >= rateWindow {
			from = tl[k]
			break
		}
	}
	dt := (tl[i].at - from.at).Seconds()
	if dt <= 0 {
		return 0
	}
	return float64(tl[i].counted-from.counted) / dt
}
