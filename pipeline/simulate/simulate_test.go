package simulate_test

import (
	"testing"
	"time"

	"github.com/seatflow/seatflow/pipeline/catalog"
	"github.com/seatflow/seatflow/pipeline/event"
	"github.com/seatflow/seatflow/pipeline/simulate"
	"github.com/seatflow/seatflow/schemas"
)

func TestDeterministicValidAndVaried(t *testing.T) {
	cat, err := catalog.Load(schemas.Catalog)
	if err != nil {
		t.Fatal(err)
	}
	cfg := simulate.Config{Tenants: 8, Users: 30, Seed: 5,
		Start: time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC), End: time.Date(2026, 10, 6, 0, 0, 0, 0, time.UTC)}
	run := func() ([]byte, map[string]int) {
		var out []byte
		kinds := map[string]int{}
		var d event.Decoder
		var back event.Event
		err := simulate.Generate(cfg, cat, func(ev *event.Event) error {
			line := ev.AppendJSON(nil)
			if r := d.Decode(line, cfg.End.UnixNano(), &back); r != nil {
				t.Fatalf("simulated event does not validate: %v\n%s", r, line)
			}
			out = append(append(out, line...), '\n')
			kinds[ev.Kind.String()]++
			if ev.Kind == event.Subscription {
				kinds["status:"+ev.Status.String()]++
				if ev.Trial {
					kinds["trial"]++
				}
			}
			if ev.Kind == event.Assignment && !ev.Assigned {
				kinds["unassigned"]++
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return out, kinds
	}
	a, kinds := run()
	b, _ := run()
	if string(a) != string(b) {
		t.Fatal("same seed, different events")
	}
	for _, k := range []string{"subscription", "assignment", "usage", "status:grace", "trial", "unassigned"} {
		if kinds[k] == 0 {
			t.Errorf("no %s in the simulation: %v", k, kinds)
		}
	}
}
