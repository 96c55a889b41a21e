package clickhouse_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/seatflow/seatflow/pipeline/event"
	"github.com/seatflow/seatflow/pipeline/row"
	"github.com/seatflow/seatflow/sinks/clickhouse"
	"github.com/seatflow/seatflow/testenv"
)

var oct1 = event.DayOf(time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC).UnixNano())

func sampleRows(version uint64) row.Set {
	pct := func(p float64) *float64 { return &p }
	return row.Set{
		Deployment: []row.Deployment{
			{TenantID: "t-1", SKU: "O365_E3", Product: "Office 365", Date: oct1, Sold: 10, Assigned: 8, Qualified: 8, DeploymentPct: pct(80), Final: true, Version: version},
			{TenantID: "t-1", SKU: "D365_SALES", Product: "Dynamics 365", Date: oct1, Trial: 5, Version: version},
		},
		Usage: []row.Usage{
			{TenantID: "t-1", SKU: "O365_E3", Workload: "all", Date: oct1, ActiveUsers: 9, Qualified: 8, UsagePct: pct(112.5), Final: true, Version: version},
			{TenantID: "t-1", SKU: "D365_SALES", Workload: "all", Date: oct1, Version: version},
		},
		Workload:      []row.Workload{{TenantID: "t-1", Workload: "yammer", Date: oct1, ActiveUsers: 40, Final: true, Version: version}},
		Subscriptions: []row.Subscription{{TenantID: "t-1", SubscriptionID: "s-1", SKU: "O365_E3", PartnerID: "p-7", Status: event.Active, Quantity: 10, OccurredAt: 1790000000123456789, Version: version}},
		Activity:      []row.Activity{{TenantID: "t-1", UserID: "u-1", Workload: "teams", First: oct1, Days: 1}},
	}
}

// migrated gives the test a fresh database with seatflow's tables.
func migrated(tb testing.TB) (*testenv.ClickHouse, driver.Conn) {
	tb.Helper()
	env := testenv.StartClickHouse(tb)
	conn := env.Open(tb)
	if _, err := clickhouse.Migrate(context.Background(), conn, env.Database); err != nil {
		tb.Fatal(err)
	}
	return env, conn
}

func count(t *testing.T, conn driver.Conn, query string) uint64 {
	t.Helper()
	var n uint64
	if err := conn.QueryRow(context.Background(), query).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

func TestWriteRoundTripAndRetriedWriteAddsNothing(t *testing.T) {
	env, conn := migrated(t)
	ctx := context.Background()
	w := clickhouse.NewWriter(conn, env.Database)
	for i := 0; i < 2; i++ { // the second is a retry of the same flush
		if err := w.Write(ctx, sampleRows(7), "flush-7"); err != nil {
			t.Fatal(err)
		}
	}
	db := env.Database
	for table, want := range map[string]uint64{"deployment_daily": 2, "usage_daily": 2, "workload_daily": 1, "subscriptions": 1, "user_activity": 1} {
		if n := count(t, conn, "SELECT count() FROM "+db+"."+table); n != want {
			t.Errorf("%s: %d rows without FINAL after a retried write, want %d", table, n, want)
		}
	}
	var (
		sold, assigned uint64
		pctv           *float64
		final          uint8
		day            time.Time
	)
	if err := conn.QueryRow(ctx, "SELECT sold, assigned, deployment_pct, final, date FROM "+db+".deployment_daily FINAL WHERE sku = 'O365_E3'").Scan(&sold, &assigned, &pctv, &final, &day); err != nil {
		t.Fatal(err)
	}
	if sold != 10 || assigned != 8 || pctv == nil || *pctv != 80 || final != 1 || day.Format("2006-01-02") != "2026-10-01" {
		t.Errorf("deployment row: sold=%d assigned=%d pct=%v final=%d date=%s", sold, assigned, pctv, final, day)
	}
	if n := count(t, conn, "SELECT count() FROM "+db+".deployment_daily WHERE sku = 'D365_SALES' AND deployment_pct IS NULL"); n != 1 {
		t.Errorf("sold = 0 must give deployment_pct NULL")
	}
	var at time.Time
	if err := conn.QueryRow(ctx, "SELECT occurred_at FROM "+db+".subscriptions FINAL").Scan(&at); err != nil || at.UnixNano() != 1790000000123456789 {
		t.Errorf("occurred_at %v (%v): nanoseconds must survive", at.UnixNano(), err)
	}
	// A newer version replaces the row under FINAL.
	rows := sampleRows(8)
	rows.Deployment[0].Assigned = 9
	if err := w.Write(ctx, rows, "flush-8"); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(ctx, "SELECT assigned FROM "+db+".deployment_daily FINAL WHERE sku = 'O365_E3'").Scan(&assigned); err != nil || assigned != 9 {
		t.Errorf("after version 8: assigned=%d %v", assigned, err)
	}
}

// TestUserActivityUnfolds: user_activity rows go in folded, a user's days
// in a workload to one row, and come out one row per day: the first and
// last (63rd) bits, across a month, and rows differing only in workload,
// tenant or version. A retried write adds nothing to user_activity.
func TestUserActivityUnfolds(t *testing.T) {
	env, conn := migrated(t)
	ctx := context.Background()
	rows := []row.Activity{
		{TenantID: "t-1", UserID: "u-1", Workload: "exchange", First: oct1, Days: 1 | 1<<1 | 1<<30 | 1<<63, Version: 5},
		{TenantID: "t-1", UserID: "u-1", Workload: "exchange", First: oct1 + 64, Days: 1<<0 | 1<<5, Version: 5},
		{TenantID: "t-1", UserID: "u-1", Workload: "teams", First: oct1 - 2, Days: 1, Version: 5},
		{TenantID: "t-1", UserID: "u-2", Workload: "teams", First: oct1 - 2, Days: 1, Version: 5},
		{TenantID: "t-2", UserID: "u-2", Workload: "teams", First: oct1 - 2, Days: 1, Version: 5},
		{TenantID: "t-2", UserID: "u-2", Workload: "teams", First: oct1 - 1, Days: 1, Version: 6},
	}
	w := clickhouse.NewWriter(conn, env.Database)
	for range 2 { // the second is a retry
		if err := w.Write(ctx, row.Set{Activity: rows}, "flush-5"); err != nil {
			t.Fatal(err)
		}
	}
	var want []string
	for _, r := range rows {
		for d := range r.Dates() {
			want = append(want, fmt.Sprintf("%s %s %s %s %d", r.TenantID, r.UserID, r.Workload, time.Unix(int64(d)*86400, 0).UTC().Format("2006-01-02"), r.Version))
		}
	}
	q, err := conn.Query(ctx, "SELECT tenant_id, user_id, workload, toString(date), version FROM "+env.Database+".user_activity")
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	var got []string
	for q.Next() {
		var tenant, user, workload, day string
		var version uint64
		if err := q.Scan(&tenant, &user, &workload, &day, &version); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%s %s %s %s %d", tenant, user, workload, day, version))
	}
	if err := q.Err(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	slices.Sort(want)
	if len(want) != 10 || !slices.Equal(got, want) {
		t.Errorf("user_activity without FINAL after a retried write:\n got %q\nwant %q (10 rows)", got, want)
	}
}

// TestWriteRetriesWhileClickHouseIsDown stops the local ClickHouse, writes,
// starts it again on the same address and data: the write lands, once.
func TestWriteRetriesWhileClickHouseIsDown(t *testing.T) {
	ctx := context.Background()
	own := testenv.StartOwnClickHouse(t)
	conn := own.Conn
	if _, err := clickhouse.Migrate(ctx, conn, "seatflow"); err != nil {
		t.Fatal(err)
	}
	own.Kill()

	w := clickhouse.NewWriter(conn, "seatflow")
	w.MinBackoff, w.MaxBackoff = 50*time.Millisecond, 200*time.Millisecond
	var retries atomic.Int32
	w.OnRetry = func(string, error) { retries.Add(1) }
	done := make(chan error, 1)
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	go func() { done <- w.Write(wctx, sampleRows(1), "flush-1") }()
	for deadline := time.Now().Add(time.Minute); retries.Load() < 3; {
		if time.Now().After(deadline) {
			t.Fatal("the write did not retry while ClickHouse was down")
		}
		time.Sleep(20 * time.Millisecond)
	}
	own.Restart(t)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("write after ClickHouse came back: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("the write did not land within a minute of ClickHouse coming back")
	}
	if n := count(t, conn, "SELECT count() FROM seatflow.usage_daily"); n != 2 {
		t.Errorf("usage_daily: %d rows, want 2", n)
	}
	t.Logf("retried %d times while ClickHouse was down", retries.Load())
}

// A failure no retry can mend (here a missing table) ends the write with
// the table named, while the other tables' inserts go on or stop.
func TestWriteReportsPermanentFailure(t *testing.T) {
	env, conn := migrated(t)
	ctx := context.Background()
	if err := conn.Exec(ctx, "DROP TABLE "+env.Database+".workload_daily"); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	err := clickhouse.NewWriter(conn, env.Database).Write(wctx, sampleRows(1), "flush-1")
	if err == nil || !strings.Contains(err.Error(), "flush workload_daily") || wctx.Err() != nil {
		t.Fatalf("write into a database without workload_daily: %v (context: %v)", err, wctx.Err())
	}
}

// TestWriterMatchesColumnsByName: the test's own copies of two tables
// have columns of one type in another order than the migrations (sold and
// trial, assigned and qualified; active_users and qualified) and an extra
// column; every value still lands in the column of its name.
func TestWriterMatchesColumnsByName(t *testing.T) {
	env, conn := migrated(t)
	ctx := context.Background()
	db := env.Database
	for _, q := range []string{
		"DROP TABLE " + db + ".deployment_daily",
		"CREATE TABLE " + db + ".deployment_daily (tenant_id String, sku LowCardinality(String), date Date, product LowCardinality(String), " +
			"trial UInt64, sold UInt64, qualified UInt64, assigned UInt64, note String DEFAULT 'x', deployment_pct Nullable(Float64), final UInt8, version UInt64) " +
			"ENGINE = ReplacingMergeTree(version) ORDER BY (tenant_id, sku, date)",
		"DROP TABLE " + db + ".usage_daily",
		"CREATE TABLE " + db + ".usage_daily (version UInt64, qualified UInt64, active_users UInt64, tenant_id String, sku LowCardinality(String), " +
			"workload LowCardinality(String), date Date, usage_pct Nullable(Float64), final UInt8) " +
			"ENGINE = ReplacingMergeTree(version) ORDER BY (tenant_id, sku, workload, date)",
	} {
		if err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if err := clickhouse.NewWriter(conn, db).Write(ctx, sampleRows(3), "by-name"); err != nil {
		t.Fatal(err)
	}
	var sold, trial, assigned, qualified, active, uq uint64
	if err := conn.QueryRow(ctx, "SELECT sold, trial, assigned, qualified FROM "+db+".deployment_daily WHERE sku = 'O365_E3'").Scan(&sold, &trial, &assigned, &qualified); err != nil {
		t.Fatal(err)
	}
	if sold != 10 || trial != 0 || assigned != 8 || qualified != 8 {
		t.Errorf("deployment_daily: sold=%d trial=%d assigned=%d qualified=%d, want 10 0 8 8", sold, trial, assigned, qualified)
	}
	if err := conn.QueryRow(ctx, "SELECT active_users, qualified FROM "+db+".usage_daily WHERE sku = 'O365_E3'").Scan(&active, &uq); err != nil {
		t.Fatal(err)
	}
	if active != 9 || uq != 8 {
		t.Errorf("usage_daily: active_users=%d qualified=%d, want 9 8", active, uq)
	}
	// a column the writer fills that a table lacks is an error, not a shift
	if err := conn.Exec(ctx, "ALTER TABLE "+db+".workload_daily DROP COLUMN final"); err != nil {
		t.Fatal(err)
	}
	err := clickhouse.NewWriter(conn, db).Write(ctx, sampleRows(4), "missing")
	if err == nil || !strings.Contains(err.Error(), "no column final") {
		t.Errorf("write into a table without final: %v, want an error naming the column", err)
	}
}
