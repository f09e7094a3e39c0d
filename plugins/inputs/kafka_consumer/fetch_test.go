package kafka_consumer

import (
	"fmt"
	"sync"
	"testing"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"
)

// pauseRecorder stands for the consumer group: it records which partitions are paused.
type pauseRecorder struct {
	mu     sync.Mutex
	paused map[string]bool
	calls  int
}

func (r *pauseRecorder) set(parts map[string][]int32, paused bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.paused == nil {
		r.paused = make(map[string]bool)
	}
	for topic, ids := range parts {
		for _, id := range ids {
			r.paused[fmt.Sprintf("%s/%d", topic, id)] = paused
		}
	}
	r.calls++
}

func (r *pauseRecorder) Pause(parts map[string][]int32)  { r.set(parts, true) }
func (r *pauseRecorder) Resume(parts map[string][]int32) { r.set(parts, false) }

func (r *pauseRecorder) isPaused(tp string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.paused[tp]
}

func sized(topic string, id int32, n int) *sarama.ConsumerMessage {
	return &sarama.ConsumerMessage{Topic: topic, Partition: id, Value: make([]byte, n)}
}

// A partition whose message finds the channels over the budget is paused, and
// resumed once they hold at most three quarters of it.
func TestFetchBudgetPausesAndResumes(t *testing.T) {
	f := newFetchBudget(1000)
	f.countedFrom = 0
	group := &pauseRecorder{}
	f.setGroup(group)
	a, b := f.claim("t", 0), f.claim("t", 1)

	for range 4 {
		f.OnConsume(sized("t", 0, 200))
	}
	require.False(t, group.isPaused("t/0"), "800 bytes wait, under the budget")
	f.OnConsume(sized("t", 1, 300))
	require.True(t, group.isPaused("t/1"), "1100 bytes wait")
	require.False(t, group.isPaused("t/0"), "only the partition whose message went over")
	f.OnConsume(sized("t", 0, 200))
	require.True(t, group.isPaused("t/0"))
	calls := group.calls
	f.OnConsume(sized("t", 0, 200))
	require.Equal(t, calls, group.calls, "paused once")

	for range 3 {
		a.took(sized("t", 0, 200), false)
	}
	require.Equal(t, int64(900), f.waiting.Load())
	require.True(t, group.isPaused("t/0"), "not a quarter free yet")
	a.took(sized("t", 0, 200), false)
	require.False(t, group.isPaused("t/0"), "700 bytes wait: a quarter is free")
	require.True(t, group.isPaused("t/1"), "its own claim resumes a partition")

	// An empty channel resumes its partition, whatever the others hold.
	b.took(sized("t", 1, 300), true)
	require.False(t, group.isPaused("t/1"))
	require.Equal(t, int64(400), f.waiting.Load())
}

// An empty channel holds nothing: a miscount (a message handed to the interceptor
// twice) is forgotten there, and a claim that ends takes its count with it.
func TestFetchBudgetCorrectsMiscounts(t *testing.T) {
	f := newFetchBudget(1000)
	f.countedFrom = 0
	group := &pauseRecorder{}
	f.setGroup(group)
	a := f.claim("t", 0)
	m := sized("t", 0, 600)
	f.OnConsume(m)
	f.OnConsume(m) // sarama's retry after a slow claim counts it again
	require.True(t, group.isPaused("t/0"))
	a.took(m, true)
	require.Zero(t, f.waiting.Load())
	require.False(t, group.isPaused("t/0"))

	// m2 is counted just before it enters the channel, which the claim finds empty
	// as it takes m1: m2's count is forgotten, and m3 goes uncounted for a while.
	m1, m2, m3 := sized("t", 0, 100), sized("t", 0, 100), sized("t", 0, 100)
	f.OnConsume(m1)
	f.OnConsume(m2)
	a.took(m1, true)
	f.OnConsume(m3)
	a.took(m2, false)
	require.Zero(t, f.waiting.Load(), "m3 waits, uncounted")
	a.took(m3, true)
	require.Zero(t, f.waiting.Load(), "nothing waits")
	require.Zero(t, a.bytes)

	f.OnConsume(sized("t", 0, 400))
	f.OnConsume(sized("other", 0, 400)) // no claim of this plugin: not counted
	require.Equal(t, int64(400), f.waiting.Load())
	f.release(a)
	require.Zero(t, f.waiting.Load())
	f.OnConsume(sized("t", 0, 400))
	require.Zero(t, f.waiting.Load(), "after the claim ended")

	var none *fetchClaim
	none.took(m, true) // test mode: no count
}

// Messages under smallMessage are not counted: a channel of them weighs little, and
// counting each would cost more than it is worth.
func TestFetchBudgetLeavesSmallMessagesOut(t *testing.T) {
	f := newFetchBudget(4 * smallMessage)
	group := &pauseRecorder{}
	f.setGroup(group)
	a := f.claim("t", 0)
	for range 100 {
		f.OnConsume(sized("t", 0, smallMessage-1))
	}
	require.Zero(t, f.waiting.Load())
	require.False(t, group.isPaused("t/0"))
	big := sized("t", 0, 5*smallMessage)
	f.OnConsume(big)
	require.True(t, group.isPaused("t/0"), "a large message is counted")
	a.took(sized("t", 0, 10), false)
	require.True(t, group.isPaused("t/0"), "taking a small one changes nothing")
	a.took(big, true)
	require.False(t, group.isPaused("t/0"))
	require.Zero(t, f.waiting.Load())
}
