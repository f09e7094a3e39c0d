package kafka_consumer

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/IBM/sarama"

	"github.com/influxdata/telegraf"

	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/internal/lograte"
)

// reconnectDelay is Telegraf's wait after a failed Consume before the next.
const reconnectDelay = 5 * time.Second

// Start connects (unless connection_strategy = "defer") and consumes in the
// background until Stop. acc receives errors; metrics go to Out.
func (k *KafkaConsumer) Start(acc telegraf.Accumulator) error {
	k.acc = acc
	k.window = newWindow(k.MaxUndeliveredMessages, int64(k.MaxUndeliveredBytes))
	k.writer = newWriter(k.Out, int(k.OutputBufferSize), time.Duration(k.OutputFlushInterval))
	k.writer.free = k.window.give
	k.writer.idle = func() bool { return k.backlogged.Load() == 0 }
	k.stats = newStats(k.ConsumerGroup)
	k.poisonLog = lograte.New(10, time.Second)
	k.failed = make(chan struct{})

	ctx, cancel := context.WithCancel(context.Background())
	k.cancel = cancel
	if err := k.startAck(ctx); err != nil {
		cancel()
		return err
	}

	var group sarama.ConsumerGroup
	if !strings.EqualFold(k.ConnectionStrategy, "defer") {
		var err error
		if group, err = k.connect(); err != nil {
			cancel()
			k.stopAck()
			return err
		}
	}

	k.wg.Add(1)
	go func() {
		defer k.wg.Done()
		if group == nil {
			var err error
			if group, err = k.connect(); err != nil {
				acc.AddError(fmt.Errorf("create consumer async: %w", err))
				return
			}
		}
		k.run(ctx, group)
	}()

	if k.StatsInterval > 0 {
		k.wg.Add(1)
		go func() {
			defer k.wg.Done()
			k.reportStats(ctx)
		}()
	}
	return nil
}

// connect resolves the topics and creates the dead-letter producer and the consumer
// group.
func (k *KafkaConsumer) connect() (sarama.ConsumerGroup, error) {
	if err := k.chooseVersion(); err != nil {
		return nil, err
	}
	if err := k.topics.refresh(k.Brokers, k.config); err != nil {
		return nil, fmt.Errorf("resolving topic_regexps: %w", k.explainConnect(err))
	}
	if k.DeadLetterTopic != "" && !k.testMode {
		dl, err := newDeadLetter(k.Brokers, k.config, k.DeadLetterTopic)
		if err != nil {
			return nil, k.explainConnect(err)
		}
		k.deadLetter = dl
	}
	group, err := k.newConsumer(k.Brokers, k.ConsumerGroup, k.config)
	if err != nil {
		if k.deadLetter != nil {
			k.deadLetter.close()
			k.deadLetter = nil
		}
		return nil, fmt.Errorf("create consumer: %w", k.explainConnect(err))
	}
	return group, nil
}

// run consumes until ctx ends: one Consume call per session, as Telegraf does.
func (k *KafkaConsumer) run(ctx context.Context, group sarama.ConsumerGroup) {
	k.wg.Add(1)
	go func() {
		defer k.wg.Done()
		for err := range group.Errors() {
			if k.explainRefusal(err) {
				continue
			}
			k.acc.AddError(fmt.Errorf("channel: %w", k.explainConnect(err)))
		}
	}()
	if k.topics.discovers() && k.TopicRefreshInterval > 0 {
		k.wg.Add(1)
		go func() {
			defer k.wg.Done()
			k.watchTopics(ctx)
		}()
	}

	// Committing past the markers at the end of a partition must not depend on
	// stats or the stall watchdog being on.
	k.wg.Add(1)
	go func() {
		defer k.wg.Done()
		newIdleMarker(k).run(ctx)
	}()

	var stalls *stallWatch
	if k.StallTimeout > 0 {
		stalls = newStallWatch(k)
		defer stalls.close()
	}

	k.fetch.setGroup(group)
	h := &handler{k: k}
	for ctx.Err() == nil {
		// A change of the topic list ends the session, so that the next one
		// subscribes to the new list.
		sessCtx, endSession := context.WithCancel(ctx)
		go func() {
			select {
			case <-k.topics.changed:
				endSession()
			case <-sessCtx.Done():
			}
		}()
		// So does a stall, so that the next one fetches anew.
		watched := func() {}
		if stalls != nil {
			watched = stalls.watch(sessCtx, endSession)
		}
		err := group.Consume(sessCtx, k.topics.names(), h)
		endSession()
		watched()
		if werr := k.writer.Err(); werr != nil {
			k.acc.AddError(werr)
			k.failedOnce.Do(func() { close(k.failed) })
			break
		}
		if err != nil && !errors.Is(err, context.Canceled) {
			if !k.explainRefusal(err) {
				k.acc.AddError(fmt.Errorf("consume: %w", k.explainConnect(err)))
			}
			select {
			case <-ctx.Done():
			case <-time.After(reconnectDelay):
			}
		}
	}
	if err := group.Close(); err != nil {
		k.acc.AddError(fmt.Errorf("close: %w", err))
	}
}

// Stop ends the sessions, waits for every partition to flush and mark what it read,
// commits, and writes the last stats.
func (k *KafkaConsumer) Stop() {
	if k.stopped.Swap(true) || k.cancel == nil {
		return
	}
	k.cancel()
	k.wg.Wait()
	if k.deadLetter != nil {
		if err := k.deadLetter.close(); err != nil {
			k.acc.AddError(fmt.Errorf("closing dead-letter producer: %w", err))
		}
	}
	if err := k.writer.Close(); err != nil {
		k.acc.AddError(err)
	}
	k.stopAck()
}

// Failed is closed when consuming stopped for good because writing to Out failed;
// Stop must still be called.
func (k *KafkaConsumer) Failed() <-chan struct{} { return k.failed }

// Err returns the error that stopped consuming for good (stdout failed), if any.
func (k *KafkaConsumer) Err() error {
	if k.writer == nil {
		return nil
	}
	return k.writer.Err()
}

func (k *KafkaConsumer) watchTopics(ctx context.Context) {
	every(ctx, time.Duration(k.TopicRefreshInterval), func(time.Time) bool {
		if err := k.topics.refresh(k.Brokers, k.config); err != nil {
			k.acc.AddError(fmt.Errorf("refreshing topics: %w", k.explainConnect(err)))
		}
		return true
	})
}

func (k *KafkaConsumer) reportStats(ctx context.Context) {
	ends := &stableEnds{k: k}
	defer ends.close()
	every(ctx, time.Duration(k.StatsInterval), func(now time.Time) bool {
		k.writeStats(now, ends.endOf(k.stats.held()))
		if n := k.poisonLog.TakeSuppressed(); n > 0 {
			k.Log.Errorf("%d more messages failed to parse or gave no metrics and were not logged", n)
		}
		return true
	})
}

// every calls f each interval until ctx ends or f returns false.
func every(ctx context.Context, interval time.Duration, f func(now time.Time) bool) {
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-ticker.C:
			if !f(now) {
				return
			}
		}
	}
}

// writeStats writes a kafka_consumer_stats metric per partition, with lag counted to
// endOf's offset; they mark nothing.
func (k *KafkaConsumer) writeStats(now time.Time, endOf func(*partition) int64) {
	var (
		buf   []byte
		lines int64
	)
	for _, m := range k.stats.metrics(now, endOf) {
		var ok bool
		if buf, ok = appendMetric(buf, m); ok {
			lines++
		}
	}
	if err := k.writer.Write(buf, lines, nil); err != nil {
		k.acc.AddError(err)
	}
}
