package main

import (
	"io"
	"os"
	"strings"
	"testing"
)

func TestPrintReportsShowsOnlyTheMarkedEntry(t *testing.T) {
	lines := []string{
		"=== RUN   TestX\n",
		"    x_test.go:3: noise\n",
		"    x_test.go:4: report: table\n",
		"        row 1\n",
		"        row 2\n",
		"    x_test.go:5: after\n",
		"        not part of the report\n",
		"--- PASS: TestX (0.00s)\n",
	}
	got := capture(t, func() { printReports(lines) })
	want := "    x_test.go:4: report: table\n        row 1\n        row 2\n"
	if got != want {
		t.Fatalf("printed %q, want %q", got, want)
	}
	if got := capture(t, func() { printReports(lines[:2]) }); got != "" {
		t.Fatalf("printed %q for a test without a report", got)
	}
}

// capture returns what f writes to stdout.
func capture(t *testing.T, f func()) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout := os.Stdout
	os.Stdout = w
	f()
	os.Stdout = stdout
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	if _, err := io.Copy(&sb, r); err != nil {
		t.Fatal(err)
	}
	return sb.String()
}
