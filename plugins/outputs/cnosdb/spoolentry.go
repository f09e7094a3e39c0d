package cnosdb

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"time"
)

// A spooled batch is one entry of the write-ahead log:
//
//	version    1 byte (1)
//	checksum   4 bytes, CRC-32C of everything after it, little endian
//	spooled at 8 bytes, Unix nanoseconds, little endian
//	lines      uvarint
//	per line   uvarint length (with its newline), varint source minus the previous source
//	lines      the batch's bytes, as sent to CnosDB
//
// The log frames entries by length only; the checksum tells a damaged entry from an
// intact one, and the line table keeps what a rejected line's message needs.

const (
	entryVersion    = 1
	entryHeaderSize = 1 + 4 + 8
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// encodeEntry appends b as a spool entry to dst.
func encodeEntry(dst []byte, b *batch, at time.Time) []byte {
	start := len(dst)
	dst = append(dst, entryVersion, 0, 0, 0, 0)
	dst = binary.LittleEndian.AppendUint64(dst, uint64(at.UnixNano()))
	dst = binary.AppendUvarint(dst, uint64(b.len()))
	prevSource := int64(0)
	for i := range b.starts {
		end := len(b.buf)
		if i+1 < len(b.starts) {
			end = b.starts[i+1]
		}
		dst = binary.AppendUvarint(dst, uint64(end-b.starts[i]))
		dst = binary.AppendVarint(dst, b.sources[i]-prevSource)
		prevSource = b.sources[i]
	}
	dst = append(dst, b.buf...)
	binary.LittleEndian.PutUint32(dst[start+1:], crc32.Checksum(dst[start+5:], castagnoli))
	return dst
}

// entryInfo is what the header of an entry says, read without checking the checksum.
type entryInfo struct {
	lines int
	at    time.Time
}

func readEntryInfo(data []byte) (entryInfo, error) {
	if len(data) < entryHeaderSize || data[0] != entryVersion {
		return entryInfo{}, fmt.Errorf("no version %d header", entryVersion)
	}
	at := time.Unix(0, int64(binary.LittleEndian.Uint64(data[5:])))
	lines, n := binary.Uvarint(data[entryHeaderSize:])
	if n <= 0 || lines > uint64(len(data)) {
		return entryInfo{}, errors.New("bad line count")
	}
	return entryInfo{lines: int(lines), at: at}, nil
}

// decodeEntry checks data and turns it back into b, whose buf then shares data's memory.
func decodeEntry(data []byte, b *batch) (entryInfo, error) {
	info, err := readEntryInfo(data)
	if err != nil {
		return info, err
	}
	if got, want := crc32.Checksum(data[5:], castagnoli), binary.LittleEndian.Uint32(data[1:]); got != want {
		return info, fmt.Errorf("checksum %08x, expected %08x", got, want)
	}
	rest := data[entryHeaderSize:]
	_, n := binary.Uvarint(rest)
	rest = rest[n:]
	b.reset()
	offset, source := 0, int64(0)
	for range info.lines {
		length, n := binary.Uvarint(rest)
		if n <= 0 {
			return info, errors.New("bad line table")
		}
		rest = rest[n:]
		delta, n := binary.Varint(rest)
		if n <= 0 {
			return info, errors.New("bad line table")
		}
		rest = rest[n:]
		source += delta
		b.starts = append(b.starts, offset)
		b.sources = append(b.sources, source)
		offset += int(length)
	}
	if offset != len(rest) {
		return info, fmt.Errorf("lines add up to %d bytes, the entry holds %d", offset, len(rest))
	}
	b.buf = rest
	return info, nil
}
