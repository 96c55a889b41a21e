package web

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/seatflow/seatflow/insights/store"
)

func TestChartAxes(t *testing.T) {
	p := func(v float64) *float64 { return &v }
	for _, c := range []struct {
		name    string
		points  []store.Point
		percent bool
		ticks   []string
	}{
		{"counts up to 5", []store.Point{{Date: "2026-10-01", Num: 5}, {Date: "2026-10-02", Num: 3}}, false, []string{"0", "2", "4", "6"}},
		{"counts in thousands", []store.Point{{Date: "2026-10-01", Num: 3400}}, false, []string{"0", "1,000", "2,000", "3,000", "4,000"}},
		{"percentages under 100", []store.Point{{Date: "2026-10-01", Pct: p(40)}, {Date: "2026-10-02", Pct: nil}}, true, []string{"0%", "25%", "50%", "75%", "100%"}},
		{"percentages over 100", []store.Point{{Date: "2026-10-01", Pct: p(250)}}, true, []string{"0%", "100%", "200%", "300%"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			ch := newChart("t", []store.Series{{Name: "s", Points: c.points}}, c.percent)
			var ticks []string
			for _, m := range regexp.MustCompile(`class="ylabel">([^<]*)<`).FindAllStringSubmatch(string(ch.SVG), -1) {
				ticks = append(ticks, m[1])
			}
			if !slices.Equal(ticks, c.ticks) {
				t.Errorf("ticks %v, want %v", ticks, c.ticks)
			}
			if !strings.Contains(string(ch.SVG), "<polyline") && !strings.Contains(string(ch.SVG), "<circle") {
				t.Errorf("nothing drawn: %s", ch.SVG)
			}
		})
	}
}

func TestFormatCount(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567", -4500: "-4,500"} {
		if got := formatCount(n); got != want {
			t.Errorf("formatCount(%d) = %q, want %q", n, got, want)
		}
	}
}
