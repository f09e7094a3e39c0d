package kafka_consumer

import (
	"errors"
	"fmt"
	"sort"

	"github.com/IBM/sarama"
)

// Where a partition ends for a consumer, and whether anything is left to read before
// that end. Transactions make both differ from the high watermark: each ends in a
// commit or abort marker that takes an offset and that no consumer is given, a
// read_committed consumer skips the records of aborted transactions, and reads only
// up to the last stable offset (the first offset of the oldest open transaction), not
// to the high watermark. sarama's consumer hands out none of that: it gives the high
// watermark of its last fetch and drops markers and aborted records silently.

// listEnds returns the end of each of parts for a consumer at level: the high
// watermark with read_uncommitted, the last stable offset with read_committed. It
// sends one ListOffsets request to each leader, all at once. A partition the
// brokers gave no offset for is missing from ends, and err says why.
func listEnds(client sarama.Client, level sarama.IsolationLevel, parts []topicPartition) (ends map[topicPartition]int64, err error) {
	requests, errs := endsRequests(client, level, parts)
	answers := make(chan endsAnswer, len(requests))
	for _, r := range requests {
		go func() {
			resp, err := r.broker.GetAvailableOffsets(r.req)
			if err != nil {
				// As sarama's own GetOffset does: the next request connects anew.
				_ = r.broker.Close()
			}
			answers <- endsAnswer{r: r, resp: resp, err: err}
		}()
	}
	ends = make(map[topicPartition]int64, len(parts))
	stale := false
	for range requests {
		a := <-answers
		aerrs, astale := a.record(ends)
		errs = append(errs, aerrs...)
		stale = stale || astale
	}
	if stale {
		if err := refreshMissing(client, parts, ends); err != nil {
			errs = append(errs, err)
		}
	}
	// A broker that is gone fails each of its partitions alike: the first few say
	// why, in one log line.
	const most = 3
	if len(errs) > most {
		errs = append(errs[:most], fmt.Errorf("and %d more", len(errs)-most))
	}
	return ends, errors.Join(errs...)
}

// endsRequest is the ListOffsets request of listEnds to one leader.
type endsRequest struct {
	broker *sarama.Broker
	req    *sarama.OffsetRequest
	parts  []topicPartition
}

// endsRequests groups parts by leader, one request each.
func endsRequests(client sarama.Client, level sarama.IsolationLevel, parts []topicPartition) (map[int32]*endsRequest, []error) {
	var errs []error
	requests := make(map[int32]*endsRequest)
	for _, tp := range parts {
		leader, err := client.Leader(tp.topic, tp.id)
		if err != nil {
			errs = append(errs, fmt.Errorf("topic %q partition %d: finding its leader: %w", tp.topic, tp.id, err))
			continue
		}
		r, ok := requests[leader.ID()]
		if !ok {
			req := sarama.NewOffsetRequest(client.Config().Version)
			req.IsolationLevel = level
			r = &endsRequest{broker: leader, req: req}
			requests[leader.ID()] = r
		}
		r.req.AddBlock(tp.topic, tp.id, sarama.OffsetNewest, 1)
		r.parts = append(r.parts, tp)
	}
	return requests, errs
}

// endsAnswer is a leader's answer to an endsRequest.
type endsAnswer struct {
	r    *endsRequest
	resp *sarama.OffsetResponse
	err  error
}

// record puts the ends the answer gives into ends; stale says that the metadata is
// likely out of date (the broker failed, or a leader moved).
func (a endsAnswer) record(ends map[topicPartition]int64) (errs []error, stale bool) {
	if a.err != nil {
		return []error{fmt.Errorf("listing offsets on broker %d (%s) for %d partitions: %w",
			a.r.broker.ID(), a.r.broker.Addr(), len(a.r.parts), a.err)}, true
	}
	for _, tp := range a.r.parts {
		block := a.resp.GetBlock(tp.topic, tp.id)
		switch {
		case block == nil:
			errs = append(errs, fmt.Errorf("topic %q partition %d: %w", tp.topic, tp.id, sarama.ErrIncompleteResponse))
		case !errors.Is(block.Err, sarama.ErrNoError):
			// Most likely the leader moved: ask for the metadata anew.
			stale = true
			errs = append(errs, fmt.Errorf("topic %q partition %d: %w", tp.topic, tp.id, block.Err))
		case len(block.Offsets) != 1:
			errs = append(errs, fmt.Errorf("topic %q partition %d: %d offsets in the answer, not 1", tp.topic, tp.id, len(block.Offsets)))
		default:
			ends[tp] = block.Offsets[0]
		}
	}
	return errs, stale
}

// refreshMissing refreshes the metadata of the topics of parts that have no end, so
// that the next listEnds asks their leaders as they are now.
func refreshMissing(client sarama.Client, parts []topicPartition, ends map[topicPartition]int64) error {
	topics := make(map[string]bool)
	for _, tp := range parts {
		if _, ok := ends[tp]; !ok {
			topics[tp.topic] = true
		}
	}
	list := make([]string, 0, len(topics))
	for t := range topics {
		list = append(list, t)
	}
	if err := client.RefreshMetadata(list...); err != nil {
		return fmt.Errorf("refreshing metadata: %w", err)
	}
	return nil
}

// Bytes a probe (readableBelow) asks for in its first fetch, and at most in later
// ones. Small, since the first record batch usually answers; the broker sends the
// first batch whole even when it is larger.
const (
	probeFetchMin = 32 << 10
	probeFetchMax = 1 << 20
)

// readableBelow reports whether a consumer with cfg would be handed a record of the
// partition at an offset from from up to end, end excluded, as the partition is now.
// It reads the record batches as they are on the broker, which sarama's consumer does
// not show: markers and, with read_committed, the batches of aborted transactions
// hold nothing to read. Each fetch answers at once, with what the broker has.
func readableBelow(client sarama.Client, cfg *sarama.Config, topic string, id int32, from, end int64) (bool, error) {
	scan := batchScan{from: from, end: end, level: cfg.Consumer.IsolationLevel, aborted: make(map[int64]bool)}
	size := int32(probeFetchMin)
	at := from
	for at < end {
		block, version, err := probeFetch(client, cfg, topic, id, at, size)
		if err != nil {
			return false, err
		}
		found, next := scan.block(block, at)
		if found {
			return true, nil
		}
		if next > at {
			at = next
			size = min(size*2, probeFetchMax)
			continue
		}
		// No whole batch: the partition holds nothing from at on (for read_committed,
		// nothing decided), or the first batch did not fit.
		limit := block.HighWaterMarkOffset
		if scan.level == sarama.ReadCommitted && version >= 4 {
			limit = block.LastStableOffset
		}
		if at >= limit {
			return false, nil
		}
		if size < probeFetchMax {
			size = probeFetchMax
			continue
		}
		return false, fmt.Errorf("fetching from offset %d: no whole record batch in %d bytes, below offset %d", at, size, limit)
	}
	return false, nil
}

// probeFetch fetches up to size bytes of the partition from offset at, from its
// leader, and returns the partition's block of the answer and the request's version.
func probeFetch(client sarama.Client, cfg *sarama.Config, topic string, id int32, at int64, size int32) (*sarama.FetchResponseBlock, int16, error) {
	leader, err := client.Leader(topic, id)
	if err != nil {
		return nil, 0, fmt.Errorf("finding the leader: %w", err)
	}
	req := probeFetchRequest(cfg.Version, cfg.Consumer.IsolationLevel)
	req.AddBlock(topic, id, at, size, -1)
	resp, err := leader.Fetch(req)
	if err != nil {
		_ = leader.Close()
		return nil, 0, fmt.Errorf("fetching from offset %d: %w", at, err)
	}
	block := resp.GetBlock(topic, id)
	if block == nil {
		return nil, 0, fmt.Errorf("fetching from offset %d: %w", at, sarama.ErrIncompleteResponse)
	}
	if !errors.Is(block.Err, sarama.ErrNoError) {
		if errors.Is(block.Err, sarama.ErrNotLeaderForPartition) || errors.Is(block.Err, sarama.ErrUnknownTopicOrPartition) {
			_ = client.RefreshMetadata(topic)
		}
		return nil, 0, fmt.Errorf("fetching from offset %d: %w", at, block.Err)
	}
	return block, req.Version, nil
}

// batchScan reads fetched record batches for readableBelow, as a consumer at level
// would be handed their records.
type batchScan struct {
	from, end int64
	level     sarama.IsolationLevel
	// aborted holds the producers whose aborted transaction the batches reached:
	// their transactional batches are skipped until their marker.
	aborted map[int64]bool
}

// block reports whether block, fetched from offset at, holds a record to read from
// from up to end, and the offset after its last whole batch (at when it has none).
func (s *batchScan) block(block *sarama.FetchResponseBlock, at int64) (found bool, next int64) {
	// The aborted transactions that overlap what the broker sent, in offset order:
	// each counts from its first offset on.
	txns := append([]*sarama.AbortedTransaction(nil), block.AbortedTransactions...)
	sort.Slice(txns, func(i, j int) bool { return txns[i].FirstOffset < txns[j].FirstOffset })
	next = at
	for _, records := range block.RecordsSet {
		if b := records.RecordBatch; b != nil {
			if b.PartialTrailingRecord {
				break
			}
			for len(txns) > 0 && txns[0].FirstOffset <= b.LastOffset() {
				s.aborted[txns[0].ProducerID] = true
				txns = txns[1:]
			}
			if s.recordBatch(b) {
				return true, next
			}
			next = max(next, b.LastOffset()+1)
			continue
		}
		if set := records.MsgSet; set != nil {
			found, after := s.messageSet(set)
			if found {
				return true, next
			}
			next = max(next, after)
		}
	}
	return false, next
}

// recordBatch reports whether b has a record to read in [from, end).
func (s *batchScan) recordBatch(b *sarama.RecordBatch) bool {
	switch {
	case b.Control:
		// A producer's marker ends its transaction, aborted or not.
		delete(s.aborted, b.ProducerID)
		return false
	case s.level == sarama.ReadCommitted && b.IsTransactional && s.aborted[b.ProducerID]:
		return false
	}
	for _, r := range b.Records {
		if o := b.FirstOffset + r.OffsetDelta; o >= s.from && o < s.end {
			return true
		}
	}
	return false
}

// messageSet reports whether set, of the message formats before Kafka 0.11, which
// know no transactions, has a message in [from, end), and the offset after its last.
// Offsets are as sarama's consumer reckons them.
func (s *batchScan) messageSet(set *sarama.MessageSet) (found bool, next int64) {
	for _, mb := range set.Messages {
		if mb.Msg == nil {
			continue
		}
		inner := mb.Messages()
		for _, m := range inner {
			o := m.Offset
			if m.Msg != nil && m.Msg.Version >= 1 {
				o += mb.Offset - inner[len(inner)-1].Offset
			}
			if o >= s.from && o < s.end {
				return true, next
			}
		}
		next = max(next, mb.Offset+1)
	}
	return false, next
}

// fetchVersions are the Fetch versions sarama's consumer sends to brokers of a Kafka
// version and newer, newest first.
var fetchVersions = []struct {
	kafka sarama.KafkaVersion
	fetch int16
}{
	{sarama.V2_3_0_0, 11}, {sarama.V2_1_0_0, 10}, {sarama.V2_0_0_0, 8}, {sarama.V1_1_0_0, 7},
	{sarama.V1_0_0_0, 6}, {sarama.V0_11_0_0, 5}, {sarama.V0_10_1_0, 3}, {sarama.V0_10_0_0, 2}, {sarama.V0_9_0_0, 1},
}

// probeFetchRequest is a fetch that answers at once, at the version sarama's consumer
// would send to brokers of version v.
func probeFetchRequest(v sarama.KafkaVersion, level sarama.IsolationLevel) *sarama.FetchRequest {
	req := &sarama.FetchRequest{MaxWaitTime: 0, MinBytes: 0}
	for _, fv := range fetchVersions {
		if v.IsAtLeast(fv.kafka) {
			req.Version = fv.fetch
			break
		}
	}
	if req.Version >= 3 {
		req.MaxBytes = probeFetchMax
	}
	if req.Version >= 4 {
		req.Isolation = level
	}
	if req.Version >= 7 {
		// No fetch session (KIP-227): a session per probe would only take a slot
		// on the broker.
		req.SessionID = 0
		req.SessionEpoch = -1
	}
	return req
}

// stableEnds gives the stats the end each held partition's lag counts to: the high
// watermark of the claim's last fetch with read_uncommitted, as sarama keeps it, and
// with read_committed the last stable offset, which sarama does not keep: the
// records of an open transaction, counted in the high watermark, are not readable
// yet. It asks the leaders once per stats interval, one request each.
type stableEnds struct {
	k *KafkaConsumer
	// client asks the leaders; the group's own client is not reachable. Made on
	// first need, so that read_uncommitted opens no second connection.
	client sarama.Client
	// failing says that the last ask failed: the next failures are logged at D!, so
	// that a broker away for an hour logs one W!, not one per interval.
	failing bool
}

// endOf returns the end of each partition of held, or -1 where it is unknown (the
// brokers did not answer): lag is left out then rather than counted to the high
// watermark.
func (s *stableEnds) endOf(held []*partition) func(*partition) int64 {
	hwm := func(p *partition) int64 { return p.claim.HighWaterMarkOffset() }
	// With no claim there is no lag to report; with one, the session started, so
	// the configuration and its isolation level are final.
	if len(held) == 0 || s.k.config.Consumer.IsolationLevel != sarama.ReadCommitted {
		return hwm
	}
	ends, err := s.ask(held)
	if err != nil {
		if !s.failing {
			s.k.Log.Warnf("lag: asking the brokers for the last stable offsets: %v; lag is left out where they gave none", err)
		} else {
			s.k.Log.Debugf("lag: asking the brokers for the last stable offsets: %v", err)
		}
		s.failing = true
	} else if s.failing {
		s.k.Log.Infof("lag: the brokers give the last stable offsets again")
		s.failing = false
	}
	return func(p *partition) int64 {
		if end, ok := ends[topicPartition{p.topic, p.id}]; ok {
			return end
		}
		return -1
	}
}

func (s *stableEnds) ask(held []*partition) (map[topicPartition]int64, error) {
	if s.client == nil {
		client, err := sarama.NewClient(s.k.Brokers, s.k.config)
		if err != nil {
			return nil, fmt.Errorf("connecting: %w", s.k.explainConnect(err))
		}
		s.client = client
	}
	parts := make([]topicPartition, len(held))
	for i, p := range held {
		parts[i] = topicPartition{p.topic, p.id}
	}
	return listEnds(s.client, sarama.ReadCommitted, parts)
}

func (s *stableEnds) close() {
	if s.client != nil {
		s.client.Close()
	}
}
