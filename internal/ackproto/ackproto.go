// Package ackproto is the acknowledgement protocol between the Kafka input and the
// CnosDB output when both run under one Telegraf.
//
// Telegraf counts a metric delivered once it is in an execd output's pipe, so an input
// that commits Kafka offsets when its metrics reach stdout loses what Telegraf drops or
// what dies with a process. With ack_socket set, the input listens on a Unix socket and,
// after each batch it writes, writes a marker metric naming the socket and an id. The
// output does not store markers: it connects to the socket named, says "received <id>"
// when it reads a marker and "done <id>" once every line before the marker has a final
// result (in CnosDB, or rejected by CnosDB and logged). The input commits a batch's
// offsets only on "done".
//
// A marker carries the number of lines the input wrote since its previous marker. Telegraf
// drops the oldest metrics when its buffer overflows, and may drop lines without a marker
// among them: an output that read fewer lines since the previous marker of the same
// input says "lost <id>", and the input writes again what it has not had confirmed.
// Lines of other inputs in between only add, so a count never makes a loss of none.
//
// A marker does not cut the output's request short: under a backlog more lines follow
// at once, and requests as large as the output's batch are what a CnosDB serves
// fastest. A marker with the field wait = true says that the input has stopped until
// it hears "done": the output then writes what it holds as soon as it can.
package ackproto

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/influxdata/line-protocol/v2/lineprotocol"
)

// Measurement names the marker metric. A processor or filter that drops or renames it
// stops the acknowledgements.
const Measurement = "telegraf_kafka_cnosdb_ack"

// Tag and field of the marker.
const (
	SocketTag = "socket"
	IDField   = "id"
	WaitField = "wait"
	// LinesField counts the lines written since the previous marker.
	LinesField = "lines"
)

// Messages from the output to the input, one a line: a verb, a space, an id.
const (
	Received = "received"
	Done     = "done"
	// Lost says that lines before the marker did not reach the output.
	Lost = "lost"
)

// ID names one marker: the input process (Instance, random per start), the rewind
// generation within it, and the batch's sequence number within the generation.
type ID struct {
	Instance   string
	Generation uint64
	Seq        uint64
}

func (id ID) String() string {
	return id.Instance + "/" + strconv.FormatUint(id.Generation, 10) + "/" + strconv.FormatUint(id.Seq, 10)
}

// ParseID parses what ID.String writes.
func ParseID(s string) (ID, error) {
	inst, rest, ok := strings.Cut(s, "/")
	if !ok || inst == "" {
		return ID{}, fmt.Errorf("ack id %q: not instance/generation/seq", s)
	}
	gen, seq, ok := strings.Cut(rest, "/")
	if !ok {
		return ID{}, fmt.Errorf("ack id %q: not instance/generation/seq", s)
	}
	g, err := strconv.ParseUint(gen, 10, 64)
	if err != nil {
		return ID{}, fmt.Errorf("ack id %q: generation: %w", s, err)
	}
	q, err := strconv.ParseUint(seq, 10, 64)
	if err != nil {
		return ID{}, fmt.Errorf("ack id %q: seq: %w", s, err)
	}
	return ID{Instance: inst, Generation: g, Seq: q}, nil
}

// Marker is what a marker line says.
type Marker struct {
	Socket string // where the input listens
	ID     string // what to acknowledge
	// Waiting says that the input reads nothing more until the lines before the
	// marker are done.
	Waiting bool
	// Lines is how many lines the input wrote since its previous marker; 0 when
	// the marker does not say.
	Lines int64
}

// AppendMarker appends the marker line (with its newline) for m.
func AppendMarker(dst []byte, m Marker, at time.Time) []byte {
	var enc lineprotocol.Encoder
	enc.SetBuffer(dst)
	enc.SetPrecision(lineprotocol.Nanosecond)
	enc.StartLine(Measurement)
	enc.AddTag(SocketTag, m.Socket)
	enc.AddField(IDField, lineprotocol.MustNewValue(m.ID))
	if m.Waiting {
		enc.AddField(WaitField, lineprotocol.BoolValue(true))
	}
	if m.Lines > 0 {
		enc.AddField(LinesField, lineprotocol.IntValue(m.Lines))
	}
	enc.EndLine(at)
	return enc.Bytes()
}

// IsMarker reports whether a line of line protocol is a marker: a prefix check that
// costs next to nothing for every other line.
func IsMarker(line []byte) bool {
	if len(line) <= len(Measurement) || line[0] != Measurement[0] || !bytes.HasPrefix(line, []byte(Measurement)) {
		return false
	}
	c := line[len(Measurement)]
	return c == ',' || c == ' '
}

// ParseMarker returns what a marker line says. Other tags and fields, such as a host
// tag Telegraf adds, are ignored.
func ParseMarker(line []byte) (Marker, error) {
	var m Marker
	dec := lineprotocol.NewDecoderWithBytes(line)
	if !dec.Next() {
		return m, errors.New("empty marker")
	}
	name, err := dec.Measurement()
	if err != nil {
		return m, fmt.Errorf("marker: %w", err)
	}
	if string(name) != Measurement {
		return m, fmt.Errorf("marker: measurement %q, expected %q", name, Measurement)
	}
	for {
		key, value, err := dec.NextTag()
		if err != nil {
			return Marker{}, fmt.Errorf("marker: %w", err)
		}
		if key == nil {
			break
		}
		if string(key) == SocketTag {
			m.Socket = string(value)
		}
	}
	for {
		key, value, err := dec.NextField()
		if err != nil {
			return Marker{}, fmt.Errorf("marker: %w", err)
		}
		if key == nil {
			break
		}
		switch {
		case string(key) == IDField && value.Kind() == lineprotocol.String:
			m.ID = value.StringV()
		case string(key) == WaitField && value.Kind() == lineprotocol.Bool:
			m.Waiting = value.BoolV()
		case string(key) == LinesField && value.Kind() == lineprotocol.Int:
			m.Lines = value.IntV()
		}
	}
	if m.Socket == "" || m.ID == "" {
		return Marker{}, fmt.Errorf("marker without a %s tag or a string field %s", SocketTag, IDField)
	}
	return m, nil
}

// ParseMessage parses one line the output sends: verb Received, Done or Lost, and the id.
func ParseMessage(line string) (verb string, id ID, err error) {
	verb, rest, ok := strings.Cut(strings.TrimSpace(line), " ")
	if !ok || (verb != Received && verb != Done && verb != Lost) {
		return "", ID{}, fmt.Errorf("ack message %q: expected %q, %q or %q and an id", line, Received, Done, Lost)
	}
	id, err = ParseID(rest)
	return verb, id, err
}
