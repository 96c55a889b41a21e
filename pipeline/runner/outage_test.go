package runner_test

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/seatflow/seatflow/pipeline/event"
	"github.com/seatflow/seatflow/pipeline/runner"
	"github.com/seatflow/seatflow/testenv"
)

// TestClickHouseOutage stops the local ClickHouse under the running
// pipeline, then publishes events: the pipeline reports not ready and stops
// consuming, with a flush of applied events waiting for the sink. It is stopped then, as an operator would, and ClickHouse
// comes back: the stop still writes that flush and a checkpoint, and a
// second run drains the rest. The rows equal the reference with nothing
// doubled or lost.
func TestClickHouseOutage(t *testing.T) {
	ctx := context.Background()
	own := testenv.StartOwnClickHouse(t)
	conn := own.Conn

	k := testenv.StartKafka(t, testenv.KafkaOptions{Partitions: 3})
	// enough events that consuming stops before they are all read, with
	// events applied into the flush that waits for the sink
	events, cat := simulated(t, 40, 50)
	quiet := func(c *runner.Config) {
		c.CheckpointInterval = 300 * time.Millisecond
		c.Log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	}
	r := testRunner(t, k, conn, "seatflow", "outage", cat, quiet)
	testCtx, cancelTest := context.WithTimeout(ctx, 3*time.Minute)
	defer cancelTest()
	runCtx, stop := context.WithCancel(testCtx)
	defer stop()
	done := runInBackground(runCtx, r)
	waitUntil(t, runCtx, "a first flush", func() bool { _, _, f := r.Progress(); return f > 0 })
	own.Kill() // ClickHouse goes away, and then the events come
	produce(t, k, events)
	deadline := time.Now().Add(30 * time.Second)
	for r.Ready() && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if r.Ready() {
		t.Fatal("the pipeline stayed ready while ClickHouse was down")
	}
	// The failing write holds the sink and one more flush may queue
	// behind it; the flush after that waits, and consuming stops. How
	// soon depends on the machine, so the test waits for the count of
	// applied events to hold still for a second, then requires it to
	// hold another; a pipeline that never stops reads every event, which
	// the check after this one rejects.
	var stalled int64 = -1
	waitUntil(t, runCtx, "consuming to stop", func() bool {
		p, _, _ := r.Progress()
		if p == stalled {
			return true
		}
		stalled = p
		time.Sleep(time.Second)
		return false
	})
	time.Sleep(time.Second)
	if p, _, _ := r.Progress(); p != stalled {
		t.Errorf("kept consuming (%d → %d) while ClickHouse was down", stalled, p)
	}
	if stalled == int64(len(events)) {
		t.Fatal("every event was read before consuming stopped: the stop below would test nothing")
	}
	stop() // the waiting flush's rows have left the engine: the stop must write them
	own.Restart(t)
	if err := <-done; err != nil {
		t.Fatalf("stopped while ClickHouse was down, then it came back: %v", err)
	}

	r = testRunner(t, k, conn, "seatflow", "outage", cat, func(c *runner.Config) { quiet(c); c.Drain = true })
	if err := r.Run(testCtx); err != nil {
		t.Fatalf("second run: %v", err)
	}
	if !r.Ready() {
		t.Error("not ready after draining")
	}
	must(t, compare(t, conn, "seatflow", referenceOf(k, events, cat)))
	noDuplicates(t, conn, "seatflow")
}

// TestSinkFailureStopsRun drops a table under the running pipeline: the
// insert fails for good (not a transient error), and Run returns that
// error instead of retrying or hanging.
func TestSinkFailureStopsRun(t *testing.T) {
	ctx := context.Background()
	k := testenv.StartKafka(t, testenv.KafkaOptions{Partitions: 2})
	chEnv := testenv.StartClickHouse(t)
	conn := chEnv.Open(t)
	events, cat := simulated(t, 5, 20)
	produce(t, k, events)
	r := testRunner(t, k, conn, chEnv.Database, "sink-failure", cat, func(c *runner.Config) {
		c.FlushInterval, c.CheckpointInterval = 50*time.Millisecond, time.Hour
		c.Log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	})
	runCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	done := runInBackground(runCtx, r)
	waitUntil(t, runCtx, "a flush", func() bool { _, _, f := r.Progress(); return f > 0 })
	if err := conn.Exec(ctx, "DROP TABLE "+chEnv.Database+".usage_daily"); err != nil {
		t.Fatal(err)
	}
	// a seat in a new tenant: new usage_daily rows that must be written
	last := events[len(events)-1]
	produce(t, k, []event.Event{{Kind: event.Assignment, EventID: "after-drop", OccurredAt: last.OccurredAt,
		TenantID: "tenant-after-drop", UserID: "u-1", SKU: "O365_E3", Assigned: true}})
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "usage_daily") {
			t.Fatalf("Run returned %v, want an error naming usage_daily", err)
		}
	case <-runCtx.Done():
		t.Fatal("Run neither failed nor returned after its table was dropped")
	}
}

// runInBackground runs r until ctx ends and hands back Run's result.
func runInBackground(ctx context.Context, r *runner.Runner) <-chan error {
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	return done
}

// waitUntil polls cond, failing the test if ctx ends first.
func waitUntil(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		if ctx.Err() != nil {
			t.Fatalf("no %s within the test's time", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
