package kafka_consumer

import (
	"fmt"
	"regexp"
	"time"

	"github.com/IBM/sarama"
)

// maxHeartbeatInterval is sarama's default interval, kept for long session timeouts
// so that a rebalance reaches the member as soon as it used to.
const maxHeartbeatInterval = 3 * time.Second

// heartbeatInterval is a third of the session timeout, as Kafka advises, so that two
// heartbeats can be lost before the broker gives up on the member, and at most 3s.
// The protocol counts in milliseconds.
func heartbeatInterval(session time.Duration) time.Duration {
	return min(maxHeartbeatInterval, session/3).Truncate(time.Millisecond)
}

// groupInstanceIDPattern is what a broker takes as group.instance.id: Kafka's rule
// for names, as sarama checks it.
var groupInstanceIDPattern = regexp.MustCompile(`^[0-9a-zA-Z._-]{1,249}$`)

// membership applies group_instance_id and session_timeout to cfg, whose Version is
// set. Static membership (KIP-345) came with Kafka 2.3: an older protocol version has
// no field for the id, and sarama would refuse it with a message that names none of
// this plugin's options.
func (k *KafkaConsumer) membership(cfg *sarama.Config) error {
	session := time.Duration(k.SessionTimeout)
	if session < time.Millisecond {
		return fmt.Errorf("session_timeout: %s is below the protocol's unit of 1ms", session)
	}
	cfg.Consumer.Group.Session.Timeout = session.Truncate(time.Millisecond)
	cfg.Consumer.Group.Heartbeat.Interval = max(heartbeatInterval(session), time.Millisecond)
	if cfg.Consumer.Group.Heartbeat.Interval >= cfg.Consumer.Group.Session.Timeout {
		return fmt.Errorf("session_timeout: %s leaves no room for a heartbeat within it; brokers take 6s to 30m by default", session)
	}

	id := k.GroupInstanceID
	if id == "" {
		return nil
	}
	if !groupInstanceIDPattern.MatchString(id) || id == "." || id == ".." {
		return fmt.Errorf("group_instance_id: %q is not a valid id: use 1 to 249 of the letters, digits, '.', '_' and '-', "+
			"and not \".\" or \"..\"", id)
	}
	if !cfg.Version.IsAtLeast(sarama.V2_3_0_0) {
		option, value := k.versionOption()
		if option == "" && !k.versionChosen {
			// Checked again once the brokers told their version (chooseVersion).
			return nil
		}
		version := fmt.Sprintf("kafka_version is %q", value)
		if option == "" {
			version = fmt.Sprintf("kafka_version is unset, and the brokers were taken for %q", cfg.Version.String())
		} else if option != "kafka_version" {
			version = fmt.Sprintf("%s is %q", option, value)
		}
		return fmt.Errorf("group_instance_id needs kafka_version = \"2.3.0\" or newer, as static membership came with Kafka 2.3, "+
			"and %s: set kafka_version to the brokers' version (Kafka 4: \"4.1.0\"), or leave it unset to have the brokers asked", version)
	}
	cfg.Consumer.Group.InstanceId = id
	return nil
}
