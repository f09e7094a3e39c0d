// Command telegraf-kafka-consumer reads metrics from Kafka and writes them to stdout as
// line protocol, for Telegraf's execd input:
//
//	[[inputs.execd]]
//	  command = ["/usr/bin/telegraf-kafka-consumer", "-config", "/etc/telegraf/kafka.conf"]
//	  signal = "none"
//	  data_format = "influx"
//
// The configuration file holds one [[inputs.kafka_consumer]] table, as Telegraf's own
// kafka_consumer input takes it, data_format and parser options included.
package main

import (
	"context"
	"flag"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/influxdata/telegraf"
	"github.com/influxdata/telegraf/agent"
	_ "github.com/influxdata/telegraf/plugins/parsers/all" // every data_format

	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/internal/cli"
	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/internal/pluginconf"
	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/internal/stderrlog"
	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/plugins/inputs/kafka_consumer"
)

// The garbage collector's settings unless GOGC or GOMEMLIMIT say otherwise (see
// cli.TuneGC).
const (
	gcPercent     = 400
	gcMemoryLimit = 56 << 20
)

// testTimeout bounds -test when the topics hold fewer messages than -test-messages.
const testTimeout = 30 * time.Second

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	var common cli.Flags
	flags := flag.NewFlagSet("telegraf-kafka-consumer", flag.ContinueOnError)
	common.Register(flags, "[[inputs.kafka_consumer]]")
	test := flags.Bool("test", false, "read up to -test-messages messages without committing, print their metrics and exit")
	testMessages := flags.Int("test-messages", 10, "messages to read with -test")
	if err := flags.Parse(args); err != nil {
		return 2
	}

	plugin := kafka_consumer.New()
	if common.PrintInfo(os.Stdout, "telegraf-kafka-consumer", plugin) {
		return 0
	}
	log := common.Logger("inputs.kafka_consumer")
	plugin.Log = log
	if !common.RequireConfig(log) {
		return 2
	}
	if err := kafka_consumer.Configure(plugin, common.Config); err != nil {
		log.Error(err)
		return 2
	}
	if plugin.LogLevel != "" && !common.Debug {
		l := telegraf.LogLevelFromString(plugin.LogLevel)
		if l == telegraf.None {
			log.Errorf("configuration: log_level: %q is not one of \"error\", \"warn\", \"info\", \"debug\", \"trace\"", plugin.LogLevel)
			return 2
		}
		log = stderrlog.New("inputs.kafka_consumer", l)
		plugin.Log = log
	}
	if err := plugin.Init(); err != nil {
		log.Errorf("configuration: %v", err)
		return 2
	}
	secret := !plugin.SASLPassword.Empty() || !plugin.SASLAccessToken.Empty() || plugin.TLSKeyPwd != ""
	if w := pluginconf.ExposedSecretWarning(common.Config, secret); w != "" {
		log.Warn(w)
	}

	// sarama allocates about 400 bytes per message; with Go's default the
	// collector took a sixth of this process's CPU. The limit keeps the process
	// under 100 MiB resident: about 30 MiB are code and runtime, and with six busy
	// partitions the live heap alone is about 30 MiB, which the limit then holds
	// to roughly Go's default.
	cli.TuneGC(gcPercent, gcMemoryLimit)
	defer common.StartProfiling("telegraf-kafka-consumer", log)()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if *test {
		return sample(ctx, plugin, *testMessages, log)
	}
	return consume(ctx, plugin, log)
}

// sample is -test: it prints the metrics of up to n messages and commits nothing.
func sample(ctx context.Context, plugin *kafka_consumer.KafkaConsumer, n int, log telegraf.Logger) int {
	ctx, cancel := context.WithTimeout(ctx, testTimeout)
	defer cancel()
	read, err := plugin.Sample(ctx, n)
	if err != nil {
		log.Error(err)
		return 1
	}
	log.Debugf("read %d messages", read)
	return 0
}

// consume runs the plugin until a signal or a failure it cannot go on from.
func consume(ctx context.Context, plugin *kafka_consumer.KafkaConsumer, log telegraf.Logger) int {
	acc := agent.NewAccumulator(errorMaker{log}, nil)
	if err := plugin.Start(acc); err != nil {
		log.Error(err)
		return 1
	}
	select {
	case <-ctx.Done():
		log.Info("stopping: flushing and committing what was read")
	case <-plugin.Failed():
	}
	plugin.Stop()
	if err := plugin.Err(); err != nil {
		log.Error(err)
		return 1
	}
	return 0
}

// errorMaker lets Telegraf's accumulator log the plugin's errors; the plugin writes
// its metrics itself.
type errorMaker struct{ log telegraf.Logger }

func (errorMaker) LogName() string                              { return "inputs.kafka_consumer" }
func (errorMaker) MakeMetric(m telegraf.Metric) telegraf.Metric { return m }
func (e errorMaker) Log() telegraf.Logger                       { return e.log }
