package main

import (
	"fmt"
	"os"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"
)

// chart draws end-to-end throughput and heap per user against size, side
// by side, as SVG.
func chart(rep Report, path string) error {
	// panel plots results of the given names (a line each, named in the
	// legend when there are several) against their size
	panel := func(title, x, y string, scale float64, names ...string) (*plot.Plot, error) {
		p := plot.New()
		p.Title.Text, p.X.Label.Text, p.Y.Label.Text = title, x, y
		var lines []any
		for _, name := range names {
			var xy plotter.XYs
			for _, r := range rep.Results {
				if r.Name == name && r.Size > 0 {
					xy = append(xy, plotter.XY{X: float64(r.Size) / 1e6, Y: r.Value * scale})
				}
			}
			if len(xy) == 0 {
				continue
			}
			if len(names) > 1 {
				lines = append(lines, name)
			}
			lines = append(lines, xy)
		}
		if len(lines) > 0 {
			if err := plotutil.AddLinePoints(p, lines...); err != nil {
				return nil, err
			}
		}
		p.Legend.Top, p.Legend.Left = false, false // bottom right: the lines rise with size
		p.X.Min, p.Y.Min = 0, 0
		return p, nil
	}
	tp, err := panel("End to end: broker, pipeline, ClickHouse", "events (millions)", "thousand events/s", 1e-3,
		"end to end", "end to end, figures only")
	if err != nil {
		return err
	}
	mem, err := panel("Heap per tracked user", "users (millions)", "bytes", 1, "heap per tracked user")
	if err != nil {
		return err
	}
	const w, h = 9 * vg.Inch, 3.5 * vg.Inch
	img := vgsvg.New(w, h)
	tiles := draw.Tiles{Rows: 1, Cols: 2, PadX: vg.Millimeter * 6, PadY: vg.Millimeter * 4,
		PadTop: vg.Millimeter * 2, PadBottom: vg.Millimeter * 2, PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 2}
	canvases := plot.Align([][]*plot.Plot{{tp, mem}}, tiles, draw.New(img))
	tp.Draw(canvases[0][0])
	mem.Draw(canvases[0][1])
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := img.WriteTo(f); err != nil {
		return fmt.Errorf("chart: %w", err)
	}
	return nil
}
