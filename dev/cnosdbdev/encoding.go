package cnosdbdev

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// maxDecodedBytes bounds a decompressed body. CnosDB has no such bound;
// the emulator has one so that a malformed test body cannot exhaust the
// machine's memory.
const maxDecodedBytes = 1 << 30

var errDecodedTooLarge = errors.New("decompressed body larger than 1 GiB")

var (
	zstdDecoderOnce sync.Once
	zstdDecoder     *zstd.Decoder
	zstdDecoderErr  error
)

func sharedZstdDecoder() (*zstd.Decoder, error) {
	zstdDecoderOnce.Do(func() {
		zstdDecoder, zstdDecoderErr = zstd.NewReader(nil,
			zstd.WithDecoderConcurrency(0),
			zstd.WithDecoderMaxMemory(maxDecodedBytes))
	})
	return zstdDecoder, zstdDecoderErr
}

// decodeBody undoes a Content-Encoding the way CnosDB's Encoding::decode
// does: "deflate" is a raw deflate stream (flate2's DeflateDecoder, no
// zlib header), "snappy" the snappy framing format, "lz4" the LZ4 frame
// format. The returned reason imitates the Rust libraries' messages.
func decodeBody(encoding string, body []byte) ([]byte, string) {
	var r io.Reader
	switch encoding {
	case "identity":
		return body, ""
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			return nil, "invalid gzip header"
		}
		zr.Multistream(false)
		r = zr
	case "deflate":
		r = flate.NewReader(bytes.NewReader(body))
	case "br":
		r = brotli.NewReader(bytes.NewReader(body))
	case "zstd":
		dec, err := sharedZstdDecoder()
		if err != nil {
			return nil, err.Error()
		}
		out, err := dec.DecodeAll(body, nil)
		if err != nil {
			return nil, "Unknown frame descriptor"
		}
		return out, ""
	case "snappy":
		r = snappy.NewReader(bytes.NewReader(body))
	case "lz4":
		r = lz4.NewReader(bytes.NewReader(body))
	default:
		return nil, "content encoding not support: " + encoding
	}
	out, err := readAllLimited(r, len(body)*4)
	if err != nil {
		switch {
		case errors.Is(err, errDecodedTooLarge):
			return nil, err.Error()
		case encoding == "gzip" || encoding == "deflate":
			return nil, "corrupt deflate stream"
		case encoding == "br":
			return nil, "Invalid Data"
		case encoding == "snappy":
			return nil, "snappy: corrupt input"
		case encoding == "lz4":
			return nil, "WrongMagicNumber"
		}
		return nil, err.Error()
	}
	return out, ""
}

func readAllLimited(r io.Reader, sizeHint int) ([]byte, error) {
	sizeHint = min(max(sizeHint, 512), 64<<20)
	var buf bytes.Buffer
	buf.Grow(sizeHint)
	n, err := buf.ReadFrom(io.LimitReader(r, maxDecodedBytes+1))
	if err != nil {
		return nil, err
	}
	if n > maxDecodedBytes {
		return nil, errDecodedTooLarge
	}
	return buf.Bytes(), nil
}

// encodeBody compresses an SQL answer for the Accept-Encoding CnosDB chose.
func encodeBody(encoding string, body []byte) ([]byte, error) {
	var buf bytes.Buffer
	var w io.WriteCloser
	switch encoding {
	case "identity":
		return body, nil
	case "gzip":
		w = gzip.NewWriter(&buf)
	case "deflate":
		fw, err := flate.NewWriter(&buf, flate.DefaultCompression)
		if err != nil {
			return nil, fmt.Errorf("deflate writer: %w", err)
		}
		w = fw
	case "br":
		w = brotli.NewWriter(&buf)
	case "zstd":
		zw, err := zstd.NewWriter(&buf, zstd.WithEncoderConcurrency(1))
		if err != nil {
			return nil, fmt.Errorf("zstd writer: %w", err)
		}
		w = zw
	case "snappy":
		w = snappy.NewBufferedWriter(&buf)
	case "lz4":
		w = lz4.NewWriter(&buf)
	default:
		return nil, fmt.Errorf("unknown encoding %q", encoding)
	}
	if _, err := w.Write(body); err != nil {
		return nil, fmt.Errorf("%s: %w", encoding, err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("%s: %w", encoding, err)
	}
	return buf.Bytes(), nil
}
