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

// value is one field's value: b is a string's content (unescaped), or
// the JSON text of any other value, for numbers and messages.
type value struct {
	kind jsonKind
	b    []byte
}

func (v value) int64() (int64, bool) {
	if len(v.b) == 1 && v.b[0] >= '0' && v.b[0] <= '9' { // v is 1, in every event
		return int64(v.b[0] - '0'), true
	}
	n, err := strconv.ParseInt(unsafeString(v.b), 10, 64)
	return n, err == nil
}

// valueOf converts a full parser's value (the slow path only: it copies,
// so that a decoded event outlives the next Decode).
func valueOf(v *fastjson.Value) value {
	out := value{kind: kindOf[v.Type()]}
	if out.kind == kindString {
		b, _ := v.StringBytes()
		out.b = append([]byte(nil), b...) // the parser's buffer is reused
	} else {
		out.b = v.MarshalTo(nil)
	}
	return out
}

var kindOf = [...]jsonKind{
	fastjson.TypeNull: kindNull, fastjson.TypeObject: kindObject, fastjson.TypeArray: kindArray,
	fastjson.TypeString: kindString, fastjson.TypeNumber: kindNumber, fastjson.TypeTrue: kindTrue,
	fastjson.TypeFalse: kindFalse,
}
