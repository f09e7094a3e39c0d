package kafka_consumer

import (
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/influxdata/telegraf"
	"github.com/influxdata/telegraf/metric"
)

// partitionCounts are the counters of one partition since the process started; they
// outlive rebalances.
type partitionCounts struct {
	messages     atomic.Int64
	bytes        atomic.Int64
	parseErrors  atomic.Int64
	noMetrics    atomic.Int64
	givenUp      atomic.Int64 // messages whose lines kept going missing (acker.giveUpLocked)
	deadLettered atomic.Int64
	skipped      atomic.Int64 // fetched again by a later session, and skipped
	stalls       atomic.Int64 // sessions the stall watchdog ended for this partition
	marked       atomic.Int64 // last marked offset, -1 before the first
}

type topicPartition struct {
	topic string
	id    int32
}

// stats keeps the counters of every partition seen and the claims held now, and
// turns them into kafka_consumer_stats metrics.
type stats struct {
	group      string
	rebalances atomic.Int64
	ack        *acker // nil without ack_socket

	mu     sync.Mutex
	counts map[topicPartition]*partitionCounts
	claims map[topicPartition]*partition
}

func newStats(group string) *stats {
	return &stats{
		group:  group,
		counts: make(map[topicPartition]*partitionCounts),
		claims: make(map[topicPartition]*partition),
	}
}

// counters returns the counters of a partition, creating them on first use.
func (s *stats) counters(topic string, id int32) *partitionCounts {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := topicPartition{topic, id}
	c, ok := s.counts[key]
	if !ok {
		c = &partitionCounts{}
		c.marked.Store(-1)
		s.counts[key] = c
	}
	return c
}

func (s *stats) claimed(p *partition) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.claims[topicPartition{p.topic, p.id}] = p
}

func (s *stats) released(p *partition) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := topicPartition{p.topic, p.id}
	if s.claims[key] == p {
		delete(s.claims, key)
	}
}

// held returns the claims held now, in no particular order.
func (s *stats) held() []*partition {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*partition, 0, len(s.claims))
	for _, p := range s.claims {
		out = append(out, p)
	}
	return out
}

// metrics returns one metric per partition seen, ordered by topic and partition. Lag,
// in offsets and in seconds, is present only for partitions this process holds, since
// only their owner knows it; it counts to endOf's offset (stableEnds).
func (s *stats) metrics(now time.Time, endOf func(*partition) int64) []telegraf.Metric {
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := make([]topicPartition, 0, len(s.counts))
	for key := range s.counts {
		keys = append(keys, key)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].topic != keys[j].topic {
			return keys[i].topic < keys[j].topic
		}
		return keys[i].id < keys[j].id
	})
	rebalances := s.rebalances.Load()
	out := make([]telegraf.Metric, 0, len(keys))
	for _, key := range keys {
		c := s.counts[key]
		fields := map[string]interface{}{
			"messages":      c.messages.Load(),
			"bytes":         c.bytes.Load(),
			"parse_errors":  c.parseErrors.Load(),
			"no_metrics":    c.noMetrics.Load(),
			"dead_lettered": c.deadLettered.Load(),
			"skipped":       c.skipped.Load(),
			"stalls":        c.stalls.Load(),
			"rebalances":    rebalances,
		}
		if s.ack != nil {
			_, held := s.ack.outstanding()
			fields["acked"] = s.ack.acked.Load()
			fields["outstanding"] = held
			fields["rewinds"] = s.ack.rewinds.Load()
			fields["resent"] = s.ack.resent.Load()
			fields["given_up"] = c.givenUp.Load()
		}
		if p, ok := s.claims[key]; ok {
			end := endOf(p)
			if lag, ok := p.lag(end); ok {
				fields["lag"] = lag
			}
			if secs, ok := p.lagSeconds(now, end); ok {
				fields["lag_seconds"] = secs
			}
		}
		if m := c.marked.Load(); m >= 0 {
			fields["marked_offset"] = m
		}
		tags := map[string]string{
			"topic":          key.topic,
			"partition":      itoa(key.id),
			"consumer_group": s.group,
		}
		out = append(out, metric.New(statsMeasurement, tags, fields, now))
	}
	return out
}

func itoa(i int32) string {
	return strconv.FormatInt(int64(i), 10)
}
