// Package pluginconf reads the configuration file of one external plugin: a TOML file
// with a single [[inputs.NAME]] or [[outputs.NAME]] table, in the form Telegraf's
// plugin shim reads.
//
// Unlike the shim's loader it refuses keys the plugin does not know, naming them, so
// that a typo in an option is an error at start instead of a silently ignored setting.
// A table may be decoded into several values (an input and the parser its data_format
// names, as Telegraf's own loader does); a key is known if any of them takes it.
package pluginconf

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"

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
	t, err := ReadTable(path, kind, name)
	if err != nil {
		return err
	}
	if err := t.Decode(plugin); err != nil {
		return t.wrap(err)
	}
	return t.wrap(t.CheckUnknown())
}

// Decode is Load for a configuration held in memory.
func Decode(data, kind, name string, plugin interface{}) error {
	t, err := ParseTable(data, kind, name)
	if err != nil {
		return err
	}
	if err := t.Decode(plugin); err != nil {
		return err
	}
	return t.CheckUnknown()
}

// Table is the single [[kind.name]] table of a configuration, kept undecoded so that
// it can be decoded into several values. Its methods may be called from several
// goroutines.
type Table struct {
	kind, name string
	path       string // for error messages; "" for a configuration held in memory

	mu   sync.Mutex // PrimitiveDecode keeps state in md
	md   toml.MetaData
	prim toml.Primitive
	keys map[string]bool // top-level keys of the table
}

// ReadTable reads the file at path, expanding environment variables as Load does, and
// returns its [[kind.name]] table.
func ReadTable(path, kind, name string) (*Table, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	t, err := ParseTable(expandEnv(string(raw)), kind, name)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	t.path = path
	return t, nil
}

// ParseTable parses a configuration held in memory and returns its [[kind.name]]
// table. Any other table is an error.
func ParseTable(data, kind, name string) (*Table, error) {
	var doc map[string]map[string][]toml.Primitive
	md, err := toml.Decode(data, &doc)
	if err != nil {
		return nil, hideSecret(data, err)
	}
	for section, plugins := range doc {
		if section != kind {
			return nil, fmt.Errorf("unexpected section %q: this program runs one [[%s.%s]]", section, kind, name)
		}
		for other := range plugins {
			if other != name {
				return nil, fmt.Errorf("unknown plugin [[%s.%s]]: this program runs [[%s.%s]]", kind, other, kind, name)
			}
		}
	}
	tables := doc[kind][name]
	switch len(tables) {
	case 0:
		return nil, fmt.Errorf("no [[%s.%s]] table", kind, name)
	case 1:
	default:
		return nil, fmt.Errorf("%d [[%s.%s]] tables: run one process per table", len(tables), kind, name)
	}
	t := &Table{kind: kind, name: name, md: md, prim: tables[0], keys: make(map[string]bool)}
	prefix := toml.Key{kind, name}
	for _, key := range md.Keys() {
		// Keys() names [[kind.name]] itself and every key under it; keep the
		// table's own keys (key[2]) of the first array element.
		if len(key) > len(prefix) && key[0] == kind && key[1] == name {
			t.keys[key[2]] = true
		}
	}
	return t, nil
}

// Decode decodes the table into v, which must be a pointer. Keys that v has no field
// for are left for another value or for CheckUnknown.
func (t *Table) Decode(v interface{}) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.md.PrimitiveDecode(t.prim, v); err != nil {
		return fmt.Errorf("[[%s.%s]]: %w", t.kind, t.name, err)
	}
	return nil
}

// Has reports whether the table sets the top-level key.
func (t *Table) Has(key string) bool { return t.keys[key] }

// Unknown returns the keys, sorted, that no value decoded so far took. Keys of nested
// tables are written with dots ("tags.x" is never one: maps take every key).
func (t *Table) Unknown() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var unknown []string
	for _, key := range t.md.Undecoded() {
		unknown = append(unknown, strings.TrimPrefix(key.String(), t.kind+"."+t.name+"."))
	}
	sort.Strings(unknown)
	return unknown
}

// CheckUnknown returns an error naming the keys that no value decoded so far took.
func (t *Table) CheckUnknown() error {
	if unknown := t.Unknown(); len(unknown) > 0 {
		return fmt.Errorf("[[%s.%s]]: unknown option(s) %s", t.kind, t.name, strings.Join(unknown, ", "))
	}
	return nil
}

// wrap names the file in err, as Load always did.
func (t *Table) wrap(err error) error {
	if err == nil || t.path == "" {
		return err
	}
	return fmt.Errorf("config %s: %w", t.path, err)
}

func expandEnv(s string) string {
	return os.Expand(s, func(key string) string { return envEscaper.Replace(os.Getenv(key)) })
}
