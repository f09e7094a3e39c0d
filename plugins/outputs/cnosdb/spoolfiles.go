package cnosdb

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// The write-ahead log (github.com/tidwall/wal) keeps entries in segment files named by
// the index of their first entry (20 digits), each entry framed as a uvarint length and
// the data. It refuses to open when the last entry of the last segment was cut short, and
// fails on reading a segment with a bad frame; the functions here find such damage first,
// so that the plugin can say where it is and keep every intact entry.

// segmentFile is one segment of the log.
type segmentFile struct {
	path  string
	first uint64 // index of its first entry
}

// listSegments returns the plain segment files of dir in order. Files the log is in the
// middle of renaming (.START, .END, .TEMP) are left to the log to clean up.
func listSegments(dir string) ([]segmentFile, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var segs []segmentFile
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || len(name) != 20 {
			continue
		}
		first, err := strconv.ParseUint(name, 10, 64)
		if err != nil || first == 0 {
			continue
		}
		segs = append(segs, segmentFile{path: filepath.Join(dir, name), first: first})
	}
	slices.SortFunc(segs, func(a, b segmentFile) int { return cmp.Compare(a.first, b.first) })
	return segs, nil
}

// hasPendingRename reports whether the log was stopped in the middle of truncating.
func hasPendingRename(dir string) bool {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".START") || strings.HasSuffix(e.Name(), ".END") {
			return true
		}
	}
	return false
}

// frameDamage says where a segment stops making sense.
type frameDamage struct {
	path    string
	offset  int64 // where the first bad frame starts
	size    int64 // the file's size
	entries int   // intact entries before it
}

func (d *frameDamage) Error() string {
	return fmt.Sprintf("%s: entry %d at offset %d is cut short or damaged (%d bytes from there to the end of the file)",
		d.path, d.entries+1, d.offset, d.size-d.offset)
}

// eachFrame calls fn with every entry of the segment, in order, and returns a
// *frameDamage for a frame that runs past the end of the file.
func eachFrame(seg segmentFile, fn func(index uint64, offset int64, data []byte) error) error {
	data, err := os.ReadFile(seg.path)
	if err != nil {
		return err
	}
	pos, n := 0, 0
	for pos < len(data) {
		size, w := binary.Uvarint(data[pos:])
		if w <= 0 || uint64(len(data)-pos-w) < size {
			return &frameDamage{path: seg.path, offset: int64(pos), size: int64(len(data)), entries: n}
		}
		if err := fn(seg.first+uint64(n), int64(pos), data[pos+w:pos+w+int(size)]); err != nil {
			return err
		}
		pos += w + int(size)
		n++
	}
	return nil
}

// cutTornTail shortens the last segment to its intact entries. A process killed while
// appending, or a machine that lost power, can leave a last entry cut short; everything
// before it was synced and is kept.
func cutTornTail(dir string) (*frameDamage, error) {
	if hasPendingRename(dir) {
		return nil, nil // the log finishes its truncation first; checked again after
	}
	segs, err := listSegments(dir)
	if err != nil || len(segs) == 0 {
		return nil, err
	}
	last := segs[len(segs)-1]
	err = eachFrame(last, func(uint64, int64, []byte) error { return nil })
	var damage *frameDamage
	if !errors.As(err, &damage) {
		return nil, err
	}
	if err := os.Truncate(last.path, damage.offset); err != nil {
		return nil, fmt.Errorf("cutting %s to its intact entries: %w", last.path, err)
	}
	return damage, nil
}

// locate names the file and offset of the entry at index, for messages.
func locate(dir string, index uint64) string {
	segs, err := listSegments(dir)
	if err != nil {
		return dir
	}
	for i := len(segs) - 1; i >= 0; i-- {
		if segs[i].first > index {
			continue
		}
		where := segs[i].path
		_ = eachFrame(segs[i], func(at uint64, offset int64, _ []byte) error {
			if at == index {
				where = fmt.Sprintf("%s, offset %d", segs[i].path, offset)
				return errors.New("found")
			}
			return nil
		})
		return where
	}
	return dir
}

// spoolLock keeps a second process off the same spool_dir. The lock goes with the
// process, even when it is killed.
type spoolLock struct{ f *os.File }

func lockSpool(dir string) (*spoolLock, error) {
	path := filepath.Join(dir, "lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("spool_dir: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		holder, _ := os.ReadFile(path)
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("spool_dir: %q is in use by another process (pid %s); give every telegraf-cnosdb its own spool_dir",
				dir, strings.TrimSpace(string(holder)))
		}
		return nil, fmt.Errorf("spool_dir: locking %s: %w", path, err)
	}
	// The pid is for the message above only; the lock itself is what counts.
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &spoolLock{f: f}, nil
}

func (l *spoolLock) release() {
	_ = unix.Flock(int(l.f.Fd()), unix.LOCK_UN)
	l.f.Close()
}
