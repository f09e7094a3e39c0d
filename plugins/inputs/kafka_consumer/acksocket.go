package kafka_consumer

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/internal/ackproto"
)

// firstAckTimeout is how long the first marker may go unanswered before an error says
// that there may be no telegraf-cnosdb to answer it.
const firstAckTimeout = 10 * time.Second

// checkAckSocket validates ack_socket: an absolute-or-relative path in a directory the
// process can create a socket in, short enough for a Unix socket address.
func checkAckSocket(path string) error {
	if path == "" {
		return nil
	}
	if strings.ContainsAny(path, "\n\r\x00") {
		return fmt.Errorf("ack_socket: %q holds a control character", path)
	}
	if len(path) > ackproto.MaxSocketPath {
		return fmt.Errorf("ack_socket: %q is %d bytes long; a Unix socket path takes at most %d", path, len(path), ackproto.MaxSocketPath)
	}
	if !filepath.IsAbs(path) || filepath.Clean(path) != path {
		// The output takes a marker's path only in this form (ackproto.CheckSocketPath).
		return fmt.Errorf("ack_socket: %q must be an absolute path in its shortest form, like %q", path, filepath.Clean("/"+path))
	}
	dir := filepath.Dir(path)
	info, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("ack_socket: the directory of %q: %w (create it, writable by Telegraf's user)", path, err)
	}
	if !info.IsDir() {
		return fmt.Errorf("ack_socket: %q is not a directory", dir)
	}
	if err := unix.Access(dir, unix.W_OK|unix.X_OK); err != nil {
		return fmt.Errorf("ack_socket: the directory %q is not writable by this process: %w", dir, err)
	}
	if info, err := os.Lstat(path); err == nil && info.Mode()&os.ModeSocket == 0 {
		return fmt.Errorf("ack_socket: %q exists and is not a socket; refusing to replace it", path)
	}
	return nil
}

// ackServer accepts the output's connections and hands their messages to the acker.
type ackServer struct {
	acker *acker
	ln    *net.UnixListener
	wg    sync.WaitGroup
	stop  context.CancelFunc

	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

// listenAck listens on path: a socket file left by a process that is gone is
// removed, one that a live process listens on is refused.
func listenAck(path string, a *acker) (*ackServer, error) {
	if _, err := os.Lstat(path); err == nil {
		conn, err := net.DialTimeout("unix", path, time.Second)
		if err == nil {
			conn.Close()
			return nil, fmt.Errorf("ack_socket: another process listens on %q (a second instance with the same ack_socket?)", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("ack_socket: removing the stale socket %q: %w", path, err)
		}
	}
	// The socket is created with mode 0600: only Telegraf's user may acknowledge.
	old := unix.Umask(0o177)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	unix.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("ack_socket: %w", err)
	}
	ln.SetUnlinkOnClose(true)
	return &ackServer{acker: a, ln: ln, conns: make(map[net.Conn]struct{})}, nil
}

// serve accepts connections until close, and checks for overdue acknowledgements
// until ctx ends.
func (s *ackServer) serve(ctx context.Context) {
	ctx, s.stop = context.WithCancel(ctx)
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		for {
			conn, err := s.ln.Accept()
			if err != nil {
				if !errors.Is(err, net.ErrClosed) {
					s.acker.log.Errorf("ack_socket: accepting: %v", err)
				}
				return
			}
			s.mu.Lock()
			if s.conns == nil {
				s.mu.Unlock()
				conn.Close()
				return
			}
			s.conns[conn] = struct{}{}
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.read(conn)
			}()
		}
	}()
	go func() {
		defer s.wg.Done()
		every(ctx, time.Second, func(now time.Time) bool {
			s.acker.check(now)
			return true
		})
	}()
}

// read handles one output's messages until it disconnects.
func (s *ackServer) read(conn net.Conn) {
	defer func() {
		s.mu.Lock()
		delete(s.conns, conn)
		s.mu.Unlock()
		conn.Close()
	}()
	// The output learns from the greeting which instance listens here and the key
	// that signs its markers: it trusts no marker without them.
	_ = conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(conn, ackproto.FormatHello(s.acker.instance, s.acker.key)); err != nil {
		return
	}
	active := false // sent a message about this process's markers
	sc := bufio.NewScanner(conn)
	for sc.Scan() {
		ans, err := ackproto.ParseAnswer(sc.Text())
		if err != nil {
			s.acker.log.Warnf("ack_socket: %v", err)
			continue
		}
		if s.acker.ours(ans.ID) {
			active = true
		}
		s.acker.handle(ans, time.Now())
	}
	if s.closing() {
		return
	}
	if active {
		s.acker.connectionClosed()
	}
}

func (s *ackServer) closing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns == nil
}

// close stops accepting, closes every connection and removes the socket file.
func (s *ackServer) close() {
	s.mu.Lock()
	conns := s.conns
	s.conns = nil
	s.mu.Unlock()
	s.ln.Close()
	if s.stop != nil {
		s.stop()
	}
	for c := range conns {
		c.Close()
	}
	s.wg.Wait()
}

// startAck listens on ack_socket, or on a socket in a private directory of its own,
// and makes the writer hold acks for the output's confirmation; with ack = false it
// does nothing.
func (k *KafkaConsumer) startAck(ctx context.Context) error {
	if !k.Ack {
		k.Log.Warn("ack = false: offsets are committed once messages are handed to Telegraf, " +
			"so messages Telegraf drops when its metric_buffer_limit overflows, or holds when it or its output " +
			"is killed, are lost (docs/delivery.md)")
		return nil
	}
	if k.AckSocket == "" {
		// Only this process and the output, which reads the path from the markers, need
		// it; a directory of mode 0700 keeps other users from acknowledging, and tells
		// the output that this user made it (ackproto.CheckPrivateSocket).
		dir, socket, err := ackproto.MakePrivateSocketDir()
		if err != nil {
			return fmt.Errorf("ack: creating a directory for the acknowledgement socket (set ack_socket, or TMPDIR): %w", err)
		}
		k.ackDir = dir
		k.AckSocket = socket
		if err := checkAckSocket(k.AckSocket); err != nil {
			os.RemoveAll(dir)
			return fmt.Errorf("%w (set ack_socket, or a shorter TMPDIR)", err)
		}
	}
	a := newAcker(k.AckSocket, time.Duration(k.AckTimeout), k.MaxUndeliveredMessages/markersPerSlots, k.Log)
	srv, err := listenAck(k.AckSocket, a)
	if err != nil {
		k.stopAck()
		return err
	}
	a.complete = k.writer.complete
	a.rewrite = k.writer.rewrite
	a.pause = func(on bool) {
		if on {
			k.window.pause()
		} else {
			k.window.resume()
		}
	}
	k.acker, k.ackServer = a, srv
	k.stats.ack = a
	k.writer.hold = a.hold
	a.markPending = k.writer.markPending
	a.giveUp = k.giveUp
	srv.serve(ctx)
	if err := a.greet(); err != nil {
		k.stopAck()
		return fmt.Errorf("ack: writing the first marker: %w", err)
	}
	k.Log.Infof("ack: offsets are committed once telegraf-cnosdb confirms the lines, through %s", k.AckSocket)
	return nil
}

func (k *KafkaConsumer) stopAck() {
	if k.ackServer != nil {
		k.ackServer.close()
		k.ackServer = nil
	}
	if k.ackDir != "" {
		os.RemoveAll(k.ackDir)
		k.AckSocket, k.ackDir = "", ""
	}
}
