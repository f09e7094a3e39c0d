package kafka_consumer

import (
	"fmt"

	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/internal/pluginconf"
)

// Configure loads the [[inputs.kafka_consumer]] table of the file at path into k and
// builds its parser from the same table, as Telegraf's config loader does. A key that
// neither the plugin nor its parser takes is an error naming it. k.Log must be set.
func Configure(k *KafkaConsumer, path string) error {
	t, err := pluginconf.ReadTable(path, "inputs", "kafka_consumer")
	if err != nil {
		return err
	}
	if err := configure(k, t); err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	return nil
}

// ConfigureString is Configure for a configuration held in memory.
func ConfigureString(k *KafkaConsumer, data string) error {
	t, err := pluginconf.ParseTable(data, "inputs", "kafka_consumer")
	if err != nil {
		return err
	}
	return configure(k, t)
}

func configure(k *KafkaConsumer, t *pluginconf.Table) error {
	if err := t.Decode(k); err != nil {
		return err
	}
	fn, err := t.ParserFunc(k.Format(), k.Log)
	if err != nil {
		return err
	}
	k.SetParserFunc(fn)
	return t.CheckUnknown()
}
