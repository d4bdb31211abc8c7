/*
Copyright 2026 The xdpgen Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package monitoring

import (
	"fmt"
	"image/color"
	"io"
	"math"
	"regexp"
	"slices"
	"strings"
	"time"

	xfont "golang.org/x/image/font"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// Series is one series a query returned over a time range.
type Series struct {
	Labels map[string]string
	Points []Point
}

// Point is a sample of a series.
type Point struct {
	T time.Time
	V float64
}

// Fetch returns what a query gives over the rendered range.
type Fetch func(promql string) ([]Series, error)

// Render draws the dashboard's panels as a PNG, two to a row, from the series fetch returns for their queries:
// the dashboard's picture where no Grafana runs (Debian and npm package none). Time series panels are drawn as
// lines, stat and table panels as their last values. It returns the panels that had data.
func Render(w io.Writer, title string, panels []Panel, fetch Fetch) (withData []string, err error) {
	const cols = 2
	rows := (len(panels) + cols - 1) / cols
	plots := make([][]*plot.Plot, rows)
	for i := range plots {
		plots[i] = make([]*plot.Plot, cols)
	}
	for i, p := range panels {
		pl, hasData, err := renderPanel(p, fetch)
		if err != nil {
			return nil, fmt.Errorf("panel %s: %w", p.Title, err)
		}
		if hasData {
			withData = append(withData, p.Title)
		}
		plots[i/cols][i%cols] = pl
	}
	const panelWidth, panelHeight = 9 * vg.Inch, 3.6 * vg.Inch
	img := vgimg.NewWith(vgimg.UseWH(cols*panelWidth, vg.Length(rows)*panelHeight+0.5*vg.Inch), vgimg.UseDPI(72))
	dc := draw.New(img)
	dc.SetColor(color.White)
	dc.Fill(dc.Path())
	bold := plot.DefaultFont
	bold.Weight = xfont.WeightBold
	heading := draw.TextStyle{Color: color.Black, Font: font.From(bold, 18), Handler: plot.DefaultTextHandler,
		XAlign: draw.XCenter, YAlign: draw.YTop}
	dc.FillText(heading, vg.Point{X: dc.Max.X / 2, Y: dc.Max.Y - 0.1*vg.Inch}, title)
	dc.Max.Y -= 0.5 * vg.Inch
	tiles := draw.Tiles{Rows: rows, Cols: cols, PadX: 0.2 * vg.Inch, PadY: 0.2 * vg.Inch,
		PadTop: 0.1 * vg.Inch, PadBottom: 0.1 * vg.Inch, PadLeft: 0.1 * vg.Inch, PadRight: 0.1 * vg.Inch}
	canvases := plot.Align(plots, tiles, dc)
	for r := range plots {
		for c := range plots[r] {
			if plots[r][c] != nil {
				plots[r][c].Draw(canvases[r][c])
			}
		}
	}
	_, err = vgimg.PngCanvas{Canvas: img}.WriteTo(w)
	return withData, err
}

// renderPanel draws one panel.
func renderPanel(p Panel, fetch Fetch) (*plot.Plot, bool, error) {
	pl := plot.New()
	pl.Title.Text = p.Title
	pl.Title.TextStyle.Font.Size = 14
	var named []namedSeries
	for _, target := range p.Targets {
		series, err := fetch(target.PromQL)
		if err != nil {
			return nil, false, err
		}
		for _, s := range series {
			if len(s.Points) > 0 {
				named = append(named, namedSeries{name: legend(target.Legend, s.Labels), Series: s})
			}
		}
	}
	slices.SortStableFunc(named, func(a, b namedSeries) int { return strings.Compare(a.name, b.name) })
	if len(named) == 0 {
		pl.HideAxes()
		pl.Title.Text += " — no data in this run"
		return pl, false, nil
	}
	if p.Type != "timeseries" {
		return lastValues(pl, p.Unit, named)
	}
	pl.X.Tick.Marker = plot.TimeTicks{Format: "15:04:05"}
	pl.Y.Tick.Marker = siTicks{unit: p.Unit}
	pl.Add(plotter.NewGrid())
	// The legend goes in a band above the highest line.
	pl.Legend.Top, pl.Legend.Left = true, true
	highest := 0.0
	for _, s := range named {
		for _, pt := range s.Points {
			highest = max(highest, pt.V)
		}
	}
	if highest == 0 {
		highest = 1 // all zero: a line at the bottom of a plain axis
	}
	pl.Y.Min, pl.Y.Max = 0, highest*(1.15+0.12*float64(len(named)))
	for i, s := range named {
		xys := make(plotter.XYs, len(s.Points))
		for j, pt := range s.Points {
			xys[j] = plotter.XY{X: float64(pt.T.Unix()), Y: pt.V}
		}
		line, err := plotter.NewLine(xys)
		if err != nil {
			return nil, false, err
		}
		line.Color = plotutil.Color(i)
		line.Width = vg.Points(2)
		pl.Add(line)
		pl.Legend.Add(s.name, line)
	}
	return pl, true, nil
}

type namedSeries struct {
	name string
	Series
}

// lastValues draws a stat or table panel: each series' name and last value, one per line.
func lastValues(pl *plot.Plot, unit string, named []namedSeries) (*plot.Plot, bool, error) {
	pl.HideAxes()
	var xys plotter.XYLabels
	for i, s := range named {
		v := s.Points[len(s.Points)-1].V
		xys.XYs = append(xys.XYs, plotter.XY{X: 0, Y: float64(len(named) - i)})
		xys.Labels = append(xys.Labels, fmt.Sprintf("%s: %s", s.name, si(v, unit)))
	}
	labels, err := plotter.NewLabels(xys)
	if err != nil {
		return nil, false, err
	}
	for i := range labels.TextStyle {
		labels.TextStyle[i].Font.Size = 16
	}
	pl.Add(labels)
	pl.X.Min, pl.X.Max = -0.05, 1
	pl.Y.Min, pl.Y.Max = 0, float64(len(named)+1)
	return pl, true, nil
}

// legendLabel is {{label}} in a legend format.
var legendLabel = regexp.MustCompile(`\{\{\s*(\w+)\s*\}\}`)

// legend names a series as Grafana does from a legend format.
func legend(format string, labels map[string]string) string {
	if format == "" {
		return fmt.Sprint(labels)
	}
	return legendLabel.ReplaceAllStringFunc(format, func(m string) string {
		return labels[legendLabel.FindStringSubmatch(m)[1]]
	})
}

// siTicks labels an axis with SI prefixes and the panel's unit, as Grafana does.
type siTicks struct{ unit string }

func (s siTicks) Ticks(min, max float64) []plot.Tick {
	ticks := plot.DefaultTicks{}.Ticks(min, max)
	for i := range ticks {
		if ticks[i].Label != "" {
			ticks[i].Label = si(ticks[i].Value, s.unit)
		}
	}
	return ticks
}

// units are how Grafana's units read after a value.
var units = map[string]string{"pps": "pps", "bps": "bit/s", "s": "s", "short": "", "none": "", "percentunit": "%"}

// si writes a value with an SI prefix and the unit.
func si(v float64, unit string) string {
	suffix, ok := units[unit]
	if !ok {
		suffix = unit
	}
	if unit == "percentunit" {
		return fmt.Sprintf("%.3g%%", 100*v)
	}
	prefixes := []struct {
		scale float64
		name  string
	}{{1e12, "T"}, {1e9, "G"}, {1e6, "M"}, {1e3, "k"}, {1, ""}, {1e-3, "m"}, {1e-6, "µ"}, {1e-9, "n"}}
	for _, p := range prefixes {
		if math.Abs(v) >= p.scale {
			return strings.TrimSpace(fmt.Sprintf("%.3g %s%s", v/p.scale, p.name, suffix))
		}
	}
	return strings.TrimSpace(fmt.Sprintf("%.3g %s", v, suffix))
}
