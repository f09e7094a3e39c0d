package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// versionFile returns the project's version: the VERSION file at the root, which the
// Makefile gives both binaries and the package.
func versionFile(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../VERSION")
	require.NoError(t, err)
	version := strings.TrimSpace(string(b))
	// A Debian version starts with a digit; this one is also a Go ldflags value.
	require.Regexp(t, regexp.MustCompile(`^[0-9][0-9A-Za-z.+~]*$`), version, "VERSION")
	return version
}

// TestMakeBuildPrintsTheVersionFile builds both binaries as make build does and checks
// that -version prints the VERSION file's version, the one make deb gives the package.
func TestMakeBuildPrintsTheVersionFile(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Fatal("make is missing: it runs every build of the project")
	}
	version := versionFile(t)
	bin := t.TempDir()
	build := exec.Command("make", "--no-print-directory", "-C", "../..", "build", "BIN="+bin)
	out, err := build.CombinedOutput()
	require.NoError(t, err, string(out))
	for _, name := range []string{"telegraf-cnosdb", "telegraf-kafka-consumer"} {
		got, err := exec.Command(filepath.Join(bin, name), "-version").Output()
		require.NoError(t, err, name)
		require.Equal(t, name+" "+version+"\n", string(got))
	}

	deb, err := exec.Command("make", "--no-print-directory", "-C", "../..", "-n", "deb", "BIN="+bin).Output()
	require.NoError(t, err)
	require.Contains(t, string(deb), "mkdeb -version "+version+" ", "make deb packages that version")
}
