package figures

import (
	"math"

	"github.com/seatflow/seatflow/pipeline/event"
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

// Pending counts the user_activity rows waiting for a Flush: the rows
// that grow with events between flushes.
func (e *Engine) Pending() int { return e.activity.len() }

// Flush returns every row that changed since the last Flush, stamped with
// version (which must grow from call to call): rows of open days as
// provisional (final = false), rows of closed days as final, and rows of
// closed days that late events changed, again as final.
func (e *Engine) Flush(version uint64) Rows {
	var out Rows
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
		for d := from; d <= current; d++ {
			e.tenantRows(t, d, d <= closed, version, &out)
		}
		t.dirtyFrom = math.MaxInt32
		t.emitted.prune(restatable)
	}
	dayClosed := closed > e.closed
	e.closed, e.computed = max(e.closed, closed), current
	e.unflushedFrom = math.MaxInt32
	e.compact(dayClosed)
	return out
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

func (e *Engine) tenantRows(t *tenant, d event.Day, final bool, version uint64, out *Rows) {
	win := e.windowMask(d)
	dayBit := uint64(0)
	if off := int(d - e.base); off >= 0 && off < bits {
		dayBit = 1 << uint(off)
	}
	var counts [MaxWorkloads]int64
	for _, ts := range t.skuOrder {
		if d < ts.firstDay {
			continue
		}
		var sold, trial int64
		for _, s := range t.subOrder {
			if v, ok := s.at(d); ok && v.sku == ts.info.name && v.status == event.Active {
				if v.trial {
					trial += v.quantity
				} else {
					sold += v.quantity
				}
			}
		}
		var nAssigned, nAll int64
		wls := ts.info.workloads
		for _, w := range wls {
			counts[w] = 0
		}
		for u, st := range ts.state {
			var held uint64
			switch st {
			case unassigned:
				continue
			case assigned:
				held = win
				nAssigned++
			case recent:
				h, ends := ts.hist[uint32(u)].bitsFor(e.base)
				held = h & win
				if ends&dayBit != 0 {
					nAssigned++
				}
			}
			if held == 0 {
				continue
			}
			any := false
			for _, w := range wls {
				if int(w) < len(t.act) && u < len(t.act[w]) && t.act[w][u]&held != 0 {
					counts[w]++
					any = true
				}
			}
			if any {
				nAll++
			}
		}
		qualified := min(nAssigned, sold)
		if t.emitted.update(rowKey{kind: kindDeployment, sku: ts.num, day: d}, rowValue{a: sold, b: trial, c: nAssigned, final: final}) {
			out.Deployment = append(out.Deployment, DeploymentRow{
				TenantID: t.id, SKU: ts.info.name, Product: ts.info.product, Date: d,
				Sold: sold, Trial: trial, Assigned: nAssigned, Qualified: qualified,
				DeploymentPct: pct(nAssigned, sold), Final: final, Version: version,
			})
		}
		usage := func(w uint8, name string, active int64) {
			if t.emitted.update(rowKey{kind: kindUsage, sku: ts.num, workload: w, day: d}, rowValue{a: active, b: qualified, final: final}) {
				out.Usage = append(out.Usage, UsageRow{
					TenantID: t.id, SKU: ts.info.name, Workload: name, Date: d,
					ActiveUsers: active, Qualified: qualified, UsagePct: pct(active, qualified),
					Final: final, Version: version,
				})
			}
		}
		for _, w := range wls {
			usage(w, e.workloads[w], counts[w])
		}
		usage(allID, AllWorkloads, nAll)
	}
	for w, first := range t.firstUsage {
		if d < first {
			continue
		}
		var n int64
		for _, bm := range t.act[w] {
			if bm&win != 0 {
				n++
			}
		}
		if t.emitted.update(rowKey{kind: kindWorkload, workload: uint8(w), day: d}, rowValue{a: n, final: final}) {
			out.Workload = append(out.Workload, WorkloadRow{
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
