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
	"bytes"
	"image/png"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestRender draws the chart's dashboard from made-up series: every panel with data is drawn and said to have
// data, the others are not; the picture is a PNG two panels wide.
func TestRender(t *testing.T) {
	panels := Panels(t, Intervals{Rate: "4s", Interval: "1s", Range: "30s"})
	t0 := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	fetch := func(q string) ([]Series, error) {
		if strings.Contains(q, "tcp") {
			return nil, nil // a udp run
		}
		var pts []Point
		for i := range 30 {
			pts = append(pts, Point{T: t0.Add(time.Duration(i) * time.Second), V: 20000 + float64(i%3)*100})
		}
		return []Series{{Labels: map[string]string{"node": "node1", "sender": "node2", "phase": "Completed"}, Points: pts}}, nil
	}
	var buf bytes.Buffer
	withData, err := Render(&buf, "xdpgen", panels, fetch)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range panels {
		tcp := slices.ContainsFunc(p.Targets, func(target Target) bool { return strings.Contains(target.PromQL, "tcp") })
		if slices.Contains(withData, p.Title) == tcp {
			t.Errorf("panel %q with data: %v", p.Title, !tcp)
		}
	}
	img, err := png.Decode(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() < 1000 || b.Dy() < 200*((len(panels)+1)/2) {
		t.Errorf("a %dx%d picture of %d panels", b.Dx(), b.Dy(), len(panels))
	}
	if out := os.Getenv("XDPGEN_RENDER_TEST_OUT"); out != "" {
		_ = os.WriteFile(out, buf.Bytes(), 0o644)
	}
}

func TestLegendAndUnits(t *testing.T) {
	labels := map[string]string{"sender": "node2", "node": "node1"}
	for format, want := range map[string]string{"{{sender}} > {{node}}": "node2 > node1", "{{ node }} p99": "node1 p99",
		"{{missing}}x": "x"} {
		if got := legend(format, labels); got != want {
			t.Errorf("legend(%q) = %q, want %q", format, got, want)
		}
	}
	for _, tc := range []struct {
		v    float64
		unit string
		want string
	}{{20000, "pps", "20 kpps"}, {1.5e9, "bps", "1.5 Gbit/s"}, {0.0000123, "s", "12.3 µs"}, {0, "pps", "0 pps"}, {0.25, "percentunit", "25%"}, {3, "none", "3"}} {
		if got := si(tc.v, tc.unit); got != tc.want {
			t.Errorf("si(%g, %s) = %q, want %q", tc.v, tc.unit, got, tc.want)
		}
	}
}
