package figures

import (
	"encoding/binary"

	"github.com/cespare/xxhash/v2"

	"github.com/seatflow/seatflow/pipeline/event"
)

// emittedRows remembers, for each row that may still change, a digest of
// what was last emitted, so that Emit emits only changed rows. It is a
// slice of 16-byte entries sorted by day first: a new day's rows append at
// the end and pruning drops a prefix. (A Go map of the full values cost
// about 5 KB a tenant: several bytes a tracked user in 1000-user tenants.)
// Digests are 64-bit: a change hidden by a collision is as unlikely as two
// users' fingerprints colliding.
type emittedRows []emittedRow

type emittedRow struct {
	key rowKey
	sum uint64
}

func (k rowKey) less(o rowKey) bool {
	if k.day != o.day {
		return k.day < o.day
	}
	if k.kind != o.kind {
		return k.kind < o.kind
	}
	if k.sku != o.sku {
		return k.sku < o.sku
	}
	return k.workload < o.workload
}

func (v rowValue) digest() uint64 {
	var b [25]byte
	binary.LittleEndian.PutUint64(b[0:], uint64(v.a))
	binary.LittleEndian.PutUint64(b[8:], uint64(v.b))
	binary.LittleEndian.PutUint64(b[16:], uint64(v.c))
	if v.final {
		b[24] = 1
	}
	return xxhash.Sum64(b[:])
}

// update records v as the row's value and says whether it changed.
func (m *emittedRows) update(k rowKey, v rowValue) bool {
	sum := v.digest()
	rows := *m
	i := len(rows) // rows mostly come in order: look at the end first
	if i > 0 && !rows[i-1].key.less(k) {
		lo, hi := 0, i
		for lo < hi {
			mid := int(uint(lo+hi) >> 1)
			if rows[mid].key.less(k) {
				lo = mid + 1
			} else {
				hi = mid
			}
		}
		i = lo
	}
	if i < len(rows) && rows[i].key == k {
		if rows[i].sum == sum {
			return false
		}
		rows[i].sum = sum
		return true
	}
	rows = growTo(rows, len(rows)+1)
	copy(rows[i+1:], rows[i:])
	rows[i] = emittedRow{k, sum}
	*m = rows
	return true
}

// prune forgets rows of days before day, which can no longer change.
func (m *emittedRows) prune(day event.Day) {
	rows := *m
	n := 0
	for n < len(rows) && rows[n].key.day < day {
		n++
	}
	if n > 0 { // a new slice: the old one would keep its size
		*m = append(make(emittedRows, 0, len(rows)-n+len(rows)/8), rows[n:]...)
	}
}
