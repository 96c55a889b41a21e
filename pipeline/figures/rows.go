package figures

import (
	"iter"
	mathbits "math/bits"

	"github.com/seatflow/seatflow/pipeline/event"
)

// AllWorkloads is the usage_daily workload of the SKU as a whole.
const AllWorkloads = "all"

// DeploymentRow is a deployment_daily row (SPEC §4).
type DeploymentRow struct {
	TenantID, SKU, Product string
	Date                   event.Day
	Sold, Trial, Assigned  int64
	Qualified              int64
	DeploymentPct          *float64 // nil when sold = 0
	Final                  bool
	Version                uint64
}

// UsageRow is a usage_daily row.
type UsageRow struct {
	TenantID, SKU, Workload string
	Date                    event.Day
	ActiveUsers, Qualified  int64
	UsagePct                *float64 // nil when qualified = 0
	Final                   bool
	Version                 uint64
}

// WorkloadRow is a workload_daily row: tenant-wide activity in a workload,
// regardless of licenses.
type WorkloadRow struct {
	TenantID, Workload string
	Date               event.Day
	ActiveUsers        int64
	Final              bool
	Version            uint64
}

// SubscriptionRow is a subscriptions row: a subscription's latest state.
type SubscriptionRow struct {
	TenantID, SubscriptionID, SKU, PartnerID string
	Status                                   event.Status
	Trial                                    bool
	Quantity                                 int64
	OccurredAt                               int64
	Version                                  uint64
}

// ActivityDays is user_activity rows of one user in one workload (after
// aliasing): a row for each day of Days, bit i standing for First+i. Each
// row is written once, when first seen. Folding a user's days saves a
// string per day in memory and in the insert (ClickHouse unfolds them).
type ActivityDays struct {
	TenantID, UserID, Workload string
	First                      event.Day
	Days                       uint64
	Version                    uint64
}

// Dates yields the days of a, in order.
func (a *ActivityDays) Dates() iter.Seq[event.Day] {
	return func(yield func(event.Day) bool) {
		for m := a.Days; m != 0; m &= m - 1 {
			if !yield(a.First + event.Day(mathbits.TrailingZeros64(m))) {
				return
			}
		}
	}
}

// Len counts a's user_activity rows.
func (a *ActivityDays) Len() int { return mathbits.OnesCount64(a.Days) }

// Rows is what one Flush emits: only rows that changed since the last one.
type Rows struct {
	Deployment    []DeploymentRow
	Usage         []UsageRow
	Workload      []WorkloadRow
	Subscriptions []SubscriptionRow
	Activity      []ActivityDays
}

// Append adds o's rows to r's.
func (r *Rows) Append(o Rows) {
	r.Deployment = append(r.Deployment, o.Deployment...)
	r.Usage = append(r.Usage, o.Usage...)
	r.Workload = append(r.Workload, o.Workload...)
	r.Subscriptions = append(r.Subscriptions, o.Subscriptions...)
	r.Activity = append(r.Activity, o.Activity...)
}

// Len counts the rows.
func (r *Rows) Len() int {
	return len(r.Deployment) + len(r.Usage) + len(r.Workload) + len(r.Subscriptions) + r.ActivityLen()
}

// ActivityLen counts the user_activity rows, unfolded.
func (r *Rows) ActivityLen() int {
	n := 0
	for i := range r.Activity {
		n += r.Activity[i].Len()
	}
	return n
}

func pct(num, den int64) *float64 {
	if den == 0 {
		return nil
	}
	p := 100 * float64(num) / float64(den)
	return &p
}
