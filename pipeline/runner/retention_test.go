package runner_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/seatflow/seatflow/pipeline/event"
	"github.com/seatflow/seatflow/pipeline/runner"
	"github.com/seatflow/seatflow/testenv"
)

// Events that retention deleted before the pipeline read them cannot be
// had back: the pipeline says so, with the offsets lost, and reads on
// from the partition's first offset instead of stopping.
func TestEventsDeletedByRetention(t *testing.T) {
	k := testenv.StartKafka(t, testenv.KafkaOptions{Partitions: 1})
	chEnv := testenv.StartClickHouse(t)
	conn := chEnv.Open(t)
	events, cat := simulated(t, 2, 10)
	half := len(events) / 2
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	produce(t, k, events[:half])
	drain := func(log *bytes.Buffer) *runner.Metrics {
		t.Helper()
		var m *runner.Metrics
		r := testRunner(t, k, conn, chEnv.Database, "seatflow-retention", cat, func(c *runner.Config) {
			c.Drain, m = true, c.Metrics
			if log != nil {
				c.Log = slog.New(slog.NewTextHandler(&lockedWriter{w: log}, &slog.HandlerOptions{Level: slog.LevelWarn}))
			}
		})
		if err := r.Run(ctx); err != nil {
			t.Fatalf("run --drain: %v", err)
		}
		return m
	}
	drain(nil) // checkpoints the usage partition's end
	read := partitionEnd(t, k, k.Usage, 0)

	produce(t, k, events[half:])
	const lost = 7
	deleteBefore(t, k, read+lost)
	var log bytes.Buffer
	m := drain(&log)

	want := fmt.Sprintf(`msg="events deleted by retention before they were read: figures miss them" partition=%s/0 from=%d to=%d`, k.Usage, read, read+lost)
	if !strings.Contains(log.String(), want) {
		t.Errorf("log:\n%s\nwant a line with %s", log.String(), want)
	}
	usage := 0
	for _, ev := range events[half:] {
		if ev.Kind == event.Usage {
			usage++
		}
	}
	if got := testutil.ToFloat64(m.Consumed.WithLabelValues(k.Usage, "usage")); got != float64(usage-lost) {
		t.Errorf("usage events consumed after the deletion: %v, want %d (%d published, %d deleted)", got, usage-lost, usage, lost)
	}
}

// deleteBefore deletes the usage partition's events before offset, as
// retention does. kafka-go has no DeleteRecords; franz-go's client sends
// it to the partition's leader.
func deleteBefore(t *testing.T, k *testenv.Kafka, offset int64) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.Brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	part := kmsg.NewDeleteRecordsRequestTopicPartition()
	part.Partition, part.Offset = 0, offset
	topic := kmsg.NewDeleteRecordsRequestTopic()
	topic.Topic, topic.Partitions = k.Usage, []kmsg.DeleteRecordsRequestTopicPartition{part}
	req := kmsg.NewPtrDeleteRecordsRequest()
	req.Topics, req.TimeoutMillis = []kmsg.DeleteRecordsRequestTopic{topic}, 10_000
	resp, err := req.RequestWith(context.Background(), cl)
	if err != nil {
		t.Fatal(err)
	}
	for _, rt := range resp.Topics {
		for _, p := range rt.Partitions {
			if p.ErrorCode != 0 || p.LowWatermark != offset {
				t.Fatalf("delete records before %d: error %d, low watermark %d", offset, p.ErrorCode, p.LowWatermark)
			}
		}
	}
}

// lockedWriter lets the runner's goroutines log into one buffer.
type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// TestStartFromNothingRefused: the checkpoints of a group that has
// committed offsets are lost (truncated); the next run refuses to start
// its units from nothing and says what to do, and with AllowReset reads
// the topics again from their beginning, with rows equal to the
// reference.
func TestStartFromNothingRefused(t *testing.T) {
	e := newDrainEnv(t, testenv.KafkaOptions{Partitions: 2})
	produce(t, e.k, e.events)
	allowReset := func(allow bool) func(*runner.Config) { return func(c *runner.Config) { c.AllowReset = allow } }
	if _, err := e.drain("reset-test", allowReset(false)); err != nil {
		t.Fatalf("first drain: %v", err)
	}
	if err := e.conn.Exec(e.ctx, "TRUNCATE TABLE "+e.ch.Database+".unit_checkpoints"); err != nil {
		t.Fatal(err)
	}
	_, err := e.drain("reset-test", allowReset(false))
	if !errors.Is(err, runner.ErrResetRefused) || !strings.Contains(err.Error(), "allow the reset") || !strings.Contains(err.Error(), "committed offset") {
		t.Fatalf("a drain without checkpoints but with committed offsets: %v; want ErrResetRefused naming the offsets and the reset", err)
	}
	if _, err := e.drain("reset-test", allowReset(true)); err != nil {
		t.Fatalf("drain with AllowReset: %v", err)
	}
	e.check(e.events)
}

// TestCheckpointFallback: every unit's newest checkpoint is unreadable (a
// newer row of garbage, as a torn write or a bad restore would leave); the
// next run restores each unit from the checkpoint before it, counts the
// fallback, and its rows equal the reference.
func TestCheckpointFallback(t *testing.T) {
	e := newDrainEnv(t, testenv.KafkaOptions{Partitions: 2})
	half := len(e.events) / 2
	drainOnce := func() *runner.Metrics {
		t.Helper()
		m, err := e.drain("fallback-test", nil)
		if err != nil {
			t.Fatalf("drain: %v", err)
		}
		return m
	}
	produce(t, e.k, e.events[:half])
	drainOnce()
	for p := range e.k.Partitions {
		q := fmt.Sprintf("INSERT INTO %[1]s.unit_checkpoints (consumer_group, unit, version, created_at, offsets, state) "+
			"SELECT 'fallback-test', %[2]d, max(version) + 1, now(), map(), 'not zstd' FROM %[1]s.unit_checkpoints WHERE unit = %[2]d", e.ch.Database, p)
		if err := e.conn.Exec(e.ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	produce(t, e.k, e.events[half:])
	if got := testutil.ToFloat64(drainOnce().CheckpointFallbacks); got != float64(e.k.Partitions) {
		t.Errorf("seatflow_checkpoint_fallbacks_total = %v, want %d (one per unit)", got, e.k.Partitions)
	}
	// the run's own checkpoints now outrank the unreadable ones: no more
	// fallbacks
	if got := testutil.ToFloat64(drainOnce().CheckpointFallbacks); got != 0 {
		t.Errorf("a run after the fallback fell back again %v times", got)
	}
	e.check(e.events)
}
