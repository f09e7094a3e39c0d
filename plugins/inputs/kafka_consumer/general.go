package kafka_consumer

import (
	"fmt"
	"sort"
	"time"

	"github.com/influxdata/telegraf"
	"github.com/influxdata/telegraf/config"
	"github.com/influxdata/telegraf/models"
)

// generalOptions are the options Telegraf's config loader takes from every input's
// table (config.buildInput, config.buildFilter). A stock [[inputs.kafka_consumer]]
// table may carry them, so they are read here and applied to every metric as
// Telegraf's RunningInput.MakeMetric does; the options that concern only polled
// inputs or the agent are accepted and have no effect.
type generalOptions struct {
	NameOverride string            `toml:"name_override"`
	NamePrefix   string            `toml:"name_prefix"`
	NameSuffix   string            `toml:"name_suffix"`
	Tags         map[string]string `toml:"tags"`
	Precision    config.Duration   `toml:"precision"`
	Alias        string            `toml:"alias"`
	LogLevel     string            `toml:"log_level"`

	NamePass           []string            `toml:"namepass"`
	NamePassSeparators string              `toml:"namepass_separator"`
	NameDrop           []string            `toml:"namedrop"`
	NameDropSeparators string              `toml:"namedrop_separator"`
	FieldInclude       []string            `toml:"fieldinclude"`
	FieldExclude       []string            `toml:"fieldexclude"`
	FieldPass          []string            `toml:"fieldpass"` // deprecated alias of fieldinclude
	FieldDrop          []string            `toml:"fielddrop"` // deprecated alias of fieldexclude
	Pass               []string            `toml:"pass"`      // deprecated alias of fieldinclude
	Drop               []string            `toml:"drop"`      // deprecated alias of fieldexclude
	TagPass            map[string][]string `toml:"tagpass"`
	TagDrop            map[string][]string `toml:"tagdrop"`
	TagInclude         []string            `toml:"taginclude"`
	TagExclude         []string            `toml:"tagexclude"`
	MetricPass         string              `toml:"metricpass"`

	// Accepted for compatibility; they steer polling or the agent, not a consumer.
	Interval               config.Duration   `toml:"interval"`
	CollectionJitter       config.Duration   `toml:"collection_jitter"`
	CollectionOffset       config.Duration   `toml:"collection_offset"`
	StartupErrorBehavior   string            `toml:"startup_error_behavior"`
	TimeSource             string            `toml:"time_source"`
	Labels                 map[string]string `toml:"labels"`
	AlwaysIncludeLocalTags bool              `toml:"always_include_local_tags"`
	DataType               string            `toml:"data_type"`
}

// modifier applies the general options to a metric.
type modifier struct {
	nameOverride, namePrefix, nameSuffix string
	tags                                 map[string]string
	precision                            time.Duration
	filter                               models.Filter
	active                               bool
}

func (o *generalOptions) modifier() (*modifier, error) {
	f := models.Filter{
		NamePass:           o.NamePass,
		NamePassSeparators: o.NamePassSeparators,
		NameDrop:           o.NameDrop,
		NameDropSeparators: o.NameDropSeparators,
		TagInclude:         o.TagInclude,
		TagExclude:         o.TagExclude,
		MetricPass:         o.MetricPass,
		TagPassFilters:     tagFilters(o.TagPass),
		TagDropFilters:     tagFilters(o.TagDrop),
	}
	f.FieldInclude = append(append(append(f.FieldInclude, o.Pass...), o.FieldPass...), o.FieldInclude...)
	f.FieldExclude = append(append(append(f.FieldExclude, o.Drop...), o.FieldDrop...), o.FieldExclude...)
	if err := f.Compile(); err != nil {
		return nil, fmt.Errorf("metric filter: %w", err)
	}
	m := &modifier{
		nameOverride: o.NameOverride,
		namePrefix:   o.NamePrefix,
		nameSuffix:   o.NameSuffix,
		tags:         o.Tags,
		precision:    time.Duration(o.Precision),
		filter:       f,
	}
	m.active = m.nameOverride != "" || m.namePrefix != "" || m.nameSuffix != "" || len(m.tags) > 0 ||
		m.precision > 0 || len(f.NamePass)+len(f.NameDrop)+len(f.FieldInclude)+len(f.FieldExclude)+
		len(f.TagInclude)+len(f.TagExclude)+len(f.TagPassFilters)+len(f.TagDropFilters) > 0 || f.MetricPass != ""
	return m, nil
}

// tagFilters turns a tagpass or tagdrop table into filters, ordered by tag name so
// that evaluation does not depend on map order.
func tagFilters(table map[string][]string) []models.TagFilter {
	if len(table) == 0 {
		return nil
	}
	filters := make([]models.TagFilter, 0, len(table))
	for name, values := range table {
		filters = append(filters, models.TagFilter{Name: name, Values: values})
	}
	sort.Slice(filters, func(i, j int) bool { return filters[i].Name < filters[j].Name })
	return filters
}

// apply modifies metrics in place as Telegraf's accumulator and RunningInput do
// (precision, filters, name and tags) and returns those that pass, reusing the slice.
func (m *modifier) apply(metrics []telegraf.Metric, log telegraf.Logger) []telegraf.Metric {
	if !m.active {
		return metrics
	}
	kept := metrics[:0]
	for _, metric := range metrics {
		if m.precision > 0 {
			metric.SetTime(metric.Time().Round(m.precision))
		}
		ok, err := m.filter.Select(metric)
		if err != nil {
			log.Errorf("filtering failed: %v", err)
		} else if !ok {
			continue
		}
		if m.nameOverride != "" {
			metric.SetName(m.nameOverride)
		}
		if m.namePrefix != "" {
			metric.AddPrefix(m.namePrefix)
		}
		if m.nameSuffix != "" {
			metric.AddSuffix(m.nameSuffix)
		}
		for k, v := range m.tags {
			if _, ok := metric.GetTag(k); !ok {
				metric.AddTag(k, v)
			}
		}
		m.filter.Modify(metric)
		if len(metric.FieldList()) == 0 {
			continue
		}
		kept = append(kept, metric)
	}
	return kept
}
