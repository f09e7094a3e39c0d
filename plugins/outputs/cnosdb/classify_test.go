package cnosdb

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestClassify(t *testing.T) {
	tests := []struct {
		status int
		body   string
		want   outcome
	}{
		{200, "", written},
		{413, "", tooLarge},
		{422, `{"error_code":"050033","error_message":"Memory Exhausted Retry Later"}`, transient},
		{422, `{"error_code":"020005","error_message":"Memory Exhausted Retry Later"}`, transient},
		{422, `{"error_code":"030024","error_message":"write reached limit"}`, transient},
		{422, `{"error_code":"050016","error_message":"pre-execution failed: request timed out"}`, transient},
		{422, `{"error_code":"010016","error_message":"Auth error: Request meta cluster error: connection closed"}`, transient},
		{422, `{"error_code":"040004","error_message":"Error parsing message: unexpect end line start at '17'"}`, rejected},
		{422, `{"error_code":"040015","error_message":"Invalid utf-8 sequence: x"}`, rejected},
		{422, `{"error_code":"050014","error_message":"Apply engine failed: DataSchemaError: Column 'x' type error, found I64 expected F64"}`, rejected},
		{422, `{"error_code":"020004","error_message":"DataSchemaError: x"}`, rejected},
		{422, `{"error_code":"030034","error_message":"Operation not support: create expired bucket"}`, rejected},
		{422, `{"error_code":"010016","error_message":"Auth error: The user alice not found"}`, misconfigured},
		{422, `{"error_code":"030017","error_message":"Database not found: \"telegraf\""}`, misconfigured},
		{422, `{"error_code":"010004","error_message":"Insufficient privileges, expected [...]"}`, misconfigured},
		{400, `{"error_code":"000000","error_message":"Missing request header \"authorization\""}`, misconfigured},
		{400, `{"error_code":"040006","error_message":"Parse auth, malformed basic auth encoding: x"}`, misconfigured},
		{404, "", misconfigured},
		{405, "", misconfigured},
		{500, "", ambiguous},
		{502, "Bad Gateway", transient},
		{503, "", transient},
		{422, `{"error_code":"999999","error_message":"something new"}`, ambiguous},
		{418, "teapot", ambiguous},
	}
	for _, tt := range tests {
		e := parseServerError(tt.status, []byte(tt.body))
		require.Equal(t, tt.want, classify(e), "%d %s", tt.status, tt.body)
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
