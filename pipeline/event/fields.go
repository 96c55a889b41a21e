package event

import "encoding/binary"

// field names one of the event's fields.
type field uint8

const (
	fieldType field = iota
	fieldV
	fieldEventID
	fieldOccurredAt
	fieldTenantID
	fieldUserID
	fieldWorkload
	fieldSKU
	fieldAssigned
	fieldSubscriptionID
	fieldPartnerID
	fieldQuantity
	fieldStatus
	fieldTrial
	numFields
)

// keys are the fields' names as they appear in JSON.
var keys = [numFields]keyName{
	newKeyName("type"), newKeyName("v"), newKeyName("event_id"), newKeyName("occurred_at"),
	newKeyName("tenant_id"), newKeyName("user_id"), newKeyName("workload"), newKeyName("sku"),
	newKeyName("assigned"), newKeyName("subscription_id"), newKeyName("partner_id"),
	newKeyName("quantity"), newKeyName("status"), newKeyName("trial"),
}

func (k field) String() string { return keys[k].name }

// fields holds the known fields of one object, found in a single pass
// (looking each up by name would scan the object once per field). seen
// marks the fields set, so that a new event clears one word, not all the
// values. order is the known keys' order in the event the scanner read
// before, which it tries first.
type fields struct {
	vals  [numFields]value
	seen  uint16
	order [numFields]field
}

func (f *fields) set(k field, v value) {
	f.vals[k] = v
	f.seen |= 1 << k
}

// get returns the field's value, of kind kindNone when it is absent.
func (f *fields) get(k field) value {
	if f.seen&(1<<k) == 0 {
		return value{}
	}
	return f.vals[k]
}

// fieldNamed looks a key up by name, for the full parser; false for keys
// the events do not use.
func fieldNamed(key []byte) (field, bool) {
	for k := range numFields {
		if keys[k].name == string(key) {
			return k, true
		}
	}
	return 0, false
}

// keyName is a field's name followed by its closing quote, also as two
// little-endian words and masks, so that matching it takes two compares.
type keyName struct {
	name           string
	lo, hi         uint64
	loMask, hiMask uint64
}

func newKeyName(name string) keyName {
	var b [16]byte // every name is shorter than 16 bytes
	n := copy(b[:], name+`"`)
	k := keyName{name: name, lo: binary.LittleEndian.Uint64(b[:]), hi: binary.LittleEndian.Uint64(b[8:])}
	k.loMask = ^uint64(0) >> (64 - 8*min(n, 8))
	if n > 8 {
		k.hiMask = ^uint64(0) >> (64 - 8*(n-8))
	}
	return k
}

// at tells whether the name and its closing quote start at i.
func (k *keyName) at(data []byte, i int) bool {
	if i+16 <= len(data) {
		return binary.LittleEndian.Uint64(data[i:])&k.loMask == k.lo && binary.LittleEndian.Uint64(data[i+8:])&k.hiMask == k.hi
	}
	end := i + len(k.name)
	return end < len(data) && data[end] == '"' && string(data[i:end]) == k.name
}
