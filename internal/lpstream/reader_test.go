package lpstream

import (
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func readAll(t *testing.T, input string, limit int) (entries []string, lines []int64, errs []error) {
	t.Helper()
	r := NewReader(strings.NewReader(input), limit)
	for {
		e, err := r.Next()
		if errors.Is(err, io.EOF) {
			return entries, lines, errs
		}
		if err != nil {
			var tooLong *TooLongError
			require.ErrorAs(t, err, &tooLong)
			errs = append(errs, err)
			continue
		}
		entries = append(entries, string(e))
		lines = append(lines, r.Line())
	}
}

func TestReaderSplitsEntries(t *testing.T) {
	tests := []struct {
		name    string
		input   string
		entries []string
		lines   []int64
	}{
		{
			name:    "plain lines",
			input:   "a x=1 1\nb x=2 2\n",
			entries: []string{"a x=1 1", "b x=2 2"},
			lines:   []int64{1, 2},
		},
		{
			name:    "last line without newline",
			input:   "a x=1 1\nb x=2 2",
			entries: []string{"a x=1 1", "b x=2 2"},
			lines:   []int64{1, 2},
		},
		{
			name:    "CRLF",
			input:   "a x=1 1\r\nb x=2 2\r\n",
			entries: []string{"a x=1 1", "b x=2 2"},
			lines:   []int64{1, 2},
		},
		{
			name:    "newline inside a string field",
			input:   "a s=\"one\ntwo\",x=1 1\nb x=2 2\n",
			entries: []string{"a s=\"one\ntwo\",x=1 1", "b x=2 2"},
			lines:   []int64{1, 3},
		},
		{
			name:    "escaped quote and newline inside a string field",
			input:   "a s=\"say \\\"hi\\\"\nbye\" 1\nb x=2 2\n",
			entries: []string{"a s=\"say \\\"hi\\\"\nbye\" 1", "b x=2 2"},
			lines:   []int64{1, 3},
		},
		{
			name:    "quotes in measurement and tags are data",
			input:   "a\"b,t=\"x x=1 1\nc,t=y\" y=\"z\" 2\n",
			entries: []string{"a\"b,t=\"x x=1 1", "c,t=y\" y=\"z\" 2"},
			lines:   []int64{1, 2},
		},
		{
			name:    "quote in a field key is data",
			input:   "a k\"=1 1\nb x=2 2\n",
			entries: []string{"a k\"=1 1", "b x=2 2"},
			lines:   []int64{1, 2},
		},
		{
			name:    "escaped space in tags before a string field",
			input:   "a,t=x\\ y s=\"1\n2\" 1\n",
			entries: []string{"a,t=x\\ y s=\"1\n2\" 1"},
			lines:   []int64{1},
		},
		{
			name:    "blank lines and comments are passed on",
			input:   "\n# c\na x=1\n",
			entries: []string{"", "# c", "a x=1"},
			lines:   []int64{1, 2, 3},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			entries, lines, errs := readAll(t, tt.input, 1024)
			require.Empty(t, errs)
			require.Equal(t, tt.entries, entries)
			require.Equal(t, tt.lines, lines)
		})
	}
}

func TestReaderTakesEntriesLongerThanItsBuffer(t *testing.T) {
	// 1 MiB, four times bufio's buffer here and sixteen times bufio.Scanner's limit.
	long := "m,t=" + strings.Repeat("v", 1<<20) + " x=1 1"
	entries, _, errs := readAll(t, "a x=1 1\n"+long+"\nb x=2 2\n", 2<<20)
	require.Empty(t, errs)
	require.Equal(t, []string{"a x=1 1", long, "b x=2 2"}, entries)
}

func TestReaderSkipsTooLongEntries(t *testing.T) {
	long := "m,t=" + strings.Repeat("v", 5000) + " x=1 1"
	entries, lines, errs := readAll(t, "a x=1 1\n"+long+"\nb x=2 2\n"+long, 1000)
	require.Equal(t, []string{"a x=1 1", "b x=2 2"}, entries)
	require.Equal(t, []int64{1, 3}, lines)
	require.Len(t, errs, 2)
	require.Contains(t, errs[0].Error(), "line 2: entry of 5011 bytes exceeds the limit of 1000 bytes")
	require.Contains(t, errs[1].Error(), "line 4:")
}

func TestOpenString(t *testing.T) {
	require.False(t, openString([]byte(`a x=1`)))
	require.True(t, openString([]byte(`a s="abc`)))
	require.True(t, openString([]byte(`a x=1,s="abc`)))
	require.False(t, openString([]byte(`a s="abc" 1`)))
	require.True(t, openString([]byte(`a s="ab\"c`)))
	require.False(t, openString([]byte(`a s="ab\\" 1`)))
	require.False(t, openString([]byte(`a,t="x y=1`)))
}
