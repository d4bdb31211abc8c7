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

package controllers

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	xdpgenv1alpha1 "github.com/xdpgen/xdpgen/api/v1alpha1"
	"github.com/xdpgen/xdpgen/test/monitoring"
)

// seriesIn counts c's series with the label namespace=ns.
func seriesIn(t *testing.T, c prometheus.Collector, ns string) int {
	t.Helper()
	ch := make(chan prometheus.Metric, 100)
	go func() { c.Collect(ch); close(ch) }()
	n := 0
	for m := range ch {
		var d dto.Metric
		if err := m.Write(&d); err != nil {
			t.Fatal(err)
		}
		for _, l := range d.GetLabel() {
			if l.GetName() == "namespace" && l.GetValue() == ns {
				n++
			}
		}
	}
	return n
}

// TestRunMetrics: a run's phase is one series per phase, 1 for its own (as kube-state-metrics exports a Job's),
// its nodes a series per phase, Lost included; both go with the TrafficGenerator. The manager's exposition holds
// every xdpgen_trafficgenerator_ metric the chart's dashboard and alerts use, and passes `promtool check metrics`.
func TestRunMetrics(t *testing.T) {
	key := types.NamespacedName{Namespace: "metrics-ns", Name: "run"}
	t.Cleanup(func() { unexportRun(key) })
	exportRun(key, xdpgenv1alpha1.TrafficGeneratorStatus{Phase: xdpgenv1alpha1.PhaseRunning, NodesRunning: 2, NodesLost: 1})
	exportRun(key, xdpgenv1alpha1.TrafficGeneratorStatus{Phase: xdpgenv1alpha1.PhaseFailed, NodesCompleted: 2, NodesLost: 1})
	want := `
# HELP xdpgen_trafficgenerator_phase The phase of the TrafficGenerator's run: 1 for its phase, 0 for the others.
# TYPE xdpgen_trafficgenerator_phase gauge
xdpgen_trafficgenerator_phase{name="run",namespace="metrics-ns",phase="Completed"} 0
xdpgen_trafficgenerator_phase{name="run",namespace="metrics-ns",phase="Failed"} 1
xdpgen_trafficgenerator_phase{name="run",namespace="metrics-ns",phase="Pending"} 0
xdpgen_trafficgenerator_phase{name="run",namespace="metrics-ns",phase="Running"} 0
# HELP xdpgen_trafficgenerator_nodes The nodes of the TrafficGenerator's run, by phase (Lost: the controller gave up on them).
# TYPE xdpgen_trafficgenerator_nodes gauge
xdpgen_trafficgenerator_nodes{name="run",namespace="metrics-ns",phase="Completed"} 2
xdpgen_trafficgenerator_nodes{name="run",namespace="metrics-ns",phase="Failed"} 0
xdpgen_trafficgenerator_nodes{name="run",namespace="metrics-ns",phase="Lost"} 1
xdpgen_trafficgenerator_nodes{name="run",namespace="metrics-ns",phase="Pending"} 0
xdpgen_trafficgenerator_nodes{name="run",namespace="metrics-ns",phase="Running"} 0
`
	if seriesIn(t, runPhaseMetric, key.Namespace) != 4 || seriesIn(t, runNodesMetric, key.Namespace) != 5 {
		t.Fatalf("%d phase and %d node series, want 4 and 5", seriesIn(t, runPhaseMetric, key.Namespace), seriesIn(t, runNodesMetric, key.Namespace))
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(runPhaseMetric, runNodesMetric)
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Error(err)
	}

	families, err := metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var text bytes.Buffer
	for _, f := range families {
		if strings.HasPrefix(f.GetName(), "xdpgen_") {
			if _, err := expfmt.MetricFamilyToText(&text, f); err != nil {
				t.Fatal(err)
			}
		}
	}
	if monitoring.CheckExported(t, "xdpgen_trafficgenerator_", families) == 0 {
		t.Error("the dashboard and the alerts use no xdpgen_trafficgenerator_ metric")
	}
	if promtool, err := exec.LookPath("promtool"); err != nil {
		t.Log("no promtool in PATH (Debian: apt-get install prometheus): the exposition is not linted")
	} else {
		cmd := exec.Command(promtool, "check", "metrics")
		cmd.Stdin = &text
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool check metrics: %v\n%s\n%s", err, out, text.String())
		}
	}

	unexportRun(key)
	if n := seriesIn(t, runPhaseMetric, key.Namespace) + seriesIn(t, runNodesMetric, key.Namespace); n != 0 {
		t.Errorf("%d series left after the TrafficGenerator was deleted", n)
	}
}
