// Command mkdeb builds the project's Debian package with nFPM: both binaries in
// /usr/bin, the plugins' configuration files as conffiles under /etc/telegraf/, the
// root sample.conf as telegraf.d examples for Telegraf 1.28 and later and for Telegraf
// 1.27 (without use_batch_format), which Telegraf does not load until one is renamed,
// and the documentation and license under /usr/share/doc. `make deb` runs it after
// `make build`; the version is that of the VERSION file unless -version is given.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/goreleaser/nfpm/v2"
	_ "github.com/goreleaser/nfpm/v2/deb" // registers the deb packager
	"github.com/goreleaser/nfpm/v2/files"

	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/packaging/telegrafd"
)

const name = "telegraf-kafka-cnosdb"

func main() {
	version := flag.String("version", "", "package version (Debian form: starts with a digit); default: the `VERSION` file in -root")
	arch := flag.String("arch", "amd64", "package architecture")
	root := flag.String("root", ".", "repository root")
	bin := flag.String("bin", "bin", "directory with the built binaries")
	out := flag.String("out", "dist", "directory for the package")
	flag.Parse()
	if *version == "" {
		b, err := os.ReadFile(filepath.Join(*root, "VERSION"))
		if err != nil {
			fmt.Fprintln(os.Stderr, "mkdeb:", err)
			os.Exit(1)
		}
		*version = strings.TrimSpace(string(b))
	}
	path, err := build(*root, *bin, *out, *version, *arch)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mkdeb:", err)
		os.Exit(1)
	}
	fmt.Println(path)
}

func build(root, bin, out, version, arch string) (string, error) {
	// The telegraf.d examples are made from sample.conf; nFPM packs files, so they
	// are written to a directory of their own first.
	examples, err := telegrafdExamples(root)
	if err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp("", "mkdeb-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	contents, err := writeExamples(tmp, examples)
	if err != nil {
		return "", err
	}
	docs, err := docContents(root)
	if err != nil {
		return "", err
	}
	return writePackage(packageInfo(root, bin, version, arch, append(contents, docs...)), out)
}

const docDir = "/usr/share/doc/" + name + "/"

// docFile installs the file at source, relative to root, under docDir.
func docFile(root, source string) *files.Content {
	return &files.Content{Source: filepath.Join(root, source), Destination: docDir + source,
		FileInfo: &files.ContentFileInfo{Mode: 0o644}}
}

func telegrafdExamples(root string) ([]telegrafd.File, error) {
	sample, err := os.ReadFile(filepath.Join(root, "sample.conf"))
	if err != nil {
		return nil, err
	}
	examples, err := telegrafd.Files(sample)
	if err != nil {
		return nil, fmt.Errorf("making the telegraf.d examples: %w", err)
	}
	return examples, nil
}

// writeExamples writes the examples to dir and returns their entries in the package.
func writeExamples(dir string, examples []telegrafd.File) (files.Contents, error) {
	var contents files.Contents
	for _, e := range examples {
		path := filepath.Join(dir, e.Name)
		if err := os.WriteFile(path, e.Content, 0o644); err != nil {
			return nil, err
		}
		// Telegraf loads only *.conf from telegraf.d: renaming one enables the pair.
		contents = append(contents, &files.Content{Source: path, Destination: telegrafd.Dir + e.Name,
			Type: files.TypeConfigNoReplace, FileInfo: &files.ContentFileInfo{Mode: 0o644}})
	}
	return contents, nil
}

func docContents(root string) (files.Contents, error) {
	docs, err := filepath.Glob(filepath.Join(root, "docs/*.md"))
	if err != nil {
		return nil, err
	}
	// The documentation keeps the repository's layout, so that its links hold.
	contents := files.Contents{docFile(root, "README.md"), docFile(root, "sample.conf"),
		docFile(root, "plugins/inputs/kafka_consumer/README.md"), docFile(root, "plugins/outputs/cnosdb/README.md")}
	for _, d := range docs {
		rel, err := filepath.Rel(root, d)
		if err != nil {
			return nil, err
		}
		contents = append(contents, docFile(root, rel))
	}
	return contents, nil
}

// packageInfo describes the package: the binaries in bin, the plugins'
// configuration files and license from root, and extra.
func packageInfo(root, bin, version, arch string, extra files.Contents) *nfpm.Info {
	conf := func(source, dest string) *files.Content {
		return &files.Content{Source: filepath.Join(root, source), Destination: dest, Type: files.TypeConfigNoReplace,
			FileInfo: &files.ContentFileInfo{Mode: 0o644}}
	}
	return &nfpm.Info{
		Name:        name,
		Arch:        arch,
		Platform:    "linux",
		Version:     version,
		Section:     "net",
		Priority:    "optional",
		Maintainer:  "telegraf-kafka-cnosdb maintainers <maintainers@telegraf-kafka-cnosdb.invalid>",
		Description: "Telegraf plugins that move Kafka streams into CnosDB\nA Kafka consumer input and a CnosDB output, run by stock Telegraf\nthrough inputs.execd and outputs.execd.",
		License:     "MIT",
		Overridables: nfpm.Overridables{
			// The plugins run under Telegraf but install and run without it.
			Recommends: []string{"telegraf"},
			Contents: append(files.Contents{
				{Source: filepath.Join(bin, "telegraf-kafka-consumer"), Destination: "/usr/bin/telegraf-kafka-consumer",
					FileInfo: &files.ContentFileInfo{Mode: 0o755}},
				{Source: filepath.Join(bin, "telegraf-cnosdb"), Destination: "/usr/bin/telegraf-cnosdb",
					FileInfo: &files.ContentFileInfo{Mode: 0o755}},
				conf("plugins/inputs/kafka_consumer/sample.conf", "/etc/telegraf/kafka_consumer.conf"),
				conf("plugins/outputs/cnosdb/sample.conf", "/etc/telegraf/cnosdb.conf"),
				{Source: filepath.Join(root, "LICENSE"), Destination: docDir + "copyright", FileInfo: &files.ContentFileInfo{Mode: 0o644}},
			}, extra...),
		},
	}
}

// writePackage writes the .deb of info into out and returns its path.
func writePackage(info *nfpm.Info, out string) (string, error) {
	info = nfpm.WithDefaults(info)
	if err := nfpm.PrepareForPackager(info, "deb"); err != nil {
		return "", fmt.Errorf("preparing the package: %w", err)
	}
	packager, err := nfpm.Get("deb")
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return "", err
	}
	path := filepath.Join(out, packager.ConventionalFileName(info))
	f, err := os.Create(path)
	if err != nil {
		return "", err
	}
	if err := packager.Package(info, f); err != nil {
		f.Close()
		return "", fmt.Errorf("writing %s: %w", path, err)
	}
	return path, f.Close()
}
