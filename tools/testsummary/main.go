// Command testsummary reads `go test -json` on stdin, prints each package's result and
// the output of every failed test as it comes, and ends with one line that counts
// passed, failed and skipped tests, naming the skipped ones so none goes unnoticed.
// It exits non-zero when a test or a package failed.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
)

type event struct {
	Action  string
	Package string
	Test    string
	Output  string
	Elapsed float64
}

func main() {
	var passed, failed, skipped int
	var skippedNames, failedNames []string
	pkgFailed := false
	output := map[string][]string{} // test output kept until the test ends
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1024*1024), 64*1024*1024)
	for in.Scan() {
		line := in.Bytes()
		var e event
		if err := json.Unmarshal(line, &e); err != nil {
			// Build errors and other non-JSON lines are printed as they are.
			fmt.Println(string(line))
			continue
		}
		key := e.Package + " " + e.Test
		switch e.Action {
		case "output":
			if e.Test == "" {
				if strings.HasPrefix(e.Output, "FAIL") || strings.HasPrefix(e.Output, "panic:") || strings.Contains(e.Output, "[build failed]") {
					fmt.Print(e.Output)
				}
				output[key] = append(output[key], e.Output)
				continue
			}
			output[key] = append(output[key], e.Output)
		case "pass":
			if e.Test != "" {
				passed++
				printReports(output[key])
			} else {
				fmt.Printf("ok   %s (%.1fs)\n", e.Package, e.Elapsed)
			}
			delete(output, key)
		case "skip":
			if e.Test != "" {
				skipped++
				skippedNames = append(skippedNames, e.Package+"."+e.Test+": "+skipReason(output[key]))
			} else {
				fmt.Printf("---  %s (no tests)\n", e.Package)
			}
			delete(output, key)
		case "fail":
			if e.Test != "" {
				failed++
				failedNames = append(failedNames, e.Package+"."+e.Test)
			} else {
				pkgFailed = true
				fmt.Printf("FAIL %s (%.1fs)\n", e.Package, e.Elapsed)
			}
			fmt.Print(strings.Join(output[key], ""))
			delete(output, key)
		}
	}
	if err := in.Err(); err != nil {
		fmt.Fprintln(os.Stderr, "reading go test output:", err)
		pkgFailed = true
	}
	sort.Strings(skippedNames)
	for _, s := range skippedNames {
		fmt.Println("skipped:", s)
	}
	for _, f := range failedNames {
		fmt.Println("failed:", f)
	}
	fmt.Printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped)
	if failed > 0 || pkgFailed {
		os.Exit(1)
	}
}

// reportMark starts a test log entry that the summary shows although the test passed:
// t.Log("report: TITLE\n...") for figures a run should leave in the CI log.
const reportMark = "report: "

// printReports prints the report entries of a passing test's output: the marked line
// and its continuation lines, which go test indents by eight spaces.
func printReports(lines []string) {
	in := false
	for _, l := range lines {
		switch {
		case strings.Contains(l, reportMark):
			in = true
		case in && strings.HasPrefix(l, "        "):
		default:
			in = false
		}
		if in {
			fmt.Print(l)
		}
	}
}

// skipReason returns the message given to t.Skip.
func skipReason(lines []string) string {
	for i := len(lines) - 1; i >= 0; i-- {
		l := strings.TrimSpace(lines[i])
		if l != "" && !strings.HasPrefix(l, "---") && !strings.HasPrefix(l, "===") {
			return l
		}
	}
	return "(no reason given)"
}
