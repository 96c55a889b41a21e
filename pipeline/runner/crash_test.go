package runner_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/seatflow/seatflow/pipeline/catalog"
	"github.com/seatflow/seatflow/pipeline/event"
	"github.com/seatflow/seatflow/pipeline/simulate"
	"github.com/seatflow/seatflow/schemas"
	"github.com/seatflow/seatflow/testenv"
)

func simulated(t *testing.T, tenants, users int) ([]event.Event, *catalog.Catalog) {
	t.Helper()
	cat, err := catalog.Load(schemas.Catalog)
	if err != nil {
		t.Fatal(err)
	}
	var events []event.Event
	cfg := simulate.Config{Tenants: tenants, Users: users, Seed: 3,
		Start: time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC), End: time.Date(2026, 10, 12, 0, 0, 0, 0, time.UTC)}
	if err := simulate.Generate(cfg, cat, func(ev *event.Event) error { events = append(events, *ev); return nil }); err != nil {
		t.Fatal(err)
	}
	return events, cat
}

// drain runs `seatflow run --drain`, which must finish within two minutes.
func drain(t *testing.T, bin string, args []string) ([]byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		return out, fmt.Errorf("no end after 2 minutes: %w", err)
	}
	return out, err
}

func runArgs(k *testenv.Kafka, ch *testenv.ClickHouse, extra ...string) []string {
	dsn := ch.DSN
	if i := strings.LastIndex(dsn, "/"); i > len("http://") {
		dsn = dsn[:i] // the database is a flag of its own
	}
	return append([]string{"run",
		"--kafka.brokers", strings.Join(k.Brokers, ","), "--kafka.license-topic", k.License,
		"--kafka.usage-topic", k.Usage, "--kafka.dead-letter-topic", k.DeadLetter, "--kafka.group", "crash-test",
		"--clickhouse.dsn", dsn, "--clickhouse.database", ch.Database,
		"--flush-interval", "100ms", "--checkpoint-interval", "300ms", "--metrics.listen-address", "127.0.0.1:0"}, extra...)
}

// noDuplicates checks that FINAL has one row per key and that, without
// FINAL, every extra row has a version of its own.
func noDuplicates(t *testing.T, conn driver.Conn, db string) {
	t.Helper()
	keys := map[string]string{
		"deployment_daily": "tenant_id, sku, date", "usage_daily": "tenant_id, sku, workload, date",
		"workload_daily": "tenant_id, workload, date", "subscriptions": "tenant_id, subscription_id",
		"user_activity": "tenant_id, user_id, workload, date",
	}
	for table, key := range keys {
		var final, distinct, raw, versions uint64
		q := fmt.Sprintf("SELECT (SELECT count() FROM %[1]s.%[2]s FINAL), (SELECT count(DISTINCT %[3]s) FROM %[1]s.%[2]s), (SELECT count() FROM %[1]s.%[2]s), (SELECT count(DISTINCT %[3]s, version) FROM %[1]s.%[2]s)", db, table, key)
		if err := conn.QueryRow(context.Background(), q).Scan(&final, &distinct, &raw, &versions); err != nil {
			t.Fatal(err)
		}
		if final != distinct || raw != versions {
			t.Errorf("%s: %d rows under FINAL for %d keys; %d rows without FINAL for %d (key, version) pairs", table, final, distinct, raw, versions)
		}
	}
}

// TestKill9AndRestartEqualsReference kills `seatflow run` with SIGKILL
// mid-run, then drains with a new process: the rows equal the reference.
func TestKill9AndRestartEqualsReference(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := testenv.BuildSeatflow(t)
	k := testenv.StartKafka(t, testenv.KafkaOptions{Partitions: 3})
	chEnv := testenv.StartClickHouse(t)
	conn := chEnv.Open(t)
	events, cat := simulated(t, 25, 40)
	produce(t, k, events)

	var crashed int
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for round := 0; round < 3; round++ {
		// killed once it has read a share of the events (more each round:
		// later rounds restore the checkpoints of earlier ones), and never
		// after it has read them all, which would test nothing
		rp := startReplica(t, bin, fmt.Sprint("run ", round), runArgs(k, chEnv))
		share := float64(1 + round*len(events)/10)
		waitUntil(t, ctx, "events read", func() bool { return rp.gauge("seatflow_events_consumed_total") >= share })
		read := rp.gauge("seatflow_events_consumed_total")
		rp.cmd.Process.Kill() // SIGKILL: no flush, no goodbye
		rp.cmd.Wait()
		if read >= float64(len(events)) {
			t.Fatalf("run %d was killed after reading all %d events: not mid-run", round, len(events))
		}
		if out := rp.output(); strings.Contains(out, "level=ERROR") {
			t.Logf("run %d stderr: %s", round, out)
		}
		t.Logf("run %d killed after reading %.0f of %d events", round, read, len(events))
		crashed++
	}
	var checkpoints uint64
	conn.QueryRow(context.Background(), "SELECT count() FROM "+chEnv.Database+".unit_checkpoints").Scan(&checkpoints)
	t.Logf("killed %d runs; %d checkpoints written before the drain", crashed, checkpoints)

	out, err := drain(t, bin, runArgs(k, chEnv, "--drain"))
	if err != nil {
		t.Fatalf("run --drain after kill -9: %v\n%s", err, out)
	}
	if !regexp.MustCompile(`unit acquired.*checkpoint=[1-9]`).Match(out) && checkpoints > 0 {
		t.Errorf("the drain did not restore the checkpoint:\n%s", out)
	}
	for reason, m := range deadLetters(t, k) {
		var h []string
		for _, x := range m.Headers {
			h = append(h, x.Key+"="+string(x.Value))
		}
		t.Errorf("simulated events are all valid, yet a dead letter says %s: %s\n%s", reason, h, m.Value)
	}
	must(t, compare(t, conn, chEnv.Database, referenceOf(k, events, cat)))
	noDuplicates(t, conn, chEnv.Database)
}

// TestKcatProducedEvents has Debian's kcat (librdkafka) publish the events
// with Kafka's default partitioner; the drained rows equal the reference.
func TestKcatProducedEvents(t *testing.T) {
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("kcat is not installed; make test installs it")
		}
		t.Skip("kcat not installed")
	}
	bin := testenv.BuildSeatflow(t)
	k := testenv.StartKafka(t, testenv.KafkaOptions{Partitions: 3})
	chEnv := testenv.StartClickHouse(t)
	conn := chEnv.Open(t)
	events, cat := simulated(t, 5, 15)
	var lic, use bytes.Buffer
	for i := range events {
		buf := &lic
		if events[i].Kind == event.Usage {
			buf = &use
		}
		buf.WriteString(events[i].TenantID + "\t")
		buf.Write(events[i].AppendJSON(nil))
		buf.WriteByte('\n')
	}
	for topic, data := range map[string]*bytes.Buffer{k.License: &lic, k.Usage: &use} {
		cmd := exec.Command(kcat, "-b", k.Brokers[0], "-P", "-t", topic, "-K", "\t", "-X", "topic.partitioner=murmur2_random", "-z", "lz4")
		cmd.Stdin = data
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("kcat: %v\n%s", err, out)
		}
	}
	out, err := drain(t, bin, runArgs(k, chEnv, "--drain"))
	if err != nil {
		t.Fatalf("run --drain: %v\n%s", err, out)
	}
	must(t, compare(t, conn, chEnv.Database, referenceOf(k, events, cat)))
}
