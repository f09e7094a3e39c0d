package kafka_consumer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/IBM/sarama"
)

// handler is the sarama.ConsumerGroupHandler of one session; sarama calls ConsumeClaim
// for each partition of the session in its own goroutine, so partitions are parsed in
// parallel.
type handler struct {
	k *KafkaConsumer
}

// Setup counts the rebalance that started the session.
func (h *handler) Setup(sess sarama.ConsumerGroupSession) error {
	h.k.stats.rebalances.Add(1)
	h.k.Log.Debugf("session of generation %d, member %q: claims %v", sess.GenerationID(), sess.MemberID(), sess.Claims())
	return nil
}

// Cleanup runs after every ConsumeClaim returned, each having flushed and marked what
// it finished; sarama then commits the marks.
func (h *handler) Cleanup(sarama.ConsumerGroupSession) error { return nil }

// localBatch is how much line protocol a partition gathers before handing it to the
// shared writer, so that the writer's lock is taken once per batch, not per message.
const localBatch = 16 << 10

// ConsumeClaim processes one partition until the session ends (a rebalance or Stop)
// or the writer fails. Before it returns, everything it read is flushed and marked,
// except a message whose dead-letter copy could not be stored: that one and those
// after it are left to the partition's next owner.
func (h *handler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	k := h.k
	p := &partition{
		topic:   claim.Topic(),
		id:      claim.Partition(),
		session: sess,
		claim:   claim,
		counts:  k.stats.counters(claim.Topic(), claim.Partition()),
		log:     k.Log,
		window:  k.window,
	}
	if k.testMode {
		p.session = nil
	}
	p.fetched = k.fetch.claim(p.topic, p.id)
	defer k.fetch.release(p.fetched)
	pr := k.progressOf(p.topic, p.id)
	pr.claim(p, p.session)
	defer pr.release(p.session)
	k.stats.claimed(p)
	defer k.stats.released(p)

	dec, err := k.newDecoder()
	if err != nil {
		return err
	}
	return newClaimLoop(k, p, dec, claim.Messages()).run(sess.Context())
}

func newClaimLoop(k *KafkaConsumer, p *partition, dec *decoder, msgs <-chan *sarama.ConsumerMessage) *claimLoop {
	return &claimLoop{k: k, p: p, dec: dec, msgs: msgs, buf: make([]byte, 0, localBatch+localBatch/4)}
}

// run reads the partition's messages until ctx ends or msgs closes.
func (c *claimLoop) run(ctx context.Context) error {
	c.done = ctx.Done()
	p, msgs := c.p, c.msgs
	defer c.setBacklogged(false)
	for {
		msg, ok := c.receive()
		if !ok {
			return c.finish()
		}
		p.fetched.took(msg, len(msgs) == 0)
		if msg.Offset < p.resumeAt && c.handedOut(msg) {
			continue
		}
		if open, err := c.takeSlot(ctx); !open {
			return err
		}
		if p.stopped() {
			// A batch of the partition was given up (acker.giveUpLocked): nothing more
			// is read, so that no offset past it is committed, while the session goes
			// on for the other partitions.
			c.release()
			if err := c.finish(); err != nil {
				return err
			}
			<-c.done
			return nil
		}
		if err := p.offsets.Add(msg.Offset, msg.Timestamp); err != nil {
			c.release()
			return fmt.Errorf("topic %q partition %d: %w", p.topic, p.id, err)
		}
		if !c.decode(ctx, msg) {
			return c.finish()
		}
		// Hand over when the batch is big, or when no message is waiting: then the
		// stream is idle and the writer's timer takes it to stdout promptly.
		c.setBacklogged(len(msgs) > 0)
		if len(c.buf) >= localBatch || len(msgs) == 0 {
			if err := c.push(); err != nil {
				return err
			}
		}
	}
}

// claimLoop reads one claim of a partition: it decodes each message, logs and
// dead-letters those that do not parse, and hands the lines to the writer in batches
// with their acknowledgements. buf, acks and lines are what was read since the last
// batch.
type claimLoop struct {
	k    *KafkaConsumer
	p    *partition
	dec  *decoder
	msgs <-chan *sarama.ConsumerMessage
	done <-chan struct{}

	buf   []byte
	acks  []ack
	lines int64 // in buf
	// backlogged: messages wait in msgs. The writer's markers say when no partition
	// has any, so that the output writes what it holds rather than wait for more.
	backlogged bool
}

// receive returns the next message; false once ctx is done or msgs is closed.
func (c *claimLoop) receive() (*sarama.ConsumerMessage, bool) {
	// While messages are waiting, take the next one with a plain receive after a check
	// of done that takes no lock; a select over both channels, which locks both, is
	// only needed to wait. Per message, that select cost more than anything here but
	// parsing.
	select {
	case <-c.done:
		return nil, false
	default:
	}
	select {
	case msg, ok := <-c.msgs:
		return msg, ok
	default:
	}
	c.p.waiting.Store(true)
	defer c.p.waiting.Store(false)
	select {
	case <-c.done:
		return nil, false
	case msg, ok := <-c.msgs:
		return msg, ok
	}
}

// takeSlot waits for a max_undelivered_messages slot; with the window closed, it
// writes out what is pending, since it is what frees slots, and says that nothing
// more comes until it is done. false: the loop ends, with err.
func (c *claimLoop) takeSlot(ctx context.Context) (open bool, err error) {
	if c.k.window.tryTake(c.p.takeUnheld()) {
		return true, nil
	}
	if err := c.push(); err != nil {
		return false, err
	}
	if err := c.k.writer.FlushWaiting(); err != nil {
		return false, err
	}
	if !c.k.window.take(ctx) {
		return false, c.finish()
	}
	return true, nil
}

// decode adds msg's lines to the batch, and its acknowledgement. false: a poison
// message could not be handled, and the loop ends.
func (c *claimLoop) decode(ctx context.Context, msg *sarama.ConsumerMessage) bool {
	k, p := c.k, c.p
	p.counts.messages.Add(1)
	p.counts.bytes.Add(int64(len(msg.Value)))
	before := len(c.buf)
	buf, n, perr := c.dec.decodeLines(c.buf, msg)
	c.buf = buf
	c.lines += int64(n)
	p.hold(msg.Offset, len(c.buf)-before)
	if errors.Is(perr, errNoMetrics) {
		c.noMetrics(msg, perr)
	} else if perr != nil {
		if err := c.poison(ctx, msg, perr); err != nil {
			// Not handled: leave it (and what follows) to the next claim, of this
			// process or another.
			k.Log.Error(err)
			if err := p.offsets.Abandon(msg.Offset); err != nil {
				k.Log.Errorf("topic %q partition %d: %v", p.topic, p.id, err)
			}
			return false
		}
	}
	c.acks = append(c.acks, ack{part: p, offset: msg.Offset})
	return true
}

// push hands the batch to the writer.
func (c *claimLoop) push() error {
	if len(c.buf) == 0 && len(c.acks) == 0 {
		return nil
	}
	c.k.window.hold(c.p.takeUnheld())
	err := c.k.writer.Write(c.buf, c.lines, c.acks)
	c.buf, c.acks, c.lines = c.buf[:0], c.acks[:0], 0
	return err
}

// finish hands over what is gathered and flushes, so that every message read (and
// every earlier one) is marked before the claim ends.
func (c *claimLoop) finish() error {
	if err := c.push(); err != nil {
		return err
	}
	return c.k.writer.Flush()
}

func (c *claimLoop) setBacklogged(waiting bool) {
	if waiting == c.backlogged {
		return
	}
	c.backlogged = waiting
	if waiting {
		c.k.backlogged.Add(1)
	} else {
		c.k.backlogged.Add(-1)
	}
}

// handedOut reports whether an earlier claim of this process handed msg out, so that
// this one skips it: it is done, or held until the output confirms it. Offsets that
// start again below what was handed out (the topic was created again) start the
// partition's progress anew.
func (c *claimLoop) handedOut(msg *sarama.ConsumerMessage) bool {
	k, p := c.k, c.p
	if p.claim != nil && p.claim.HighWaterMarkOffset() < p.resumeAt {
		k.Log.Warnf("topic %q partition %d: its high watermark %d is below offset %d, which this process read "+
			"before (was the topic deleted and created again?); reading from offset %d",
			p.topic, p.id, p.claim.HighWaterMarkOffset(), p.resumeAt, msg.Offset)
		p.progress.restart(p)
		return false
	}
	p.counts.skipped.Add(1)
	return true
}

// poison handles a message that is too long or does not parse: it is logged (rate
// limited), counted and, with dead_letter_topic set, copied there. An error means the
// copy failed and the message must not be marked.
func (c *claimLoop) poison(ctx context.Context, msg *sarama.ConsumerMessage, cause error) error {
	k, p := c.k, c.p
	p.counts.parseErrors.Add(1)
	if c.mayLog() {
		dest := "skipped"
		if k.deadLetter != nil {
			dest = fmt.Sprintf("sent to %q", k.DeadLetterTopic)
		}
		k.Log.Errorf("topic %q partition %d offset %d: %v (message %s)", msg.Topic, msg.Partition, msg.Offset, cause, dest)
	}
	if k.deadLetter == nil {
		return nil
	}
	if err := k.deadLetter.send(ctx, msg, cause, k.Log); err != nil {
		c.release()
		return err
	}
	p.counts.deadLettered.Add(1)
	return nil
}

// noMetrics counts and logs (rate limited, with the poison messages) a message that
// gave nothing to write. It is marked like any other: there is nothing to keep.
func (c *claimLoop) noMetrics(msg *sarama.ConsumerMessage, cause error) {
	k, p := c.k, c.p
	p.counts.noMetrics.Add(1)
	if c.mayLog() {
		k.Log.Warnf("topic %q partition %d offset %d: %v", msg.Topic, msg.Partition, msg.Offset, cause)
	}
}

// mayLog reports whether a poison message or one without metrics may be logged now
// (poisonLog), having said first how many were not since the last one that was.
func (c *claimLoop) mayLog() bool {
	k := c.k
	if !k.poisonLog.Allow(time.Now()) {
		return false
	}
	if suppressed := k.poisonLog.TakeSuppressed(); suppressed > 0 {
		k.Log.Errorf("%d more messages failed to parse or gave no metrics and were not logged", suppressed)
	}
	return true
}

// release frees the slot of a message that is given up before it reached the writer.
func (c *claimLoop) release() { c.k.window.give(1) }
