package figures_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/seatflow/seatflow/pipeline/catalog"
	"github.com/seatflow/seatflow/pipeline/event"
	"github.com/seatflow/seatflow/pipeline/figures"
	"github.com/seatflow/seatflow/pipeline/simulate"
	"github.com/seatflow/seatflow/schemas"
	"github.com/seatflow/seatflow/testenv/reference"
)

func TestStateNeedsFlushAndRejectsCorruption(t *testing.T) {
	s := newStory(t)
	s.use("2026-10-02T10:00:00Z", "u", "teams")
	var buf bytes.Buffer
	if err := s.e.WriteState(&buf); err != figures.ErrPending {
		t.Fatalf("WriteState with pending rows: %v, want ErrPending", err)
	}
	s.tb.flush(t, s.e)
	if err := s.e.WriteState(&buf); err != nil {
		t.Fatal(err)
	}
	state := buf.Bytes()
	fresh := func() *figures.Engine {
		e, err := figures.New(figures.Config{Catalog: testCatalog(t)})
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	for cut := 0; cut < len(state); cut += 7 {
		if err := fresh().ReadState(bytes.NewReader(state[:cut])); err == nil {
			t.Fatalf("a state cut at %d of %d bytes was accepted", cut, len(state))
		}
	}
	if err := fresh().ReadState(strings.NewReader("garbage")); err == nil || !strings.Contains(err.Error(), "not a seatflow state") {
		t.Errorf("garbage: %v", err)
	}
	other, _ := figures.New(figures.Config{Catalog: testCatalog(t), Horizon: 3 * 24 * time.Hour})
	if err := other.ReadState(bytes.NewReader(state)); err == nil || !strings.Contains(err.Error(), "horizon") {
		t.Errorf("other horizon: %v", err)
	}
	e := fresh()
	if err := e.ReadState(bytes.NewReader(state)); err != nil {
		t.Fatal(err)
	}
	if e.Watermark() != s.e.Watermark() || e.CurrentDay() != s.e.CurrentDay() {
		t.Errorf("restored watermark/current day differ")
	}
	// a replayed event after the restore changes nothing
	ev := event.Event{Kind: event.Usage, EventID: "x", OccurredAt: ts("2026-10-02T10:00:00Z"), TenantID: "t-1", UserID: "u", Workload: "teams"}
	e.Apply(0, &ev)
	if rows := e.Emit(99); rows.Len() != 0 {
		t.Errorf("replay after restore wrote %d rows", rows.Len())
	}
}

// A restored engine keeps the settings it was made with, not the
// defaults: with watermark alignment off, a source far ahead of another
// goes on after a restart too.
func TestRestoreKeepsSettings(t *testing.T) {
	cfg := figures.Config{Catalog: testCatalog(t)}
	e, err := figures.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.SetSources(0, 1)
	use := func(e *figures.Engine, src int32, id, at string) error {
		ev := event.Event{Kind: event.Usage, EventID: id, OccurredAt: ts(at), TenantID: fmt.Sprint("t-", src), UserID: "u", Workload: "teams"}
		_, _, err := e.Apply(src, &ev)
		return err
	}
	for src, at := range []string{"2026-10-02T10:00:00Z", "2026-10-02T09:00:00Z"} { // source 1 is the slowest
		if err := use(e, int32(src), fmt.Sprint("e", src), at); err != nil {
			t.Fatal(err)
		}
	}
	e.Emit(1)
	var state bytes.Buffer
	if err := e.WriteState(&state); err != nil {
		t.Fatal(err)
	}
	restored, err := figures.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := restored.ReadState(&state); err != nil {
		t.Fatal(err)
	}
	// two days past the slowest source: past the default 24 h skew
	for name, e := range map[string]*figures.Engine{"original": e, "restored": restored} {
		if err := use(e, 0, "ahead", "2026-10-04T12:00:00Z"); err != nil {
			t.Errorf("%s engine, alignment off: %v", name, err)
		}
	}
}

// TestRestoreWithAChangedCatalog: a state written with one catalog is read
// with a catalog that gained a SKU whose workload sorts before every other
// (so every workload's id moves); the figures go on as if nothing changed.
func TestRestoreWithAChangedCatalog(t *testing.T) {
	before := testCatalog(t)
	var doc map[string]any
	if err := json.Unmarshal(schemas.Catalog, &doc); err != nil {
		t.Fatal(err)
	}
	doc["skus"] = append(doc["skus"].([]any), map[string]any{"sku": "AA_NEW", "product": "Dynamics 365", "workloads": []string{"aaa_first"}})
	b, _ := json.Marshal(doc)
	after, err := catalog.Load(b)
	if err != nil {
		t.Fatal(err)
	}
	var events []event.Event
	cfg := simulate.Config{Tenants: 4, Users: 12, Seed: 9, Start: time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC), End: time.Date(2026, 10, 5, 0, 0, 0, 0, time.UTC)}
	if err := simulate.Generate(cfg, before, func(ev *event.Event) error { events = append(events, *ev); return nil }); err != nil {
		t.Fatal(err)
	}
	tb := newTable()
	apply := func(e *figures.Engine, evs []event.Event) {
		for i := range evs {
			_, _, err := e.Apply(0, &evs[i])
			if errors.Is(err, figures.ErrAhead) {
				tb.flush(t, e)
				_, _, err = e.Apply(0, &evs[i])
			}
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	old, _ := figures.New(figures.Config{Catalog: before})
	old.SetSources(0)
	half := len(events) / 2
	apply(old, events[:half])
	tb.flush(t, old)
	var state bytes.Buffer
	if err := old.WriteState(&state); err != nil {
		t.Fatal(err)
	}
	restored, _ := figures.New(figures.Config{Catalog: after})
	if err := restored.ReadState(&state); err != nil {
		t.Fatalf("read with a catalog that gained a SKU: %v", err)
	}
	apply(restored, events[half:])
	restored.SetIdle(0, true)
	tb.flush(t, restored)
	if diffs := tb.diff(reference.Compute(events, after, restored.CurrentDay())); len(diffs) > 0 {
		t.Fatalf("%d rows differ, e.g.\n%s", len(diffs), strings.Join(diffs[:min(10, len(diffs))], "\n"))
	}
}
