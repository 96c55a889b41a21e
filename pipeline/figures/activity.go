package figures

import (
	"cmp"
	"slices"
	"strings"

	"github.com/seatflow/seatflow/pipeline/event"
	"github.com/seatflow/seatflow/pipeline/row"
)

// activityLog holds the user_activity rows found since the last Emit. A
// backfill finds about one per usage event, millions between flushes, so
// it holds them without pointers (the garbage collector need not scan
// them, and there is no string per row): entries of 20 bytes, and the
// users' IDs in byte buffers. Both grow by chunks, never by copying: a
// slice grown from nothing to a million entries at every flush spent a
// tenth of the apply loop in copies. (Keeping the grown slices from flush
// to flush would hold a backfill's peak for good.)
type activityLog struct {
	entries [][]activityEntry // full chunks, then the one being filled
	ids     [][]byte          // likewise; an ID never spans two
	n       int
}

const (
	entryChunk = 1 << 15 // entries
	idChunkLog = 20      // an ID chunk holds 1 MB (IDs are at most event.MaxIDLength)
)

type activityEntry struct {
	tenant   uint32 // index in Engine.order
	user     uint32 // index in the tenant's userIndex
	idStart  uint32 // ID chunk << idChunkLog | offset in it: 4 GB of IDs between flushes
	day      event.Day
	idLen    uint16
	workload uint8
}

func (l *activityLog) add(tenant, user uint32, userID string, workload uint8, day event.Day) {
	if k := len(l.entries); k == 0 || len(l.entries[k-1]) == entryChunk {
		l.entries = append(l.entries, make([]activityEntry, 0, entryChunk))
	}
	if k := len(l.ids); k == 0 || len(l.ids[k-1])+len(userID) > 1<<idChunkLog {
		l.ids = append(l.ids, make([]byte, 0, 1<<idChunkLog))
	}
	k, ids := len(l.ids)-1, &l.ids[len(l.ids)-1]
	last := &l.entries[len(l.entries)-1]
	*last = append(*last, activityEntry{
		tenant: tenant, user: user, idStart: uint32(k)<<idChunkLog | uint32(len(*ids)), idLen: uint16(len(userID)), workload: workload, day: day,
	})
	*ids = append(*ids, userID...)
	l.n++
}

func (l *activityLog) len() int { return l.n }

// activityRows turns the log into rows stamped with version, and empties
// it. A user's days in a workload are folded, up to 64 to a row. The rows
// come in user_activity's key order (tenant_id, user_id, workload, date):
// ClickHouse skips its own sort for a sorted block, and these rows make
// the largest insert of a flush (bench/README.md has the figures). The order
// costs one string sort of each tenant's users in the log, not of the
// rows: tenants and workloads are few, and a counting sort by (user rank,
// workload) keeps the log's day order, which is nearly sorted already
// (only late events break it).
func (e *Engine) activityRows(version uint64) []row.Activity {
	l := &e.activity
	if l.n == 0 {
		return nil
	}
	// one copy of the IDs; each row's UserID is a substring of it
	var b strings.Builder
	size := 0
	for _, c := range l.ids {
		size += len(c)
	}
	b.Grow(size)
	chunkAt := make([]uint32, len(l.ids))
	for k, c := range l.ids {
		chunkAt[k] = uint32(b.Len())
		b.Write(c)
	}
	ids := b.String()
	id := func(a *activityEntry) string {
		from := chunkAt[a.idStart>>idChunkLog] + a.idStart&(1<<idChunkLog-1)
		return ids[from : from+uint32(a.idLen)]
	}

	// entries grouped by tenant, tenants in ID order
	count := make([]int, len(e.order)+1)
	for _, c := range l.entries {
		for i := range c {
			count[c[i].tenant+1]++
		}
	}
	var tenants []uint32
	for num, n := range count[1:] {
		if n > 0 {
			tenants = append(tenants, uint32(num))
		}
	}
	slices.SortFunc(tenants, func(a, b uint32) int { return cmp.Compare(e.order[a].id, e.order[b].id) })
	start := make([]int, len(e.order))
	pos := 0
	for _, num := range tenants {
		start[num] = pos
		pos += count[num+1]
	}
	grouped := make([]activityEntry, l.n)
	for _, c := range l.entries {
		for i := range c {
			a := &c[i]
			grouped[start[a.tenant]] = *a
			start[a.tenant]++
		}
	}
	*l = activityLog{}

	nw := len(e.workloads)
	wlRank := make([]int, nw)
	byName := make([]int, nw)
	for i := range byName {
		byName[i] = i
	}
	slices.SortFunc(byName, func(a, b int) int { return cmp.Compare(e.workloads[a], e.workloads[b]) })
	for r, w := range byName {
		wlRank[w] = r
	}

	// each tenant's entries in key order, in place
	var rank []uint32   // user index → 1 + rank among this tenant's users in the log
	var users []logUser // this tenant's users in the log
	var bucket []int    // (user rank, workload rank) → its first entry in sorted
	var sorted []activityEntry
	for seg := grouped; len(seg) > 0; {
		g := seg[:count[seg[0].tenant+1]]
		seg = seg[len(g):]
		t := e.order[g[0].tenant]
		rank = slices.Grow(rank[:0], t.users.len())[:t.users.len()]
		users = users[:0]
		for i := range g {
			if rank[g[i].user] == 0 {
				rank[g[i].user] = 1
				users = append(users, logUser{id: id(&g[i]), idx: g[i].user})
			}
		}
		sortByID(users)
		for r, u := range users {
			rank[u.idx] = uint32(r + 1)
		}
		key := func(a *activityEntry) int { return int(rank[a.user]-1)*nw + wlRank[a.workload] }
		bucket = slices.Grow(bucket[:0], len(users)*nw+1)[:len(users)*nw+1]
		clear(bucket)
		for i := range g {
			bucket[key(&g[i])+1]++
		}
		for b := 1; b < len(bucket); b++ {
			bucket[b] += bucket[b-1]
		}
		sorted = slices.Grow(sorted[:0], len(g))[:len(g)]
		for i := range g {
			k := key(&g[i])
			sorted[bucket[k]] = g[i]
			bucket[k]++
		}
		// within a (user, workload), days in order: insertion sort, as
		// the entries arrived nearly sorted
		for i := 1; i < len(sorted); i++ {
			for j := i; j > 0 && sorted[j].day < sorted[j-1].day && sorted[j].user == sorted[j-1].user && sorted[j].workload == sorted[j-1].workload; j-- {
				sorted[j], sorted[j-1] = sorted[j-1], sorted[j]
			}
		}
		copy(g, sorted)
		for _, u := range users {
			rank[u.idx] = 0
		}
	}

	// runs of one (tenant, user, workload) within 64 days of the run's
	// first become a row; counted first, so that out is allocated once
	next := func(i int) int {
		a := &grouped[i]
		for i++; i < len(grouped); i++ {
			b := &grouped[i]
			if b.tenant != a.tenant || b.user != a.user || b.workload != a.workload || b.day-a.day >= 64 {
				break
			}
		}
		return i
	}
	n := 0
	for i := 0; i < len(grouped); i = next(i) {
		n++
	}
	out := make([]row.Activity, 0, n)
	for i := 0; i < len(grouped); {
		a := &grouped[i]
		j := next(i)
		var days uint64
		for _, b := range grouped[i:j] {
			days |= 1 << (b.day - a.day)
		}
		out = append(out, row.Activity{
			TenantID: e.order[a.tenant].id, UserID: id(a), Workload: e.workloads[a.workload], First: a.day, Days: days, Version: version,
		})
		i = j
	}
	return out
}

// logUser is one of a tenant's users in the activity log.
type logUser struct {
	id  string
	key uint64 // see sortByID
	idx uint32 // in the tenant's userIndex
}

// sortByID sorts users by ID. It compares the eight bytes that follow
// the IDs' common prefix as one number, and whole IDs only when those tie:
// IDs often share a prefix ("tenant-0042-user-..."), and comparing
// strings was half of activityRows' time.
func sortByID(users []logUser) {
	if len(users) < 2 {
		return
	}
	common := users[0].id
	for _, u := range users[1:] {
		n := min(len(common), len(u.id))
		i := 0
		for i < n && common[i] == u.id[i] {
			i++
		}
		common = common[:i]
	}
	for i := range users {
		var k uint64
		rest := users[i].id[len(common):]
		for j := range 8 {
			k <<= 8
			if j < len(rest) {
				k |= uint64(rest[j])
			}
		}
		users[i].key = k
	}
	slices.SortFunc(users, func(a, b logUser) int {
		if c := cmp.Compare(a.key, b.key); c != 0 {
			return c
		}
		return strings.Compare(a.id, b.id)
	})
}
