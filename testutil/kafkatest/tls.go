package kafkatest

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	pkcs12 "software.sslmate.com/src/go-pkcs12"

	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/testutil/testcert"
)

// keystorePassword protects server.p12. Java needs one for a PKCS#12 file;
// it guards nothing, since the file lives in the test's temp dir next to
// server.pem, which has none.
const keystorePassword = "kafkatest"

// writeTLSFiles creates a CA and a server certificate for 127.0.0.1, ::1
// and localhost signed by it, and writes dir/ca.pem (the CA certificate, for
// clients) and the server's key store: dir/server.pem (the server's PKCS#8
// key followed by its certificate chain, which Kafka 2.7 and newer read with
// ssl.keystore.type=PEM) or, without pemKeystore, dir/server.p12 (the same in a
// PKCS#12 file, protected by keystorePassword, for older brokers).
func writeTLSFiles(dir string, pemKeystore bool) (caPEM []byte, caFile string, err error) {
	pair, err := testcert.New("kafkatest")
	if err != nil {
		return nil, "", err
	}
	caFile = filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, pair.CAPEM, 0o644); err != nil {
		return nil, "", err
	}
	if !pemKeystore {
		p12, err := pkcs12Keystore(pair)
		if err != nil {
			return nil, "", err
		}
		if err := os.WriteFile(filepath.Join(dir, "server.p12"), p12, 0o600); err != nil {
			return nil, "", err
		}
		return pair.CAPEM, caFile, nil
	}
	keystore := append(append([]byte(nil), pair.KeyPEM...), pair.ServerPEM...)
	if err := os.WriteFile(filepath.Join(dir, "server.pem"), keystore, 0o600); err != nil {
		return nil, "", err
	}
	return pair.CAPEM, caFile, nil
}

// pkcs12Keystore encodes pair's server key and certificate chain as a
// PKCS#12 key store.
func pkcs12Keystore(pair *testcert.Pair) ([]byte, error) {
	block, _ := pem.Decode(pair.KeyPEM)
	if block == nil {
		return nil, errors.New("the server key is not PEM")
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parsing the server key: %w", err)
	}
	var chain []*x509.Certificate
	for rest := pair.ServerPEM; ; {
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parsing the server certificate chain: %w", err)
		}
		chain = append(chain, cert)
	}
	if len(chain) == 0 {
		return nil, errors.New("the server certificate chain is empty")
	}
	p12, err := pkcs12.Modern.Encode(key, chain[0], chain[1:], keystorePassword)
	if err != nil {
		return nil, fmt.Errorf("encoding the PKCS#12 key store: %w", err)
	}
	return p12, nil
}
