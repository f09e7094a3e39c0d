package telegrafd

import (
	"os"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
	"github.com/stretchr/testify/require"
)

func TestFilesFromRootSampleConf(t *testing.T) {
	sample, err := os.ReadFile("../../sample.conf")
	require.NoError(t, err)
	files, err := Files(sample)
	require.NoError(t, err)
	require.Len(t, files, 2)

	latest, err := For(files, "v1.37.2")
	require.NoError(t, err)
	require.Equal(t, "kafka-cnosdb.conf.example", latest.Name)
	require.Equal(t, string(sample), string(latest.Content), "the file for 1.28 and later is sample.conf as it is")

	old, err := For(files, "v1.27.1")
	require.NoError(t, err)
	require.Equal(t, "kafka-cnosdb-telegraf-1.27.conf.example", old.Name)
	var conf struct {
		Outputs map[string][]map[string]interface{}
	}
	_, err = toml.Decode(string(old.Content), &conf)
	require.NoError(t, err)
	require.NotContains(t, conf.Outputs["execd"][0], "use_batch_format")
	require.NotContains(t, string(old.Content), "(Telegraf 1.28", "the setting's comment goes with it")

	// Only the setting and its comment are gone.
	const setting = "  ## One write system call per batch instead of one per metric (Telegraf 1.28\n" +
		"  ## and later).\n" +
		"  use_batch_format = true\n"
	require.Contains(t, string(sample), setting)
	require.Equal(t, strings.Replace(string(sample), setting, "", 1), string(old.Content))

	_, err = For(files, "v2.0.0")
	require.Error(t, err)
	require.False(t, latest.Loads("1.27.1"))
	require.True(t, latest.Loads("1.28.0"))
	require.False(t, old.Loads("v1.28.0"))
}

func TestWithoutBatchFormat(t *testing.T) {
	in := "[[outputs.execd]]\n  ## a\n  ## b\n  use_batch_format = true\n  data_format = \"influx\"\n"
	out, err := withoutBatchFormat([]byte(in))
	require.NoError(t, err)
	require.Equal(t, "[[outputs.execd]]\n  data_format = \"influx\"\n", string(out))

	_, err = withoutBatchFormat([]byte("[[outputs.execd]]\n"))
	require.ErrorContains(t, err, "does not set use_batch_format")
}
