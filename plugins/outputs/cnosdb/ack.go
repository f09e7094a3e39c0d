package cnosdb

import (
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/influxdata/telegraf"

	"github.com/telegraf-kafka-cnosdb/telegraf-kafka-cnosdb/internal/ackproto"
)

// acks answers the Kafka input's markers (see package ackproto). A marker is never
// written to CnosDB: it is attached to the batch that holds the lines read before it,
// and "done" is sent for it once that batch's result is final. Sending is best effort
// and never holds up writing: a lost message makes the input read its messages again.
//
// Nothing read from stdin steers where this connects: a marker naming a socket that
// is neither an input's private socket nor listed in ack_sockets is refused before
// any connection, and a marker is acted on only once the input listening there has
// said, in its greeting, that it is the instance the marker names, and the marker's
// HMAC verifies under the key of that greeting.
type acks struct {
	log telegraf.Logger
	// sockets are the paths of ack_sockets, which markers may name besides the
	// inputs' private sockets.
	sockets map[string]bool

	mu          sync.Mutex
	inputs      map[string]*inputState // by instance
	fill        []marker               // markers of the batch being filled
	held        map[uint64][]marker    // by batch seq, for batches not yet final
	lastFlushed uint64                 // seq of the newest flushed batch
	lastFinal   uint64                 // seq of the newest batch whose result is final
	// refused holds, for a while, the socket paths a marker named that were not to
	// be connected to or did not answer, so that each is logged and tried once.
	refused map[string]time.Time
	// broken holds, by instance, the generation up to which no marker may be
	// confirmed: a batch read before one of them ended without a final result.
	broken map[string]uint64
	// lastWarn: when a marker ignored for its contents was last logged.
	lastWarn time.Time
}

// inputState is what the output knows of one input process.
type inputState struct {
	conn *ackConn
	// lastSeq is the seq of the last marker taken (0: none yet), read the lines read
	// when it was: the next marker counts the lines since.
	lastSeq uint64
	lastGen uint64
	readAt  int64
}

type marker struct {
	conn *ackConn
	id   ackproto.ID
	mac  string
}

func (m marker) answer(verb string) ackproto.Answer {
	return ackproto.Answer{Verb: verb, ID: m.id, MAC: m.mac}
}

// maxInputs bounds the inputs whose state is kept; refusedFor is how long a refused
// socket path is remembered.
const (
	maxInputs  = 64
	refusedFor = 10 * time.Second
)

func newAcks(sockets []string, log telegraf.Logger) *acks {
	a := &acks{
		log:     log,
		sockets: make(map[string]bool, len(sockets)),
		inputs:  make(map[string]*inputState),
		held:    make(map[uint64][]marker),
		refused: make(map[string]time.Time),
		broken:  make(map[string]uint64),
	}
	for _, s := range sockets {
		a.sockets[s] = true
	}
	return a
}

// marker handles an entry of stdin in the marker's name, its line, after read lines
// that were not markers and while fill lines are in the batch being filled. taken
// reports that it is a marker of an input, which is not a line to count or write;
// waiting that the input waits for it.
func (a *acks) marker(entry []byte, fill int, line, read int64) (taken, waiting bool) {
	parsed, err := ackproto.ParseMarker(entry)
	if err != nil {
		a.warn("stdin line %d: %v; ignored", line, err)
		return false, false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	st := a.inputLocked(parsed.Socket, parsed.ID.Instance, line)
	if st == nil {
		return false, false
	}
	if !st.conn.key.Verify(parsed) {
		a.warn("stdin line %d: a marker for %s whose HMAC does not verify under the key of the input listening there: "+
			"not written by it (another input of this Telegraf, or data shaped like a marker); ignored", line, parsed.Socket)
		return false, false
	}
	if parsed.ID.Seq <= st.lastSeq {
		// A copy of a marker taken before: it says nothing new.
		a.warn("stdin line %d: marker %s comes again after marker %d; ignored", line, parsed.ID, st.lastSeq)
		return true, false
	}
	m := marker{conn: st.conn, id: parsed.ID, mac: parsed.MAC}
	since := read - st.readAt
	verdict := ""
	switch {
	case st.lastSeq == 0 && parsed.Lines > 0:
		verdict = "is the first of its input this output reads, so the lines before it cannot be counted"
	case st.lastSeq != 0 && parsed.ID.Seq != st.lastSeq+1:
		verdict = "does not follow marker " + strconv.FormatUint(st.lastSeq, 10) + ": the markers between were dropped, and lines with them"
	case st.lastSeq != 0 && since < parsed.Lines:
		verdict = "follows " + strconv.FormatInt(since, 10) + " lines where the Kafka input wrote " + strconv.FormatInt(parsed.Lines, 10) +
			": Telegraf dropped the rest (its buffer overflowed, or a filter or processor drops the input's metrics)"
	}
	st.lastSeq, st.lastGen, st.readAt = parsed.ID.Seq, parsed.ID.Generation, read
	if verdict != "" {
		a.log.Warnf("stdin line %d: marker %s %s; the input writes them again", line, parsed.ID, verdict)
		st.conn.send(m.answer(ackproto.Lost))
		return true, parsed.Waiting
	}
	st.conn.send(m.answer(ackproto.Received))
	switch {
	case a.isBroken(parsed.ID):
		// Lines before it were given up: it is never confirmed, and the input writes
		// its batch again once this output is gone or the input writes again.
	case fill > 0:
		a.fill = append(a.fill, m)
	case a.lastFlushed > a.lastFinal:
		a.held[a.lastFlushed] = append(a.held[a.lastFlushed], m)
	default:
		// Every line read before it has a final result.
		m.conn.send(m.answer(ackproto.Done))
	}
	return true, parsed.Waiting
}

// inputLocked returns the state of the input instance that listens on socket,
// connecting to it first if need be; nil if the marker that names them is not to be
// trusted or the input is not there.
func (a *acks) inputLocked(socket, instance string, line int64) *inputState {
	if st, ok := a.inputs[instance]; ok && st.conn.path == socket && !st.conn.gone() {
		return st
	}
	for _, st := range a.inputs {
		if st.conn.path == socket && !st.conn.gone() {
			// Another instance listens there: the marker is of one before it, which is
			// gone, or forged.
			return nil
		}
	}
	now := time.Now()
	if at, ok := a.refused[socket]; ok && now.Sub(at) < refusedFor {
		return nil
	}
	if len(a.refused) >= maxInputs {
		for path, at := range a.refused {
			if now.Sub(at) >= refusedFor {
				delete(a.refused, path)
			}
		}
	}
	if !a.sockets[socket] {
		if err := ackproto.CheckPrivateSocket(socket); err != nil {
			if len(a.refused) < maxInputs {
				a.refused[socket] = now
				a.log.Errorf("stdin line %d: a marker names the socket %q, which is neither the private socket of a Kafka "+
					"input of this user nor listed in ack_sockets (%v); nothing connects to it and the marker is ignored. "+
					"If it is the ack_socket of your input, list it in ack_sockets", line, socket, err)
			}
			return nil
		}
	}
	c, err := dialInput(socket, a.log)
	if err != nil {
		if len(a.refused) < maxInputs {
			a.refused[socket] = now
			a.log.Warnf("ack socket %s: %v; markers naming it are ignored (an input that is gone writes its messages again when it is back)", socket, err)
		}
		return nil
	}
	st := a.addInputLocked(c)
	if c.instance != instance {
		// A later input listens on the socket: the marker is of one before it, which
		// is gone, or forged.
		return nil
	}
	return st
}

// addInputLocked keeps the state of the input c is connected to, in place of any
// before it on the same socket or of the same instance, and of inputs whose
// connection failed.
func (a *acks) addInputLocked(c *ackConn) *inputState {
	for inst, st := range a.inputs {
		if inst == c.instance || st.conn.path == c.path || st.conn.gone() {
			st.conn.close()
			delete(a.inputs, inst)
		}
	}
	if len(a.inputs) >= maxInputs {
		// Inputs that come and go on named sockets: forget the oldest connection.
		var oldest string
		for inst, st := range a.inputs {
			if oldest == "" || st.conn.opened.Before(a.inputs[oldest].conn.opened) {
				oldest = inst
			}
		}
		a.inputs[oldest].conn.close()
		delete(a.inputs, oldest)
	}
	st := &inputState{conn: c}
	a.inputs[c.instance] = st
	return st
}

func (a *acks) warn(format string, args ...any) {
	// One line per marker-shaped entry would let data flood Telegraf's log.
	if now := time.Now(); now.Sub(a.lastWarn) >= 10*time.Second {
		a.lastWarn = now
		a.log.Warnf(format, args...)
	}
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
// gone, so its markers must not be confirmed, nor any marker read before it. Closing
// the connections makes the inputs write again everything they have not had
// confirmed, and the markers of those rewrites, of later generations, are confirmed
// as usual.
func (a *acks) lost() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.fill = nil
	a.breakLocked()
}

// abandoned is called when batch seq ends without a final result (a damaged spool
// entry): like an aborted result.
func (a *acks) abandoned(seq uint64) {
	a.result(Result{Seq: seq, Aborted: 1})
}

// breakLocked stops the confirmation of every marker read so far, and of any later
// one of the same generation, and closes the connections: an input whose connection
// closes with batches unconfirmed writes them again, in a new generation, whose
// markers are confirmed as usual.
func (a *acks) breakLocked() {
	for inst, st := range a.inputs {
		if len(a.broken) < maxInputs {
			a.broken[inst] = max(a.broken[inst], st.lastGen)
		}
		st.conn.close()
		delete(a.inputs, inst)
	}
	clear(a.held)
}

// isBroken reports whether the marker id may not be confirmed (see breakLocked).
func (a *acks) isBroken(id ackproto.ID) bool {
	gen, ok := a.broken[id.Instance]
	return ok && id.Generation <= gen
}

// result is called with each batch's result, in order. A final one confirms the
// markers of every batch up to it. An aborted one (the plugin is stopping, or a spool
// entry was damaged) confirms nothing, neither its markers nor any later one: the
// input writes those messages again, or reads them again at its next start.
func (a *acks) result(r Result) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.lastFinal = max(a.lastFinal, r.Seq)
	if !r.Done() {
		a.breakLocked()
		return
	}
	var seqs []uint64
	for seq := range a.held {
		if seq <= r.Seq {
			seqs = append(seqs, seq)
		}
	}
	slices.Sort(seqs)
	for _, seq := range seqs {
		for _, m := range a.held[seq] {
			m.conn.send(m.answer(ackproto.Done))
		}
		delete(a.held, seq)
	}
}

// close sends what is queued, waiting at most wait.
func (a *acks) close(wait time.Duration) {
	a.mu.Lock()
	inputs := a.inputs
	a.inputs = make(map[string]*inputState)
	a.mu.Unlock()
	deadline := time.Now().Add(wait)
	for _, st := range inputs {
		st.conn.finish(deadline)
	}
}
