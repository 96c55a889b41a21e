package runner_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/segmentio/kafka-go"

	"github.com/seatflow/seatflow/pipeline/event"
	"github.com/seatflow/seatflow/pipeline/runner"
	"github.com/seatflow/seatflow/sinks/deadletter"
	"github.com/seatflow/seatflow/testenv"
)

// TestCorruptBatchWaitsForAnOperator: a record batch whose CRC fails on
// the broker's disk stops its partition's reader alone; /readyz and
// seatflow_corrupt_batches name it while the other unit reads to its end.
// SkipUnreadable (seatflow skip-batch) refuses a range that reads fine,
// then sends the batch to the dead-letter topic as stored, and the drain
// ends with the reference model's rows over every other event.
func TestCorruptBatchWaitsForAnOperator(t *testing.T) {
	k := testenv.StartKafka(t, testenv.KafkaOptions{Partitions: 2, OnDisk: true})
	chEnv := testenv.StartClickHouse(t)
	conn := chEnv.Open(t)
	events, cat := simulated(t, 6, 25)
	produceInBatches(t, k, events, 100)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	end := partitionEnd(t, k, k.Usage, 0)
	first, last, raw := k.CorruptBatch(t, k.Usage, 0, end/2)
	lost := eventIDsAt(t, k, k.Usage, 0, first, last)
	t.Logf("usage/0: batch at %d-%d of %d corrupted (%d events)", first, last, end, len(lost))

	var cfg runner.Config
	r := testRunner(t, k, conn, chEnv.Database, "seatflow-test", cat, func(c *runner.Config) {
		c.Drain = true
		cfg = *c
	})
	done := runInBackground(ctx, r)
	stuck := fmt.Sprintf("%s/0 is stuck at a record batch that cannot be read (offsets %d-%d", k.Usage, first, last)
	waitUntil(t, ctx, "stuck reader in /readyz", func() bool { return strings.Contains(strings.Join(r.NotReady(), "\n"), stuck) })
	if got := testutil.ToFloat64(cfg.Metrics.CorruptBatches.WithLabelValues(k.Usage, "0")); got != 1 {
		t.Errorf("seatflow_corrupt_batches{partition=\"0\"} = %v, want 1", got)
	}
	waitUntil(t, ctx, "unit 1 read to its end", func() bool {
		return testutil.ToFloat64(cfg.Metrics.Lag.WithLabelValues(k.Usage, "1")) == 0 &&
			testutil.ToFloat64(cfg.Metrics.Lag.WithLabelValues(k.License, "1")) == 0 &&
			testutil.ToFloat64(cfg.Metrics.Lag.WithLabelValues(k.Usage, "0")) > 0
	})

	if _, err := runner.SkipUnreadable(ctx, cfg, conn, k.Usage, 0, 0, first); err == nil || !strings.Contains(err.Error(), "reads fine at offset 0") {
		t.Errorf("skip from offset 0: %v, want a refusal: it reads fine", err)
	}
	skip, err := runner.SkipUnreadable(ctx, cfg, conn, k.Usage, 0, first, -1)
	if err != nil || skip.From != first || skip.To != last {
		t.Fatalf("skip: %+v, %v; want offsets %d-%d", skip, err, first, last)
	}
	if err := <-done; err != nil {
		t.Fatalf("run --drain: %v", err)
	}
	if why := r.NotReady(); len(why) > 0 || testutil.ToFloat64(cfg.Metrics.CorruptBatches.WithLabelValues(k.Usage, "0")) != 0 {
		t.Errorf("after the skip: not ready %q, seatflow_corrupt_batches %v", why, testutil.ToFloat64(cfg.Metrics.CorruptBatches.WithLabelValues(k.Usage, "0")))
	}

	var kept []event.Event
	for _, ev := range events {
		if !lost[ev.EventID] {
			kept = append(kept, ev)
		}
	}
	must(t, compare(t, conn, chEnv.Database, referenceOf(k, kept, cat)))
	dl, ok := deadLetters(t, k)[string(event.CorruptBatch)]
	if h := headerMap(dl); !ok || !bytes.Equal(dl.Value, raw) || h[deadletter.HeaderOffset] != strconv.FormatInt(first, 10) || h[deadletter.HeaderPartition] != "0" {
		t.Errorf("corrupt_batch dead letter: found %v, %d bytes (want the batch's %d), headers %v", ok, len(dl.Value), len(raw), h)
	}
}

// produceInBatches publishes events in record batches of at most n.
func produceInBatches(t *testing.T, k *testenv.Kafka, events []event.Event, n int) {
	t.Helper()
	for topic, kind := range map[string]func(event.Kind) bool{k.License: func(x event.Kind) bool { return x != event.Usage }, k.Usage: func(x event.Kind) bool { return x == event.Usage }} {
		w := &kafka.Writer{Addr: kafka.TCP(k.Brokers...), Topic: topic, Balancer: &kafka.Murmur2Balancer{}, BatchTimeout: time.Millisecond, BatchSize: n, RequiredAcks: kafka.RequireAll}
		var msgs []kafka.Message
		for i := range events {
			if kind(events[i].Kind) {
				msgs = append(msgs, kafka.Message{Key: []byte(events[i].TenantID), Value: events[i].AppendJSON(nil)})
			}
		}
		if err := w.WriteMessages(context.Background(), msgs...); err != nil {
			t.Fatal(err)
		}
		w.Close()
	}
}

func partitionEnd(t *testing.T, k *testenv.Kafka, topic string, partition int) int64 {
	t.Helper()
	c, err := kafka.DialLeader(context.Background(), "tcp", k.Brokers[0], topic, partition)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	end, err := c.ReadLastOffset()
	if err != nil {
		t.Fatal(err)
	}
	return end
}

// eventIDsAt reads the event IDs at offsets first to last.
func eventIDsAt(t *testing.T, k *testenv.Kafka, topic string, partition int, first, last int64) map[string]bool {
	t.Helper()
	rd := kafka.NewReader(kafka.ReaderConfig{Brokers: k.Brokers, Topic: topic, Partition: partition, MaxWait: 100 * time.Millisecond})
	defer rd.Close()
	if err := rd.SetOffset(first); err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for off := first; off <= last; off++ {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		m, err := rd.ReadMessage(ctx)
		cancel()
		var ev struct {
			EventID string `json:"event_id"`
		}
		if err != nil || json.Unmarshal(m.Value, &ev) != nil {
			t.Fatalf("read %s/%d at %d: %v", topic, partition, off, err)
		}
		ids[ev.EventID] = true
	}
	return ids
}
