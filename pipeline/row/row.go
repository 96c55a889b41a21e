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

// Join puts several units' emits into one set, each table's rows in one
// allocation. Units hold disjoint tenants and each emits its
// user_activity rows in key order; Join merges them tenant by tenant, so
// the joined rows are in key order too: ClickHouse skips its own sort
// for a sorted block, and these rows make the largest insert of a flush.
func Join(sets []Set) Set {
	switch len(sets) {
	case 0:
		return Set{}
	case 1:
		return sets[0]
	}
	return Set{
		Deployment:    concat(sets, func(s *Set) []Deployment { return s.Deployment }),
		Usage:         concat(sets, func(s *Set) []Usage { return s.Usage }),
		Workload:      concat(sets, func(s *Set) []Workload { return s.Workload }),
		Subscriptions: concat(sets, func(s *Set) []Subscription { return s.Subscriptions }),
		Activity:      mergeActivity(sets),
	}
}

func concat[T any](sets []Set, rows func(*Set) []T) []T {
	n := 0
	for i := range sets {
		n += len(rows(&sets[i]))
	}
	if n == 0 {
		return nil
	}
	out := make([]T, 0, n)
	for i := range sets {
		out = append(out, rows(&sets[i])...)
	}
	return out
}

// mergeActivity merges the sets' user_activity rows, each set's in key
// order, by moving each tenant's run of rows whole.
func mergeActivity(sets []Set) []Activity {
	rest := make([][]Activity, 0, len(sets))
	n := 0
	for i := range sets {
		if a := sets[i].Activity; len(a) > 0 {
			rest = append(rest, a)
			n += len(a)
		}
	}
	if len(rest) <= 1 {
		return concat(sets, func(s *Set) []Activity { return s.Activity })
	}
	out := make([]Activity, 0, n)
	for len(rest) > 0 {
		low := 0
		for i := 1; i < len(rest); i++ {
			if rest[i][0].TenantID < rest[low][0].TenantID {
				low = i
			}
		}
		a := rest[low]
		end := 1
		for end < len(a) && a[end].TenantID == a[0].TenantID {
			end++
		}
		out = append(out, a[:end]...)
		if rest[low] = a[end:]; len(rest[low]) == 0 {
			rest = slices.Delete(rest, low, low+1)
		}
	}
	return out
}
