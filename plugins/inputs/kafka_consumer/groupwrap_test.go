package kafka_consumer

import (
	"context"
	"slices"
	"sync"
	"testing"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"

	"github.com/influxdata/telegraf"
	"github.com/influxdata/telegraf/testutil"
)

// sessionRecord is what a member saw of one consumer-group session.
type sessionRecord struct {
	generation int32
	member     string
	claims     map[string][]int32
}

// sessionLog records each session a consumer's group starts, as the broker handed it
// out, so that a test can tell a rebalance (a new session, a new generation) from none.
// onClaim, when set, runs at the start of each claim, before the plugin sees it, with
// the session's number (from 1) and the group.
type sessionLog struct {
	mu       sync.Mutex
	sessions []sessionRecord
	onClaim  func(n int, group sarama.ConsumerGroup, claim sarama.ConsumerGroupClaim)
}

func (l *sessionLog) all() []sessionRecord {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.sessions)
}

func (l *sessionLog) count() int { return len(l.all()) }

// last returns the latest session, or a zero one before the first.
func (l *sessionLog) last() sessionRecord {
	all := l.all()
	if len(all) == 0 {
		return sessionRecord{generation: -1}
	}
	return all[len(all)-1]
}

// recordSessions wraps the consumer group k creates so that its sessions land in the
// returned log. It must be called after Init and before Start.
func recordSessions(k *KafkaConsumer) *sessionLog {
	l := &sessionLog{}
	create := k.newConsumer
	k.newConsumer = func(brokers []string, group string, cfg *sarama.Config) (sarama.ConsumerGroup, error) {
		g, err := create(brokers, group, cfg)
		if err != nil {
			return nil, err
		}
		return &recordingGroup{ConsumerGroup: g, log: l}, nil
	}
	return l
}

type recordingGroup struct {
	sarama.ConsumerGroup
	log *sessionLog
}

func (g *recordingGroup) Consume(ctx context.Context, topics []string, h sarama.ConsumerGroupHandler) error {
	return g.ConsumerGroup.Consume(ctx, topics, &recordingHandler{ConsumerGroupHandler: h, log: g.log, group: g.ConsumerGroup})
}

type recordingHandler struct {
	sarama.ConsumerGroupHandler
	log   *sessionLog
	group sarama.ConsumerGroup
	n     int // the session's number in the log, from 1
}

func (h *recordingHandler) Setup(sess sarama.ConsumerGroupSession) error {
	claims := make(map[string][]int32)
	for topic, ids := range sess.Claims() {
		claims[topic] = slices.Sorted(slices.Values(ids))
	}
	h.log.mu.Lock()
	h.log.sessions = append(h.log.sessions, sessionRecord{generation: sess.GenerationID(), member: sess.MemberID(), claims: claims})
	h.n = len(h.log.sessions)
	h.log.mu.Unlock()
	return h.ConsumerGroupHandler.Setup(sess)
}

func (h *recordingHandler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	h.log.mu.Lock()
	onClaim := h.log.onClaim
	h.log.mu.Unlock()
	if onClaim != nil {
		onClaim(h.n, h.group, claim)
	}
	return h.ConsumerGroupHandler.ConsumeClaim(sess, claim)
}

// captureLogger keeps the plugin's log lines. It reports the level of the other
// tests' logger, Debug, rather than CaptureLogger's Trace, which would make Init raise
// the level of the Kafka client's shared logger while other clients log through it.
type captureLogger struct {
	testutil.CaptureLogger
}

func (*captureLogger) Level() telegraf.LogLevel { return telegraf.Debug }

// startRecorded starts a plugin whose sessions are recorded and whose log is kept;
// onClaim, if not nil, becomes the log's.
func startRecorded(t testing.TB, conf string,
	onClaim func(n int, group sarama.ConsumerGroup, claim sarama.ConsumerGroupClaim),
) (*running, *sessionLog, *captureLogger) {
	t.Helper()
	log := &captureLogger{CaptureLogger: testutil.CaptureLogger{Name: "inputs.kafka_consumer"}}
	k := New()
	k.Log = log
	require.NoError(t, ConfigureString(k, conf))
	require.NoError(t, k.Init())
	sessions := recordSessions(k)
	sessions.onClaim = onClaim
	r := &running{k: k, out: &syncBuffer{}, acc: &testutil.Accumulator{}}
	k.Out = r.out
	require.NoError(t, k.Start(r.acc))
	t.Cleanup(k.Stop)
	return r, sessions, log
}

// partitionsOf lists the partitions of topic in claims.
func partitionsOf(claims map[string][]int32, topic string) []int32 {
	return slices.Clone(claims[topic])
}
