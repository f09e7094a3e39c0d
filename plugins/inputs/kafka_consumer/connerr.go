package kafka_consumer

import (
	"errors"
	"fmt"
	"strings"

	"github.com/IBM/sarama"
)

// explainConnect adds to a failed connection what the Kafka client's error leaves
// out: the brokers it tried and, when they refused the login, how and as whom it
// logged in. The password is never part of it.
func (k *KafkaConsumer) explainConnect(err error) error {
	if err == nil {
		return nil
	}
	brokers := strings.Join(k.Brokers, ", ")
	if errors.Is(err, sarama.ErrSASLAuthenticationFailed) {
		mechanism := string(k.config.Net.SASL.Mechanism)
		if mechanism == "" {
			mechanism = sarama.SASLTypePlaintext
		}
		return fmt.Errorf("SASL %s authentication as user %q refused by %s (check sasl_username and sasl_password): %w",
			mechanism, k.config.Net.SASL.User, brokers, err)
	}
	if errors.Is(err, sarama.ErrOutOfBrokers) {
		return fmt.Errorf("brokers %s: %w", brokers, err)
	}
	return err
}
