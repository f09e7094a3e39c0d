// Package lpstream splits a stream of InfluxDB line protocol, as Telegraf's execd
// output writes it, into entries.
//
// A newline ends an entry except inside a quoted string field value, where Telegraf
// writes newlines as they are; a line-by-line scanner would cut such an entry in two.
// Entries may be of any length up to a configured bound, unlike bufio.Scanner's 64 KiB.
package lpstream

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// TooLongError reports an entry that exceeded the bound; it was skipped whole.
type TooLongError struct {
	Line  int64 // first input line of the entry, counted from 1
	Size  int64 // bytes read before the entry ended
	Limit int
}

func (e *TooLongError) Error() string {
	return fmt.Sprintf("line %d: entry of %d bytes exceeds the limit of %d bytes, skipped", e.Line, e.Size, e.Limit)
}

// Reader returns one entry at a time.
type Reader struct {
	in    *bufio.Reader
	limit int
	buf   []byte
	line  int64 // input line at which the last returned entry started
	next  int64 // input line of the next byte to read
}

// NewReader reads entries from r; an entry longer than limit bytes is skipped with a
// *TooLongError.
func NewReader(r io.Reader, limit int) *Reader {
	return &Reader{in: bufio.NewReaderSize(r, 256*1024), limit: limit, next: 1}
}

// Line returns the input line, counted from 1, at which the last entry started.
func (r *Reader) Line() int64 { return r.line }

// Next returns the next entry without its line ending. The slice is valid until the
// next call. Blank lines and comments are returned too: the parser skips them. At the
// end of the input it returns io.EOF.
func (r *Reader) Next() ([]byte, error) {
	r.buf = r.buf[:0]
	r.line = r.next
	var size int64
	skipping := false
	for {
		chunk, err := r.in.ReadSlice('\n')
		size += int64(len(chunk))
		complete := err == nil
		if complete {
			r.next++
		}
		if !skipping && size > int64(r.limit)+2 {
			skipping = true
			r.buf = r.buf[:0]
		}
		if !skipping {
			// Common case: a whole entry inside the reader's buffer, returned without a copy.
			if complete && len(r.buf) == 0 && !openString(chunk) {
				return trimEOL(chunk), nil
			}
			r.buf = append(r.buf, chunk...)
		}
		switch {
		case complete:
			if skipping {
				// The content is gone, so a newline inside a string cannot be told from
				// the end of the entry; the rest of such an entry fails to parse on its own.
				return nil, &TooLongError{Line: r.line, Size: size, Limit: r.limit}
			}
			if !openString(r.buf) {
				return trimEOL(r.buf), nil
			}
		case errors.Is(err, bufio.ErrBufferFull):
		case errors.Is(err, io.EOF):
			if skipping {
				return nil, &TooLongError{Line: r.line, Size: size, Limit: r.limit}
			}
			if len(r.buf) > 0 {
				return trimEOL(r.buf), nil
			}
			return nil, io.EOF
		default:
			return nil, err
		}
	}
}

func trimEOL(b []byte) []byte {
	b = bytes.TrimSuffix(b, []byte{'\n'})
	return bytes.TrimSuffix(b, []byte{'\r'})
}

// openString reports whether entry ends inside a quoted string field value, which means
// the newline that ended it belongs to the value.
func openString(entry []byte) bool {
	if bytes.IndexByte(entry, '"') < 0 {
		return false
	}
	n := len(entry)
	i := 0
	// Measurement and tags end at the first unescaped space; quotes there are data.
	for ; i < n; i++ {
		if entry[i] == '\\' {
			i++
			continue
		}
		if entry[i] == ' ' {
			break
		}
	}
	i++
	for i < n {
		// Field key, up to '='. A space here means the fields ended.
		for ; i < n; i++ {
			if entry[i] == '\\' {
				i++
				continue
			}
			if entry[i] == '=' {
				break
			}
			if entry[i] == ' ' || entry[i] == '\n' {
				return false
			}
		}
		i++
		if i < n && entry[i] == '"' {
			i++
			closed := false
			for ; i < n; i++ {
				if entry[i] == '\\' {
					i++
					continue
				}
				if entry[i] == '"' {
					closed = true
					i++
					break
				}
			}
			if !closed {
				return true
			}
		} else {
			for i < n && entry[i] != ',' && entry[i] != ' ' && entry[i] != '\n' {
				i++
			}
		}
		if i >= n || entry[i] != ',' {
			return false
		}
		i++
	}
	return false
}

// Entries calls yield with each entry of b, split as Reader splits a stream, until
// yield returns false.
func Entries(b []byte, yield func(entry []byte) bool) {
	for len(b) > 0 {
		end := 0
		for {
			i := bytes.IndexByte(b[end:], '\n')
			if i < 0 {
				end = len(b)
				break
			}
			end += i + 1
			if !openString(b[:end]) {
				break
			}
		}
		if !yield(trimEOL(b[:end])) {
			return
		}
		b = b[end:]
	}
}
