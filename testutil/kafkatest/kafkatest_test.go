package kafkatest_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"

	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/testutil/kafkatest"
)

func TestMain(m *testing.M) { kafkatest.Main(m) }

// The version lives in three files; a mismatch would fetch one release and
// name the cache after another.
func TestVersionsAgree(t *testing.T) {
	pom, err := os.ReadFile("maven/pom.xml")
	require.NoError(t, err)
	m := regexp.MustCompile(`<kafka\.version>([^<]+)</kafka\.version>`).FindSubmatch(pom)
	require.NotNil(t, m, "kafka.version property in maven/pom.xml")
	require.Equal(t, kafkatest.KafkaVersion, string(m[1]), "kafka.version in maven/pom.xml")

	script, err := os.ReadFile("fetch-kafka.sh")
	require.NoError(t, err)
	m = regexp.MustCompile(`KAFKA_VERSION="\$\{KAFKA_VERSION:-([^}]+)\}"`).FindSubmatch(script)
	require.NotNil(t, m, "default KAFKA_VERSION in fetch-kafka.sh")
	require.Equal(t, kafkatest.KafkaVersion, string(m[1]), "default KAFKA_VERSION in fetch-kafka.sh")

	// Clients announce the broker's release line (major.minor).
	parts := strings.SplitN(kafkatest.KafkaVersion, ".", 3)
	require.True(t, strings.HasPrefix(kafkatest.SaramaVersion.String(), parts[0]+"."+parts[1]+"."),
		"SaramaVersion %s for Kafka %s", kafkatest.SaramaVersion, kafkatest.KafkaVersion)
}

func numbered(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%03d", prefix, i)
	}
	return out
}

func asBytes(ss []string) [][]byte {
	out := make([][]byte, len(ss))
	for i, s := range ss {
		out[i] = []byte(s)
	}
	return out
}

func valuesOf(msgs []*sarama.ConsumerMessage) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = string(m.Value)
	}
	return out
}

func sum(m map[int32]int64) int64 {
	var s int64
	for _, v := range m {
		s += v
	}
	return s
}

// consumeWithKcat reads topic from the beginning to its end with kcat, one
// value per line: a reader that shares no code with sarama.
func consumeWithKcat(t *testing.T, b *kafkatest.Broker, topic string) []string {
	t.Helper()
	kcat, err := exec.LookPath("kcat")
	require.NoError(t, err, "kcat not found on PATH: apt-get install -y kcat")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, kcat, "-b", b.Addr(), "-t", topic, "-C", "-o", "beginning", "-e", "-q", "-f", "%s\n").Output()
	require.NoError(t, err, "kcat -C on %q", topic)
	return strings.Fields(string(out))
}

func TestSharedBrokerRoundTrip(t *testing.T) {
	b := kafkatest.Shared(t)
	require.NotEmpty(t, b.Addr())
	require.Empty(t, b.SASLAddr(), "the shared broker has no SASL listener")

	fromSarama := numbered("sarama", 25)
	fromKcat := numbered("kcat", 25)
	want := slices.Concat(fromSarama, fromKcat)

	for _, tc := range []struct {
		name       string
		partitions int
	}{
		{"one", 1},
		{"six", 6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			topic := kafkatest.UniqueName(t, "roundtrip")
			b.CreateTopic(t, topic, tc.partitions)
			b.Produce(t, topic, asBytes(fromSarama)...)
			kafkatest.ProduceWithKcat(t, b, topic, fromKcat)

			hwms := b.HighWatermarks(t, topic)
			require.Len(t, hwms, tc.partitions)
			require.EqualValues(t, len(want), sum(hwms), "high watermarks %v", hwms)

			got := valuesOf(b.ReadAll(t, topic))
			byKcat := consumeWithKcat(t, b, topic)
			if tc.partitions == 1 {
				// One partition keeps the order in which it was written.
				require.Equal(t, map[int32]int64{0: int64(len(want))}, hwms)
				require.Equal(t, want, got)
				require.Equal(t, want, byKcat)
				return
			}
			require.ElementsMatch(t, want, got)
			require.ElementsMatch(t, want, byKcat)
		})
	}
}

func TestSharedBrokerKeysHeadersPartitions(t *testing.T) {
	b := kafkatest.Shared(t)
	const partitions, perPartition = 6, 2
	topic := kafkatest.UniqueName(t, "explicit")
	b.CreateTopic(t, topic, partitions)

	var msgs []kafkatest.Message
	for p := range int32(partitions) {
		for i := range perPartition {
			msgs = append(msgs, kafkatest.Message{
				Key:       fmt.Appendf(nil, "key-%d-%d", p, i),
				Value:     fmt.Appendf(nil, "value-%d-%d", p, i),
				Headers:   []sarama.RecordHeader{{Key: []byte("h"), Value: fmt.Appendf(nil, "%d/%d", p, i)}},
				Partition: new(p),
				Timestamp: time.UnixMilli(1_700_000_000_000 + int64(p)*1000 + int64(i)),
			})
		}
	}
	positions := b.ProduceMessages(t, topic, msgs...)
	require.Len(t, positions, len(msgs))
	for i, pos := range positions {
		require.Equal(t, *msgs[i].Partition, pos.Partition, "message %d", i)
		require.EqualValues(t, i%perPartition, pos.Offset, "message %d", i)
	}

	want := make(map[int32]int64, partitions)
	for p := range int32(partitions) {
		want[p] = perPartition
	}
	require.Equal(t, want, b.HighWatermarks(t, topic))

	got := b.ReadAll(t, topic)
	require.Len(t, got, len(msgs))
	for i, m := range got {
		// ReadAll orders by partition, then offset: the order produced.
		sent := msgs[i]
		require.Equal(t, *sent.Partition, m.Partition)
		require.EqualValues(t, i%perPartition, m.Offset)
		require.Equal(t, sent.Key, m.Key)
		require.Equal(t, sent.Value, m.Value)
		require.Len(t, m.Headers, 1)
		require.Equal(t, sent.Headers[0].Key, m.Headers[0].Key)
		require.Equal(t, sent.Headers[0].Value, m.Headers[0].Value)
		require.True(t, sent.Timestamp.Equal(m.Timestamp), "timestamp %v, want %v", m.Timestamp, sent.Timestamp)
	}
}

func TestSharedBrokerCommittedOffsets(t *testing.T) {
	b := kafkatest.Shared(t)
	topic, group := kafkatest.UniqueName(t, "commits"), kafkatest.UniqueName(t, "group")
	b.CreateTopic(t, topic, 2)
	b.ProduceMessages(t, topic,
		kafkatest.Message{Value: []byte("a"), Partition: new(int32(0))},
		kafkatest.Message{Value: []byte("b"), Partition: new(int32(0))},
		kafkatest.Message{Value: []byte("c"), Partition: new(int32(1))},
	)
	require.Empty(t, b.CommittedOffsets(t, group, topic), "a group that never committed")

	client := b.NewClient(t)
	om, err := sarama.NewOffsetManagerFromClient(group, client)
	require.NoError(t, err)
	pom, err := om.ManagePartition(topic, 0)
	require.NoError(t, err)
	pom.MarkOffset(2, "")
	om.Commit()
	require.NoError(t, pom.Close())
	require.NoError(t, om.Close())

	// Only partition 0 was committed.
	require.Equal(t, map[int32]int64{0: 2}, b.CommittedOffsets(t, group, topic))
}

func TestStartSASLSCRAM(t *testing.T) {
	users := map[string]string{"alice": "alice-secret", "bob": "b0b_p4ss!"}
	b := kafkatest.Start(t, kafkatest.Options{SASLSCRAM: true, Users: users})
	require.NotEmpty(t, b.SASLAddr())
	require.NotEqual(t, b.Addr(), b.SASLAddr())
	require.Equal(t, users, b.Users())

	// CAFile and CACertPEM hold the same CA certificate.
	caFromFile, err := os.ReadFile(b.CAFile())
	require.NoError(t, err)
	require.Equal(t, b.CACertPEM(), caFromFile)
	block, _ := pem.Decode(caFromFile)
	require.NotNil(t, block)
	ca, err := x509.ParseCertificate(block.Bytes)
	require.NoError(t, err)
	require.True(t, ca.IsCA)

	for user, password := range users {
		cfg := b.NewSASLConfig(t, user, password)
		conn := sarama.NewBroker(b.SASLAddr())
		require.NoError(t, conn.Open(cfg))
		md, err := conn.GetMetadata(sarama.NewMetadataRequest(cfg.Version, nil))
		require.NoError(t, err, "metadata for %s", user)
		// Metadata fetched over SASL_SSL advertises the SASL_SSL listener.
		require.Len(t, md.Brokers, 1)
		require.Equal(t, b.SASLAddr(), md.Brokers[0].Addr())
		state, ok := conn.TLSConnectionState()
		require.True(t, ok, "connection of %s is TLS", user)
		require.True(t, state.HandshakeComplete)
		require.NoError(t, conn.Close())

		client, err := sarama.NewClient([]string{b.SASLAddr()}, cfg)
		require.NoError(t, err, "client for %s", user)
		require.NoError(t, client.Close())
	}

	// Data produced by an authenticated client is there for everyone.
	topic := kafkatest.UniqueName(t, "sasl")
	b.CreateTopic(t, topic, 1)
	cfg := b.NewSASLConfig(t, "bob", users["bob"])
	cfg.Producer.Return.Successes = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	producer, err := sarama.NewSyncProducer([]string{b.SASLAddr()}, cfg)
	require.NoError(t, err)
	want := numbered("over-sasl", 3)
	for _, v := range want {
		_, _, err := producer.SendMessage(&sarama.ProducerMessage{Topic: topic, Value: sarama.StringEncoder(v)})
		require.NoError(t, err)
	}
	require.NoError(t, producer.Close())
	require.Equal(t, want, valuesOf(b.ReadAll(t, topic)))

	t.Run("wrong password", func(t *testing.T) {
		cfg := b.NewSASLConfig(t, "alice", "not-alice-secret")
		cfg.Metadata.Retry.Max = 0
		client, err := sarama.NewClient([]string{b.SASLAddr()}, cfg)
		if err == nil {
			client.Close()
		}
		require.ErrorIs(t, err, sarama.ErrSASLAuthenticationFailed)
	})
	t.Run("unknown user", func(t *testing.T) {
		cfg := b.NewSASLConfig(t, "mallory", "alice-secret")
		cfg.Metadata.Retry.Max = 0
		client, err := sarama.NewClient([]string{b.SASLAddr()}, cfg)
		if err == nil {
			client.Close()
		}
		require.ErrorIs(t, err, sarama.ErrSASLAuthenticationFailed)
	})
	t.Run("certificate is verified", func(t *testing.T) {
		// The right credentials, but trusting an empty pool instead of the
		// broker's CA: the handshake must fail before SASL starts.
		cfg := b.NewSASLConfig(t, "alice", users["alice"])
		cfg.Net.TLS.Config = &tls.Config{RootCAs: x509.NewCertPool(), MinVersion: tls.VersionTLS12}
		cfg.Metadata.Retry.Max = 0
		client, err := sarama.NewClient([]string{b.SASLAddr()}, cfg)
		if err == nil {
			client.Close()
		}
		require.Error(t, err)
		var unknownAuthority x509.UnknownAuthorityError
		require.True(t, errors.As(err, &unknownAuthority), "want an unknown-authority error, got %v", err)
	})
	t.Run("plaintext listener", func(t *testing.T) {
		require.NotEmpty(t, b.NewClient(t).Brokers())
	})
}

func TestUniqueName(t *testing.T) {
	a := kafkatest.UniqueName(t, "topic")
	b := kafkatest.UniqueName(t, "topic")
	require.NotEqual(t, a, b)
	require.Regexp(t, `^topic-TestUniqueName-\d+$`, a)
	t.Run("odd/name with spaces", func(t *testing.T) {
		name := kafkatest.UniqueName(t, strings.Repeat("x", 300))
		require.Regexp(t, `^[a-zA-Z0-9._-]+$`, name)
		require.LessOrEqual(t, len(name), 249)
	})
}

// A restarted broker listens where it did and keeps its messages and the groups'
// committed offsets.
func TestRestartKeepsAddressMessagesAndOffsets(t *testing.T) {
	b := kafkatest.Start(t, kafkatest.Options{})
	topic, group := "restart", "restart-group"
	b.CreateTopic(t, topic, 1)
	b.Produce(t, topic, []byte("before"))

	client := b.NewClient(t)
	om, err := sarama.NewOffsetManagerFromClient(group, client)
	require.NoError(t, err)
	pom, err := om.ManagePartition(topic, 0)
	require.NoError(t, err)
	pom.MarkOffset(1, "")
	om.Commit()
	require.NoError(t, pom.Close())
	require.NoError(t, om.Close())

	addr := b.Addr()
	b.Restart(t)
	require.Equal(t, addr, b.Addr())
	b.Produce(t, topic, []byte("after"))
	var values []string
	for _, m := range b.ReadAll(t, topic) {
		values = append(values, string(m.Value))
	}
	require.Equal(t, []string{"before", "after"}, values)
	require.Equal(t, map[int32]int64{0: 1}, b.CommittedOffsets(t, group, topic))
}

// A release before KRaft runs on a ZooKeeper of its own: both listeners
// serve, SCRAM users come from ZooKeeper, and Stop ends both processes.
func TestStartZooKeeperBroker(t *testing.T) {
	users := map[string]string{"alice": "alice-secret", "bob": "b0b_p4ss!"}
	b := kafkatest.Start(t, kafkatest.Options{KafkaVersion: "2.5.1", SASLSCRAM: true, Users: users})
	require.NotEmpty(t, b.ZooKeeperAddr())
	require.NotEmpty(t, b.ClusterID(), "the id the broker took from ZooKeeper")

	// ApiVersions tells the release: 2.5 is the first to serve OffsetFetch v7,
	// 2.6 the first to serve ListGroups v4.
	const offsetFetch, listGroups int16 = 9, 16
	conn := sarama.NewBroker(b.Addr())
	require.NoError(t, conn.Open(kafkatest.NewConfig()))
	versions, err := conn.ApiVersions(&sarama.ApiVersionsRequest{})
	require.NoError(t, err)
	require.NoError(t, conn.Close())
	served := make(map[int16]int16)
	for _, k := range versions.ApiKeys {
		served[k.ApiKey] = k.MaxVersion
	}
	require.EqualValues(t, 7, served[offsetFetch], "OffsetFetch up to")
	require.EqualValues(t, 3, served[listGroups], "ListGroups up to")

	topic, group := kafkatest.UniqueName(t, "zk"), kafkatest.UniqueName(t, "group")
	b.CreateTopic(t, topic, 2)
	want := numbered("plain", 10)
	b.Produce(t, topic, asBytes(want)...)
	require.ElementsMatch(t, want, valuesOf(b.ReadAll(t, topic)))
	require.ElementsMatch(t, want, consumeWithKcat(t, b, topic))

	client := b.NewClient(t)
	om, err := sarama.NewOffsetManagerFromClient(group, client)
	require.NoError(t, err)
	pom, err := om.ManagePartition(topic, 1)
	require.NoError(t, err)
	pom.MarkOffset(3, "")
	om.Commit()
	require.NoError(t, pom.Close())
	require.NoError(t, om.Close())
	require.Equal(t, map[int32]int64{1: 3}, b.CommittedOffsets(t, group, topic))

	for user, password := range users {
		cfg := b.NewSASLConfig(t, user, password)
		client, err := sarama.NewClient([]string{b.SASLAddr()}, cfg)
		require.NoError(t, err, "client for %s", user)
		brokers := client.Brokers()
		require.Len(t, brokers, 1)
		require.Equal(t, b.SASLAddr(), brokers[0].Addr(), "metadata over SASL_SSL advertises SASL_SSL")
		require.NoError(t, client.Close())
	}
	cfg := b.NewSASLConfig(t, "alice", "not-alice-secret")
	cfg.Metadata.Retry.Max = 0
	refused, err := sarama.NewClient([]string{b.SASLAddr()}, cfg)
	if err == nil {
		refused.Close()
	}
	require.ErrorIs(t, err, sarama.ErrSASLAuthenticationFailed, "a wrong password")

	b.Stop()
	for _, addr := range []string{b.Addr(), b.SASLAddr(), b.ZooKeeperAddr()} {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			conn.Close()
		}
		require.Error(t, err, "%s still accepts connections after Stop", addr)
	}
}

func TestCreateAndEnsureTopic(t *testing.T) {
	b := kafkatest.Shared(t)
	name := kafkatest.UniqueName(t, "made")
	require.NoError(t, kafkatest.CreateTopic(b.Addr(), name, 3))
	require.Len(t, b.HighWatermarks(t, name), 3)
	// Again: CreateTopic says the topic exists, EnsureTopic waits for it.
	require.ErrorIs(t, kafkatest.CreateTopic(b.Addr(), name, 3), sarama.ErrTopicAlreadyExists)
	require.NoError(t, kafkatest.EnsureTopic(b.Addr(), name, 3))
	hwms, err := kafkatest.HighWatermarks(b.Addr(), name)
	require.NoError(t, err)
	require.Equal(t, map[int32]int64{0: 0, 1: 0, 2: 0}, hwms)
}
