package kafka_consumer

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/IBM/sarama"
)

// explainConnect adds to a failed connection what the Kafka client's error leaves
// out: the brokers it tried, when they refused the login how and as whom it logged
// in, and when the group refused the member the option to change. The password is
// never part of it.
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
	if errors.Is(err, sarama.ErrFencedInstancedId) {
		// Another process joined with the same id and took the member's place;
		// each then pushes the other out in turn.
		return fmt.Errorf("another consumer joined consumer_group %q with group_instance_id %q: each member needs an id of its own: %w",
			k.ConsumerGroup, k.GroupInstanceID, err)
	}
	if errors.Is(err, sarama.ErrInvalidSessionTimeout) {
		return fmt.Errorf("session_timeout %s is outside what the brokers take (group.min.session.timeout.ms to "+
			"group.max.session.timeout.ms, 6s to 30m by default): %w", time.Duration(k.SessionTimeout), err)
	}
	if errors.Is(err, sarama.ErrOutOfBrokers) {
		return fmt.Errorf("brokers %s: %w", brokers, err)
	}
	return err
}
