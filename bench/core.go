package main

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"time"

	"github.com/seatflow/seatflow/pipeline/catalog"
	"github.com/seatflow/seatflow/pipeline/event"
	"github.com/seatflow/seatflow/pipeline/figures"
	"github.com/seatflow/seatflow/pipeline/simulate"
	sink "github.com/seatflow/seatflow/sinks/clickhouse"
)

// coreSpeed decodes and applies n usage events on one goroutine, in
// rounds: the figure is the best round's, with the median and the worst
// in the note. A shared VM's neighbours slow single rounds by up to a
// half; the best round is the code's speed on the core, the median what
// a run can expect.
func coreSpeed(cat *catalog.Catalog, n, rounds int) Result {
	e, _ := figures.New(figures.Config{Catalog: cat})
	e.SetSources(0)
	start := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	msgs := simulate.UsageMessages(8192, 100, 100_000, start)
	now := start.Add(24 * time.Hour).UnixNano()
	var d event.Decoder
	var ev event.Event
	per := max(n/rounds, 1)
	rates := make([]float64, rounds)
	for r := range rates {
		runtime.GC()
		t0 := time.Now()
		for i := 0; i < per; i++ {
			if r := d.Decode(msgs[i%len(msgs)], now, &ev); r != nil {
				fail(r)
			}
			if _, r, err := e.Apply(0, &ev); err != nil || r != nil {
				fail(fmt.Errorf("%v %v", err, r))
			}
		}
		rates[r] = float64(per) / time.Since(t0).Seconds()
	}
	return Result{Name: "core decode+apply", Value: slices.Max(rates), Unit: "events/s", Target: ">= 3M/s (issue 5), 2M/s (issue 3)",
		Note: fmt.Sprintf("best of %d rounds of %s; median %.2fM/s, worst %.2fM/s", rounds, human(per), median(rates)/1e6, slices.Min(rates)/1e6)}
}

// steadyEngine tracks n users in 1000-user tenants, each assigned one SKU
// long before the window and active in three workloads today.
func steadyEngine(cat *catalog.Catalog, n int) *figures.Engine {
	e, _ := figures.New(figures.Config{Catalog: cat})
	e.SetSources(0)
	t0 := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	var ev event.Event
	apply := func() {
		if _, _, err := e.Apply(0, &ev); err == figures.ErrAhead {
			e.Emit(1)
			e.Apply(0, &ev)
		}
	}
	var buf []byte
	id := func(prefix string, i int) string {
		buf = strconv.AppendInt(append(buf[:0], prefix...), int64(i), 10)
		return string(buf)
	}
	for u := 0; u < n; u++ {
		ev = event.Event{Kind: event.Assignment, EventID: id("a", u), OccurredAt: t0 - 70*event.NanosPerDay,
			TenantID: id("t-", u/1000), UserID: id("u-", u), SKU: "O365_E3", Assigned: true}
		apply()
	}
	e.Emit(1)
	for u := 0; u < n; u++ {
		tenant, user := id("t-", u/1000), id("u-", u)
		for _, w := range []string{"exchange", "teams", "sharepoint"} {
			ev = event.Event{Kind: event.Usage, EventID: "x", OccurredAt: t0 + 3600e9, TenantID: tenant, UserID: user, Workload: w}
			apply()
		}
	}
	e.Emit(2)
	return e
}

// heapPerUser builds the steady engine and reads the heap it holds.
func heapPerUser(cat *catalog.Catalog, n int) Result {
	runtime.GC()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	e := steadyEngine(cat, n)
	runtime.GC()
	runtime.ReadMemStats(&m1)
	runtime.KeepAlive(e)
	return Result{Name: "heap per tracked user", Size: n, Value: float64(m1.HeapAlloc-m0.HeapAlloc) / float64(n),
		Unit: "bytes/user", Target: "<= 48 at 10M (issue 5), 64 at 1M (issue 3)", Note: "1 SKU, 3 workloads, seat older than the window"}
}

// restart checkpoints a steady engine of n users into the local
// ClickHouse, then times what a restart does: read the newest checkpoint,
// decompress it and restore the state.
func restart(ctx context.Context, cat *catalog.Catalog, n int) ([]Result, error) {
	conn, stop, err := localClickHouse(ctx)
	if err != nil {
		return nil, err
	}
	defer stop()
	e := steadyEngine(cat, n)
	var state bytes.Buffer
	if err := e.WriteState(&state); err != nil {
		return nil, err
	}
	cps := sink.NewCheckpoints(conn, "seatflow", "bench")
	t0 := time.Now()
	if err := cps.Save(ctx, sink.Checkpoint{Unit: 0, Version: 1, Offsets: map[string]int64{}, State: state.Bytes()}); err != nil {
		return nil, err
	}
	save := time.Since(t0)
	e = nil
	runtime.GC()
	t0 = time.Now()
	cp, err := cps.Latest(ctx, 0)
	if err != nil {
		return nil, err
	}
	restored, _ := figures.New(figures.Config{Catalog: cat})
	if err := restored.ReadState(bytes.NewReader(cp.State)); err != nil {
		return nil, err
	}
	took := time.Since(t0)
	if restored.Users() != n {
		return nil, fmt.Errorf("restored %d users, want %d", restored.Users(), n)
	}
	return []Result{
		{Name: "restart (read + restore state)", Size: n, Value: took.Seconds(), Unit: "s", Target: "< 10 s at 10M users",
			Note: fmt.Sprintf("state %.0f MB", float64(state.Len())/1e6)},
		{Name: "checkpoint write", Size: n, Value: save.Seconds(), Unit: "s"},
	}, nil
}
