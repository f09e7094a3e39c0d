package kafka_consumer

import (
	"github.com/IBM/sarama"

	"github.com/influxdata/telegraf"

	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/internal/offsets"
)

// partition is one claim of a partition in one consumer-group session: the messages
// handed out and done, and where to mark them. A later claim of the same partition
// gets a new one.
type partition struct {
	topic   string
	id      int32
	session sarama.ConsumerGroupSession // nil in test mode: nothing is marked
	claim   sarama.ConsumerGroupClaim   // nil in test mode
	offsets *offsets.Partition
	counts  *partitionCounts
	log     telegraf.Logger
	// unmarked says that done advanced the mark since markSession last handed it to
	// the session. Only the writer, holding its lock, calls done and markSession.
	unmarked bool
}

// done is called by the writer once the message at offset is written (or had nothing
// to write). It advances the mark to the offset that follows the longest done prefix;
// markSession then hands it to the session.
func (p *partition) done(offset int64) {
	mark, advanced, err := p.offsets.Done(offset)
	if err != nil {
		// A bug, not bad input: say so instead of marking a wrong offset.
		p.log.Errorf("topic %q partition %d: %v", p.topic, p.id, err)
		return
	}
	if advanced {
		p.counts.marked.Store(mark)
		p.unmarked = true
	}
}

// markSession marks the offset done reached in the session: once per write rather
// than once per message, since each MarkOffset takes sarama's locks.
func (p *partition) markSession() {
	if !p.unmarked {
		return
	}
	p.unmarked = false
	if p.session != nil {
		p.session.MarkOffset(p.topic, p.id, p.counts.marked.Load(), "")
	}
}

// lag is the high watermark of the last fetch minus the marked offset, or minus the
// offset the claim started at if nothing is marked yet.
func (p *partition) lag() (int64, bool) {
	if p.claim == nil {
		return 0, false
	}
	hwm := p.claim.HighWaterMarkOffset()
	mark := p.offsets.Mark()
	if mark < 0 {
		mark = p.claim.InitialOffset()
	}
	if hwm <= 0 || mark < 0 {
		return 0, hwm == 0
	}
	return max(hwm-mark, 0), true
}
