package kafka_consumer

import (
	"encoding/hex"
	"unicode/utf8"
)

// keyValue returns the message key as msg_key_as_tag writes it: as it is if it is
// valid UTF-8, else "0x" and its bytes in hex, so that the line stays valid UTF-8
// (CnosDB refuses a line that is not) and keys still differ as their bytes do. It is
// empty for a message without a key or with an empty one: its metrics get no tag, as
// line protocol has no empty tag value. The result may be scratch space that the next
// call reuses.
func (d *decoder) keyValue(key []byte) []byte {
	if utf8.Valid(key) {
		return key
	}
	d.keyBuf = hex.AppendEncode(append(d.keyBuf[:0], "0x"...), key)
	return d.keyBuf
}
