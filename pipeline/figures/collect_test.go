package figures_test

import (
	"cmp"
	"fmt"
	"math"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/seatflow/seatflow/pipeline/catalog"
	"github.com/seatflow/seatflow/pipeline/event"
	"github.com/seatflow/seatflow/pipeline/figures"
	"github.com/seatflow/seatflow/pipeline/row"
	"github.com/seatflow/seatflow/schemas"
	"github.com/seatflow/seatflow/testenv/reference"
)

func testCatalog(t testing.TB) *catalog.Catalog {
	t.Helper()
	c, err := catalog.Load(schemas.Catalog)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// oneSourceEngine is an engine reading one source (source 0).
func oneSourceEngine(tb testing.TB) *figures.Engine {
	tb.Helper()
	e, err := figures.New(figures.Config{Catalog: testCatalog(tb)})
	if err != nil {
		tb.Fatal(err)
	}
	e.SetSources(0)
	return e
}

// table is what a reader of the ClickHouse tables sees under FINAL: the
// highest version of each key.
type table struct {
	deployment map[reference.Key]row.Deployment
	usage      map[reference.Key]row.Usage
	workload   map[reference.Key]row.Workload
	subs       map[[2]string]row.Subscription
	activity   map[reference.Activity]int
	version    uint64
}

func newTable() *table {
	return &table{
		deployment: map[reference.Key]row.Deployment{}, usage: map[reference.Key]row.Usage{},
		workload: map[reference.Key]row.Workload{}, subs: map[[2]string]row.Subscription{},
		activity: map[reference.Activity]int{},
	}
}

func (tb *table) flush(t testing.TB, e *figures.Engine) row.Set {
	t.Helper()
	tb.version++
	rows := e.Emit(tb.version)
	for _, r := range rows.Deployment {
		k := reference.Key{TenantID: r.TenantID, SKU: r.SKU, Date: r.Date}
		if old, ok := tb.deployment[k]; ok && old.Final && !r.Final {
			t.Fatalf("%v: a final row was rewritten as provisional", k)
		}
		tb.deployment[k] = r
	}
	for _, r := range rows.Usage {
		tb.usage[reference.Key{TenantID: r.TenantID, SKU: r.SKU, Workload: r.Workload, Date: r.Date}] = r
	}
	for _, r := range rows.Workload {
		tb.workload[reference.Key{TenantID: r.TenantID, Workload: r.Workload, Date: r.Date}] = r
	}
	for _, r := range rows.Subscriptions {
		tb.subs[[2]string{r.TenantID, r.SubscriptionID}] = r
	}
	// user_activity rows come in the table's key order, without repeats,
	// and folded as far as they go: a user's next row in a workload starts
	// 64 days or more after the last one's first day
	var last *reference.Activity
	for i := range rows.Activity {
		r := &rows.Activity[i]
		if r.Days == 0 {
			t.Fatalf("user_activity row without days: %+v", r)
		}
		if i > 0 {
			p := &rows.Activity[i-1]
			if p.TenantID == r.TenantID && p.UserID == r.UserID && p.Workload == r.Workload && r.First-p.First < 64 {
				t.Fatalf("user_activity rows not folded: %+v then %+v", p, r)
			}
		}
		for d := range r.Dates() {
			a := reference.Activity{TenantID: r.TenantID, UserID: r.UserID, Workload: r.Workload, Date: d}
			if last != nil && cmp.Or(strings.Compare(last.TenantID, a.TenantID), strings.Compare(last.UserID, a.UserID),
				strings.Compare(last.Workload, a.Workload), cmp.Compare(last.Date, a.Date)) >= 0 {
				t.Fatalf("user_activity rows out of key order: %+v before %+v", *last, a)
			}
			last = &a
			tb.activity[a]++
		}
	}
	return rows
}

func fmtPct(p *float64) string {
	if p == nil {
		return "NULL"
	}
	return fmt.Sprintf("%.4f", *p)
}

// diff compares the table with the reference and lists the differences.
func (tb *table) diff(ref reference.Result) []string {
	var out []string
	for k, want := range ref.Deployment {
		got, ok := tb.deployment[k]
		w := fmt.Sprintf("%s sold=%d trial=%d assigned=%d qualified=%d pct=%s", want.Product, want.Sold, want.Trial, want.Assigned, want.Qualified, fmtPct(want.DeploymentPct))
		g := fmt.Sprintf("%s sold=%d trial=%d assigned=%d qualified=%d pct=%s", got.Product, got.Sold, got.Trial, got.Assigned, got.Qualified, fmtPct(got.DeploymentPct))
		if !ok || g != w {
			out = append(out, fmt.Sprintf("deployment %v: got %s (present %v), want %s", k, g, ok, w))
		}
	}
	for k, want := range ref.Usage {
		got, ok := tb.usage[k]
		w := fmt.Sprintf("active=%d qualified=%d pct=%s", want.ActiveUsers, want.Qualified, fmtPct(want.UsagePct))
		g := fmt.Sprintf("active=%d qualified=%d pct=%s", got.ActiveUsers, got.Qualified, fmtPct(got.UsagePct))
		if !ok || g != w {
			out = append(out, fmt.Sprintf("usage %v: got %s (present %v), want %s", k, g, ok, w))
		}
	}
	for k, want := range ref.Workload {
		got, ok := tb.workload[k]
		if !ok || got.ActiveUsers != want {
			out = append(out, fmt.Sprintf("workload %v: got %d (present %v), want %d", k, got.ActiveUsers, ok, want))
		}
	}
	for k, want := range ref.Subscriptions {
		got, ok := tb.subs[k]
		g := reference.Subscription{SKU: got.SKU, PartnerID: got.PartnerID, Status: got.Status, Trial: got.Trial, Quantity: got.Quantity, OccurredAt: got.OccurredAt}
		if !ok || g != want {
			out = append(out, fmt.Sprintf("subscription %v: got %+v, want %+v", k, g, want))
		}
	}
	for a := range ref.Activity {
		if tb.activity[a] != 1 {
			out = append(out, fmt.Sprintf("user_activity %v written %d times, want once", a, tb.activity[a]))
		}
	}
	extra := func(kind string, n, m int) {
		if n != m {
			out = append(out, fmt.Sprintf("%s: %d rows, reference has %d", kind, n, m))
		}
	}
	extra("deployment", len(tb.deployment), len(ref.Deployment))
	extra("usage", len(tb.usage), len(ref.Usage))
	extra("workload", len(tb.workload), len(ref.Workload))
	extra("subscriptions", len(tb.subs), len(ref.Subscriptions))
	extra("user_activity", len(tb.activity), len(ref.Activity))
	sort.Strings(out)
	return out
}

func day(s string) event.Day {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		panic(err)
	}
	return event.DayOf(t.UnixNano())
}

func must(t testing.TB, msgs []string) {
	t.Helper()
	if len(msgs) > 0 {
		if len(msgs) > 15 {
			msgs = append(msgs[:15], fmt.Sprintf("... and %d more", len(msgs)-15))
		}
		t.Fatal("\n" + strings.Join(msgs, "\n"))
	}
}

var _ = math.MaxInt64
