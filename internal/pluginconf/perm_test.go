package pluginconf

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestExposedSecretWarning(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.conf")
	require.NoError(t, os.WriteFile(path, []byte("x"), 0o644))
	require.NoError(t, os.Chmod(path, 0o644))
	require.Contains(t, ExposedSecretWarning(path, true), "holds a password and every user of this machine may read it (mode -rw-r--r--)")
	require.Empty(t, ExposedSecretWarning(path, false), "no secret, nothing to warn about")
	require.NoError(t, os.Chmod(path, 0o640))
	require.Empty(t, ExposedSecretWarning(path, true))
	require.Empty(t, ExposedSecretWarning("", true))
}
