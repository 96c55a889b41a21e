package figures_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/seatflow/seatflow/pipeline/event"
	"github.com/seatflow/seatflow/pipeline/figures"
	"github.com/seatflow/seatflow/pipeline/simulate"
	"github.com/seatflow/seatflow/testenv/reference"
)

// FuzzDecodeApply decodes arbitrary bytes, one event a line, applies what
// the decoder accepts, and checks the rows against the reference model
// over the events the engine took: whatever the input, nothing refused
// reaches a row and every figure is exact. `make fuzz` runs it.
func FuzzDecodeApply(f *testing.F) {
	cat := testCatalog(f)
	var sample []byte
	cfg := simulate.Config{Tenants: 2, Users: 4, Seed: 1, Start: time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC), End: time.Date(2026, 10, 12, 0, 0, 0, 0, time.UTC)}
	if err := simulate.Generate(cfg, cat, func(ev *event.Event) error { sample = append(ev.AppendJSON(sample), '\n'); return nil }); err != nil {
		f.Fatal(err)
	}
	f.Add(sample)
	f.Add([]byte(`{"type":"usage","v":1,"event_id":"e","occurred_at":"2026-10-02T00:00:00Z","tenant_id":"t","user_id":"u","workload":"teams"}` + "\n" +
		`{"type":"assignment","v":1,"event_id":"a","occurred_at":"1970-01-01T00:00:00Z","tenant_id":"t","user_id":"u","sku":"O365_E3","assigned":true}`))
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := figures.New(figures.Config{Catalog: cat})
		if err != nil {
			t.Fatal(err)
		}
		e.SetSources(0)
		tb := newTable()
		var (
			d        event.Decoder
			accepted []event.Event
			ids      = map[string]bool{}
		)
		for _, line := range bytes.Split(data, []byte("\n")) {
			var ev event.Event
			if d.Decode(line, now, &ev) != nil || ids[ev.EventID] {
				continue // a repeated event_id with other content is no duplicate: the harness keeps ids unique
			}
			ids[ev.EventID] = true
			_, rej, err := e.Apply(0, &ev)
			if errors.Is(err, figures.ErrAhead) {
				tb.flush(t, e)
				_, rej, err = e.Apply(0, &ev)
			}
			if errors.Is(err, figures.ErrAhead) {
				continue // the runner would pause and retry it: not applied
			}
			if err != nil {
				t.Fatalf("apply %+v: %v", ev, err)
			}
			if rej == nil {
				accepted = append(accepted, ev)
			}
		}
		e.SetIdle(0, true)
		tb.flush(t, e)
		must(t, tb.diff(reference.Compute(accepted, cat, e.CurrentDay())))
	})
}
