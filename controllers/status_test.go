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
	"github.com/google/go-cmp/cmp/cmpopts"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	kstatus "sigs.k8s.io/cli-utils/pkg/kstatus/status"

	xdpgenv1alpha1 "github.com/xdpgen/xdpgen/api/v1alpha1"
)

var (
	t0  = metav1.NewTime(time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC))
	t10 = metav1.NewTime(t0.Add(10 * time.Second))
	t20 = metav1.NewTime(t0.Add(20 * time.Second))
	t30 = metav1.NewTime(t0.Add(30 * time.Second))
	now = metav1.NewTime(t0.Add(time.Minute))
)

func testGenerator() *xdpgenv1alpha1.TrafficGenerator {
	return &xdpgenv1alpha1.TrafficGenerator{
		ObjectMeta: metav1.ObjectMeta{Name: "udp", Namespace: "load", UID: "uid-1", Generation: 1},
		Spec: xdpgenv1alpha1.TrafficGeneratorSpec{
			Protocol:    xdpgenv1alpha1.ProtocolUDP,
			Destination: xdpgenv1alpha1.Destination{Address: "10.200.0.2", Port: 9, PortCount: 1},
			FrameSize:   64,
			Threads:     1,
			Duration:    &metav1.Duration{Duration: 30e9},
		},
	}
}

// nodes is the set of expected nodes of the given names.
func nodes(names ...string) map[string]bool {
	m := map[string]bool{}
	for _, n := range names {
		m[n] = true
	}
	return m
}

// lostAfter is the node-lost timeout of the pure status tests: longer than any of their reports' age.
const lostAfter = time.Hour

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
func heartbeat(t metav1.Time) reportOpt {
	return func(r *xdpgenv1alpha1.NodeReport) { r.Status.LastUpdateTime = t.DeepCopy() }
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
		complete    = xdpgenv1alpha1.ConditionComplete
		failed      = xdpgenv1alpha1.ConditionFailed
		yes, no     = metav1.ConditionTrue, metav1.ConditionFalse
	)
	notDegraded := cond(degraded, no, xdpgenv1alpha1.ReasonAsExpected, "no node failed")
	// notEnded are Complete and Failed while the run has not ended, for Progressing's reason.
	notEnded := func(reason string) []metav1.Condition {
		return []metav1.Condition{cond(complete, no, reason, "the run has not ended"), cond(failed, no, reason, "the run has not ended")}
	}
	withNotEnded := func(reason string, conds ...metav1.Condition) []metav1.Condition {
		return append(append(conds[:2:2], notEnded(reason)...), conds[2:]...)
	}

	runA := report("a", 2, xdpgenv1alpha1.PhaseRunning, 1000, started(t10))
	runB := report("b", 2, xdpgenv1alpha1.PhaseRunning, 3000, started(t0))
	pendC := report("c", 2, "", 0)
	oldD := report("d", 1, xdpgenv1alpha1.PhaseCompleted, 99999, started(t0), completedAt(t10))
	doneA := report("a", 2, xdpgenv1alpha1.PhaseCompleted, 5000, started(t10), completedAt(t20))
	doneB := report("b", 2, xdpgenv1alpha1.PhaseCompleted, 7000, started(t0), completedAt(t30))
	doneC := report("c", 2, xdpgenv1alpha1.PhaseCompleted, 6000, started(t0), completedAt(t10))
	failC := report("c", 2, xdpgenv1alpha1.PhaseFailed, 10, started(t0), completedAt(t10), message("interface eth9 not found"))

	completedStatus := xdpgenv1alpha1.TrafficGeneratorStatus{
		Phase:                  xdpgenv1alpha1.PhaseCompleted,
		ObservedGeneration:     2,
		ObservedGenerationTime: &now,
		NodesTotal:             3,
		NodesCompleted:         3,
		NodesSummary:           "0/3",
		Totals:                 xdpgenv1alpha1.Totals{Packets: 18000, Bytes: 18000 * 64},
		StartTime:              &t0,
		CompletionTime:         &t30,
		// 18000 packets of 64 bytes from t0 to t30.
		Duration: &metav1.Duration{Duration: 30 * time.Second},
		Rate:     "avg 600 pps, 307 kbit/s",
		Conditions: []metav1.Condition{
			cond(ready, yes, xdpgenv1alpha1.ReasonAgentsReady, "3/3 nodes reported"),
			cond(progressing, no, xdpgenv1alpha1.ReasonRunCompleted, "all 3 nodes completed"),
			cond(complete, yes, xdpgenv1alpha1.ReasonRunCompleted, "all 3 nodes completed: 18000 packets in 30s (avg 600 pps, 307 kbit/s)"),
			cond(failed, no, xdpgenv1alpha1.ReasonRunCompleted, "all 3 nodes completed"),
			notDegraded,
		},
	}
	completedStatus.Totals.AveragePacketsPerSecond, completedStatus.Totals.AverageBitsPerSecond = 600, 600*64*8

	tests := []struct {
		name       string
		generation int64
		old        xdpgenv1alpha1.TrafficGeneratorStatus
		expected   map[string]bool
		reports    []xdpgenv1alpha1.NodeReport
		want       xdpgenv1alpha1.TrafficGeneratorStatus
	}{
		{
			name: "no node matches",
			want: xdpgenv1alpha1.TrafficGeneratorStatus{
				Phase: xdpgenv1alpha1.PhasePending, ObservedGeneration: 2, ObservedGenerationTime: &now, NodesSummary: "0/0",
				Conditions: withNotEnded(xdpgenv1alpha1.ReasonWaitingForAgents,
					cond(ready, no, xdpgenv1alpha1.ReasonNoMatchingNodes, "no node matches spec.nodeSelector: label a node or change the selector"),
					cond(progressing, yes, xdpgenv1alpha1.ReasonWaitingForAgents, "waiting for the nodes to start sending: 0/0 reported for generation 2"),
					notDegraded,
				),
			},
		},
		{
			name:     "agents starting: expected nodes not reported yet",
			expected: nodes("a", "b", "c"),
			want: xdpgenv1alpha1.TrafficGeneratorStatus{
				Phase: xdpgenv1alpha1.PhasePending, ObservedGeneration: 2, ObservedGenerationTime: &now, NodesTotal: 3, NodesPending: 3, NodesSummary: "0/3",
				Conditions: withNotEnded(xdpgenv1alpha1.ReasonWaitingForAgents,
					cond(ready, no, xdpgenv1alpha1.ReasonWaitingForAgents, "0/3 nodes reported for generation 2"),
					cond(progressing, yes, xdpgenv1alpha1.ReasonWaitingForAgents, "waiting for the nodes to start sending: 0/3 reported for generation 2"),
					notDegraded,
				),
			},
		},
		{
			name:     "running: rates of running nodes, reports of other generations ignored",
			expected: nodes("a", "b", "c"),
			reports:  []xdpgenv1alpha1.NodeReport{pendC, oldD, runB, runA},
			want: xdpgenv1alpha1.TrafficGeneratorStatus{
				Phase: xdpgenv1alpha1.PhaseRunning, ObservedGeneration: 2, ObservedGenerationTime: &now,
				NodesRunning: 2, NodesPending: 1, NodesTotal: 3, NodesSummary: "2/3",
				Totals:          xdpgenv1alpha1.Totals{Packets: 4000, Bytes: 4000 * 64, PacketsPerSecond: 400, BitsPerSecond: 400 * 64 * 8},
				NodesOfInterest: []xdpgenv1alpha1.NodeSummary{summary(runA), summary(runB)},
				StartTime:       &t0,
				Rate:            "400 pps, 205 kbit/s",
				Conditions: withNotEnded(xdpgenv1alpha1.ReasonRunning,
					cond(ready, yes, xdpgenv1alpha1.ReasonAgentsReady, "3/3 nodes reported"),
					cond(progressing, yes, xdpgenv1alpha1.ReasonRunning, "2/3 nodes sending, 0 finished"),
					notDegraded,
				),
			},
		},
		{
			name:     "some nodes done, one still to report: running",
			expected: nodes("a", "b", "c"),
			reports:  []xdpgenv1alpha1.NodeReport{doneA, doneB},
			want: xdpgenv1alpha1.TrafficGeneratorStatus{
				Phase: xdpgenv1alpha1.PhaseRunning, ObservedGeneration: 2, ObservedGenerationTime: &now,
				NodesTotal: 3, NodesCompleted: 2, NodesPending: 1, NodesSummary: "0/3",
				Totals:    xdpgenv1alpha1.Totals{Packets: 12000, Bytes: 12000 * 64},
				StartTime: &t0, CompletionTime: nil,
				Rate: "0 pps, 0 bit/s",
				Conditions: withNotEnded(xdpgenv1alpha1.ReasonRunning,
					cond(ready, no, xdpgenv1alpha1.ReasonWaitingForAgents, "2/3 nodes reported for generation 2"),
					cond(progressing, yes, xdpgenv1alpha1.ReasonRunning, "0/3 nodes sending, 2 finished"),
					notDegraded,
				),
			},
		},
		{
			name:     "every node completed",
			expected: nodes("a", "b", "c"),
			reports:  []xdpgenv1alpha1.NodeReport{doneC, doneB, doneA},
			want:     completedStatus,
		},
		{
			name:     "a node failed",
			expected: nodes("a", "b", "c"),
			reports:  []xdpgenv1alpha1.NodeReport{doneA, doneB, failC},
			want: xdpgenv1alpha1.TrafficGeneratorStatus{
				Phase: xdpgenv1alpha1.PhaseFailed, ObservedGeneration: 2, ObservedGenerationTime: &now,
				NodesTotal: 3, NodesCompleted: 2, NodesFailed: 1, NodesSummary: "0/3",
				Totals: xdpgenv1alpha1.Totals{Packets: 12010, Bytes: 12010 * 64, AveragePacketsPerSecond: 400, AverageBitsPerSecond: 12010 * 64 * 8 / 30},
				NodesOfInterest: []xdpgenv1alpha1.NodeSummary{func() xdpgenv1alpha1.NodeSummary {
					s := summary(failC)
					s.LastError = "interface eth9 not found"
					return s
				}()},
				StartTime: &t0, CompletionTime: &t30, Duration: &metav1.Duration{Duration: 30 * time.Second},
				Rate: "avg 400 pps, 205 kbit/s", // 12010 packets in 30 s
				Conditions: []metav1.Condition{
					cond(ready, no, xdpgenv1alpha1.ReasonNodeFailed, "1 of 3 nodes failed"),
					cond(progressing, no, xdpgenv1alpha1.ReasonRunFailed, "1 of 3 nodes failed: c: interface eth9 not found"),
					cond(complete, no, xdpgenv1alpha1.ReasonRunFailed, "1 of 3 nodes failed"),
					cond(failed, yes, xdpgenv1alpha1.ReasonRunFailed, "1 of 3 nodes failed: c: interface eth9 not found"),
					cond(degraded, yes, xdpgenv1alpha1.ReasonNodeFailed, "1 of 3 nodes failed: c: interface eth9 not found"),
				},
			},
		},
		{
			name:     "finished and the reports gone: the verdict and the totals stay",
			old:      completedStatus,
			expected: nodes("a", "b", "c"),
			want:     completedStatus,
		},
		{
			name:       "a new generation after a finished run starts over",
			generation: 3,
			old: func() xdpgenv1alpha1.TrafficGeneratorStatus {
				s := *completedStatus.DeepCopy()
				s.ObservedGenerationTime = &t0
				return s
			}(),
			expected: nodes("a", "b", "c"),
			reports:  []xdpgenv1alpha1.NodeReport{doneA, doneB, doneC},
			want: xdpgenv1alpha1.TrafficGeneratorStatus{
				Phase: xdpgenv1alpha1.PhasePending, ObservedGeneration: 3, ObservedGenerationTime: &now,
				NodesTotal: 3, NodesPending: 3, NodesSummary: "0/3",
				Conditions: func() []metav1.Condition {
					c := []metav1.Condition{
						cond(ready, no, xdpgenv1alpha1.ReasonWaitingForAgents, "0/3 nodes reported for generation 3"),
						cond(progressing, yes, xdpgenv1alpha1.ReasonWaitingForAgents, "waiting for the nodes to start sending: 0/3 reported for generation 3"),
						cond(complete, no, xdpgenv1alpha1.ReasonWaitingForAgents, "the run has not ended"),
						cond(failed, no, xdpgenv1alpha1.ReasonWaitingForAgents, "the run has not ended"),
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
			got, recheck := statusFor(tg, tc.expected, tc.reports, now, lostAfter)
			// kstatus's conditions have a test of their own (TestStatusForKstatus).
			if diff := cmp.Diff(tc.want, got, cmpopts.IgnoreSliceElements(func(c metav1.Condition) bool {
				return c.Type == xdpgenv1alpha1.ConditionReconciling || c.Type == xdpgenv1alpha1.ConditionStalled
			})); diff != "" {
				t.Errorf("statusFor mismatch (-want +got):\n%s", diff)
			}
			if !got.Phase.Terminal() && got.NodesTotal > got.NodesCompleted && recheck.IsZero() {
				t.Errorf("statusFor gives no time to look for lost nodes again, with %d nodes to finish", got.NodesTotal-got.NodesCompleted)
			}
		})
	}
}

// TestStatusForKstatus: kstatus (sigs.k8s.io/cli-utils, what Flux and kpt wait with) reads a run that has not
// ended as InProgress, a run that ended well as Current and a failed run as Failed, from the status alone.
func TestStatusForKstatus(t *testing.T) {
	for _, tc := range []struct {
		name    string
		reports []xdpgenv1alpha1.NodeReport
		want    kstatus.Status
	}{
		{"pending", nil, kstatus.InProgressStatus},
		{"running", []xdpgenv1alpha1.NodeReport{report("a", 1, xdpgenv1alpha1.PhaseRunning, 10, started(t0))}, kstatus.InProgressStatus},
		{"completed", []xdpgenv1alpha1.NodeReport{report("a", 1, xdpgenv1alpha1.PhaseCompleted, 10, started(t0), completedAt(t10))},
			kstatus.CurrentStatus},
		{"failed", []xdpgenv1alpha1.NodeReport{report("a", 1, xdpgenv1alpha1.PhaseFailed, 10, started(t0), completedAt(t10),
			message("interface eth9 not found"))}, kstatus.FailedStatus},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tg := testGenerator()
			tg.Generation = 1
			tg.Status, _ = statusFor(tg, nodes("a"), tc.reports, now, lostAfter)
			obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(tg)
			if err != nil {
				t.Fatal(err)
			}
			res, err := kstatus.Compute(&unstructured.Unstructured{Object: obj})
			if err != nil {
				t.Fatal(err)
			}
			if res.Status != tc.want {
				t.Errorf("kstatus says %s (%s), want %s; conditions %+v", res.Status, res.Message, tc.want, tg.Status.Conditions)
			}
		})
	}
}

// TestStatusForLostNodes: a node that does not finish is lost when it never reported, when its reports stopped, or
// when its Node went away; and statusFor says when to look again for a node that may still be lost.
func TestStatusForLostNodes(t *testing.T) {
	const timeout = 30 * time.Second
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	startAt := metav1.NewTime(at(2 * time.Minute))
	tests := []struct {
		name     string
		startAt  *metav1.Time
		expected map[string]bool
		reports  []xdpgenv1alpha1.NodeReport
		lost     map[string]string // node: why
		phase    xdpgenv1alpha1.Phase
		recheck  time.Time
	}{
		{
			name:     "a node that never reported, after the timeout since the run began",
			expected: nodes("a", "b"),
			reports:  []xdpgenv1alpha1.NodeReport{report("a", 1, xdpgenv1alpha1.PhaseCompleted, 10, heartbeat(t30))},
			lost:     map[string]string{"b": "no report for 30s (is the xdpgen agent running there?)"},
			phase:    xdpgenv1alpha1.PhaseFailed,
		},
		{
			name:     "a running node whose reports stopped",
			expected: nodes("a"),
			reports:  []xdpgenv1alpha1.NodeReport{report("a", 1, xdpgenv1alpha1.PhaseRunning, 10, heartbeat(t10))},
			lost:     map[string]string{"a": "no report for 30s (is the xdpgen agent running there?)"},
			phase:    xdpgenv1alpha1.PhaseFailed,
		},
		{
			name:     "a running node that reported recently: look again when it would be lost",
			expected: nodes("a"),
			reports:  []xdpgenv1alpha1.NodeReport{report("a", 1, xdpgenv1alpha1.PhaseRunning, 10, heartbeat(metav1.NewTime(at(45*time.Second))))},
			phase:    xdpgenv1alpha1.PhaseRunning,
			recheck:  at(75 * time.Second),
		},
		{
			name:     "a running node whose Node is gone",
			expected: nodes("b"),
			reports: []xdpgenv1alpha1.NodeReport{
				report("a", 1, xdpgenv1alpha1.PhaseRunning, 10, heartbeat(now)),
				report("b", 1, xdpgenv1alpha1.PhaseCompleted, 10, heartbeat(now)),
			},
			lost:  map[string]string{"a": nodeGoneReason},
			phase: xdpgenv1alpha1.PhaseFailed,
		},
		{
			name:     "a finished node whose Node is gone counts as it finished",
			expected: nodes(),
			reports:  []xdpgenv1alpha1.NodeReport{report("a", 1, xdpgenv1alpha1.PhaseCompleted, 10, heartbeat(t10))},
			phase:    xdpgenv1alpha1.PhaseCompleted,
		},
		{
			name:     "a node waiting for start.at is not lost before start.at and the timeout",
			startAt:  &startAt,
			expected: nodes("a"),
			reports:  []xdpgenv1alpha1.NodeReport{report("a", 1, xdpgenv1alpha1.PhasePending, 0, heartbeat(t0))},
			phase:    xdpgenv1alpha1.PhasePending,
			recheck:  at(2*time.Minute + timeout),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tg := testGenerator()
			tg.Spec.Start.At = tc.startAt
			tg.Status = xdpgenv1alpha1.TrafficGeneratorStatus{ObservedGeneration: 1, ObservedGenerationTime: &t0}
			st, recheck := statusFor(tg, tc.expected, tc.reports, now, timeout)
			if st.Phase != tc.phase {
				t.Errorf("phase = %s, want %s", st.Phase, tc.phase)
			}
			lost := map[string]string{}
			for _, n := range st.NodesOfInterest {
				if n.Phase == xdpgenv1alpha1.PhaseLost {
					lost[n.Node] = n.LastError
				}
			}
			if diff := cmp.Diff(tc.lost, lost, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("lost nodes (-want +got):\n%s", diff)
			}
			if int(st.NodesLost) != len(tc.lost) {
				t.Errorf("nodesLost = %d, want %d", st.NodesLost, len(tc.lost))
			}
			if !recheck.Equal(tc.recheck) {
				t.Errorf("recheck at %s, want %s", recheck, tc.recheck)
			}
			if len(tc.lost) > 0 {
				d := meta.FindStatusCondition(st.Conditions, xdpgenv1alpha1.ConditionDegraded)
				for node, why := range tc.lost {
					if want := "node " + node + " lost: " + why; d == nil || !strings.Contains(d.Message, want) {
						t.Errorf("Degraded = %+v, want it to say %q", d, want)
					}
				}
				if !st.CompletionTime.Equal(&now) {
					t.Errorf("completionTime = %v, want the time the controller gave up, %s", st.CompletionTime, now)
				}
			}
		})
	}
}

// TestNodesOfInterestBounded: whatever the number of nodes, the status names at most MaxNodesOfInterest, the failed
// and lost ones first, then the slowest running ones.
func TestNodesOfInterestBounded(t *testing.T) {
	tg := testGenerator()
	expected := map[string]bool{}
	var reports []xdpgenv1alpha1.NodeReport
	for i := range 100 {
		name := fmt.Sprintf("n%03d", i)
		expected[name] = true
		if i%10 == 0 {
			reports = append(reports, report(name, 1, xdpgenv1alpha1.PhaseFailed, 0, message(strings.Repeat("x", 2000))))
		} else {
			reports = append(reports, report(name, 1, xdpgenv1alpha1.PhaseRunning, int64(1000-i), heartbeat(now)))
		}
	}
	st, _ := statusFor(tg, expected, reports, now, lostAfter)
	if len(st.NodesOfInterest) != xdpgenv1alpha1.MaxNodesOfInterest {
		t.Fatalf("%d nodes of interest, want %d", len(st.NodesOfInterest), xdpgenv1alpha1.MaxNodesOfInterest)
	}
	for i, n := range st.NodesOfInterest[:10] {
		if want := fmt.Sprintf("n%03d", i*10); n.Node != want || n.Phase != xdpgenv1alpha1.PhaseFailed || len(n.LastError) > xdpgenv1alpha1.MaxMessageLength {
			t.Errorf("node of interest %d = %s (%s, %d bytes of error), want failed node %s", i, n.Node, n.Phase, len(n.LastError), want)
		}
	}
	if n := st.NodesOfInterest[10]; n.Node != "n099" {
		t.Errorf("first running node of interest = %s, want n099, the one that sent the least", n.Node)
	}
	if st.NodesFailed != 10 || st.NodesRunning != 90 || st.NodesTotal != 100 {
		t.Errorf("counts failed %d running %d total %d, want 10, 90, 100", st.NodesFailed, st.NodesRunning, st.NodesTotal)
	}
	for _, c := range st.Conditions {
		if len(c.Message) > 2000 {
			t.Errorf("%s message of %d bytes: the controller's copies of node messages must be bounded", c.Type, len(c.Message))
		}
	}
}

// TestStatusForKeepsTransitionTimes checks that an unchanged world gives an unchanged status, so that the
// controller does not write it again.
func TestStatusForKeepsTransitionTimes(t *testing.T) {
	tg := testGenerator()
	expected := nodes("a")
	reports := []xdpgenv1alpha1.NodeReport{report("a", 1, xdpgenv1alpha1.PhaseRunning, 10, started(t0), heartbeat(t10))}
	first, _ := statusFor(tg, expected, reports, t10, lostAfter)
	tg.Status = first
	second, _ := statusFor(tg, expected, reports, t20, lostAfter)
	if diff := cmp.Diff(first, second); diff != "" {
		t.Errorf("status changed although nothing did (-first +second):\n%s", diff)
	}
	// One more node is selected: Ready goes False and only Ready's transition time moves.
	third, _ := statusFor(tg, nodes("a", "b"), reports, t30, lostAfter)
	for _, c := range third.Conditions {
		want := t10
		if c.Type == xdpgenv1alpha1.ConditionReady && c.Status != metav1.ConditionFalse {
			t.Fatalf("Ready = %s, want False with 1/2 nodes reported", c.Status)
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
	expected := map[string]bool{}
	for i := range 8 {
		expected[fmt.Sprintf("n%d", i)] = true
		reports = append(reports, report(fmt.Sprintf("n%d", i), 1, xdpgenv1alpha1.PhaseFailed, 0, message("no route to 10.200.0.2")))
	}
	st, _ := statusFor(tg, expected, reports, now, lostAfter)
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

// TestStatusForSumsTCP: the totals sum the nodes' tcp counts; the goodput sums the running nodes only, a lost
// node's included in the counts but not in the goodput. A run without tcp counts has no tcp totals.
func TestStatusForSumsTCP(t *testing.T) {
	tcp := func(acked, goodput int64) reportOpt {
		return func(r *xdpgenv1alpha1.NodeReport) {
			r.Status.TCP = &xdpgenv1alpha1.TCPStatus{BytesAcknowledged: acked, SegmentsSent: acked/100 + 1, SegmentsRetransmitted: 1,
				BytesRetransmitted: 100, GoodputBitsPerSecond: goodput}
		}
	}
	reports := []xdpgenv1alpha1.NodeReport{
		report("a", 1, xdpgenv1alpha1.PhaseRunning, 10, heartbeat(now), tcp(1000, 800)),
		report("b", 1, xdpgenv1alpha1.PhaseCompleted, 50, heartbeat(now), tcp(5000, 0)),
		report("c", 1, xdpgenv1alpha1.PhaseRunning, 30, heartbeat(t10), tcp(3000, 300)), // lost: no report for 50s
		report("d", 1, xdpgenv1alpha1.PhaseFailed, 20, heartbeat(now), tcp(2000, 200)),
	}
	st, _ := statusFor(testGenerator(), nodes("a", "b", "c", "d"), reports, now, 30*time.Second)
	want := &xdpgenv1alpha1.TCPStatus{BytesAcknowledged: 11000, SegmentsSent: 114, SegmentsRetransmitted: 4, BytesRetransmitted: 400,
		GoodputBitsPerSecond: 800}
	if diff := cmp.Diff(want, st.Totals.TCP); diff != "" {
		t.Errorf("tcp totals (-want +got):\n%s", diff)
	}
	for _, n := range st.NodesOfInterest {
		if n.Node == "c" && (n.Phase != xdpgenv1alpha1.PhaseLost || n.TCP == nil || n.TCP.GoodputBitsPerSecond != 0 || n.TCP.BytesAcknowledged != 3000) {
			t.Errorf("lost node c summed up as %+v with tcp %+v, want lost with its counts and no goodput", n, n.TCP)
		}
	}
	if reports[2].Status.TCP.GoodputBitsPerSecond != 300 {
		t.Error("statusFor changed a report")
	}

	udp, _ := statusFor(testGenerator(), nodes("a"), []xdpgenv1alpha1.NodeReport{report("a", 1, xdpgenv1alpha1.PhaseRunning, 10, heartbeat(now))}, now, lostAfter)
	if udp.Totals.TCP != nil {
		t.Errorf("tcp totals %+v for a run without tcp counts", udp.Totals.TCP)
	}
}

// TestStatusForSumsEgressDrops: the totals sum what every node's egress interface refused, lost nodes' last
// counts included; a node of interest shows its own.
func TestStatusForSumsEgressDrops(t *testing.T) {
	dropped := func(n int64) reportOpt {
		return func(r *xdpgenv1alpha1.NodeReport) { r.Status.EgressDroppedPackets = n }
	}
	reports := []xdpgenv1alpha1.NodeReport{
		report("a", 1, xdpgenv1alpha1.PhaseRunning, 10, heartbeat(now), dropped(7)),
		report("b", 1, xdpgenv1alpha1.PhaseCompleted, 50, heartbeat(now)),
		report("c", 1, xdpgenv1alpha1.PhaseRunning, 30, heartbeat(t10), dropped(5)), // lost: no report for 50s
	}
	st, _ := statusFor(testGenerator(), nodes("a", "b", "c"), reports, now, 30*time.Second)
	if st.Totals.EgressDroppedPackets != 12 {
		t.Errorf("egress drops total %d, want 12", st.Totals.EgressDroppedPackets)
	}
	for _, n := range st.NodesOfInterest {
		if n.Node == "c" && n.EgressDroppedPackets != 5 {
			t.Errorf("node c of interest with %d egress drops, want 5", n.EgressDroppedPackets)
		}
	}
}

func TestStatusForSumsPaths(t *testing.T) {
	us := func(n int64) metav1.Duration { return metav1.Duration{Duration: time.Duration(n) * time.Microsecond} }
	row := func(sender, receiver string, sent, received, lost int64, p99 int64) xdpgenv1alpha1.PathResult {
		return xdpgenv1alpha1.PathResult{Sender: sender, Receiver: receiver, SentPackets: sent, ReceivedPackets: received,
			LostPackets: lost, LossRatio: xdpgenv1alpha1.LossRatio(lost, sent), Settled: sent > 0,
			RTT: &xdpgenv1alpha1.Latency{Samples: 10, P99: us(p99)}}
	}
	receives := func(rows ...xdpgenv1alpha1.PathResult) reportOpt {
		return func(r *xdpgenv1alpha1.NodeReport) { r.Status.Received = rows }
	}
	sends := func(maxRTT int64, h ...xdpgenv1alpha1.LatencyBucket) reportOpt {
		return func(r *xdpgenv1alpha1.NodeReport) {
			r.Status.RTTHistogram = h
			r.Status.Sent = []xdpgenv1alpha1.SentPath{{Receiver: "x", RTT: &xdpgenv1alpha1.Latency{Samples: 1, Max: us(maxRTT)}}}
		}
	}
	ns := func(n int64) int64 { return n * 1000 }
	reports := []xdpgenv1alpha1.NodeReport{
		// a mesh of three: a and b send and receive, c only receives (its loss not settled yet: no sent count).
		report("a", 1, xdpgenv1alpha1.PhaseRunning, 2000, heartbeat(now), receives(row("b", "a", 1000, 1000, 0, 30)),
			sends(45, xdpgenv1alpha1.LatencyBucket{UpperBoundNanoseconds: ns(20), Count: 98}, xdpgenv1alpha1.LatencyBucket{UpperBoundNanoseconds: ns(40), Count: 1})),
		report("b", 1, xdpgenv1alpha1.PhaseRunning, 2000, heartbeat(now), receives(row("a", "b", 1000, 990, 10, 20)),
			sends(70, xdpgenv1alpha1.LatencyBucket{UpperBoundNanoseconds: ns(80), Count: 1})),
		report("c", 1, xdpgenv1alpha1.PhaseRunning, 0, heartbeat(now), receives(row("a", "c", 0, 996, 4, 10), row("b", "c", 1000, 1000, 0, 90))),
	}
	tg := testGenerator()
	st, _ := statusFor(tg, nodes("a", "b", "c"), reports, now, lostAfter)
	if st.Totals.ReceivedPackets != 0 || st.WorstPaths != nil || st.Latency != nil {
		t.Errorf("a generator without receivers sums paths: %+v, %+v, %+v", st.Totals, st.WorstPaths, st.Latency)
	}
	tg.Spec.Receivers = &xdpgenv1alpha1.Receivers{}
	st, _ = statusFor(tg, nodes("a", "b", "c"), reports, now, lostAfter)
	if st.Totals.ReceivedPackets != 3986 || st.Totals.LostPackets != 14 || st.Totals.LossRatio != "0.0035" {
		t.Errorf("totals received %d lost %d ratio %s, want 3986, 14, 0.0035 (14 of 4000)",
			st.Totals.ReceivedPackets, st.Totals.LostPackets, st.Totals.LossRatio)
	}
	var order []string
	for _, p := range st.WorstPaths {
		order = append(order, p.Sender+">"+p.Receiver)
	}
	// a>b loses 1%, a>c 0.4% (gaps, before settling); then no loss, by p99: b>c 90 us, b>a 30 us.
	if diff := cmp.Diff([]string{"a>b", "a>c", "b>c", "b>a"}, order); diff != "" {
		t.Errorf("worst paths (-want +got):\n%s", diff)
	}
	want := &xdpgenv1alpha1.Latency{Samples: 100, P50: us(20), P90: us(20), P99: us(40), P999: us(70), Max: us(70)} // p99.9 in the 80 us bucket, at most the largest sample
	if diff := cmp.Diff(want, st.Latency); diff != "" {
		t.Errorf("run latency (-want +got):\n%s", diff)
	}
}

// TestStatusForSumsSizes: the achieved mix is the nodes' frames per size bucket, summed bucket by bucket; a run of
// one size lists none.
func TestStatusForSumsSizes(t *testing.T) {
	sizes := func(c ...xdpgenv1alpha1.SizeCount) reportOpt {
		return func(r *xdpgenv1alpha1.NodeReport) { r.Status.Sizes = c }
	}
	reports := []xdpgenv1alpha1.NodeReport{
		report("a", 1, xdpgenv1alpha1.PhaseRunning, 1200, heartbeat(now), sizes(xdpgenv1alpha1.SizeCount{Min: 566, Max: 566, Packets: 400},
			xdpgenv1alpha1.SizeCount{Min: 60, Max: 60, Packets: 700}, xdpgenv1alpha1.SizeCount{Min: 1514, Max: 1514, Packets: 100})),
		report("b", 1, xdpgenv1alpha1.PhaseCompleted, 12, heartbeat(now), sizes(xdpgenv1alpha1.SizeCount{Min: 60, Max: 60, Packets: 7},
			xdpgenv1alpha1.SizeCount{Min: 566, Max: 566, Packets: 4}, xdpgenv1alpha1.SizeCount{Min: 1514, Max: 1514, Packets: 1})),
	}
	st, _ := statusFor(testGenerator(), nodes("a", "b"), reports, now, lostAfter)
	want := []xdpgenv1alpha1.SizeCount{{Min: 60, Max: 60, Packets: 707}, {Min: 566, Max: 566, Packets: 404}, {Min: 1514, Max: 1514, Packets: 101}}
	if diff := cmp.Diff(want, st.Totals.Sizes); diff != "" {
		t.Errorf("achieved mix (-want +got):\n%s", diff)
	}
	st, _ = statusFor(testGenerator(), nodes("a"), []xdpgenv1alpha1.NodeReport{report("a", 1, xdpgenv1alpha1.PhaseRunning, 5, heartbeat(now))}, now, lostAfter)
	if st.Totals.Sizes != nil {
		t.Errorf("a run of one size lists sizes %v", st.Totals.Sizes)
	}
}

// TestStatusForAverageRate: once the run is over, the status keeps its average rates over the time the nodes sent
// (to their sendCompletionTime with receivers: not the drain that follows), and kubectl's rate column shows them;
// while it runs, the column shows the running nodes' current rate.
func TestStatusForAverageRate(t *testing.T) {
	sentUntil := func(at metav1.Time) reportOpt {
		return func(r *xdpgenv1alpha1.NodeReport) { r.Status.SendCompletionTime = at.DeepCopy() }
	}
	tg := testGenerator()
	running, _ := statusFor(tg, nodes("a"), []xdpgenv1alpha1.NodeReport{
		report("a", 1, xdpgenv1alpha1.PhaseRunning, 14_880_000, started(t0), heartbeat(t10)),
	}, t10, lostAfter)
	if running.Rate != "1.49 Mpps, 762 Mbit/s" || running.Duration != nil || running.Totals.AveragePacketsPerSecond != 0 {
		t.Errorf("running: rate %q, duration %v, average %d pps; want the current rate and no average yet",
			running.Rate, running.Duration, running.Totals.AveragePacketsPerSecond)
	}

	// 10 Gbit/s of 1500-byte frames for 20 s on a, 10 s on b, which then drains its receivers' paths 10 s more;
	// c only receives: ready before the senders start, done after they end.
	const pps, frame = 833_333, 1500
	done := []xdpgenv1alpha1.NodeReport{
		report("a", 1, xdpgenv1alpha1.PhaseCompleted, 20*pps, started(t10), completedAt(t30)),
		report("b", 1, xdpgenv1alpha1.PhaseCompleted, 10*pps, started(t20), sentUntil(t30), completedAt(now)),
		report("c", 1, xdpgenv1alpha1.PhaseCompleted, 0, started(t0), completedAt(now)),
	}
	for i := range done {
		done[i].Status.Bytes = done[i].Status.Packets * frame
	}
	tg.Spec.Receivers = &xdpgenv1alpha1.Receivers{}
	st, _ := statusFor(tg, nodes("a", "b", "c"), done, now, lostAfter)
	if st.Duration == nil || st.Duration.Duration != 20*time.Second {
		t.Errorf("duration %v, want 20s: from the first sender's start to the last sender's end of sending", st.Duration)
	}
	if st.Totals.AveragePacketsPerSecond != 30*pps/20 || st.Totals.AverageBitsPerSecond != 30*pps*frame*8/20 {
		t.Errorf("average %d pps, %d bit/s, want %d and %d", st.Totals.AveragePacketsPerSecond,
			st.Totals.AverageBitsPerSecond, 30*pps/20, 30*pps*frame*8/20)
	}
	if st.Rate != "avg 1.25 Mpps, 15 Gbit/s" {
		t.Errorf("rate %q, want the average over the run", st.Rate)
	}
	c := meta.FindStatusCondition(st.Conditions, xdpgenv1alpha1.ConditionComplete)
	if c == nil || c.Status != metav1.ConditionTrue || c.Message != "all 3 nodes completed: 24999990 packets in 20s (avg 1.25 Mpps, 15 Gbit/s)" {
		t.Errorf("Complete = %+v, want True with the run's packets, duration and rate", c)
	}
}

// TestStatusForKeepsFailure: the verdict of a failed run stays when its nodes change afterwards (a failed node's
// Node deleted, say): Ready, Complete and Failed say what they said when it ended.
func TestStatusForKeepsFailure(t *testing.T) {
	tg := testGenerator()
	reports := []xdpgenv1alpha1.NodeReport{
		report("a", 1, xdpgenv1alpha1.PhaseCompleted, 10, started(t0), completedAt(t10)),
		report("b", 1, xdpgenv1alpha1.PhaseFailed, 0, started(t0), completedAt(t10), message("no route")),
	}
	first, _ := statusFor(tg, nodes("a", "b"), reports, t20, lostAfter)
	tg.Status = first
	second, _ := statusFor(tg, nodes("a"), reports[:1], t30, lostAfter)
	for _, typ := range []string{xdpgenv1alpha1.ConditionReady, xdpgenv1alpha1.ConditionComplete, xdpgenv1alpha1.ConditionFailed} {
		if diff := cmp.Diff(meta.FindStatusCondition(first.Conditions, typ), meta.FindStatusCondition(second.Conditions, typ)); diff != "" {
			t.Errorf("%s changed after the run failed (-first +second):\n%s", typ, diff)
		}
	}
	if f := meta.FindStatusCondition(second.Conditions, xdpgenv1alpha1.ConditionFailed); f == nil || f.Status != metav1.ConditionTrue {
		t.Errorf("Failed = %+v, want True", f)
	}
}

func TestRateFor(t *testing.T) {
	for _, tc := range []struct {
		pps, bps int64
		average  bool
		want     string
	}{
		{0, 0, false, "0 pps, 0 bit/s"},
		{999, 511_488, false, "999 pps, 511 kbit/s"},
		{1000, 512_000, true, "avg 1 kpps, 512 kbit/s"},
		{99_980, 51_189_760, false, "100 kpps, 51.2 Mbit/s"},
		{20_000, 10_240_000, true, "avg 20 kpps, 10.2 Mbit/s"},
		{14_880_952, 7_619_047_424, false, "14.9 Mpps, 7.62 Gbit/s"},
		{148_809_523, 100_000_000_000, true, "avg 149 Mpps, 100 Gbit/s"},
		{1_234_567_890, 1_234_567_890_123, false, "1.23 Gpps, 1.23 Tbit/s"},
	} {
		if got := rateFor(tc.pps, tc.bps, tc.average); got != tc.want {
			t.Errorf("rateFor(%d, %d, %t) = %q, want %q", tc.pps, tc.bps, tc.average, got, tc.want)
		}
	}
}
