package event

import (
	"encoding/binary"
	"math/bits"
)

// scan reads an event of the common shape in one pass without building a
// tree: a flat object whose strings have no escapes and whose numbers are
// integers. It reports false for anything else, valid or not, and the
// caller then parses with the full parser; so scan must never accept what
// is not JSON, and must read what it accepts as the parser would.
func (f *fields) scan(data []byte) bool {
	f.seen = 0
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '{' {
		return false
	}
	i = skipSpace(data, i+1)
	if i < len(data) && data[i] == '}' {
		return skipSpace(data, i+1) == len(data)
	}
	for n := 0; ; n++ {
		// key: first the one the last event had at this place, as a
		// publisher writes its events' keys in one order (inline here: a
		// call per key cost a tenth of decoding)
		if i >= len(data) || data[i] != '"' {
			return false
		}
		var k field
		end := -1
		if n < len(f.order) && keys[f.order[n]].at(data, i+1) {
			k = f.order[n]
			end = i + 1 + len(keys[k].name)
		} else {
			k, end = f.learnKey(data, i+1, n)
		}
		known := end >= 0
		if !known {
			if end = scanString(data, i+1); end < 0 {
				return false
			}
		}
		i = skipSpace(data, end+1)
		if i >= len(data) || data[i] != ':' {
			return false
		}
		i = skipSpace(data, i+1)
		if i >= len(data) {
			return false
		}
		// value
		var v value
		switch c := data[i]; {
		case c == '"':
			end := scanString(data, i+1)
			if end < 0 {
				return false
			}
			v = value{kind: kindString, b: data[i+1 : end]}
			i = end + 1
		case c == '-' || c >= '0' && c <= '9':
			start := i
			if i = scanInteger(data, i); i < 0 {
				return false
			}
			v = value{kind: kindNumber, b: data[start:i]}
		case c == 't' || c == 'f' || c == 'n':
			start := i
			if v.kind, i = scanLiteral(data, i); i < 0 {
				return false
			}
			v.b = data[start:i]
		default: // nested objects and arrays, or not JSON
			return false
		}
		if known {
			f.set(k, v)
		}
		i = skipSpace(data, i)
		if i >= len(data) {
			return false
		}
		switch data[i] {
		case ',':
			i = skipSpace(data, i+1)
		case '}':
			return skipSpace(data, i+1) == len(data)
		default:
			return false
		}
	}
}

// learnKey matches the key whose text starts at i, the n-th of the
// object, with the names of the fields that begin with its first byte,
// without scanning for its end (keys took a quarter of the scan's time),
// and remembers it for the next event: the field and the index of the
// key's closing quote, or -1 for any other key, which the caller then
// scans as a string.
func (f *fields) learnKey(data []byte, i, n int) (field, int) {
	if i >= len(data) {
		return 0, -1
	}
	for _, k := range keysByFirstByte[data[i]] {
		if keys[k].at(data, i) {
			if n < len(f.order) {
				f.order[n] = k
			}
			return k, i + len(keys[k].name)
		}
	}
	return 0, -1
}

// keysByFirstByte lists the fields by the first byte of their names.
var keysByFirstByte = func() (by [256][]field) {
	for k := range numFields {
		by[keys[k].name[0]] = append(by[keys[k].name[0]], k)
	}
	return by
}()

// skipSpace returns the index of the first byte at or after i that is not
// JSON whitespace. Most events have none, so the first test ends it.
func skipSpace(data []byte, i int) int {
	for i < len(data) && data[i] <= ' ' {
		switch data[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// scanString returns the index of the closing quote of a string starting
// at i, or -1 for an escape or a control character (which JSON forbids
// unescaped) or a missing quote. It tests eight bytes at a time: strings
// are most of an event's bytes, and this takes half the time per string
// of a byte loop (BenchmarkScanString).
func scanString(data []byte, i int) int {
	for ; i+8 <= len(data); i += 8 {
		if m := stopBytes(binary.LittleEndian.Uint64(data[i:])); m != 0 {
			i += bits.TrailingZeros64(m) / 8
			if data[i] == '"' {
				return i
			}
			return -1
		}
	}
	return scanStringBytewise(data, i)
}

// scanStringBytewise is scanString one byte at a time: for the last
// bytes, and the reference its tests compare the eight-byte steps with.
func scanStringBytewise(data []byte, i int) int {
	for ; i < len(data); i++ {
		switch c := data[i]; {
		case c == '"':
			return i
		case c == '\\' || c < 0x20:
			return -1
		}
	}
	return -1
}

// stopBytes marks with its high bit each byte of x that is '"', '\\' or
// below 0x20. A borrow can mark a byte above a marked one, never one
// below it, so the lowest mark is exact.
func stopBytes(x uint64) uint64 {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	quote, backslash := x^(ones*'"'), x^(ones*'\\')
	return ((quote-ones)&^quote | (backslash-ones)&^backslash | (x-ones*0x20)&^x) & highs
}

// scanInteger returns the index after a JSON integer (-?(0|[1-9][0-9]*))
// starting at i, or -1; a fraction or exponent goes to the full parser.
func scanInteger(data []byte, i int) int {
	if data[i] == '-' {
		i++
	}
	if i >= len(data) || data[i] < '0' || data[i] > '9' {
		return -1
	}
	if data[i] == '0' {
		i++
	} else {
		for i < len(data) && data[i] >= '0' && data[i] <= '9' {
			i++
		}
	}
	if i < len(data) {
		switch data[i] {
		case '.', 'e', 'E':
			return -1
		case '0', '1', '2', '3', '4', '5', '6', '7', '8', '9': // a leading zero
			return -1
		}
	}
	return i
}

// scanLiteral reads true, false or null at i: its kind and the index
// after it, or -1.
func scanLiteral(data []byte, i int) (jsonKind, int) {
	for _, l := range [...]struct {
		text string
		kind jsonKind
	}{{"true", kindTrue}, {"false", kindFalse}, {"null", kindNull}} {
		if len(data)-i >= len(l.text) && string(data[i:i+len(l.text)]) == l.text {
			return l.kind, i + len(l.text)
		}
	}
	return kindNone, -1
}
