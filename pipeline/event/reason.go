package event

import "fmt"

// Reason says why an event was rejected; it goes into the dead-letter
// header and the seatflow_events_rejected_total{reason} label.
type Reason string

// Rejection reasons.
const (
	MalformedJSON    Reason = "malformed_json"
	NotAnObject      Reason = "not_an_object"
	MissingField     Reason = "missing_field"
	BadValue         Reason = "bad_value"
	UnknownType      Reason = "unknown_type"
	UnknownVersion   Reason = "unknown_version"
	FutureTimestamp  Reason = "future_timestamp"
	TooLate          Reason = "too_late"
	TooManyWorkloads Reason = "too_many_workloads"
	KeyMismatch      Reason = "key_mismatch"
	LimitExceeded    Reason = "limit_exceeded"
	// BatchTooLarge: a whole record batch that decompresses beyond any
	// sane size (a compression bomb); its dead letter is the batch as
	// stored, its offset the batch's first.
	BatchTooLarge Reason = "batch_too_large"
	// CorruptBatch: a record batch that cannot be read (its CRC fails),
	// sent to the dead-letter topic whole by `seatflow skip-batch`.
	CorruptBatch Reason = "corrupt_batch"
)

// Reasons lists every reason, for metrics and documentation.
var Reasons = []Reason{MalformedJSON, NotAnObject, MissingField, BadValue, UnknownType, UnknownVersion, FutureTimestamp, TooLate, TooManyWorkloads,
	KeyMismatch, LimitExceeded, BatchTooLarge, CorruptBatch}

// Rejection is a rejected event's error: a reason and a detail for people.
type Rejection struct {
	Reason Reason
	Detail string
}

func (r *Rejection) Error() string { return string(r.Reason) + ": " + r.Detail }

func reject(reason Reason, format string, args ...any) *Rejection {
	return &Rejection{Reason: reason, Detail: fmt.Sprintf(format, args...)}
}

// CheckKey refuses an event whose message key is not its tenant_id: the
// key picks the partition, and a tenant's events must all share one
// partition number (SPEC §2), or its figures would be split between units.
func CheckKey(key []byte, ev *Event) *Rejection {
	if string(key) == ev.TenantID {
		return nil
	}
	return reject(KeyMismatch, "the message key %.64q is not the tenant_id %q", key, ev.TenantID)
}
