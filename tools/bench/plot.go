package main

import (
	"fmt"
	"image/color"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// runColors tell the pipelines apart in the plot; rounds differ by dash pattern.
var runColors = map[string]color.Color{
	runAArticle: color.RGBA{R: 200, G: 60, B: 40, A: 255},
	runATuned:   color.RGBA{R: 230, G: 150, B: 30, A: 255},
	runB:        color.RGBA{R: 30, G: 90, B: 200, A: 255},
}

// floorRate is the bottom of the plot's log scale, in messages per second.
const floorRate = 100

var roundDashes = [][]vg.Length{nil, {vg.Points(6), vg.Points(3)}, {vg.Points(2), vg.Points(2)}, {vg.Points(8), vg.Points(2), vg.Points(2), vg.Points(2)}}

// writePlot draws messages per second over time of every pipeline run of workload w,
// as the sink counted them, to path (.png or .svg).
func writePlot(path string, w workload, n int, runs []result) error {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("%s workload, %d messages: A-article and A-tuned (stock) against B (execd pair)", w.name, n)
	p.X.Label.Text = "seconds since Telegraf started"
	// A log scale: B can be tens of times faster than A, which would flatten A's
	// curve to the axis; rates under floorRate (start-up, stalls) are drawn at it.
	p.Y.Label.Text = "messages/s at the sink, 1 s window (log)"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Legend.Top = true
	p.Add(plotter.NewGrid())
	top := 0.0
	for _, r := range runs {
		c, ok := runColors[r.kind]
		if r.workload != w.name || !ok || len(r.timeline) == 0 {
			continue
		}
		pts := make(plotter.XYs, 0, len(r.timeline)+1)
		pts = append(pts, plotter.XY{Y: floorRate})
		for i, s := range r.timeline {
			pts = append(pts, plotter.XY{X: s.at.Seconds(), Y: max(rateAt(r.timeline, i), floorRate)})
			top = max(top, pts[len(pts)-1].Y)
		}
		line, err := plotter.NewLine(pts)
		if err != nil {
			return fmt.Errorf("plotting %s round %d: %w", r.kind, r.round, err)
		}
		line.Color = c
		line.Width = vg.Points(1.5)
		line.Dashes = roundDashes[(r.round-1)%len(roundDashes)]
		p.Add(line)
		p.Legend.Add(fmt.Sprintf("%s round %d", r.kind, r.round), line)
	}
	// Room above the highest curve for the legend.
	p.Y.Min, p.Y.Max = floorRate, max(top*2, 10*floorRate)
	if err := p.Save(10*vg.Inch, 5*vg.Inch, path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
