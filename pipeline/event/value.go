package event

import (
	"strconv"

	"github.com/valyala/fastjson"
)

// jsonKind is the JSON type of a field's value.
type jsonKind uint8

const (
	kindNone jsonKind = iota // the field is absent
	kindString
	kindNumber
	kindTrue
	kindFalse
	kindNull
	kindObject
	kindArray
)

// String names kinds as fastjson does, for rejection details.
func (k jsonKind) String() string {
	return [...]string{"none", "string", "number", "true", "false", "null", "object", "array"}[k]
}

// value is one field's value: b is a string's content (unescaped) and raw
// the value's JSON text, for numbers and messages.
type value struct {
	kind jsonKind
	b    []byte
	raw  []byte
}

func (v value) int64() (int64, bool) {
	n, err := strconv.ParseInt(unsafeString(v.raw), 10, 64)
	return n, err == nil
}

// valueOf converts a full parser's value (the slow path only: it copies,
// so that a decoded event outlives the next Decode).
func valueOf(v *fastjson.Value) value {
	out := value{kind: kindOf[v.Type()], raw: v.MarshalTo(nil)}
	if out.kind == kindString {
		b, _ := v.StringBytes()
		out.b = append([]byte(nil), b...) // the parser's buffer is reused
	}
	return out
}

var kindOf = [...]jsonKind{
	fastjson.TypeNull: kindNull, fastjson.TypeObject: kindObject, fastjson.TypeArray: kindArray,
	fastjson.TypeString: kindString, fastjson.TypeNumber: kindNumber, fastjson.TypeTrue: kindTrue,
	fastjson.TypeFalse: kindFalse,
}
