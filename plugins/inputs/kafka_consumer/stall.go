package kafka_consumer

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/IBM/sarama"
)

// The stall watchdog ends a consumer-group session when one of its partitions has
// records waiting on the broker and reads and confirms nothing for stall_timeout
// while its loop waits for Kafka and the broker answers. sarama's fetcher for a
// partition can stop handing out messages while the group's heartbeats go on: then
// nothing else notices, and the partition stays with this member, unread, until the
// next rebalance. A new session builds every fetcher anew.
//
// A partition whose loop waits for the writer or for a max_undelivered_messages slot
// is left alone: the output is slow or gone, which ack_timeout reports and a new
// session would not cure.

// stallCheckInterval is how often the watchdog looks: a quarter of stall_timeout, so
// that a stall is seen at most 1.25 times stall_timeout after the partition last
// moved, and at least every 30s.
func stallCheckInterval(timeout time.Duration) time.Duration {
	return min(timeout/4, 30*time.Second)
}

// stallWatch is the watchdog, one per run; watch starts it for one session.
type stallWatch struct {
	k       *KafkaConsumer
	timeout time.Duration
	// client asks the broker for high watermarks and probes partitions; the group's
	// own client is not reachable. Made on first need, so that a consumer that never
	// stalls opens no second connection; only one session's watch uses it at a time.
	client sarama.Client
}

// stallClock is where a claim was when the watchdog last saw it move.
type stallClock struct {
	since           time.Time
	read, confirmed int64
}

// stalled is a partition found stalled, with the offsets its log line gives.
type stalled struct {
	p                    *partition
	next, hwm, confirmed int64
}

func newStallWatch(k *KafkaConsumer) *stallWatch {
	return &stallWatch{k: k, timeout: time.Duration(k.StallTimeout)}
}

// watch looks after the session of ctx until ctx ends, calling endSession if it
// stalls. The returned function waits until the watch has stopped.
func (w *stallWatch) watch(ctx context.Context, endSession func()) (wait func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		clocks := make(map[*partition]stallClock)
		every(ctx, stallCheckInterval(w.timeout), func(now time.Time) bool {
			if found := w.check(ctx, clocks, now); len(found) > 0 {
				w.report(found)
				endSession()
				return false
			}
			return true
		})
	}()
	return func() { <-done }
}

func (w *stallWatch) close() {
	if w.client != nil {
		w.client.Close()
	}
}

// check returns the partitions held now that stalled: still for stall_timeout, and
// with a record on the broker that the claim's consumer would be handed (readable).
func (w *stallWatch) check(ctx context.Context, clocks map[*partition]stallClock, now time.Time) []stalled {
	held := w.k.stats.held()
	live := make(map[*partition]bool, len(held))
	var still []*partition
	for _, p := range held {
		live[p] = true
		read := p.counts.messages.Load() + p.counts.skipped.Load()
		confirmed := p.tracker().Mark()
		c, ok := clocks[p]
		if !ok || !p.waiting.Load() || c.read != read || c.confirmed != confirmed {
			clocks[p] = stallClock{since: now, read: read, confirmed: confirmed}
			continue
		}
		if now.Sub(c.since) >= w.timeout {
			// Whatever the broker says, ask again only after another stall_timeout,
			// so that an idle partition costs a request per stall_timeout.
			c.since = now
			clocks[p] = c
			still = append(still, p)
		}
	}
	for p := range clocks {
		if !live[p] {
			delete(clocks, p)
		}
	}
	if len(still) == 0 {
		return nil
	}
	if w.client == nil {
		client, err := sarama.NewClient(w.k.Brokers, w.k.config)
		if err != nil {
			// The brokers do not answer: sarama reports and retries that itself.
			w.k.Log.Debugf("stall watchdog: connecting: %v", w.k.explainConnect(err))
			return nil
		}
		w.client = client
	}
	return w.readable(ctx, w.lagging(still))
}

// lagging keeps the partitions whose high watermark, as the broker gives it now, is
// above the next offset to read.
func (w *stallWatch) lagging(still []*partition) []stalled {
	var out []stalled
	for _, p := range still {
		hwm, err := w.client.GetOffset(p.topic, p.id, sarama.OffsetNewest)
		if err != nil {
			w.k.Log.Debugf("stall watchdog: topic %q partition %d: high watermark: %v", p.topic, p.id, err)
			continue
		}
		next, err := w.nextOffset(p)
		if err != nil {
			w.k.Log.Debugf("stall watchdog: topic %q partition %d: oldest offset: %v", p.topic, p.id, err)
			continue
		}
		if hwm > next {
			out = append(out, stalled{p: p, next: next, hwm: hwm, confirmed: p.tracker().Mark()})
		}
	}
	return out
}

// nextOffset is the offset the claim reads next: after the last one this process
// handed out, or where the claim started if that is later (nothing handed out yet).
func (w *stallWatch) nextOffset(p *partition) (int64, error) {
	initial := p.claim.InitialOffset()
	if last := p.tracker().Last(); last >= 0 && last+1 >= initial {
		return last + 1, nil
	}
	switch initial {
	case sarama.OffsetNewest:
		// sarama started at the high watermark it read then, and moves it only with
		// records it fetched.
		return p.claim.HighWaterMarkOffset(), nil
	case sarama.OffsetOldest:
		return w.client.GetOffset(p.topic, p.id, sarama.OffsetOldest)
	}
	return initial, nil
}

// readable keeps the partitions that hold a record the claim's consumer would be
// handed between the next offset and the high watermark. The high watermark counts
// offsets no consumer is given: each transaction ends in a commit or abort marker, so
// a partition whose last record is one has a lag with nothing to read, which a new
// session would not change; so do the records of aborted transactions with
// read_committed, and those of open ones.
func (w *stallWatch) readable(ctx context.Context, lagging []stalled) []stalled {
	var out []stalled
	for _, s := range lagging {
		if ctx.Err() != nil {
			return nil
		}
		ok, err := readableBelow(w.client, w.k.config, s.p.topic, s.p.id, s.next, s.hwm)
		switch {
		case err != nil:
			w.k.Log.Debugf("stall watchdog: topic %q partition %d: probe from offset %d: %v", s.p.topic, s.p.id, s.next, err)
		case ok:
			out = append(out, s)
		default:
			w.k.Log.Debugf("stall watchdog: topic %q partition %d: offsets %d to %d hold nothing to read "+
				"(transaction markers, say); not a stall", s.p.topic, s.p.id, s.next, s.hwm-1)
		}
	}
	return out
}

// report logs the stalled partitions in one line and counts them.
func (w *stallWatch) report(found []stalled) {
	sort.Slice(found, func(i, j int) bool {
		if found[i].p.topic != found[j].p.topic {
			return found[i].p.topic < found[j].p.topic
		}
		return found[i].p.id < found[j].p.id
	})
	var b strings.Builder
	for i, s := range found {
		s.p.counts.stalls.Add(1)
		switch {
		case i == 0:
			fmt.Fprintf(&b, "topic %q ", s.p.topic)
		case found[i-1].p.topic != s.p.topic:
			fmt.Fprintf(&b, "; topic %q ", s.p.topic)
		default:
			b.WriteString(", ")
		}
		confirmed := "none"
		if s.confirmed >= 0 {
			confirmed = strconv.FormatInt(s.confirmed, 10)
		}
		fmt.Fprintf(&b, "partition %d (next offset %d, high watermark %d, confirmed offset %s)", s.p.id, s.next, s.hwm, confirmed)
	}
	w.k.Log.Errorf("stall: %s: records wait on the broker and nothing was fetched or confirmed for %s while the broker answers; "+
		"restarting the consumer-group session", b.String(), w.timeout)
}
