package store

import (
	"context"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Point is one day of a ratio: its parts and the percentage.
type Point struct {
	Date  string   `json:"date"`
	Num   int64    `json:"numerator"`
	Den   int64    `json:"denominator"`
	Pct   *float64 `json:"pct"`
	Value int64    `json:"-"` // what a count chart draws
}

// Series is a named line of points, one per day.
type Series struct {
	Name   string  `json:"name"`
	Points []Point `json:"points"`
}

// Portfolio is the scope's customers' figures summed per day.
type Portfolio struct {
	From      string `json:"from"`
	To        string `json:"to"`
	Customers int    `json:"customers"`
	// deployment % per SKU: assigned / sold
	DeploymentBySKU []Series `json:"deployment_by_sku"`
	// usage % per SKU: active users in any of its workloads / qualified
	UsageBySKU []Series `json:"usage_by_sku"`
	// usage % per workload, over the SKUs that include it
	UsageByWorkload []Series `json:"usage_by_workload"`
}

// Portfolio sums the scope's customers' figures per SKU and per workload
// for the days from to to (both included).
func (s *Store) Portfolio(ctx context.Context, sc Scope, from, to time.Time) (Portfolio, error) {
	p := Portfolio{From: from.Format(dayLayout), To: to.Format(dayLayout)}
	f, t := from.Format(dayLayout), to.Format(dayLayout)
	var err error
	if p.DeploymentBySKU, err = s.series(ctx, sc, "SELECT sku, date, sum(assigned), sum(sold) FROM "+s.db+".deployment_daily FINAL"+
		" WHERE %s AND date BETWEEN toDate(?) AND toDate(?) GROUP BY sku, date ORDER BY sku, date", f, t); err != nil {
		return p, err
	}
	if p.UsageBySKU, err = s.series(ctx, sc, "SELECT sku, date, sum(active_users), sum(qualified) FROM "+s.db+".usage_daily FINAL"+
		" WHERE %s AND workload = 'all' AND date BETWEEN toDate(?) AND toDate(?) GROUP BY sku, date ORDER BY sku, date", f, t); err != nil {
		return p, err
	}
	if p.UsageByWorkload, err = s.series(ctx, sc, "SELECT workload, date, sum(active_users), sum(qualified) FROM "+s.db+".usage_daily FINAL"+
		" WHERE %s AND workload != 'all' AND date BETWEEN toDate(?) AND toDate(?) GROUP BY workload, date ORDER BY workload, date", f, t); err != nil {
		return p, err
	}
	var n uint64
	err = s.each(ctx, sc, "SELECT count(DISTINCT tenant_id) FROM "+s.db+".subscriptions FINAL WHERE %s", nil,
		func(r driver.Rows) error { return r.Scan(&n) })
	p.Customers = int(n)
	return p, err
}

// series reads (name, date, numerator, denominator) rows, ordered by name
// and date, into one series per name.
func (s *Store) series(ctx context.Context, sc Scope, q string, args ...any) ([]Series, error) {
	out := []Series{}
	var name string
	var d time.Time
	var num, den uint64
	err := s.each(ctx, sc, q, args, func(r driver.Rows) error {
		if err := r.Scan(&name, &d, &num, &den); err != nil {
			return err
		}
		out = appendPoint(out, name, Point{Date: d.Format(dayLayout), Num: int64(num), Den: int64(den), Pct: pct(int64(num), int64(den))})
		return nil
	})
	return out, err
}
