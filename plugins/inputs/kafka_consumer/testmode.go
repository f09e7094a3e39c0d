package kafka_consumer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/IBM/sarama"

	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/internal/lograte"
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
	k.startSample(n)
	defer k.writer.Close()
	if err := k.chooseVersion(); err != nil {
		return 0, err
	}
	if err := k.topics.refresh(k.Brokers, k.config); err != nil {
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
	run := &sampleRun{k: k, client: client, cfg: &cfg}
	starts, ends, err := run.ranges()
	if err != nil {
		return 0, err
	}
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		return 0, fmt.Errorf("creating consumer: %w", err)
	}
	defer consumer.Close()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	results := make(chan sampled)
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
		s := &partitionSample{run: run, tp: tp, pc: pc, next: start, end: ends[tp], results: results}
		go s.read(ctx)
	}
	return run.write(ctx, results, open, n)
}

// sampleRun is one call of Sample, once connected.
type sampleRun struct {
	k      *KafkaConsumer
	client sarama.Client
	cfg    *sarama.Config // the plugin's, with a smaller channel_buffer_size
}

// startSample sets up what Sample writes with: a window of n messages, the writer,
// the stats it counts in, and no consumer group.
func (k *KafkaConsumer) startSample(n int) {
	k.testMode = true
	k.window = newWindow(max(n, 1), int64(k.MaxUndeliveredBytes))
	k.writer = newWriter(k.Out, int(k.OutputBufferSize), time.Duration(k.OutputFlushInterval))
	k.writer.free = k.window.give
	k.stats = newStats(k.ConsumerGroup)
	k.poisonLog = lograte.New(10, time.Second)
}

// write decodes and writes what open partitions send until each is done, n messages
// are read, or ctx ends, and returns how many were read.
func (run *sampleRun) write(ctx context.Context, results <-chan sampled, open, n int) (int, error) {
	k := run.k
	decoders := make(map[topicPartition]*decoder)
	parts := make(map[topicPartition]*partition)
	read := 0
	for open > 0 && read < n {
		var r sampled
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
			var err error
			if dec, err = k.newDecoder(); err != nil {
				return read, err
			}
			decoders[tp] = dec
			parts[tp] = &partition{topic: tp.topic, id: tp.id, offsets: offsets.New(),
				counts: k.stats.counters(tp.topic, tp.id), log: k.Log, window: k.window}
		}
		read++
		if err := consumeOne(ctx, k, parts[tp], dec, r.msg); err != nil {
			return read, err
		}
	}
	return read, k.writer.Flush()
}

// sampled is what a partitionSample sends: a message, an error, or (neither) the
// end of its partition.
type sampled struct {
	msg *sarama.ConsumerMessage
	err error
}

// partitionSample reads one partition for Sample, from next until end.
type partitionSample struct {
	run     *sampleRun
	tp      topicPartition
	pc      sarama.PartitionConsumer
	next    int64 // the first offset not handed out yet
	end     int64
	noProbe bool // readableBelow failed for this partition: read until end-1 or the time is up
	results chan<- sampled
}

func (s *partitionSample) read(ctx context.Context) {
	defer s.pc.AsyncClose()
	for {
		m, done, err := s.fetch(ctx)
		switch {
		case ctx.Err() != nil:
			return // Sample returns without waiting for this partition
		case err != nil:
			s.send(ctx, sampled{err: err})
			return
		case done, m == nil, m.Offset >= s.end:
			// Nothing left to read, closed, or past the end after offsets that hold
			// nothing to read (records written since Sample started).
			s.send(ctx, sampled{})
			return
		}
		if !s.send(ctx, sampled{msg: m}) {
			return
		}
		if m.Offset >= s.end-1 {
			s.send(ctx, sampled{})
			return
		}
		s.next = m.Offset + 1
	}
}

// fetch returns the next message; done says that nothing is left to read before the
// end, though offsets remain.
func (s *partitionSample) fetch(ctx context.Context) (m *sarama.ConsumerMessage, done bool, err error) {
	// Nothing fetched waits. The last offsets before the end can hold nothing to read
	// (transaction markers, aborted records with read_committed): unless a record is
	// left below the end, the partition is done.
	if !s.noProbe && len(s.pc.Messages()) == 0 && len(s.pc.Errors()) == 0 && ctx.Err() == nil {
		more, err := readableBelow(s.run.client, s.run.cfg, s.tp.topic, s.tp.id, s.next, s.end)
		if err != nil {
			s.run.k.Log.Warnf("topic %q partition %d: telling whether offsets %d to %d hold records: %v; "+
				"reading until offset %d or the time is up", s.tp.topic, s.tp.id, s.next, s.end-1, err, s.end-1)
			s.noProbe = true
		} else if !more {
			return nil, true, nil
		}
	}
	select {
	case m = <-s.pc.Messages():
		return m, false, nil
	case perr := <-s.pc.Errors():
		return nil, false, perr
	case <-ctx.Done():
		return nil, false, ctx.Err()
	}
}

func (s *partitionSample) send(ctx context.Context, r sampled) bool {
	select {
	case s.results <- r:
		return true
	case <-ctx.Done():
		return false
	}
}

// consumeOne is one step of a claim's loop for Sample: it decodes and writes one
// message.
func consumeOne(ctx context.Context, k *KafkaConsumer, p *partition, dec *decoder, msg *sarama.ConsumerMessage) error {
	msgs := make(chan *sarama.ConsumerMessage, 1)
	msgs <- msg
	close(msgs)
	return newClaimLoop(k, p, dec, msgs).run(ctx)
}

// ranges returns, per partition of the topics, where the consumer group would
// start and where the partition ends now for the isolation level (listEnds).
func (run *sampleRun) ranges() (starts, ends map[topicPartition]int64, err error) {
	k, client := run.k, run.client
	topics := k.topics.names()
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
