package main

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/seatflow/seatflow/pipeline/catalog"
	"github.com/seatflow/seatflow/pipeline/event"
	"github.com/seatflow/seatflow/pipeline/figures"
	"github.com/seatflow/seatflow/pipeline/runner"
	"github.com/seatflow/seatflow/pipeline/simulate"
	sink "github.com/seatflow/seatflow/sinks/clickhouse"
)

// sqlWay compares seatflow with what an analyst would do without it, on
// the same events and the same engine (the local ClickHouse): insert the
// raw events, and compute each day's 28-day distinct active users per
// tenant and SKU with SQL (an ASOF JOIN finds whether the user held the SKU
// when they used it). (a) backfill: all days; (b) freshness: one more hour
// of events, until today's figures are up to date (the median of three
// successive hours).
func sqlWay(ctx context.Context, cat *catalog.Catalog, tenants, days int) ([]Result, error) {
	conn, stop, err := localClickHouse(ctx)
	if err != nil {
		return nil, err
	}
	defer stop()

	start := time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC)
	var all messages
	var last int64
	if err := simulate.Generate(simulate.Config{Tenants: tenants, Users: 120, Start: start, End: start.AddDate(0, 0, days), Seed: 42}, cat,
		func(ev *event.Event) error {
			all.add(ev.AppendJSON(all.buf))
			last = ev.OccurredAt
			return nil
		}); err != nil {
		return nil, err
	}
	// The last clock hours with events are the freshness figure's "one
	// more hour", applied one at a time; each side's figure is the median
	// of freshHours, as one sample of tens of milliseconds is at the mercy
	// of the machine. "today" is each hour's own day. The simulated users
	// work 8:00-18:00, so the last hour (the first of a new day, with few
	// events) also closes the day before for every tenant.
	var d event.Decoder
	var ev event.Event
	bounds := make([]int, freshHours+1) // the hours are [bounds[i], bounds[i+1])
	hours := make([]messages, freshHours)
	hourDays := make([]string, freshHours)
	split := all.len()
	bounds[freshHours] = split
	for h := freshHours - 1; h >= 0; h-- {
		d.Decode(all.at(split-1), last+1, &ev)
		hour := ev.OccurredAt - ev.OccurredAt%int64(time.Hour)
		hourDays[h] = time.Unix(0, hour).UTC().Format(time.DateOnly)
		for split > 0 {
			d.Decode(all.at(split-1), last+1, &ev)
			if ev.OccurredAt < hour {
				break
			}
			split--
		}
		bounds[h] = split
	}
	backfill := all.slice(0, bounds[0])
	for h := range hours {
		hours[h] = all.slice(bounds[h], bounds[h+1])
	}
	lastDay := hourDays[freshHours-1]

	// seatflow, then seatflow without the per-user user_activity rows
	// (which the SQL way does not produce), each on its own database
	sf, err := newBackfill(ctx, conn, cat, "seatflow", true, last+int64(time.Hour))
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	if err := sf.apply(ctx, backfill); err != nil {
		return nil, err
	}
	sfBackfill, sfActivity := time.Since(t0), sf.activity
	sfFresh := make([]time.Duration, freshHours)
	for h, msgs := range hours {
		t0 = time.Now()
		if err := sf.apply(ctx, msgs); err != nil {
			return nil, err
		}
		sfFresh[h] = time.Since(t0)
	}
	figuresOnly, err := newBackfill(ctx, conn, cat, "figures_only", false, last+int64(time.Hour))
	if err != nil {
		return nil, err
	}
	t0 = time.Now()
	if err := figuresOnly.apply(ctx, backfill); err != nil {
		return nil, err
	}
	sfFigures := time.Since(t0)

	// the SQL way
	for _, q := range []string{
		`CREATE TABLE raw_usage (tenant_id String, user_id String, workload LowCardinality(String), at DateTime64(3, 'UTC')) ENGINE = MergeTree ORDER BY (tenant_id, at)`,
		`CREATE TABLE raw_assignment (tenant_id String, user_id String, sku LowCardinality(String), at DateTime64(3, 'UTC'), assigned Bool) ENGINE = MergeTree ORDER BY (tenant_id, user_id, sku, at)`,
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
	// the raw events go in as seatflow's rows do: decoded in Go and
	// appended a column at a time, one batch per table. The decoded strings
	// alias msgs (the simulated events have no escapes to decode into the
	// decoder's own buffer), which outlives the batches.
	insert := func(msgs messages) error {
		n := msgs.len()
		var u struct {
			tenant, user, workload []string
			at                     []int64 // Unix milliseconds, for DateTime64(3)
		}
		u.tenant, u.user, u.workload, u.at = make([]string, 0, n), make([]string, 0, n), make([]string, 0, n), make([]int64, 0, n)
		var a struct {
			tenant, user, sku []string
			at                []int64
			assigned          []bool
		}
		for i := range n {
			d.Decode(msgs.at(i), last+int64(time.Hour), &ev)
			at := ev.OccurredAt / int64(time.Millisecond)
			switch ev.Kind {
			case event.Usage:
				u.tenant, u.user = append(u.tenant, ev.TenantID), append(u.user, ev.UserID)
				u.workload, u.at = append(u.workload, cat.Canonical(ev.Workload)), append(u.at, at)
			case event.Assignment:
				a.tenant, a.user, a.sku, a.at = append(a.tenant, ev.TenantID), append(a.user, ev.UserID), append(a.sku, ev.SKU), append(a.at, at)
				a.assigned = append(a.assigned, ev.Assigned)
			}
		}
		for _, t := range []struct {
			table string
			cols  []any
		}{
			{"raw_usage", []any{u.tenant, u.user, u.workload, u.at}},
			{"raw_assignment", []any{a.tenant, a.user, a.sku, a.at, a.assigned}},
		} {
			b, err := conn.PrepareBatch(ctx, "INSERT INTO "+t.table)
			if err != nil {
				return err
			}
			for i, c := range t.cols {
				if err := b.Column(i).Append(c); err != nil {
					return fmt.Errorf("%s column %d: %w", t.table, i, err)
				}
			}
			if err := b.Send(); err != nil {
				return fmt.Errorf("%s: %w", t.table, err)
			}
		}
		return nil
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
					WHERE a.assigned
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
	sqlFresh := make([]time.Duration, freshHours)
	for h, msgs := range hours {
		t0 = time.Now()
		if err := insert(msgs); err != nil {
			return nil, err
		}
		if _, err := query(hourDays[h], hourDays[h]); err != nil {
			return nil, err
		}
		sqlFresh[h] = time.Since(t0)
	}
	sfMedian, sqlMedian := median(sfFresh), median(sqlFresh)
	hourEvents := bounds[freshHours] - bounds[0]
	size := fmt.Sprintf("%d tenants", tenants)
	return []Result{
		{Name: "backfill: seatflow", Size: backfill.len(), Value: sfBackfill.Seconds(), Unit: "s",
			Note: fmt.Sprintf("%s, %d days: decode, apply, write all rows, %d of them user_activity", size, days, sfActivity)},
		{Name: "backfill: SQL way", Size: backfill.len(), Value: sqlBackfill.Seconds(), Unit: "s", Note: fmt.Sprintf("%s: insert %.1f s + query; %d (tenant, SKU, day) rows", size, sqlInsert.Seconds(), rows)},
		{Name: "backfill speed-up", Size: backfill.len(), Value: sqlBackfill.Seconds() / sfBackfill.Seconds(), Unit: "x", Target: ">= 3x", Note: size},
		{Name: "backfill speed-up, figures only", Size: backfill.len(), Value: sqlBackfill.Seconds() / sfFigures.Seconds(), Unit: "x",
			Note: fmt.Sprintf("%s: seatflow with --no-user-activity: no per-user rows, which the SQL way does not produce (%.1f s)", size, sfFigures.Seconds())},
		{Name: "freshness: seatflow", Size: hourEvents, Value: sfMedian.Seconds(), Unit: "s",
			Note: fmt.Sprintf("%s: one more hour of events to rows; median of %d hours (%s)", size, freshHours, seconds(sfFresh))},
		{Name: "freshness: SQL way", Size: hourEvents, Value: sqlMedian.Seconds(), Unit: "s",
			Note: fmt.Sprintf("%s: insert the hour + recompute today; median of %d hours (%s)", size, freshHours, seconds(sqlFresh))},
		{Name: "freshness speed-up", Size: hourEvents, Value: sqlMedian.Seconds() / sfMedian.Seconds(), Unit: "x", Target: ">= 20x",
			Note: fmt.Sprintf("%s: the medians' ratio", size)},
	}, nil
}

// freshHours is how many successive hours the freshness figure times.
const freshHours = 3

// median is the middle of xs (the upper one of an even count).
func median[T cmp.Ordered](xs []T) T {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// seconds lists durations for a note: "0.021 0.034 0.019 s".
func seconds(ds []time.Duration) string {
	parts := make([]string, len(ds))
	for i, d := range ds {
		parts[i] = fmt.Sprintf("%.3f", d.Seconds())
	}
	return strings.Join(parts, " ") + " s"
}

// messages holds encoded events in one buffer, without a pointer per
// message: millions of them stay live through both timed runs, and the
// garbage collector need not scan them. Message i is buf[offs[i]:offs[i+1]].
type messages struct {
	buf  []byte
	offs []int
}

// add records a message appended at the end of buf (b is the new buf).
func (m *messages) add(b []byte) {
	if m.offs == nil {
		m.offs = []int{0}
	}
	m.buf = b
	m.offs = append(m.offs, len(b))
}

func (m *messages) len() int { return max(0, len(m.offs)-1) }

func (m *messages) at(i int) []byte { return m.buf[m.offs[i]:m.offs[i+1]] }

// slice returns messages [from, to), sharing the buffer.
func (m *messages) slice(from, to int) messages {
	return messages{buf: m.buf, offs: m.offs[from : to+1]}
}

// backfill applies events as `seatflow run` does, without Kafka (neither
// side reads Kafka here): a flush at least every runner.MaxPendingRows
// pending user_activity rows, each flush's rows written (every table at
// once, as the runner's sink does) from a goroutine of their own while
// events go on being applied, one write queued at most.
type backfill struct {
	e        *figures.Engine
	w        *sink.Writer
	now      int64  // processing time, for the decoder
	version  uint64 // of the last flush
	activity int    // user_activity rows written
}

func newBackfill(ctx context.Context, conn driver.Conn, cat *catalog.Catalog, db string, userActivity bool, now int64) (*backfill, error) {
	if _, err := sink.Migrate(ctx, conn, db); err != nil {
		return nil, err
	}
	e, err := figures.New(figures.Config{Catalog: cat, NoUserActivity: !userActivity})
	if err != nil {
		return nil, err
	}
	e.SetSources(0)
	return &backfill{e: e, w: sink.NewWriter(conn, db), now: now}, nil
}

// applyOne applies ev, flushing first when the bitmaps must slide (as the
// runner does) and when the pending user_activity rows reach the runner's
// bound. The simulated events are valid: a rejection is an error here.
func (b *backfill) applyOne(ev *event.Event, flush func()) error {
	_, rej, err := b.e.Apply(0, ev)
	if err == figures.ErrAhead {
		flush()
		_, rej, err = b.e.Apply(0, ev)
	}
	if err != nil {
		return err
	}
	if rej != nil {
		return rej
	}
	if b.e.Pending() >= runner.MaxPendingRows {
		flush()
	}
	return nil
}

// batchSize is how many events the decoder hands to the applier at a time.
const batchSize = 1000

// apply applies msgs and returns once their rows are written.
func (b *backfill) apply(ctx context.Context, msgs messages) (err error) {
	writes := make(chan func() error, 1)
	done := make(chan error, 1)
	go func() {
		var err error
		for f := range writes {
			if err == nil {
				err = f()
			}
		}
		done <- err
	}()
	defer func() {
		close(writes)
		if werr := <-done; err == nil {
			err = werr
		}
	}()
	flush := func() {
		b.version++
		rows, token := b.e.Emit(b.version), fmt.Sprint(b.version)
		b.activity += rows.ActivityLen()
		writes <- func() error { return b.w.Write(ctx, rows, token) }
	}
	// decoded in batches by a goroutine of their own, as the runner's
	// partition readers do, two batches ahead at most, their arrays reused;
	// stop ends it when applying fails
	type decoded struct {
		evs []event.Event
		err error
	}
	stop := make(chan struct{})
	defer close(stop)
	batches := make(chan decoded, 2)
	free := make(chan []event.Event, cap(batches)+2) // queued, being decoded, being applied
	for range cap(free) {
		free <- make([]event.Event, batchSize)
	}
	go func() {
		defer close(batches)
		var d event.Decoder
		for from := 0; from < msgs.len(); from += batchSize {
			var out decoded
			select {
			case out.evs = <-free:
			case <-stop:
				return
			}
			out.evs = out.evs[:min(batchSize, msgs.len()-from)]
			for i := range out.evs {
				if r := d.Decode(msgs.at(from+i), b.now, &out.evs[i]); r != nil {
					out = decoded{err: r}
					break
				}
			}
			select {
			case batches <- out:
			case <-stop:
				return
			}
			if out.err != nil {
				return
			}
		}
	}()
	for batch := range batches {
		if batch.err != nil {
			return batch.err
		}
		for i := range batch.evs {
			if err := b.applyOne(&batch.evs[i], flush); err != nil {
				return err
			}
		}
		free <- batch.evs
	}
	flush()
	return nil
}
