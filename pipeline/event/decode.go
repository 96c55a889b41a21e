package event

import (
	"time"

	"github.com/valyala/fastjson"
)

// MaxIDLength bounds identifiers, so one bad publisher cannot blow up state.
const MaxIDLength = 256

// MaxFuture is how far ahead of the processing clock occurred_at may be.
const MaxFuture = 5 * time.Minute

// Decoder decodes events. It reuses its parser between calls, so it is not
// safe for concurrent use: use one per goroutine.
type Decoder struct {
	p fastjson.Parser
	f fields
}

// fields holds the known fields of one object, found in a single pass
// (looking each up by name would scan the object once per field).
type fields struct {
	typ, v, eventID, occurredAt, tenantID, userID, workload, sku, assigned,
	subscriptionID, partnerID, quantity, status, trial *fastjson.Value
}

func (f *fields) visit(key []byte, v *fastjson.Value) {
	switch string(key) { // no allocation: the compiler compares in place
	case "type":
		f.typ = v
	case "v":
		f.v = v
	case "event_id":
		f.eventID = v
	case "occurred_at":
		f.occurredAt = v
	case "tenant_id":
		f.tenantID = v
	case "user_id":
		f.userID = v
	case "workload":
		f.workload = v
	case "sku":
		f.sku = v
	case "assigned":
		f.assigned = v
	case "subscription_id":
		f.subscriptionID = v
	case "partner_id":
		f.partnerID = v
	case "quantity":
		f.quantity = v
	case "status":
		f.status = v
	case "trial":
		f.trial = v
	}
}

// Decode parses one message value into ev. now is the processing time in
// Unix nanoseconds, against which future timestamps are judged. The
// returned *Rejection says why an event is refused. ev's strings alias the
// decoder's buffer until the next call.
func (d *Decoder) Decode(data []byte, now int64, ev *Event) *Rejection {
	v, err := d.p.ParseBytes(data)
	if err != nil {
		return reject(MalformedJSON, "%v", err)
	}
	o, err := v.Object()
	if err != nil {
		return reject(NotAnObject, "the event is JSON %s, not an object", v.Type())
	}
	f := &d.f
	*f = fields{}
	o.Visit(f.visit)
	*ev = Event{}
	typ, r := str(f.typ, "type", true)
	if r != nil {
		return r
	}
	switch typ {
	case "subscription":
		ev.Kind = Subscription
	case "assignment":
		ev.Kind = Assignment
	case "usage":
		ev.Kind = Usage
	default:
		return reject(UnknownType, "type %q is not subscription, assignment or usage", typ)
	}
	if f.v == nil {
		return reject(MissingField, "v is missing")
	}
	if f.v.Type() != fastjson.TypeNumber {
		return reject(BadValue, "v must be a number")
	}
	if n, err := f.v.Int(); err != nil || n != 1 {
		return reject(UnknownVersion, "v %s is not a known version (1)", f.v.String())
	}
	if ev.EventID, r = id(f.eventID, "event_id"); r != nil {
		return r
	}
	if ev.TenantID, r = id(f.tenantID, "tenant_id"); r != nil {
		return r
	}
	at, r := str(f.occurredAt, "occurred_at", true)
	if r != nil {
		return r
	}
	t, err := time.Parse(time.RFC3339Nano, at)
	if err != nil {
		return reject(BadValue, "occurred_at %q is not an RFC 3339 time", at)
	}
	ev.OccurredAt = t.UnixNano()
	if ev.OccurredAt > now+int64(MaxFuture) {
		return reject(FutureTimestamp, "occurred_at %s is more than %s ahead of the clock", at, MaxFuture)
	}

	switch ev.Kind {
	case Usage:
		if ev.UserID, r = id(f.userID, "user_id"); r != nil {
			return r
		}
		if ev.Workload, r = id(f.workload, "workload"); r != nil {
			return r
		}
	case Assignment:
		if ev.UserID, r = id(f.userID, "user_id"); r != nil {
			return r
		}
		if ev.SKU, r = id(f.sku, "sku"); r != nil {
			return r
		}
		if ev.Assigned, r = boolean(f.assigned, "assigned", true); r != nil {
			return r
		}
	case Subscription:
		if ev.SubscriptionID, r = id(f.subscriptionID, "subscription_id"); r != nil {
			return r
		}
		if ev.SKU, r = id(f.sku, "sku"); r != nil {
			return r
		}
		// partner_id "" (or absent) means sold directly by the vendor.
		if ev.PartnerID, r = str(f.partnerID, "partner_id", false); r != nil {
			return r
		}
		if len(ev.PartnerID) > MaxIDLength {
			return reject(BadValue, "partner_id is longer than %d bytes", MaxIDLength)
		}
		qv := f.quantity
		if qv == nil {
			return reject(MissingField, "quantity is missing")
		}
		q, err := qv.Int64()
		if qv.Type() != fastjson.TypeNumber || err != nil || q < 0 {
			return reject(BadValue, "quantity must be a whole number >= 0, got %s", qv.String())
		}
		ev.Quantity = q
		st, r := str(f.status, "status", true)
		if r != nil {
			return r
		}
		var ok bool
		if ev.Status, ok = ParseStatus(st); !ok {
			return reject(BadValue, "status %q is not one of active, grace, disabled, deprovisioned, suspended, upgraded, cancelled", st)
		}
		if ev.Trial, r = boolean(f.trial, "trial", false); r != nil {
			return r
		}
	}
	return nil
}

func str(v *fastjson.Value, key string, required bool) (string, *Rejection) {
	if v == nil {
		if required {
			return "", reject(MissingField, "%s is missing", key)
		}
		return "", nil
	}
	b, err := v.StringBytes()
	if err != nil {
		return "", reject(BadValue, "%s must be a string, got %s", key, v.Type())
	}
	return unsafeString(b), nil
}

func id(v *fastjson.Value, key string) (string, *Rejection) {
	s, r := str(v, key, true)
	if r != nil {
		return "", r
	}
	if s == "" {
		return "", reject(MissingField, "%s is empty", key)
	}
	if len(s) > MaxIDLength {
		return "", reject(BadValue, "%s is longer than %d bytes", key, MaxIDLength)
	}
	return s, nil
}

func boolean(v *fastjson.Value, key string, required bool) (bool, *Rejection) {
	if v == nil {
		if required {
			return false, reject(MissingField, "%s is missing", key)
		}
		return false, nil
	}
	switch v.Type() {
	case fastjson.TypeTrue:
		return true, nil
	case fastjson.TypeFalse:
		return false, nil
	}
	return false, reject(BadValue, "%s must be true or false, got %s", key, v.Type())
}
