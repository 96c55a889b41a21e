package row

import (
	"slices"
	"strings"
	"testing"
)

// The activity rows of three units, each in key order, end in key order,
// and every other table's rows are all there.
func TestJoin(t *testing.T) {
	unit := func(tenants ...string) []Activity {
		var out []Activity
		for _, tn := range tenants {
			for _, u := range []string{"u1", "u2"} {
				out = append(out, Activity{TenantID: tn, UserID: u, Workload: "teams"})
			}
		}
		return out
	}
	var sets []Set
	for _, u := range [][]Activity{unit("t-3", "t-7"), unit("t-1", "t-5"), nil, unit("t-2")} {
		sets = append(sets, Set{Activity: u, Deployment: []Deployment{{TenantID: "t"}}})
	}
	s := Join(sets)
	if len(s.Deployment) != 4 {
		t.Errorf("%d deployment rows, want 4", len(s.Deployment))
	}
	key := func(a Activity) string { return a.TenantID + "/" + a.UserID }
	if !slices.IsSortedFunc(s.Activity, func(a, b Activity) int { return strings.Compare(key(a), key(b)) }) || len(s.Activity) != 10 {
		t.Errorf("not in key order: %v", s.Activity)
	}
}
