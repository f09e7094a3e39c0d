// Package pluginconf reads the configuration file of one external plugin: a TOML file
// with a single [[inputs.NAME]] or [[outputs.NAME]] table, in the form Telegraf's
// plugin shim reads.
//
// Unlike the shim's loader it refuses keys the plugin does not know, naming them, so
// that a typo in an option is an error at start instead of a silently ignored setting.
package pluginconf

import (
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"
)

// envEscaper keeps an expanded environment variable inside a TOML string, as the shim does.
var envEscaper = strings.NewReplacer(`"`, `\"`, `\`, `\\`)

// Load decodes the table [[kind.name]] of the file at path into plugin. kind is
// "inputs" or "outputs". Environment variables written as $VAR or ${VAR} are expanded
// first. An empty path leaves plugin at its defaults.
func Load(path, kind, name string, plugin interface{}) error {
	if path == "" {
		return nil
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("reading config: %w", err)
	}
	if err := Decode(expandEnv(string(raw)), kind, name, plugin); err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	return nil
}

// Decode is Load for a configuration held in memory.
func Decode(data, kind, name string, plugin interface{}) error {
	var doc map[string]map[string][]toml.Primitive
	md, err := toml.Decode(data, &doc)
	if err != nil {
		return err
	}
	for section, plugins := range doc {
		if section != kind {
			return fmt.Errorf("unexpected section %q: this program runs one [[%s.%s]]", section, kind, name)
		}
		for other := range plugins {
			if other != name {
				return fmt.Errorf("unknown plugin [[%s.%s]]: this program runs [[%s.%s]]", kind, other, kind, name)
			}
		}
	}
	tables := doc[kind][name]
	switch len(tables) {
	case 0:
		return fmt.Errorf("no [[%s.%s]] table", kind, name)
	case 1:
	default:
		return fmt.Errorf("%d [[%s.%s]] tables: run one process per table", len(tables), kind, name)
	}
	if err := md.PrimitiveDecode(tables[0], plugin); err != nil {
		return fmt.Errorf("[[%s.%s]]: %w", kind, name, err)
	}
	var unknown []string
	for _, key := range md.Undecoded() {
		unknown = append(unknown, strings.TrimPrefix(key.String(), kind+"."+name+"."))
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return fmt.Errorf("[[%s.%s]]: unknown option(s) %s", kind, name, strings.Join(unknown, ", "))
	}
	return nil
}

func expandEnv(s string) string {
	return os.Expand(s, func(key string) string { return envEscaper.Replace(os.Getenv(key)) })
}
