package figures_test

import (
	"strings"
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
	e := oneSourceEngine(t)
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
	d := tb.deployment[deploymentKey("2026-10-06", "O365_E3")]
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
	w, ok := tb.workload[workloadKey("2026-10-02", "sharepoint")]
	if !ok || w.ActiveUsers != 1 {
		t.Errorf("workload_daily sharepoint: %+v %v", w, ok)
	}
	if _, ok := tb.workload[workloadKey("2026-10-02", "onedrive")]; ok {
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
	d := tb.deployment[deploymentKey("2026-10-02", "O365_E3")]
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

func deploymentKey(date, sku string) (k struct {
	TenantID, SKU, Workload string
	Date                    event.Day
}) {
	k.TenantID, k.SKU, k.Date = "t-1", sku, day(date)
	return k
}

func workloadKey(date, workload string) (k struct {
	TenantID, SKU, Workload string
	Date                    event.Day
}) {
	k.TenantID, k.Workload, k.Date = "t-1", workload, day(date)
	return k
}

// Each subscription status: only active, non-trial seats are sold.
func TestGoldenEachStatus(t *testing.T) {
	for _, st := range []event.Status{event.Active, event.Grace, event.Disabled, event.Deprovisioned, event.Suspended, event.Upgraded, event.Cancelled} {
		t.Run(st.String(), func(t *testing.T) {
			s := newStory(t)
			s.sub("2026-10-01T00:00:00Z", "s-1", "O365_E3", 10, event.Active, false)
			s.sub("2026-10-03T00:00:00Z", "s-1", "O365_E3", 10, st, false)
			s.assign("2026-10-01T00:00:00Z", "u", "O365_E3", true)
			s.use("2026-10-04T10:00:00Z", "u", "exchange")
			tb := s.close()
			want := int64(0)
			if st == event.Active {
				want = 10
			}
			if d := tb.deployment[deploymentKey("2026-10-02", "O365_E3")]; d.Sold != 10 {
				t.Errorf("before the change: sold %d, want 10", d.Sold)
			}
			d := tb.deployment[deploymentKey("2026-10-04", "O365_E3")]
			if d.Sold != want || d.Assigned != 1 || d.Qualified != min(1, want) {
				t.Errorf("after %s: %+v", st, d)
			}
			if want == 0 && d.DeploymentPct != nil {
				t.Errorf("deployment_pct with sold = 0: %v, want NULL", *d.DeploymentPct)
			}
			u := tb.usage[keyOf("2026-10-04", "O365_E3", "exchange")]
			if u.ActiveUsers != 1 || (want == 0) != (u.UsagePct == nil) {
				t.Errorf("usage after %s: %+v", st, u)
			}
		})
	}
}

// Two subscriptions of one SKU, one in grace (or disabled, deprovisioned):
// users on both are active, only the good one's seats are sold.
func TestGoldenTwoSubscriptionsOneBad(t *testing.T) {
	for _, bad := range []event.Status{event.Grace, event.Disabled, event.Deprovisioned} {
		t.Run(bad.String(), func(t *testing.T) {
			s := newStory(t)
			s.sub("2026-10-01T00:00:00Z", "good", "O365_E1", 2, event.Active, false)
			s.sub("2026-10-01T00:00:00Z", "bad", "O365_E1", 3, bad, false)
			for _, u := range []string{"a", "b", "c", "d"} {
				s.assign("2026-10-01T00:00:00Z", u, "O365_E1", true)
				s.use("2026-10-02T10:00:00Z", u, "sharepoint")
			}
			tb := s.close()
			d := tb.deployment[deploymentKey("2026-10-02", "O365_E1")]
			if d.Sold != 2 || d.Assigned != 4 || d.Qualified != 2 || fmtPct(d.DeploymentPct) != "200.0000" {
				t.Errorf("deployment: %+v", d)
			}
			s.wantUsage(tb, "2026-10-02", "O365_E1", "sharepoint", 4, 2, "200.0000")
		})
	}
}

// A user unassigned and reassigned within the window: active on the days
// they held the seat, not on a day with no seat at any moment.
func TestGoldenUnassignReassign(t *testing.T) {
	s := newStory(t)
	s.sub("2026-10-01T00:00:00Z", "s-1", "O365_E3", 5, event.Active, false)
	s.assign("2026-10-01T00:00:00Z", "u", "O365_E3", true)
	s.assign("2026-10-05T12:00:00Z", "u", "O365_E3", false)
	s.use("2026-10-07T10:00:00Z", "u", "teams") // no seat all day: does not count
	s.assign("2026-10-09T08:00:00Z", "u", "O365_E3", true)
	s.use("2026-10-09T07:00:00Z", "u", "exchange") // seat later that day: counts
	s.use("2026-10-12T10:00:00Z", "other", "teams")
	tb := s.close()
	s.wantUsage(tb, "2026-10-08", "O365_E3", "teams", 0, 0, "NULL")
	s.wantUsage(tb, "2026-10-09", "O365_E3", "exchange", 1, 1, "100.0000")
	s.wantUsage(tb, "2026-10-09", "O365_E3", "teams", 0, 1, "0.0000")
	for day, want := range map[string]int64{"2026-10-05": 0, "2026-10-08": 0, "2026-10-09": 1} {
		if d := tb.deployment[deploymentKey(day, "O365_E3")]; d.Assigned != want {
			t.Errorf("%s assigned %d, want %d", day, d.Assigned, want)
		}
	}
	w := tb.workload[workloadKey("2026-10-08", "teams")]
	if w.ActiveUsers != 1 {
		t.Errorf("workload_daily teams counts activity regardless of licenses: %+v", w)
	}
}

// One workload used far beyond the seats (Yammer): the tenant-wide
// workload table shows it, the licensed usage does not.
func TestGoldenYammerBeyondSeats(t *testing.T) {
	s := newStory(t)
	s.sub("2026-10-01T00:00:00Z", "s-1", "O365_E1", 2, event.Active, false)
	s.assign("2026-10-01T00:00:00Z", "a", "O365_E1", true)
	s.assign("2026-10-01T00:00:00Z", "b", "O365_E1", true)
	for i := 0; i < 30; i++ {
		s.use("2026-10-02T10:00:00Z", "y"+string(rune('a'+i)), "yammer")
	}
	s.use("2026-10-02T11:00:00Z", "a", "yammer")
	tb := s.close()
	s.wantUsage(tb, "2026-10-02", "O365_E1", "yammer", 1, 2, "50.0000")
	if w := tb.workload[workloadKey("2026-10-02", "yammer")]; w.ActiveUsers != 31 {
		t.Errorf("workload_daily yammer: %d, want 31", w.ActiveUsers)
	}
}

// A SKU the catalog does not know keeps its deployment figures (sold,
// assigned) with an empty product and no workload rows but 'all'; a
// workload no SKU has shows in workload_daily only. Both are counted.
func TestGoldenUnknownSKUAndWorkload(t *testing.T) {
	s := newStory(t)
	s.sub("2026-10-01T00:00:00Z", "s-1", "COPILOT_X", 4, event.Active, false)
	s.assign("2026-10-01T00:00:00Z", "u", "COPILOT_X", true)
	s.use("2026-10-02T10:00:00Z", "u", "copilot")
	tb := s.close()
	d := tb.deployment[deploymentKey("2026-10-02", "COPILOT_X")]
	if d.Product != "" || d.Sold != 4 || d.Assigned != 1 || fmtPct(d.DeploymentPct) != "25.0000" {
		t.Errorf("deployment of unknown SKU: %+v", d)
	}
	s.wantUsage(tb, "2026-10-02", "COPILOT_X", "all", 0, 1, "0.0000")
	if w := tb.workload[workloadKey("2026-10-02", "copilot")]; w.ActiveUsers != 1 {
		t.Errorf("workload_daily copilot: %+v", w)
	}
	if st := s.e.Stats(); st.UnknownSKUEvents != 2 || st.UnknownWorkloadEvents != 1 {
		t.Errorf("stats %+v, want 2 unknown-SKU events and 1 unknown-workload event", st)
	}
}

// Usage of more distinct workloads than MaxWorkloads is rejected, not
// kept: one bad publisher must not grow state without bound.
func TestTooManyWorkloads(t *testing.T) {
	s := newStory(t)
	known := len(testCatalog(t).Workloads())
	var rejected []event.Reason
	for i := 0; i < figures.MaxWorkloads+5-known; i++ {
		if _, r := s.apply(event.Event{Kind: event.Usage, OccurredAt: ts("2026-10-02T10:00:00Z"), UserID: "u", Workload: "w" + string(rune('a'+i/26)) + string(rune('a'+i%26))}); r != nil {
			rejected = append(rejected, r.Reason)
		}
	}
	if len(rejected) != 5 || rejected[0] != event.TooManyWorkloads {
		t.Errorf("rejected %v, want 5 too_many_workloads", rejected)
	}
}

// Workloads are found by name whatever its length: known and unknown
// names of one length apart, and long names.
func TestWorkloadNamesOfEveryLength(t *testing.T) {
	s := newStory(t)
	long := strings.Repeat("w", 40)
	names := []string{"teams", "teamz", "x", long, long + "2"}
	for _, w := range names {
		for _, u := range []string{"u1", "u2"} {
			s.use("2026-10-02T10:00:00Z", u, w)
		}
	}
	tb := s.close()
	for _, w := range names {
		if got := tb.workload[workloadKey("2026-10-02", w)]; got.ActiveUsers != 2 {
			t.Errorf("workload_daily %s: %+v, want 2 active users", w, got)
		}
	}
	if st := s.e.Stats(); st.UnknownWorkloadEvents != 8 {
		t.Errorf("stats %+v, want 8 unknown-workload events", st)
	}
}
