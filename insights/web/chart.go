package web

import (
	"fmt"
	"html/template"
	"math"
	"slices"
	"strings"

	"github.com/seatflow/seatflow/insights/store"
)

// palette colours a chart's lines, in order; readable on white and for
// the common colour blindnesses (Okabe and Ito's).
var palette = []string{"#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"}

// chartLine is one line of a chart: a series drawn as percentages, or as
// counts (its numerators) when the chart is of counts.
type chartLine struct {
	Name   string
	Points []store.Point
	Colour string
}

// chart is an SVG line chart drawn on the server: the pages need no
// script, and nothing is fetched from elsewhere.
type chart struct {
	Title string
	Lines []chartLine
	SVG   template.HTML
}

const (
	chartW, chartH         = 420, 180
	padL, padR, padT, padB = 44, 10, 10, 24
	plotW, plotH           = chartW - padL - padR, chartH - padT - padB
)

// newChart draws series as percentages (percent) or counts over the union
// of their days; days a series lacks, or whose percentage is undefined,
// break its line.
func newChart(title string, series []store.Series, percent bool) chart {
	c := chart{Title: title}
	var days []string
	for _, s := range series {
		for _, p := range s.Points {
			days = append(days, p.Date)
		}
	}
	slices.Sort(days)
	days = slices.Compact(days)
	value := func(p store.Point) (float64, bool) {
		if percent {
			if p.Pct == nil {
				return 0, false
			}
			return *p.Pct, true
		}
		return float64(p.Num), true
	}
	top := 0.0
	for _, s := range series {
		for _, p := range s.Points {
			if v, ok := value(p); ok {
				top = max(top, v)
			}
		}
	}
	// ticks at a round step: 25 % up to 100 %, else 1, 2 or 5 times a
	// power of ten, about four of them
	step := niceCeil(top / 4)
	if percent && top <= 100 {
		step = 25
	}
	top = max(step*math.Ceil(top/step), step)
	if percent {
		top = max(top, 100)
	}
	ticks := int(math.Round(top / step))
	x := func(day string) float64 {
		i, _ := slices.BinarySearch(days, day)
		if len(days) < 2 {
			return padL + plotW/2
		}
		return padL + float64(i)*plotW/float64(len(days)-1)
	}
	y := func(v float64) float64 { return padT + plotH - v/top*plotH }

	var b strings.Builder
	fmt.Fprintf(&b, `<svg viewBox="0 0 %d %d" role="img" aria-label="%s" class="chart" data-lines="%d">`, chartW, chartH, template.HTMLEscapeString(title), len(series))
	for i := 0; i <= ticks; i++ {
		v := step * float64(i)
		label := formatCount(int64(v))
		if percent {
			label = fmt.Sprintf("%.0f%%", v)
		}
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" class="grid"/><text x="%d" y="%.1f" class="ylabel">%s</text>`,
			padL, chartW-padR, y(v), y(v), padL-6, y(v)+4, label)
	}
	if percent && top > 100 {
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" class="hundred"/>`, padL, chartW-padR, y(100), y(100))
	}
	if len(days) > 0 {
		fmt.Fprintf(&b, `<text x="%d" y="%d" class="xlabel" text-anchor="start">%s</text>`, padL, chartH-6, days[0])
		fmt.Fprintf(&b, `<text x="%d" y="%d" class="xlabel" text-anchor="end">%s</text>`, chartW-padR, chartH-6, days[len(days)-1])
	}
	for i, s := range series {
		colour := palette[i%len(palette)]
		c.Lines = append(c.Lines, chartLine{Name: s.Name, Points: s.Points, Colour: colour})
		// a line per run of consecutive days with a value; a lone day is a dot
		var seg []string
		var lx, ly float64
		end := func() {
			if len(seg) == 1 {
				fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="2.5" fill="%s"/>`, lx, ly, colour)
			} else if len(seg) > 1 {
				fmt.Fprintf(&b, `<polyline points="%s" stroke="%s" class="line"><title>%s</title></polyline>`, strings.Join(seg, " "), colour, template.HTMLEscapeString(s.Name))
			}
			seg = seg[:0]
		}
		prev := -2
		for _, p := range s.Points {
			i, _ := slices.BinarySearch(days, p.Date)
			v, ok := value(p)
			if !ok || i != prev+1 {
				end()
			}
			if ok {
				lx, ly = x(p.Date), y(v)
				seg = append(seg, fmt.Sprintf("%.1f,%.1f", lx, ly))
			}
			prev = i
		}
		end()
	}
	b.WriteString(`</svg>`)
	c.SVG = template.HTML(b.String())
	return c
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

// formatCount writes n with thousands separators: 12,345.
func formatCount(n int64) string {
	s := fmt.Sprint(n)
	if n < 0 {
		return "-" + formatCount(-n)
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// formatPct writes a percentage with one decimal, or an en dash when it
// is undefined (nothing sold or qualified).
func formatPct(p *float64) string {
	if p == nil {
		return "–"
	}
	return fmt.Sprintf("%.1f%%", *p)
}

// formatChange writes a change in percentage points with its sign.
func formatChange(p *float64) string {
	if p == nil {
		return "–"
	}
	return fmt.Sprintf("%+.1f pt", *p)
}
