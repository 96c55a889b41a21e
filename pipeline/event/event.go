// Package event decodes and validates the events of SPEC §2: strict about
// types and required fields, tolerant of unknown extra fields, and every
// rejection carrying a machine-readable reason.
package event

// Kind is an event's type.
type Kind uint8

// Event kinds.
const (
	Subscription Kind = iota + 1
	Assignment
	Usage
)

func (k Kind) String() string {
	switch k {
	case Subscription:
		return "subscription"
	case Assignment:
		return "assignment"
	case Usage:
		return "usage"
	}
	return "unknown"
}

// Status of a subscription.
type Status uint8

// Subscription statuses; only Active seats are sold.
const (
	Active Status = iota + 1
	Grace
	Disabled
	Deprovisioned
	Suspended
	Upgraded
	Cancelled
)

var statusNames = [...]string{"", "active", "grace", "disabled", "deprovisioned", "suspended", "upgraded", "cancelled"}

func (s Status) String() string {
	if int(s) < len(statusNames) {
		return statusNames[s]
	}
	return "unknown"
}

// ParseStatus maps a status name to a Status.
func ParseStatus(s string) (Status, bool) {
	for i, n := range statusNames {
		if i > 0 && n == s {
			return Status(i), true
		}
	}
	return 0, false
}

// Event is one decoded event. Fields not used by its Kind are zero. String
// fields may alias the message they were decoded from: copy what must
// outlive it.
type Event struct {
	Kind       Kind
	EventID    string
	OccurredAt int64 // Unix nanoseconds, UTC
	TenantID   string

	// subscription
	SubscriptionID string
	PartnerID      string
	Quantity       int64
	Status         Status
	Trial          bool

	// assignment and usage
	UserID   string
	SKU      string // subscription, assignment
	Assigned bool
	Workload string // usage
}

// Before orders events of one entity as SPEC §2 does: later occurred_at
// wins, equal times are broken by event_id (greater wins).
func (e *Event) Before(o *Event) bool {
	if e.OccurredAt != o.OccurredAt {
		return e.OccurredAt < o.OccurredAt
	}
	return e.EventID < o.EventID
}

// NanosPerDay is the length of a UTC calendar day.
const NanosPerDay = int64(86400) * 1e9

// Day is a UTC calendar day as days since 1970-01-01.
type Day int32

// DayOf is the UTC day of a Unix-nanosecond time.
func DayOf(ns int64) Day {
	d := ns / NanosPerDay
	if ns < 0 && ns%NanosPerDay != 0 {
		d--
	}
	return Day(d)
}
