package kafkatest

import (
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"hash"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/xdg/scram"
)

// How long the helpers below wait for the broker before failing the test.
const (
	topicTimeout = 30 * time.Second
	readTimeout  = 30 * time.Second
)

// NewConfig returns a sarama configuration for the harness's broker: the
// matching protocol version and a client id that shows up in its log.
func NewConfig() *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.Version = SaramaVersion
	cfg.ClientID = "kafkatest"
	return cfg
}

func newClient(addr string, cfg *sarama.Config) (sarama.Client, error) {
	return sarama.NewClient([]string{addr}, cfg)
}

// NewClient returns a sarama client connected to the PLAINTEXT listener,
// closed when the test ends.
func (b *Broker) NewClient(t testing.TB) sarama.Client {
	t.Helper()
	client, err := newClient(b.addr, NewConfig())
	if err != nil {
		t.Fatalf("kafkatest: connecting to %s: %v", b.addr, err)
	}
	t.Cleanup(func() { client.Close() })
	return client
}

// NewClusterAdmin returns a sarama admin client for the PLAINTEXT listener,
// closed when the test ends.
func (b *Broker) NewClusterAdmin(t testing.TB) sarama.ClusterAdmin {
	t.Helper()
	admin, err := sarama.NewClusterAdmin([]string{b.addr}, NewConfig())
	if err != nil {
		t.Fatalf("kafkatest: connecting an admin client to %s: %v", b.addr, err)
	}
	t.Cleanup(func() { admin.Close() })
	return admin
}

// NewSASLConfig returns a sarama configuration for the SASL_SSL listener at
// SASLAddr: SCRAM-SHA-512 as user, TLS trusting only the broker's CA.
func (b *Broker) NewSASLConfig(t testing.TB, user, password string) *sarama.Config {
	t.Helper()
	if b.saslAddr == "" {
		t.Fatal("kafkatest: NewSASLConfig needs a broker started with Options{SASLSCRAM: true}")
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b.caPEM) {
		t.Fatal("kafkatest: the broker's CA certificate does not parse")
	}
	cfg := NewConfig()
	cfg.Net.TLS.Enable = true
	cfg.Net.TLS.Config = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	cfg.Net.SASL.Enable = true
	cfg.Net.SASL.Mechanism = sarama.SASLTypeSCRAMSHA512
	cfg.Net.SASL.User = user
	cfg.Net.SASL.Password = password
	cfg.Net.SASL.Handshake = true
	cfg.Net.SASL.SCRAMClientGeneratorFunc = NewSCRAMSHA512Client
	return cfg
}

// sha512Hash is scram's name for crypto/sha512; the scram package only
// predefines SHA-1 and SHA-256.
var sha512Hash scram.HashGeneratorFcn = func() hash.Hash { return sha512.New() }

// scramClient adapts github.com/xdg/scram to sarama.SCRAMClient.
type scramClient struct {
	hash scram.HashGeneratorFcn
	conv *scram.ClientConversation
}

// NewSCRAMSHA512Client returns a SCRAM-SHA-512 client for
// sarama.Config.Net.SASL.SCRAMClientGeneratorFunc.
func NewSCRAMSHA512Client() sarama.SCRAMClient { return &scramClient{hash: sha512Hash} }

func (c *scramClient) Begin(user, password, authzID string) error {
	client, err := c.hash.NewClient(user, password, authzID)
	if err != nil {
		return err
	}
	c.conv = client.NewConversation()
	return nil
}

func (c *scramClient) Step(challenge string) (string, error) { return c.conv.Step(challenge) }

func (c *scramClient) Done() bool { return c.conv.Done() }

// CreateTopic creates topic name with the given number of partitions (the
// broker's default, Options.Partitions, when below 1) and waits until every
// partition takes writes. The test fails if the topic exists already.
func (b *Broker) CreateTopic(t testing.TB, name string, partitions int) {
	t.Helper()
	if partitions < 1 {
		partitions = b.opts.Partitions
	}
	if err := CreateTopic(b.addr, name, partitions); err != nil {
		t.Fatalf("kafkatest: %v", err)
	}
}

// CreateTopic creates topic name with partitions partitions on the broker at addr,
// and waits until each of them takes writes. A topic of that name that exists
// already is an error that wraps sarama.ErrTopicAlreadyExists.
func CreateTopic(addr, name string, partitions int) error {
	return createTopic(addr, name, partitions, false)
}

// EnsureTopic is CreateTopic for a topic that may exist already, as it does when
// a program runs again against the same broker: it then waits for its partitions,
// which must number partitions.
func EnsureTopic(addr, name string, partitions int) error {
	return createTopic(addr, name, partitions, true)
}

func createTopic(addr, name string, partitions int, existingOK bool) error {
	admin, err := sarama.NewClusterAdmin([]string{addr}, NewConfig())
	if err != nil {
		return fmt.Errorf("connecting to Kafka at %s: %w", addr, err)
	}
	defer admin.Close()
	detail := &sarama.TopicDetail{NumPartitions: int32(partitions), ReplicationFactor: 1}
	err = admin.CreateTopic(name, detail, false)
	if err != nil && !(existingOK && errors.Is(err, sarama.ErrTopicAlreadyExists)) {
		return fmt.Errorf("creating topic %q: %w", name, err)
	}
	client, err := newClient(addr, NewConfig())
	if err != nil {
		return fmt.Errorf("connecting to Kafka at %s: %w", addr, err)
	}
	defer client.Close()
	deadline := time.Now().Add(topicTimeout)
	for {
		err := topicReady(client, name, partitions)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("topic %q not ready after %v: %w", name, topicTimeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func topicReady(client sarama.Client, topic string, partitions int) error {
	if err := client.RefreshMetadata(topic); err != nil {
		return err
	}
	ids, err := client.Partitions(topic)
	if err != nil {
		return err
	}
	if len(ids) != partitions {
		return fmt.Errorf("metadata lists %d partitions, want %d", len(ids), partitions)
	}
	for _, p := range ids {
		if _, err := client.Leader(topic, p); err != nil {
			return fmt.Errorf("partition %d: %w", p, err)
		}
		// Metadata names the leader a moment before the partition takes
		// writes (a produce then fails with NOT_LEADER_OR_FOLLOWER and
		// sarama's retry may reorder messages). ListOffsets is answered by
		// the same code as produce, so its success means the partition is
		// ready.
		if _, err := client.GetOffset(topic, p, sarama.OffsetNewest); err != nil {
			return fmt.Errorf("partition %d: %w", p, err)
		}
	}
	return nil
}

// Message is a record for ProduceMessages.
type Message struct {
	Key     []byte
	Value   []byte
	Headers []sarama.RecordHeader
	// Partition, if not nil, is where the message goes; otherwise sarama's
	// hash partitioner chooses by key, or at random without a key.
	Partition *int32
	// Timestamp, if not zero, is the record's create time.
	Timestamp time.Time
}

// Position is where a produced message was written.
type Position struct {
	Partition int32
	Offset    int64
}

// Produce writes values to topic with a synchronous sarama producer that
// waits for acknowledgement by all in-sync replicas. Values that land on the
// same partition are stored in the order given; should a retry have
// reordered them, the test fails.
func (b *Broker) Produce(t testing.TB, topic string, values ...[]byte) {
	t.Helper()
	msgs := make([]Message, len(values))
	for i, v := range values {
		msgs[i].Value = v
	}
	b.ProduceMessages(t, topic, msgs...)
}

// ProduceMessages is Produce for messages with keys, headers, timestamps or
// chosen partitions. It returns where each message was written.
func (b *Broker) ProduceMessages(t testing.TB, topic string, msgs ...Message) []Position {
	t.Helper()
	cfg := NewConfig()
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Return.Successes = true
	cfg.Producer.Retry.Max = 10
	cfg.Producer.Retry.Backoff = 200 * time.Millisecond
	cfg.Producer.Partitioner = newChoosingPartitioner
	// One request in flight keeps batches in order. It is not enough when
	// sarama retries (it may send a later message while an earlier one waits
	// for its retry; its idempotent producer then fails with an out-of-order
	// sequence), so the order is checked below.
	cfg.Net.MaxOpenRequests = 1
	producer, err := sarama.NewSyncProducer([]string{b.addr}, cfg)
	if err != nil {
		t.Fatalf("kafkatest: creating a producer for %s: %v", b.addr, err)
	}
	defer producer.Close()

	pms := make([]*sarama.ProducerMessage, len(msgs))
	for i, m := range msgs {
		pm := &sarama.ProducerMessage{Topic: topic, Headers: m.Headers, Timestamp: m.Timestamp}
		if m.Key != nil {
			pm.Key = sarama.ByteEncoder(m.Key)
		}
		if m.Value != nil {
			pm.Value = sarama.ByteEncoder(m.Value)
		}
		if m.Partition != nil {
			pm.Metadata = chosenPartition(*m.Partition)
		}
		pms[i] = pm
	}
	if err := producer.SendMessages(pms); err != nil {
		var perrs sarama.ProducerErrors
		if errors.As(err, &perrs) && len(perrs) > 0 {
			t.Fatalf("kafkatest: producing to %q: %d of %d messages failed, first: %v", topic, len(perrs), len(pms), perrs[0].Err)
		}
		t.Fatalf("kafkatest: producing to %q: %v", topic, err)
	}
	positions := make([]Position, len(pms))
	last := make(map[int32]int64)
	for i, pm := range pms {
		positions[i] = Position{Partition: pm.Partition, Offset: pm.Offset}
		if prev, ok := last[pm.Partition]; ok && pm.Offset <= prev {
			t.Fatalf("kafkatest: producing to %q: message %d was stored at offset %d of partition %d, before an earlier message at offset %d (sarama reordered messages while retrying)",
				topic, i, pm.Offset, pm.Partition, prev)
		}
		last[pm.Partition] = pm.Offset
	}
	return positions
}

// chosenPartition in ProducerMessage.Metadata tells choosingPartitioner
// where the message goes.
type chosenPartition int32

// choosingPartitioner honours a chosenPartition and otherwise hashes.
type choosingPartitioner struct{ hash sarama.Partitioner }

func newChoosingPartitioner(topic string) sarama.Partitioner {
	return choosingPartitioner{hash: sarama.NewHashPartitioner(topic)}
}

func (p choosingPartitioner) Partition(msg *sarama.ProducerMessage, n int32) (int32, error) {
	if c, ok := msg.Metadata.(chosenPartition); ok {
		if int32(c) < 0 || int32(c) >= n {
			return 0, fmt.Errorf("partition %d does not exist (the topic has %d)", c, n)
		}
		return int32(c), nil
	}
	return p.hash.Partition(msg, n)
}

func (p choosingPartitioner) RequiresConsistency() bool { return true }

// HighWatermarks returns the high watermark (the offset the next message
// will get) of each partition of topic.
func (b *Broker) HighWatermarks(t testing.TB, topic string) map[int32]int64 {
	t.Helper()
	client := b.NewClient(t)
	hwms, err := highWatermarks(client, topic)
	if err != nil {
		t.Fatalf("kafkatest: %v", err)
	}
	return hwms
}

// HighWatermarks is Broker.HighWatermarks for the broker at addr, for programs
// that are not tests.
func HighWatermarks(addr, topic string) (map[int32]int64, error) {
	client, err := newClient(addr, NewConfig())
	if err != nil {
		return nil, fmt.Errorf("connecting to Kafka at %s: %w", addr, err)
	}
	defer client.Close()
	return highWatermarks(client, topic)
}

func highWatermarks(client sarama.Client, topic string) (map[int32]int64, error) {
	if err := client.RefreshMetadata(topic); err != nil {
		return nil, fmt.Errorf("metadata of %q: %w", topic, err)
	}
	ids, err := client.Partitions(topic)
	if err != nil {
		return nil, fmt.Errorf("partitions of %q: %w", topic, err)
	}
	hwms := make(map[int32]int64, len(ids))
	for _, p := range ids {
		off, err := client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			return nil, fmt.Errorf("high watermark of %q partition %d: %w", topic, p, err)
		}
		hwms[p] = off
	}
	return hwms, nil
}

// CommittedOffsets returns the offsets that consumer group has committed
// for the partitions of topic. Partitions without a committed offset are
// absent, so a group that never committed yields an empty map.
func (b *Broker) CommittedOffsets(t testing.TB, group, topic string) map[int32]int64 {
	t.Helper()
	client := b.NewClient(t)
	if err := client.RefreshMetadata(topic); err != nil {
		t.Fatalf("kafkatest: metadata of %q: %v", topic, err)
	}
	ids, err := client.Partitions(topic)
	if err != nil {
		t.Fatalf("kafkatest: partitions of %q: %v", topic, err)
	}
	admin := b.NewClusterAdmin(t)
	resp, err := admin.ListConsumerGroupOffsets(group, map[string][]int32{topic: ids})
	if err != nil {
		t.Fatalf("kafkatest: offsets of group %q: %v", group, err)
	}
	if resp.Err != sarama.ErrNoError {
		t.Fatalf("kafkatest: offsets of group %q: %v", group, resp.Err)
	}
	offsets := make(map[int32]int64)
	for p, block := range resp.Blocks[topic] {
		if block.Err != sarama.ErrNoError {
			t.Fatalf("kafkatest: offset of group %q on %q partition %d: %v", group, topic, p, block.Err)
		}
		if block.Offset >= 0 {
			offsets[p] = block.Offset
		}
	}
	return offsets
}

// ReadAll reads every message of topic present when it is called, from the
// oldest on, and returns them ordered by partition, then offset.
func (b *Broker) ReadAll(t testing.TB, topic string) []*sarama.ConsumerMessage {
	t.Helper()
	client := b.NewClient(t)
	hwms, err := highWatermarks(client, topic)
	if err != nil {
		t.Fatalf("kafkatest: %v", err)
	}
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		t.Fatalf("kafkatest: creating a consumer: %v", err)
	}
	defer consumer.Close()

	partitions := make([]int32, 0, len(hwms))
	for p := range hwms {
		partitions = append(partitions, p)
	}
	sort.Slice(partitions, func(i, j int) bool { return partitions[i] < partitions[j] })

	var all []*sarama.ConsumerMessage
	deadline := time.After(readTimeout)
	for _, p := range partitions {
		hwm := hwms[p]
		first, err := client.GetOffset(topic, p, sarama.OffsetOldest)
		if err != nil {
			t.Fatalf("kafkatest: oldest offset of %q partition %d: %v", topic, p, err)
		}
		if first >= hwm {
			continue
		}
		pc, err := consumer.ConsumePartition(topic, p, first)
		if err != nil {
			t.Fatalf("kafkatest: consuming %q partition %d: %v", topic, p, err)
		}
		// Offsets may have gaps (transaction markers, compaction), so read
		// until the last offset below the watermark rather than counting.
		for done := false; !done; {
			select {
			case msg := <-pc.Messages():
				all = append(all, msg)
				done = msg.Offset >= hwm-1
			case cerr := <-pc.Errors():
				pc.Close()
				t.Fatalf("kafkatest: consuming %q partition %d: %v", topic, p, cerr)
			case <-deadline:
				pc.Close()
				t.Fatalf("kafkatest: reading %q: partition %d not read up to offset %d within %v", topic, p, hwm, readTimeout)
			}
		}
		pc.Close()
	}
	return all
}

var nameSeq atomic.Int64

// UniqueName returns a topic or group name, unique within the test binary,
// made of prefix, the test's name and a sequence number. Tests that share a
// broker need one, also when run with -count > 1.
func UniqueName(t testing.TB, prefix string) string {
	var sb strings.Builder
	for _, r := range prefix + "-" + t.Name() {
		// Kafka allows ASCII letters, digits, '.', '_' and '-'.
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
			sb.WriteRune(r)
		default:
			sb.WriteByte('_')
		}
	}
	name := sb.String()
	suffix := fmt.Sprintf("-%d", nameSeq.Add(1))
	// Topic names are limited to 249 characters.
	if max := 249 - len(suffix); len(name) > max {
		name = name[:max]
	}
	return name + suffix
}
