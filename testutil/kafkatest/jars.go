package kafkatest

import (
	"bufio"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// The script and pom are embedded rather than located on disk so that the
// harness works whatever the working directory of the test binary is.
var (
	//go:embed fetch-kafka.sh
	fetchScript []byte
	//go:embed maven/pom.xml
	pomXML []byte
)

// fetchTimeout bounds the first-run download. It is generous because a slow
// mirror on a fresh machine is not a reason to fail; the normal run takes
// seconds.
const fetchTimeout = 15 * time.Minute

// cacheDir returns the directory holding libs/ for Kafka version, by the same
// rule as fetch-kafka.sh. KAFKA_CACHE_DIR names the one of KafkaVersion only:
// another release is fetched next to it.
func cacheDir(version string) (string, error) {
	if dir := os.Getenv("KAFKA_CACHE_DIR"); dir != "" {
		if version == KafkaVersion {
			return dir, nil
		}
		return filepath.Join(filepath.Dir(filepath.Clean(dir)), "kafka-"+version), nil
	}
	base := os.Getenv("XDG_CACHE_HOME")
	if base == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("finding the cache directory (set KAFKA_CACHE_DIR): %w", err)
		}
		base = filepath.Join(home, ".cache")
	}
	return filepath.Join(base, "telegraf-kafka-cnosdb", "kafka-"+version), nil
}

// jarsComplete reports whether fetch-kafka.sh has published libs/ in dir.
func jarsComplete(dir, version string) bool {
	stamp, err := os.ReadFile(filepath.Join(dir, ".complete"))
	if err != nil || strings.TrimSpace(string(stamp)) != version {
		return false
	}
	_, err = os.Stat(filepath.Join(dir, "libs", "kafka_2.13-"+version+".jar"))
	return err == nil
}

// fetchMu keeps the brokers of one test binary from running the script
// concurrently; the script's own lock covers separate binaries.
var fetchMu sync.Mutex

// ensureJars returns the directory of the jars of Kafka version, running
// fetch-kafka.sh first when they are not cached yet.
func ensureJars(logf func(string, ...any), version string) (libs string, err error) {
	dir, err := cacheDir(version)
	if err != nil {
		return "", err
	}
	libs = filepath.Join(dir, "libs")
	if jarsComplete(dir, version) {
		return libs, nil
	}
	fetchMu.Lock()
	defer fetchMu.Unlock()
	if jarsComplete(dir, version) {
		return libs, nil
	}

	bash, err := exec.LookPath("bash")
	if err != nil {
		return "", errors.New("bash not found on PATH: it runs fetch-kafka.sh to fetch the Kafka jars")
	}
	work, err := os.MkdirTemp("", "kafkatest-fetch-*")
	if err != nil {
		return "", fmt.Errorf("preparing to fetch the Kafka jars: %w", err)
	}
	defer os.RemoveAll(work)
	script, pom, err := writeFetchFiles(work)
	if err != nil {
		return "", fmt.Errorf("preparing to fetch the Kafka jars: %w", err)
	}
	if err := runFetchScript(logf, bash, script, pom, dir, version); err != nil {
		return "", err
	}
	return libs, nil
}

// writeFetchFiles writes fetch-kafka.sh and the pom it reads into dir.
func writeFetchFiles(dir string) (script, pom string, err error) {
	script = filepath.Join(dir, "fetch-kafka.sh")
	pom = filepath.Join(dir, "maven", "pom.xml")
	if err := os.MkdirAll(filepath.Dir(pom), 0o755); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(script, fetchScript, 0o755); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(pom, pomXML, 0o644); err != nil {
		return "", "", err
	}
	return script, pom, nil
}

// runFetchScript runs script with bash to fetch the jars of Kafka version into
// dir, and checks that it did.
func runFetchScript(logf func(string, ...any), bash, script, pom, dir, version string) error {
	ctx, cancel := context.WithTimeout(context.Background(), fetchTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bash, script)
	cmd.Env = append(os.Environ(),
		"KAFKA_VERSION="+version,
		"KAFKA_CACHE_DIR="+dir,
		"KAFKATEST_POM="+pom,
	)
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	began := time.Now()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("running fetch-kafka.sh: %w", err)
	}
	var tail []string
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		tail = relayProgress(logf, pr)
	}()
	err := cmd.Wait()
	pw.Close()
	<-scanned
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("gave up after %v", fetchTimeout)
		}
		return fmt.Errorf("fetching the Kafka %s jars with fetch-kafka.sh (needs mvn and java) failed: %w\n%s",
			version, err, strings.Join(tail, "\n"))
	}
	if !jarsComplete(dir, version) {
		return fmt.Errorf("fetch-kafka.sh succeeded but %s holds no complete Kafka %s jars", filepath.Join(dir, "libs"), version)
	}
	logf("kafkatest: Kafka %s jars ready in %v", version, time.Since(began).Round(time.Millisecond))
	return nil
}

// relayProgress relays the script's progress as it comes, returning the last
// lines for the error message.
func relayProgress(logf func(string, ...any), r io.Reader) (tail []string) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		logf("kafkatest: %s", line)
		if tail = append(tail, line); len(tail) > 40 {
			tail = tail[1:]
		}
	}
	_, _ = io.Copy(io.Discard, r) // keep mvn from blocking on a full pipe after a scan error
	return tail
}
