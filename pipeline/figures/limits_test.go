package figures_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/seatflow/seatflow/pipeline/event"
	"github.com/seatflow/seatflow/pipeline/figures"
)

// TestLimits: events beyond a tenant's limits are refused as
// limit_exceeded, grow no state and move no watermark; the tenant's known
// users, subscriptions and SKUs go on, and other tenants are not held to
// its counts.
func TestLimits(t *testing.T) {
	e, err := figures.New(figures.Config{Catalog: testCatalog(t), Limits: figures.Limits{Users: 2, Subscriptions: 1, SKUs: 2}})
	if err != nil {
		t.Fatal(err)
	}
	e.SetSources(0)
	start := time.Date(2026, 9, 1, 12, 0, 0, 0, time.UTC).UnixNano()
	n := 0
	at := func(hours int) int64 { return start + int64(hours)*int64(time.Hour) }
	usage := func(tenant, user string, hours int) event.Event {
		return event.Event{Kind: event.Usage, TenantID: tenant, UserID: user, Workload: "exchange", OccurredAt: at(hours)}
	}
	assign := func(tenant, user, sku string, hours int) event.Event {
		return event.Event{Kind: event.Assignment, TenantID: tenant, UserID: user, SKU: sku, Assigned: true, OccurredAt: at(hours)}
	}
	sub := func(tenant, id, sku string, hours int) event.Event {
		return event.Event{Kind: event.Subscription, TenantID: tenant, SubscriptionID: id, SKU: sku, Quantity: 5, Status: event.Active, OccurredAt: at(hours)}
	}
	cases := []struct {
		name   string
		ev     event.Event
		reason event.Reason // "" for accepted
	}{
		{"first user", usage("t", "u1", 0), ""},
		{"second user", assign("t", "u2", "O365_E3", 0), ""},
		{"third user by usage", usage("t", "u3", 100), event.LimitExceeded},
		{"third user by assignment", assign("t", "u3", "O365_E3", 100), event.LimitExceeded},
		{"a known user again", usage("t", "u2", 1), ""},
		{"first subscription", sub("t", "s1", "O365_E3", 1), ""},
		{"the same subscription again", sub("t", "s1", "O365_E5", 2), ""},
		{"second subscription", sub("t", "s2", "O365_E3", 100), event.LimitExceeded},
		{"third SKU", assign("t", "u1", "D365_SALES", 100), event.LimitExceeded},
		{"another tenant", usage("t2", "u3", 2), ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n++
			c.ev.EventID = fmt.Sprint("e-", n)
			wm := e.Watermark()
			_, rej, err := e.Apply(0, &c.ev)
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case c.reason == "" && rej != nil:
				t.Errorf("rejected: %v", rej)
			case c.reason != "" && (rej == nil || rej.Reason != c.reason):
				t.Errorf("got %v, want %s", rej, c.reason)
			case c.reason != "" && e.Watermark() != wm:
				t.Errorf("a refused event moved the watermark from %d to %d", wm, e.Watermark())
			}
		})
	}
	if got := e.Users(); got != 3 {
		t.Errorf("users tracked: %d, want 3 (2 of t, 1 of t2)", got)
	}
	if got := e.TenantSKUs(); got != 2 {
		t.Errorf("(tenant, SKU) pairs tracked: %d, want 2", got)
	}
}

// TestReemit: after Reemit, the next Emit emits every row of the days
// that may still change, though none changed; the one after emits none.
func TestReemit(t *testing.T) {
	e, err := figures.New(figures.Config{Catalog: testCatalog(t)})
	if err != nil {
		t.Fatal(err)
	}
	e.SetSources(0)
	start := time.Date(2026, 9, 1, 12, 0, 0, 0, time.UTC)
	for day := range 20 {
		ev := event.Event{Kind: event.Usage, EventID: fmt.Sprint("e-", day), TenantID: "t", UserID: "u", Workload: "exchange",
			OccurredAt: start.AddDate(0, 0, day).UnixNano()}
		if _, rej, err := e.Apply(0, &ev); rej != nil || err != nil {
			t.Fatal(rej, err)
		}
	}
	ev := event.Event{Kind: event.Assignment, EventID: "a", TenantID: "t", UserID: "u", SKU: "O365_E3", Assigned: true, OccurredAt: start.AddDate(0, 0, 19).UnixNano()}
	if _, rej, err := e.Apply(0, &ev); rej != nil || err != nil {
		t.Fatal(rej, err)
	}
	e.SetIdle(0, true)
	first := e.Emit(1)
	if rows := e.Emit(2); rows.Len() != 0 {
		t.Fatalf("a flush with nothing new emitted %d rows", rows.Len())
	}
	e.Reemit()
	again := e.Emit(3)
	// every row of a day the horizon still covers (7 days before the
	// watermark, and after), none older
	from := event.DayOf(e.Watermark() - int64(7*24*time.Hour))
	want := 0
	for _, r := range first.Workload {
		if r.Date >= from {
			want++
		}
	}
	if len(again.Workload) != want || want == 0 {
		t.Errorf("after Reemit: %d workload rows, want %d (those from %d)", len(again.Workload), want, from)
	}
	if len(again.Deployment) == 0 || len(again.Usage) == 0 {
		t.Errorf("after Reemit: %d deployment and %d usage rows, want those of the last days", len(again.Deployment), len(again.Usage))
	}
	if rows := e.Emit(4); rows.Len() != 0 {
		t.Errorf("the flush after the re-emitting one emitted %d rows", rows.Len())
	}
}
