package runner_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/seatflow/seatflow/pipeline/event"
	"github.com/seatflow/seatflow/pipeline/fetch"
	"github.com/seatflow/seatflow/pipeline/figures"
	"github.com/seatflow/seatflow/pipeline/runner"
	"github.com/seatflow/seatflow/sinks/deadletter"
	"github.com/seatflow/seatflow/testenv"
)

// hostile is an input the pipeline must turn into a dead letter.
type hostile struct {
	name   string
	usage  bool // else the license topic
	key    string
	value  []byte
	reason event.Reason
}

func hostileInputs() []hostile {
	usage := func(tenant, user, at string) []byte {
		return fmt.Appendf(nil, `{"type":"usage","v":1,"event_id":"h-%s","occurred_at":"%s","tenant_id":"%s","user_id":"%s","workload":"teams"}`, tenant, at, tenant, user)
	}
	return []hostile{
		{"700 KB event of an unknown type", true, "tenant-0001",
			fmt.Appendf(nil, `{"type":"login","v":1,"pad":"%s"}`, strings.Repeat("x", 700_000)), event.UnknownType},
		{"year 9999 read first", true, "bad-9999", usage("bad-9999", "u", "9999-12-31T23:59:59Z"), event.BadValue},
		{"year 2611", true, "bad-2611", usage("bad-2611", "u", "2611-03-01T00:00:00Z"), event.BadValue},
		{"year 1441", true, "bad-1441", usage("bad-1441", "u", "1441-06-01T00:00:00Z"), event.BadValue},
		{"key and tenant_id differ", true, "tenant-0002", usage("bad-key", "u", "2026-09-10T10:00:00Z"), event.KeyMismatch},
		{"invalid UTF-8, scanner", true, "bad-utf8", usage("bad-utf8", "u\xff\xfe", "2026-09-10T10:00:00Z"), event.BadValue},
		{"invalid UTF-8, parser", true, "bad-utf8-parser",
			bytes.Replace(usage("bad-utf8-parser", "u\xc3", "2026-09-10T10:00:00Z"), []byte("{"), []byte(`{"x":"\"",`), 1), event.BadValue},
		{"control character", true, "bad-ctl", usage("bad-ctl", `u\u0001`, "2026-09-10T10:00:00Z"), event.BadValue},
		{"quantity at the int64 limit", false, "bad-qty",
			[]byte(`{"type":"subscription","v":1,"event_id":"h-q","occurred_at":"2026-09-10T10:00:00Z","tenant_id":"bad-qty","subscription_id":"s","sku":"O365_E3","quantity":9223372036854775807,"status":"active"}`),
			event.BadValue},
	}
}

// TestHostileInputs sends hostile inputs through the whole pipeline on
// the broker: each ends as a dead letter with its reason (the 700 KB one
// cut to fit a dead-letter topic of 200 KB), a compression bomb as one
// dead letter, a tenant's users beyond its limit as limit_exceeded; the
// drain ends, no row names a bad tenant or a day outside 1970–2105, and
// the good events around them give the reference model's rows.
func TestHostileInputs(t *testing.T) {
	k := testenv.StartKafka(t, testenv.KafkaOptions{Partitions: 3})
	k.SetTopicConfig(t, k.DeadLetter, "max.message.bytes", "200000")
	chEnv := testenv.StartClickHouse(t)
	conn := chEnv.Open(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// the hostile inputs come first in their partitions: none may move a
	// watermark the good events then fall behind
	inputs := hostileInputs()
	for _, h := range inputs {
		topic := k.License
		if h.usage {
			topic = k.Usage
		}
		w := &kafka.Writer{Addr: kafka.TCP(k.Brokers...), Topic: topic, Balancer: &kafka.Murmur2Balancer{}, RequiredAcks: kafka.RequireAll, BatchBytes: 2 << 20}
		if err := w.WriteMessages(ctx, kafka.Message{Key: []byte(h.key), Value: h.value}); err != nil {
			t.Fatalf("%s: %v", h.name, err)
		}
		w.Close()
	}
	// a compression bomb: 80 MB of zeros in a batch of a few kilobytes,
	// alone in its batch
	bomb := &kafka.Writer{Addr: kafka.TCP(k.Brokers...), Topic: k.Usage, Balancer: &kafka.Murmur2Balancer{}, RequiredAcks: kafka.RequireAll,
		Compression: kafka.Zstd, BatchBytes: 100 << 20}
	if err := bomb.WriteMessages(ctx, kafka.Message{Key: []byte("bad-bomb"), Value: make([]byte, fetch.MaxUncompressed+16<<20)}); err != nil {
		t.Fatalf("compression bomb: %v", err)
	}
	bomb.Close()

	events, cat := simulated(t, 6, 25)
	produce(t, k, events)
	// then a tenant with more users than its limit
	const userLimit = 80
	var flood []event.Event
	for u := range userLimit + 5 {
		flood = append(flood, event.Event{Kind: event.Usage, EventID: fmt.Sprint("flood-", u), TenantID: "flood", UserID: fmt.Sprint("flood-user-", u),
			Workload: "exchange", OccurredAt: time.Date(2026, 10, 11, 9, 0, u, 0, time.UTC).UnixNano()})
	}
	produce(t, k, flood)

	var metrics *runner.Metrics
	r := testRunner(t, k, conn, chEnv.Database, "seatflow-hostile", cat, func(c *runner.Config) {
		c.FlushInterval, c.Drain, c.Limits = 200*time.Millisecond, true, figures.Limits{Users: userLimit}
		metrics = c.Metrics
	})
	if err := r.Run(ctx); err != nil {
		t.Fatalf("run --drain: %v", err)
	}

	good := append(append([]event.Event(nil), events...), flood[:userLimit]...)
	must(t, compare(t, conn, chEnv.Database, referenceOf(k, good, cat)))

	for _, table := range []string{"deployment_daily", "usage_daily", "workload_daily", "user_activity"} {
		var bad, outside uint64
		q := fmt.Sprintf("SELECT countIf(tenant_id LIKE 'bad-%%'), countIf(date < '1970-01-01' OR date > '2105-12-31') FROM %s.%s", chEnv.Database, table)
		if err := conn.QueryRow(ctx, q).Scan(&bad, &outside); err != nil {
			t.Fatal(err)
		}
		if bad > 0 || outside > 0 {
			t.Errorf("%s: %d rows of bad tenants, %d rows dated outside 1970–2105", table, bad, outside)
		}
	}

	letters := allDeadLetters(t, k)
	for _, h := range inputs {
		t.Run(h.name, func(t *testing.T) {
			sum := sha256.Sum256(h.value)
			for _, m := range letters {
				hd := headerMap(m)
				whole := bytes.Equal(m.Value, h.value)
				cut := hd[deadletter.HeaderOriginalSHA256] == hex.EncodeToString(sum[:]) && bytes.HasPrefix(h.value, m.Value)
				if whole || cut {
					if hd[deadletter.HeaderReason] != string(h.reason) {
						t.Errorf("reason %q, want %s", hd[deadletter.HeaderReason], h.reason)
					}
					return
				}
			}
			t.Errorf("no dead letter")
		})
	}
	counts := map[string]int{}
	for _, m := range letters {
		counts[headerMap(m)[deadletter.HeaderReason]]++
	}
	if counts[string(event.BatchTooLarge)] != 1 || counts[string(event.LimitExceeded)] != 5 {
		t.Errorf("dead letters by reason %v: want 1 batch_too_large and 5 limit_exceeded", counts)
	}
	if got := testutil.ToFloat64(metrics.DeadLetters.WithLabelValues("truncated")); got != 1 {
		t.Errorf("seatflow_dead_letters_total{outcome=\"truncated\"} = %v, want 1", got)
	}
	if got := testutil.ToFloat64(metrics.Rejected.WithLabelValues(string(event.LimitExceeded))); got != 5 {
		t.Errorf("seatflow_events_rejected_total{reason=\"limit_exceeded\"} = %v, want 5", got)
	}
}

// allDeadLetters reads the whole dead-letter topic.
func allDeadLetters(t *testing.T, k *testenv.Kafka) []kafka.Message {
	t.Helper()
	var out []kafka.Message
	for p := 0; p < k.Partitions; p++ {
		rd := kafka.NewReader(kafka.ReaderConfig{Brokers: k.Brokers, Topic: k.DeadLetter, Partition: p, MaxWait: 100 * time.Millisecond, MaxBytes: 4 << 20})
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			m, err := rd.ReadMessage(ctx)
			cancel()
			if err != nil {
				break
			}
			out = append(out, m)
		}
		rd.Close()
	}
	return out
}

func headerMap(m kafka.Message) map[string]string {
	h := map[string]string{}
	for _, x := range m.Headers {
		h[x.Key] = string(x.Value)
	}
	return h
}

// TestAbortedTransactionCountsNowhere: a transactional publisher
// (franz-go's client) aborts a transaction of events for a tenant of its
// own and for a simulated one; nothing of it reaches a row or a dead
// letter, and the rows are the reference's over the committed events.
func TestAbortedTransactionCountsNowhere(t *testing.T) {
	e := newDrainEnv(t, testenv.KafkaOptions{Partitions: 2})
	k, ctx, events := e.k, e.ctx, e.events
	produce(t, k, events)

	txn, err := kgo.NewClient(kgo.SeedBrokers(k.Brokers...), kgo.TransactionalID("seatflow-aborted"),
		kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil))) // Kafka's default: murmur2 of the key
	if err != nil {
		t.Fatal(err)
	}
	defer txn.Close()
	if err := txn.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	last := events[len(events)-1]
	for i, tenant := range []string{"aborted-tenant", last.TenantID} {
		ev := event.Event{Kind: event.Usage, EventID: fmt.Sprint("aborted-", i), TenantID: tenant, UserID: "aborted-user",
			Workload: "exchange", OccurredAt: last.OccurredAt}
		rec := &kgo.Record{Topic: k.Usage, Key: []byte(tenant), Value: ev.AppendJSON(nil)}
		if err := txn.ProduceSync(ctx, rec).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	if err := txn.EndTransaction(ctx, kgo.TryAbort); err != nil {
		t.Fatal(err)
	}

	if _, err := e.drain("aborted-test", nil); err != nil {
		t.Fatalf("drain: %v", err)
	}
	e.check(events)
	var n uint64
	if err := e.conn.QueryRow(ctx, "SELECT count() FROM "+e.ch.Database+".user_activity WHERE user_id = 'aborted-user'").Scan(&n); err != nil || n != 0 {
		t.Errorf("%d user_activity rows of the aborted events (%v)", n, err)
	}
	if letters := allDeadLetters(t, k); len(letters) != 0 {
		t.Errorf("%d dead letters, want none", len(letters))
	}
}
