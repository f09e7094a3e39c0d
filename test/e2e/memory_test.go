package e2e

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"

	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/dev/cnosdbdev"
	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/testutil/cnosdbtest"
	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/testutil/kafkatest"
	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/testutil/telegraftest"
)

// memoryLimit is what each process must stay under with messages of a MiB.
const memoryLimit = 256 << 20

// megabyteLine returns a line of protocol of exactly size bytes, newline included,
// with id as a tag.
func megabyteLine(id, size int) []byte {
	head := fmt.Sprintf(`big,id=%d s="`, id)
	tail := fmt.Sprintf(`" %d`+"\n", time.Now().Add(-time.Hour).UnixNano()+int64(id))
	line := make([]byte, 0, size)
	line = append(line, head...)
	line = append(line, bytes.Repeat([]byte{'x'}, size-len(head)-len(tail))...)
	return append(line, tail...)
}

// peakRSS returns the peak resident set size (VmHWM) of pid in bytes.
func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	status, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	require.NoError(t, err)
	for _, line := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			require.NoError(t, err)
			return kb << 10
		}
	}
	t.Fatalf("no VmHWM in /proc/%d/status", pid)
	return 0
}

// TestInputMemoryWithMegabyteMessages runs telegraf-kafka-consumer over a backlog of
// 1 MiB messages with no output to confirm them, while stdout is read slowly: the
// fetcher runs ahead of the parser, and the unconfirmed lines pile up to what the
// input allows. Its peak resident memory must stay under memoryLimit.
func TestInputMemoryWithMegabyteMessages(t *testing.T) {
	if testing.Short() {
		t.Skip("produces 320 MiB to Kafka; not in -short")
	}
	const (
		size       = 1 << 20
		messages   = 320
		partitions = 4
	)
	broker := kafkatest.Shared(t)
	topic := kafkatest.UniqueName(t, "big")
	broker.CreateTopic(t, topic, partitions)
	allowBigMessages(t, broker, topic)
	values := make([][]byte, messages)
	for i := range values {
		values[i] = megabyteLine(i, size)
	}
	produceBigAnywhere(t, broker, topic, values)

	dir := t.TempDir()
	conf := writeConfig(t, dir, "kafka_consumer.conf", telegraftest.KafkaConsumer{
		Brokers: []string{broker.Addr()}, Topics: []string{topic}, ConsumerGroup: topic, Offset: "oldest",
		DataFormat: "influx", More: `  stats_interval = "0s"`}.String())
	cmd := exec.Command(binary("telegraf-kafka-consumer"), "-config", conf)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	startKilledAtEnd(t, cmd)

	// A slow reader, 256 KiB every 25 ms (about 10 MiB/s), that counts the large lines
	// (the markers between them are short).
	var lines atomic.Int64
	go func() {
		buf := make([]byte, 256<<10)
		long := 0 // bytes of the line being read
		for {
			n, err := io.ReadFull(stdout, buf)
			for chunk := buf[:n]; len(chunk) > 0; {
				i := bytes.IndexByte(chunk, '\n')
				if i < 0 {
					long += len(chunk)
					break
				}
				if long+i > size/2 {
					lines.Add(1)
				}
				long, chunk = 0, chunk[i+1:]
			}
			if err != nil {
				return
			}
			time.Sleep(25 * time.Millisecond)
		}
	}()

	// Until the input stops writing: every message it may hold is written and none is
	// confirmed.
	last, still := int64(-1), 0
	deadline := time.Now().Add(50 * time.Second)
	for still < 6 && time.Now().Before(deadline) {
		time.Sleep(500 * time.Millisecond)
		if n := lines.Load(); n == last {
			still++
		} else {
			last, still = n, 0
		}
	}
	peak := peakRSS(t, cmd.Process.Pid)
	t.Logf("telegraf-kafka-consumer: peak RSS %.1f MiB with %d messages of %d bytes written unconfirmed",
		float64(peak)/(1<<20), lines.Load(), size)
	require.Less(t, peak, int64(memoryLimit), "peak RSS of telegraf-kafka-consumer")
	// max_undelivered_bytes (64 MiB) held them back, a message a partition past it at most.
	require.Positive(t, lines.Load())
	require.LessOrEqual(t, lines.Load(), int64(64+partitions))
}

// TestOutputMemoryWithMegabyteLines writes lines of 1 MiB to telegraf-cnosdb's stdin as
// fast as it reads them, into a CnosDB that takes half a second a request, so that
// batches queue up behind its writers. Its peak resident memory must stay under
// memoryLimit, and every line must be stored.
func TestOutputMemoryWithMegabyteLines(t *testing.T) {
	const (
		size  = 1 << 20
		lines = 320
	)
	target := cnosdbtest.Start(t, cnosdbdev.Options{})
	target.Faults().SetLatency(500 * time.Millisecond)
	db := target.NewDatabase(t, "")
	conf := writeConfig(t, t.TempDir(), "cnosdb.conf", telegraftest.CnosDB{
		URLs: []string{target.URL}, Database: db, Username: target.User, Password: target.Password,
		More: "  create_database = false\n  stats_interval = \"0s\"\n"}.String())
	cmd := exec.Command(binary("telegraf-cnosdb"), "-config", conf)
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	startKilledAtEnd(t, cmd)

	written := make(chan error, 1)
	go func() {
		for i := range lines {
			if _, err := stdin.Write(megabyteLine(i, size)); err != nil {
				written <- err
				return
			}
		}
		written <- nil
	}()
	select {
	case err := <-written:
		require.NoError(t, err)
	case <-time.After(50 * time.Second):
		t.Fatal("telegraf-cnosdb did not read every line within 50 s")
	}
	deadline := time.Now().Add(30 * time.Second)
	for target.Count(t, db, "big") < lines {
		require.True(t, time.Now().Before(deadline), "%d of %d lines stored", target.Count(t, db, "big"), lines)
		time.Sleep(200 * time.Millisecond)
	}
	peak := peakRSS(t, cmd.Process.Pid)
	t.Logf("telegraf-cnosdb: peak RSS %.1f MiB writing %d lines of %d bytes", float64(peak)/(1<<20), lines, size)
	require.NoError(t, stdin.Close())
	require.NoError(t, cmd.Wait())
	require.Less(t, peak, int64(memoryLimit), "peak RSS of telegraf-cnosdb")
}

// produceBigAnywhere is produceBig for a topic of several partitions.
func produceBigAnywhere(t *testing.T, b *kafkatest.Broker, topic string, values [][]byte) {
	t.Helper()
	cfg := kafkatest.NewConfig()
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Return.Successes = true
	cfg.Producer.MaxMessageBytes = bigMessage + 1<<20
	// A record batch per message, as producers that batch by a few KiB make them.
	cfg.Producer.Flush.MaxMessages = 1
	producer, err := sarama.NewSyncProducer([]string{b.Addr()}, cfg)
	require.NoError(t, err)
	defer producer.Close()
	msgs := make([]*sarama.ProducerMessage, len(values))
	for i, v := range values {
		msgs[i] = &sarama.ProducerMessage{Topic: topic, Value: sarama.ByteEncoder(v)}
	}
	require.NoError(t, producer.SendMessages(msgs))
}

// startKilledAtEnd starts cmd, kills it when the test ends and shows its stderr if
// the test failed.
func startKilledAtEnd(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("stderr:\n%s", stderr.String())
		}
	})
}
