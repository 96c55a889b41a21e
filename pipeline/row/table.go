package row

import (
	"time"

	"github.com/seatflow/seatflow/pipeline/event"
)

// Column is one column of a table: its name and ClickHouse type as the
// migrations create it, and how a row of type R gives its value.
type Column[R any] struct {
	Name, Type string
	values     func([]R) any
}

// Values is the column's values of rows, as the typed slice ([]string,
// []uint64, []time.Time, ...) a columnar insert takes.
func (c Column[R]) Values(rows []R) any { return c.values(rows) }

func column[R, T any](name, typ string, f func(*R) T) Column[R] {
	return Column[R]{Name: name, Type: typ, values: func(rows []R) any {
		out := make([]T, len(rows))
		for i := range rows {
			out[i] = f(&rows[i])
		}
		return out
	}}
}

// Table is a table seatflow writes rows of type R into.
type Table[R any] struct {
	// Name is the table readers query, and rows are counted under.
	Name string
	// Insert is the table inserts go to when it is not Name: a Null
	// table whose materialized view writes Name.
	Insert string
	// OneRowPerKey: a flush emits each key of the table once (a
	// subscription changed twice in a flush is two rows of one key).
	OneRowPerKey bool
	Columns      []Column[R]
}

// Into is the table inserts go to.
func (t *Table[R]) Into() string {
	if t.Insert != "" {
		return t.Insert
	}
	return t.Name
}

// The tables, in the order the migrations create their columns.
var (
	DeploymentDaily = Table[Deployment]{Name: "deployment_daily", Columns: []Column[Deployment]{
		column("tenant_id", "String", func(r *Deployment) string { return r.TenantID }),
		column("sku", "LowCardinality(String)", func(r *Deployment) string { return r.SKU }),
		column("date", "Date", func(r *Deployment) time.Time { return Date(r.Date) }),
		column("product", "LowCardinality(String)", func(r *Deployment) string { return r.Product }),
		column("sold", "UInt64", func(r *Deployment) uint64 { return uint64(r.Sold) }),
		column("trial", "UInt64", func(r *Deployment) uint64 { return uint64(r.Trial) }),
		column("assigned", "UInt64", func(r *Deployment) uint64 { return uint64(r.Assigned) }),
		column("qualified", "UInt64", func(r *Deployment) uint64 { return uint64(r.Qualified) }),
		column("deployment_pct", "Nullable(Float64)", func(r *Deployment) *float64 { return r.DeploymentPct }),
		column("final", "UInt8", func(r *Deployment) uint8 { return flag(r.Final) }),
		column("version", "UInt64", func(r *Deployment) uint64 { return r.Version }),
	}}
	UsageDaily = Table[Usage]{Name: "usage_daily", Columns: []Column[Usage]{
		column("tenant_id", "String", func(r *Usage) string { return r.TenantID }),
		column("sku", "LowCardinality(String)", func(r *Usage) string { return r.SKU }),
		column("workload", "LowCardinality(String)", func(r *Usage) string { return r.Workload }),
		column("date", "Date", func(r *Usage) time.Time { return Date(r.Date) }),
		column("active_users", "UInt64", func(r *Usage) uint64 { return uint64(r.ActiveUsers) }),
		column("qualified", "UInt64", func(r *Usage) uint64 { return uint64(r.Qualified) }),
		column("usage_pct", "Nullable(Float64)", func(r *Usage) *float64 { return r.UsagePct }),
		column("final", "UInt8", func(r *Usage) uint8 { return flag(r.Final) }),
		column("version", "UInt64", func(r *Usage) uint64 { return r.Version }),
	}}
	WorkloadDaily = Table[Workload]{Name: "workload_daily", Columns: []Column[Workload]{
		column("tenant_id", "String", func(r *Workload) string { return r.TenantID }),
		column("workload", "LowCardinality(String)", func(r *Workload) string { return r.Workload }),
		column("date", "Date", func(r *Workload) time.Time { return Date(r.Date) }),
		column("active_users", "UInt64", func(r *Workload) uint64 { return uint64(r.ActiveUsers) }),
		column("final", "UInt8", func(r *Workload) uint8 { return flag(r.Final) }),
		column("version", "UInt64", func(r *Workload) uint64 { return r.Version }),
	}}
	Subscriptions = Table[Subscription]{Name: "subscriptions", Columns: []Column[Subscription]{
		column("tenant_id", "String", func(r *Subscription) string { return r.TenantID }),
		column("subscription_id", "String", func(r *Subscription) string { return r.SubscriptionID }),
		column("sku", "LowCardinality(String)", func(r *Subscription) string { return r.SKU }),
		column("partner_id", "String", func(r *Subscription) string { return r.PartnerID }),
		column("status", "LowCardinality(String)", func(r *Subscription) string { return r.Status.String() }),
		column("trial", "UInt8", func(r *Subscription) uint8 { return flag(r.Trial) }),
		column("quantity", "UInt64", func(r *Subscription) uint64 { return uint64(r.Quantity) }),
		column("occurred_at", "DateTime64(9, 'UTC')", func(r *Subscription) time.Time { return time.Unix(0, r.OccurredAt).UTC() }),
		column("version", "UInt64", func(r *Subscription) uint64 { return r.Version }),
	}}
	// UserActivity's rows go in folded, into a Null table whose view
	// unfolds them into user_activity (schemas/migrations/0004).
	UserActivity = Table[Activity]{Name: "user_activity", Insert: "user_activity_input", OneRowPerKey: true, Columns: []Column[Activity]{
		column("tenant_id", "String", func(r *Activity) string { return r.TenantID }),
		column("user_id", "String", func(r *Activity) string { return r.UserID }),
		column("workload", "LowCardinality(String)", func(r *Activity) string { return r.Workload }),
		column("first_date", "Date", func(r *Activity) time.Time { return Date(r.First) }),
		column("days", "UInt64", func(r *Activity) uint64 { return r.Days }),
		column("version", "UInt64", func(r *Activity) uint64 { return r.Version }),
	}}
)

// Date is day d as ClickHouse's Date takes it: its midnight, UTC.
func Date(d event.Day) time.Time { return time.Unix(int64(d)*86400, 0).UTC() }

func flag(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

// Batch is one table's rows of a Set, for code that writes every table
// alike without knowing its row type.
type Batch interface {
	Table() string // Name
	Into() string  // the table inserts go to
	OneRowPerKey() bool
	Len() int  // rows to insert
	Rows() int // rows they make in the table (user_activity's unfold)
	// Columns gives names and values of rows [from, to), in the table's
	// column order.
	Columns(from, to int) []NamedValues
	// Schema lists the table's insert columns, names and types.
	Schema() []NameType
}

// NamedValues are one column's name and values.
type NamedValues struct {
	Name   string
	Values any
}

// NameType is a column's name and ClickHouse type.
type NameType struct{ Name, Type string }

type batch[R any] struct {
	t      *Table[R]
	rows   []R
	rowsOf func([]R) int
}

func (b batch[R]) Table() string { return b.t.Name }
func (b batch[R]) Into() string  { return b.t.Into() }
func (b batch[R]) Len() int      { return len(b.rows) }

func (b batch[R]) OneRowPerKey() bool { return b.t.OneRowPerKey }

func (b batch[R]) Rows() int {
	if b.rowsOf != nil {
		return b.rowsOf(b.rows)
	}
	return len(b.rows)
}

func (b batch[R]) Columns(from, to int) []NamedValues {
	out := make([]NamedValues, len(b.t.Columns))
	for i, c := range b.t.Columns {
		out[i] = NamedValues{c.Name, c.Values(b.rows[from:to])}
	}
	return out
}

func (b batch[R]) Schema() []NameType {
	out := make([]NameType, len(b.t.Columns))
	for i, c := range b.t.Columns {
		out[i] = NameType{c.Name, c.Type}
	}
	return out
}

// Batches gives s's rows table by table, one Batch for each table
// (empty ones included), in the order of Tables.
func (s *Set) Batches() []Batch {
	return []Batch{
		batch[Deployment]{&DeploymentDaily, s.Deployment, nil},
		batch[Usage]{&UsageDaily, s.Usage, nil},
		batch[Workload]{&WorkloadDaily, s.Workload, nil},
		batch[Subscription]{&Subscriptions, s.Subscriptions, nil},
		batch[Activity]{&UserActivity, s.Activity, func(a []Activity) int { return (&Set{Activity: a}).ActivityLen() }},
	}
}

// Tables names the tables rows are written to, as metrics label them.
func Tables() []string {
	var s Set
	var out []string
	for _, b := range s.Batches() {
		out = append(out, b.Table())
	}
	return out
}
