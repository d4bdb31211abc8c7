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
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	xdpgenv1alpha1 "github.com/xdpgen/xdpgen/api/v1alpha1"
)

// The manager's Prometheus metrics, besides controller-runtime's, served on its metrics endpoint.

// statusWrites counts the controller's writes of TrafficGenerator status, the load it puts on the API server
// however many nodes report.
var statusWrites = prometheus.NewCounter(prometheus.CounterOpts{
	Name: "xdpgen_trafficgenerator_status_writes_total",
	Help: "Writes of TrafficGenerator status by the controller (coalesced to at most one per generator per status interval).",
})

// runPhaseMetric and runNodesMetric are each run's phase and its nodes by phase, as the controller last computed
// them, for alerts and dashboards (as kube-state-metrics exports a Job's status): they stay until the
// TrafficGenerator is deleted. Only the leader computes statuses, so only its series are set.
var (
	runPhaseMetric = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "xdpgen_trafficgenerator_phase",
		Help: "The phase of the TrafficGenerator's run: 1 for its phase, 0 for the others.",
	}, []string{"namespace", "name", "phase"})
	runNodesMetric = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "xdpgen_trafficgenerator_nodes",
		Help: "The nodes of the TrafficGenerator's run, by phase (Lost: the controller gave up on them).",
	}, []string{"namespace", "name", "phase"})
)

// runPhases are the phases of a run; a node has these and Lost.
var runPhases = []xdpgenv1alpha1.Phase{xdpgenv1alpha1.PhasePending, xdpgenv1alpha1.PhaseRunning,
	xdpgenv1alpha1.PhaseCompleted, xdpgenv1alpha1.PhaseFailed}

func init() {
	metrics.Registry.MustRegister(statusWrites, runPhaseMetric, runNodesMetric)
}

// exportRun sets the phase and node metrics of the TrafficGenerator key from its status.
func exportRun(key types.NamespacedName, st xdpgenv1alpha1.TrafficGeneratorStatus) {
	for _, p := range runPhases {
		v := 0.0
		if st.Phase == p {
			v = 1
		}
		runPhaseMetric.WithLabelValues(key.Namespace, key.Name, string(p)).Set(v)
	}
	for p, n := range map[xdpgenv1alpha1.Phase]int32{
		xdpgenv1alpha1.PhasePending: st.NodesPending, xdpgenv1alpha1.PhaseRunning: st.NodesRunning,
		xdpgenv1alpha1.PhaseCompleted: st.NodesCompleted, xdpgenv1alpha1.PhaseFailed: st.NodesFailed,
		xdpgenv1alpha1.PhaseLost: st.NodesLost,
	} {
		runNodesMetric.WithLabelValues(key.Namespace, key.Name, string(p)).Set(float64(n))
	}
}

// unexportRun removes the metrics of the TrafficGenerator key.
func unexportRun(key types.NamespacedName) {
	labels := prometheus.Labels{"namespace": key.Namespace, "name": key.Name}
	runPhaseMetric.DeletePartialMatch(labels)
	runNodesMetric.DeletePartialMatch(labels)
}
