package figures

import (
	"math"
	mbits "math/bits"

	"github.com/seatflow/seatflow/pipeline/event"
	"github.com/seatflow/seatflow/pipeline/row"
)

// rowKey names one snapshot row of a tenant.
type rowKey struct {
	day      event.Day
	sku      uint16 // tenantSKU.num
	kind     uint8  // deployment, usage or workload
	workload uint8  // allID for the SKU as a whole
}

// rowValue is what a row says; percentages follow from the counts.
type rowValue struct {
	a, b, c int64
	final   bool
}

const (
	kindDeployment uint8 = iota
	kindUsage
	kindWorkload
	allID = math.MaxUint8
)

// ClosedThrough is the last closed day: the watermark has passed its end.
func (e *Engine) ClosedThrough() event.Day {
	if e.watermark == math.MinInt64 {
		return math.MinInt32
	}
	return event.DayOf(e.watermark) - 1
}

// CurrentDay is the day of the newest event: rows run up to it.
func (e *Engine) CurrentDay() event.Day { return event.DayOf(e.maxTime) }

// Pending counts the user_activity rows waiting for a Emit: the rows
// that grow with events between flushes.
func (e *Engine) Pending() int { return e.activity.len() }

// Emit returns every row that changed since the last Emit, stamped with
// version (which must grow from call to call): rows of open days as
// provisional (final = false), rows of closed days as final, and rows of
// closed days that late events changed, again as final.
func (e *Engine) Emit(version uint64) row.Set {
	var out row.Set
	out.Subscriptions, e.pendingSubs = e.pendingSubs, nil
	for i := range out.Subscriptions {
		out.Subscriptions[i].Version = version
	}
	out.Activity = e.activityRows(version)
	if !e.started {
		return out
	}
	closed := e.ClosedThrough()
	// Closed days get their (carried-forward) rows even when no event has
	// reached them yet, e.g. after a gap in the input.
	current := max(e.CurrentDay(), closed)
	restatable := e.restatableFrom()
	for _, t := range e.order {
		from := t.dirtyFrom
		if closed > e.closed {
			from = min(from, e.closed+1) // newly closed days turn final
		}
		if e.computed != math.MinInt32 {
			from = min(from, e.computed+1) // days that did not exist before
		}
		from = max(from, t.firstDay)
		e.tenantRows(t, from, current, closed, version, &out)
		t.dirtyFrom = math.MaxInt32
		t.emitted.prune(restatable)
	}
	dayClosed := closed > e.closed
	e.closed, e.computed = max(e.closed, closed), current
	e.unflushedFrom = math.MaxInt32
	e.compact(dayClosed)
	return out
}

// Reemit makes the next Emit emit every row that may still change,
// whatever was emitted before. A unit restored from a checkpoint calls it:
// an earlier owner may have written rows after that checkpoint, and the
// new owner's rows (of a higher epoch) must replace every one of them,
// even where its own figure ends equal to what the checkpoint had
// emitted (docs/architecture.md).
func (e *Engine) Reemit() {
	from := e.restatableFrom()
	for _, t := range e.order {
		t.emitted = nil
		t.dirtyFrom = min(t.dirtyFrom, max(from, t.firstDay))
	}
}

// windowMask has the bits of days [d-27, d].
func (e *Engine) windowMask(d event.Day) uint64 {
	hi := int(d - e.base)
	lo := hi - (Window - 1)
	if hi < 0 {
		return 0
	}
	lo = max(lo, 0)
	hi = min(hi, bits-1)
	n := hi - lo + 1
	if n <= 0 {
		return 0
	}
	var m uint64
	if n == bits {
		m = math.MaxUint64
	} else {
		m = (uint64(1)<<uint(n) - 1) << uint(lo)
	}
	return m
}

// spanDays is how many days one pass over a tenant's users computes. A
// flush recomputes several days of each tenant (those since the last
// flush, and newly closed ones); what costs is loading each user's state,
// seat history and activity bitmaps, which one pass does once for all of
// them.
const spanDays = 8

// span is a pass's scratch: counts for up to spanDays days.
type span struct {
	n        int
	win, day [spanDays]uint64 // window mask and own bit of each day
	wide     uint64           // union of the windows
	skus     []skuSpan        // per tenantSKU, in skuOrder
	active   []int64          // [day][workload id] active users, any seat
	// seats of active subscriptions, [tenantSKU.num*spanDays + day]: one
	// pass over the tenant's subscriptions, not one per SKU
	sold, trial []int64
}

type skuSpan struct {
	assigned, all [spanDays]int64
	active        []int64 // [day][index in the SKU's workloads]
}

// tenantRows emits t's rows of days [from, to]; days up to closed are final.
func (e *Engine) tenantRows(t *tenant, from, to, closed event.Day, version uint64, out *row.Set) {
	for from <= to {
		n := min(int(to-from)+1, spanDays)
		sp := &e.span
		sp.n, sp.wide = n, 0
		for i := range n {
			d := from + event.Day(i)
			sp.win[i] = e.windowMask(d)
			sp.day[i] = 0
			if off := int(d - e.base); off >= 0 && off < bits {
				sp.day[i] = 1 << uint(off)
			}
			sp.wide |= sp.win[i]
		}
		e.countSpan(t, from+event.Day(n-1))
		e.countSold(t, from)
		for i := range n {
			d := from + event.Day(i)
			e.dayRows(t, d, i, d <= closed, version, out)
		}
		from += event.Day(n)
	}
}

// hits has bit i set when bm has a day in day i's window.
func (sp *span) hits(bm uint64) uint32 {
	var h uint32
	if bm&sp.wide != 0 {
		for i := range sp.n {
			if bm&sp.win[i] != 0 {
				h |= 1 << uint(i)
			}
		}
	}
	return h
}

// count adds one at counts[i*stride+j] for each day i in hits.
func count(counts []int64, stride, j int, hits uint32) {
	for ; hits != 0; hits &= hits - 1 {
		counts[mbits.TrailingZeros32(hits)*stride+j]++
	}
}

// countSpan makes one pass over t's users for the days of e.span, whose
// last day is last.
func (e *Engine) countSpan(t *tenant, last event.Day) {
	sp := &e.span
	for len(sp.skus) < len(t.skuOrder) {
		sp.skus = append(sp.skus, skuSpan{})
	}
	for k, ts := range t.skuOrder {
		c := &sp.skus[k]
		wls := ts.info.workloads
		c.assigned, c.all = [spanDays]int64{}, [spanDays]int64{}
		c.active = growTo(c.active[:0], sp.n*len(wls))
		clear(c.active)
		if last < ts.firstDay {
			continue
		}
		var always int64 // users assigned throughout
		for u, st := range ts.state {
			var held uint64 // days the seat was held at some moment
			switch st {
			case unassigned:
				continue
			case assigned:
				held = math.MaxUint64
				always++
			case recent:
				var ends uint64
				held, ends = ts.hist[uint32(u)].bitsFor(e.base)
				for i := range sp.n {
					if ends&sp.day[i] != 0 {
						c.assigned[i]++
					}
				}
			}
			if held&sp.wide == 0 {
				continue
			}
			var any uint32 // days active in some workload
			for j, w := range wls {
				if int(w) < len(t.act) && u < len(t.act[w]) {
					h := sp.hits(t.act[w][u] & held)
					count(c.active, len(wls), j, h)
					any |= h
				}
			}
			count(c.all[:], 1, 0, any)
		}
		for i := range sp.n {
			c.assigned[i] += always
		}
	}
	nw := len(t.act)
	sp.active = growTo(sp.active[:0], sp.n*nw)
	clear(sp.active)
	for w, col := range t.act {
		if last < t.firstUsage[w] {
			continue
		}
		for _, bm := range col {
			count(sp.active, nw, w, sp.hits(bm))
		}
	}
}

// countSold sums the seats of t's active subscriptions per SKU for the
// days of e.span, the first of which is from.
func (e *Engine) countSold(t *tenant, from event.Day) {
	sp := &e.span
	sp.sold = growTo(sp.sold[:0], len(t.skuOrder)*spanDays)
	sp.trial = growTo(sp.trial[:0], len(t.skuOrder)*spanDays)
	clear(sp.sold)
	clear(sp.trial)
	for _, s := range t.subOrder {
		for i := range sp.n {
			v, ok := s.at(from + event.Day(i))
			if !ok || v.status != event.Active {
				continue
			}
			at := int(t.skus[v.sku].num)*spanDays + i
			if v.trial {
				sp.trial[at] += v.quantity
			} else {
				sp.sold[at] += v.quantity
			}
		}
	}
}

// dayRows emits t's rows of day d, the i-th of e.span, where they changed.
func (e *Engine) dayRows(t *tenant, d event.Day, i int, final bool, version uint64, out *row.Set) {
	sp := &e.span
	for k, ts := range t.skuOrder {
		if d < ts.firstDay {
			continue
		}
		c := &sp.skus[k]
		sold, trial := sp.sold[int(ts.num)*spanDays+i], sp.trial[int(ts.num)*spanDays+i]
		nAssigned := c.assigned[i]
		qualified := min(nAssigned, sold)
		if t.emitted.update(rowKey{kind: kindDeployment, sku: ts.num, day: d}, rowValue{a: sold, b: trial, c: nAssigned, final: final}) {
			out.Deployment = append(out.Deployment, row.Deployment{
				TenantID: t.id, SKU: ts.info.name, Product: ts.info.product, Date: d,
				Sold: sold, Trial: trial, Assigned: nAssigned, Qualified: qualified,
				DeploymentPct: pct(nAssigned, sold), Final: final, Version: version,
			})
		}
		usage := func(w uint8, name string, active int64) {
			if t.emitted.update(rowKey{kind: kindUsage, sku: ts.num, workload: w, day: d}, rowValue{a: active, b: qualified, final: final}) {
				out.Usage = append(out.Usage, row.Usage{
					TenantID: t.id, SKU: ts.info.name, Workload: name, Date: d,
					ActiveUsers: active, Qualified: qualified, UsagePct: pct(active, qualified),
					Final: final, Version: version,
				})
			}
		}
		wls := ts.info.workloads
		for j, w := range wls {
			usage(w, e.workloads[w], c.active[i*len(wls)+j])
		}
		usage(allID, row.AllWorkloads, c.all[i])
	}
	for w, first := range t.firstUsage {
		if d < first {
			continue
		}
		n := sp.active[i*len(t.act)+w]
		if t.emitted.update(rowKey{kind: kindWorkload, workload: uint8(w), day: d}, rowValue{a: n, final: final}) {
			out.Workload = append(out.Workload, row.Workload{
				TenantID: t.id, Workload: e.workloads[w], Date: d, ActiveUsers: n, Final: final, Version: version,
			})
		}
	}
}

// compact folds assignment and subscription history that is older than
// the bitmaps' first day: it can no longer change a figure.
func (e *Engine) compact(dayClosed bool) {
	if f := e.floor(); f != math.MinInt32 && f > e.base {
		e.shift(f - e.base)
	}
	// Events before the bitmaps' first day are refused, so history can
	// have become foldable only if that day moved since the last fold:
	// between day ends, a flush need not visit every user's history.
	fold := e.base != e.foldedBase
	e.foldedBase = e.base
	if !fold && !dayClosed {
		return
	}
	baseStart := int64(e.base) * event.NanosPerDay
	for _, t := range e.order {
		if dayClosed {
			// once a day at most: give back the columns' growth slack
			t.users.trim()
			for w := range t.act {
				t.act[w] = trim(t.act[w])
			}
			for _, ts := range t.skuOrder {
				ts.state = trim(ts.state)
			}
		}
		if !fold {
			continue
		}
		for _, ts := range t.skuOrder {
			folded := false
			for u, h := range ts.hist {
				n := 0
				for n < len(h.events) && h.events[n].at < baseStart {
					h.before = h.events[n].assigned
					n++
				}
				if n == 0 {
					continue
				}
				h.events = append(h.events[:0], h.events[n:]...)
				h.valid = false
				if len(h.events) == 0 {
					ts.state[u] = unassigned
					if h.before {
						ts.state[u] = assigned
					}
					delete(ts.hist, u)
					folded = true
				}
			}
			if folded { // a new map: Go maps keep their peak size
				m := make(map[uint32]*history, len(ts.hist))
				for u, h := range ts.hist {
					m[u] = h
				}
				ts.hist = m
			}
		}
		for _, s := range t.subOrder {
			n := 0
			for n+1 < len(s.versions) && s.versions[n+1].at < baseStart {
				n++
			}
			if n > 0 {
				s.versions = append(s.versions[:0], s.versions[n:]...)
			}
		}
	}
}
