package figures

import (
	"math"
	"sort"

	"github.com/seatflow/seatflow/pipeline/event"
	"github.com/seatflow/seatflow/pipeline/row"
)

// tenant is one customer's state.
type tenant struct {
	id    string
	num   uint32 // index in Engine.order
	users userIndex

	act        [][]uint64  // [workload id][user index] day bitmap; nil until used
	firstUsage []event.Day // [workload id] day of first usage, or MaxInt32

	skus     map[string]*tenantSKU
	skuOrder []*tenantSKU
	subs     map[string]*subscription
	subOrder []*subscription

	firstDay  event.Day // day of the tenant's first event
	dirtyFrom event.Day // earliest day whose rows may have changed
	emitted   emittedRows
}

func (e *Engine) tenant(id string) *tenant {
	if t := e.tenants[id]; t != nil {
		return t
	}
	t := &tenant{
		id: string([]byte(id)), num: uint32(len(e.order)),
		skus: map[string]*tenantSKU{}, subs: map[string]*subscription{},
		firstDay: math.MaxInt32, dirtyFrom: math.MaxInt32,
	}
	e.tenants[t.id] = t
	e.order = append(e.order, t)
	return t
}

// applyUsage records user u's usage of workload w on day (both found by
// admit).
func (e *Engine) applyUsage(t *tenant, u uint32, w uint8, ev *event.Event, day event.Day) {
	if int(w) >= e.catalogWorkloads {
		e.stats.UnknownWorkloadEvents++
	}
	for int(w) >= len(t.act) {
		t.act = append(t.act, nil)
		t.firstUsage = append(t.firstUsage, math.MaxInt32)
	}
	col := t.act[w]
	if int(u) >= len(col) {
		col = growTo(col, int(u)+1)
		t.act[w] = col
	}
	bit := uint64(1) << uint(day-e.base)
	if col[u]&bit == 0 {
		col[u] |= bit
		if !e.cfg.NoUserActivity {
			e.activity.add(t.num, u, ev.UserID, w, day)
		}
	}
	if day < t.firstUsage[w] {
		t.firstUsage[w] = day
	}
}

// growTo extends a column to n entries, growing capacity by 1/4 rather
// than doubling: columns are large and memory per user matters.
func growTo[T any](s []T, n int) []T {
	if n <= cap(s) {
		return s[:n]
	}
	c := max(n, cap(s)+cap(s)/4, 16)
	ns := make([]T, n, c)
	copy(ns, s)
	return ns
}

// Assignment state of a user for a SKU.
const (
	unassigned uint8 = iota // no seat (or none since long before the window)
	assigned                // holds a seat, unchanged since before the window
	recent                  // changed recently: see tenantSKU.hist
)

// tenantSKU is a tenant's state for one SKU.
type tenantSKU struct {
	info     *skuInfo
	num      uint16    // the SKU's number in the tenant, for compact row keys
	firstDay event.Day // day of the (tenant, SKU)'s first event
	state    []uint8   // per user index
	hist     map[uint32]*history
}

// history is a user's recent assignment events for one SKU. before is the
// state before the first kept event (older events have been folded in).
type history struct {
	before bool
	events []assignEvent // sorted by (at, id)
	// cached per-day bits, relative to the engine's base
	valid      bool
	held, ends uint64 // held at some moment of the day / assigned at its end
}

type assignEvent struct {
	at       int64
	id       string
	assigned bool
}

func (t *tenant) sku(e *Engine, name string, day event.Day) *tenantSKU {
	ts := t.skus[name]
	if ts == nil {
		ts = &tenantSKU{info: e.sku(name), num: uint16(len(t.skuOrder)), firstDay: day, hist: map[uint32]*history{}}
		t.skus[ts.info.name] = ts
		t.skuOrder = append(t.skuOrder, ts)
		sort.Slice(t.skuOrder, func(i, j int) bool { return t.skuOrder[i].info.name < t.skuOrder[j].info.name })
	}
	if day < ts.firstDay {
		ts.firstDay = day
	}
	return ts
}

func (e *Engine) applyAssignment(t *tenant, u uint32, ev *event.Event, day event.Day) {
	ts := t.sku(e, ev.SKU, day)
	if int(u) >= len(ts.state) {
		ts.state = growTo(ts.state, int(u)+1)
	}
	h := ts.hist[u]
	if h == nil {
		h = &history{before: ts.state[u] == assigned}
		ts.hist[u] = h
		ts.state[u] = recent
	}
	ae := assignEvent{at: ev.OccurredAt, id: ev.EventID, assigned: ev.Assigned}
	i := sort.Search(len(h.events), func(i int) bool {
		x := h.events[i]
		return x.at > ae.at || x.at == ae.at && x.id >= ae.id
	})
	if i < len(h.events) && h.events[i].at == ae.at && h.events[i].id == ae.id {
		return // a duplicate or replay
	}
	ae.id = string([]byte(ae.id))
	h.events = append(h.events, assignEvent{})
	copy(h.events[i+1:], h.events[i:])
	h.events[i] = ae
	h.valid = false
}

// bitsFor computes which days (relative to base) the user held a seat at
// some moment, and held one at the day's end. On day d the state takes the
// value it had at d's first instant and the value after each distinct event
// time within d (ties at one instant resolved by event_id).
func (h *history) bitsFor(base event.Day) (held, ends uint64) {
	if h.valid {
		return h.held, h.ends
	}
	state := h.before
	i := 0
	for b := 0; b < bits; b++ {
		start := int64(base+event.Day(b)) * event.NanosPerDay
		end := start + event.NanosPerDay
		// events up to and including the day's first instant set its start
		for i < len(h.events) && h.events[i].at <= start {
			state = h.events[i].assigned
			i++
		}
		any := state
		for i < len(h.events) && h.events[i].at < end {
			// the last event at one instant (greatest event_id) wins it
			for i+1 < len(h.events) && h.events[i+1].at == h.events[i].at {
				i++
			}
			state = h.events[i].assigned
			any = any || state
			i++
		}
		if any {
			held |= 1 << uint(b)
		}
		if state {
			ends |= 1 << uint(b)
		}
	}
	h.held, h.ends, h.valid = held, ends, true
	return held, ends
}

// shift moves the cached bits along with the bitmaps' first day, rather
// than recomputing them (the bitmaps slide every day, and recomputing every
// recent history cost a quarter of a backfill's flushes). No event lies
// beyond the last day, so the new days hold the state that day ended in.
func (h *history) shift(by event.Day) {
	if !h.valid || by >= bits {
		h.valid = false
		return
	}
	var fill uint64
	if h.ends>>(bits-1) == 1 {
		fill = ^uint64(0) << (bits - uint(by))
	}
	h.held = h.held>>uint(by) | fill
	h.ends = h.ends>>uint(by) | fill
}

// subscription is one subscription's versions, oldest first; versions
// older than the window are folded so that only the last of them remains.
type subscription struct {
	tenant, id string
	versions   []subVersion
}

type subVersion struct {
	at           int64
	eventID      string
	sku, partner string
	quantity     int64
	status       event.Status
	trial        bool
}

func (e *Engine) applySubscription(t *tenant, ev *event.Event, day event.Day) {
	s := t.subs[ev.SubscriptionID]
	if s == nil {
		s = &subscription{tenant: t.id, id: string([]byte(ev.SubscriptionID))}
		t.subs[s.id] = s
		t.subOrder = append(t.subOrder, s)
	}
	v := subVersion{at: ev.OccurredAt, eventID: ev.EventID, sku: ev.SKU, partner: ev.PartnerID,
		quantity: ev.Quantity, status: ev.Status, trial: ev.Trial}
	i := sort.Search(len(s.versions), func(i int) bool {
		x := s.versions[i]
		return x.at > v.at || x.at == v.at && x.eventID >= v.eventID
	})
	if i < len(s.versions) && s.versions[i].at == v.at && s.versions[i].eventID == v.eventID {
		return // duplicate
	}
	ts := t.sku(e, ev.SKU, day)
	v.eventID, v.sku, v.partner = string([]byte(v.eventID)), ts.info.name, string([]byte(v.partner))
	s.versions = append(s.versions, subVersion{})
	copy(s.versions[i+1:], s.versions[i:])
	s.versions[i] = v
	if i == len(s.versions)-1 {
		e.pendingSubs = append(e.pendingSubs, row.Subscription{
			TenantID: t.id, SubscriptionID: s.id, SKU: v.sku, PartnerID: v.partner,
			Status: v.status, Trial: v.trial, Quantity: v.quantity, OccurredAt: v.at,
		})
	}
}

// at is the subscription's state at the end of day d, if it existed then.
func (s *subscription) at(d event.Day) (subVersion, bool) {
	end := int64(d+1) * event.NanosPerDay
	i := sort.Search(len(s.versions), func(i int) bool { return s.versions[i].at >= end })
	if i == 0 {
		return subVersion{}, false
	}
	return s.versions[i-1], true
}
