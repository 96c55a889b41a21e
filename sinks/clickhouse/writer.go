package clickhouse

import (
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

	"github.com/seatflow/seatflow/pipeline/row"
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
func (w *Writer) Write(ctx context.Context, rows row.Set, token string) error {
	// Tables go in at once, each on its own connection: a small flush
	// (the rows of the last minutes) then waits for its slowest insert
	// rather than for the sum of them. A table's chunks go in order.
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	var failed atomic.Bool
	for _, b := range rows.Batches() {
		if b.Len() == 0 {
			continue
		}
		wg.Go(func() {
			for start := 0; start < b.Len(); start += w.chunk {
				end := min(start+w.chunk, b.Len())
				tok := fmt.Sprintf("%s/%s/%d", token, b.Table(), start)
				if err := w.insert(ctx, b.Table(), b.Into(), b.OneRowPerKey(), tok, b.Columns(start, end)); err != nil {
					failed.Store(true)
					cancel(fmt.Errorf("flush %s: %w", b.Table(), err)) // the others stop retrying
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
// ends. A table with one row per key in a flush (unique) skips the
// replacing merge an insert applies to its own block
// (optimize_on_insert): it would find nothing, and it is a pass over the
// largest insert of a flush.
func (w *Writer) insert(ctx context.Context, table, target string, unique bool, token string, data []row.NamedValues) error {
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
			j := slices.IndexFunc(described, func(d ch.ColumnNameAndType) bool { return d.Name == c.Name })
			if j < 0 {
				return fmt.Errorf("table %s has no column %s: the migrations and the row contract (pipeline/row) disagree", target, c.Name)
			}
			cols[i], names[i] = described[j], "`"+c.Name+"`"
		}
		bctx := ch.Context(ctx, ch.WithSettings(settings), ch.WithColumnNamesAndTypes(cols))
		b, err := w.conn.PrepareBatch(bctx, "INSERT INTO "+w.db+"."+target+" ("+strings.Join(names, ", ")+")")
		if err != nil {
			return err
		}
		// whole columns: clickhouse-go's row-wise Append converts every
		// value through an interface, which cost more than the insert
		for i, c := range data {
			if err := b.Column(i).Append(c.Values); err != nil {
				b.Abort()
				return fmt.Errorf("column %s: %w", c.Name, err)
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
