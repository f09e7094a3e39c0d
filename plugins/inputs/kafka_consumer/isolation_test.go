package kafka_consumer

import (
	"testing"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"

	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/internal/kafkatest"
)

// produceTransactions writes "tx i=1i" in a transaction that aborts, "tx i=2i" in one
// that commits, and "tx i=3i" outside any.
func produceTransactions(t *testing.T, b *kafkatest.Broker, topic string) {
	t.Helper()
	cfg := kafkatest.NewConfig()
	cfg.Producer.Idempotent = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Return.Successes = true
	cfg.Net.MaxOpenRequests = 1
	cfg.Producer.Transaction.ID = kafkatest.UniqueName(t, "tx")
	tx, err := sarama.NewSyncProducer([]string{b.Addr()}, cfg)
	require.NoError(t, err)
	defer tx.Close()
	send := func(value string) {
		_, _, err := tx.SendMessage(&sarama.ProducerMessage{Topic: topic, Value: sarama.StringEncoder(value)})
		require.NoError(t, err)
	}
	require.NoError(t, tx.BeginTxn())
	send("tx i=1i")
	require.NoError(t, tx.AbortTxn())
	require.NoError(t, tx.BeginTxn())
	send("tx i=2i")
	require.NoError(t, tx.CommitTxn())
	b.Produce(t, topic, []byte("tx i=3i"))
}

func TestIsolationLevel(t *testing.T) {
	b := kafkatest.Shared(t)
	topic := kafkatest.UniqueName(t, "tx")
	b.CreateTopic(t, topic, 1)
	produceTransactions(t, b, topic)

	for _, tc := range []struct {
		option string
		want   map[int64]int
	}{
		// Telegraf's plugin reads the aborted record too.
		{"", map[int64]int{1: 1, 2: 1, 3: 1}},
		{`isolation_level = "read_uncommitted"`, map[int64]int{1: 1, 2: 1, 3: 1}},
		{`isolation_level = "read_committed"`, map[int64]int{2: 1, 3: 1}},
	} {
		t.Run(tc.option, func(t *testing.T) {
			group := kafkatest.UniqueName(t, "g")
			r := start(t, tableFor(b, topic, group, `data_format = "influx"`, tc.option))
			waitFor(t, "the last record", func() bool { return countField(r.out.metrics(t), "i")[3] == 1 })
			r.k.Stop()
			require.Equal(t, tc.want, countField(r.out.metrics(t), "i"))
			require.Empty(t, r.acc.Errors)
			// The transaction markers are passed over: the group ends at the end.
			require.Equal(t, b.HighWatermarks(t, topic), b.CommittedOffsets(t, group, topic))
		})
	}
}
