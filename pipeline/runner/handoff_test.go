package runner

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/seatflow/seatflow/pipeline/catalog"
	"github.com/seatflow/seatflow/pipeline/event"
	"github.com/seatflow/seatflow/pipeline/figures"
	"github.com/seatflow/seatflow/pipeline/row"
	"github.com/seatflow/seatflow/pipeline/simulate"
	"github.com/seatflow/seatflow/schemas"
	"github.com/seatflow/seatflow/testenv/reference"
)

// TestHandoffsGiveTheSameRows checks the no-wrong-row argument
// (docs/architecture.md) on one unit over many seeds, with in-memory
// stand-ins for ClickHouse's ReplacingMergeTree (the row of the highest
// version wins) and the checkpoint table: owners apply the unit's events
// in random interleavings of its two sides, flush and checkpoint at random
// moments, and hand the unit over at random; the owner that lets go goes
// on as a zombie for a while, its writes landing among the new owner's.
// Whatever the history, the rows are the reference model's.
func TestHandoffsGiveTheSameRows(t *testing.T) {
	cat, err := catalog.Load(schemas.Catalog)
	if err != nil {
		t.Fatal(err)
	}
	for seed := range uint64(40) {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			var events []event.Event
			cfg := simulate.Config{Tenants: 3, Users: 8, Seed: seed,
				Start: time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC), End: time.Date(2026, 9, 25, 0, 0, 0, 0, time.UTC)}
			if err := simulate.Generate(cfg, cat, func(ev *event.Event) error { events = append(events, *ev); return nil }); err != nil {
				t.Fatal(err)
			}
			// the toggles arrive two days late: they restate closed days
			toggles := seatToggles(events)
			late := func(ev event.Event) int64 { return ev.OccurredAt + 2*event.NanosPerDay }
			all := append(append([]event.Event(nil), events...), toggles...)
			sort.SliceStable(all, func(i, j int) bool {
				ai, aj := all[i].OccurredAt, all[j].OccurredAt
				if strings.HasPrefix(all[i].EventID, "toggle-") {
					ai = late(all[i])
				}
				if strings.HasPrefix(all[j].EventID, "toggle-") {
					aj = late(all[j])
				}
				return ai < aj
			})
			events = all
			var sides [2][]event.Event
			for _, ev := range events {
				side := 0
				if ev.Kind == event.Usage {
					side = 1
				}
				sides[side] = append(sides[side], ev)
			}
			h := &history{t: t, rng: rand.New(rand.NewPCG(seed, 7)), cat: cat, sides: sides, rows: map[string]storedRow{}}
			h.run()
			want := rowsOf(reference.ComputeUnits(events, cat, func(string) int { return 0 }))
			var diffs []string
			for k, v := range want {
				if got := h.rows[k].value; got != v {
					diffs = append(diffs, fmt.Sprintf("%s: %q, want %q", k, got, v))
				}
			}
			for k := range h.rows {
				if _, ok := want[k]; !ok {
					diffs = append(diffs, fmt.Sprintf("%s: a row the reference does not have", k))
				}
			}
			if len(diffs) > 0 {
				sort.Strings(diffs)
				t.Fatalf("after %d handoffs, %d rows differ:\n%s", h.handoffs, len(diffs), strings.Join(diffs[:min(len(diffs), 10)], "\n"))
			}
		})
	}
}

// seatToggles adds, on every day after a tenant's first subscription,
// three seats more at 11:00 and back at 11:30: a row that changes and
// changes back, which an owner flushing in between writes, and an owner
// flushing around it never sees (Reemit is for this: arriving late, they
// restate final rows that nothing else rewrites).
func seatToggles(events []event.Event) []event.Event {
	var out []event.Event
	seen := map[string]bool{}
	for _, ev := range events {
		if ev.Kind != event.Subscription || seen[ev.TenantID] || ev.Status != event.Active {
			continue
		}
		seen[ev.TenantID] = true
		start := event.DayOf(ev.OccurredAt) + 1
		for d := start; d < start+20; d++ {
			for i, q := range []int64{ev.Quantity + 3, ev.Quantity} {
				up := ev
				up.EventID = fmt.Sprint("toggle-", ev.SubscriptionID, "-", d, "-", i)
				up.Quantity = q
				up.OccurredAt = int64(d)*event.NanosPerDay + int64(11*time.Hour) + int64(i)*int64(30*time.Minute)
				out = append(out, up)
			}
		}
	}
	return out
}

// history is one unit's life through owners.
type history struct {
	t        *testing.T
	rng      *rand.Rand
	cat      *catalog.Catalog
	sides    [2][]event.Event
	rows     map[string]storedRow // key → the row of the highest version
	cps      []savedCheckpoint
	epochs   uint64 // claims so far
	handoffs int
}

type storedRow struct {
	version uint64
	value   string
}

type savedCheckpoint struct {
	version uint64
	next    [2]int
	state   []byte
}

// owner works the unit as a member does: a unit's engine, positions and
// epoch, as acquire sets them.
type owner struct {
	u    unit
	next [2]int
}

func (h *history) newOwner() *owner {
	e, err := figures.New(figures.Config{Catalog: h.cat, MaxSkew: figures.DefaultMaxSkew})
	if err != nil {
		h.t.Fatal(err)
	}
	e.SetSources(0, 1)
	o := &owner{u: unit{engine: e}}
	var prevEpoch uint64
	if len(h.cps) > 0 { // the newest checkpoint, as restoreInto reads it
		cp := h.cps[len(h.cps)-1]
		for _, c := range h.cps {
			if c.version > cp.version {
				cp = c
			}
		}
		if err := e.ReadState(bytes.NewReader(cp.state)); err != nil {
			h.t.Fatal(err)
		}
		e.Reemit()
		o.next = cp.next
		o.u.seq, prevEpoch = cp.version&(1<<seqBits-1), cp.version>>seqBits
	}
	h.epochs = max(h.epochs, prevEpoch) + 1 // Claim
	o.u.epoch = h.epochs
	return o
}

// step applies one event of a random side; false when o has read both.
func (h *history) step(o *owner) bool {
	order := [2]int{0, 1}
	if h.rng.IntN(2) == 1 {
		order = [2]int{1, 0}
	}
	for _, side := range order {
		if o.next[side] >= len(h.sides[side]) {
			o.u.engine.SetIdle(int32(side), true)
			continue
		}
		ev := h.sides[side][o.next[side]]
		_, _, err := o.u.engine.Apply(int32(side), &ev)
		if errors.Is(err, figures.ErrAhead) {
			h.flush(o)
			_, _, err = o.u.engine.Apply(int32(side), &ev)
		}
		if errors.Is(err, figures.ErrAhead) || errors.Is(err, figures.ErrSkew) {
			continue // the side pauses; the other may go on
		}
		if err != nil {
			h.t.Fatal(err)
		}
		o.next[side]++
		return true
	}
	return o.next[0] < len(h.sides[0]) || o.next[1] < len(h.sides[1])
}

func (h *history) flush(o *owner) {
	o.u.seq++
	v := o.u.version()
	rows := o.u.engine.Emit(v)
	for k, val := range rowsOfFlush(rows) {
		if cur, ok := h.rows[k]; !ok || v > cur.version {
			h.rows[k] = storedRow{v, val}
		}
	}
}

func (h *history) checkpoint(o *owner) {
	h.flush(o)
	var state bytes.Buffer
	if err := o.u.engine.WriteState(&state); err != nil {
		h.t.Fatal(err)
	}
	h.cps = append(h.cps, savedCheckpoint{o.u.version(), o.next, state.Bytes()})
}

func (h *history) run() {
	cur := h.newOwner()
	var zombie *owner
	zombieSteps := 0
	for {
		// the zombie, still believing it owns the unit, now and then
		if zombie != nil && h.rng.IntN(3) == 0 {
			h.act(zombie, 30)
			if zombieSteps--; zombieSteps == 0 {
				zombie = nil
			}
		}
		switch n := h.rng.IntN(100); {
		case n < 2 && h.handoffs < 6:
			h.handoffs++
			if h.rng.IntN(2) == 0 { // a clean handoff checkpoints first
				h.checkpoint(cur)
			}
			zombie, zombieSteps = cur, 1+h.rng.IntN(200)
			cur = h.newOwner()
		default:
			if !h.act(cur, 8) {
				cur.u.engine.SetIdle(0, true)
				cur.u.engine.SetIdle(1, true)
				for zombie != nil { // its last writes may come after the end
					h.act(zombie, 30)
					if zombieSteps--; zombieSteps <= 0 {
						zombie = nil
					}
				}
				h.flush(cur)
				return
			}
		}
	}
}

// act has o apply an event, or flush (flushPct times in 100), or
// checkpoint; false once o has read everything. A zombie flushes often:
// its writes are what the test is about.
func (h *history) act(o *owner, flushPct int) bool {
	switch n := h.rng.IntN(100); {
	case n < flushPct:
		h.flush(o)
	case n < flushPct+3:
		h.checkpoint(o)
	default:
		return h.step(o)
	}
	return true
}

// rowsOfFlush keys a flush's snapshot rows as rowsOf does.
func rowsOfFlush(rows row.Set) map[string]string {
	out := map[string]string{}
	eachRow(rows, func(key string, _ uint64, value string) { out[key] = value })
	return out
}

// rowsOf keys the reference's snapshot rows.
func rowsOf(ref reference.Result) map[string]string {
	out := map[string]string{}
	for k, r := range ref.Deployment {
		out[fmt.Sprint("deployment ", k.TenantID, " ", k.SKU, " ", k.Date)] = fmt.Sprint(r.Sold, r.Trial, r.Assigned, r.Qualified, pct(r.DeploymentPct))
	}
	for k, r := range ref.Usage {
		out[fmt.Sprint("usage ", k.TenantID, " ", k.SKU, " ", k.Workload, " ", k.Date)] = fmt.Sprint(r.ActiveUsers, r.Qualified, pct(r.UsagePct))
	}
	for k, n := range ref.Workload {
		out[fmt.Sprint("workload ", k.TenantID, " ", k.Workload, " ", k.Date)] = fmt.Sprint(n)
	}
	for k, r := range ref.Subscriptions {
		out[fmt.Sprint("subscription ", k[0], " ", k[1])] = fmt.Sprint(r.SKU, r.PartnerID, r.Status, r.Trial, r.Quantity, r.OccurredAt)
	}
	return out
}

func pct(p *float64) string {
	if p == nil {
		return "NULL"
	}
	return fmt.Sprintf("%.4f", *p)
}

// TestReemitReplacesAZombiesRow is the case Reemit is for, step by step:
// a zombie writes a row from an event after the checkpoint (8 seats), and
// the new owner, restored from that checkpoint, reads that event and the
// one that undoes it between two flushes, so its own figure (5) equals
// what the checkpoint had emitted. Only Reemit makes it write 5 again, at
// its higher epoch, over the zombie's 8.
func TestReemitReplacesAZombiesRow(t *testing.T) {
	cat, err := catalog.Load(schemas.Catalog)
	if err != nil {
		t.Fatal(err)
	}
	at := func(h int) int64 { return time.Date(2026, 9, 1, h, 0, 0, 0, time.UTC).UnixNano() }
	sub := func(id string, q int64, hour int) event.Event {
		return event.Event{Kind: event.Subscription, EventID: id, TenantID: "t", SubscriptionID: "s", SKU: "O365_E3",
			Quantity: q, Status: event.Active, OccurredAt: at(hour)}
	}
	h := &history{t: t, cat: cat, rng: rand.New(rand.NewPCG(1, 2)), rows: map[string]storedRow{}, sides: [2][]event.Event{
		{sub("e1", 5, 9), sub("e2", 8, 11), sub("e3", 5, 12)}, nil}}
	a := h.newOwner()
	h.step(a)
	h.checkpoint(a) // 5 seats emitted
	h.step(a)
	h.flush(a) // the zombie's 8
	b := h.newOwner()
	h.step(b)
	h.step(b)
	h.flush(b)
	key := fmt.Sprint("deployment t O365_E3 ", event.DayOf(at(9)))
	if got := h.rows[key]; !strings.HasPrefix(got.value, "5 ") {
		t.Errorf("%s: %q of epoch %d, want the new owner's 5 seats", key, got.value, got.version>>seqBits)
	}
}
