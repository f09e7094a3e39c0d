package kafka_consumer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/IBM/sarama"

	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/internal/offsets"
)

// Sample reads up to n messages and writes their metrics to Out, like telegraf
// --test: it starts where the consumer group would (its committed offsets, or offset
// for partitions without one) and reads at most up to the end of each partition as it
// is when Sample starts (its high watermark, or with read_committed its last stable
// offset), or until ctx ends. A partition is done once nothing is left to read before
// its end, though offsets remain: the last ones can be transaction markers, or
// records of aborted transactions that read_committed skips. It does not join the
// consumer group, so running consumers are not rebalanced, and it marks and commits
// nothing. It returns how many messages it read. Init must have been called.
func (k *KafkaConsumer) Sample(ctx context.Context, n int) (int, error) {
	k.testMode = true
	k.window = newWindow(max(n, 1), int64(k.MaxUndeliveredBytes))
	k.writer = newWriter(k.Out, int(k.OutputBufferSize), time.Duration(k.OutputFlushInterval))
	k.writer.free = k.window.give
	k.stats = newStats(k.ConsumerGroup)
	k.poisonLog = newRateLimiter(10, time.Second)
	defer k.writer.Close()

	if err := k.chooseVersion(); err != nil {
		return 0, err
	}
	if err := k.refreshTopics(); err != nil {
		return 0, fmt.Errorf("resolving topic_regexps: %w", k.explainConnect(err))
	}
	// At most n messages are read: sarama fetching channel_buffer_size of them ahead
	// per partition would only take memory.
	cfg := *k.config
	cfg.ChannelBufferSize = max(min(cfg.ChannelBufferSize, n), 1)
	client, err := sarama.NewClient(k.Brokers, &cfg)
	if err != nil {
		return 0, fmt.Errorf("connecting: %w", k.explainConnect(err))
	}
	defer client.Close()
	starts, ends, err := k.sampleRanges(client)
	if err != nil {
		return 0, err
	}
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		return 0, fmt.Errorf("creating consumer: %w", err)
	}
	defer consumer.Close()

	type result struct {
		msg *sarama.ConsumerMessage
		err error
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	results := make(chan result)
	open := 0
	for tp, start := range starts {
		if start >= ends[tp] {
			continue
		}
		pc, err := consumer.ConsumePartition(tp.topic, tp.id, start)
		if err != nil {
			return 0, fmt.Errorf("topic %q partition %d: %w", tp.topic, tp.id, err)
		}
		open++
		go func(end int64) {
			defer pc.AsyncClose()
			send := func(r result) bool {
				select {
				case results <- r:
					return true
				case <-ctx.Done():
					return false
				}
			}
			// next is the first offset not handed out yet; probe says whether
			// readableBelow still answers for this partition.
			next, probe := start, true
			for {
				var m *sarama.ConsumerMessage
				select {
				case m = <-pc.Messages():
				case perr := <-pc.Errors():
					send(result{err: perr})
					return
				case <-ctx.Done():
					return
				default:
					// Nothing fetched waits. The last offsets before the end can
					// hold nothing to read (transaction markers, aborted records
					// with read_committed): unless a record is left below the end,
					// the partition is done.
					if probe {
						more, err := readableBelow(client, &cfg, tp.topic, tp.id, next, end)
						if err != nil {
							k.Log.Warnf("topic %q partition %d: telling whether offsets %d to %d hold records: %v; "+
								"reading until offset %d or the time is up", tp.topic, tp.id, next, end-1, err, end-1)
							probe = false
						} else if !more {
							send(result{})
							return
						}
					}
					select {
					case m = <-pc.Messages():
					case perr := <-pc.Errors():
						send(result{err: perr})
						return
					case <-ctx.Done():
						return
					}
				}
				if m == nil || m.Offset >= end {
					// Closed, or past the end after offsets that hold nothing to
					// read (records written since Sample started).
					send(result{})
					return
				}
				if !send(result{msg: m}) {
					return
				}
				if m.Offset >= end-1 {
					send(result{})
					return
				}
				next = m.Offset + 1
			}
		}(ends[tp])
	}

	decoders := make(map[topicPartition]*decoder)
	parts := make(map[topicPartition]*partition)
	read := 0
	for open > 0 && read < n {
		var r result
		select {
		case <-ctx.Done():
			return read, k.writer.Flush()
		case r = <-results:
		}
		switch {
		case r.err != nil:
			return read, r.err
		case r.msg == nil:
			open--
			continue
		}
		tp := topicPartition{r.msg.Topic, r.msg.Partition}
		dec, ok := decoders[tp]
		if !ok {
			if dec, err = k.newDecoder(); err != nil {
				return read, err
			}
			decoders[tp] = dec
			parts[tp] = &partition{topic: tp.topic, id: tp.id, offsets: offsets.New(),
				counts: k.stats.counters(tp.topic, tp.id), log: k.Log, window: k.window}
		}
		read++
		if err := k.consume1(ctx, parts[tp], dec, r.msg); err != nil {
			return read, err
		}
	}
	return read, k.writer.Flush()
}

// consume1 is one step of consume for Sample: it decodes and writes one message.
func (k *KafkaConsumer) consume1(ctx context.Context, p *partition, dec *decoder, msg *sarama.ConsumerMessage) error {
	msgs := make(chan *sarama.ConsumerMessage, 1)
	msgs <- msg
	close(msgs)
	return k.consume(ctx, p, dec, msgs)
}

// sampleRanges returns, per partition of the topics, where the consumer group would
// start and where the partition ends now for the isolation level (listEnds).
func (k *KafkaConsumer) sampleRanges(client sarama.Client) (starts, ends map[topicPartition]int64, err error) {
	topics := k.currentTopics()
	request := make(map[string][]int32, len(topics))
	for _, t := range topics {
		ids, err := client.Partitions(t)
		if err != nil {
			return nil, nil, fmt.Errorf("topic %q: %w", t, err)
		}
		request[t] = ids
	}
	coordinator, err := client.Coordinator(k.ConsumerGroup)
	if err != nil {
		return nil, nil, fmt.Errorf("finding the coordinator of consumer_group %q: %w", k.ConsumerGroup, err)
	}
	req := sarama.NewOffsetFetchRequest(k.config.Version, k.ConsumerGroup, request)
	resp, err := coordinator.FetchOffset(req)
	if err != nil {
		return nil, nil, fmt.Errorf("committed offsets of consumer_group %q: %w", k.ConsumerGroup, err)
	}
	if !errors.Is(resp.Err, sarama.ErrNoError) {
		return nil, nil, fmt.Errorf("committed offsets of consumer_group %q: %w", k.ConsumerGroup, resp.Err)
	}
	committed := resp.Blocks

	var parts []topicPartition
	for t, ids := range request {
		for _, id := range ids {
			parts = append(parts, topicPartition{t, id})
		}
	}
	level := client.Config().Consumer.IsolationLevel
	if ends, err = listEnds(client, level, parts); err != nil {
		// listEnds asked for the metadata it found stale: once more, as GetOffset
		// does.
		if ends, err = listEnds(client, level, parts); err != nil {
			return nil, nil, fmt.Errorf("where the partitions end: %w", err)
		}
	}
	starts = make(map[topicPartition]int64)
	for t, ids := range request {
		for _, id := range ids {
			tp := topicPartition{t, id}
			start := int64(-1)
			if b := committed[t][id]; b != nil && b.Offset >= 0 {
				start = b.Offset
			}
			if start < 0 {
				if start, err = client.GetOffset(t, id, k.config.Consumer.Offsets.Initial); err != nil {
					return nil, nil, fmt.Errorf("topic %q partition %d: %w", t, id, err)
				}
			}
			starts[tp] = start
		}
	}
	return starts, ends, nil
}
