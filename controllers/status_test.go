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
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	xdpgenv1alpha1 "github.com/xdpgen/xdpgen/api/v1alpha1"
)

var (
	t0  = metav1.NewTime(time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC))
	t10 = metav1.NewTime(t0.Add(10 * time.Second))
	t20 = metav1.NewTime(t0.Add(20 * time.Second))
	t30 = metav1.NewTime(t0.Add(30 * time.Second))
	now = metav1.NewTime(t0.Add(time.Minute))
)

// observedDaemonSet is an agent DaemonSet the DaemonSet controller has looked at.
func observedDaemonSet(desired, ready int32) *appsv1.DaemonSet {
	return &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: "xdpgen-udp", Generation: 2},
		Status:     appsv1.DaemonSetStatus{ObservedGeneration: 2, DesiredNumberScheduled: desired, NumberReady: ready},
	}
}

type reportOpt func(*xdpgenv1alpha1.NodeReport)

func report(node string, gen int64, phase xdpgenv1alpha1.Phase, packets int64, opts ...reportOpt) xdpgenv1alpha1.NodeReport {
	r := xdpgenv1alpha1.NodeReport{
		ObjectMeta: metav1.ObjectMeta{Name: "udp-" + node},
		Spec:       xdpgenv1alpha1.NodeReportSpec{Generator: "udp", NodeName: node},
		Status: xdpgenv1alpha1.NodeReportStatus{
			Generation:       gen,
			Phase:            phase,
			Packets:          packets,
			Bytes:            packets * 64,
			PacketsPerSecond: packets / 10,
			BitsPerSecond:    packets / 10 * 64 * 8,
		},
	}
	for _, o := range opts {
		o(&r)
	}
	return r
}

func started(t metav1.Time) reportOpt {
	return func(r *xdpgenv1alpha1.NodeReport) { r.Status.StartTime = t.DeepCopy() }
}
func completedAt(t metav1.Time) reportOpt {
	return func(r *xdpgenv1alpha1.NodeReport) { r.Status.CompletionTime = t.DeepCopy() }
}
func message(m string) reportOpt {
	return func(r *xdpgenv1alpha1.NodeReport) { r.Status.Message = m }
}

func summary(r xdpgenv1alpha1.NodeReport) xdpgenv1alpha1.NodeSummary {
	return xdpgenv1alpha1.NodeSummary{
		Node: r.Spec.NodeName, Phase: r.Status.Phase, Packets: r.Status.Packets, Bytes: r.Status.Bytes,
		PacketsPerSecond: r.Status.PacketsPerSecond, BitsPerSecond: r.Status.BitsPerSecond,
	}
}

func cond(typ string, status metav1.ConditionStatus, reason, msg string) metav1.Condition {
	return metav1.Condition{Type: typ, Status: status, Reason: reason, Message: msg, ObservedGeneration: 2, LastTransitionTime: now}
}

func TestStatusFor(t *testing.T) {
	const (
		ready       = xdpgenv1alpha1.ConditionReady
		progressing = xdpgenv1alpha1.ConditionProgressing
		degraded    = xdpgenv1alpha1.ConditionDegraded
		yes, no     = metav1.ConditionTrue, metav1.ConditionFalse
	)
	notDegraded := cond(degraded, no, xdpgenv1alpha1.ReasonAsExpected, "no node failed")

	runA := report("a", 2, xdpgenv1alpha1.PhaseRunning, 1000, started(t10))
	runB := report("b", 2, xdpgenv1alpha1.PhaseRunning, 3000, started(t0))
	pendC := report("c", 2, "", 0)
	oldD := report("d", 1, xdpgenv1alpha1.PhaseCompleted, 99999, started(t0), completedAt(t10))
	doneA := report("a", 2, xdpgenv1alpha1.PhaseCompleted, 5000, started(t10), completedAt(t20))
	doneB := report("b", 2, xdpgenv1alpha1.PhaseCompleted, 7000, started(t0), completedAt(t30))
	doneC := report("c", 2, xdpgenv1alpha1.PhaseCompleted, 6000, started(t0), completedAt(t10))
	failC := report("c", 2, xdpgenv1alpha1.PhaseFailed, 10, started(t0), completedAt(t10), message("interface eth9 not found"))

	completedStatus := xdpgenv1alpha1.TrafficGeneratorStatus{
		Phase:              xdpgenv1alpha1.PhaseCompleted,
		ObservedGeneration: 2,
		NodesTotal:         3,
		NodesSummary:       "0/3",
		Totals:             xdpgenv1alpha1.Totals{Packets: 18000, Bytes: 18000 * 64},
		Nodes:              []xdpgenv1alpha1.NodeSummary{summary(doneA), summary(doneB), summary(doneC)},
		StartTime:          &t0,
		CompletionTime:     &t30,
		Conditions: []metav1.Condition{
			cond(ready, yes, xdpgenv1alpha1.ReasonAgentsReady, "3/3 agents ready"),
			cond(progressing, no, xdpgenv1alpha1.ReasonRunCompleted, "all 3 nodes completed"),
			notDegraded,
		},
	}

	tests := []struct {
		name       string
		generation int64
		old        xdpgenv1alpha1.TrafficGeneratorStatus
		ds         *appsv1.DaemonSet
		reports    []xdpgenv1alpha1.NodeReport
		want       xdpgenv1alpha1.TrafficGeneratorStatus
	}{
		{
			name: "nothing yet",
			want: xdpgenv1alpha1.TrafficGeneratorStatus{
				Phase: xdpgenv1alpha1.PhasePending, ObservedGeneration: 2, NodesSummary: "0/0",
				Conditions: []metav1.Condition{
					cond(ready, no, xdpgenv1alpha1.ReasonWaitingForAgents, "the agent DaemonSet xdpgen-udp is not created yet"),
					cond(progressing, yes, xdpgenv1alpha1.ReasonWaitingForAgents, "waiting for the nodes to start sending: 0/0 reported for generation 2"),
					notDegraded,
				},
			},
		},
		{
			name: "DaemonSet not yet seen by the DaemonSet controller",
			ds:   &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Generation: 1}},
			want: xdpgenv1alpha1.TrafficGeneratorStatus{
				Phase: xdpgenv1alpha1.PhasePending, ObservedGeneration: 2, NodesSummary: "0/0",
				Conditions: []metav1.Condition{
					cond(ready, no, xdpgenv1alpha1.ReasonWaitingForAgents, "waiting for the DaemonSet controller to schedule the agents"),
					cond(progressing, yes, xdpgenv1alpha1.ReasonWaitingForAgents, "waiting for the nodes to start sending: 0/0 reported for generation 2"),
					notDegraded,
				},
			},
		},
		{
			name: "no node matches",
			ds:   observedDaemonSet(0, 0),
			want: xdpgenv1alpha1.TrafficGeneratorStatus{
				Phase: xdpgenv1alpha1.PhasePending, ObservedGeneration: 2, NodesSummary: "0/0",
				Conditions: []metav1.Condition{
					cond(ready, no, xdpgenv1alpha1.ReasonNoMatchingNodes, "no node matches spec.nodeSelector and spec.tolerations: label a node or change the selector"),
					cond(progressing, yes, xdpgenv1alpha1.ReasonWaitingForAgents, "waiting for the nodes to start sending: 0/0 reported for generation 2"),
					notDegraded,
				},
			},
		},
		{
			name: "agents starting",
			ds:   observedDaemonSet(3, 1),
			want: xdpgenv1alpha1.TrafficGeneratorStatus{
				Phase: xdpgenv1alpha1.PhasePending, ObservedGeneration: 2, NodesTotal: 3, NodesSummary: "0/3",
				Conditions: []metav1.Condition{
					cond(ready, no, xdpgenv1alpha1.ReasonAgentsNotReady, "1/3 agents ready"),
					cond(progressing, yes, xdpgenv1alpha1.ReasonWaitingForAgents, "waiting for the nodes to start sending: 0/3 reported for generation 2"),
					notDegraded,
				},
			},
		},
		{
			name:    "running: rates of running nodes, reports of other generations ignored",
			ds:      observedDaemonSet(3, 3),
			reports: []xdpgenv1alpha1.NodeReport{pendC, oldD, runB, runA},
			want: xdpgenv1alpha1.TrafficGeneratorStatus{
				Phase: xdpgenv1alpha1.PhaseRunning, ObservedGeneration: 2, NodesRunning: 2, NodesTotal: 3, NodesSummary: "2/3",
				Totals:    xdpgenv1alpha1.Totals{Packets: 4000, Bytes: 4000 * 64, PacketsPerSecond: 400, BitsPerSecond: 400 * 64 * 8},
				Nodes:     []xdpgenv1alpha1.NodeSummary{summary(runA), summary(runB), {Node: "c", Phase: xdpgenv1alpha1.PhasePending}},
				StartTime: &t0,
				Conditions: []metav1.Condition{
					cond(ready, yes, xdpgenv1alpha1.ReasonAgentsReady, "3/3 agents ready"),
					cond(progressing, yes, xdpgenv1alpha1.ReasonRunning, "2/3 nodes sending, 0 finished"),
					notDegraded,
				},
			},
		},
		{
			name:    "some nodes done, one still to report: running",
			ds:      observedDaemonSet(3, 3),
			reports: []xdpgenv1alpha1.NodeReport{doneA, doneB},
			want: xdpgenv1alpha1.TrafficGeneratorStatus{
				Phase: xdpgenv1alpha1.PhaseRunning, ObservedGeneration: 2, NodesTotal: 3, NodesSummary: "0/3",
				Totals:    xdpgenv1alpha1.Totals{Packets: 12000, Bytes: 12000 * 64},
				Nodes:     []xdpgenv1alpha1.NodeSummary{summary(doneA), summary(doneB)},
				StartTime: &t0, CompletionTime: nil,
				Conditions: []metav1.Condition{
					cond(ready, yes, xdpgenv1alpha1.ReasonAgentsReady, "3/3 agents ready"),
					cond(progressing, yes, xdpgenv1alpha1.ReasonRunning, "0/3 nodes sending, 2 finished"),
					notDegraded,
				},
			},
		},
		{
			name:    "every node completed",
			ds:      observedDaemonSet(3, 3),
			reports: []xdpgenv1alpha1.NodeReport{doneC, doneB, doneA},
			want:    completedStatus,
		},
		{
			name:    "a node failed",
			ds:      observedDaemonSet(3, 3),
			reports: []xdpgenv1alpha1.NodeReport{doneA, doneB, failC},
			want: xdpgenv1alpha1.TrafficGeneratorStatus{
				Phase: xdpgenv1alpha1.PhaseFailed, ObservedGeneration: 2, NodesTotal: 3, NodesSummary: "0/3",
				Totals: xdpgenv1alpha1.Totals{Packets: 12010, Bytes: 12010 * 64},
				Nodes: []xdpgenv1alpha1.NodeSummary{summary(doneA), summary(doneB), func() xdpgenv1alpha1.NodeSummary {
					s := summary(failC)
					s.LastError = "interface eth9 not found"
					return s
				}()},
				StartTime: &t0, CompletionTime: &t30,
				Conditions: []metav1.Condition{
					cond(ready, yes, xdpgenv1alpha1.ReasonAgentsReady, "3/3 agents ready"),
					cond(progressing, no, xdpgenv1alpha1.ReasonRunFailed, "1 of 3 nodes failed: c: interface eth9 not found"),
					cond(degraded, yes, xdpgenv1alpha1.ReasonNodeFailed, "1 of 3 nodes failed: c: interface eth9 not found"),
				},
			},
		},
		{
			name: "finished and agents removed: the verdict and the totals stay",
			old:  completedStatus,
			want: func() xdpgenv1alpha1.TrafficGeneratorStatus {
				s := *completedStatus.DeepCopy()
				s.Conditions[0] = cond(ready, no, xdpgenv1alpha1.ReasonAgentsRemoved, "the run is over and the agents are removed")
				return s
			}(),
		},
		{
			name:       "a new generation after a finished run starts over",
			generation: 3,
			old:        completedStatus,
			reports:    []xdpgenv1alpha1.NodeReport{doneA, doneB, doneC},
			want: xdpgenv1alpha1.TrafficGeneratorStatus{
				Phase: xdpgenv1alpha1.PhasePending, ObservedGeneration: 3, NodesSummary: "0/0",
				Conditions: func() []metav1.Condition {
					c := []metav1.Condition{
						cond(ready, no, xdpgenv1alpha1.ReasonWaitingForAgents, "the agent DaemonSet xdpgen-udp is not created yet"),
						cond(progressing, yes, xdpgenv1alpha1.ReasonWaitingForAgents, "waiting for the nodes to start sending: 0/0 reported for generation 3"),
						notDegraded,
					}
					for i := range c {
						c[i].ObservedGeneration = 3
					}
					return c
				}(),
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tg := testGenerator()
			tg.Generation = 2
			if tc.generation != 0 {
				tg.Generation = tc.generation
			}
			tg.Status = *tc.old.DeepCopy()
			got := statusFor(tg, tc.ds, tc.reports, now)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("statusFor mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestStatusForKeepsTransitionTimes checks that an unchanged world gives an unchanged status, so that the
// controller does not write it again.
func TestStatusForKeepsTransitionTimes(t *testing.T) {
	tg := testGenerator()
	ds := observedDaemonSet(2, 2)
	reports := []xdpgenv1alpha1.NodeReport{report("a", 1, xdpgenv1alpha1.PhaseRunning, 10, started(t0))}
	first := statusFor(tg, ds, reports, t10)
	tg.Status = first
	second := statusFor(tg, ds, reports, t20)
	if diff := cmp.Diff(first, second); diff != "" {
		t.Errorf("status changed although nothing did (-first +second):\n%s", diff)
	}
	// One more agent becomes ready: Ready goes True and only Ready's transition time moves.
	ds.Status.NumberReady = 2
	ds.Status.DesiredNumberScheduled = 3
	third := statusFor(tg, ds, reports, t30)
	for _, c := range third.Conditions {
		want := t10
		if c.Type == xdpgenv1alpha1.ConditionReady && c.Status != metav1.ConditionFalse {
			t.Fatalf("Ready = %s, want False with 2/3 agents ready", c.Status)
		}
		if c.Type == xdpgenv1alpha1.ConditionReady {
			want = t30
		}
		if !c.LastTransitionTime.Equal(&want) {
			t.Errorf("%s lastTransitionTime = %s, want %s", c.Type, c.LastTransitionTime, want)
		}
	}
}

func TestStatusForNamesFewFailures(t *testing.T) {
	tg := testGenerator()
	var reports []xdpgenv1alpha1.NodeReport
	for i := range 8 {
		reports = append(reports, report(fmt.Sprintf("n%d", i), 1, xdpgenv1alpha1.PhaseFailed, 0, message("no route to 10.200.0.2")))
	}
	st := statusFor(tg, observedDaemonSet(8, 8), reports, now)
	if st.Phase != xdpgenv1alpha1.PhaseFailed {
		t.Fatalf("phase = %s, want Failed", st.Phase)
	}
	var msg string
	for _, c := range st.Conditions {
		if c.Type == xdpgenv1alpha1.ConditionDegraded {
			msg = c.Message
		}
	}
	if !strings.HasPrefix(msg, "8 of 8 nodes failed: n0: no route") || !strings.HasSuffix(msg, "; and 3 more") {
		t.Errorf("Degraded message = %q, want the first five failures and \"and 3 more\"", msg)
	}
}
