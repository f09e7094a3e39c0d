package pluginconf

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/influxdata/telegraf/config"
	"github.com/stretchr/testify/require"
)

type sample struct {
	URLs    []string        `toml:"urls"`
	Timeout config.Duration `toml:"timeout"`
	Nested  struct {
		TTL string `toml:"ttl"`
	} `toml:"nested"`
}

func TestDecode(t *testing.T) {
	var s sample
	err := Decode(`
[[outputs.cnosdb]]
  urls = ["http://a:8902"]
  timeout = "3s"
  [outputs.cnosdb.nested]
    ttl = "30d"
`, "outputs", "cnosdb", &s)
	require.NoError(t, err)
	require.Equal(t, []string{"http://a:8902"}, s.URLs)
	require.Equal(t, config.Duration(3e9), s.Timeout)
	require.Equal(t, "30d", s.Nested.TTL)
}

func TestDecodeRefuses(t *testing.T) {
	tests := []struct {
		name, data, want string
	}{
		{"unknown key", "[[outputs.cnosdb]]\n  urls = []\n  url = \"x\"\n  nested.tll = \"1d\"\n",
			"[[outputs.cnosdb]]: unknown option(s) nested.tll, url"},
		{"wrong type", "[[outputs.cnosdb]]\n  urls = \"http://a\"\n", "[[outputs.cnosdb]]: toml: line 2 (last key \"outputs.cnosdb.urls\"): incompatible types"},
		{"bad duration", "[[outputs.cnosdb]]\n  timeout = \"soon\"\n", "timeout"},
		{"no table", "", "no [[outputs.cnosdb]] table"},
		{"other plugin", "[[outputs.http]]\n", "unknown plugin [[outputs.http]]"},
		{"other section", "[[inputs.cnosdb]]\n", "unexpected section \"inputs\""},
		{"two tables", "[[outputs.cnosdb]]\n[[outputs.cnosdb]]\n", "2 [[outputs.cnosdb]] tables"},
		{"syntax", "[[outputs.cnosdb]\n", "toml:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s sample
			err := Decode(tt.data, "outputs", "cnosdb", &s)
			require.ErrorContains(t, err, tt.want)
		})
	}
}

func TestLoadExpandsEnvironment(t *testing.T) {
	t.Setenv("CNOSDB_TEST_URL", `http://h:1/"quoted"`)
	path := filepath.Join(t.TempDir(), "c.conf")
	require.NoError(t, os.WriteFile(path, []byte("[[outputs.cnosdb]]\n  urls = [\"${CNOSDB_TEST_URL}\"]\n"), 0o600))
	var s sample
	require.NoError(t, Load(path, "outputs", "cnosdb", &s))
	require.Equal(t, []string{`http://h:1/"quoted"`}, s.URLs)

	require.ErrorContains(t, Load(filepath.Join(t.TempDir(), "missing.conf"), "outputs", "cnosdb", &s), "reading config")
}
