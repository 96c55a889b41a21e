// Package reference is a deliberately simple, obviously correct model of
// SPEC §3 and §4: it recomputes every figure from the whole list of
// accepted events, with no incremental state. It is slow on purpose and
// exists to check the figure core (pipeline/figures) and, end to end, what
// lands in ClickHouse.
package reference

import (
	"sort"

	"github.com/seatflow/seatflow/pipeline/catalog"
	"github.com/seatflow/seatflow/pipeline/event"
)

// Deployment is a deployment_daily row's figures.
type Deployment struct {
	Product                          string
	Sold, Trial, Assigned, Qualified int64
	DeploymentPct                    *float64
}

// Usage is a usage_daily row's figures.
type Usage struct {
	ActiveUsers, Qualified int64
	UsagePct               *float64
}

// Key names a row: Workload is empty for deployment rows and SKU for
// workload rows.
type Key struct {
	TenantID, SKU, Workload string
	Date                    event.Day
}

// Subscription is a subscriptions row's content.
type Subscription struct {
	SKU, PartnerID string
	Status         event.Status
	Trial          bool
	Quantity       int64
	OccurredAt     int64
}

// Activity is a user_activity row.
type Activity struct {
	TenantID, UserID, Workload string
	Date                       event.Day
}

// Result holds every row for every day through the last day.
type Result struct {
	Deployment    map[Key]Deployment
	Usage         map[Key]Usage
	Workload      map[Key]int64
	Subscriptions map[[2]string]Subscription
	Activity      map[Activity]bool
}

// Compute builds all rows from the accepted events, for days up to through.
// Duplicates (same event twice) count once.
func Compute(events []event.Event, cat *catalog.Catalog, through event.Day) Result {
	res := Result{
		Deployment: map[Key]Deployment{}, Usage: map[Key]Usage{}, Workload: map[Key]int64{},
		Subscriptions: map[[2]string]Subscription{}, Activity: map[Activity]bool{},
	}
	byTenant := map[string][]event.Event{}
	for _, ev := range events {
		byTenant[ev.TenantID] = append(byTenant[ev.TenantID], ev)
	}
	for tenant, evs := range byTenant {
		computeTenant(tenant, evs, cat, through, &res)
	}
	return res
}

// ComputeUnits is Compute for a pipeline of units (SPEC §5): each
// tenant's rows run up to the newest day of its unit's events, whatever
// the other units have reached. unit says which unit a tenant is in.
func ComputeUnits(events []event.Event, cat *catalog.Catalog, unit func(tenantID string) int) Result {
	res := Result{
		Deployment: map[Key]Deployment{}, Usage: map[Key]Usage{}, Workload: map[Key]int64{},
		Subscriptions: map[[2]string]Subscription{}, Activity: map[Activity]bool{},
	}
	byTenant := map[string][]event.Event{}
	through := map[int]event.Day{}
	for _, ev := range events {
		byTenant[ev.TenantID] = append(byTenant[ev.TenantID], ev)
		u := unit(ev.TenantID)
		if d, ok := through[u]; !ok || event.DayOf(ev.OccurredAt) > d {
			through[u] = event.DayOf(ev.OccurredAt)
		}
	}
	for tenant, evs := range byTenant {
		computeTenant(tenant, evs, cat, through[unit(tenant)], &res)
	}
	return res
}

func computeTenant(tenant string, evs []event.Event, cat *catalog.Catalog, through event.Day, res *Result) {
	firstSKU := map[string]event.Day{}
	firstUsage := map[string]event.Day{}
	subs := map[string][]event.Event{}
	assign := map[[2]string][]event.Event{}         // (user, sku)
	usageDays := map[[2]string]map[event.Day]bool{} // (user, workload) → days
	for _, ev := range evs {
		d := event.DayOf(ev.OccurredAt)
		switch ev.Kind {
		case event.Subscription:
			subs[ev.SubscriptionID] = append(subs[ev.SubscriptionID], ev)
			setMin(firstSKU, ev.SKU, d)
		case event.Assignment:
			k := [2]string{ev.UserID, ev.SKU}
			assign[k] = append(assign[k], ev)
			setMin(firstSKU, ev.SKU, d)
		case event.Usage:
			w := cat.Canonical(ev.Workload)
			k := [2]string{ev.UserID, w}
			if usageDays[k] == nil {
				usageDays[k] = map[event.Day]bool{}
			}
			usageDays[k][d] = true
			setMin(firstUsage, w, d)
			res.Activity[Activity{TenantID: tenant, UserID: ev.UserID, Workload: w, Date: d}] = true
		}
	}
	for id, versions := range subs {
		last := latest(versions, 1<<62)
		res.Subscriptions[[2]string{tenant, id}] = Subscription{
			SKU: last.SKU, PartnerID: last.PartnerID, Status: last.Status, Trial: last.Trial,
			Quantity: last.Quantity, OccurredAt: last.OccurredAt,
		}
	}

	heldMemo := map[Activity]bool{}
	held := func(user, sku string, d event.Day) bool {
		k := Activity{UserID: user, Workload: sku, Date: d}
		v, ok := heldMemo[k]
		if !ok {
			v = heldOn(assign[[2]string{user, sku}], d)
			heldMemo[k] = v
		}
		return v
	}
	for sku, first := range firstSKU {
		var workloads []string
		product := ""
		if s, ok := cat.SKU(sku); ok {
			workloads, product = s.Workloads, s.Product
		}
		for D := first; D <= through; D++ {
			end := int64(D+1) * event.NanosPerDay
			var sold, trial, assigned int64
			for _, versions := range subs {
				v := latest(versions, end)
				if v != nil && v.SKU == sku && v.Status == event.Active {
					if v.Trial {
						trial += v.Quantity
					} else {
						sold += v.Quantity
					}
				}
			}
			for k, as := range assign {
				if k[1] != sku {
					continue
				}
				if v := latest(as, end); v != nil && v.Assigned {
					assigned++
				}
			}
			qualified := min(assigned, sold)
			res.Deployment[Key{TenantID: tenant, SKU: sku, Date: D}] = Deployment{
				Product: product, Sold: sold, Trial: trial, Assigned: assigned, Qualified: qualified,
				DeploymentPct: pct(assigned, sold),
			}
			// active: used workload W of the SKU on a day d of [D-27, D]
			// while holding the SKU at some moment of d.
			activeIn := func(user, w string) bool {
				for d := D - 27; d <= D; d++ {
					if usageDays[[2]string{user, w}][d] && held(user, sku, d) {
						return true
					}
				}
				return false
			}
			users := map[string]bool{}
			for k := range usageDays {
				users[k[0]] = true
			}
			all := map[string]bool{}
			for _, w := range workloads {
				var n int64
				for u := range users {
					if activeIn(u, w) {
						n++
						all[u] = true
					}
				}
				res.Usage[Key{TenantID: tenant, SKU: sku, Workload: w, Date: D}] = Usage{ActiveUsers: n, Qualified: qualified, UsagePct: pct(n, qualified)}
			}
			n := int64(len(all))
			res.Usage[Key{TenantID: tenant, SKU: sku, Workload: "all", Date: D}] = Usage{ActiveUsers: n, Qualified: qualified, UsagePct: pct(n, qualified)}
		}
	}
	for w, first := range firstUsage {
		for D := first; D <= through; D++ {
			var n int64
			for k, days := range usageDays {
				if k[1] != w {
					continue
				}
				for d := D - 27; d <= D; d++ {
					if days[d] {
						n++
						break
					}
				}
			}
			res.Workload[Key{TenantID: tenant, Workload: w, Date: D}] = n
		}
	}
}

// latest is the winning event among those strictly before end: the
// greatest occurred_at, ties broken by the greater event_id.
func latest(evs []event.Event, end int64) *event.Event {
	var best *event.Event
	for i := range evs {
		ev := &evs[i]
		if ev.OccurredAt >= end {
			continue
		}
		if best == nil || best.Before(ev) {
			best = ev
		}
	}
	return best
}

// heldOn says whether the assignment events give the user a seat at some
// moment of day d: at d's first instant, or right after any event time in d.
func heldOn(evs []event.Event, d event.Day) bool {
	start := int64(d) * event.NanosPerDay
	end := start + event.NanosPerDay
	if v := latest(evs, start+1); v != nil && v.Assigned {
		return true
	}
	times := map[int64]bool{}
	for _, ev := range evs {
		if ev.OccurredAt > start && ev.OccurredAt < end {
			times[ev.OccurredAt] = true
		}
	}
	ts := make([]int64, 0, len(times))
	for t := range times {
		ts = append(ts, t)
	}
	sort.Slice(ts, func(i, j int) bool { return ts[i] < ts[j] })
	for _, t := range ts {
		if v := latest(evs, t+1); v != nil && v.Assigned {
			return true
		}
	}
	return false
}

func setMin(m map[string]event.Day, k string, d event.Day) {
	if old, ok := m[k]; !ok || d < old {
		m[k] = d
	}
}

func pct(num, den int64) *float64 {
	if den == 0 {
		return nil
	}
	p := 100 * float64(num) / float64(den)
	return &p
}
