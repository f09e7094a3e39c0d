// Package deps pins modules that the project needs before their first real user lands.
package deps

import (
	_ "github.com/BurntSushi/toml"
	_ "github.com/IBM/sarama"
	_ "github.com/andybalholm/brotli"
	_ "github.com/influxdata/line-protocol/v2/lineprotocol"
	_ "github.com/influxdata/telegraf/config"
	_ "github.com/influxdata/telegraf/plugins/common/kafka"
	_ "github.com/influxdata/telegraf/plugins/common/shim"
	_ "github.com/influxdata/telegraf/plugins/common/tls"
	_ "github.com/influxdata/telegraf/plugins/parsers/all"
	_ "github.com/influxdata/telegraf/plugins/parsers/influx"
	_ "github.com/influxdata/telegraf/plugins/serializers/influx"
	_ "github.com/influxdata/telegraf/testutil"
	_ "github.com/klauspost/compress/snappy"
	_ "github.com/klauspost/compress/zstd"
	_ "github.com/pierrec/lz4/v4"
	_ "github.com/stretchr/testify/require"
)
