package figures_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/seatflow/seatflow/pipeline/event"
	"github.com/seatflow/seatflow/pipeline/figures"
)

// TestBacklogIntoIdleSources: two partitions read to their end, then a
// backlog of three weeks is published to both and one is read entirely
// before the other. The second one's events were not there when it was
// found idle, so none of them may be late.
func TestBacklogIntoIdleSources(t *testing.T) {
	e, err := figures.New(figures.Config{Catalog: testCatalog(t)})
	if err != nil {
		t.Fatal(err)
	}
	e.SetSources(0, 1)
	start := time.Date(2026, 9, 1, 12, 0, 0, 0, time.UTC)
	n := 0
	use := func(src int32, day int) (figures.Outcome, *event.Rejection) {
		t.Helper()
		n++
		ev := event.Event{Kind: event.Usage, EventID: fmt.Sprint("e-", n), TenantID: fmt.Sprint("t-", src),
			UserID: "u", Workload: "exchange", OccurredAt: start.AddDate(0, 0, day).UnixNano()}
		o, rej, err := e.Apply(src, &ev)
		if err == figures.ErrAhead {
			e.Emit(uint64(n))
			o, rej, err = e.Apply(src, &ev)
		}
		if err != nil {
			t.Fatal(err)
		}
		return o, rej
	}
	for day := range 3 {
		use(0, day)
		use(1, day)
	}
	e.SetIdle(0, true) // both read to their end
	e.SetIdle(1, true)
	e.Emit(1)

	for day := 3; day < 24; day++ {
		use(0, day) // source 0's backlog is read first
	}
	for day := 3; day < 24; day++ {
		if o, rej := use(1, day); rej != nil || o != figures.OnTime {
			t.Errorf("day %d on the second source: outcome %v, rejection %v; want on time", day, o, rej)
		}
	}

	// found at its end again, an idle source lets the watermark follow
	// the newest event
	e.SetIdle(0, true)
	e.SetIdle(1, true)
	if got, want := e.Watermark(), start.AddDate(0, 0, 23).Add(-time.Hour).UnixNano(); got != want {
		t.Errorf("watermark after both are idle again: %v, want %v", time.Unix(0, got).UTC(), time.Unix(0, want).UTC())
	}
}
