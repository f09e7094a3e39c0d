package ackproto

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// Without ack_socket, the input makes its socket in a directory of its own under the
// temporary directory, named PrivateDirPrefix and a random suffix, and calls it
// PrivateSocketName. The output connects to such a path without being told of it,
// after checking that this user made it (CheckPrivateSocket); both processes are
// children of one Telegraf and see the same TMPDIR.
const (
	PrivateDirPrefix  = "telegraf-kafka-consumer-"
	PrivateSocketName = "ack.sock"
)

// MakePrivateSocketDir creates a private directory (mode 0700) for the input's socket
// and returns it and the socket's path in it.
func MakePrivateSocketDir() (dir, socket string, err error) {
	dir, err = os.MkdirTemp("", PrivateDirPrefix)
	if err != nil {
		return "", "", err
	}
	return dir, filepath.Join(dir, PrivateSocketName), nil
}

// CheckPrivateSocket returns nil if path is the socket of an input of this user in
// its private directory: <temporary directory>/<PrivateDirPrefix><suffix>/ack.sock,
// the directory no link, owned by this user and closed to everyone else, the socket a
// socket owned by this user. No one else can make such a path, so a marker that names
// it cannot steer a connection elsewhere.
func CheckPrivateSocket(path string) error {
	if err := CheckSocketPath(path); err != nil {
		return err
	}
	dir, name := filepath.Split(path)
	dir = filepath.Clean(dir)
	parent, base := filepath.Split(dir)
	suffix, ok := strings.CutPrefix(base, PrivateDirPrefix)
	if name != PrivateSocketName || !ok || suffix == "" || filepath.Clean(parent) != filepath.Clean(os.TempDir()) {
		return fmt.Errorf("%q is not the socket of a Kafka input in its private directory %s",
			path, filepath.Join(os.TempDir(), PrivateDirPrefix+"*", PrivateSocketName))
	}
	info, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	uid := uint32(os.Geteuid())
	if st, ok := info.Sys().(*syscall.Stat_t); !info.IsDir() || !ok || st.Uid != uid || info.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("%q is not a directory of this user (uid %d) closed to others", dir, uid)
	}
	info, err = os.Lstat(path)
	if err != nil {
		return err
	}
	if st, ok := info.Sys().(*syscall.Stat_t); info.Mode()&os.ModeSocket == 0 || !ok || st.Uid != uid {
		return fmt.Errorf("%q is not a socket of this user (uid %d)", path, uid)
	}
	return nil
}
