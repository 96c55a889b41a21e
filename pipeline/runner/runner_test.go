package runner_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/segmentio/kafka-go"

	"github.com/seatflow/seatflow/pipeline/catalog"
	"github.com/seatflow/seatflow/pipeline/event"
	"github.com/seatflow/seatflow/pipeline/figures"
	"github.com/seatflow/seatflow/pipeline/runner"
	"github.com/seatflow/seatflow/sinks/deadletter"
	"github.com/seatflow/seatflow/testenv"
	"github.com/seatflow/seatflow/testenv/reference"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// badMessages are one per rejection reason the decoder gives.
var badMessages = map[string]string{
	"malformed_json":   `{"type":"usage",`,
	"not_an_object":    `[1,2,3]`,
	"missing_field":    `{"type":"usage","v":1,"event_id":"bad-1","occurred_at":"2026-09-10T10:00:00Z","tenant_id":"tenant-0001","workload":"teams"}`,
	"bad_value":        `{"type":"subscription","v":1,"event_id":"bad-2","occurred_at":"2026-09-10T10:00:00Z","tenant_id":"tenant-0001","subscription_id":"s","sku":"O365_E3","quantity":-4,"status":"active"}`,
	"unknown_type":     `{"type":"login","v":1,"event_id":"bad-3","occurred_at":"2026-09-10T10:00:00Z","tenant_id":"tenant-0001"}`,
	"unknown_version":  `{"type":"usage","v":9,"event_id":"bad-4","occurred_at":"2026-09-10T10:00:00Z","tenant_id":"tenant-0001","user_id":"u","workload":"teams"}`,
	"future_timestamp": `{"type":"usage","v":1,"event_id":"bad-5","occurred_at":"2099-01-01T00:00:00Z","tenant_id":"tenant-0001","user_id":"u","workload":"teams"}`,
	// years before everything else: outside any restatement horizon
	"too_late": `{"type":"usage","v":1,"event_id":"bad-6","occurred_at":"2020-01-01T00:00:00Z","tenant_id":"tenant-0001","user_id":"u","workload":"teams"}`,
}

func TestDrainEqualsReference(t *testing.T) {
	k := testenv.StartKafka(t, testenv.KafkaOptions{Partitions: 3})
	chEnv := testenv.StartClickHouse(t)
	conn := chEnv.Open(t)
	events, cat := simulated(t, 6, 25)
	produce(t, k, events)
	w := &kafka.Writer{Addr: kafka.TCP(k.Brokers...), Topic: k.Usage, Balancer: &kafka.Murmur2Balancer{}, BatchTimeout: time.Millisecond, RequiredAcks: kafka.RequireAll}
	for _, v := range badMessages {
		if err := w.WriteMessages(context.Background(), kafka.Message{Key: []byte("tenant-0001"), Value: []byte(v)}); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()

	var metrics *runner.Metrics
	r := testRunner(t, k, conn, chEnv.Database, "seatflow-test", cat, func(c *runner.Config) {
		c.FlushInterval, c.Drain = 200*time.Millisecond, true
		metrics = c.Metrics
	})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	start := time.Now()
	if err := r.Run(ctx); err != nil {
		t.Fatalf("run --drain: %v", err)
	}
	t.Logf("%d events drained into ClickHouse in %s", len(events), time.Since(start).Round(time.Millisecond))

	must(t, compare(t, conn, chEnv.Database, referenceOf(k, events, cat)))
	checkDeadLetters(t, k)
	// every event counted once, by topic and type, with the too_late one:
	// it decodes, and the engine refuses it
	want := map[[2]string]int{{k.Usage, "usage"}: 1}
	for _, ev := range events {
		want[[2]string{topicOf(k, ev.Kind), ev.Kind.String()}]++
	}
	for key, n := range want {
		if got := testutil.ToFloat64(metrics.Consumed.WithLabelValues(key[0], key[1])); got != float64(n) {
			t.Errorf("seatflow_events_consumed_total{topic=%q,type=%q} = %v, want %d", key[0], key[1], got, n)
		}
	}

	// the same topics again, without the per-user rows: every other
	// table is the same, and user_activity stays empty
	db := chEnv.Database + "_no_user_activity"
	r = testRunner(t, k, conn, db, "seatflow-test-no-user-activity", cat, func(c *runner.Config) {
		c.FlushInterval, c.Drain, c.NoUserActivity = 200*time.Millisecond, true, true
	})
	if err := r.Run(ctx); err != nil {
		t.Fatalf("run --drain --no-user-activity: %v", err)
	}
	ref := referenceOf(k, events, cat)
	ref.Activity = nil
	must(t, compare(t, conn, db, ref))
}

// testRunner makes a runner of k's topics writing into db: 100 ms
// flushes, 1 s checkpoints, warnings logged; adjust, if set, changes what
// the test needs otherwise.
func testRunner(t *testing.T, k *testenv.Kafka, conn driver.Conn, db, group string, cat *catalog.Catalog, adjust func(*runner.Config)) *runner.Runner {
	t.Helper()
	r, err := tryRunner(t, k, conn, db, group, cat, adjust)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// tryRunner is testRunner for a runner that may not start: its ports
// (the migrations, the dead-letter topic) may fail.
func tryRunner(t *testing.T, k *testenv.Kafka, conn driver.Conn, db, group string, cat *catalog.Catalog, adjust func(*runner.Config)) (*runner.Runner, error) {
	cfg := runner.Config{
		Brokers: k.Brokers, LicenseTopic: k.License, UsageTopic: k.Usage, DeadLetterTopic: k.DeadLetter,
		Group: group, Database: db, FlushInterval: 100 * time.Millisecond, CheckpointInterval: time.Second, MaxSkew: figures.DefaultMaxSkew,
		Catalog: cat, Log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		Metrics: runner.NewMetrics(prometheus.NewRegistry()),
	}
	if adjust != nil {
		adjust(&cfg)
	}
	ports, closePorts, err := runner.ClickHousePorts(context.Background(), cfg, conn)
	if err != nil {
		return nil, err
	}
	t.Cleanup(closePorts)
	return runner.New(cfg, ports)
}

// topicOf is the topic events of a kind are published to (SPEC §2).
func topicOf(k *testenv.Kafka, kind event.Kind) string {
	if kind == event.Usage {
		return k.Usage
	}
	return k.License
}

func produce(t *testing.T, k *testenv.Kafka, events []event.Event) {
	t.Helper()
	byTopic := map[string][]kafka.Message{}
	for i := range events {
		ev := &events[i]
		topic := topicOf(k, ev.Kind)
		byTopic[topic] = append(byTopic[topic], kafka.Message{Key: []byte(ev.TenantID), Value: ev.AppendJSON(nil)})
	}
	for topic, msgs := range byTopic {
		w := &kafka.Writer{Addr: kafka.TCP(k.Brokers...), Topic: topic, Balancer: &kafka.Murmur2Balancer{}, BatchTimeout: time.Millisecond, BatchSize: 5000,
			RequiredAcks: kafka.RequireAll, Transport: &kafka.Transport{TLS: k.TLS, SASL: k.SASL}}
		if err := w.WriteMessages(context.Background(), msgs...); err != nil {
			t.Fatal(err)
		}
		w.Close()
	}
}

// deadLetters reads the dead-letter topic: the last message per reason.
func deadLetters(t *testing.T, k *testenv.Kafka) map[string]kafka.Message {
	t.Helper()
	got := map[string]kafka.Message{}
	for _, m := range allDeadLetters(t, k) {
		got[headerMap(m)[deadletter.HeaderReason]] = m
	}
	return got
}

func checkDeadLetters(t *testing.T, k *testenv.Kafka) {
	t.Helper()
	got := deadLetters(t, k)
	for reason, value := range badMessages {
		m, ok := got[reason]
		if !ok {
			t.Errorf("no dead letter with reason %s", reason)
			continue
		}
		headers := map[string]string{}
		for _, h := range m.Headers {
			headers[h.Key] = string(h.Value)
		}
		if string(m.Key) != "tenant-0001" || string(m.Value) != value || headers[deadletter.HeaderTopic] != k.Usage || headers[deadletter.HeaderOffset] == "" ||
			headers[deadletter.HeaderPartition] == "" || headers[deadletter.HeaderDetail] == "" {
			t.Errorf("dead letter %s: key %q value %q headers %v", reason, m.Key, m.Value, headers)
		}
	}
}

func compare(t *testing.T, conn driver.Conn, db string, ref reference.Result) []string {
	ctx := context.Background()
	var diffs []string
	pct := func(p *float64) string {
		if p == nil {
			return "NULL"
		}
		return fmt.Sprintf("%.4f", *p)
	}
	rows, err := conn.Query(ctx, "SELECT tenant_id, sku, date, product, sold, trial, assigned, qualified, deployment_pct FROM "+db+".deployment_daily FINAL")
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for rows.Next() {
		var (
			tenant, sku, product           string
			d                              time.Time
			sold, trial, assigned, qualify uint64
			p                              *float64
		)
		if err := rows.Scan(&tenant, &sku, &d, &product, &sold, &trial, &assigned, &qualify, &p); err != nil {
			t.Fatal(err)
		}
		seen++
		k := reference.Key{TenantID: tenant, SKU: sku, Date: event.DayOf(d.UnixNano())}
		want, ok := ref.Deployment[k]
		got := fmt.Sprintf("%s %d %d %d %d %s", product, sold, trial, assigned, qualify, pct(p))
		w := fmt.Sprintf("%s %d %d %d %d %s", want.Product, want.Sold, want.Trial, want.Assigned, want.Qualified, pct(want.DeploymentPct))
		if !ok || got != w {
			diffs = append(diffs, fmt.Sprintf("deployment %v: %s, want %s (in reference: %v)", k, got, w, ok))
		}
	}
	rows.Close()
	if seen != len(ref.Deployment) {
		diffs = append(diffs, fmt.Sprintf("deployment_daily: %d rows, reference %d", seen, len(ref.Deployment)))
	}
	rows, err = conn.Query(ctx, "SELECT tenant_id, sku, workload, date, active_users, qualified, usage_pct FROM "+db+".usage_daily FINAL")
	if err != nil {
		t.Fatal(err)
	}
	seen = 0
	for rows.Next() {
		var (
			tenant, sku, wl string
			d               time.Time
			active, qual    uint64
			p               *float64
		)
		if err := rows.Scan(&tenant, &sku, &wl, &d, &active, &qual, &p); err != nil {
			t.Fatal(err)
		}
		seen++
		k := reference.Key{TenantID: tenant, SKU: sku, Workload: wl, Date: event.DayOf(d.UnixNano())}
		want, ok := ref.Usage[k]
		if got, w := fmt.Sprintf("%d %d %s", active, qual, pct(p)), fmt.Sprintf("%d %d %s", want.ActiveUsers, want.Qualified, pct(want.UsagePct)); !ok || got != w {
			diffs = append(diffs, fmt.Sprintf("usage %v: %s, want %s (in reference: %v)", k, got, w, ok))
		}
	}
	rows.Close()
	if seen != len(ref.Usage) {
		diffs = append(diffs, fmt.Sprintf("usage_daily: %d rows, reference %d", seen, len(ref.Usage)))
	}
	rows, err = conn.Query(ctx, "SELECT tenant_id, workload, date, active_users FROM "+db+".workload_daily FINAL")
	if err != nil {
		t.Fatal(err)
	}
	seen = 0
	for rows.Next() {
		var (
			tenant, wl string
			d          time.Time
			active     uint64
		)
		if err := rows.Scan(&tenant, &wl, &d, &active); err != nil {
			t.Fatal(err)
		}
		seen++
		k := reference.Key{TenantID: tenant, Workload: wl, Date: event.DayOf(d.UnixNano())}
		if want, ok := ref.Workload[k]; !ok || int64(active) != want {
			diffs = append(diffs, fmt.Sprintf("workload %v: %d, want %d (in reference: %v)", k, active, want, ok))
		}
	}
	rows.Close()
	if seen != len(ref.Workload) {
		diffs = append(diffs, fmt.Sprintf("workload_daily: %d rows, reference %d", seen, len(ref.Workload)))
	}
	rows, err = conn.Query(ctx, "SELECT tenant_id, subscription_id, sku, partner_id, status, trial, quantity, occurred_at FROM "+db+".subscriptions FINAL")
	if err != nil {
		t.Fatal(err)
	}
	seen = 0
	for rows.Next() {
		var (
			tenant, id, sku, partner, status string
			trial                            uint8
			qty                              uint64
			at                               time.Time
		)
		if err := rows.Scan(&tenant, &id, &sku, &partner, &status, &trial, &qty, &at); err != nil {
			t.Fatal(err)
		}
		seen++
		want, ok := ref.Subscriptions[[2]string{tenant, id}]
		got := fmt.Sprintf("%s %s %s %v %d %d", sku, partner, status, trial == 1, qty, at.UnixNano())
		w := fmt.Sprintf("%s %s %s %v %d %d", want.SKU, want.PartnerID, want.Status, want.Trial, want.Quantity, want.OccurredAt)
		if !ok || got != w {
			diffs = append(diffs, fmt.Sprintf("subscription %s/%s: %s, want %s (in reference: %v)", tenant, id, got, w, ok))
		}
	}
	rows.Close()
	if seen != len(ref.Subscriptions) {
		diffs = append(diffs, fmt.Sprintf("subscriptions: %d rows, reference %d", seen, len(ref.Subscriptions)))
	}
	rows, err = conn.Query(ctx, "SELECT tenant_id, user_id, workload, date FROM "+db+".user_activity FINAL")
	if err != nil {
		t.Fatal(err)
	}
	seen = 0
	for rows.Next() {
		var a reference.Activity
		var d time.Time
		if err := rows.Scan(&a.TenantID, &a.UserID, &a.Workload, &d); err != nil {
			t.Fatal(err)
		}
		seen++
		if a.Date = event.DayOf(d.UnixNano()); !ref.Activity[a] {
			diffs = append(diffs, fmt.Sprintf("user_activity %+v: not in the reference", a))
		}
	}
	rows.Close()
	if seen != len(ref.Activity) {
		diffs = append(diffs, fmt.Sprintf("user_activity: %d rows, reference %d", seen, len(ref.Activity)))
	}
	sort.Strings(diffs)
	return diffs
}

func must(t *testing.T, diffs []string) {
	t.Helper()
	if len(diffs) > 0 {
		if len(diffs) > 15 {
			diffs = append(diffs[:15], fmt.Sprintf("... and %d more", len(diffs)-15))
		}
		t.Fatal("\n" + strings.Join(diffs, "\n"))
	}
}

// referenceOf is the reference model's rows for events published to k's
// topics: each tenant's rows run up to the newest day of its unit.
func referenceOf(k *testenv.Kafka, events []event.Event, cat *catalog.Catalog) reference.Result {
	parts := make([]int, k.Partitions)
	for i := range parts {
		parts[i] = i
	}
	var balancer kafka.Murmur2Balancer
	return reference.ComputeUnits(events, cat, func(tenant string) int {
		return balancer.Balance(kafka.Message{Key: []byte(tenant)}, parts...)
	})
}

// TestDrainOverTLS: the embedded broker listens with TLS only; the
// pipeline's every connection (group, partition readers, dead letters,
// offsets) goes over TLS, and the rows equal the reference.
func TestDrainOverTLS(t *testing.T) {
	drainSecured(t, testenv.KafkaOptions{Partitions: 2, TLS: true})
}

// TestDrainOverSASL: the same with SASL/SCRAM-SHA-256 (and PLAIN) over
// TLS: every connection authenticates.
func TestDrainOverSASL(t *testing.T) {
	for _, mechanism := range []string{"SCRAM-SHA-256", "PLAIN"} {
		t.Run(mechanism, func(t *testing.T) {
			drainSecured(t, testenv.KafkaOptions{Partitions: 2, TLS: mechanism == "PLAIN", SASL: mechanism})
		})
	}
}

// drainSecured drains events from a broker secured as opts ask: a run
// without the security fails, one with it gives the reference's rows.
func drainSecured(t *testing.T, opts testenv.KafkaOptions) {
	e := newDrainEnv(t, opts)
	produce(t, e.k, e.events)
	short, cancelShort := context.WithTimeout(e.ctx, 20*time.Second)
	defer cancelShort()
	plain, err := tryRunner(t, e.k, e.conn, e.ch.Database, "secured-test-plain", e.cat, func(c *runner.Config) { c.Drain = true })
	if err == nil {
		err = plain.Run(short)
	}
	if err == nil {
		t.Fatal("a run without the broker's security reached it")
	}
	if _, err := e.drain("secured-test", func(c *runner.Config) { c.TLS, c.SASL = e.k.TLS, e.k.SASL }); err != nil {
		t.Fatalf("drain: %v", err)
	}
	e.check(e.events)
}

// drainEnv is a small drain test's world: a broker with fresh topics, a
// database, the simulated events of 4 tenants (not yet published), and a
// two-minute context.
type drainEnv struct {
	t      *testing.T
	ctx    context.Context
	k      *testenv.Kafka
	ch     *testenv.ClickHouse
	conn   driver.Conn
	events []event.Event
	cat    *catalog.Catalog
}

func newDrainEnv(t *testing.T, opts testenv.KafkaOptions) *drainEnv {
	e := &drainEnv{t: t, k: testenv.StartKafka(t, opts), ch: testenv.StartClickHouse(t)}
	e.conn = e.ch.Open(t)
	e.events, e.cat = simulated(t, 4, 10)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	e.ctx = ctx
	return e
}

// drain runs `run --drain` as group, with adjust's changes to the
// configuration, and returns the run's metrics and error.
func (e *drainEnv) drain(group string, adjust func(*runner.Config)) (*runner.Metrics, error) {
	var metrics *runner.Metrics
	r := testRunner(e.t, e.k, e.conn, e.ch.Database, group, e.cat, func(c *runner.Config) {
		c.Drain, metrics = true, c.Metrics
		if adjust != nil {
			adjust(c)
		}
	})
	return metrics, r.Run(e.ctx)
}

// check compares the tables with the reference model over events.
func (e *drainEnv) check(events []event.Event) {
	e.t.Helper()
	must(e.t, compare(e.t, e.conn, e.ch.Database, referenceOf(e.k, events, e.cat)))
}
