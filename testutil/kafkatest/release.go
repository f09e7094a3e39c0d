package kafkatest

import (
	"fmt"
	"strconv"
	"strings"
)

// release is the major and minor number of a Kafka version: what decides how
// the harness runs it.
type release struct{ major, minor int }

// parseRelease reads "2.5.1" or "4.1.2" as a release. The patch and anything
// after it are ignored.
func parseRelease(version string) (release, error) {
	parts := strings.SplitN(version, ".", 3)
	if len(parts) < 2 {
		return release{}, fmt.Errorf("kafka version %q: want major.minor.patch, as 4.1.2", version)
	}
	major, err := strconv.Atoi(parts[0])
	if err != nil {
		return release{}, fmt.Errorf("kafka version %q: major: %w", version, err)
	}
	minor, err := strconv.Atoi(parts[1])
	if err != nil {
		return release{}, fmt.Errorf("kafka version %q: minor: %w", version, err)
	}
	return release{major, minor}, nil
}

func (r release) atLeast(major, minor int) bool {
	return r.major > major || r.major == major && r.minor >= minor
}

// zooKeeper reports whether the harness runs release r on ZooKeeper rather
// than in KRaft mode. KRaft's storage tool takes SCRAM credentials only from
// 3.5 on (KIP-900), and KRaft itself is production-ready only from 3.3
// (KIP-833) and absent before 2.8, so older brokers run as their operators ran
// them: with a ZooKeeper, which holds the SCRAM credentials and is there in
// every release before 4.0. 3.5 and newer run in KRaft mode, as 4.0 and newer
// must.
func (r release) zooKeeper() bool { return !r.atLeast(3, 5) }

// pemKeystore reports whether release r reads a PEM key store
// (ssl.keystore.type=PEM, KIP-651, Kafka 2.7). Older brokers are given a
// PKCS#12 file.
func (r release) pemKeystore() bool { return r.atLeast(2, 7) }
