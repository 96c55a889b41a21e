package figures_test

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/seatflow/seatflow/pipeline/event"
	"github.com/seatflow/seatflow/pipeline/figures"
	"github.com/seatflow/seatflow/pipeline/simulate"
)

// BenchmarkDecodeApplyUsage measures usage events decoded from JSON and
// applied, on one core.
func BenchmarkDecodeApplyUsage(b *testing.B) {
	e := oneSourceEngine(b)
	start := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	msgs := simulate.UsageMessages(4096, 100, 100_000, start)
	now := start.Add(24 * time.Hour).UnixNano()
	var d event.Decoder
	var ev event.Event
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if r := d.Decode(msgs[i%len(msgs)], now, &ev); r != nil {
			b.Fatal(r)
		}
		if _, r, err := e.Apply(0, &ev); err != nil || r != nil {
			b.Fatal(err, r)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkHeapPerUser measures heap bytes per tracked user at 1M users
// (1000 tenants), each assigned one SKU and active in three workloads on
// each of the last seven days. "steady": the seat was assigned long before
// the window, the normal state of a running pipeline; "fresh": every seat
// was assigned this week, as at the start of a backfill.
func BenchmarkHeapPerUser(b *testing.B) {
	for _, fresh := range []bool{false, true} {
		name := "steady"
		if fresh {
			name = "fresh"
		}
		b.Run(name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				b.ReportMetric(heapPerUser(b, 1_000_000, fresh), "heap-bytes/user")
			}
		})
	}
}

func heapPerUser(b *testing.B, users int, fresh bool) float64 {
	const tenants = 1000
	runtime.GC()
	var m0 runtime.MemStats
	runtime.ReadMemStats(&m0)
	e := oneSourceEngine(b)
	t0 := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	assignAt := t0
	if !fresh {
		assignAt = t0 - 70*event.NanosPerDay
	}
	var ev event.Event
	apply := func() {
		if _, r, err := e.Apply(0, &ev); err == figures.ErrAhead {
			e.Emit(1)
			e.Apply(0, &ev)
		} else if err != nil || r != nil {
			b.Fatal(err, r)
		}
	}
	for u := 0; u < users; u++ {
		tenant, user := fmt.Sprint("t-", u%tenants), fmt.Sprint("u-", u)
		ev = event.Event{Kind: event.Assignment, EventID: "a" + user, OccurredAt: assignAt, TenantID: tenant, UserID: user, SKU: "O365_E3", Assigned: true}
		apply()
	}
	e.Emit(1)
	for d := 0; d < 7; d++ {
		for u := 0; u < users; u++ {
			tenant, user := fmt.Sprint("t-", u%tenants), fmt.Sprint("u-", u)
			for _, w := range []string{"exchange", "teams", "sharepoint"} {
				ev = event.Event{Kind: event.Usage, EventID: "x", OccurredAt: t0 + int64(d)*event.NanosPerDay + 3600e9, TenantID: tenant, UserID: user, Workload: w}
				apply()
			}
		}
		e.Emit(uint64(d + 2)) // the rows go to the sink; their memory is freed
	}
	runtime.GC()
	var m1 runtime.MemStats
	runtime.ReadMemStats(&m1)
	runtime.KeepAlive(e)
	return float64(m1.HeapAlloc-m0.HeapAlloc) / float64(users)
}

// BenchmarkEmit measures a flush after a day of usage in 100 tenants of
// 1000 users, each with a seat: the rows of every tenant's new day, and
// the user_activity rows of the day's events, in key order.
func BenchmarkEmit(b *testing.B) {
	const tenants, users = 100, 1000
	start := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	e, apply := seatedEngine(b, tenants, users, func(int) int64 { return start })
	e.Emit(1)
	workloads := []string{"exchange", "teams", "sharepoint"}
	var rows int
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		at := start + int64(i+1)*event.NanosPerDay
		for t := 0; t < tenants; t++ {
			for u := 0; u < users; u++ {
				apply(&event.Event{Kind: event.Usage, EventID: "x", OccurredAt: at + int64(u)*int64(time.Second),
					TenantID: fmt.Sprint("t-", t), UserID: fmt.Sprint("u-", u), Workload: workloads[(t+u+i)%3]})
			}
		}
		b.StartTimer()
		out := e.Emit(uint64(i + 2))
		rows = out.Len()
	}
	b.ReportMetric(float64(rows), "rows/flush")
}

// BenchmarkEmitWithinDay measures the flushes of a live pipeline between
// day ends: every 5 s, a few events of some tenants. 100 tenants of 1000
// users, each assigned a seat this week, so every tenant holds recent seat
// history.
func BenchmarkEmitWithinDay(b *testing.B) {
	const tenants, users = 100, 1000
	start := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	e, apply := seatedEngine(b, tenants, users, func(u int) int64 { return start - int64(u%7)*event.NanosPerDay })
	e.Emit(1)
	at := start + 3600e9
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		for t := 0; t < 10; t++ { // 10 events, of 10 tenants, 5 s apart
			at += 5e8
			apply(&event.Event{Kind: event.Usage, EventID: "x", OccurredAt: at,
				TenantID: fmt.Sprint("t-", (i*10+t)%tenants), UserID: fmt.Sprint("u-", (i+t)%users), Workload: "teams"})
		}
		b.StartTimer()
		e.Emit(uint64(i + 2))
	}
}

// seatedEngine is an engine with tenants t-0... of users u-0..., each
// assigned a seat at assignedAt(u), and a function applying an event
// that must be accepted.
func seatedEngine(b *testing.B, tenants, users int, assignedAt func(u int) int64) (*figures.Engine, func(*event.Event)) {
	e := oneSourceEngine(b)
	apply := applier(b, e)
	for t := 0; t < tenants; t++ {
		for u := 0; u < users; u++ {
			apply(&event.Event{Kind: event.Assignment, EventID: fmt.Sprint("a", t, u), OccurredAt: assignedAt(u),
				TenantID: fmt.Sprint("t-", t), UserID: fmt.Sprint("u-", u), SKU: "O365_E3", Assigned: true})
		}
	}
	return e, apply
}

// BenchmarkEmitManySubscriptions measures the flushes between day ends
// of one large customer: 2000 subscriptions of 100 SKUs, a seat of each
// SKU for 20 users, and a usage event before each flush, of now or of a
// week ago (a late event: a week of days recomputed).
func BenchmarkEmitManySubscriptions(b *testing.B) {
	for _, late := range []int64{0, 7} {
		b.Run(fmt.Sprintf("%d_days_late", late), func(b *testing.B) {
			const subs, skus, users = 2000, 100, 20
			start := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC).UnixNano()
			e := oneSourceEngine(b)
			apply := applier(b, e)
			for s := range subs {
				apply(&event.Event{Kind: event.Subscription, EventID: fmt.Sprint("s", s), OccurredAt: start - 20*event.NanosPerDay, TenantID: "t-big",
					SubscriptionID: fmt.Sprint("sub-", s), SKU: fmt.Sprint("SKU_", s%skus), Quantity: 10, Status: event.Active})
			}
			for k := range skus {
				for u := range users {
					apply(&event.Event{Kind: event.Assignment, EventID: fmt.Sprint("a", k, u), OccurredAt: start - int64(u%7)*event.NanosPerDay,
						TenantID: "t-big", UserID: fmt.Sprint("u-", u), SKU: fmt.Sprint("SKU_", k), Assigned: true})
				}
			}
			e.Emit(1)
			at := start + 3600e9
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				at += 5e9
				apply(&event.Event{Kind: event.Usage, EventID: "x", OccurredAt: at - late*event.NanosPerDay, TenantID: "t-big",
					UserID: fmt.Sprint("u-", i%users), Workload: "teams"})
				b.StartTimer()
				e.Emit(uint64(i + 2))
			}
		})
	}
}

// applier applies an event to e that must be accepted.
func applier(b *testing.B, e *figures.Engine) func(*event.Event) {
	return func(ev *event.Event) {
		if _, r, err := e.Apply(0, ev); err != nil || r != nil {
			b.Fatal(err, r)
		}
	}
}
