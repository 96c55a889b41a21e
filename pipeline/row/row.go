// Package row is the row contract: the rows seatflow writes, one type per
// table, and each table's columns by name and ClickHouse type, in the
// order the migrations (schemas/migrations) create them. The figure core
// makes these rows; the ClickHouse sink writes them, matching each column
// to the table by name, so a migration that reorders or adds columns can
// never shift a value into another column.
package row

import (
	"iter"
	"math/bits"
	"slices"
	"strings"

	"github.com/seatflow/seatflow/pipeline/event"
)

// AllWorkloads is the usage_daily workload of the SKU as a whole.
const AllWorkloads = "all"

// Deployment is a deployment_daily row.
type Deployment struct {
	TenantID, SKU, Product string
	Date                   event.Day
	Sold, Trial, Assigned  int64
	Qualified              int64
	DeploymentPct          *float64 // nil when sold = 0
	Final                  bool
	Version                uint64
}

// Usage is a usage_daily row.
type Usage struct {
	TenantID, SKU, Workload string
	Date                    event.Day
	ActiveUsers, Qualified  int64
	UsagePct                *float64 // nil when qualified = 0
	Final                   bool
	Version                 uint64
}

// Workload is a workload_daily row: tenant-wide activity in a workload,
// regardless of licenses.
type Workload struct {
	TenantID, Workload string
	Date               event.Day
	ActiveUsers        int64
	Final              bool
	Version            uint64
}

// Subscription is a subscriptions row: a subscription's latest state.
type Subscription struct {
	TenantID, SubscriptionID, SKU, PartnerID string
	Status                                   event.Status
	Trial                                    bool
	Quantity                                 int64
	OccurredAt                               int64
	Version                                  uint64
}

// Activity is user_activity rows of one user in one workload (after
// aliasing): a row for each day of Days, bit i standing for First+i. Each
// row is written once, when first seen. Folding a user's days saves a
// string per day in memory and in the insert (ClickHouse unfolds them).
type Activity struct {
	TenantID, UserID, Workload string
	First                      event.Day
	Days                       uint64
	Version                    uint64
}

// Dates yields the days of a, in order.
func (a *Activity) Dates() iter.Seq[event.Day] {
	return func(yield func(event.Day) bool) {
		for m := a.Days; m != 0; m &= m - 1 {
			if !yield(a.First + event.Day(bits.TrailingZeros64(m))) {
				return
			}
		}
	}
}

// Len counts a's user_activity rows.
func (a *Activity) Len() int { return bits.OnesCount64(a.Days) }

// Set is what one flush emits: only rows that changed since the last one.
type Set struct {
	Deployment    []Deployment
	Usage         []Usage
	Workload      []Workload
	Subscriptions []Subscription
	Activity      []Activity
}

// Append adds o's rows to s's.
func (s *Set) Append(o Set) {
	s.Deployment = append(s.Deployment, o.Deployment...)
	s.Usage = append(s.Usage, o.Usage...)
	s.Workload = append(s.Workload, o.Workload...)
	s.Subscriptions = append(s.Subscriptions, o.Subscriptions...)
	s.Activity = append(s.Activity, o.Activity...)
}

// Len counts the rows, user_activity's unfolded.
func (s *Set) Len() int {
	n := 0
	for _, b := range s.Batches() {
		n += b.Rows()
	}
	return n
}

// ActivityLen counts the user_activity rows, unfolded.
func (s *Set) ActivityLen() int {
	n := 0
	for i := range s.Activity {
		n += s.Activity[i].Len()
	}
	return n
}

// SortActivity puts s.Activity in user_activity's key order when it holds
// the rows of several emits (units), each in key order and of tenants of
// its own: ClickHouse skips its own sort for a sorted block, and these
// rows make the largest insert of a flush. It moves each tenant's run of
// rows whole, so it costs one copy of the rows and a sort of the tenants.
func (s *Set) SortActivity() {
	type run struct {
		tenant     string
		start, end int
	}
	var runs []run
	sorted := true
	for i := 0; i < len(s.Activity); {
		j := i + 1
		for j < len(s.Activity) && s.Activity[j].TenantID == s.Activity[i].TenantID {
			j++
		}
		if len(runs) > 0 && runs[len(runs)-1].tenant > s.Activity[i].TenantID {
			sorted = false
		}
		runs = append(runs, run{s.Activity[i].TenantID, i, j})
		i = j
	}
	if sorted {
		return
	}
	slices.SortStableFunc(runs, func(a, b run) int { return strings.Compare(a.tenant, b.tenant) })
	out := make([]Activity, 0, len(s.Activity))
	for _, r := range runs {
		out = append(out, s.Activity[r.start:r.end]...)
	}
	s.Activity = out
}
