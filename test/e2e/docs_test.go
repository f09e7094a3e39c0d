package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode"

	"github.com/stretchr/testify/require"
)

// The documentation, relative to the repository root.
var docs = []string{
	"README.md",
	"plugins/inputs/kafka_consumer/README.md",
	"plugins/outputs/cnosdb/README.md",
}

func allDocs(t *testing.T) []string {
	t.Helper()
	more, err := filepath.Glob("../../docs/*.md")
	require.NoError(t, err)
	require.NotEmpty(t, more, "docs/*.md")
	files := append([]string(nil), docs...)
	for _, m := range more {
		rel, err := filepath.Rel("../..", m)
		require.NoError(t, err)
		files = append(files, rel)
	}
	return files
}

// TestPluginReadmesHoldTheirSampleConf: as in Telegraf's plugins, each plugin's README
// shows its sample.conf, exactly, in a toml block of its Configuration section, so
// that the documented options are those the plugin prints with -sample-config.
func TestPluginReadmesHoldTheirSampleConf(t *testing.T) {
	for _, dir := range []string{"plugins/inputs/kafka_consumer", "plugins/outputs/cnosdb"} {
		t.Run(dir, func(t *testing.T) {
			sample, err := os.ReadFile(filepath.Join("../..", dir, "sample.conf"))
			require.NoError(t, err)
			readme, err := os.ReadFile(filepath.Join("../..", dir, "README.md"))
			require.NoError(t, err)
			found := false
			for _, b := range fencedBlocks(string(readme)) {
				if b.section == "Configuration" && strings.HasPrefix(b.info, "toml") && b.body == string(sample) {
					found = true
				}
			}
			require.True(t, found, "%s/README.md: the Configuration section has no ```toml block holding sample.conf as it is; "+
				"copy sample.conf into it", dir)
		})
	}
}

// TestDocLinksResolve: every relative link of the documentation names a file of the
// repository, and a link to a heading (#anchor) names one that exists.
func TestDocLinksResolve(t *testing.T) {
	relative := 0
	for _, doc := range allDocs(t) {
		raw, err := os.ReadFile(filepath.Join("../..", doc))
		require.NoError(t, err)
		for _, link := range markdownLinks(string(raw)) {
			if regexp.MustCompile(`^[a-z][a-z0-9+.-]*:`).MatchString(link) {
				continue // http:, https:, mailto:
			}
			relative++
			path, anchor, _ := strings.Cut(link, "#")
			target := doc
			if path != "" {
				target = filepath.Join(filepath.Dir(doc), path)
				_, err := os.Stat(filepath.Join("../..", target))
				require.NoError(t, err, "%s links to %s, which does not exist", doc, link)
			}
			if anchor != "" {
				require.True(t, strings.HasSuffix(target, ".md"), "%s links to an anchor of %s, not Markdown", doc, link)
				body, err := os.ReadFile(filepath.Join("../..", target))
				require.NoError(t, err)
				require.Contains(t, headingAnchors(string(body)), anchor, "%s links to %s: %s has no such heading", doc, link, target)
			}
		}
	}
	require.Positive(t, relative, "no relative link found: the link parser is broken")
}

// fencedBlock is a ``` block of a Markdown text.
type fencedBlock struct {
	section string // the ## heading it is under
	info    string // what follows the opening ```
	body    string
}

// fencedBlocks returns the ``` blocks of a Markdown text.
func fencedBlocks(text string) []fencedBlock {
	var blocks []fencedBlock
	var cur *fencedBlock
	var body strings.Builder
	section := ""
	for _, line := range strings.SplitAfter(text, "\n") {
		trimmed := strings.TrimSpace(line)
		switch {
		case cur == nil && strings.HasPrefix(line, "## "):
			section = strings.TrimSpace(strings.TrimPrefix(line, "## "))
		case cur == nil && strings.HasPrefix(trimmed, "```"):
			cur = &fencedBlock{section: section, info: strings.TrimSpace(strings.TrimPrefix(trimmed, "```"))}
			body.Reset()
		case cur != nil && trimmed == "```":
			cur.body = body.String()
			blocks = append(blocks, *cur)
			cur = nil
		case cur != nil:
			body.WriteString(line)
		}
	}
	return blocks
}

// proseLines returns the lines of a Markdown text outside code blocks, with inline
// code spans removed.
func proseLines(text string) []string {
	var lines []string
	inBlock := false
	code := regexp.MustCompile("`[^`]*`")
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			inBlock = !inBlock
			continue
		}
		if !inBlock {
			lines = append(lines, code.ReplaceAllString(line, ""))
		}
	}
	return lines
}

var (
	inlineLink    = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	referenceLink = regexp.MustCompile(`^\s*\[[^\]]+\]:\s*(\S+)`)
)

// markdownLinks returns the targets of a Markdown text's links: inline [text](target)
// and reference definitions [name]: target.
func markdownLinks(text string) []string {
	var links []string
	for _, line := range proseLines(text) {
		for _, m := range inlineLink.FindAllStringSubmatch(line, -1) {
			links = append(links, m[1])
		}
		if m := referenceLink.FindStringSubmatch(line); m != nil {
			links = append(links, m[1])
		}
	}
	return links
}

// headingAnchors returns the anchors GitHub gives a Markdown text's headings: the
// heading in lower case, with only letters, digits, "-" and "_" kept and each space
// made a hyphen, and "-1", "-2"… added to repeats.
func headingAnchors(text string) []string {
	var anchors []string
	seen := map[string]int{}
	inBlock := false
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			inBlock = !inBlock
			continue
		}
		if inBlock || !strings.HasPrefix(line, "#") {
			continue
		}
		heading := strings.TrimSpace(strings.TrimLeft(line, "#"))
		var b strings.Builder
		for _, r := range strings.ToLower(heading) {
			switch {
			case r == ' ':
				b.WriteRune('-')
			case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsNumber(r) || unicode.IsMark(r):
				b.WriteRune(r)
			}
		}
		anchor := b.String()
		if n := seen[anchor]; n > 0 {
			seen[anchor] = n + 1
			anchor += "-" + strconv.Itoa(n)
		} else {
			seen[anchor] = 1
		}
		anchors = append(anchors, anchor)
	}
	return anchors
}
