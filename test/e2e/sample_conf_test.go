package e2e

import (
	"os"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
	"github.com/stretchr/testify/require"
)

// TestRootSampleConf checks that the telegraf.conf part at the root is valid TOML
// that runs both binaries through execd, with every setting explained by a comment.
func TestRootSampleConf(t *testing.T) {
	raw, err := os.ReadFile("../../sample.conf")
	require.NoError(t, err)
	var conf struct {
		Agent   map[string]interface{}
		Inputs  map[string][]map[string]interface{}
		Outputs map[string][]map[string]interface{}
	}
	md, err := toml.Decode(string(raw), &conf)
	require.NoError(t, err)
	require.Empty(t, md.Undecoded())
	require.Len(t, conf.Inputs["execd"], 1)
	require.Len(t, conf.Outputs["execd"], 1)
	require.Equal(t, "/usr/bin/telegraf-kafka-consumer", conf.Inputs["execd"][0]["command"].([]interface{})[0])
	require.Equal(t, "/usr/bin/telegraf-cnosdb", conf.Outputs["execd"][0]["command"].([]interface{})[0])

	lines := strings.Split(string(raw), "\n")
	for i, line := range lines {
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") || strings.HasPrefix(trimmed, "[") {
			continue
		}
		require.True(t, i > 0 && strings.HasPrefix(strings.TrimSpace(lines[i-1]), "#"),
			"setting %q on line %d has no comment above it", trimmed, i+1)
	}
}
