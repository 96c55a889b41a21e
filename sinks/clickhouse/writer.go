package clickhouse

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/seatflow/seatflow/pipeline/event"
	"github.com/seatflow/seatflow/pipeline/figures"
)

// Writer inserts snapshot rows: few, large inserts, one per table per
// chunk, each with a deduplication token so that a retry never doubles a
// row.
type Writer struct {
	conn  driver.Conn
	db    string
	chunk int
	// Backoff bounds the wait between retries of a transient failure.
	MinBackoff, MaxBackoff time.Duration
	// OnRetry, if set, hears of each transient failure before its retry;
	// tables are written concurrently, so it may be called concurrently.
	OnRetry func(table string, err error)

	mu        sync.Mutex
	described map[string][]ch.ColumnNameAndType // table → its insert columns
}

// NewWriter writes into db over conn.
func NewWriter(conn driver.Conn, db string) *Writer {
	return &Writer{conn: conn, db: db, chunk: 500_000, MinBackoff: 100 * time.Millisecond, MaxBackoff: 10 * time.Second}
}

// Write inserts rows. token names this write (e.g. the flush's version):
// writing the same rows again with the same token, after a crash or an
// unanswered insert, adds nothing. It retries transient failures until ctx
// ends.
func (w *Writer) Write(ctx context.Context, rows figures.Rows, token string) error {
	// Columns are appended whole: clickhouse-go's row-wise Append converts
	// every value through an interface, which cost more than the insert.
	type table struct {
		name    string
		n       int
		columns func(from, to int) []namedColumn
		// unique: a flush writes each key once, so the replacing merge an
		// insert applies to its own block (optimize_on_insert) finds
		// nothing; skipping it made a 4.2M-row insert about a third
		// faster. Other tables may hold a key twice in a flush (a
		// subscription changed twice), which that merge folds.
		unique bool
		// into is the table the insert goes to when it is not name: a
		// Null table whose materialized view writes name.
		into string
	}
	tables := []table{
		{name: "deployment_daily", n: len(rows.Deployment), columns: func(from, to int) []namedColumn {
			r := rows.Deployment[from:to]
			return []namedColumn{
				{"tenant_id", column(r, func(r *figures.DeploymentRow) string { return r.TenantID })},
				{"sku", column(r, func(r *figures.DeploymentRow) string { return r.SKU })},
				{"date", column(r, func(r *figures.DeploymentRow) time.Time { return date(r.Date) })},
				{"product", column(r, func(r *figures.DeploymentRow) string { return r.Product })},
				{"sold", column(r, func(r *figures.DeploymentRow) uint64 { return uint64(r.Sold) })},
				{"trial", column(r, func(r *figures.DeploymentRow) uint64 { return uint64(r.Trial) })},
				{"assigned", column(r, func(r *figures.DeploymentRow) uint64 { return uint64(r.Assigned) })},
				{"qualified", column(r, func(r *figures.DeploymentRow) uint64 { return uint64(r.Qualified) })},
				{"deployment_pct", column(r, func(r *figures.DeploymentRow) *float64 { return r.DeploymentPct })},
				{"final", column(r, func(r *figures.DeploymentRow) uint8 { return flag(r.Final) })},
				{"version", column(r, func(r *figures.DeploymentRow) uint64 { return r.Version })},
			}
		}},
		{name: "usage_daily", n: len(rows.Usage), columns: func(from, to int) []namedColumn {
			r := rows.Usage[from:to]
			return []namedColumn{
				{"tenant_id", column(r, func(r *figures.UsageRow) string { return r.TenantID })},
				{"sku", column(r, func(r *figures.UsageRow) string { return r.SKU })},
				{"workload", column(r, func(r *figures.UsageRow) string { return r.Workload })},
				{"date", column(r, func(r *figures.UsageRow) time.Time { return date(r.Date) })},
				{"active_users", column(r, func(r *figures.UsageRow) uint64 { return uint64(r.ActiveUsers) })},
				{"qualified", column(r, func(r *figures.UsageRow) uint64 { return uint64(r.Qualified) })},
				{"usage_pct", column(r, func(r *figures.UsageRow) *float64 { return r.UsagePct })},
				{"final", column(r, func(r *figures.UsageRow) uint8 { return flag(r.Final) })},
				{"version", column(r, func(r *figures.UsageRow) uint64 { return r.Version })},
			}
		}},
		{name: "workload_daily", n: len(rows.Workload), columns: func(from, to int) []namedColumn {
			r := rows.Workload[from:to]
			return []namedColumn{
				{"tenant_id", column(r, func(r *figures.WorkloadRow) string { return r.TenantID })},
				{"workload", column(r, func(r *figures.WorkloadRow) string { return r.Workload })},
				{"date", column(r, func(r *figures.WorkloadRow) time.Time { return date(r.Date) })},
				{"active_users", column(r, func(r *figures.WorkloadRow) uint64 { return uint64(r.ActiveUsers) })},
				{"final", column(r, func(r *figures.WorkloadRow) uint8 { return flag(r.Final) })},
				{"version", column(r, func(r *figures.WorkloadRow) uint64 { return r.Version })},
			}
		}},
		{name: "subscriptions", n: len(rows.Subscriptions), columns: func(from, to int) []namedColumn {
			r := rows.Subscriptions[from:to]
			return []namedColumn{
				{"tenant_id", column(r, func(r *figures.SubscriptionRow) string { return r.TenantID })},
				{"subscription_id", column(r, func(r *figures.SubscriptionRow) string { return r.SubscriptionID })},
				{"sku", column(r, func(r *figures.SubscriptionRow) string { return r.SKU })},
				{"partner_id", column(r, func(r *figures.SubscriptionRow) string { return r.PartnerID })},
				{"status", column(r, func(r *figures.SubscriptionRow) string { return r.Status.String() })},
				{"trial", column(r, func(r *figures.SubscriptionRow) uint8 { return flag(r.Trial) })},
				{"quantity", column(r, func(r *figures.SubscriptionRow) uint64 { return uint64(r.Quantity) })},
				{"occurred_at", column(r, func(r *figures.SubscriptionRow) time.Time { return time.Unix(0, r.OccurredAt).UTC() })},
				{"version", column(r, func(r *figures.SubscriptionRow) uint64 { return r.Version })},
			}
		}},
		// folded rows go into a Null table whose view unfolds them into
		// user_activity (schemas/migrations/0004)
		{name: "user_activity", into: "user_activity_input", n: len(rows.Activity), unique: true, columns: func(from, to int) []namedColumn {
			r := rows.Activity[from:to]
			return []namedColumn{
				{"tenant_id", column(r, func(r *figures.ActivityDays) string { return r.TenantID })},
				{"user_id", column(r, func(r *figures.ActivityDays) string { return r.UserID })},
				{"workload", column(r, func(r *figures.ActivityDays) string { return r.Workload })},
				{"first_date", column(r, func(r *figures.ActivityDays) time.Time { return date(r.First) })},
				{"days", column(r, func(r *figures.ActivityDays) uint64 { return r.Days })},
				{"version", column(r, func(r *figures.ActivityDays) uint64 { return r.Version })},
			}
		}},
	}
	// Tables go in at once, each on its own connection: a small flush
	// (the rows of the last minutes) then waits for its slowest insert
	// rather than for the sum of them. A table's chunks go in order.
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	var failed atomic.Bool
	for _, t := range tables {
		if t.n == 0 {
			continue
		}
		wg.Go(func() {
			for start := 0; start < t.n; start += w.chunk {
				end := min(start+w.chunk, t.n)
				tok := fmt.Sprintf("%s/%s/%d", token, t.name, start)
				if err := w.insert(ctx, t.name, cmp.Or(t.into, t.name), t.unique, tok, t.columns(start, end)); err != nil {
					failed.Store(true)
					cancel(fmt.Errorf("flush %s: %w", t.name, err)) // the others stop retrying
					return
				}
			}
		})
	}
	wg.Wait()
	if failed.Load() {
		return context.Cause(ctx) // the first failure, or the caller's cancellation
	}
	return nil
}

// insert inserts one chunk of columns, for table, into target (table or
// the Null table in front of it), retrying transient failures until ctx
// ends.
func (w *Writer) insert(ctx context.Context, table, target string, unique bool, token string, data []namedColumn) error {
	return w.Retry(ctx, table, func() error {
		settings := ch.Settings{"insert_deduplication_token": token}
		if unique {
			settings["optimize_on_insert"] = 0
		}
		if target != table {
			// a retried insert must add nothing to the view's table either
			// (the default since ClickHouse 24.x, not before)
			settings["deduplicate_blocks_in_dependent_materialized_views"] = 1
		}
		described, err := w.describe(ctx, target)
		if err != nil {
			return err
		}
		// Columns go by name, never by position: a migration that
		// reorders or adds columns cannot shift a value into another
		// column of the same type.
		cols := make([]ch.ColumnNameAndType, len(data))
		names := make([]string, len(data))
		for i, c := range data {
			j := slices.IndexFunc(described, func(d ch.ColumnNameAndType) bool { return d.Name == c.name })
			if j < 0 {
				return fmt.Errorf("table %s has no column %s: the migrations and the writer disagree", target, c.name)
			}
			cols[i], names[i] = described[j], "`"+c.name+"`"
		}
		bctx := ch.Context(ctx, ch.WithSettings(settings), ch.WithColumnNamesAndTypes(cols))
		b, err := w.conn.PrepareBatch(bctx, "INSERT INTO "+w.db+"."+target+" ("+strings.Join(names, ", ")+")")
		if err != nil {
			return err
		}
		for i, c := range data {
			if err := b.Column(i).Append(c.values); err != nil {
				b.Abort()
				return fmt.Errorf("column %s: %w", c.name, err)
			}
		}
		return b.Send()
	})
}

// describe returns table's insert columns, asking the server once per
// Writer. Over HTTP, clickhouse-go otherwise runs DESCRIBE TABLE before
// every batch: a round trip per table per flush (with the local
// ClickHouse, a third of a small insert's time). Migrations run before
// the first write; a table altered under a running writer is seen again
// after a restart.
func (w *Writer) describe(ctx context.Context, table string) ([]ch.ColumnNameAndType, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if cols, ok := w.described[table]; ok {
		return cols, nil
	}
	rows, err := w.conn.Query(ctx, "DESCRIBE TABLE "+w.db+"."+table)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var cols []ch.ColumnNameAndType
	for rows.Next() {
		var name, typ, defaultKind, ignore string
		if err := rows.Scan(&name, &typ, &defaultKind, &ignore, &ignore, &ignore, &ignore); err != nil {
			return nil, fmt.Errorf("describe %s: %w", table, err)
		}
		if defaultKind != "MATERIALIZED" && defaultKind != "ALIAS" { // not insertable
			cols = append(cols, ch.ColumnNameAndType{Name: name, Type: typ})
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("describe %s: %w", table, err)
	}
	if w.described == nil {
		w.described = map[string][]ch.ColumnNameAndType{}
	}
	w.described[table] = cols
	return cols, nil
}

// namedColumn is one column of an insert: the table's column name and
// its values.
type namedColumn struct {
	name   string
	values any
}

// column extracts one column from rows.
func column[R, T any](rows []R, f func(*R) T) []T {
	out := make([]T, len(rows))
	for i := range rows {
		out[i] = f(&rows[i])
	}
	return out
}

func date(d event.Day) time.Time { return time.Unix(int64(d)*86400, 0).UTC() }

func flag(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

// Retry runs op, an operation on table, until it succeeds, fails for good
// (not Transient) or ctx ends, waiting the writer's backoff between tries
// and telling OnRetry of each failure. The inserts go through it, and so
// may other writes that must survive the same outages (checkpoints).
func (w *Writer) Retry(ctx context.Context, table string, op func() error) error {
	wait := w.MinBackoff
	for {
		err := op()
		if err == nil || !Transient(err) {
			return err
		}
		if w.OnRetry != nil {
			w.OnRetry(table, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last error: %v)", ctx.Err(), err)
		case <-time.After(wait):
		}
		wait = min(2*wait, w.MaxBackoff)
	}
}

// Transient says whether an insert may succeed if tried again: network
// failures, timeouts, and ClickHouse's overload errors.
func Transient(err error) bool {
	var ex *ch.Exception
	if errors.As(err, &ex) {
		switch ex.Code {
		case 3, // UNEXPECTED_END_OF_FILE
			159, 209, 210, // TIMEOUT_EXCEEDED, SOCKET_TIMEOUT, NETWORK_ERROR
			202, 252, 241, // TOO_MANY_SIMULTANEOUS_QUERIES, TOO_MANY_PARTS, MEMORY_LIMIT_EXCEEDED
			242, 319, 999, 1002: // TABLE_IS_READ_ONLY, UNKNOWN_STATUS_OF_INSERT, KEEPER_EXCEPTION, UNKNOWN_EXCEPTION
			return true
		}
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return true
	}
	var he *ch.HTTPError
	if errors.As(err, &he) {
		return he.StatusCode >= 500
	}
	return false
}
