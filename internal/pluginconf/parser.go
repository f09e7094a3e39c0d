package pluginconf

import (
	"fmt"

	"github.com/influxdata/telegraf"
	"github.com/influxdata/telegraf/models"
	"github.com/influxdata/telegraf/plugins/parsers"
)

// ParserOptions are the keys of a plugin table that choose its parser, as Telegraf's
// config loader reads them. A plugin that parses embeds them so that the keys count as
// known.
type ParserOptions struct {
	DataFormat       string `toml:"data_format"`
	InfluxParserType string `toml:"influx_parser_type"`
}

// Format returns the registry name of the parser the options choose: "influx" by
// default and "influx_upstream" for influx_parser_type = "upstream", as in Telegraf.
func (o ParserOptions) Format() string {
	switch {
	case o.DataFormat == "":
		return "influx"
	case o.DataFormat == "influx" && o.InfluxParserType == "upstream":
		return "influx_upstream"
	default:
		return o.DataFormat
	}
}

// ParserFunc returns a function that builds a parser for format from the table, the
// way Telegraf's config loader does (config.addParser): the registered creator called
// with the parent plugin's name, the same table decoded into the parser, its logger set
// and Init called. It builds one parser at once, so that the parser's keys count as
// known for CheckUnknown and a bad parser option is an error at start.
//
// The parsers must be registered, usually by importing
// github.com/influxdata/telegraf/plugins/parsers/all. Parsers are not safe for
// concurrent use; build one per goroutine.
func (t *Table) ParserFunc(format string, log telegraf.Logger) (telegraf.ParserFunc, error) {
	creator, ok := parsers.Parsers[format]
	if !ok {
		return nil, fmt.Errorf("[[%s.%s]]: data_format %q is not a Telegraf parser", t.kind, t.name, format)
	}
	build := func() (telegraf.Parser, error) {
		parser := creator(t.name)
		if err := t.Decode(parser); err != nil {
			return nil, fmt.Errorf("parser %s: %w", format, err)
		}
		if log != nil {
			models.SetLoggerOnPlugin(parser, log)
		}
		if p, ok := parser.(telegraf.Initializer); ok {
			if err := p.Init(); err != nil {
				return nil, fmt.Errorf("[[%s.%s]]: parser %s: %w", t.kind, t.name, format, err)
			}
		}
		return parser, nil
	}
	if _, err := build(); err != nil {
		return nil, err
	}
	return build, nil
}
