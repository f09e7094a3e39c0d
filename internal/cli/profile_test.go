package cli

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/influxdata/telegraf/testutil"
	"github.com/stretchr/testify/require"
)

func TestStartProfilingWritesBothProfiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "profiles")
	f := Flags{ProfileDir: dir}
	stop := f.StartProfiling("cmd", testutil.Logger{})
	stop()
	for _, kind := range []string{"cpu", "allocs"} {
		matches, err := filepath.Glob(filepath.Join(dir, "cmd-*."+kind+".pprof"))
		require.NoError(t, err)
		require.Len(t, matches, 1, kind)
		info, err := os.Stat(matches[0])
		require.NoError(t, err)
		require.Positive(t, info.Size(), "%s profile is empty", kind)
	}
}
