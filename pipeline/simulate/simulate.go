// Package simulate generates realistic, deterministic telemetry for
// seatflow: tenants buying SKUs through partners, subscriptions that change
// status, trials, seats moving from leavers to new hires, a weekday rhythm,
// per-user workload habits, and one tenant whose Yammer use far exceeds its
// seats. The same seed gives the same events.
package simulate

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"time"

	"github.com/seatflow/seatflow/pipeline/catalog"
	"github.com/seatflow/seatflow/pipeline/event"
)

// Config says what to generate.
type Config struct {
	Tenants    int
	Users      int // users per tenant, on average
	Start, End time.Time
	Seed       uint64
}

// Generate calls emit with each event, in occurred_at order.
func Generate(cfg Config, cat *catalog.Catalog, emit func(*event.Event) error) error {
	if cfg.Tenants < 1 || cfg.Users < 1 {
		return fmt.Errorf("simulate: tenants and users must be at least 1")
	}
	if !cfg.End.After(cfg.Start) {
		return fmt.Errorf("simulate: end %s must be after start %s", cfg.End, cfg.Start)
	}
	days := int(cfg.End.Sub(cfg.Start).Hours() / 24)
	var all []event.Event
	seq := 0
	for t := 0; t < cfg.Tenants; t++ {
		r := rand.New(rand.NewPCG(cfg.Seed, uint64(t)))
		all = append(all, tenant(r, cfg, cat, t, days, &seq)...)
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].Before(&all[j]) })
	for i := range all {
		if err := emit(&all[i]); err != nil {
			return err
		}
	}
	return nil
}

var officeSKUs = []string{"O365_E3", "O365_E1", "M365_BUSINESS_PREMIUM", "M365_BUSINESS_BASIC", "O365_E5"}

func tenant(r *rand.Rand, cfg Config, cat *catalog.Catalog, t, days int, seq *int) []event.Event {
	id := fmt.Sprintf("tenant-%04d", t)
	start := cfg.Start.UnixNano()
	var out []event.Event
	newEvent := func(kind event.Kind, at int64) event.Event {
		*seq++
		return event.Event{Kind: kind, EventID: fmt.Sprintf("sim-%s-%08d", id, *seq), OccurredAt: at, TenantID: id}
	}
	at := func(day int, hour float64) int64 {
		return start + int64(day)*event.NanosPerDay + int64(hour*float64(time.Hour)) + int64(r.IntN(3600))*int64(time.Second)
	}
	partner := ""
	if r.IntN(4) > 0 {
		partner = fmt.Sprintf("partner-%d", 1+r.IntN(5))
	}
	users := max(2, cfg.Users/2+r.IntN(cfg.Users+1))
	sku := officeSKUs[r.IntN(len(officeSKUs))]
	seats := users - r.IntN(users/4+1) + r.IntN(users/5+1)
	yammerFan := t == 0 // the tenant whose Yammer use exceeds its seats
	if yammerFan {
		sku, seats = "O365_E1", max(1, users/3)
	}

	sub := func(day int, subID, sku string, qty int, st event.Status, trial bool) {
		ev := newEvent(event.Subscription, at(day, 8))
		ev.SubscriptionID, ev.SKU, ev.PartnerID, ev.Quantity, ev.Status, ev.Trial = subID, sku, partner, int64(qty), st, trial
		out = append(out, ev)
	}
	sub(0, id+"-main", sku, seats, event.Active, false)
	// status changes: a payment problem that is resolved, or not
	if r.IntN(3) == 0 {
		d := 1 + r.IntN(max(1, days-1))
		sub(d, id+"-main", sku, seats, event.Grace, false)
		if r.IntN(2) == 0 && d+5 < days {
			sub(d+5, id+"-main", sku, seats, event.Active, false)
		}
	}
	// a second subscription of the same SKU, sometimes disabled later
	if r.IntN(4) == 0 {
		sub(r.IntN(max(1, days/2)), id+"-extra", sku, 1+r.IntN(5), event.Active, false)
		if r.IntN(2) == 0 {
			sub(days/2+r.IntN(max(1, days/2)), id+"-extra", sku, 1+r.IntN(5), []event.Status{event.Disabled, event.Deprovisioned, event.Suspended}[r.IntN(3)], false)
		}
	}
	// a Dynamics 365 trial
	dynUsers := 0
	if r.IntN(3) == 0 {
		dynUsers = 1 + r.IntN(4)
		sub(r.IntN(max(1, days/2)), id+"-d365", "D365_SALES", 10, event.Active, true)
	}

	workloads := cat.Workloads()
	skuInfo, _ := cat.SKU(sku)
	for u := 0; u < users; u++ {
		user := fmt.Sprintf("%s-user-%04d", id, u)
		licensed := u < seats || r.IntN(10) == 0
		hired := 0
		if !licensed && !yammerFan {
			continue
		}
		if licensed {
			ev := newEvent(event.Assignment, at(0, 9))
			ev.UserID, ev.SKU, ev.Assigned = user, sku, true
			out = append(out, ev)
		}
		leaves := days
		if licensed && r.IntN(12) == 0 && days > 10 { // turnover
			leaves = 5 + r.IntN(days-5)
			ev := newEvent(event.Assignment, at(leaves, 17))
			ev.UserID, ev.SKU, ev.Assigned = user, sku, false
			out = append(out, ev)
			hire := fmt.Sprintf("%s-hire-%04d", id, u)
			ev = newEvent(event.Assignment, at(leaves+1, 9))
			ev.UserID, ev.SKU, ev.Assigned = hire, sku, true
			out = append(out, ev)
			hired = leaves + 1
			out = append(out, usage(r, newEvent, at, hire, skuInfo.Workloads, hired, days, 0.7)...)
		}
		if u < dynUsers {
			ev := newEvent(event.Assignment, at(1, 9))
			ev.UserID, ev.SKU, ev.Assigned = user, "D365_SALES", true
			out = append(out, ev)
			out = append(out, usage(r, newEvent, at, user, []string{"dynamics_sales"}, 1, days, 0.5)...)
		}
		habits := skuInfo.Workloads
		if !licensed {
			habits = []string{"yammer"} // uses Yammer without a seat
		}
		if r.IntN(20) == 0 {
			habits = append(habits, "onedrive", workloads[r.IntN(len(workloads))])
		}
		activity := 0.2 + 0.7*r.Float64()
		if licensed && r.IntN(8) == 0 {
			activity = 0 // a seat nobody uses
		}
		out = append(out, usage(r, newEvent, at, user, habits, 0, min(leaves+1, days), activity)...)
	}
	return out
}

// usage emits a user's activity: on each weekday with probability
// activity (a fifth of that at weekends), each habit workload with its own
// per-user frequency.
func usage(r *rand.Rand, newEvent func(event.Kind, int64) event.Event, at func(int, float64) int64,
	user string, workloads []string, from, to int, activity float64) []event.Event {
	var out []event.Event
	freq := make([]float64, len(workloads))
	for i := range freq {
		freq[i] = 0.3 + 0.7*r.Float64()
	}
	for d := from; d < to; d++ {
		p := activity
		if wd := time.Unix(0, at(d, 0)).UTC().Weekday(); wd == time.Saturday || wd == time.Sunday {
			p /= 5
		}
		if r.Float64() >= p {
			continue
		}
		for i, w := range workloads {
			if r.Float64() < freq[i] {
				ev := newEvent(event.Usage, at(d, 8+9*r.Float64()))
				ev.UserID, ev.Workload = user, w
				out = append(out, ev)
			}
		}
	}
	return out
}
