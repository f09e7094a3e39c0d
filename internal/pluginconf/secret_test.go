package pluginconf

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestSyntaxErrorsHideSecrets: a value of a secret option that does not parse is
// named by its line and key, never quoted; other syntax errors keep the parser's text.
func TestSyntaxErrorsHideSecrets(t *testing.T) {
	const head = "[[inputs.kafka_consumer]]\n  brokers = [\"b:9092\"]\n"
	tests := []struct{ name, line, want string }{
		{"no quotes", `sasl_password = hunterSECRET2`, "line 3: the value of sasl_password does not parse"},
		{"two words", `password = hunter SECRET`, "line 3: the value of password does not parse"},
		{"a number too large", `sasl_password = 7305918264551732094811660`, "line 3: the value of sasl_password does not parse"},
		{"a bad escape", `sasl_access_token = "a\u00ZZSECRET"`, "line 3: the value of sasl_access_token does not parse"},
		{"a bad date", `tls_key_pwd = 2024-01-01TSECRET`, "line 3: the value of tls_key_pwd does not parse"},
		{"a quoted key", `"sasl_password" = SECRET`, "line 3: the value of sasl_password does not parse"},
		{"an unterminated multi-line string", "sasl_password = \"\"\"SECRET\n  topics = [\"t\"]", "line 4, after sasl_password: a syntax error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseTable(head+"  "+tt.line+"\n", "inputs", "kafka_consumer")
			require.Error(t, err)
			require.Contains(t, err.Error(), tt.want)
			require.NotContains(t, err.Error(), "SECRET")
			require.NotContains(t, err.Error(), "7305918264")
		})
	}

	// Other keys keep the parser's message, which shows what it could not read.
	_, err := ParseTable(head+"  topics = notAList\n", "inputs", "kafka_consumer")
	require.ErrorContains(t, err, `toml: line 3 (last key "inputs.kafka_consumer.topics"): expected value but found "notAList" instead`)
}
