// Package store reads partners' insights from the snapshot tables. Every
// query is bound to the caller's scope with query parameters: a partner
// sees its customers (tenants with a subscription through it) and nothing
// of any other tenant, and an analyst sees every customer.
package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Store queries the tables of one database.
type Store struct {
	conn driver.Conn
	db   string
}

// New reads the tables of database db over conn.
func New(conn driver.Conn, db string) *Store { return &Store{conn: conn, db: db} }

// Scope is whose customers a query may see.
type Scope struct {
	Partner string
	All     bool // every partner's (an analyst); Partner then narrows it when set
}

// portfolio is the clause that keeps a query to the scope's tenants, and
// its two parameters.
func (s *Store) portfolio(sc Scope) (string, []any) {
	all := uint8(0)
	if sc.All && sc.Partner == "" {
		all = 1
	}
	return "tenant_id IN (SELECT tenant_id FROM " + s.db + ".subscriptions FINAL WHERE ? = 1 OR partner_id = ?)", []any{all, sc.Partner}
}

// Day is a calendar day, UTC, as the tables hold it.
type Day = time.Time

const dayLayout = "2006-01-02"

// each runs q with the scope's clause in place of each %s, its
// parameters for each, then args (every %s comes before the other
// parameters of q), and calls scan for each row.
func (s *Store) each(ctx context.Context, sc Scope, q string, args []any, scan func(driver.Rows) error) error {
	clause, params := s.portfolio(sc)
	n := strings.Count(q, "%s")
	all := make([]any, 0, n*len(params)+len(args))
	clauses := make([]any, n)
	for i := range n {
		clauses[i] = clause
		all = append(all, params...)
	}
	rows, err := s.conn.Query(ctx, fmt.Sprintf(q, clauses...), append(all, args...)...)
	if err != nil {
		return fmt.Errorf("insights query: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return fmt.Errorf("insights query: %w", err)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("insights query: %w", err)
	}
	return nil
}

// LatestDay is the newest day with figures in the scope; today (UTC)
// when there are none.
func (s *Store) LatestDay(ctx context.Context, sc Scope) (Day, error) {
	var d time.Time
	var n uint64
	err := s.each(ctx, sc, "SELECT max(date), count() FROM "+s.db+".deployment_daily WHERE %s", nil,
		func(r driver.Rows) error { return r.Scan(&d, &n) })
	if err != nil || n == 0 {
		return time.Now().UTC().Truncate(24 * time.Hour), err
	}
	return d, nil
}

func pct(num, den int64) *float64 {
	if den == 0 {
		return nil
	}
	p := 100 * float64(num) / float64(den)
	return &p
}
