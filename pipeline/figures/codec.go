package figures

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"time"

	"github.com/seatflow/seatflow/pipeline/event"
)

// The state format: a magic, a format version, then the engine's fields in
// a fixed order; integers as varints, bitmap columns as raw little-endian
// words. Only what cannot be recomputed is written.
const (
	stateMagic   = "SFST"
	stateVersion = 2
)

// ErrPending means rows are waiting to be flushed: a checkpoint must
// follow a Emit, so that restoring it never writes a row twice.
var ErrPending = errors.New("figures: flush before writing the state")

// WriteState writes the engine's state; call it right after Emit.
func (e *Engine) WriteState(w io.Writer) error {
	if len(e.pendingSubs) > 0 || e.activity.len() > 0 {
		return ErrPending
	}
	bw := &writer{w: bufio.NewWriterSize(w, 1<<20)}
	bw.bytes([]byte(stateMagic))
	bw.uvarint(stateVersion)
	bw.varint(e.lateness)
	bw.varint(e.horizon)
	bw.varint(e.watermark)
	bw.varint(e.maxTime)
	bw.varint(int64(e.base))
	bw.bool(e.started)
	bw.varint(int64(e.closed))
	bw.varint(int64(e.computed))
	bw.varint(int64(e.unflushedFrom))
	bw.uvarint(uint64(len(e.workloads)))
	for _, w := range e.workloads {
		bw.str(w)
	}
	ids := make([]int32, 0, len(e.sources))
	for id := range e.sources {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	bw.uvarint(uint64(len(ids)))
	for _, id := range ids {
		s := e.sources[id]
		bw.varint(int64(id))
		bw.varint(s.high)
		bw.bool(s.idle)
		bw.bool(s.seen)
	}
	bw.uvarint(uint64(len(e.order)))
	for _, t := range e.order {
		t.write(bw)
	}
	if bw.err != nil {
		return fmt.Errorf("write state: %w", bw.err)
	}
	if err := bw.w.Flush(); err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	return nil
}

func (t *tenant) write(w *writer) {
	w.str(t.id)
	w.uvarint(uint64(t.users.len()))
	w.words(t.users.fps)
	w.varint(int64(t.firstDay))
	w.varint(int64(t.dirtyFrom))
	w.uvarint(uint64(len(t.act)))
	for i, col := range t.act {
		w.varint(int64(t.firstUsage[i]))
		w.words(col)
	}
	w.uvarint(uint64(len(t.skuOrder)))
	for _, ts := range t.skuOrder {
		w.str(ts.info.name)
		w.uvarint(uint64(ts.num))
		w.varint(int64(ts.firstDay))
		w.bytes(ts.state)
		users := make([]uint32, 0, len(ts.hist))
		for u := range ts.hist {
			users = append(users, u)
		}
		sort.Slice(users, func(i, j int) bool { return users[i] < users[j] })
		w.uvarint(uint64(len(users)))
		for _, u := range users {
			h := ts.hist[u]
			w.uvarint(uint64(u))
			w.bool(h.before)
			w.uvarint(uint64(len(h.events)))
			for _, ev := range h.events {
				w.varint(ev.at)
				w.str(ev.id)
				w.bool(ev.assigned)
			}
		}
	}
	w.uvarint(uint64(len(t.subOrder)))
	for _, s := range t.subOrder {
		w.str(s.id)
		w.uvarint(uint64(len(s.versions)))
		for _, v := range s.versions {
			w.varint(v.at)
			w.str(v.eventID)
			w.str(v.sku)
			w.str(v.partner)
			w.varint(v.quantity)
			w.uvarint(uint64(v.status))
			w.bool(v.trial)
		}
	}
	w.uvarint(uint64(len(t.emitted)))
	for _, r := range t.emitted {
		w.uvarint(uint64(r.key.kind))
		w.uvarint(uint64(r.key.sku))
		w.uvarint(uint64(r.key.workload))
		w.varint(int64(r.key.day))
		w.u64(r.sum)
	}
}

// ReadState replaces the engine's state with one written by WriteState.
// The engine must have been made with the same catalog and configuration.
func (e *Engine) ReadState(r io.Reader) error {
	br := &reader{r: bufio.NewReaderSize(r, 1<<20)}
	if magic := br.bytes(); string(magic) != stateMagic {
		return fmt.Errorf("read state: not a seatflow state (magic %q)", magic)
	}
	if v := br.uvarint(); v != stateVersion {
		return fmt.Errorf("read state: format version %d, this seatflow reads %d", v, stateVersion)
	}
	lateness, horizon := br.varint(), br.varint()
	if br.err == nil && (lateness != e.lateness || horizon != e.horizon) {
		return fmt.Errorf("read state: written with lateness %s and horizon %s; configured %s and %s",
			fmtDur(lateness), fmtDur(horizon), fmtDur(e.lateness), fmtDur(e.horizon))
	}
	fresh, err := New(e.cfg) // not a default: settings the state does not hold, such as MaxSkew, stay
	if err != nil {
		return err
	}
	n := fresh
	n.watermark, n.maxTime = br.varint(), br.varint()
	n.base = event.Day(br.varint())
	n.started = br.bool()
	n.closed, n.computed, n.unflushedFrom = event.Day(br.varint()), event.Day(br.varint()), event.Day(br.varint())
	// Workloads are stored by name: a catalog that changed since (a SKU
	// added, a workload that sorts first) gives them other ids, and the
	// tenants' columns move to them.
	nw := br.count(MaxWorkloads)
	n.remap = make([]uint8, 0, nw)
	for i := 0; i < nw && br.err == nil; i++ {
		name := br.str()
		id, ok := n.workloadIDOf(name)
		if !ok {
			return fmt.Errorf("read state: workload %s does not fit beside the catalog's (%d at most)", name, MaxWorkloads)
		}
		n.remap = append(n.remap, id)
	}
	ns := br.count(1 << 20)
	for i := 0; i < ns && br.err == nil; i++ {
		id := int32(br.varint())
		s := n.source(id)
		s.high, s.idle, s.seen = br.varint(), br.bool(), br.bool()
	}
	for _, s := range n.sourceList {
		// the watermark has passed up to here: an idle source held it no
		// further back
		s.idleAt = n.watermark + n.lateness
	}
	nt := br.count(1 << 30)
	for i := 0; i < nt && br.err == nil; i++ {
		n.readTenant(br)
	}
	if br.err != nil {
		return fmt.Errorf("read state: %w", br.err)
	}
	n.updateWatermark() // the same watermark; and the slowest busy source
	n.remap = nil
	*e = *n
	return nil
}

func (e *Engine) readTenant(r *reader) {
	t := e.tenant(r.str())
	n := r.count(1 << 32)
	t.users.load(r.words(n))
	t.firstDay, t.dirtyFrom = event.Day(r.varint()), event.Day(r.varint())
	na := r.count(uint64(len(e.remap)))
	moved := false
	for i := 0; i < na && r.err == nil; i++ {
		first, col := event.Day(r.varint()), r.words(-1)
		w := int(e.remap[i])
		for w >= len(t.act) {
			t.act = append(t.act, nil)
			t.firstUsage = append(t.firstUsage, math.MaxInt32)
		}
		t.act[w], t.firstUsage[w] = col, first
		moved = moved || w != i
	}
	nk := r.count(1 << 20)
	for i := 0; i < nk && r.err == nil; i++ {
		name, num := r.str(), uint16(r.uvarint())
		ts := t.sku(e, name, event.Day(r.varint()))
		ts.num = num
		ts.state = r.bytes()
		nh := r.count(1 << 32)
		for j := 0; j < nh && r.err == nil; j++ {
			u := uint32(r.uvarint())
			h := &history{before: r.bool()}
			ne := r.count(1 << 20)
			for k := 0; k < ne && r.err == nil; k++ {
				h.events = append(h.events, assignEvent{at: r.varint(), id: r.str(), assigned: r.bool()})
			}
			ts.hist[u] = h
		}
	}
	nsub := r.count(1 << 24)
	for i := 0; i < nsub && r.err == nil; i++ {
		s := &subscription{tenant: t.id, id: r.str()}
		nv := r.count(1 << 20)
		for j := 0; j < nv && r.err == nil; j++ {
			v := subVersion{at: r.varint(), eventID: r.str(), sku: r.str(), partner: r.str(), quantity: r.varint()}
			v.status, v.trial = event.Status(r.uvarint()), r.bool()
			v.sku = e.sku(v.sku).name
			s.versions = append(s.versions, v)
		}
		t.subs[s.id] = s
		t.subOrder = append(t.subOrder, s)
	}
	ne := r.count(1 << 30)
	for i := 0; i < ne && r.err == nil; i++ {
		k := rowKey{kind: uint8(r.uvarint()), sku: uint16(r.uvarint()), workload: uint8(r.uvarint()), day: event.Day(r.varint())}
		t.emitted = append(t.emitted, emittedRow{k, r.u64()})
	}
	if moved {
		// digests keyed by the old ids: forget them, and emit the rows
		// that may still change again
		t.emitted = nil
		t.dirtyFrom = min(t.dirtyFrom, t.firstDay)
	}
}

type writer struct {
	w   *bufio.Writer
	buf [binary.MaxVarintLen64]byte
	err error
}

func (w *writer) write(b []byte) {
	if w.err == nil {
		_, w.err = w.w.Write(b)
	}
}
func (w *writer) uvarint(v uint64) { w.write(w.buf[:binary.PutUvarint(w.buf[:], v)]) }
func (w *writer) varint(v int64)   { w.write(w.buf[:binary.PutVarint(w.buf[:], v)]) }
func (w *writer) bytes(b []byte)   { w.uvarint(uint64(len(b))); w.write(b) }
func (w *writer) str(s string)     { w.uvarint(uint64(len(s))); w.write([]byte(s)) }
func (w *writer) u64(v uint64) {
	binary.LittleEndian.PutUint64(w.buf[:8], v)
	w.write(w.buf[:8])
}
func (w *writer) bool(b bool) {
	if b {
		w.write([]byte{1})
	} else {
		w.write([]byte{0})
	}
}
func (w *writer) words(ws []uint64) {
	w.uvarint(uint64(len(ws)))
	var b [8 * 512]byte
	for len(ws) > 0 {
		n := min(len(ws), 512)
		for i, v := range ws[:n] {
			binary.LittleEndian.PutUint64(b[8*i:], v)
		}
		w.write(b[:8*n])
		ws = ws[n:]
	}
}

type reader struct {
	r   *bufio.Reader
	err error
}

func (r *reader) fail(err error) {
	if r.err == nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		r.err = err
	}
}
func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, err := binary.ReadUvarint(r.r)
	r.fail(err)
	return v
}
func (r *reader) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, err := binary.ReadVarint(r.r)
	r.fail(err)
	return v
}

// count reads a length and checks it against a sanity bound.
func (r *reader) count(limit uint64) int {
	n := r.uvarint()
	if n > limit {
		r.fail(fmt.Errorf("corrupt state: count %d over %d", n, limit))
		return 0
	}
	return int(n)
}
func (r *reader) bytes() []byte {
	n := r.count(1 << 34)
	if r.err != nil {
		return nil
	}
	b := make([]byte, n)
	_, err := io.ReadFull(r.r, b)
	r.fail(err)
	return b
}
func (r *reader) str() string { return string(r.bytes()) }
func (r *reader) u64() uint64 {
	var b [8]byte
	if r.err != nil {
		return 0
	}
	if _, err := io.ReadFull(r.r, b[:]); err != nil {
		r.fail(err)
		return 0
	}
	return binary.LittleEndian.Uint64(b[:])
}

func (r *reader) bool() bool {
	if r.err != nil {
		return false
	}
	b, err := r.r.ReadByte()
	r.fail(err)
	return b == 1
}

// words reads a word column; want (if not -1) is its expected length.
func (r *reader) words(want int) []uint64 {
	n := r.count(1 << 34)
	if want >= 0 && n != want {
		r.fail(fmt.Errorf("corrupt state: column of %d words, want %d", n, want))
	}
	if r.err != nil {
		return nil
	}
	ws := make([]uint64, n)
	var b [8 * 512]byte
	for i := 0; i < n && r.err == nil; {
		m := min(n-i, 512)
		_, err := io.ReadFull(r.r, b[:8*m])
		r.fail(err)
		for j := 0; j < m; j++ {
			ws[i+j] = binary.LittleEndian.Uint64(b[8*j:])
		}
		i += m
	}
	return ws
}

func fmtDur(ns int64) string { return durOf(ns).String() }

func durOf(ns int64) time.Duration { return time.Duration(ns) }
