package store

import (
	"context"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Insights is one customer's figures over a range of days.
type Insights struct {
	TenantID      string         `json:"tenant_id"`
	From          string         `json:"from"`
	To            string         `json:"to"`
	Date          string         `json:"date"` // the newest day with figures
	SKUs          []SKU          `json:"skus"`
	Workloads     []Series       `json:"workloads"` // tenant-wide active users per workload (Value and Num)
	Subscriptions []Subscription `json:"subscriptions"`
}

// SKU is one SKU of the customer: its deployment and usage by day.
type SKU struct {
	SKU        string          `json:"sku"`
	Product    string          `json:"product"`
	Latest     DeploymentDay   `json:"latest"`
	Deployment []DeploymentDay `json:"deployment"`
	Usage      []Series        `json:"usage"` // per workload and "all": active users / qualified
	// Causes says why deployment or usage is over 100 % on the newest
	// day, from the data (SPEC §3's four causes); empty when neither is.
	Causes []Cause `json:"causes"`
}

// DeploymentDay is a deployment_daily row.
type DeploymentDay struct {
	Date          string   `json:"date"`
	Sold          int64    `json:"sold"`
	Trial         int64    `json:"trial"`
	Assigned      int64    `json:"assigned"`
	Qualified     int64    `json:"qualified"`
	DeploymentPct *float64 `json:"deployment_pct"`
	Final         bool     `json:"final"`
}

// Subscription is a subscriptions row.
type Subscription struct {
	SubscriptionID string    `json:"subscription_id"`
	SKU            string    `json:"sku"`
	PartnerID      string    `json:"partner_id"`
	Status         string    `json:"status"`
	Trial          bool      `json:"trial"`
	Quantity       int64     `json:"quantity"`
	OccurredAt     time.Time `json:"occurred_at"`
}

// Customer reads one customer's insights for the days from to to; found
// is false for a tenant outside the scope, as for one that does not
// exist: the answer is the same.
func (s *Store) Customer(ctx context.Context, sc Scope, tenant string, from, to time.Time) (in Insights, found bool, err error) {
	in = Insights{TenantID: tenant, From: from.Format(dayLayout), To: to.Format(dayLayout), SKUs: []SKU{}, Workloads: []Series{}, Subscriptions: []Subscription{}}
	err = s.each(ctx, sc, "SELECT subscription_id, sku, partner_id, status, trial, quantity, occurred_at FROM "+s.db+".subscriptions FINAL"+
		" WHERE %s AND tenant_id = ? ORDER BY sku, subscription_id", []any{tenant}, func(r driver.Rows) error {
		var sub Subscription
		var trial uint8
		var qty uint64
		if err := r.Scan(&sub.SubscriptionID, &sub.SKU, &sub.PartnerID, &sub.Status, &trial, &qty, &sub.OccurredAt); err != nil {
			return err
		}
		sub.Trial, sub.Quantity = trial == 1, int64(qty)
		in.Subscriptions = append(in.Subscriptions, sub)
		return nil
	})
	if err != nil || len(in.Subscriptions) == 0 {
		return in, false, err
	}

	days := []any{tenant, from.Format(dayLayout), to.Format(dayLayout)}
	err = s.each(ctx, sc, "SELECT sku, product, date, sold, trial, assigned, qualified, deployment_pct, final FROM "+s.db+".deployment_daily FINAL"+
		" WHERE %s AND tenant_id = ? AND date BETWEEN toDate(?) AND toDate(?) ORDER BY sku, date", days, func(r driver.Rows) error {
		var sku, product string
		var d time.Time
		var sold, trial, assigned, qualified uint64
		var dp *float64
		var final uint8
		if err := r.Scan(&sku, &product, &d, &sold, &trial, &assigned, &qualified, &dp, &final); err != nil {
			return err
		}
		if len(in.SKUs) == 0 || in.SKUs[len(in.SKUs)-1].SKU != sku {
			in.SKUs = append(in.SKUs, SKU{SKU: sku, Product: product, Usage: []Series{}, Causes: []Cause{}})
		}
		k := &in.SKUs[len(in.SKUs)-1]
		day := DeploymentDay{Date: d.Format(dayLayout), Sold: int64(sold), Trial: int64(trial), Assigned: int64(assigned), Qualified: int64(qualified),
			DeploymentPct: dp, Final: final == 1}
		k.Deployment = append(k.Deployment, day)
		k.Latest = day
		in.Date = max(in.Date, day.Date)
		return nil
	})
	if err != nil {
		return in, false, err
	}
	err = s.each(ctx, sc, "SELECT sku, workload, date, active_users, qualified FROM "+s.db+".usage_daily FINAL"+
		" WHERE %s AND tenant_id = ? AND date BETWEEN toDate(?) AND toDate(?) ORDER BY sku, workload = 'all' DESC, workload, date", days, func(r driver.Rows) error {
		var sku, wl string
		var d time.Time
		var active, qualified uint64
		if err := r.Scan(&sku, &wl, &d, &active, &qualified); err != nil {
			return err
		}
		if k := in.sku(sku); k != nil {
			k.Usage = appendPoint(k.Usage, wl, Point{Date: d.Format(dayLayout), Num: int64(active), Den: int64(qualified), Pct: pct(int64(active), int64(qualified))})
		}
		return nil
	})
	if err != nil {
		return in, false, err
	}
	err = s.each(ctx, sc, "SELECT workload, date, active_users FROM "+s.db+".workload_daily FINAL"+
		" WHERE %s AND tenant_id = ? AND date BETWEEN toDate(?) AND toDate(?) ORDER BY workload, date", days, func(r driver.Rows) error {
		var wl string
		var d time.Time
		var active uint64
		if err := r.Scan(&wl, &d, &active); err != nil {
			return err
		}
		in.Workloads = appendPoint(in.Workloads, wl, Point{Date: d.Format(dayLayout), Num: int64(active), Value: int64(active)})
		return nil
	})
	if err != nil {
		return in, false, err
	}
	for i := range in.SKUs {
		in.SKUs[i].Causes = causes(&in, &in.SKUs[i])
	}
	return in, true, nil
}

// appendPoint adds p to the series name, the last of sr or a new one:
// rows come ordered by series, then day.
func appendPoint(sr []Series, name string, p Point) []Series {
	if len(sr) == 0 || sr[len(sr)-1].Name != name {
		sr = append(sr, Series{Name: name})
	}
	last := &sr[len(sr)-1]
	last.Points = append(last.Points, p)
	return sr
}

func (in *Insights) sku(name string) *SKU {
	for i := range in.SKUs {
		if in.SKUs[i].SKU == name {
			return &in.SKUs[i]
		}
	}
	return nil
}

// last is a series' point of day d, if it has one.
func last(sr []Series, name, d string) (Point, bool) {
	for _, s := range sr {
		if s.Name == name && len(s.Points) > 0 && s.Points[len(s.Points)-1].Date == d {
			return s.Points[len(s.Points)-1], true
		}
	}
	return Point{}, false
}
