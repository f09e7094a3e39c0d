package kafka_consumer

import (
	"fmt"
	"strings"

	"github.com/IBM/sarama"
)

// isolation applies isolation_level to cfg, whose Version is set. Telegraf's plugin
// reads every record, so that the records of aborted transactions reach the output
// as if committed; read_committed skips them, and holds back those of a transaction
// until it commits. Transactions came with Kafka 0.11: an older protocol version has
// no field for the level, and sarama would refuse it naming none of these options.
func (k *KafkaConsumer) isolation(cfg *sarama.Config) error {
	switch strings.ToLower(k.IsolationLevel) {
	case "", "read_uncommitted":
		cfg.Consumer.IsolationLevel = sarama.ReadUncommitted
		return nil
	case "read_committed":
	default:
		return fmt.Errorf("isolation_level: %q is not one of \"read_uncommitted\", \"read_committed\"", k.IsolationLevel)
	}
	if !cfg.Version.IsAtLeast(sarama.V0_11_0_0) {
		option, value := k.versionOption()
		if option == "" && !k.versionChosen {
			// Set once the brokers told their version (chooseVersion).
			cfg.Consumer.IsolationLevel = sarama.ReadUncommitted
			return nil
		}
		version := fmt.Sprintf("%s is %q", option, value)
		if option == "" {
			version = fmt.Sprintf("kafka_version is unset, and the brokers were taken for %q", cfg.Version.String())
		}
		return fmt.Errorf("isolation_level = \"read_committed\" needs kafka_version = \"0.11.0.0\" or newer, as transactions "+
			"came with Kafka 0.11, and %s: set kafka_version to the brokers' version, or leave it unset to have the brokers asked", version)
	}
	cfg.Consumer.IsolationLevel = sarama.ReadCommitted
	return nil
}
