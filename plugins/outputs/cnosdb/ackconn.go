package cnosdb

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/influxdata/telegraf"

	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/internal/ackproto"
)

// ackDialTimeout bounds connecting to an input's socket and reading its greeting. It
// holds up reading stdin, but once per input: later markers use the connection. A
// live input greets at once and a dead one refuses the connection at once, so the
// bound only matters for a stuck input, and is generous for a busy machine.
const ackDialTimeout = 5 * time.Second

// ackQueue is how many messages may wait for the connection; beyond it the
// connection is dropped, which makes the input write its unconfirmed messages again.
const ackQueue = 1 << 14

// ackConn is the connection to one input process, written by a goroutine of its own.
type ackConn struct {
	path     string
	instance string       // of the input, from its greeting
	key      ackproto.Key // that signs its markers, from its greeting
	opened   time.Time
	log      telegraf.Logger

	queue chan string
	stop  chan struct{}
	done  chan struct{}
	once  sync.Once
	// failed: the input is gone (or another listens on its socket); nothing more is
	// sent.
	failed atomic.Bool
}

// dialInput connects to the input listening on path and reads its greeting.
func dialInput(path string, log telegraf.Logger) (*ackConn, error) {
	conn, instance, key, err := connectInput(path)
	if err != nil {
		return nil, err
	}
	c := &ackConn{
		path: path, instance: instance, key: key, opened: time.Now(), log: log,
		queue: make(chan string, ackQueue), stop: make(chan struct{}), done: make(chan struct{}),
	}
	go c.run(conn)
	go c.watch(conn)
	return c, nil
}

// watch reads conn until it ends. The input sends nothing after its greeting and
// closes its connections only when it stops: an end means that it is gone, and that
// a process listening on the socket now is another.
func (c *ackConn) watch(conn net.Conn) {
	var b [64]byte
	for {
		if _, err := conn.Read(b[:]); err != nil {
			c.close()
			return
		}
	}
}

func connectInput(path string) (net.Conn, string, ackproto.Key, error) {
	var key ackproto.Key
	conn, err := net.DialTimeout("unix", path, ackDialTimeout)
	if err != nil {
		return nil, "", key, fmt.Errorf("cannot connect to the Kafka input: %w", err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(ackDialTimeout))
	// The input sends nothing after its greeting, so the buffer holds nothing more.
	line, err := bufio.NewReaderSize(conn, 128).ReadString('\n')
	if err != nil {
		conn.Close()
		return nil, "", key, fmt.Errorf("no greeting from the Kafka input: %w", err)
	}
	instance, key, err := ackproto.ParseHello(line)
	if err != nil {
		conn.Close()
		return nil, "", key, err
	}
	_ = conn.SetReadDeadline(time.Time{})
	return conn, instance, key, nil
}

// send queues an answer. A full queue drops the connection, which makes the input
// write its unconfirmed messages again.
func (c *ackConn) send(a ackproto.Answer) {
	if c.failed.Load() {
		return
	}
	select {
	case c.queue <- a.String():
	default:
		c.log.Warnf("ack socket %s: the input does not keep up with acknowledgements; disconnecting, and it writes its unconfirmed messages again", c.path)
		c.close()
	}
}

// gone reports whether the connection failed for good.
func (c *ackConn) gone() bool { return c.failed.Load() }

func (c *ackConn) close() {
	c.once.Do(func() {
		c.failed.Store(true)
		close(c.stop)
	})
}

// finish closes the connection once its queue is drained or at deadline.
func (c *ackConn) finish(deadline time.Time) {
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	for len(c.queue) > 0 && !c.failed.Load() {
		select {
		case <-timer.C:
			c.close()
			<-c.done
			return
		case <-time.After(5 * time.Millisecond):
		}
	}
	c.close()
	<-c.done
}

func (c *ackConn) run(conn net.Conn) {
	defer close(c.done)
	defer conn.Close()
	for {
		var msg string
		select {
		case <-c.stop:
			// Send what is queued before closing, as the input reads it anyway.
			for len(c.queue) > 0 {
				_ = conn.SetWriteDeadline(time.Now().Add(time.Second))
				if _, err := conn.Write([]byte(<-c.queue)); err != nil {
					return
				}
			}
			return
		case msg = <-c.queue:
		}
		_ = conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if _, err := conn.Write([]byte(msg)); err != nil {
			// The input is gone, or stuck: the next marker that names it connects
			// again, and an input that sees this connection close writes its
			// unconfirmed batches again.
			if !errors.Is(err, net.ErrClosed) {
				c.log.Warnf("ack socket %s: %v; disconnecting from the Kafka input %s", c.path, err, c.instance)
			}
			c.close()
			return
		}
	}
}
