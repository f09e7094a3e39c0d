package ackproto

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestMarkerRoundTrip(t *testing.T) {
	key := NewKey()
	id := ID{Instance: NewInstance(), Generation: 3, Seq: 42}
	for _, socket := range []string{"/run/ack.sock", `/tmp/a dir,with=odd\chars/ack.sock`} {
		for i, waiting := range []bool{false, true} {
			m := Marker{Socket: socket, ID: id, Waiting: waiting, Lines: int64(i * 1000)}
			m.MAC = key.Sign(m)
			line := AppendMarker(nil, m, time.Unix(0, 1700000000000000000))
			require.Equal(t, byte('\n'), line[len(line)-1])
			require.True(t, IsMarker(line))
			got, err := ParseMarker(line[:len(line)-1])
			require.NoError(t, err, "%s", line)
			require.Equal(t, m, got)
			require.True(t, key.Verify(got))
		}
	}
}

// The HMAC covers every part of a marker: none can be changed without the key.
func TestMarkerHMACCoversEverything(t *testing.T) {
	key := NewKey()
	m := Marker{Socket: "/tmp/x/ack.sock", ID: ID{Instance: NewInstance(), Generation: 1, Seq: 2}, Lines: 10}
	m.MAC = key.Sign(m)
	require.True(t, key.Verify(m))
	require.False(t, NewKey().Verify(m), "another key")
	for name, change := range map[string]func(*Marker){
		"socket":     func(m *Marker) { m.Socket = "/var/run/docker.sock" },
		"instance":   func(m *Marker) { m.ID.Instance = NewInstance() },
		"generation": func(m *Marker) { m.ID.Generation++ },
		"seq":        func(m *Marker) { m.ID.Seq++ },
		"lines":      func(m *Marker) { m.Lines-- },
		"wait":       func(m *Marker) { m.Waiting = true },
	} {
		changed := m
		change(&changed)
		require.False(t, key.Verify(changed), name)
	}
}

func TestParseMarkerIgnoresAddedTagsAndFields(t *testing.T) {
	m, err := ParseMarker([]byte(`telegraf_kafka_cnosdb_ack,host=a,socket=/x\ y.sock,zone=b extra=1i,id="0123456789abcdef/0/7",lines=0i,mac="0123456789abcdef0123456789abcdef",wait=true 1`))
	require.NoError(t, err)
	require.Equal(t, Marker{Socket: "/x y.sock", ID: ID{Instance: "0123456789abcdef", Seq: 7}, Waiting: true, MAC: "0123456789abcdef0123456789abcdef"}, m)
}

// Only what the input writes parses: anything else a message or another input may
// shape like a marker is refused before the output looks at its socket.
func TestParseMarkerIsStrict(t *testing.T) {
	const (
		id  = `id="0123456789abcdef/0/7"`
		mac = `mac="0123456789abcdef0123456789abcdef"`
	)
	for name, line := range map[string]string{
		"no socket":           `telegraf_kafka_cnosdb_ack ` + id + `,lines=0i,` + mac + ` 1`,
		"no mac":              `telegraf_kafka_cnosdb_ack,socket=/x.sock ` + id + `,lines=0i 1`,
		"no lines":            `telegraf_kafka_cnosdb_ack,socket=/x.sock ` + id + `,` + mac + ` 1`,
		"negative lines":      `telegraf_kafka_cnosdb_ack,socket=/x.sock ` + id + `,lines=-1i,` + mac + ` 1`,
		"an HTTP request id":  `telegraf_kafka_cnosdb_ack,socket=/x.sock id="GET / HTTP/1.1",lines=0i,` + mac + ` 1`,
		"a relative socket":   `telegraf_kafka_cnosdb_ack,socket=x.sock ` + id + `,lines=0i,` + mac + ` 1`,
		"an abstract socket":  `telegraf_kafka_cnosdb_ack,socket=@x.sock ` + id + `,lines=0i,` + mac + ` 1`,
		"a dotted socket":     `telegraf_kafka_cnosdb_ack,socket=/tmp/../x.sock ` + id + `,lines=0i,` + mac + ` 1`,
		"an uppercase mac":    `telegraf_kafka_cnosdb_ack,socket=/x.sock ` + id + `,lines=0i,mac="0123456789ABCDEF0123456789ABCDEF" 1`,
		"a short mac":         `telegraf_kafka_cnosdb_ack,socket=/x.sock ` + id + `,lines=0i,mac="0123" 1`,
		"a short instance":    `telegraf_kafka_cnosdb_ack,socket=/x.sock id="in/0/7",lines=0i,` + mac + ` 1`,
		"a signed seq":        `telegraf_kafka_cnosdb_ack,socket=/x.sock id="0123456789abcdef/0/+7",lines=0i,` + mac + ` 1`,
		"a socket over limit": `telegraf_kafka_cnosdb_ack,socket=/` + strings.Repeat("x", 120) + ` ` + id + `,lines=0i,` + mac + ` 1`,
	} {
		_, err := ParseMarker([]byte(line))
		require.Error(t, err, name)
	}
}

func TestIsMarkerIsExact(t *testing.T) {
	for _, line := range []string{"cpu,host=a v=1 1", "telegraf_kafka_cnosdb_acks v=1 1", "telegraf_kafka_cnosdb_ack", "t"} {
		require.False(t, IsMarker([]byte(line)), line)
	}
	require.True(t, IsMarker([]byte(`telegraf_kafka_cnosdb_ack id="x" 1`)))
}

func TestContainsMarkerSplitsAsTheOutput(t *testing.T) {
	require.False(t, ContainsMarker([]byte("cpu v=1 1\nmem v=2 2\n")))
	require.True(t, ContainsMarker([]byte("cpu v=1 1\ntelegraf_kafka_cnosdb_ack,socket=/x id=\"y\" 1\n")))
	require.True(t, ContainsMarker([]byte("telegraf_kafka_cnosdb_ack v=1 1")))
	require.False(t, ContainsMarker([]byte("log msg=\"a\ntelegraf_kafka_cnosdb_ack,socket=/x v=1\" 1\n")), "inside a string")
	require.False(t, ContainsMarker([]byte("telegraf_kafka_cnosdb_acks v=1 1\n")))
}

func TestAnswersAndGreeting(t *testing.T) {
	id := ID{Instance: NewInstance(), Generation: 2, Seq: 9}
	ans := Answer{Verb: Done, ID: id, MAC: "0123456789abcdef0123456789abcdef"}
	got, err := ParseAnswer(ans.String())
	require.NoError(t, err)
	require.Equal(t, ans, got)
	for _, bad := range []string{"", "ok " + id.String() + " x", "done " + id.String(), "done abc/1/2 x", "done /1/2 x"} {
		_, err := ParseAnswer(bad)
		require.Error(t, err, bad)
	}

	key := NewKey()
	instance, got2, err := ParseHello(FormatHello(id.Instance, key))
	require.NoError(t, err)
	require.Equal(t, id.Instance, instance)
	require.Equal(t, key, got2)
	for _, bad := range []string{"", "HTTP/1.1 400 Bad Request\r\n", "hello x " + key.String(), "hello " + id.Instance + " 00"} {
		_, _, err := ParseHello(bad)
		require.Error(t, err, bad)
	}
}
