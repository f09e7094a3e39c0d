package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/packaging/telegrafd"
)

const debName = "telegraf-kafka-cnosdb"

// TestDebInstallsRunsAndPurges builds the Debian package, installs it with dpkg, runs
// both binaries from /usr/bin, then removes and purges it. It changes the machine, so
// it runs as root only and can be skipped on purpose with SKIP_DEB_TEST=1.
func TestDebInstallsRunsAndPurges(t *testing.T) {
	if os.Getenv("SKIP_DEB_TEST") == "1" {
		t.Skip("SKIP_DEB_TEST=1: the package is not installed")
	}
	if _, err := exec.LookPath("dpkg"); err != nil {
		t.Fatal("dpkg is missing: the package test needs a Debian system (or set SKIP_DEB_TEST=1)")
	}
	if os.Geteuid() != 0 {
		t.Fatal("the package test installs with dpkg and needs root (or set SKIP_DEB_TEST=1)")
	}
	if out, err := exec.Command("dpkg-query", "-W", "-f=${Status}", debName).Output(); err == nil &&
		strings.Contains(string(out), "installed") && !strings.Contains(string(out), "not-installed") {
		t.Fatalf("%s is already installed here (%s); this test would remove it: purge it first or set SKIP_DEB_TEST=1", debName, out)
	}

	// The package takes its version from the VERSION file, as make deb does.
	version := versionFile(t)
	out := t.TempDir()
	mkdeb := exec.Command("go", "run", "./packaging/mkdeb", "-root", ".", "-bin", binDir, "-out", out)
	mkdeb.Dir = "../.."
	built, err := mkdeb.CombinedOutput()
	require.NoError(t, err, string(built))
	debs, err := filepath.Glob(filepath.Join(out, debName+"_"+version+"_amd64.deb"))
	require.NoError(t, err)
	require.Len(t, debs, 1, "dist name telegraf-kafka-cnosdb_<version>_amd64.deb")

	run := func(name string, args ...string) string {
		t.Helper()
		b, err := exec.Command(name, args...).CombinedOutput()
		require.NoError(t, err, "%s %v: %s", name, args, b)
		return string(b)
	}
	t.Cleanup(func() { _ = exec.Command("dpkg", "--purge", debName).Run() })

	run("dpkg", "-i", debs[0])
	require.Equal(t, version, run("dpkg-query", "-W", "-f=${Version}", debName))
	require.Contains(t, run("/usr/bin/telegraf-cnosdb", "-version"), "telegraf-cnosdb ")
	require.Contains(t, run("/usr/bin/telegraf-kafka-consumer", "-version"), "telegraf-kafka-consumer ")
	require.Contains(t, run("/usr/bin/telegraf-cnosdb", "-sample-config"), "[[outputs.cnosdb]]")
	conffiles := run("dpkg-query", "--control-show", debName, "conffiles")
	sample, err := os.ReadFile("../../sample.conf")
	require.NoError(t, err)
	examples, err := telegrafd.Files(sample)
	require.NoError(t, err)
	confs := []string{"/etc/telegraf/cnosdb.conf", "/etc/telegraf/kafka_consumer.conf"}
	for _, e := range examples {
		confs = append(confs, telegrafd.Dir+e.Name)
		got, err := os.ReadFile(telegrafd.Dir + e.Name)
		require.NoError(t, err)
		require.Equal(t, string(e.Content), string(got), "%s, for Telegraf %s", e.Name, e.Telegraf)
	}
	require.Contains(t, confs, "/etc/telegraf/telegraf.d/kafka-cnosdb-telegraf-1.27.conf.example")
	for _, f := range confs {
		require.Contains(t, conffiles, f)
		require.FileExists(t, f)
	}
	for _, f := range []string{"README.md", "copyright", "docs/delivery.md",
		"plugins/inputs/kafka_consumer/README.md", "plugins/outputs/cnosdb/README.md"} {
		require.FileExists(t, "/usr/share/doc/"+debName+"/"+f)
	}
	require.Contains(t, run("dpkg-query", "-W", "-f=${Recommends}", debName), "telegraf")

	// A configuration edited by the operator survives removal; purge takes it away.
	require.NoError(t, os.WriteFile("/etc/telegraf/cnosdb.conf", []byte("# edited\n"), 0o644))
	run("dpkg", "-r", debName)
	require.NoFileExists(t, "/usr/bin/telegraf-cnosdb")
	require.NoFileExists(t, "/usr/bin/telegraf-kafka-consumer")
	require.FileExists(t, "/etc/telegraf/cnosdb.conf")
	run("dpkg", "--purge", debName)
	require.NoFileExists(t, "/etc/telegraf/cnosdb.conf")
	for _, f := range confs {
		require.NoFileExists(t, f)
	}
}
