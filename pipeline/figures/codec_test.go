package figures_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/seatflow/seatflow/pipeline/event"
	"github.com/seatflow/seatflow/pipeline/figures"
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
	if rows := e.Flush(99); rows.Len() != 0 {
		t.Errorf("replay after restore wrote %d rows", rows.Len())
	}
}

// A restored engine keeps the settings it was made with, not the
// defaults: with watermark alignment off, a source far ahead of another
// goes on after a restart too.
func TestRestoreKeepsSettings(t *testing.T) {
	cfg := figures.Config{Catalog: testCatalog(t), MaxSkew: -1}
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
	e.Flush(1)
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
