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
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	xdpgenv1alpha1 "github.com/xdpgen/xdpgen/api/v1alpha1"
)

// maxFailuresInMessage bounds how many failed nodes a condition message names.
const maxFailuresInMessage = 5

// finished reports whether the status records the end of the run of the current generation. The DaemonSet is
// deleted only after such a status was written, and never created again for that generation.
func finished(tg *xdpgenv1alpha1.TrafficGenerator) bool {
	return tg.Status.ObservedGeneration == tg.Generation && tg.Status.Phase.Terminal()
}

// currentReports returns the reports of the current generation, sorted by node name.
func currentReports(tg *xdpgenv1alpha1.TrafficGenerator, reports []xdpgenv1alpha1.NodeReport) []xdpgenv1alpha1.NodeReport {
	var current []xdpgenv1alpha1.NodeReport
	for _, r := range reports {
		if r.Status.Generation == tg.Generation {
			current = append(current, r)
		}
	}
	sort.Slice(current, func(i, j int) bool { return current[i].Spec.NodeName < current[j].Spec.NodeName })
	return current
}

// statusFor computes a TrafficGenerator's status from what the controller observed: the agent DaemonSet (nil when
// there is none) and the NodeReports of this generator. It is a pure function of its arguments; conditions keep
// their lastTransitionTime unless their status changes, so an unchanged world gives an unchanged status.
func statusFor(tg *xdpgenv1alpha1.TrafficGenerator, ds *appsv1.DaemonSet, reports []xdpgenv1alpha1.NodeReport, now metav1.Time) xdpgenv1alpha1.TrafficGeneratorStatus {
	old := tg.Status
	st := xdpgenv1alpha1.TrafficGeneratorStatus{
		ObservedGeneration: tg.Generation,
		Conditions:         cloneConditions(old.Conditions),
	}
	current := currentReports(tg, reports)

	var running, completed int32
	var failed []string
	for _, r := range current {
		n := xdpgenv1alpha1.NodeSummary{
			Node:             r.Spec.NodeName,
			Phase:            r.Status.Phase,
			Packets:          r.Status.Packets,
			Bytes:            r.Status.Bytes,
			PacketsPerSecond: r.Status.PacketsPerSecond,
			BitsPerSecond:    r.Status.BitsPerSecond,
			Restarts:         r.Status.Restarts,
		}
		if n.Phase == "" {
			n.Phase = xdpgenv1alpha1.PhasePending
		}
		st.Totals.Packets += r.Status.Packets
		st.Totals.Bytes += r.Status.Bytes
		switch n.Phase {
		case xdpgenv1alpha1.PhaseRunning:
			running++
			st.Totals.PacketsPerSecond += r.Status.PacketsPerSecond
			st.Totals.BitsPerSecond += r.Status.BitsPerSecond
		case xdpgenv1alpha1.PhaseCompleted:
			completed++
		case xdpgenv1alpha1.PhaseFailed:
			n.LastError = r.Status.Message
			failed = append(failed, fmt.Sprintf("%s: %s", r.Spec.NodeName, orDefault(r.Status.Message, "no message")))
		}
		st.Nodes = append(st.Nodes, n)
		if t := r.Status.StartTime; t != nil && (st.StartTime == nil || t.Before(st.StartTime)) {
			st.StartTime = t.DeepCopy()
		}
		if t := r.Status.CompletionTime; t != nil && (st.CompletionTime == nil || st.CompletionTime.Before(t)) {
			st.CompletionTime = t.DeepCopy()
		}
	}
	terminal := completed + int32(len(failed))

	// How many nodes the agents are scheduled on, once the DaemonSet controller has looked at the DaemonSet.
	var desired, ready int32
	dsObserved := ds != nil && ds.Status.ObservedGeneration >= ds.Generation
	if ds != nil {
		desired, ready = ds.Status.DesiredNumberScheduled, ds.Status.NumberReady
	}
	st.NodesTotal = max(desired, int32(len(current)))
	st.NodesRunning = running

	switch {
	case finished(tg):
		// The run of this generation is over and recorded; the DaemonSet is (being) removed. Keep the verdict and,
		// if the reports are gone, what was recorded about them.
		st.Phase = old.Phase
		st.CompletionTime = old.CompletionTime
		if len(current) == 0 {
			st.Nodes, st.Totals, st.StartTime, st.NodesTotal = old.Nodes, old.Totals, old.StartTime, old.NodesTotal
		}
		st.NodesRunning = 0
	case dsObserved && desired > 0 && terminal >= desired && terminal == int32(len(current)):
		st.Phase = xdpgenv1alpha1.PhaseCompleted
		if len(failed) > 0 {
			st.Phase = xdpgenv1alpha1.PhaseFailed
		}
		if st.CompletionTime == nil {
			st.CompletionTime = now.DeepCopy()
		}
	case running > 0 || terminal > 0:
		st.Phase = xdpgenv1alpha1.PhaseRunning
		st.CompletionTime = nil
	default:
		st.Phase = xdpgenv1alpha1.PhasePending
		st.CompletionTime = nil
	}
	st.NodesSummary = fmt.Sprintf("%d/%d", st.NodesRunning, st.NodesTotal)

	set := func(typ string, status metav1.ConditionStatus, reason, msg string, args ...any) {
		meta.SetStatusCondition(&st.Conditions, metav1.Condition{
			Type:               typ,
			Status:             status,
			Reason:             reason,
			Message:            fmt.Sprintf(msg, args...),
			ObservedGeneration: tg.Generation,
			LastTransitionTime: now,
		})
	}

	switch {
	case st.Phase.Terminal() && ds == nil:
		set(xdpgenv1alpha1.ConditionReady, metav1.ConditionFalse, xdpgenv1alpha1.ReasonAgentsRemoved,
			"the run is over and the agents are removed")
	case ds == nil:
		set(xdpgenv1alpha1.ConditionReady, metav1.ConditionFalse, xdpgenv1alpha1.ReasonWaitingForAgents,
			"the agent DaemonSet %s is not created yet", DaemonSetName(tg))
	case !dsObserved:
		set(xdpgenv1alpha1.ConditionReady, metav1.ConditionFalse, xdpgenv1alpha1.ReasonWaitingForAgents,
			"waiting for the DaemonSet controller to schedule the agents")
	case desired == 0:
		set(xdpgenv1alpha1.ConditionReady, metav1.ConditionFalse, xdpgenv1alpha1.ReasonNoMatchingNodes,
			"no node matches spec.nodeSelector and spec.tolerations: label a node or change the selector")
	case ready < desired:
		set(xdpgenv1alpha1.ConditionReady, metav1.ConditionFalse, xdpgenv1alpha1.ReasonAgentsNotReady,
			"%d/%d agents ready", ready, desired)
	default:
		set(xdpgenv1alpha1.ConditionReady, metav1.ConditionTrue, xdpgenv1alpha1.ReasonAgentsReady,
			"%d/%d agents ready", ready, desired)
	}

	switch st.Phase {
	case xdpgenv1alpha1.PhasePending:
		set(xdpgenv1alpha1.ConditionProgressing, metav1.ConditionTrue, xdpgenv1alpha1.ReasonWaitingForAgents,
			"waiting for the nodes to start sending: %d/%d reported for generation %d", len(current), st.NodesTotal, tg.Generation)
	case xdpgenv1alpha1.PhaseRunning:
		set(xdpgenv1alpha1.ConditionProgressing, metav1.ConditionTrue, xdpgenv1alpha1.ReasonRunning,
			"%d/%d nodes sending, %d finished", running, st.NodesTotal, terminal)
	case xdpgenv1alpha1.PhaseCompleted:
		set(xdpgenv1alpha1.ConditionProgressing, metav1.ConditionFalse, xdpgenv1alpha1.ReasonRunCompleted,
			"all %d nodes completed", st.NodesTotal)
	case xdpgenv1alpha1.PhaseFailed:
		if len(failed) > 0 { // else the reports are gone: keep what was recorded when the run ended
			set(xdpgenv1alpha1.ConditionProgressing, metav1.ConditionFalse, xdpgenv1alpha1.ReasonRunFailed,
				"%d of %d nodes failed: %s", len(failed), st.NodesTotal, summarize(failed))
		}
	}

	switch {
	case len(failed) > 0:
		set(xdpgenv1alpha1.ConditionDegraded, metav1.ConditionTrue, xdpgenv1alpha1.ReasonNodeFailed,
			"%d of %d nodes failed: %s", len(failed), st.NodesTotal, summarize(failed))
	case finished(tg) && len(current) == 0:
		// Keep whatever was recorded when the run ended.
	default:
		set(xdpgenv1alpha1.ConditionDegraded, metav1.ConditionFalse, xdpgenv1alpha1.ReasonAsExpected,
			"no node failed")
	}
	return st
}

// summarize joins the first few node failures and says how many more there are.
func summarize(failures []string) string {
	if len(failures) <= maxFailuresInMessage {
		return strings.Join(failures, "; ")
	}
	return fmt.Sprintf("%s; and %d more", strings.Join(failures[:maxFailuresInMessage], "; "), len(failures)-maxFailuresInMessage)
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func cloneConditions(in []metav1.Condition) []metav1.Condition {
	if in == nil {
		return nil
	}
	out := make([]metav1.Condition, len(in))
	for i := range in {
		in[i].DeepCopyInto(&out[i])
	}
	return out
}
