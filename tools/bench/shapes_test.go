package main

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestShapeBodies(t *testing.T) {
	path := filepath.Join(t.TempDir(), "wide.lp")
	require.NoError(t, writeLineProtocol(workloads["wide"], 5, path))
	lp, err := os.ReadFile(path)
	require.NoError(t, err)

	bodies, err := shapeBodies(path, shape{lines: 2, precision: "ns"})
	require.NoError(t, err)
	require.Len(t, bodies, 3)
	require.Equal(t, []int{2, 2, 1}, []int{bodies[0].lines, bodies[1].lines, bodies[2].lines})
	require.Equal(t, lp, bytes.Join([][]byte{bodies[0].body, bodies[1].body, bodies[2].body}, nil))

	zipped, err := shapeBodies(path, shape{lines: 5, gzip: true, precision: "ns"})
	require.NoError(t, err)
	require.Len(t, zipped, 1)
	zr, err := gzip.NewReader(bytes.NewReader(zipped[0].body))
	require.NoError(t, err)
	plain, err := io.ReadAll(zr)
	require.NoError(t, err)
	require.Equal(t, lp, plain)

	us, err := shapeBodies(path, shape{lines: 5, precision: "us"})
	require.NoError(t, err)
	// wideTimeBase is in microseconds: the first line ends with it.
	first, _, _ := bytes.Cut(us[0].body, []byte("\n"))
	require.True(t, bytes.HasSuffix(first, []byte(" 1767225600000000")), "%s", first)
}

func TestToMicrosecondsWantsWholeMicroseconds(t *testing.T) {
	got, err := toMicroseconds([]byte("m f=1 1767225600000001000\n"))
	require.NoError(t, err)
	require.Equal(t, "m f=1 1767225600000001\n", string(got))
	_, err = toMicroseconds([]byte("m f=1 1767225600000000001\n"))
	require.Error(t, err)
	_, err = toMicroseconds([]byte("m f=1\n"))
	require.Error(t, err)
}
