package kafka_consumer

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/testutil/kafkatest"
)

// A member restarted within session_timeout under the same group_instance_id takes
// its place back: the broker (Kafka 2.3 and newer; the tests run 4.1) hands it the
// partitions it had in the generation it had, and the other member's session goes
// on. Without group_instance_id the same restart rebalances the other member (the
// leave, then the join), which shows that the checks below would see one.
func TestStaticMemberRestartKeepsTheGroupAsItIs(t *testing.T) {
	for _, static := range []bool{true, false} {
		name := "static"
		if !static {
			name = "dynamic"
		}
		t.Run(name, func(t *testing.T) {
			restartOneOfTwo(t, static)
		})
	}
}

func restartOneOfTwo(t *testing.T, static bool) {
	b := kafkatest.Shared(t)
	topic := kafkatest.UniqueName(t, "static")
	group := kafkatest.UniqueName(t, "g")
	const partitions = 4
	b.CreateTopic(t, topic, partitions)
	conf := func(id string) string {
		extra := []string{`data_format = "json"`, `session_timeout = "30s"`}
		if static {
			extra = append(extra, fmt.Sprintf("group_instance_id = %q", id))
		}
		return tableFor(b, topic, group, extra...)
	}
	produce := func(from, to int) {
		var values [][]byte
		for i := from; i < to; i++ {
			values = append(values, []byte(sensorLine(i)))
		}
		b.Produce(t, topic, values...)
	}

	first, firstSessions, _ := startRecorded(t, conf("member-a"), nil)
	waitFor(t, "the first member's session", func() bool { return firstSessions.count() > 0 })
	second, secondSessions, _ := startRecorded(t, conf("member-b"), nil)
	// Both in one generation, the partitions split between them.
	settled := func() bool {
		a, b := firstSessions.last(), secondSessions.last()
		return a.generation == b.generation && len(partitionsOf(a.claims, topic)) > 0 &&
			len(partitionsOf(b.claims, topic)) > 0 &&
			len(partitionsOf(a.claims, topic))+len(partitionsOf(b.claims, topic)) == partitions
	}
	waitFor(t, "both members in one generation", settled)
	produce(0, 200)
	waitFor(t, "the first 200 messages", func() bool {
		return len(countField(append(first.out.metrics(t), second.out.metrics(t)...), "visibility")) == 200
	})
	before := firstSessions.count()
	was := secondSessions.last()
	firstRebalances := first.k.stats.rebalances.Load()

	// Restart the second member as a new process would: same table, nothing kept.
	second.k.Stop()
	again, againSessions, _ := startRecorded(t, conf("member-b"), nil)
	produce(200, 400)

	if !static {
		// The leave, and the join, end the first member's session.
		waitFor(t, "the first member rebalanced", func() bool { return firstSessions.count() > before })
		waitFor(t, "a generation with both members", func() bool {
			a, b := firstSessions.last(), againSessions.last()
			return a.generation == b.generation && a.generation > was.generation
		})
		waitFor(t, "the rest of the messages", func() bool {
			seen := countField(append(append(first.out.metrics(t), second.out.metrics(t)...), again.out.metrics(t)...), "visibility")
			return len(seen) == 400
		})
		return
	}

	waitFor(t, "the restarted member's session", func() bool { return againSessions.count() > 0 })
	now := againSessions.last()
	require.Equal(t, was.generation, now.generation, "no new generation: the group did not rebalance")
	require.Equal(t, partitionsOf(was.claims, topic), partitionsOf(now.claims, topic), "the restarted member has its partitions back")
	require.NotEqual(t, was.member, now.member, "a new member id in the old one's place")
	waitFor(t, "the rest of the messages", func() bool {
		seen := countField(append(append(first.out.metrics(t), second.out.metrics(t)...), again.out.metrics(t)...), "visibility")
		return len(seen) == 400
	})
	// A rebalance reaches a member with its next heartbeat: give it one and more.
	time.Sleep(heartbeatInterval(30*time.Second) + time.Second)
	require.Equal(t, before, firstSessions.count(), "the first member's session did not end")
	require.Equal(t, firstRebalances, first.k.stats.rebalances.Load())
	require.Equal(t, was.generation, firstSessions.last().generation)

	// The restarted member went on from what its first run committed: no message
	// twice.
	for i, n := range countField(append(append(first.out.metrics(t), second.out.metrics(t)...), again.out.metrics(t)...), "visibility") {
		require.Equal(t, 1, n, "message %d", i)
	}
	first.k.Stop()
	again.k.Stop()
	require.Equal(t, nonEmpty(b.HighWatermarks(t, topic)), b.CommittedOffsets(t, group, topic))
}
