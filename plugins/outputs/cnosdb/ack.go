package cnosdb

import (
	"net"
	"slices"
	"sync"
	"time"

	"github.com/influxdata/telegraf"

	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/internal/ackproto"
)

// acks answers the Kafka input's markers (see package ackproto). A marker is never
// written to CnosDB: it is attached to the batch that holds the lines read before it,
// and "done" is sent for it once that batch's result is final. Sending is best effort
// and never holds up writing: a lost message makes the input read its messages again.
type acks struct {
	log telegraf.Logger

	mu          sync.Mutex
	conns       map[string]*ackConn // by socket path
	fill        []marker            // markers of the batch being filled
	held        map[uint64][]marker // by batch seq, for batches not yet final
	lastFlushed uint64              // seq of the newest flushed batch
	lastFinal   uint64              // seq of the newest batch whose result is final
	// lines read from stdin when each input's previous marker was read: with the
	// count a marker carries, they show lines Telegraf dropped.
	readAtMarker map[string]int64
}

type marker struct {
	socket, id string
}

func newAcks(log telegraf.Logger) *acks {
	return &acks{log: log, conns: make(map[string]*ackConn), held: make(map[uint64][]marker), readAtMarker: make(map[string]int64)}
}

// marker handles a marker read from stdin, its line, after read lines that were not
// markers and while fill lines are in the batch being filled, and reports whether the
// input waits for it.
func (a *acks) marker(entry []byte, fill int, line, read int64) (waiting bool) {
	parsed, err := ackproto.ParseMarker(entry)
	if err != nil {
		a.log.Warnf("stdin line %d: %v; not acknowledged", line, err)
		return false
	}
	m := marker{socket: parsed.Socket, id: parsed.ID}
	a.mu.Lock()
	defer a.mu.Unlock()
	since := read - a.readAtMarker[parsed.Socket]
	a.readAtMarker[parsed.Socket] = read
	if since < parsed.Lines {
		// Telegraf dropped the oldest metrics of its buffer, and none of them was a
		// marker: the input must write them again. Lines of other inputs in between
		// can hide such a loss, never make one up.
		a.log.Warnf("stdin line %d: marker %s follows %d lines where the Kafka input wrote %d: Telegraf dropped the rest (its buffer overflowed, or a filter or processor drops the input's metrics); the input writes them again",
			line, parsed.ID, since, parsed.Lines)
		a.sendLocked(m, ackproto.Lost)
		return parsed.Waiting
	}
	a.sendLocked(m, ackproto.Received)
	switch {
	case fill > 0:
		a.fill = append(a.fill, m)
	case a.lastFlushed > a.lastFinal:
		a.held[a.lastFlushed] = append(a.held[a.lastFlushed], m)
	default:
		// Every line read before it has a final result.
		a.sendLocked(m, ackproto.Done)
	}
	return parsed.Waiting
}

// flushed is called when the batch being filled is handed to the writer as seq.
func (a *acks) flushed(seq uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.lastFlushed = seq
	if len(a.fill) > 0 {
		a.held[seq] = a.fill
		a.fill = nil
	}
}

// lost is called when the batch being filled could not be handed over: its lines are
// gone, so its markers must not be confirmed. Closing the connections makes the input
// read everything it has not had confirmed again.
func (a *acks) lost() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.fill) == 0 {
		return
	}
	a.fill = nil
	for path, c := range a.conns {
		c.close()
		delete(a.conns, path)
	}
}

// result is called with each batch's result, in order. A final one confirms the
// markers of every batch up to it; an aborted one (the plugin is stopping) confirms
// nothing, and the input reads those messages again.
func (a *acks) result(r Result) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.lastFinal = max(a.lastFinal, r.Seq)
	var seqs []uint64
	for seq := range a.held {
		if seq <= r.Seq {
			seqs = append(seqs, seq)
		}
	}
	slices.Sort(seqs)
	for _, seq := range seqs {
		ms := a.held[seq]
		delete(a.held, seq)
		if !r.Done() {
			continue
		}
		for _, m := range ms {
			a.sendLocked(m, ackproto.Done)
		}
	}
}

func (a *acks) sendLocked(m marker, verb string) {
	c, ok := a.conns[m.socket]
	if !ok {
		c = newAckConn(m.socket, a.log)
		a.conns[m.socket] = c
	}
	if !c.send(verb + " " + m.id + "\n") {
		delete(a.conns, m.socket)
	}
}

// close sends what is queued, waiting at most wait.
func (a *acks) close(wait time.Duration) {
	a.mu.Lock()
	conns := a.conns
	a.conns = make(map[string]*ackConn)
	a.mu.Unlock()
	deadline := time.Now().Add(wait)
	for _, c := range conns {
		c.finish(deadline)
	}
}

// ackConn is the connection to one input's socket, written by a goroutine of its own.
type ackConn struct {
	path  string
	log   telegraf.Logger
	queue chan string
	stop  chan struct{}
	done  chan struct{}
	once  sync.Once
}

// ackQueue is how many messages may wait for the connection; beyond it the
// connection is dropped, which makes the input read its unconfirmed messages again.
const ackQueue = 1 << 14

func newAckConn(path string, log telegraf.Logger) *ackConn {
	c := &ackConn{path: path, log: log, queue: make(chan string, ackQueue), stop: make(chan struct{}), done: make(chan struct{})}
	go c.run()
	return c
}

// send queues msg; false means the queue was full and the connection is dropped.
func (c *ackConn) send(msg string) bool {
	select {
	case c.queue <- msg:
		return true
	default:
		c.log.Warnf("ack socket %s: the input does not keep up with acknowledgements; reconnecting, and it reads its unconfirmed messages again", c.path)
		c.close()
		return false
	}
}

func (c *ackConn) close() { c.once.Do(func() { close(c.stop) }) }

// finish closes the queue once drained or at deadline.
func (c *ackConn) finish(deadline time.Time) {
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	for len(c.queue) > 0 {
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

func (c *ackConn) run() {
	defer close(c.done)
	var (
		conn    net.Conn
		warned  bool
		pending string // a message whose write failed, sent again after redialing
	)
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	for {
		msg := pending
		if msg != "" {
			select {
			case <-c.stop:
				return
			default:
			}
		} else {
			select {
			case <-c.stop:
				// Send what is queued before closing, as the input reads it anyway.
				for conn != nil && len(c.queue) > 0 {
					_ = conn.SetWriteDeadline(time.Now().Add(time.Second))
					if _, err := conn.Write([]byte(<-c.queue)); err != nil {
						break
					}
				}
				return
			case msg = <-c.queue:
			}
		}
		pending = ""
		if conn == nil {
			var err error
			conn, err = net.DialTimeout("unix", c.path, time.Second)
			if err != nil {
				conn = nil
				if !warned {
					c.log.Warnf("ack socket %s: cannot connect to the Kafka input (%v); its messages are read again once it is back", c.path, err)
					warned = true
				}
				continue // drop it: an input that is gone ignores it anyway
			}
			if warned {
				c.log.Infof("ack socket %s: connected to the Kafka input again", c.path)
				warned = false
			}
		}
		_ = conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if _, err := conn.Write([]byte(msg)); err != nil {
			conn.Close()
			conn = nil
			if !warned {
				c.log.Warnf("ack socket %s: %v; reconnecting", c.path, err)
				warned = true
			}
			// A new connection is a new output to the input, which may have rewound;
			// the message is sent anyway and ignored if stale.
			pending = msg
			time.Sleep(100 * time.Millisecond)
		}
	}
}
