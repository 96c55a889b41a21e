package store

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Customer is one customer's latest figures, summed over its SKUs.
type Customer struct {
	TenantID      string   `json:"tenant_id"`
	Date          string   `json:"date"` // the day the figures are of
	SKUs          []string `json:"skus"`
	Sold          int64    `json:"sold"`
	Trial         int64    `json:"trial"`
	Assigned      int64    `json:"assigned"`
	Qualified     int64    `json:"qualified"`
	DeploymentPct *float64 `json:"deployment_pct"`
	Active        int64    `json:"active_users"`
	UsagePct      *float64 `json:"usage_pct"`
	// changes in percentage points over the 28 days before Date; nil
	// where either end has no percentage
	DeploymentChange *float64 `json:"deployment_change_28d"`
	UsageChange      *float64 `json:"usage_change_28d"`
}

// Need orders customers by how much they need adoption help: the lower
// of deployment and usage first, then the faster falling.
func Need(a, b Customer) int {
	la, lb := lowest(a), lowest(b)
	if la != lb {
		if la < lb {
			return -1
		}
		return 1
	}
	ca, cb := change(a), change(b)
	switch {
	case ca < cb:
		return -1
	case ca > cb:
		return 1
	}
	return 0
}

func lowest(c Customer) float64 {
	l := 1e9
	for _, p := range []*float64{c.DeploymentPct, c.UsagePct} {
		if p != nil {
			l = min(l, *p)
		}
	}
	return l
}

func change(c Customer) float64 {
	ch := 0.0
	for _, p := range []*float64{c.DeploymentChange, c.UsageChange} {
		if p != nil {
			ch = min(ch, *p)
		}
	}
	return ch
}

// Customers lists the scope's customers with their latest figures (sold,
// trial, assigned, qualified, and active users in any workload, summed
// over their SKUs), most in need of adoption help first.
func (s *Store) Customers(ctx context.Context, sc Scope) ([]Customer, error) {
	// each customer's newest day (a unit's current day: they differ by
	// a day or so) and the day 28 days before it
	days := "(tenant_id, date) IN (SELECT tenant_id, arrayJoin([max(date), max(date) - 28]) FROM " + s.db + ".deployment_daily WHERE %s GROUP BY tenant_id)"
	type key struct {
		tenant string
		day    time.Time
	}
	type sums struct{ sold, trial, assigned, qualified, active, uq int64 }
	byDay := map[key]*sums{}
	at := func(k key) *sums {
		if byDay[k] == nil {
			byDay[k] = &sums{}
		}
		return byDay[k]
	}
	latestOf := map[string]time.Time{}
	skus := map[string][]string{}

	var t, sku string
	var d time.Time
	var sold, trial, assigned, qualified, active, uq uint64
	err := s.each(ctx, sc, "SELECT tenant_id, date, sku, sold, trial, assigned, qualified FROM "+s.db+".deployment_daily FINAL"+
		" WHERE %s AND "+days+" ORDER BY tenant_id, date, sku", nil, func(r driver.Rows) error {
		if err := r.Scan(&t, &d, &sku, &sold, &trial, &assigned, &qualified); err != nil {
			return err
		}
		x := at(key{t, d})
		x.sold, x.trial, x.assigned, x.qualified = x.sold+int64(sold), x.trial+int64(trial), x.assigned+int64(assigned), x.qualified+int64(qualified)
		if d.After(latestOf[t]) {
			latestOf[t], skus[t] = d, nil
		}
		if d.Equal(latestOf[t]) {
			skus[t] = append(skus[t], sku)
		}
		return nil
	})
	if err == nil {
		err = s.each(ctx, sc, "SELECT tenant_id, date, sum(active_users), sum(qualified) FROM "+s.db+".usage_daily FINAL"+
			" WHERE %s AND workload = 'all' AND "+days+" GROUP BY tenant_id, date", nil, func(r driver.Rows) error {
			if err := r.Scan(&t, &d, &active, &uq); err != nil {
				return err
			}
			x := at(key{t, d})
			x.active, x.uq = int64(active), int64(uq)
			return nil
		})
	}
	if err != nil {
		return nil, fmt.Errorf("customers: %w", err)
	}

	out := make([]Customer, 0, len(latestOf))
	for t, d := range latestOf {
		now := byDay[key{t, d}]
		c := Customer{TenantID: t, Date: d.Format(dayLayout), SKUs: skus[t], Sold: now.sold, Trial: now.trial, Assigned: now.assigned,
			Qualified: now.qualified, DeploymentPct: pct(now.assigned, now.sold), Active: now.active, UsagePct: pct(now.active, now.uq)}
		if then := byDay[key{t, d.AddDate(0, 0, -28)}]; then != nil {
			c.DeploymentChange = diff(c.DeploymentPct, pct(then.assigned, then.sold))
			c.UsageChange = diff(c.UsagePct, pct(then.active, then.uq))
		}
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b Customer) int {
		if n := Need(a, b); n != 0 {
			return n
		}
		return strings.Compare(a.TenantID, b.TenantID)
	})
	return out, nil
}

func diff(now, then *float64) *float64 {
	if now == nil || then == nil {
		return nil
	}
	d := *now - *then
	return &d
}
