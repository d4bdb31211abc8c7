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

// Package monitoring reads the PromQL of the chart's Grafana dashboard (charts/xdpgen/dashboards) and alerting
// rules (charts/xdpgen/alerts), for the tests that hold them against the metrics the code exports: the agent's and
// the manager's tests check that every name they use of theirs is in their exposition, and test/chart that each
// name is one of theirs.
package monitoring

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	sigsyaml "sigs.k8s.io/yaml"
)

// Expr is a PromQL expression of the dashboard or the rules, and where it is.
type Expr struct {
	Where  string
	PromQL string
}

// ChartDir is the chart's directory, found from this file's: tests run in their own package's directory.
func ChartDir(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("no caller information to find the chart")
	}
	return filepath.Join(filepath.Dir(file), "..", "..", "charts", "xdpgen")
}

// dashboard is what the tests read of a Grafana dashboard: its queries and its variables' queries.
type dashboard struct {
	Title  string  `json:"title"`
	Panels []panel `json:"panels"`
	// Templating holds the variables; a query variable's query is label_values(<selector>, <label>).
	Templating struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	Title   string `json:"title"`
	Type    string `json:"type"`
	Targets []struct {
		Expr         string `json:"expr"`
		LegendFormat string `json:"legendFormat"`
	} `json:"targets"`
	FieldConfig struct {
		Defaults struct {
			Unit string `json:"unit"`
		} `json:"defaults"`
	} `json:"fieldConfig"`
	// Panels are a collapsed row's.
	Panels []panel `json:"panels"`
}

// labelValues is a variable's query label_values(<selector>, <label>).
var labelValues = regexp.MustCompile(`^label_values\((.+),\s*(\w+)\)$`)

// Dashboards returns the PromQL of every dashboard file, each dashboard decoded as JSON (a file that is not valid
// JSON fails the test), with Grafana's variables in place: $__rate_interval, $__interval and $__range as 5m, 1m and
// 1h, and the dashboard's own variables as .* (every one of them is used with =~). A variable's label_values query
// gives its selector.
func Dashboards(t testing.TB) []Expr {
	t.Helper()
	var exprs []Expr
	intervals := Intervals{Rate: "5m", Interval: "1m", Range: "1h"}
	for _, d := range readDashboards(t) {
		for _, v := range d.variables {
			exprs = append(exprs, Expr{Where: v.Where, PromQL: d.substitute(t, v.Where, v.PromQL, intervals)})
		}
		for _, p := range d.panels(t, intervals) {
			for _, target := range p.Targets {
				exprs = append(exprs, Expr{Where: d.file + " panel " + p.Title, PromQL: target.PromQL})
			}
		}
	}
	return exprs
}

// Intervals are what Grafana puts in place of $__rate_interval, $__interval and $__range.
type Intervals struct{ Rate, Interval, Range string }

// Panel is a dashboard panel that queries, with Grafana's variables in place.
type Panel struct {
	Title, Type, Unit string
	Targets           []Target
}

// Target is one query of a panel, and how its series are named (Grafana's legendFormat: {{label}} for a label's
// value).
type Target struct {
	PromQL, Legend string
}

// Panels returns the panels of every dashboard file that query, in their order, with the dashboard's own
// variables as .* and Grafana's as intervals.
func Panels(t testing.TB, intervals Intervals) []Panel {
	t.Helper()
	var panels []Panel
	for _, d := range readDashboards(t) {
		panels = append(panels, d.panels(t, intervals)...)
	}
	return panels
}

// dashboardFile is a decoded dashboard file.
type dashboardFile struct {
	file string
	dashboard
	// vars are the dashboard's variables, longest first, so that $generator is replaced before a $gen would be.
	vars []string
	// variables are the selectors of its query variables.
	variables []Expr
}

func readDashboards(t testing.TB) []dashboardFile {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(ChartDir(t), "dashboards", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no dashboard in %s (%v)", filepath.Join(ChartDir(t), "dashboards"), err)
	}
	var out []dashboardFile
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		d := dashboardFile{file: filepath.Base(f)}
		if err := json.Unmarshal(raw, &d.dashboard); err != nil {
			t.Fatalf("dashboard %s is not valid JSON: %v", f, err)
		}
		for _, v := range d.Templating.List {
			d.vars = append(d.vars, v.Name)
			if v.Type != "query" {
				continue
			}
			q, _ := v.Query.(string)
			if m, ok := v.Query.(map[string]any); ok {
				q, _ = m["query"].(string)
			}
			sel := labelValues.FindStringSubmatch(q)
			if sel == nil {
				t.Fatalf("%s: variable %s's query %q is not label_values(<selector>, <label>)", f, v.Name, q)
			}
			d.variables = append(d.variables, Expr{Where: d.file + " variable " + v.Name, PromQL: sel[1]})
		}
		slices.SortFunc(d.vars, func(a, b string) int { return len(b) - len(a) })
		out = append(out, d)
	}
	return out
}

// substitute puts Grafana's variables and the dashboard's in a query.
func (d dashboardFile) substitute(t testing.TB, where, q string, intervals Intervals) string {
	t.Helper()
	q = strings.NewReplacer("$__rate_interval", intervals.Rate, "$__interval", intervals.Interval, "$__range", intervals.Range).Replace(q)
	for _, v := range d.vars {
		q = strings.ReplaceAll(q, "$"+v, ".*")
	}
	if strings.Contains(q, "$") {
		t.Errorf("%s: %q uses a variable the dashboard does not define", where, q)
	}
	return q
}

// panels are the dashboard's panels that query, collapsed rows' included.
func (d dashboardFile) panels(t testing.TB, intervals Intervals) []Panel {
	t.Helper()
	var out []Panel
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			if len(p.Targets) > 0 {
				out = append(out, Panel{Title: p.Title, Type: p.Type, Unit: p.FieldConfig.Defaults.Unit})
			}
			for _, target := range p.Targets {
				where := d.file + " panel " + p.Title
				if strings.TrimSpace(target.Expr) == "" {
					t.Fatalf("%s: a query without an expression", where)
				}
				last := &out[len(out)-1]
				last.Targets = append(last.Targets, Target{PromQL: d.substitute(t, where, target.Expr, intervals), Legend: target.LegendFormat})
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return out
}

// RuleFiles are the chart's alerting rule files.
func RuleFiles(t testing.TB) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(ChartDir(t), "alerts", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no rule file in %s (%v)", filepath.Join(ChartDir(t), "alerts"), err)
	}
	return files
}

// Rules returns the expression of every rule of the chart's rule files.
func Rules(t testing.TB) []Expr {
	t.Helper()
	var exprs []Expr
	for _, f := range RuleFiles(t) {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var rules struct {
			Groups []struct {
				Name  string `json:"name"`
				Rules []struct {
					Alert  string `json:"alert"`
					Record string `json:"record"`
					Expr   string `json:"expr"`
				} `json:"rules"`
			} `json:"groups"`
		}
		if err := sigsyaml.Unmarshal(raw, &rules); err != nil {
			t.Fatalf("rule file %s: %v", f, err)
		}
		for _, g := range rules.Groups {
			for _, r := range g.Rules {
				exprs = append(exprs, Expr{Where: filepath.Base(f) + " rule " + r.Alert + r.Record, PromQL: r.Expr})
			}
		}
	}
	if len(exprs) == 0 {
		t.Fatal("the rule files hold no rule")
	}
	return exprs
}

// metricName is an xdpgen metric name in PromQL: what the code exports all starts with xdpgen_.
var metricName = regexp.MustCompile(`\bxdpgen_[a-z0-9_]*[a-z0-9]`)

// Names are the xdpgen metric names a PromQL expression uses.
func Names(promql string) []string {
	return metricName.FindAllString(promql, -1)
}

// MetricNames maps every xdpgen metric name the dashboards and the rules use (a histogram's series by their own
// names: <name>_bucket, _sum, _count) to where they use it.
func MetricNames(t testing.TB) map[string][]string {
	t.Helper()
	names := map[string][]string{}
	for _, e := range append(Dashboards(t), Rules(t)...) {
		for _, n := range Names(e.PromQL) {
			names[n] = append(names[n], e.Where)
		}
	}
	return names
}

// CheckExported fails the test for every metric name starting with prefix that the dashboards or the rules use
// and that is not in the exposition families (a histogram family holds <name>_bucket, _sum and _count). It
// returns how many names it checked, for the caller to make sure that it checked any.
func CheckExported(t testing.TB, prefix string, families []*dto.MetricFamily) int {
	t.Helper()
	exported := map[string]bool{}
	for _, f := range families {
		exported[f.GetName()] = true
		if f.GetType() == dto.MetricType_HISTOGRAM {
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				exported[f.GetName()+suffix] = true
			}
		}
	}
	checked := 0
	for name, where := range MetricNames(t) {
		if !strings.HasPrefix(name, prefix) {
			continue
		}
		checked++
		if !exported[name] {
			t.Errorf("%s, used by %s, is not in the exposition", name, strings.Join(where, ", "))
		}
	}
	return checked
}
