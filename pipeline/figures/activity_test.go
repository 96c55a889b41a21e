package figures_test

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/seatflow/seatflow/pipeline/event"
)

// User IDs that share prefixes, are prefixes of each other, differ only
// past eight bytes, or hold NUL and high bytes: the activity rows must
// still come in key order (the order check is in table.flush) and be all
// there.
func TestActivityRowsOrderAwkwardIDs(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	alphabet := []byte("ab\x00\xff~0")
	prefixes := []string{"", "user-", "tenant-0042-user-", "x"}
	start := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	for round := range 200 {
		e := oneSourceEngine(t)
		tb := newTable()
		want := map[string]bool{}
		for i := range 1 + rng.IntN(60) {
			id := []byte(prefixes[rng.IntN(len(prefixes))])
			for range rng.IntN(14) {
				id = append(id, alphabet[rng.IntN(len(alphabet))])
			}
			if len(id) == 0 {
				id = append(id, 'z')
			}
			ev := event.Event{Kind: event.Usage, EventID: "x", OccurredAt: start + int64(i)*int64(time.Second),
				TenantID: "t-1", UserID: string(id), Workload: "teams"}
			if _, r, err := e.Apply(0, &ev); err != nil || r != nil {
				t.Fatal(err, r)
			}
			want[string(id)] = true
		}
		rows := tb.flush(t, e)
		if len(rows.Activity) != len(want) {
			t.Fatalf("round %d: %d activity rows for %d users", round, len(rows.Activity), len(want))
		}
	}
}
