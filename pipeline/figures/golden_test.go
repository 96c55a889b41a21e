package figures_test

import (
	"testing"
	"time"

	"github.com/seatflow/seatflow/pipeline/event"
	"github.com/seatflow/seatflow/pipeline/figures"
)

// story applies hand-written events (one source) and returns the table
// after every day has closed.
type story struct {
	t  *testing.T
	e  *figures.Engine
	tb *table
	id int
}

func newStory(t *testing.T) *story {
	e, err := figures.New(figures.Config{Catalog: testCatalog(t)})
	if err != nil {
		t.Fatal(err)
	}
	e.SetSources(0)
	return &story{t: t, e: e, tb: newTable()}
}

func ts(s string) int64 {
	tm, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return tm.UnixNano()
}

func (s *story) apply(ev event.Event) (figures.Outcome, *event.Rejection) {
	s.t.Helper()
	s.id++
	if ev.EventID == "" {
		ev.EventID = string(rune('a'+s.id/26)) + string(rune('a'+s.id%26))
	}
	if ev.TenantID == "" {
		ev.TenantID = "t-1"
	}
	o, r, err := s.e.Apply(0, &ev)
	if err == figures.ErrAhead {
		s.tb.flush(s.t, s.e)
		o, r, err = s.e.Apply(0, &ev)
	}
	if err != nil {
		s.t.Fatal(err)
	}
	return o, r
}

func (s *story) sub(at, id, sku string, qty int64, st event.Status, trial bool) {
	s.apply(event.Event{Kind: event.Subscription, OccurredAt: ts(at), SubscriptionID: id, SKU: sku, Quantity: qty, Status: st, Trial: trial})
}
func (s *story) assign(at, user, sku string, on bool) {
	s.apply(event.Event{Kind: event.Assignment, OccurredAt: ts(at), UserID: user, SKU: sku, Assigned: on})
}
func (s *story) use(at, user, workload string) {
	s.apply(event.Event{Kind: event.Usage, OccurredAt: ts(at), UserID: user, Workload: workload})
}

// close marks the source idle and flushes: days up to the last event's
// day minus the lateness are final.
func (s *story) close() *table {
	s.e.SetIdle(0, true)
	s.tb.flush(s.t, s.e)
	return s.tb
}

func (s *story) wantUsage(tb *table, date, sku, workload string, active, qualified int64, pct string) {
	s.t.Helper()
	r, ok := tb.usage[keyOf(date, sku, workload)]
	if !ok || r.ActiveUsers != active || r.Qualified != qualified || fmtPct(r.UsagePct) != pct {
		s.t.Errorf("usage %s %s %s: got active=%d qualified=%d pct=%s (present %v), want %d %d %s",
			date, sku, workload, r.ActiveUsers, r.Qualified, fmtPct(r.UsagePct), ok, active, qualified, pct)
	}
}

func keyOf(date, sku, workload string) (k struct {
	TenantID, SKU, Workload string
	Date                    event.Day
}) {
	k.TenantID, k.SKU, k.Workload, k.Date = "t-1", sku, workload, day(date)
	return k
}

// Turnover: a seat moves from a leaver to a new hire; both were active
// while holding it within 28 days: 2 active users on 1 seat, 200 %.
func TestGoldenTurnover(t *testing.T) {
	s := newStory(t)
	s.sub("2026-10-01T08:00:00Z", "s-1", "O365_E3", 1, event.Active, false)
	s.assign("2026-10-01T09:00:00Z", "leaver", "O365_E3", true)
	s.use("2026-10-02T10:00:00Z", "leaver", "exchange")
	s.assign("2026-10-05T09:00:00Z", "leaver", "O365_E3", false)
	s.assign("2026-10-05T09:30:00Z", "hire", "O365_E3", true)
	s.use("2026-10-06T10:00:00Z", "hire", "exchange")
	s.use("2026-10-20T10:00:00Z", "hire", "teams")
	tb := s.close()
	s.wantUsage(tb, "2026-10-06", "O365_E3", "exchange", 2, 1, "200.0000")
	s.wantUsage(tb, "2026-10-06", "O365_E3", "all", 2, 1, "200.0000")
	s.wantUsage(tb, "2026-10-20", "O365_E3", "teams", 1, 1, "100.0000")
	// The leaver's day 2026-10-02 leaves the window after 2026-10-29.
	d := tb.deployment[reference_key("2026-10-06", "O365_E3")]
	if d.Sold != 1 || d.Assigned != 1 || fmtPct(d.DeploymentPct) != "100.0000" {
		t.Errorf("deployment: %+v", d)
	}
}

// The 28-day edge: active on D-27 counts, on D-28 does not.
func TestGolden28DayEdge(t *testing.T) {
	s := newStory(t)
	s.sub("2026-09-01T00:00:00Z", "s-1", "O365_E1", 5, event.Active, false)
	s.assign("2026-09-01T00:00:00Z", "u", "O365_E1", true)
	s.use("2026-09-03T23:59:59Z", "u", "yammer")
	s.use("2026-10-10T12:00:00Z", "other", "yammer") // moves time on
	tb := s.close()
	s.wantUsage(tb, "2026-09-30", "O365_E1", "yammer", 1, 1, "100.0000") // 09-03 is D-27
	s.wantUsage(tb, "2026-10-01", "O365_E1", "yammer", 0, 1, "0.0000")   // 09-03 is D-28
}

// OneDrive activity counts as SharePoint, in usage_daily and workload_daily.
func TestGoldenOneDriveIsSharePoint(t *testing.T) {
	s := newStory(t)
	s.sub("2026-10-01T00:00:00Z", "s-1", "M365_BUSINESS_BASIC", 2, event.Active, false)
	s.assign("2026-10-01T00:00:00Z", "u", "M365_BUSINESS_BASIC", true)
	s.use("2026-10-02T10:00:00Z", "u", "onedrive")
	tb := s.close()
	s.wantUsage(tb, "2026-10-02", "M365_BUSINESS_BASIC", "sharepoint", 1, 1, "100.0000")
	w, ok := tb.workload[reference_wkey("2026-10-02", "sharepoint")]
	if !ok || w.ActiveUsers != 1 {
		t.Errorf("workload_daily sharepoint: %+v %v", w, ok)
	}
	if _, ok := tb.workload[reference_wkey("2026-10-02", "onedrive")]; ok {
		t.Errorf("onedrive has its own workload_daily row")
	}
}

// Trial seats are not sold, but their users are active; a grace
// subscription's seats are not sold either.
func TestGoldenTrialAndGrace(t *testing.T) {
	s := newStory(t)
	s.sub("2026-10-01T00:00:00Z", "good", "O365_E3", 1, event.Active, false)
	s.sub("2026-10-01T00:00:00Z", "grace", "O365_E3", 3, event.Grace, false)
	s.sub("2026-10-01T00:00:00Z", "trial", "O365_E3", 10, event.Active, true)
	for _, u := range []string{"a", "b", "c"} {
		s.assign("2026-10-01T01:00:00Z", u, "O365_E3", true)
		s.use("2026-10-02T10:00:00Z", u, "teams")
	}
	tb := s.close()
	d := tb.deployment[reference_key("2026-10-02", "O365_E3")]
	if d.Sold != 1 || d.Trial != 10 || d.Assigned != 3 || d.Qualified != 1 || fmtPct(d.DeploymentPct) != "300.0000" {
		t.Errorf("deployment: %+v pct %s", d, fmtPct(d.DeploymentPct))
	}
	s.wantUsage(tb, "2026-10-02", "O365_E3", "teams", 3, 1, "300.0000")
}

// A late event inside the horizon restates closed days with a higher
// version; one beyond it is rejected too_late.
func TestGoldenLateRestatementAndTooLate(t *testing.T) {
	s := newStory(t)
	s.sub("2026-10-01T00:00:00Z", "s-1", "O365_E3", 2, event.Active, false)
	s.assign("2026-10-01T00:00:00Z", "u", "O365_E3", true)
	s.use("2026-10-10T12:00:00Z", "u", "exchange")
	tb := newTable()
	tb.flush(t, s.e)
	before := tb.usage[keyOf("2026-10-05", "O365_E3", "exchange")]
	if !before.Final || before.ActiveUsers != 0 {
		t.Fatalf("2026-10-05 before: %+v", before)
	}
	o, r := s.apply(event.Event{Kind: event.Usage, OccurredAt: ts("2026-10-05T12:00:00Z"), UserID: "u", Workload: "exchange"})
	if r != nil || o != figures.Restated {
		t.Fatalf("late event: outcome %v rejection %v, want restated", o, r)
	}
	tb.flush(t, s.e)
	after := tb.usage[keyOf("2026-10-05", "O365_E3", "exchange")]
	if !after.Final || after.ActiveUsers != 1 || after.Version <= before.Version {
		t.Errorf("2026-10-05 after restatement: %+v (before version %d)", after, before.Version)
	}
	if _, r := s.apply(event.Event{Kind: event.Usage, OccurredAt: ts("2026-10-01T12:00:00Z"), UserID: "u", Workload: "exchange"}); r == nil || r.Reason != event.TooLate {
		t.Errorf("9-day-old event: %v, want too_late", r)
	}
}

func reference_key(date, sku string) (k struct {
	TenantID, SKU, Workload string
	Date                    event.Day
}) {
	k.TenantID, k.SKU, k.Date = "t-1", sku, day(date)
	return k
}

func reference_wkey(date, workload string) (k struct {
	TenantID, SKU, Workload string
	Date                    event.Day
}) {
	k.TenantID, k.Workload, k.Date = "t-1", workload, day(date)
	return k
}
