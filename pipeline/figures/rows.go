package figures

import "github.com/seatflow/seatflow/pipeline/event"

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

// ActivityRow is a user_activity row: one user active in one workload (after
// aliasing) on one day. Written once, when first seen.
type ActivityRow struct {
	TenantID, UserID, Workload string
	Date                       event.Day
	Version                    uint64
}

// Rows is what one Flush emits: only rows that changed since the last one.
type Rows struct {
	Deployment    []DeploymentRow
	Usage         []UsageRow
	Workload      []WorkloadRow
	Subscriptions []SubscriptionRow
	Activity      []ActivityRow
}

// Len counts the rows.
func (r *Rows) Len() int {
	return len(r.Deployment) + len(r.Usage) + len(r.Workload) + len(r.Subscriptions) + len(r.Activity)
}

func pct(num, den int64) *float64 {
	if den == 0 {
		return nil
	}
	p := 100 * float64(num) / float64(den)
	return &p
}
