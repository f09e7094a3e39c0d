package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/IBM/sarama"

	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/testutil/kafkatest"
)

// preload writes n messages of w to its topic as fast as the broker takes them, and
// checks that the partitions hold exactly n, so that "all N counted" means something.
// It returns how long that took and the messages' average size.
func preload(ctx context.Context, addr string, w workload, n int, codec sarama.CompressionCodec) (time.Duration, float64, error) {
	topic := w.topic()
	cfg := kafkatest.NewConfig()
	cfg.Producer.RequiredAcks = sarama.WaitForLocal
	cfg.Producer.Compression = codec
	cfg.Producer.Partitioner = sarama.NewRoundRobinPartitioner
	cfg.Producer.Return.Successes = false
	cfg.Producer.Return.Errors = true
	// Large batches: the preload is not what is measured, only its result.
	cfg.Producer.Flush.Bytes = 512 << 10
	cfg.Producer.Flush.Frequency = 10 * time.Millisecond
	cfg.Producer.MaxMessageBytes = 1 << 20
	cfg.ChannelBufferSize = 16384
	p, err := sarama.NewAsyncProducer([]string{addr}, cfg)
	if err != nil {
		return 0, 0, fmt.Errorf("starting the producer: %w", err)
	}
	var (
		wg       sync.WaitGroup
		failed   int
		firstErr error
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for e := range p.Errors() {
			if failed == 0 {
				firstErr = e.Err
			}
			failed++
		}
	}()
	start := time.Now()
	var (
		buf   []byte
		bytes int
	)
	sent := 0
	for ; sent < n && ctx.Err() == nil; sent++ {
		buf = w.message(buf[:0], sent)
		bytes += len(buf)
		// The encoder keeps the slice until the batch is sent, so each message
		// gets its own copy.
		p.Input() <- &sarama.ProducerMessage{Topic: topic, Value: sarama.ByteEncoder(append([]byte(nil), buf...))}
		if sent%50000 == 0 {
			fmt.Printf("\rproducing %d / %d", sent, n)
		}
	}
	p.AsyncClose()
	wg.Wait()
	took := time.Since(start)
	fmt.Printf("\rproduced %d / %d in %v (%.0f msg/s)\n", sent-failed, n, took.Round(time.Millisecond),
		float64(sent-failed)/took.Seconds())
	avg := float64(bytes) / float64(max(sent, 1))
	if err := ctx.Err(); err != nil {
		return took, avg, err
	}
	if failed > 0 {
		return took, avg, fmt.Errorf("producing: %d of %d messages failed, first: %w", failed, n, firstErr)
	}
	hwm, err := kafkatest.HighWatermarks(addr, topic)
	if err != nil {
		return took, avg, err
	}
	var total int64
	for _, h := range hwm {
		total += h
	}
	if total != int64(n) {
		return took, avg, fmt.Errorf("topic %s holds %d messages, not %d (left over from an earlier run?)", topic, total, n)
	}
	return took, avg, nil
}

// consumeCeiling reads the whole topic with plain sarama partition consumers and
// throws the messages away: the rate no Kafka consumer on this machine can beat
// through sarama, without parsing, Telegraf or a sink.
func consumeCeiling(ctx context.Context, addr, topic string) (int64, time.Duration, error) {
	hwm, err := kafkatest.HighWatermarks(addr, topic)
	if err != nil {
		return 0, 0, err
	}
	cfg := kafkatest.NewConfig()
	cfg.Consumer.Return.Errors = true
	// Timed from connecting, as the input alone is timed from its start.
	start := time.Now()
	consumer, err := sarama.NewConsumer([]string{addr}, cfg)
	if err != nil {
		return 0, 0, fmt.Errorf("starting the consumer: %w", err)
	}
	defer consumer.Close()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		total int64
		errs  []error
	)
	for part, end := range hwm {
		pc, err := consumer.ConsumePartition(topic, part, sarama.OffsetOldest)
		if err != nil {
			return 0, 0, fmt.Errorf("consuming %s/%d: %w", topic, part, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer pc.AsyncClose()
			var n int64
			defer func() { mu.Lock(); total += n; mu.Unlock() }()
			for n < end {
				select {
				case m := <-pc.Messages():
					n++
					if m.Offset+1 >= end {
						return
					}
				case e := <-pc.Errors():
					mu.Lock()
					errs = append(errs, e)
					mu.Unlock()
					return
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	wg.Wait()
	took := time.Since(start)
	if len(errs) > 0 {
		return total, took, fmt.Errorf("consuming: %w", errors.Join(errs...))
	}
	return total, took, ctx.Err()
}
