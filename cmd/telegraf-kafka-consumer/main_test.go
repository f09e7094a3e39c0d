package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestFlags(t *testing.T) {
	require.Equal(t, 0, run([]string{"-version"}))
	require.Equal(t, 0, run([]string{"-sample-config"}))
	require.Equal(t, 2, run([]string{"-no-such-flag"}))
	require.Equal(t, 2, run(nil), "no -config")
}

func TestConfigErrorsExitWith2(t *testing.T) {
	dir := t.TempDir()
	for name, conf := range map[string]string{
		"unknown option": "[[inputs.kafka_consumer]]\n  brokers = [\"b:9092\"]\n  topics = [\"t\"]\n  bogus = 1\n",
		"bad option":     "[[inputs.kafka_consumer]]\n  brokers = [\"b:9092\"]\n  topics = [\"t\"]\n  offset = \"latest\"\n",
		"bad log_level":  "[[inputs.kafka_consumer]]\n  brokers = [\"b:9092\"]\n  topics = [\"t\"]\n  log_level = \"loud\"\n",
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, name+".conf")
			require.NoError(t, os.WriteFile(path, []byte(conf), 0o600))
			require.Equal(t, 2, run([]string{"-config", path}))
		})
	}
	require.Equal(t, 2, run([]string{"-config", filepath.Join(dir, "missing.conf")}))
}
