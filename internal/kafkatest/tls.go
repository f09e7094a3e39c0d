package kafkatest

import (
	"os"
	"path/filepath"

	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/internal/testcert"
)

// writeTLSFiles creates a CA and a server certificate for 127.0.0.1, ::1
// and localhost signed by it, and writes dir/ca.pem (the CA certificate, for
// clients) and dir/server.pem (the server's PKCS#8 key followed by its
// certificate chain, which Kafka reads with ssl.keystore.type=PEM).
func writeTLSFiles(dir string) (caPEM []byte, caFile string, err error) {
	pair, err := testcert.New("kafkatest")
	if err != nil {
		return nil, "", err
	}
	caFile = filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, pair.CAPEM, 0o644); err != nil {
		return nil, "", err
	}
	keystore := append(append([]byte(nil), pair.KeyPEM...), pair.ServerPEM...)
	if err := os.WriteFile(filepath.Join(dir, "server.pem"), keystore, 0o600); err != nil {
		return nil, "", err
	}
	return pair.CAPEM, caFile, nil
}
