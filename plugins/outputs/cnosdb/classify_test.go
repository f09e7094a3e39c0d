package cnosdb

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestClassify(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		want   outcome
	}{
		{"CnosDB's success", 200, "", written},
		{"any 2xx", 204, "", written},
		{"a 2xx with a body is still a success", 200, `{"error_code":"050014","error_message":"partial"}`, written},
		{"body too large", 413, "", tooLarge},
		{"memory exhausted (2.4)", 422, `{"error_code":"050033","error_message":"Memory Exhausted Retry Later"}`, transient},
		{"memory exhausted (2.3)", 422, `{"error_code":"020005","error_message":"Memory Exhausted Retry Later"}`, transient},
		{"rate limit", 422, `{"error_code":"030024","error_message":"write reached limit"}`, transient},
		{"cluster timeout", 422, `{"error_code":"050016","error_message":"pre-execution failed: request timed out"}`, transient},
		{"lost meta connection", 422, `{"error_code":"010016","error_message":"Auth error: Request meta cluster error: connection closed"}`, transient},
		{"a proxy's rate limit", 429, "", transient},
		{"a proxy's rate limit with a body", 429, "Too Many Requests", transient},
		{"bad gateway", 502, "Bad Gateway", transient},
		{"service unavailable", 503, "", transient},
		{"bad line (2.4.1+)", 422, `{"error_code":"040004","error_message":"Error parsing message: unexpect end line start at '17'"}`, rejected},
		{"bad line with a known code, whatever the status", 500, `{"error_code":"040004","error_message":"Error parsing message: x"}`, rejected},
		{"bad UTF-8", 422, `{"error_code":"040015","error_message":"Invalid utf-8 sequence: x"}`, rejected},
		{"type conflict (2.4)", 422, `{"error_code":"050014","error_message":"Apply engine failed: DataSchemaError: Column 'x' type error, found I64 expected F64"}`, rejected},
		{"type conflict (2.3)", 422, `{"error_code":"020004","error_message":"DataSchemaError: x"}`, rejected},
		{"older than the TTL", 422, `{"error_code":"030034","error_message":"Operation not support: create expired bucket"}`, rejected},
		{"bad line (2.3.x, 2.4.0): 500 and no body", 500, "", suspect},
		{"500 with a body but no code", 500, "Internal Server Error", unknown},
		{"500 with an unknown code", 500, `{"error_code":"999999","error_message":"something new"}`, unknown},
		{"422 with an unknown code", 422, `{"error_code":"999999","error_message":"something new"}`, unknown},
		{"422 without a body", 422, "", unknown},
		{"a teapot", 418, "teapot", unknown},
		{"400 without a code", 400, "Bad Request", unknown},
		{"a redirect", 307, "", unknown},
		{"unknown user", 422, `{"error_code":"010016","error_message":"Auth error: The user alice not found"}`, misconfigured},
		{"no database", 422, `{"error_code":"030017","error_message":"Database not found: \"telegraf\""}`, misconfigured},
		{"no privilege", 422, `{"error_code":"010004","error_message":"Insufficient privileges, expected [...]"}`, misconfigured},
		{"no Authorization", 400, `{"error_code":"000000","error_message":"Missing request header \"authorization\""}`, misconfigured},
		{"malformed Authorization", 400, `{"error_code":"040006","error_message":"Parse auth, malformed basic auth encoding: x"}`, misconfigured},
		{"not a write node", 404, "", misconfigured},
		{"wrong method", 405, "", misconfigured},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := parseServerError(tt.status, []byte(tt.body))
			require.Equal(t, tt.want, classify(e), "%d %s", tt.status, tt.body)
		})
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		value string
		want  time.Duration
	}{
		{"", 0},
		{"0", 0},
		{"2", 2 * time.Second},
		{" 120 ", 2 * time.Minute},
		{"Sat, 01 Mar 2025 12:00:05 GMT", 5 * time.Second},
		{"Saturday, 01-Mar-25 12:01:00 GMT", time.Minute}, // RFC 850, which RFC 9110 still takes
		{"Sat, 01 Mar 2025 11:59:00 GMT", 0},              // in the past
		{"-1", 0},
		{"1.5", 0},
		{"soon", 0},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, parseRetryAfter(tt.value, now), "%q", tt.value)
	}
}

func TestServerErrorText(t *testing.T) {
	e := parseServerError(422, []byte(`{"error_code":"030017","error_message":"Database not found: \"telegraf\""}`))
	require.Equal(t, `HTTP 422, CnosDB error 030017: Database not found: "telegraf"`, e.Error())
	require.Equal(t, "HTTP 500 Internal Server Error (empty body)", parseServerError(500, nil).Error())
	require.Equal(t, "HTTP 502, CnosDB error : Bad Gateway", parseServerError(502, []byte("Bad Gateway\n")).Error())
}

func TestCreateStatement(t *testing.T) {
	require.Equal(t, `CREATE DATABASE IF NOT EXISTS "telegraf"`, createStatement("telegraf", DatabaseOptions{}))
	require.Equal(t, `CREATE DATABASE IF NOT EXISTS "Tele""graf" WITH TTL '30d' SHARD 2 VNODE_DURATION '1d' REPLICA 1 PRECISION 'ms'`,
		createStatement(`Tele"graf`, DatabaseOptions{TTL: "30d", Shard: 2, VnodeDuration: "1d", Replica: 1, Precision: "MS"}))
}
