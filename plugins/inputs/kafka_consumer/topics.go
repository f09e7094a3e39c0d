package kafka_consumer

import (
	"fmt"
	"regexp"
	"slices"
	"sync"

	"github.com/IBM/sarama"

	"github.com/influxdata/telegraf"
)

// topicList is what the consumer group subscribes to: topics, and every topic on the
// cluster that matches one of topic_regexps, the dead-letter topic excepted. A session
// subscribes to the list as it was when the session began, so a change ends the
// session (changed) and the next one subscribes to the new list.
type topicList struct {
	fixed   []string
	regexps []*regexp.Regexp
	exclude string // dead_letter_topic: reading it back would loop
	log     telegraf.Logger

	mu      sync.Mutex
	current []string
	changed chan struct{} // a value when the list changed after it was first set
}

func newTopicList(fixed, exprs []string, exclude string, log telegraf.Logger) (*topicList, error) {
	l := &topicList{fixed: fixed, exclude: exclude, log: log, changed: make(chan struct{}, 1)}
	for _, expr := range exprs {
		re, err := regexp.Compile(expr)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", expr, err)
		}
		l.regexps = append(l.regexps, re)
	}
	return l, nil
}

// discovers reports whether the list depends on the topics on the cluster.
func (l *topicList) discovers() bool { return len(l.regexps) > 0 }

// names returns the list as it is now.
func (l *topicList) names() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.current)
}

// refresh sets the list again, asking the cluster for its topics when topic_regexps
// is set.
func (l *topicList) refresh(brokers []string, cfg *sarama.Config) error {
	wanted := slices.Clone(l.fixed)
	if l.discovers() {
		client, err := sarama.NewClient(brokers, cfg)
		if err != nil {
			return err
		}
		defer client.Close()
		all, err := client.Topics()
		if err != nil {
			return err
		}
		l.log.Debugf("discovered topics: %v", all)
		for _, t := range all {
			if t != l.exclude && slices.ContainsFunc(l.regexps, func(re *regexp.Regexp) bool { return re.MatchString(t) }) {
				wanted = append(wanted, t)
			}
		}
	}
	slices.Sort(wanted)
	wanted = slices.Compact(wanted)
	l.set(wanted)
	return nil
}

func (l *topicList) set(list []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if slices.Equal(list, l.current) {
		return
	}
	if l.current != nil {
		l.log.Infof("updating topics: replacing %q with %q", l.current, list)
		select {
		case l.changed <- struct{}{}:
		default:
		}
	}
	l.current = list
}
