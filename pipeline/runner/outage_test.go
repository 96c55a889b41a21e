package runner_test

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/seatflow/seatflow/pipeline/event"
	"github.com/seatflow/seatflow/pipeline/reference"
	"github.com/seatflow/seatflow/pipeline/runner"
	"github.com/seatflow/seatflow/testenv"
)

// TestClickHouseOutage stops the local ClickHouse while the pipeline runs
// and starts it again: the pipeline reports not ready, waits, catches up,
// and the rows equal the reference with nothing doubled.
func TestClickHouseOutage(t *testing.T) {
	ctx := context.Background()
	own := testenv.StartOwnClickHouse(t)
	conn := own.Conn

	k := testenv.StartKafka(t, testenv.KafkaOptions{Partitions: 3})
	events, cat := simulated(t, 10, 30)
	half := len(events) / 2
	produce(t, k, events[:half])
	r, err := runner.New(runner.Config{
		Brokers: k.Brokers, LicenseTopic: k.License, UsageTopic: k.Usage, DeadLetterTopic: k.DeadLetter,
		Group: "outage", Database: "seatflow", FlushInterval: 100 * time.Millisecond, CheckpointInterval: 300 * time.Millisecond,
		Drain: true, Catalog: cat, Log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})),
		Metrics: runner.NewMetrics(prometheus.NewRegistry()),
	}, conn)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- r.Run(runCtx) }()
	for p, _, _ := r.Progress(); p == 0; p, _, _ = r.Progress() {
		if runCtx.Err() != nil {
			t.Fatal("the pipeline processed nothing within the test's time")
		}
		time.Sleep(10 * time.Millisecond)
	}
	own.Kill() // ClickHouse goes away mid-run
	produce(t, k, events[half:])
	deadline := time.Now().Add(30 * time.Second)
	for r.Ready() && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if r.Ready() {
		t.Fatal("the pipeline stayed ready while ClickHouse was down")
	}
	stalled, _, _ := r.Progress()
	time.Sleep(500 * time.Millisecond)
	if p, _, _ := r.Progress(); p != stalled {
		t.Errorf("kept consuming (%d → %d) while ClickHouse was down", stalled, p)
	}
	own.Restart(t)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run after ClickHouse came back: %v", err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("the pipeline did not finish draining within 2 minutes of ClickHouse coming back")
	}
	if !r.Ready() {
		t.Error("not ready after ClickHouse came back")
	}
	last := event.DayOf(events[len(events)-1].OccurredAt)
	must(t, compare(t, conn, "seatflow", reference.Compute(events, cat, last)))
	noDuplicates(t, conn, "seatflow")
}
