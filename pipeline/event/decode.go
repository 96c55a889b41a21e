package event

import (
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/valyala/fastjson"
)

// Limits of SPEC §2: events beyond them are bad_value.
const (
	// MaxIDLength bounds identifiers, so one bad publisher cannot blow up state.
	MaxIDLength = 256
	// MaxFuture is how far ahead of the processing clock occurred_at may be.
	MaxFuture = 5 * time.Minute
	// MaxQuantity bounds a subscription's seats: sums over a tenant's
	// subscriptions can then never overflow.
	MaxQuantity = 10_000_000
)

// MinYear and MaxYear bound occurred_at (UTC): the days ClickHouse's Date
// holds, and far inside what int64 nanoseconds hold (years 1678–2262).
const (
	MinYear = 1970
	MaxYear = 2105
)

// Decoder decodes events. It reuses its parser between calls, so it is not
// safe for concurrent use: use one per goroutine.
type Decoder struct {
	p     fastjson.Parser
	f     fields
	dates dateCache
}

// Decode parses one message value into ev. now is the processing time in
// Unix nanoseconds, against which future timestamps are judged. The
// returned *Rejection says why an event is refused. ev's strings alias data
// or are copies, never the decoder's own buffers: decoded events may be
// kept while the decoder goes on (the runner decodes a whole fetch before
// applying it).
func (d *Decoder) Decode(data []byte, now int64, ev *Event) *Rejection {
	f := &d.f
	// The scanner takes the common shape of an event in one pass; anything
	// else (escapes, nested values, fractions, malformed input) goes to the
	// full parser, which also words the errors.
	if !f.scan(data) {
		f.seen = 0
		if r := d.parse(data); r != nil {
			return r
		}
	}
	return f.event(now, &d.dates, ev)
}

// parse fills the fields with the full JSON parser.
func (d *Decoder) parse(data []byte) *Rejection {
	v, err := d.p.ParseBytes(data)
	if err != nil {
		return reject(MalformedJSON, "%v", err)
	}
	o, err := v.Object()
	if err != nil {
		return reject(NotAnObject, "the event is JSON %s, not an object", v.Type())
	}
	o.Visit(func(key []byte, v *fastjson.Value) {
		if k, ok := fieldNamed(key); ok {
			d.f.set(k, valueOf(v))
		}
	})
	return nil
}

func (f *fields) event(now int64, dates *dateCache, ev *Event) *Rejection {
	*ev = Event{}
	typ, r := str(f, fieldType, true)
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
		return reject(UnknownType, "type %.64q is not subscription, assignment or usage", typ)
	}
	switch v := f.get(fieldV); {
	case v.kind == kindNone:
		return reject(MissingField, "v is missing")
	case v.kind != kindNumber:
		return reject(BadValue, "v must be a number")
	default:
		if n, ok := v.int64(); !ok || n != 1 {
			return reject(UnknownVersion, "v %.20s is not a known version (1)", v.b)
		}
	}
	if ev.EventID, r = id(f, fieldEventID); r != nil {
		return r
	}
	if ev.TenantID, r = id(f, fieldTenantID); r != nil {
		return r
	}
	at, r := str(f, fieldOccurredAt, true)
	if r != nil {
		return r
	}
	if ev.OccurredAt, r = dates.parseTime(at); r != nil {
		return r
	}
	if ev.OccurredAt > now+int64(MaxFuture) {
		return reject(FutureTimestamp, "occurred_at %s is more than %s ahead of the clock", at, MaxFuture)
	}

	switch ev.Kind {
	case Usage:
		if ev.UserID, r = id(f, fieldUserID); r != nil {
			return r
		}
		if ev.Workload, r = id(f, fieldWorkload); r != nil {
			return r
		}
	case Assignment:
		if ev.UserID, r = id(f, fieldUserID); r != nil {
			return r
		}
		if ev.SKU, r = id(f, fieldSKU); r != nil {
			return r
		}
		if ev.Assigned, r = boolean(f, fieldAssigned, true); r != nil {
			return r
		}
	case Subscription:
		if ev.SubscriptionID, r = id(f, fieldSubscriptionID); r != nil {
			return r
		}
		if ev.SKU, r = id(f, fieldSKU); r != nil {
			return r
		}
		// partner_id "" (or absent) means sold directly by the vendor.
		if ev.PartnerID, r = str(f, fieldPartnerID, false); r != nil {
			return r
		}
		if ev.PartnerID != "" {
			if r := checkID(fieldPartnerID, ev.PartnerID); r != nil {
				return r
			}
		}
		qv := f.get(fieldQuantity)
		if qv.kind == kindNone {
			return reject(MissingField, "quantity is missing")
		}
		q, ok := qv.int64()
		if qv.kind != kindNumber || !ok || q < 0 || q > MaxQuantity {
			return reject(BadValue, "quantity must be a whole number from 0 to %d, got %.40s", MaxQuantity, qv.b)
		}
		ev.Quantity = q
		st, r := str(f, fieldStatus, true)
		if r != nil {
			return r
		}
		if ev.Status, ok = ParseStatus(st); !ok {
			return reject(BadValue, "status %.64q is not one of active, grace, disabled, deprovisioned, suspended, upgraded, cancelled", st)
		}
		if ev.Trial, r = boolean(f, fieldTrial, false); r != nil {
			return r
		}
	}
	return nil
}

func str(f *fields, key field, required bool) (string, *Rejection) {
	v := f.get(key)
	if v.kind == kindNone {
		if required {
			return "", reject(MissingField, "%s is missing", key)
		}
		return "", nil
	}
	if v.kind != kindString {
		return "", reject(BadValue, "%s must be a string, got %s", key, v.kind)
	}
	return unsafeString(v.b), nil
}

func id(f *fields, key field) (string, *Rejection) {
	s, r := str(f, key, true)
	if r != nil {
		return "", r
	}
	if s == "" {
		return "", reject(MissingField, "%s is empty", key)
	}
	return s, checkID(key, s)
}

// checkID holds a non-empty identifier to SPEC §2's limits: at most
// MaxIDLength bytes of valid UTF-8 with no control characters. Both
// decoding paths end here, so both refuse the same identifiers.
func checkID(key field, s string) *Rejection {
	if len(s) > MaxIDLength {
		return reject(BadValue, "%s is longer than %d bytes", key, MaxIDLength)
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c == 0x7f:
			return reject(BadValue, "%s has a control character (byte %d)", key, i)
		case c >= utf8.RuneSelf: // rare: the rest the slow way
			if !utf8.ValidString(s[i:]) {
				return reject(BadValue, "%s is not valid UTF-8", key)
			}
			for j, r := range s[i:] {
				if unicode.IsControl(r) {
					return reject(BadValue, "%s has a control character (byte %d)", key, i+j)
				}
			}
			return nil
		}
	}
	return nil
}

func boolean(f *fields, key field, required bool) (bool, *Rejection) {
	v := f.get(key)
	switch v.kind {
	case kindNone:
		if required {
			return false, reject(MissingField, "%s is missing", key)
		}
		return false, nil
	case kindTrue:
		return true, nil
	case kindFalse:
		return false, nil
	}
	return false, reject(BadValue, "%s must be true or false, got %s", key, v.kind)
}
