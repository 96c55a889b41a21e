package testenv

import (
	"fmt"
	"slices"
	"time"

	"github.com/seatflow/seatflow/pipeline/event"
)

var portfolioStart = time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)

// PortfolioEvents are a small portfolio for the insights tests, over 40
// days from 2026-10-01: partner-1 sells to tenant-a and tenant-b,
// partner-2 to tenant-b and tenant-c; tenant-over (partner-1) is over
// 100 % from a trial, a subscription in grace and turnover.
func PortfolioEvents() []event.Event {
	var evs []event.Event
	n := 0
	at := func(day int, hour int) int64 {
		return portfolioStart.AddDate(0, 0, day).Add(time.Duration(hour) * time.Hour).UnixNano()
	}
	sub := func(day int, tenant, id, partner string, qty int64, status event.Status, trial bool) {
		n++
		evs = append(evs, event.Event{Kind: event.Subscription, EventID: fmt.Sprint("e", n), OccurredAt: at(day, 1), TenantID: tenant,
			SubscriptionID: id, SKU: "O365_E3", PartnerID: partner, Quantity: qty, Status: status, Trial: trial})
	}
	seat := func(day int, tenant, user string, on bool) {
		n++
		evs = append(evs, event.Event{Kind: event.Assignment, EventID: fmt.Sprint("e", n), OccurredAt: at(day, 2), TenantID: tenant,
			UserID: user, SKU: "O365_E3", Assigned: on})
	}
	use := func(day int, tenant, user, wl string) {
		n++
		evs = append(evs, event.Event{Kind: event.Usage, EventID: fmt.Sprint("e", n), OccurredAt: at(day, 3), TenantID: tenant, UserID: user, Workload: wl})
	}
	sub(0, "tenant-a", "s-a", "partner-1", 10, event.Active, false)
	sub(0, "tenant-b", "s-b1", "partner-1", 4, event.Active, false)
	sub(0, "tenant-b", "s-b2", "partner-2", 6, event.Active, false)
	sub(0, "tenant-c", "s-c", "partner-2", 5, event.Active, false)
	sub(0, "tenant-over", "s-o1", "partner-1", 2, event.Active, false)
	sub(0, "tenant-over", "s-o2", "partner-1", 2, event.Active, true)
	sub(0, "tenant-over", "s-o3", "partner-1", 3, event.Grace, false)
	for u := range 8 {
		seat(0, "tenant-a", fmt.Sprint("u", u), true)
		seat(0, "tenant-b", fmt.Sprint("u", u), true)
	}
	for u := range 3 {
		seat(0, "tenant-c", fmt.Sprint("u", u), true)
	}
	for u := range 5 {
		seat(0, "tenant-over", fmt.Sprint("u", u), true)
	}
	seat(20, "tenant-over", "u4", false) // a leaver: active, no longer seated
	for d := range 40 {
		for u := range 6 {
			use(d, "tenant-a", fmt.Sprint("u", u), "exchange")
		}
		for u := range 2 {
			use(d, "tenant-b", fmt.Sprint("u", u), "teams")
		}
		for u := range 5 {
			use(d, "tenant-over", fmt.Sprint("u", u), "exchange")
		}
		use(d, "tenant-c", "u0", "teams")
	}
	slices.SortStableFunc(evs, func(a, b event.Event) int { return int(a.OccurredAt - b.OccurredAt) })
	return evs
}
