package runner

import (
	"fmt"
	"testing"
)

func TestAssignUnits(t *testing.T) {
	units := []int{0, 1, 2, 3, 4, 5}
	cases := []struct {
		name string
		held map[string][]int
		want string
	}{
		{"one member takes all", map[string][]int{"a": nil}, "map[a:[0 1 2 3 4 5]]"},
		{"three new members share", map[string][]int{"a": nil, "b": nil, "c": nil}, "map[a:[0 3] b:[1 4] c:[2 5]]"},
		{"a second member takes half; the first keeps the rest",
			map[string][]int{"a": {0, 1, 2, 3, 4, 5}, "b": nil}, "map[a:[0 1 2] b:[3 4 5]]"},
		{"a member leaves: the others keep theirs and share its units",
			map[string][]int{"a": {0, 3}, "c": {2, 5}}, "map[a:[0 1 3] c:[2 4 5]]"},
		{"claims of a unit twice: the first member in ID order keeps it",
			map[string][]int{"a": {0, 1}, "b": {1, 2}, "c": nil}, "map[a:[0 1] b:[2 4] c:[3 5]]"},
		{"units that no longer exist are not kept", map[string][]int{"a": {7, 8}, "b": nil}, "map[a:[0 2 4] b:[1 3 5]]"},
		{"more members than units", map[string][]int{"a": {0}, "b": nil, "c": nil, "d": nil, "e": nil, "f": nil, "g": {5}},
			"map[a:[0] b:[1] c:[2] d:[3] e:[4] f:[] g:[5]]"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := assignUnits(c.held, units)
			if s := fmt.Sprint(got); s != c.want {
				t.Errorf("got %s, want %s", s, c.want)
			}
			seen := map[int]string{}
			for id, us := range got {
				if len(us) < len(units)/len(c.held) || len(us) > (len(units)+len(c.held)-1)/len(c.held) {
					t.Errorf("%s has %d units: unbalanced", id, len(us))
				}
				for _, u := range us {
					if other, ok := seen[u]; ok {
						t.Errorf("unit %d given to %s and %s", u, other, id)
					}
					seen[u] = id
				}
			}
			if len(seen) != len(units) {
				t.Errorf("%d of %d units given", len(seen), len(units))
			}
		})
	}
}
