// Package ackproto is the acknowledgement protocol between the Kafka input and the
// CnosDB output when both run under one Telegraf.
//
// Telegraf counts a metric delivered once it is in an execd output's pipe, so an input
// that commits Kafka offsets when its metrics reach stdout loses what Telegraf drops or
// what dies with a process. The input listens on a Unix socket and, after each batch it
// writes, writes a marker metric naming the socket and an id. The output does not
// store markers: it connects to the socket named, says "received" when it reads a
// marker and "done" once every line before the marker has a final result (in CnosDB,
// or rejected by CnosDB and logged). The input commits a batch's offsets only on
// "done".
//
// Markers travel beside the data, so data must never pass for one. The output trusts
// a marker only when it can tell that the input listening on the socket wrote it:
//
//   - It connects only to a socket the input made in its private directory
//     (PrivateSocket: under the temporary directory, owned by this user, mode 0700) or
//     to one its own configuration lists. A marker naming any other path is refused
//     before anything connects.
//   - On each connection the input first sends a greeting with its instance and a
//     random key of its own (Hello). Every marker carries an HMAC of its contents
//     under that key; one whose id names another instance or whose HMAC does not
//     verify is ignored. The key never travels with the markers, so a marker copied
//     from another output's sink cannot be changed into a valid one.
//   - Markers are numbered without gaps for the life of the input (Seq, across
//     generations). A marker at or below the last one the output took is a replay and
//     is ignored; one that does not follow the last is the sign of a marker Telegraf
//     dropped.
//   - Answers carry the HMAC of the marker they answer, and the input acts only on an
//     answer whose HMAC is the one it issued for that id.
//
// A marker carries the number of lines the input wrote since its previous marker: of
// metrics, not of newline bytes, since a string field may hold newlines. The output
// counts every entry of line protocol it reads that is not a marker it took, also the
// ones it refuses (too long, malformed): Telegraf writes one entry per metric, so the
// two counts agree unless Telegraf dropped lines (the oldest metrics of a full buffer,
// or a filter or processor), and the output then says "lost". Lines of other inputs in
// between only add to the output's count; a dropped marker breaks the numbering and is
// found whatever the count.
//
// A marker does not cut the output's request short: under a backlog more lines follow
// at once, and requests as large as the output's batch are what a CnosDB serves
// fastest. A marker with the field wait = true says that the input has stopped until
// it hears "done": the output then writes what it holds as soon as it can.
package ackproto

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/influxdata/line-protocol/v2/lineprotocol"

	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/internal/lpstream"
)

// Measurement names the marker metric. A processor or filter that drops or renames it
// stops the acknowledgements.
const Measurement = "telegraf_kafka_cnosdb_ack"

// Tag and fields of the marker.
const (
	SocketTag = "socket"
	IDField   = "id"
	WaitField = "wait"
	// LinesField counts the lines written since the previous marker.
	LinesField = "lines"
	// MACField holds the marker's HMAC under the input's key.
	MACField = "mac"
)

// Messages on the socket, one a line. The input greets each connection with Hello;
// the output answers markers with Received, Done or Lost.
const (
	Hello    = "hello"
	Received = "received"
	Done     = "done"
	// Lost says that lines before the marker did not reach the output.
	Lost = "lost"
)

// instanceLen is the length of an instance name: 8 random bytes in lowercase hex.
const instanceLen = 16

// macLen is the length of a marker's HMAC in hex: SHA-256 cut to 128 bits.
const macLen = 32

// MaxSocketPath is the longest socket path: sun_path holds 108 bytes with its NUL.
const MaxSocketPath = 107

// ID names one marker: the input process (Instance, random per start), the rewind
// generation within it, and Seq, which counts the process's markers from 1 without
// gaps across generations.
type ID struct {
	Instance   string
	Generation uint64
	Seq        uint64
}

func (id ID) String() string {
	return id.Instance + "/" + strconv.FormatUint(id.Generation, 10) + "/" + strconv.FormatUint(id.Seq, 10)
}

// ParseID parses what ID.String writes, and nothing else: an instance of 16 lowercase
// hex digits and two decimal numbers.
func ParseID(s string) (ID, error) {
	inst, rest, ok := strings.Cut(s, "/")
	if !ok || !IsInstance(inst) {
		return ID{}, fmt.Errorf("ack id %q: not instance/generation/seq", s)
	}
	gen, seq, ok := strings.Cut(rest, "/")
	if !ok {
		return ID{}, fmt.Errorf("ack id %q: not instance/generation/seq", s)
	}
	g, err := parseDecimal(gen)
	if err != nil {
		return ID{}, fmt.Errorf("ack id %q: generation: %w", s, err)
	}
	q, err := parseDecimal(seq)
	if err != nil {
		return ID{}, fmt.Errorf("ack id %q: seq: %w", s, err)
	}
	return ID{Instance: inst, Generation: g, Seq: q}, nil
}

// parseDecimal takes digits only: no sign, no leading zero but for 0 itself.
func parseDecimal(s string) (uint64, error) {
	if s == "" || (len(s) > 1 && s[0] == '0') || strings.TrimLeft(s, "0123456789") != "" {
		return 0, fmt.Errorf("%q is not a decimal number", s)
	}
	return strconv.ParseUint(s, 10, 64)
}

// IsInstance reports whether s is an instance name: 16 lowercase hex digits.
func IsInstance(s string) bool { return len(s) == instanceLen && isLowerHex(s) }

func isLowerHex(s string) bool {
	for i := range len(s) {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// NewInstance returns a random instance name.
func NewInstance() string {
	var b [instanceLen / 2]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Key is an input's secret: it signs the input's markers.
type Key [32]byte

// NewKey returns a random key.
func NewKey() Key {
	var k Key
	_, _ = rand.Read(k[:])
	return k
}

func (k Key) String() string { return hex.EncodeToString(k[:]) }

// Sign returns the HMAC of what m says (all but MAC) under k, in hex.
func (k Key) Sign(m Marker) string {
	h := hmac.New(sha256.New, k[:])
	// Fields separated by a byte none of them holds, so that no two markers sign alike.
	fmt.Fprintf(h, "%s\x00%s\x00%d\x00%t", m.Socket, m.ID, m.Lines, m.Waiting)
	return hex.EncodeToString(h.Sum(nil)[:macLen/2])
}

// Verify reports whether m.MAC is m's HMAC under k.
func (k Key) Verify(m Marker) bool {
	return hmac.Equal([]byte(m.MAC), []byte(k.Sign(m)))
}

// Marker is what a marker line says.
type Marker struct {
	Socket string // where the input listens
	ID     ID     // what to acknowledge
	// Waiting says that the input reads nothing more until the lines before the
	// marker are done.
	Waiting bool
	// Lines is how many lines the input wrote since its previous marker.
	Lines int64
	// MAC is the HMAC of the rest under the input's key (Key.Sign).
	MAC string
}

// AppendMarker appends the marker line (with its newline) for m.
func AppendMarker(dst []byte, m Marker, at time.Time) []byte {
	var enc lineprotocol.Encoder
	enc.SetBuffer(dst)
	enc.SetPrecision(lineprotocol.Nanosecond)
	enc.StartLine(Measurement)
	enc.AddTag(SocketTag, m.Socket)
	enc.AddField(IDField, lineprotocol.MustNewValue(m.ID.String()))
	enc.AddField(LinesField, lineprotocol.IntValue(m.Lines))
	enc.AddField(MACField, lineprotocol.MustNewValue(m.MAC))
	if m.Waiting {
		enc.AddField(WaitField, lineprotocol.BoolValue(true))
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

// ParseMarker returns what a marker line says, refusing any that does not keep to
// the grammar: a socket path CheckSocketPath takes, a strict id, a count, an HMAC of
// 32 lowercase hex digits. Other tags and fields, such as a host tag Telegraf adds,
// are ignored.
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
	var id string
	lines := int64(-1)
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
			id = value.StringV()
		case string(key) == WaitField && value.Kind() == lineprotocol.Bool:
			m.Waiting = value.BoolV()
		case string(key) == LinesField && value.Kind() == lineprotocol.Int:
			lines = value.IntV()
		case string(key) == MACField && value.Kind() == lineprotocol.String:
			m.MAC = value.StringV()
		}
	}
	if m.Socket == "" || id == "" || lines < 0 || m.MAC == "" {
		return Marker{}, fmt.Errorf("marker without a %s tag, or without the fields %s, %s and %s", SocketTag, IDField, LinesField, MACField)
	}
	if err := CheckSocketPath(m.Socket); err != nil {
		return Marker{}, fmt.Errorf("marker: %w", err)
	}
	if m.ID, err = ParseID(id); err != nil {
		return Marker{}, fmt.Errorf("marker: %w", err)
	}
	if len(m.MAC) != macLen || !isLowerHex(m.MAC) {
		return Marker{}, fmt.Errorf("marker: %s is not %d hex digits", MACField, macLen)
	}
	m.Lines = lines
	return m, nil
}

// CheckSocketPath refuses a path that is no plain file system path of a Unix socket:
// relative, not in its shortest form (no "..", no "//"), holding a control character,
// too long, or naming an abstract socket ('@').
func CheckSocketPath(path string) error {
	switch {
	case !strings.HasPrefix(path, "/"):
		return fmt.Errorf("socket path %q is not absolute", path)
	case filepath.Clean(path) != path:
		return fmt.Errorf("socket path %q is not in its shortest form", path)
	case len(path) > MaxSocketPath:
		return fmt.Errorf("socket path of %d bytes; a Unix socket path takes at most %d", len(path), MaxSocketPath)
	}
	for _, c := range []byte(path) {
		if c < 0x20 || c == 0x7f {
			return fmt.Errorf("socket path %q holds a control character", path)
		}
	}
	return nil
}

// Answer is one line the output sends: a verb, the marker's id and its HMAC.
type Answer struct {
	Verb string
	ID   ID
	MAC  string
}

func (a Answer) String() string { return a.Verb + " " + a.ID.String() + " " + a.MAC + "\n" }

// ParseAnswer parses one line the output sends.
func ParseAnswer(line string) (Answer, error) {
	fields := strings.Fields(line)
	if len(fields) != 3 || (fields[0] != Received && fields[0] != Done && fields[0] != Lost) {
		return Answer{}, fmt.Errorf("ack message %.100q: expected %q, %q or %q, an id and an HMAC", line, Received, Done, Lost)
	}
	id, err := ParseID(fields[1])
	if err != nil {
		return Answer{}, err
	}
	return Answer{Verb: fields[0], ID: id, MAC: fields[2]}, nil
}

// FormatHello is the greeting the input sends first on every connection.
func FormatHello(instance string, key Key) string {
	return Hello + " " + instance + " " + key.String() + "\n"
}

// ParseHello parses the input's greeting.
func ParseHello(line string) (instance string, key Key, err error) {
	fields := strings.Fields(line)
	if len(fields) != 3 || fields[0] != Hello || !IsInstance(fields[1]) || len(fields[2]) != 2*len(key) || !isLowerHex(fields[2]) {
		return "", key, fmt.Errorf("not a greeting of the Kafka input: %.100q", line)
	}
	_, _ = hex.Decode(key[:], []byte(fields[2]))
	return fields[1], key, nil
}

// ContainsMarker reports whether an entry of the line protocol lp is a marker: lp is
// split as the output splits its stdin (a newline in a quoted string does not end an
// entry). It looks at the start of each line first, which costs a search for the
// newlines; only a line that starts with the marker's name is split exactly.
func ContainsMarker(lp []byte) bool {
	for i := 0; i < len(lp); {
		if IsMarker(lp[i:]) {
			return containsMarkerEntry(lp)
		}
		j := bytes.IndexByte(lp[i:], '\n')
		if j < 0 {
			return false
		}
		i += j + 1
	}
	return false
}

func containsMarkerEntry(lp []byte) bool {
	found := false
	lpstream.Entries(lp, func(entry []byte) bool {
		found = IsMarker(entry)
		return !found
	})
	return found
}
