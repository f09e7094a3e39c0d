package kafka_consumer

import (
	"sync"
	"sync/atomic"

	"github.com/IBM/sarama"
)

// fetchBudget bounds the bytes of the messages that sarama fetched and the claims
// have not taken yet. sarama fetches a partition again as long as its channel
// (channel_buffer_size messages) has room, whatever the messages weigh: 1024 messages
// of 1 MiB are a GiB per partition, waiting while the window is closed. So each
// message is counted as sarama hands it to its claim's channel (sarama calls
// OnConsume just before) and again as the claim takes it; a partition whose message
// finds the messages waiting in all channels over the limit is paused, so that no
// fetch asks for it, and its claim resumes it once they take at most three quarters
// of the limit, or its own channel is empty. What a paused partition still gets is
// the rest of the fetch response under way: about consumer_fetch_default, or one
// record batch when that is larger.
type fetchBudget struct {
	// countedFrom is the size from which messages are counted (smallMessage, but in
	// tests).
	countedFrom int64
	limit       int64
	resumeAt    int64
	waiting     atomic.Int64 // bytes of the messages counted in and not yet taken
	claims      sync.Map     // topicPartition -> *fetchClaim, the claims running now
	group       atomic.Value // pauser: the consumer group, once there is one
}

// pauser is the part of sarama.ConsumerGroup that stops and restarts fetching.
type pauser interface {
	Pause(partitions map[string][]int32)
	Resume(partitions map[string][]int32)
}

// fetchClaim is the count of one claim's channel.
type fetchClaim struct {
	budget *fetchBudget
	tp     topicPartition

	mu     sync.Mutex
	bytes  int64 // counted in and not yet taken; below 0 after a miscount, until corrected
	paused bool
	ended  bool
}

func newFetchBudget(limit int64) *fetchBudget {
	limit = max(limit, 1)
	return &fetchBudget{countedFrom: smallMessage, limit: limit, resumeAt: limit - limit/4}
}

// setGroup gives the budget the group whose partitions it pauses.
func (f *fetchBudget) setGroup(g pauser) {
	if f != nil {
		f.group.Store(&g)
	}
}

func (f *fetchBudget) pauser() pauser {
	if g, ok := f.group.Load().(*pauser); ok {
		return *g
	}
	return nil
}

// smallMessage is the size below which messages are not counted: a channel full of
// them weighs at most channel_buffer_size KiB (1 MiB by default), and counting costs
// two goroutines a shared lock per message, a good part of what the input spends on a
// small message.
const smallMessage = 1 << 10

// OnConsume is sarama's ConsumerInterceptor: msg is about to enter its claim's channel.
func (f *fetchBudget) OnConsume(msg *sarama.ConsumerMessage) {
	if messageBytes(msg) < f.countedFrom {
		return
	}
	v, ok := f.claims.Load(topicPartition{msg.Topic, msg.Partition})
	if !ok {
		return // not a claim of this plugin's (test mode), or one that ended
	}
	c := v.(*fetchClaim)
	n := messageBytes(msg)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ended {
		return
	}
	c.bytes += n
	if f.waiting.Add(n) > f.limit && !c.paused {
		if g := f.pauser(); g != nil {
			c.paused = true
			g.Pause(map[string][]int32{c.tp.topic: {c.tp.id}})
		}
	}
}

// claim starts counting the channel of a claim; release stops.
func (f *fetchBudget) claim(topic string, id int32) *fetchClaim {
	if f == nil {
		return nil
	}
	c := &fetchClaim{budget: f, tp: topicPartition{topic, id}}
	f.claims.Store(c.tp, c)
	return c
}

// release ends the count of a claim whose loop returned: what is left in its channel
// sarama drops.
func (f *fetchBudget) release(c *fetchClaim) {
	if c == nil {
		return
	}
	f.claims.CompareAndDelete(c.tp, c)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ended = true
	f.waiting.Add(-c.bytes)
	c.bytes = 0
}

// took is called by the claim's loop for each message it takes from the channel;
// empty says that no other message waits there. An empty channel holds nothing: the
// count starts again from zero then, which corrects what was miscounted (sarama hands
// a message to the interceptors twice when a claim was slow to take it, and one can be
// counted just before it enters the channel).
func (c *fetchClaim) took(msg *sarama.ConsumerMessage, empty bool) {
	if c == nil {
		return
	}
	f := c.budget
	n := messageBytes(msg)
	if n < f.countedFrom {
		if !empty {
			return
		}
		n = 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ended {
		return
	}
	if empty {
		n = c.bytes
	}
	c.bytes -= n
	waiting := f.waiting.Add(-n)
	if c.paused && (empty || waiting <= f.resumeAt) {
		c.paused = false
		if g := f.pauser(); g != nil {
			g.Resume(map[string][]int32{c.tp.topic: {c.tp.id}})
		}
	}
}

func messageBytes(msg *sarama.ConsumerMessage) int64 {
	return int64(len(msg.Key) + len(msg.Value))
}
