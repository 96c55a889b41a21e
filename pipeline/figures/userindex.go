package figures

import mbits "math/bits"

// userIndex maps user fingerprints to dense indexes. It is a linear-probing
// table of 4-byte slots over the fingerprint list (which WriteState needs
// anyway): about 14 bytes a user, against about 37 for a Go map of
// uint64 to uint32 — the difference is most of a tracked user's budget.
// The table need not be a power of two (a fingerprint's home slot is its
// multiply-shift range reduction), so it grows by half rather than
// doubling, and sits about 3/4 full instead of 5/8.
type userIndex struct {
	fps   []uint64 // fingerprint of user i
	slots []uint32 // 0: empty; else index+1
}

// find returns the index of fp, if it is there.
func (x *userIndex) find(fp uint64) (uint32, bool) {
	if len(x.slots) == 0 {
		return 0, false
	}
	for i := x.home(fp); ; i = x.next(i) {
		s := x.slots[i]
		if s == 0 {
			return 0, false
		}
		if x.fps[s-1] == fp {
			return s - 1, true
		}
	}
}

// add adds fp, which must not be there, and returns its index.
func (x *userIndex) add(fp uint64) uint32 {
	if len(x.slots) == 0 {
		x.slots = make([]uint32, 16)
	}
	idx := uint32(len(x.fps))
	x.fps = growTo(x.fps, len(x.fps)+1)
	x.fps[idx] = fp
	if len(x.fps)*8 > len(x.slots)*7 { // linear probing stays quick up to 7/8 full
		x.rehash(len(x.slots) * 3 / 2)
	} else {
		x.place(fp, idx)
	}
	return idx
}

func (x *userIndex) home(fp uint64) uint64 {
	hi, _ := mbits.Mul64(fp, uint64(len(x.slots)))
	return hi
}

func (x *userIndex) next(i uint64) uint64 {
	if i++; i == uint64(len(x.slots)) {
		return 0
	}
	return i
}

func (x *userIndex) place(fp uint64, idx uint32) {
	i := x.home(fp)
	for x.slots[i] != 0 {
		i = x.next(i)
	}
	x.slots[i] = idx + 1
}

func (x *userIndex) rehash(size int) {
	x.slots = make([]uint32, size)
	for i, fp := range x.fps {
		x.place(fp, uint32(i))
	}
}

// load rebuilds the index from a fingerprint list (ReadState).
func (x *userIndex) load(fps []uint64) {
	x.fps = fps
	x.rehash(max(16, len(fps)+len(fps)/3))
}

func (x *userIndex) len() int { return len(x.fps) }

// trim gives the fingerprint list back its growth slack.
func (x *userIndex) trim() { x.fps = trim(x.fps) }

// trim returns s with no spare capacity beyond 1/16, copying if needed:
// columns grow by a quarter at a time, and at tens of millions of users the
// slack is several bytes a user.
func trim[T any](s []T) []T {
	if cap(s)-len(s) <= len(s)/16 {
		return s
	}
	return append(make([]T, 0, len(s)), s...)
}
