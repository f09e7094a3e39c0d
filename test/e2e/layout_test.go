package e2e

import (
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const module = "github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb"

// Top-level folders of the module, as docs/development.md's layout map has them.
var (
	shippedFolders = []string{"cmd", "plugins", "internal"}
	rigFolders     = []string{"testutil", "dev", "test", "tools", "packaging"}
)

// goList runs go list at the module root with args.
func goList(t *testing.T, args ...string) []string {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list"}, args...)...)
	cmd.Dir = "../.."
	out, err := cmd.Output()
	require.NoError(t, err, "go list %s", strings.Join(args, " "))
	return strings.Fields(string(out))
}

// topFolder is the first folder of a package of the module below its root.
func topFolder(pkg string) string {
	rel := strings.TrimPrefix(pkg, module+"/")
	folder, _, _ := strings.Cut(rel, "/")
	return folder
}

// TestShippedCodeImportsNoRig keeps what ships apart from what tests, measures and
// packages it: the binaries' dependencies, test files left out, are all in the
// shipped folders.
func TestShippedCodeImportsNoRig(t *testing.T) {
	deps := goList(t, "-deps", "-f", "{{.ImportPath}}", "./cmd/...")
	shipped := 0
	for _, dep := range deps {
		if !strings.HasPrefix(dep, module+"/") {
			continue
		}
		shipped++
		require.Contains(t, shippedFolders, topFolder(dep), "the binaries depend on %s, which is not in a shipped folder", dep)
	}
	require.Greater(t, shipped, 5, "go list found the binaries' packages")
}

// TestEveryPackageHasAPlaceInTheLayout makes a new top-level folder a decision that
// docs/development.md's layout map records.
func TestEveryPackageHasAPlaceInTheLayout(t *testing.T) {
	for _, pkg := range goList(t, "./...") {
		folder := topFolder(pkg)
		require.True(t, slices.Contains(shippedFolders, folder) || slices.Contains(rigFolders, folder),
			"%s is in %q, which the layout map in docs/development.md does not have", pkg, folder)
	}
}
