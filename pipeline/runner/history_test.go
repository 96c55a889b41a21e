package runner_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"sort"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/seatflow/seatflow/pipeline/figures"
	"github.com/seatflow/seatflow/pipeline/runner"
	"github.com/seatflow/seatflow/testenv"
)

// TestReplicaHistoriesGiveTheSameRows: for several seeds, replicas of one
// group, the real runner on the embedded broker with its records in
// memory (runner.MemPorts), start and stop at random while events are
// published, so units move mid-stream between one, two and three members;
// then one replica drains. Whatever the history, the rows (the highest
// version of each key) are the reference model's, and no (key, version)
// was written with two values.
func TestReplicaHistoriesGiveTheSameRows(t *testing.T) {
	events, cat := simulated(t, 8, 12)
	seeds := 4
	if testing.Short() {
		seeds = 1
	}
	for seed := range uint64(seeds) {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			k := testenv.StartKafka(t, testenv.KafkaOptions{Partitions: 4})
			want := runner.RowsOfReference(referenceOf(k, events, cat))
			published := publishOverTime(t, k, events, 12, 120*time.Millisecond)
			mem := runner.NewMemPorts()
			rng := rand.New(rand.NewPCG(seed, 7))
			group := fmt.Sprint("history-", seed)
			replica := func(drain bool) *runner.Runner {
				cfg := runner.Config{
					Brokers: k.Brokers, LicenseTopic: k.License, UsageTopic: k.Usage, DeadLetterTopic: k.DeadLetter, Group: group,
					FlushInterval: time.Duration(20+rng.IntN(100)) * time.Millisecond, CheckpointInterval: time.Duration(100+rng.IntN(400)) * time.Millisecond,
					MaxSkew: figures.DefaultMaxSkew, Drain: drain, Catalog: cat, Metrics: runner.NewMetrics(prometheus.NewRegistry()),
					Log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})),
				}
				r, err := runner.New(cfg, mem.Ports())
				if err != nil {
					t.Fatal(err)
				}
				return r
			}
			type running struct {
				stop func()
				done <-chan error
			}
			var live []running
			start := func() {
				rctx, stop := context.WithCancel(ctx)
				live = append(live, running{stop, runInBackground(rctx, replica(false))})
			}
			stopOne := func(i int) {
				live[i].stop()
				if err := <-live[i].done; err != nil {
					t.Fatalf("a replica stopped with %v", err)
				}
				live = append(live[:i], live[i+1:]...)
			}
			// starts and stops at random, one to three members at a time,
			// while the events are published and a little after
			steps := 0
			for until := time.Now().Add(2 * time.Second); time.Now().Before(until) || steps < 6; steps++ {
				switch {
				case len(live) == 0 || len(live) < 3 && rng.IntN(2) == 0:
					start()
				default:
					stopOne(rng.IntN(len(live)))
				}
				time.Sleep(time.Duration(100+rng.IntN(500)) * time.Millisecond)
			}
			for len(live) > 0 {
				stopOne(0)
			}
			<-published
			if err := replica(true).Run(ctx); err != nil {
				t.Fatalf("drain after %d starts and stops: %v", steps, err)
			}
			got := mem.Rows()
			var diffs []string
			for key, w := range want {
				if g, ok := got[key]; !ok || g != w {
					diffs = append(diffs, fmt.Sprintf("%s: %q, want %q", key, g, w))
				}
			}
			for key := range got {
				if _, ok := want[key]; !ok {
					diffs = append(diffs, fmt.Sprintf("%s: a row the reference does not have", key))
				}
			}
			sort.Strings(diffs)
			diffs = append(diffs, mem.Clashes()...)
			if mem.DeadLetterCount() > 0 {
				diffs = append(diffs, fmt.Sprintf("%d dead letters of valid events", mem.DeadLetterCount()))
			}
			must(t, diffs)
			t.Logf("%d starts and stops; %d rows equal the reference", steps, len(got))
		})
	}
}
