package main

import (
	"fmt"
	"io"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/dev/cnosdbdev"
	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/testutil/cnosdbtest"
)

// TestGarbageOnStdin feeds good lines interleaved with garbage, a 1 MiB line and a
// line over max_line_size: every good line is stored, the 1 MiB line whole, and each
// bad entry is reported once, with its stdin line number, and counted.
func TestGarbageOnStdin(t *testing.T) {
	target := cnosdbtest.Start(t, cnosdbdev.Options{})
	db := target.NewDatabase(t, "")
	conf := writeConfig(t, fmt.Sprintf(`[[outputs.cnosdb]]
  urls = [%q]
  database = %q
  username = %q
  password = %q
  max_line_size = "2MiB"
`, target.URL, db, target.User, target.Password))

	big := strings.Repeat("v", 1<<20)
	bad := map[int]string{ // stdin line -> entry
		3:  "this is not line protocol",
		5:  "\x00\x01\x02\xff\xfe\xfd",
		7:  `{"json": "is not line protocol"}`,
		9:  "=== ### ,,, ===",
		11: "stdin,host=h x=1 notatime",
		13: "stdin,host=h x=\"" + strings.Repeat("w", 3<<20) + "\" 13", // over max_line_size
		15: "stdin,host=h x=1,y 15",
		17: `quoted x="never closed`, // takes the next line into its string
	}
	var in strings.Builder
	good := 0
	for line := 1; line <= 20; line++ {
		switch {
		case bad[line] != "":
			in.WriteString(bad[line])
		case line == 10:
			fmt.Fprintf(&in, "stdin_big,host=h s=%q %d", big, line)
		default:
			fmt.Fprintf(&in, "stdin,host=h x=%di %d", line, line)
			good++
		}
		in.WriteByte('\n')
	}

	p := startProcess(t, conf)
	_, err := io.WriteString(p.stdin, in.String())
	require.NoError(t, err)
	out := p.finish(t)

	require.Equal(t, good, target.Count(t, db, "stdin"), "every good line, the one after the open quote too")
	rows := target.Rows(t, db, "stdin_big")
	require.Len(t, rows, 1)
	require.Equal(t, big, rows[0]["s"])
	for line, entry := range bad {
		re := regexp.MustCompile(fmt.Sprintf(`(?m)^E! \[outputs\.cnosdb\] stdin: line %d: .*$`, line))
		require.Len(t, re.FindAllString(out, -1), 1, "line %d (%.40q) is reported once", line, entry)
	}
	require.Contains(t, out, "stdin: line 13: entry of 3145749 bytes exceeds the limit of 2097152 bytes, skipped")
	require.Contains(t, out, fmt.Sprintf("I! [outputs.cnosdb] totals: %d lines written", good+1))
	require.Contains(t, out, fmt.Sprintf("0 rejected lines, %d malformed inputs", len(bad)))
	require.NotContains(t, out, big[:100], "a long line is not copied into the log")
}
