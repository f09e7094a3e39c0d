// Package telegrafd derives the telegraf.d files the Debian package ships from the
// root sample.conf: one for Telegraf 1.28 and later, the file as it is, and one for
// Telegraf 1.27, which refuses outputs.execd's use_batch_format ("configuration
// specified the fields ["use_batch_format"], but they weren't used").
package telegrafd

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Dir is where Telegraf's packages look for configuration files besides telegraf.conf.
// Telegraf loads only the *.conf files there: the examples take effect once renamed.
const Dir = "/etc/telegraf/telegraf.d/"

// File is a telegraf.d example and the Telegraf versions that load it.
type File struct {
	// Name is the file's name under Dir.
	Name string
	// Telegraf names the versions that load it, as the documentation does.
	Telegraf string
	// Content is the file's text.
	Content []byte

	minMinor, maxMinor int // Telegraf 1.x versions that load it, inclusive
}

// Loads reports whether Telegraf at version ("v1.27.1" or "1.37.2") loads f.
func (f File) Loads(version string) bool {
	minor, err := telegrafMinor(version)
	return err == nil && minor >= f.minMinor && (f.maxMinor < 0 || minor <= f.maxMinor)
}

// Files returns the telegraf.d examples made from sample, the root sample.conf,
// newest Telegraf first.
func Files(sample []byte) ([]File, error) {
	old, err := withoutBatchFormat(sample)
	if err != nil {
		return nil, err
	}
	return []File{
		{Name: "kafka-cnosdb.conf.example", Telegraf: "1.28 and later", Content: sample, minMinor: 28, maxMinor: -1},
		{Name: "kafka-cnosdb-telegraf-1.27.conf.example", Telegraf: "1.27", Content: old, minMinor: 27, maxMinor: 27},
	}, nil
}

// For returns the file of files that Telegraf at version loads.
func For(files []File, version string) (File, error) {
	for _, f := range files {
		if f.Loads(version) {
			return f, nil
		}
	}
	return File{}, fmt.Errorf("no telegraf.d example for Telegraf %s", version)
}

// withoutBatchFormat drops the use_batch_format setting of sample and the comment
// lines directly above it.
func withoutBatchFormat(sample []byte) ([]byte, error) {
	lines := strings.SplitAfter(string(sample), "\n")
	at := -1
	for i, line := range lines {
		key, _, ok := strings.Cut(strings.TrimSpace(line), "=")
		if ok && strings.TrimSpace(key) == "use_batch_format" {
			if at >= 0 {
				return nil, errors.New("sample.conf sets use_batch_format twice")
			}
			at = i
		}
	}
	if at < 0 {
		return nil, errors.New("sample.conf does not set use_batch_format")
	}
	from := at
	for from > 0 && strings.HasPrefix(strings.TrimSpace(lines[from-1]), "#") {
		from--
	}
	var out bytes.Buffer
	for i, line := range lines {
		if i < from || i > at {
			out.WriteString(line)
		}
	}
	return out.Bytes(), nil
}

// telegrafMinor returns the minor version of a Telegraf 1.x version.
func telegrafMinor(version string) (int, error) {
	parts := strings.Split(strings.TrimPrefix(version, "v"), ".")
	if len(parts) < 2 || parts[0] != "1" {
		return 0, fmt.Errorf("not a Telegraf 1.x version: %q", version)
	}
	return strconv.Atoi(parts[1])
}
