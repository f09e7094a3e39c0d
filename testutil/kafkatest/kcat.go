package kafkatest

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"
)

const kcatTimeout = 60 * time.Second

// ProduceWithKcat writes each line as one message to topic with kcat, a
// librdkafka-based client independent of both sarama and this project, so
// that tests can check the project against data a third-party producer
// wrote. Messages have no key; librdkafka spreads them over the partitions,
// and those landing on the same partition keep the order given.
//
// Lines must be non-empty and contain no newline, since kcat reads one
// message per line. The test fails if kcat is not on PATH or any message is
// not acknowledged.
func ProduceWithKcat(t testing.TB, b *Broker, topic string, lines []string) {
	t.Helper()
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		t.Fatal("kafkatest: kcat not found on PATH: install it with 'apt-get install -y kcat' (or run scripts/install-deps.sh)")
	}
	for i, line := range lines {
		if line == "" || strings.ContainsAny(line, "\r\n") {
			t.Fatalf("kafkatest: ProduceWithKcat: line %d is empty or contains a line break: %q", i, line)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), kcatTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, kcat,
		"-b", b.Addr(),
		"-t", topic,
		"-P",
		"-X", "acks=all",
		// One request in flight keeps retries from reordering messages.
		"-X", "max.in.flight=1",
		// Give up well before kcatTimeout so that kcat reports the failure.
		"-X", "message.timeout.ms=30000",
	)
	cmd.Stdin = strings.NewReader(strings.Join(lines, "\n") + "\n")
	out, err := cmd.CombinedOutput()
	if err != nil {
		if ctx.Err() != nil {
			t.Fatalf("kafkatest: kcat did not finish producing %d messages to %q within %v:\n%s", len(lines), topic, kcatTimeout, out)
		}
		t.Fatalf("kafkatest: kcat failed producing %d messages to %q: %v\n%s", len(lines), topic, err, out)
	}
}
