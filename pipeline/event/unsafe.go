package event

import "unsafe"

// unsafeString views parser-owned bytes as a string without copying; the
// Event documents that its strings live until the next Decode.
func unsafeString(b []byte) string {
	return unsafe.String(unsafe.SliceData(b), len(b))
}
