package main

import (
	"context"
	"fmt"
	"time"

	"github.com/seatflow/seatflow/pipeline/catalog"
	"github.com/seatflow/seatflow/pipeline/event"
	"github.com/seatflow/seatflow/pipeline/figures"
	"github.com/seatflow/seatflow/pipeline/simulate"
	sink "github.com/seatflow/seatflow/sinks/clickhouse"
)

// sqlWay compares seatflow with what an analyst would do without it, on
// the same events and the same engine (the local ClickHouse): insert the
// raw events, and compute each day's 28-day distinct active users per
// tenant and SKU with SQL (an ASOF JOIN finds whether the user held the SKU
// when they used it). (a) backfill: all days; (b) freshness: one more hour
// of events, until today's figures are up to date.
func sqlWay(ctx context.Context, cat *catalog.Catalog, tenants, days int) ([]Result, error) {
	conn, stop, err := localClickHouse(ctx)
	if err != nil {
		return nil, err
	}
	defer stop()

	start := time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC)
	var all [][]byte
	var last int64
	if err := simulate.Generate(simulate.Config{Tenants: tenants, Users: 120, Start: start, End: start.AddDate(0, 0, days), Seed: 42}, cat,
		func(ev *event.Event) error {
			all = append(all, ev.AppendJSON(nil))
			last = ev.OccurredAt
			return nil
		}); err != nil {
		return nil, err
	}
	// the last hour is the "one more hour" of the freshness figure
	var d event.Decoder
	var ev event.Event
	split := len(all)
	for split > 0 {
		d.Decode(all[split-1], last+1, &ev)
		if ev.OccurredAt < last-int64(time.Hour) {
			break
		}
		split--
	}
	backfill, hour := all[:split], all[split:]
	lastDay := time.Unix(0, last).UTC().Format("2006-01-02")

	// seatflow: decode, apply, flush, write rows (no Kafka on either side).
	// The per-user user_activity rows, which the SQL way does not produce,
	// are written last and timed apart.
	e, _ := figures.New(figures.Config{Catalog: cat})
	e.SetSources(0)
	w := sink.NewWriter(conn, "seatflow")
	var detail time.Duration
	write := func(rows figures.Rows, token string) error {
		activity := rows.Activity
		rows.Activity = nil
		if err := w.Write(ctx, rows, token); err != nil {
			return err
		}
		t0 := time.Now()
		defer func() { detail += time.Since(t0) }()
		return w.Write(ctx, figures.Rows{Activity: activity}, token+"/activity")
	}
	apply := func(msgs [][]byte, version uint64) error {
		for _, m := range msgs {
			if r := d.Decode(m, last+int64(time.Hour), &ev); r != nil {
				return r
			}
			if _, _, err := e.Apply(0, &ev); err == figures.ErrAhead {
				if err := write(e.Flush(version), fmt.Sprint("a", version, ev.EventID)); err != nil {
					return err
				}
				e.Apply(0, &ev)
			}
		}
		return write(e.Flush(version+1), fmt.Sprint(version+1))
	}
	t0 := time.Now()
	if err := apply(backfill, 10); err != nil {
		return nil, err
	}
	sfBackfill, sfDetail := time.Since(t0), detail
	detail = 0
	t0 = time.Now()
	if err := apply(hour, 20); err != nil {
		return nil, err
	}
	sfFresh := time.Since(t0)

	// the SQL way
	for _, q := range []string{
		`CREATE TABLE raw_usage (tenant_id String, user_id String, workload LowCardinality(String), at DateTime64(3, 'UTC')) ENGINE = MergeTree ORDER BY (tenant_id, at)`,
		`CREATE TABLE raw_assignment (tenant_id String, user_id String, sku LowCardinality(String), at DateTime64(3, 'UTC'), assigned UInt8) ENGINE = MergeTree ORDER BY (tenant_id, user_id, sku, at)`,
		`CREATE TABLE sku_workloads (sku LowCardinality(String), workload LowCardinality(String)) ENGINE = Memory`,
	} {
		if err := conn.Exec(ctx, q); err != nil {
			return nil, fmt.Errorf("%s: %w", q, err)
		}
	}
	b, _ := conn.PrepareBatch(ctx, "INSERT INTO sku_workloads")
	for _, s := range cat.SKUs() {
		info, _ := cat.SKU(s)
		for _, wl := range info.Workloads {
			b.Append(s, wl)
		}
	}
	if err := b.Send(); err != nil {
		return nil, err
	}
	insert := func(msgs [][]byte) error {
		bu, err := conn.PrepareBatch(ctx, "INSERT INTO raw_usage")
		if err != nil {
			return err
		}
		ba, err := conn.PrepareBatch(ctx, "INSERT INTO raw_assignment")
		if err != nil {
			return err
		}
		for _, m := range msgs {
			d.Decode(m, last+int64(time.Hour), &ev)
			at := time.Unix(0, ev.OccurredAt).UTC()
			switch ev.Kind {
			case event.Usage:
				bu.Append(ev.TenantID, ev.UserID, cat.Canonical(ev.Workload), at)
			case event.Assignment:
				a := uint8(0)
				if ev.Assigned {
					a = 1
				}
				ba.Append(ev.TenantID, ev.UserID, ev.SKU, at, a)
			}
		}
		if err := bu.Send(); err != nil {
			return err
		}
		return ba.Send()
	}
	// 28-day distinct active users per tenant, SKU and day; days from..to
	query := func(from, to string) (uint64, error) {
		q := fmt.Sprintf(`
			SELECT count(), sum(active) FROM (
				SELECT tenant_id, sku, day + k AS date, uniqExact(user_id) AS active
				FROM (
					SELECT DISTINCT u.tenant_id AS tenant_id, u.sku AS sku, u.user_id AS user_id, toDate(u.at) AS day
					FROM (SELECT r.tenant_id AS tenant_id, r.user_id AS user_id, r.at AS at, w.sku AS sku
					      FROM raw_usage AS r INNER JOIN sku_workloads AS w ON w.workload = r.workload
					      WHERE toDate(r.at) BETWEEN toDate('%[1]s') - 27 AND toDate('%[2]s')) AS u
					ASOF INNER JOIN raw_assignment AS a
						ON a.tenant_id = u.tenant_id AND a.user_id = u.user_id AND a.sku = u.sku AND u.at >= a.at
					WHERE a.assigned = 1
				)
				ARRAY JOIN range(28) AS k
				WHERE day + k BETWEEN toDate('%[1]s') AND toDate('%[2]s')
				GROUP BY tenant_id, sku, date
			)`, from, to)
		var rows uint64
		var sum uint64
		err := conn.QueryRow(ctx, q).Scan(&rows, &sum)
		return rows, err
	}
	t0 = time.Now()
	if err := insert(backfill); err != nil {
		return nil, fmt.Errorf("SQL way insert: %w", err)
	}
	sqlInsert := time.Since(t0)
	rows, err := query(start.Format("2006-01-02"), lastDay)
	if err != nil {
		return nil, fmt.Errorf("SQL way query: %w", err)
	}
	sqlBackfill := time.Since(t0)
	t0 = time.Now()
	if err := insert(hour); err != nil {
		return nil, err
	}
	if _, err := query(lastDay, lastDay); err != nil {
		return nil, err
	}
	sqlFresh := time.Since(t0)
	size := fmt.Sprintf("%d tenants", tenants)
	return []Result{
		{Name: "backfill: seatflow", Size: len(backfill), Value: sfBackfill.Seconds(), Unit: "s",
			Note: fmt.Sprintf("%s, %d days: decode, apply, write all rows (user_activity %.1f s of it)", size, days, sfDetail.Seconds())},
		{Name: "backfill: SQL way", Size: len(backfill), Value: sqlBackfill.Seconds(), Unit: "s", Note: fmt.Sprintf("%s: insert %.1f s + query; %d (tenant, SKU, day) rows", size, sqlInsert.Seconds(), rows)},
		{Name: "backfill speed-up", Size: len(backfill), Value: sqlBackfill.Seconds() / sfBackfill.Seconds(), Unit: "x", Target: ">= 3x", Note: size},
		{Name: "backfill speed-up, figures only", Size: len(backfill), Value: sqlBackfill.Seconds() / (sfBackfill - sfDetail).Seconds(), Unit: "x",
			Note: size + ": seatflow without the per-user user_activity rows, which the SQL way does not produce"},
		{Name: "freshness: seatflow", Size: len(hour), Value: sfFresh.Seconds(), Unit: "s", Note: size + ": one more hour of events to rows"},
		{Name: "freshness: SQL way", Size: len(hour), Value: sqlFresh.Seconds(), Unit: "s", Note: size + ": insert the hour + recompute today"},
		{Name: "freshness speed-up", Size: len(hour), Value: sqlFresh.Seconds() / sfFresh.Seconds(), Unit: "x", Target: ">= 20x", Note: size},
	}, nil
}
