package ackproto

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestMarkerRoundTrip(t *testing.T) {
	id := ID{Instance: "0a1b2c3d4e5f6071", Generation: 3, Seq: 42}
	for _, socket := range []string{"/run/ack.sock", `/tmp/a dir,with=odd\chars/ack.sock`} {
		for i, waiting := range []bool{false, true} {
			m := Marker{Socket: socket, ID: id.String(), Waiting: waiting, Lines: int64(i * 1000)}
			line := AppendMarker(nil, m, time.Unix(0, 1700000000000000000))
			require.Equal(t, byte('\n'), line[len(line)-1])
			require.True(t, IsMarker(line))
			got, err := ParseMarker(line[:len(line)-1])
			require.NoError(t, err, "%s", line)
			require.Equal(t, m, got)
			parsed, err := ParseID(got.ID)
			require.NoError(t, err)
			require.Equal(t, id, parsed)
		}
	}
}

func TestParseMarkerIgnoresAddedTagsAndFields(t *testing.T) {
	m, err := ParseMarker([]byte(`telegraf_kafka_cnosdb_ack,host=a,socket=/x\ y.sock,zone=b extra=1i,id="i/0/7",wait=true 1`))
	require.NoError(t, err)
	require.Equal(t, Marker{Socket: "/x y.sock", ID: "i/0/7", Waiting: true}, m)

	_, err = ParseMarker([]byte(`telegraf_kafka_cnosdb_ack,host=a id="i/0/7" 1`))
	require.ErrorContains(t, err, "without a socket tag")
}

func TestIsMarkerIsExact(t *testing.T) {
	for _, line := range []string{"cpu,host=a v=1 1", "telegraf_kafka_cnosdb_acks v=1 1", "telegraf_kafka_cnosdb_ack", "t"} {
		require.False(t, IsMarker([]byte(line)), line)
	}
	require.True(t, IsMarker([]byte(`telegraf_kafka_cnosdb_ack id="x" 1`)))
}

func TestParseMessage(t *testing.T) {
	verb, id, err := ParseMessage("done abc/2/9")
	require.NoError(t, err)
	require.Equal(t, Done, verb)
	require.Equal(t, ID{Instance: "abc", Generation: 2, Seq: 9}, id)
	verb, _, err = ParseMessage("lost abc/2/9\n")
	require.NoError(t, err)
	require.Equal(t, Lost, verb)
	for _, bad := range []string{"", "ok abc/1/2", "done abc/1", "received abc/x/2", "done /1/2"} {
		_, _, err := ParseMessage(bad)
		require.Error(t, err, bad)
	}
}
