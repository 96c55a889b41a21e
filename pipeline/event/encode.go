package event

import (
	"strconv"
	"time"
)

// AppendJSON appends the event's wire form (SPEC §2) to b: what publishers
// send, and what `seatflow simulate` writes.
func (e *Event) AppendJSON(b []byte) []byte {
	b = append(b, `{"type":`...)
	b = strconv.AppendQuote(b, e.Kind.String())
	b = append(b, `,"v":1,"event_id":`...)
	b = strconv.AppendQuote(b, e.EventID)
	b = append(b, `,"occurred_at":`...)
	b = strconv.AppendQuote(b, time.Unix(0, e.OccurredAt).UTC().Format(time.RFC3339Nano))
	b = append(b, `,"tenant_id":`...)
	b = strconv.AppendQuote(b, e.TenantID)
	switch e.Kind {
	case Subscription:
		b = append(b, `,"subscription_id":`...)
		b = strconv.AppendQuote(b, e.SubscriptionID)
		b = append(b, `,"sku":`...)
		b = strconv.AppendQuote(b, e.SKU)
		b = append(b, `,"partner_id":`...)
		b = strconv.AppendQuote(b, e.PartnerID)
		b = append(b, `,"quantity":`...)
		b = strconv.AppendInt(b, e.Quantity, 10)
		b = append(b, `,"status":`...)
		b = strconv.AppendQuote(b, e.Status.String())
		b = append(b, `,"trial":`...)
		b = strconv.AppendBool(b, e.Trial)
	case Assignment:
		b = append(b, `,"user_id":`...)
		b = strconv.AppendQuote(b, e.UserID)
		b = append(b, `,"sku":`...)
		b = strconv.AppendQuote(b, e.SKU)
		b = append(b, `,"assigned":`...)
		b = strconv.AppendBool(b, e.Assigned)
	case Usage:
		b = append(b, `,"user_id":`...)
		b = strconv.AppendQuote(b, e.UserID)
		b = append(b, `,"workload":`...)
		b = strconv.AppendQuote(b, e.Workload)
	}
	return append(b, '}')
}
