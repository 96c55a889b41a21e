package figures_test

import (
	"bytes"
	"flag"
	"fmt"
	"math/rand/v2"
	"sort"
	"testing"
	"time"

	"github.com/seatflow/seatflow/pipeline/event"
	"github.com/seatflow/seatflow/pipeline/figures"
	"github.com/seatflow/seatflow/testenv/reference"
)

var seeds = flag.Int("seeds", 300, "random scenarios TestAgainstReference runs")

// scenario generates a few tenants' month of events: subscriptions whose
// status churns, trials, two subscriptions of one SKU, seats moving between
// users (turnover), usage in catalog workloads, OneDrive and an unknown
// workload, a SKU the catalog does not know.
func scenario(r *rand.Rand) []event.Event {
	start := time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	days := 20 + r.IntN(30)
	var evs []event.Event
	id := 0
	at := func(day int) int64 {
		// whole minutes, so equal timestamps (ties) happen
		return start + int64(day)*event.NanosPerDay + int64(r.IntN(24*60))*int64(time.Minute)
	}
	next := func(kind event.Kind, tenant string, t int64) event.Event {
		id++
		return event.Event{Kind: kind, EventID: fmt.Sprintf("e-%06d", id), OccurredAt: t, TenantID: tenant}
	}
	skus := []string{"O365_E3", "O365_E1", "D365_SALES", "NEW_SKU_X"}
	workloads := []string{"exchange", "sharepoint", "onedrive", "teams", "yammer", "office_apps", "dynamics_sales", "visio"}
	statuses := []event.Status{event.Active, event.Active, event.Active, event.Grace, event.Disabled, event.Deprovisioned, event.Suspended, event.Upgraded, event.Cancelled}
	for ti := 0; ti < 2+r.IntN(3); ti++ {
		tenant := fmt.Sprintf("t-%d", ti)
		nUsers := 3 + r.IntN(12)
		tskus := skus[:1+r.IntN(len(skus))]
		for si := 0; si < 1+r.IntN(4); si++ {
			sku := tskus[r.IntN(len(tskus))]
			trial := r.IntN(4) == 0
			sub := fmt.Sprintf("s-%d", si)
			for k := 0; k < 1+r.IntN(4); k++ {
				ev := next(event.Subscription, tenant, at(r.IntN(days)))
				ev.SubscriptionID, ev.SKU, ev.PartnerID = sub, sku, fmt.Sprintf("p-%d", r.IntN(2))
				ev.Quantity, ev.Status, ev.Trial = int64(r.IntN(10)), statuses[r.IntN(len(statuses))], trial
				evs = append(evs, ev)
			}
		}
		for u := 0; u < nUsers; u++ {
			user := fmt.Sprintf("u-%d", u)
			for k := 0; k < r.IntN(4); k++ {
				ev := next(event.Assignment, tenant, at(r.IntN(days)))
				ev.UserID, ev.SKU, ev.Assigned = user, tskus[r.IntN(len(tskus))], r.IntN(3) > 0
				evs = append(evs, ev)
			}
			habit := r.IntN(8) // how often this user works
			for d := 0; d < days; d++ {
				if r.IntN(8) > habit {
					continue
				}
				for k := 0; k < 1+r.IntN(3); k++ {
					ev := next(event.Usage, tenant, at(d))
					ev.UserID, ev.Workload = user, workloads[r.IntN(len(workloads))]
					evs = append(evs, ev)
				}
			}
		}
	}
	return evs
}

// delivery orders events as Kafka might deliver them: roughly by time with
// jitter inside the allowed lateness, some events held back for up to three
// days (late, inside the restatement horizon), and some duplicated.
func delivery(r *rand.Rand, evs []event.Event) []event.Event {
	type item struct {
		ev  event.Event
		key int64
	}
	items := make([]item, 0, len(evs)*11/10)
	for _, ev := range evs {
		key := ev.OccurredAt + int64(r.IntN(50))*int64(time.Minute)
		if r.IntN(40) == 0 {
			key = ev.OccurredAt + int64(r.IntN(3*24))*int64(time.Hour)
		}
		items = append(items, item{ev, key})
		if r.IntN(20) == 0 {
			items = append(items, item{ev, key + int64(r.IntN(5*24))*int64(time.Hour)})
		}
	}
	sort.SliceStable(items, func(i, j int) bool { return items[i].key < items[j].key })
	out := make([]event.Event, len(items))
	for i, it := range items {
		out[i] = it.ev
	}
	return out
}

// runAgainstReference feeds one generated scenario through the engine,
// flushing at random points, and compares every row with the reference
// (but user_activity's, which must be empty, with noActivity).
func runAgainstReference(t *testing.T, seed uint64, noActivity bool) {
	r := rand.New(rand.NewPCG(seed, 7))
	cat := testCatalog(t)
	cfg := figures.Config{Catalog: cat, NoUserActivity: noActivity, MaxSkew: figures.DefaultMaxSkew}
	e, err := figures.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// Tenants spread over three sources (partitions); sources that get no
	// event are idle from the start, as a partition read to its end.
	const sources = 3
	sourceOf := func(tenant string) int32 { return int32(tenant[len(tenant)-1]) % sources }
	evs := delivery(r, scenario(r))
	used := map[int32]bool{}
	for _, ev := range evs {
		used[sourceOf(ev.TenantID)] = true
	}
	for s := int32(0); s < sources; s++ {
		e.SetSources(s)
		e.SetIdle(s, !used[s])
	}
	tb := newTable()
	accepted := map[string]event.Event{}
	// Per-source queues in delivery order; a source whose event is too far
	// ahead of the watermark (ErrAhead) or of the slowest source (ErrSkew)
	// pauses while the others go on, as the Kafka input does.
	queues := map[int32][]int{}
	for i, ev := range evs {
		queues[sourceOf(ev.TenantID)] = append(queues[sourceOf(ev.TenantID)], i)
	}
	paused := map[int32]bool{}
	// lagCheck is the runner's periodic look at the partition ends: a
	// source read to its end is marked idle again, which lets the
	// watermark pass it up to the newest event so far.
	lagCheck := func() {
		for s := int32(0); s < sources; s++ {
			if len(queues[s]) == 0 {
				e.SetIdle(s, true)
			}
		}
	}
	checked := false // since the last applied event
	for {
		next, src := -1, int32(-1)
		for s, q := range queues {
			if len(q) > 0 && !paused[s] && (next < 0 || q[0] < next) {
				next, src = q[0], s
			}
		}
		if next < 0 {
			if len(paused) > 0 && !checked {
				lagCheck()
				clear(paused)
				checked = true
				continue
			}
			if len(paused) > 0 {
				t.Fatalf("every source with events left is paused: watermark alignment deadlocked")
			}
			break
		}
		if r.IntN(100) == 0 {
			lagCheck()
		}
		ev := evs[next]
		wm := e.Watermark()
		pause := func() {
			// A refused event may still move its source's high mark
			// (ErrAhead): if that moved the watermark, the paused sources
			// may go on, and the runner retries them after every batch.
			if e.Watermark() != wm {
				clear(paused)
			}
			paused[src] = true
		}
		_, rej, err := e.Apply(src, &ev)
		if err == figures.ErrSkew {
			pause()
			continue
		}
		if err == figures.ErrAhead {
			tb.flush(t, e)
			if _, rej, err = e.Apply(src, &ev); err == figures.ErrAhead || err == figures.ErrSkew {
				pause()
				continue
			}
		}
		if err != nil {
			t.Fatalf("apply %+v: %v", ev, err)
		}
		queues[src] = queues[src][1:]
		clear(paused)
		checked = false
		if len(queues[src]) == 0 {
			e.SetIdle(src, true)
		}
		if rej != nil {
			if _, dup := accepted[ev.EventID]; !dup && rej.Reason == event.TooLate {
				t.Fatalf("event %s rejected %v; generator keeps originals inside the horizon", ev.EventID, rej)
			}
			continue
		}
		accepted[ev.EventID] = ev
		if r.IntN(150) == 0 {
			tb.flush(t, e)
		}
		if r.IntN(400) == 0 {
			// checkpoint and restart: carry on with a restored engine
			tb.flush(t, e)
			e = restore(t, e, cfg)
		}
	}
	for s := int32(0); s < sources; s++ {
		e.SetIdle(s, true)
	}
	tb.flush(t, e)
	list := make([]event.Event, 0, len(accepted))
	for _, ev := range accepted {
		list = append(list, ev)
	}
	ref := reference.Compute(list, cat, e.CurrentDay())
	if noActivity {
		if len(tb.activity) > 0 {
			t.Fatalf("%d user_activity rows written with NoUserActivity", len(tb.activity))
		}
		ref.Activity = nil
	}
	must(t, tb.diff(ref))
	for k, row := range tb.deployment {
		if k.Date <= e.ClosedThrough() && !row.Final {
			t.Fatalf("%v: closed day not final", k)
		}
	}
}

// restore writes the engine's state, reads it into a new engine made with
// cfg, checks that the new one writes the same bytes, and returns it.
func restore(t *testing.T, e *figures.Engine, cfg figures.Config) *figures.Engine {
	t.Helper()
	var a, b bytes.Buffer
	if err := e.WriteState(&a); err != nil {
		t.Fatal(err)
	}
	n, err := figures.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.ReadState(bytes.NewReader(a.Bytes())); err != nil {
		t.Fatal(err)
	}
	if err := n.WriteState(&b); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatalf("restored state writes %d bytes that differ from the %d written", b.Len(), a.Len())
	}
	return n
}

func TestAgainstReference(t *testing.T) {
	for seed := uint64(1); seed <= uint64(*seeds); seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) { runAgainstReference(t, seed, false) })
	}
}

// Without the per-user rows, every other row is the same.
func TestAgainstReferenceWithoutActivity(t *testing.T) {
	for seed := uint64(1); seed <= uint64(*seeds)/10; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) { runAgainstReference(t, seed, true) })
	}
}

func FuzzAgainstReference(f *testing.F) {
	for _, s := range []uint64{1, 2, 3, 42} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, seed uint64) { runAgainstReference(t, seed, seed%4 == 3) })
}
