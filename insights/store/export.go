package store

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Export tables: their columns, as in the snapshot tables (version left
// out: it orders a row's rewrites and means nothing to a reader).
var (
	DeploymentColumns = []string{"tenant_id", "sku", "date", "product", "sold", "trial", "assigned", "qualified", "deployment_pct", "final"}
	UsageColumns      = []string{"tenant_id", "sku", "workload", "date", "active_users", "qualified", "usage_pct", "final"}
)

// ExportRow is one row of an export: its values in the columns' order,
// numbers as int64, percentages as *float64, the day as a string.
type ExportRow []any

// ExportDeployment streams the scope's deployment_daily rows (FINAL) for
// the days from to to, one call of each per row, in key order.
func (s *Store) ExportDeployment(ctx context.Context, sc Scope, from, to time.Time, each func(ExportRow) error) error {
	var tenant, sku, product string
	var d time.Time
	var sold, trial, assigned, qualified uint64
	var p *float64
	var final uint8
	return s.each(ctx, sc, "SELECT tenant_id, sku, date, product, sold, trial, assigned, qualified, deployment_pct, final FROM "+s.db+".deployment_daily FINAL"+
		" WHERE %s AND date BETWEEN toDate(?) AND toDate(?) ORDER BY tenant_id, sku, date", []any{from.Format(dayLayout), to.Format(dayLayout)}, func(r driver.Rows) error {
		if err := r.Scan(&tenant, &sku, &d, &product, &sold, &trial, &assigned, &qualified, &p, &final); err != nil {
			return fmt.Errorf("export deployment: %w", err)
		}
		return each(ExportRow{tenant, sku, d.Format(dayLayout), product, int64(sold), int64(trial), int64(assigned), int64(qualified), p, final == 1})
	})
}

// ExportUsage streams the scope's usage_daily rows (FINAL) for the days
// from to to, in key order.
func (s *Store) ExportUsage(ctx context.Context, sc Scope, from, to time.Time, each func(ExportRow) error) error {
	var tenant, sku, wl string
	var d time.Time
	var active, qualified uint64
	var p *float64
	var final uint8
	return s.each(ctx, sc, "SELECT tenant_id, sku, workload, date, active_users, qualified, usage_pct, final FROM "+s.db+".usage_daily FINAL"+
		" WHERE %s AND date BETWEEN toDate(?) AND toDate(?) ORDER BY tenant_id, sku, workload, date", []any{from.Format(dayLayout), to.Format(dayLayout)}, func(r driver.Rows) error {
		if err := r.Scan(&tenant, &sku, &wl, &d, &active, &qualified, &p, &final); err != nil {
			return fmt.Errorf("export usage: %w", err)
		}
		return each(ExportRow{tenant, sku, wl, d.Format(dayLayout), int64(active), int64(qualified), p, final == 1})
	})
}
