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
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	xdpgenv1alpha1 "github.com/xdpgen/xdpgen/api/v1alpha1"
)

const (
	// maxFailuresInMessage bounds how many failed nodes a condition message names.
	maxFailuresInMessage = 5
	// maxNodeMessageInCondition bounds each node's message in a condition message, so that the condition stays
	// far below the API's limit of 32768 bytes.
	maxNodeMessageInCondition = 256
)

// finished reports whether the status records the end of the run of the current generation. The verdict of a
// finished run is kept; only a new generation starts another run.
func finished(tg *xdpgenv1alpha1.TrafficGenerator) bool {
	return tg.Status.ObservedGeneration == tg.Generation && tg.Status.Phase.Terminal()
}

// noReportReason is why a node that never reported, or stopped reporting, is lost.
func noReportReason(timeout time.Duration) string {
	return fmt.Sprintf("no report for %s (is the xdpgen agent running there?)", timeout)
}

// nodeGoneReason is why a node that went away before it finished is lost.
const nodeGoneReason = "the Node was deleted or no longer matches spec.nodeSelector before it finished"

// runNodes is every node of a run, as statusFor sees it.
type runNodes struct {
	all []xdpgenv1alpha1.NodeSummary
	// reporting counts the nodes that reported for the current generation and are not lost.
	reporting int32
	// recheck is the earliest time at which a node that is not lost yet would become lost; zero if none can.
	recheck time.Time
}

// nodesOfRun sums up each node of the run: every node that reported for the current generation, and every
// expected node (the Nodes spec.nodeSelector matches). A node whose run is not over is lost when the Node is no
// longer expected, or when it has not reported for lostAfter: since the run began for a node without a report,
// since its report's lastUpdateTime otherwise (or since start.at, for a node waiting for it).
func nodesOfRun(tg *xdpgenv1alpha1.TrafficGenerator, expected map[string]bool, current []xdpgenv1alpha1.NodeReport,
	begun, now time.Time, lostAfter time.Duration) runNodes {
	var rn runNodes
	due := func(last time.Time) bool {
		deadline := last.Add(lostAfter)
		if !now.Before(deadline) {
			return true
		}
		if rn.recheck.IsZero() || deadline.Before(rn.recheck) {
			rn.recheck = deadline
		}
		return false
	}
	reported := make(map[string]bool, len(current))
	for _, r := range current {
		reported[r.Spec.NodeName] = true
		n := xdpgenv1alpha1.NodeSummary{
			Node:                 r.Spec.NodeName,
			Phase:                r.Status.Phase,
			Packets:              r.Status.Packets,
			Bytes:                r.Status.Bytes,
			PacketsPerSecond:     r.Status.PacketsPerSecond,
			BitsPerSecond:        r.Status.BitsPerSecond,
			Restarts:             r.Status.Restarts,
			TCP:                  r.Status.TCP.DeepCopy(),
			EgressDroppedPackets: r.Status.EgressDroppedPackets,
		}
		if n.Phase == "" {
			n.Phase = xdpgenv1alpha1.PhasePending
		}
		if n.Phase == xdpgenv1alpha1.PhaseFailed {
			n.LastError = xdpgenv1alpha1.ShortenMessage(orDefault(r.Status.Message, "no message"), xdpgenv1alpha1.MaxMessageLength)
		}
		if !n.Phase.Terminal() {
			last := begun
			if t := r.Status.LastUpdateTime; t != nil {
				last = t.Time
			}
			if at := tg.Spec.Start.At; n.Phase == xdpgenv1alpha1.PhasePending && at != nil && at.After(last) {
				last = at.Time // the agent waits for start.at without writing
			}
			switch {
			case !expected[n.Node]:
				lose(&n, nodeGoneReason)
			case due(last):
				lose(&n, noReportReason(lostAfter))
			}
		}
		if n.Phase != xdpgenv1alpha1.PhaseLost {
			rn.reporting++
		}
		rn.all = append(rn.all, n)
	}
	for node := range expected {
		if reported[node] {
			continue
		}
		n := xdpgenv1alpha1.NodeSummary{Node: node, Phase: xdpgenv1alpha1.PhasePending}
		if due(begun) {
			n.Phase, n.LastError = xdpgenv1alpha1.PhaseLost, noReportReason(lostAfter)
		}
		rn.all = append(rn.all, n)
	}
	return rn
}

// lose marks n lost for reason: it sends nothing the controller knows of.
func lose(n *xdpgenv1alpha1.NodeSummary, reason string) {
	n.Phase, n.LastError, n.PacketsPerSecond, n.BitsPerSecond = xdpgenv1alpha1.PhaseLost, reason, 0, 0
	if n.TCP != nil {
		n.TCP.GoodputBitsPerSecond = 0
	}
}

// nodesOfInterest picks at most MaxNodesOfInterest nodes to show in the status: the failed and lost ones by name,
// then the running ones that sent the least.
func nodesOfInterest(all []xdpgenv1alpha1.NodeSummary) []xdpgenv1alpha1.NodeSummary {
	var bad, running []xdpgenv1alpha1.NodeSummary
	for _, n := range all {
		switch n.Phase {
		case xdpgenv1alpha1.PhaseFailed, xdpgenv1alpha1.PhaseLost:
			bad = append(bad, n)
		case xdpgenv1alpha1.PhaseRunning:
			running = append(running, n)
		}
	}
	slices.SortFunc(bad, func(a, b xdpgenv1alpha1.NodeSummary) int { return cmp.Compare(a.Node, b.Node) })
	slices.SortFunc(running, func(a, b xdpgenv1alpha1.NodeSummary) int {
		return cmp.Or(cmp.Compare(a.Packets, b.Packets), cmp.Compare(a.Node, b.Node))
	})
	picked := append(bad, running...)
	return picked[:min(len(picked), xdpgenv1alpha1.MaxNodesOfInterest)]
}

// failureOf is how a condition message names a failed or lost node.
func failureOf(n xdpgenv1alpha1.NodeSummary) string {
	msg := xdpgenv1alpha1.ShortenMessage(n.LastError, maxNodeMessageInCondition)
	if n.Phase == xdpgenv1alpha1.PhaseLost {
		return fmt.Sprintf("node %s lost: %s", n.Node, msg)
	}
	return fmt.Sprintf("%s: %s", n.Node, msg)
}

// statusFor computes a TrafficGenerator's status from what the controller observed: the nodes the run expects
// (the Nodes spec.nodeSelector matches) and the NodeReports of this generator. It is a pure function of its
// arguments; conditions keep their lastTransitionTime unless their status changes, so an unchanged world gives an
// unchanged status. It also returns when a node may next become lost (zero if none can), for the controller to
// look again then without any other event.
func statusFor(tg *xdpgenv1alpha1.TrafficGenerator, expected map[string]bool, reports []xdpgenv1alpha1.NodeReport,
	now metav1.Time, lostAfter time.Duration) (xdpgenv1alpha1.TrafficGeneratorStatus, time.Time) {
	old := tg.Status
	current := tg.CurrentReports(reports)
	if finished(tg) && len(current) == 0 {
		// The run is over and its reports are gone: keep what was recorded when it ended.
		return *old.DeepCopy(), time.Time{}
	}
	st := xdpgenv1alpha1.TrafficGeneratorStatus{
		ObservedGeneration:     tg.Generation,
		ObservedGenerationTime: now.DeepCopy(),
		Conditions:             cloneConditions(old.Conditions),
	}
	if old.ObservedGeneration == tg.Generation && old.ObservedGenerationTime != nil {
		st.ObservedGenerationTime = old.ObservedGenerationTime.DeepCopy()
	}
	begun := st.ObservedGenerationTime.Time
	if trial := tg.CurrentTrial(); trial != nil {
		begun = trial.StartTime.Time // each trial of a search is a run of its own
	}
	run := nodesOfRun(tg, expected, current, begun, now.Time, lostAfter)

	var failures []string
	for _, n := range run.all {
		switch n.Phase {
		case xdpgenv1alpha1.PhasePending:
			st.NodesPending++
		case xdpgenv1alpha1.PhaseRunning:
			st.NodesRunning++
			st.Totals.PacketsPerSecond += n.PacketsPerSecond
			st.Totals.BitsPerSecond += n.BitsPerSecond
		case xdpgenv1alpha1.PhaseCompleted:
			st.NodesCompleted++
		case xdpgenv1alpha1.PhaseFailed:
			st.NodesFailed++
		case xdpgenv1alpha1.PhaseLost:
			st.NodesLost++
		}
		st.Totals.Packets += n.Packets
		st.Totals.Bytes += n.Bytes
		st.Totals.EgressDroppedPackets += n.EgressDroppedPackets
		if n.TCP != nil {
			if st.Totals.TCP == nil {
				st.Totals.TCP = &xdpgenv1alpha1.TCPStatus{}
			}
			tcp := *n.TCP
			if n.Phase != xdpgenv1alpha1.PhaseRunning {
				tcp.GoodputBitsPerSecond = 0
			}
			st.Totals.TCP.Add(tcp)
		}
	}
	st.Totals.Sizes = sizesOfRun(current)
	if tg.Spec.Receivers != nil {
		st.Totals.ReceivedPackets, st.Totals.LostPackets, st.Totals.LossRatio, st.WorstPaths = pathsOfRun(current)
		st.Latency = latencyOfRun(current)
	}
	// The failed and lost nodes come first among the nodes of interest, by name: the message names the first few.
	for _, n := range nodesOfInterest(run.all) {
		if n.Phase == xdpgenv1alpha1.PhaseFailed || n.Phase == xdpgenv1alpha1.PhaseLost {
			failures = append(failures, failureOf(n))
		}
		st.NodesOfInterest = append(st.NodesOfInterest, n)
	}
	// The time the nodes sent: from the first sender's start to the last sender's end of sending. Nodes that only
	// receive start before the senders (which wait for them) and end after them (the drain time): not theirs.
	var sendStart, sendEnd *metav1.Time
	for _, r := range current {
		if t := r.Status.StartTime; t != nil && (st.StartTime == nil || t.Before(st.StartTime)) {
			st.StartTime = t.DeepCopy()
		}
		if t := r.Status.CompletionTime; t != nil && (st.CompletionTime == nil || st.CompletionTime.Before(t)) {
			st.CompletionTime = t.DeepCopy()
		}
		if r.Status.Packets == 0 {
			continue
		}
		if t := r.Status.StartTime; t != nil && (sendStart == nil || t.Before(sendStart)) {
			sendStart = t
		}
		if t := cmp.Or(r.Status.SendCompletionTime, r.Status.CompletionTime); t != nil && (sendEnd == nil || sendEnd.Before(t)) {
			sendEnd = t
		}
	}
	st.NodesTotal = int32(len(run.all))
	failed := st.NodesFailed + st.NodesLost
	terminal := st.NodesCompleted + failed

	switch {
	case finished(tg):
		// The run of this generation is over and recorded: keep the verdict. Nothing is lost any more.
		st.Phase = old.Phase
		st.CompletionTime = old.CompletionTime
		st.NodesRunning = 0
		run.recheck = time.Time{}
	case st.NodesTotal > 0 && terminal == st.NodesTotal:
		st.Phase = xdpgenv1alpha1.PhaseCompleted
		if failed > 0 {
			st.Phase = xdpgenv1alpha1.PhaseFailed
		}
		if st.CompletionTime == nil || st.NodesLost > 0 {
			// A lost node's run ended when the controller gave up on it.
			st.CompletionTime = now.DeepCopy()
		}
	case st.NodesRunning > 0 || terminal > 0:
		st.Phase = xdpgenv1alpha1.PhaseRunning
		st.CompletionTime = nil
	default:
		st.Phase = xdpgenv1alpha1.PhasePending
		st.CompletionTime = nil
	}
	if tg.Spec.Search != nil {
		if finished(tg) {
			st.Search = old.Search.DeepCopy()
		} else {
			trialNumber := tg.TrialNumber()
			st.Search, st.Phase = searchStatusFor(tg, current, st.Phase, summarize(failures, failed), now)
			if t := st.Search.Trial; t != nil && t.Number != trialNumber && !st.Search.Phase.Over() {
				// A new trial: its nodes are lost if they do not report it in time, whatever else happens.
				run.recheck = t.StartTime.Add(lostAfter)
			}
			if st.Phase == xdpgenv1alpha1.PhaseCompleted || st.Phase == xdpgenv1alpha1.PhaseFailed {
				st.CompletionTime = now.DeepCopy()
			} else {
				st.CompletionTime = nil
			}
			if st.Phase == xdpgenv1alpha1.PhasePending && len(st.Search.History) > 0 {
				st.Phase = xdpgenv1alpha1.PhaseRunning // between trials
			}
		}
	}
	st.NodesSummary = fmt.Sprintf("%d/%d", st.NodesRunning, st.NodesTotal)
	switch {
	case st.Phase == xdpgenv1alpha1.PhaseRunning:
		st.Rate = rateFor(st.Totals.PacketsPerSecond, st.Totals.BitsPerSecond, false)
	case st.Phase.Terminal() && sendStart != nil && sendEnd != nil && sendEnd.After(sendStart.Time):
		d := sendEnd.Sub(sendStart.Time)
		st.Duration = &metav1.Duration{Duration: d}
		st.Totals.AveragePacketsPerSecond = int64(float64(st.Totals.Packets) / d.Seconds())
		st.Totals.AverageBitsPerSecond = int64(float64(st.Totals.Bytes) * 8 / d.Seconds())
		st.Rate = rateFor(st.Totals.AveragePacketsPerSecond, st.Totals.AverageBitsPerSecond, true)
	}

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

	reported := run.reporting
	switch {
	case st.NodesTotal == 0:
		set(xdpgenv1alpha1.ConditionReady, metav1.ConditionFalse, xdpgenv1alpha1.ReasonNoMatchingNodes,
			"no node matches spec.nodeSelector: label a node or change the selector")
	case st.NodesLost > 0:
		set(xdpgenv1alpha1.ConditionReady, metav1.ConditionFalse, xdpgenv1alpha1.ReasonNodesLost,
			"%d of %d nodes lost", st.NodesLost, st.NodesTotal)
	case st.NodesFailed > 0:
		set(xdpgenv1alpha1.ConditionReady, metav1.ConditionFalse, xdpgenv1alpha1.ReasonNodeFailed,
			"%d of %d nodes failed", st.NodesFailed, st.NodesTotal)
	case finished(tg) && st.Phase == xdpgenv1alpha1.PhaseFailed:
		// The nodes changed after the run failed: keep what was recorded then.
	case reported < st.NodesTotal:
		set(xdpgenv1alpha1.ConditionReady, metav1.ConditionFalse, xdpgenv1alpha1.ReasonWaitingForAgents,
			"%d/%d nodes reported for generation %d", reported, st.NodesTotal, tg.Generation)
	default:
		set(xdpgenv1alpha1.ConditionReady, metav1.ConditionTrue, xdpgenv1alpha1.ReasonAgentsReady,
			"%d/%d nodes reported", reported, st.NodesTotal)
	}

	switch st.Phase {
	case xdpgenv1alpha1.PhasePending:
		set(xdpgenv1alpha1.ConditionProgressing, metav1.ConditionTrue, xdpgenv1alpha1.ReasonWaitingForAgents,
			"waiting for the nodes to start sending: %d/%d reported for generation %d", len(current), st.NodesTotal, tg.Generation)
	case xdpgenv1alpha1.PhaseRunning:
		set(xdpgenv1alpha1.ConditionProgressing, metav1.ConditionTrue, xdpgenv1alpha1.ReasonRunning,
			"%d/%d nodes sending, %d finished", st.NodesRunning, st.NodesTotal, terminal)
	case xdpgenv1alpha1.PhaseCompleted:
		set(xdpgenv1alpha1.ConditionProgressing, metav1.ConditionFalse, xdpgenv1alpha1.ReasonRunCompleted,
			"all %d nodes completed", st.NodesTotal)
	case xdpgenv1alpha1.PhaseFailed:
		if failed > 0 { // else the nodes changed after the run ended: keep what was recorded then
			set(xdpgenv1alpha1.ConditionProgressing, metav1.ConditionFalse, xdpgenv1alpha1.ReasonRunFailed,
				"%d of %d nodes failed: %s", failed, st.NodesTotal, summarize(failures, failed))
		}
	}

	// Complete and Failed are a Job's: what `kubectl wait --for=condition=...` waits on.
	switch st.Phase {
	case xdpgenv1alpha1.PhaseCompleted:
		if st.Search != nil {
			set(xdpgenv1alpha1.ConditionComplete, metav1.ConditionTrue, xdpgenv1alpha1.ReasonRunCompleted,
				"search %s: %s", strings.ToLower(string(st.Search.Phase)), st.Search.Message)
		} else {
			set(xdpgenv1alpha1.ConditionComplete, metav1.ConditionTrue, xdpgenv1alpha1.ReasonRunCompleted,
				"all %d nodes completed: %d packets in %s (%s)", st.NodesTotal, st.Totals.Packets, durationOf(st), st.Rate)
		}
		set(xdpgenv1alpha1.ConditionFailed, metav1.ConditionFalse, xdpgenv1alpha1.ReasonRunCompleted,
			"all %d nodes completed", st.NodesTotal)
	case xdpgenv1alpha1.PhaseFailed:
		if failed > 0 { // else the nodes changed after the run ended: keep what was recorded then
			set(xdpgenv1alpha1.ConditionComplete, metav1.ConditionFalse, xdpgenv1alpha1.ReasonRunFailed,
				"%d of %d nodes failed", failed, st.NodesTotal)
			set(xdpgenv1alpha1.ConditionFailed, metav1.ConditionTrue, xdpgenv1alpha1.ReasonRunFailed,
				"%d of %d nodes failed: %s", failed, st.NodesTotal, summarize(failures, failed))
		}
	default:
		progressing := meta.FindStatusCondition(st.Conditions, xdpgenv1alpha1.ConditionProgressing)
		for _, typ := range []string{xdpgenv1alpha1.ConditionComplete, xdpgenv1alpha1.ConditionFailed} {
			set(typ, metav1.ConditionFalse, progressing.Reason, "the run has not ended")
		}
	}

	// kstatus's: the same answers as Progressing and Failed, under the names tools that know no CRD read.
	for _, kstatus := range [][2]string{{xdpgenv1alpha1.ConditionReconciling, xdpgenv1alpha1.ConditionProgressing},
		{xdpgenv1alpha1.ConditionStalled, xdpgenv1alpha1.ConditionFailed}} {
		if c := meta.FindStatusCondition(st.Conditions, kstatus[1]); c != nil {
			set(kstatus[0], c.Status, c.Reason, "%s", c.Message)
		}
	}

	switch {
	case failed > 0:
		reason := xdpgenv1alpha1.ReasonNodeFailed
		if st.NodesFailed == 0 {
			reason = xdpgenv1alpha1.ReasonNodeLost
		}
		set(xdpgenv1alpha1.ConditionDegraded, metav1.ConditionTrue, reason,
			"%d of %d nodes failed: %s", failed, st.NodesTotal, summarize(failures, failed))
	case finished(tg):
		// Keep whatever was recorded when the run ended.
	default:
		set(xdpgenv1alpha1.ConditionDegraded, metav1.ConditionFalse, xdpgenv1alpha1.ReasonAsExpected,
			"no node failed")
	}
	return st, run.recheck
}

// pathsOfRun sums the paths the receivers reported, and picks the worst: the highest loss ratio, then the highest
// p99 round-trip time.
func pathsOfRun(current []xdpgenv1alpha1.NodeReport) (received, lost int64, ratio string, worst []xdpgenv1alpha1.PathResult) {
	type path struct {
		xdpgenv1alpha1.PathResult
		loss float64
	}
	var paths []path
	var sent int64
	for _, r := range current {
		for _, p := range r.Status.Received {
			pathSent := max(p.SentPackets, p.ReceivedPackets+p.LostPackets)
			received += p.ReceivedPackets
			lost += p.LostPackets
			sent += pathSent
			loss := 0.0
			if pathSent > 0 {
				loss = float64(p.LostPackets) / float64(pathSent)
			}
			paths = append(paths, path{*p.DeepCopy(), loss})
		}
	}
	p99 := func(p path) time.Duration {
		if p.RTT == nil {
			return 0
		}
		return p.RTT.P99.Duration
	}
	slices.SortFunc(paths, func(a, b path) int {
		return cmp.Or(cmp.Compare(b.loss, a.loss), cmp.Compare(p99(b), p99(a)),
			cmp.Compare(a.Sender, b.Sender), cmp.Compare(a.Receiver, b.Receiver))
	})
	for _, p := range paths[:min(len(paths), xdpgenv1alpha1.MaxWorstPaths)] {
		worst = append(worst, p.PathResult)
	}
	return received, lost, xdpgenv1alpha1.LossRatio(lost, sent), worst
}

// sizesOfRun is the frames the run sent per size bucket, summed over the nodes; nil for a run of one size.
func sizesOfRun(current []xdpgenv1alpha1.NodeReport) []xdpgenv1alpha1.SizeCount {
	var lists [][]xdpgenv1alpha1.SizeCount
	for _, r := range current {
		lists = append(lists, r.Status.Sizes)
	}
	if sizes := xdpgenv1alpha1.MergeSizeCounts(lists...); len(sizes) > 0 {
		return sizes
	}
	return nil
}

// latencyOfRun is the round-trip time of every latency sample of the run: the senders' histograms merged.
func latencyOfRun(current []xdpgenv1alpha1.NodeReport) *xdpgenv1alpha1.Latency {
	var histograms [][]xdpgenv1alpha1.LatencyBucket
	var longest time.Duration
	for _, r := range current {
		histograms = append(histograms, r.Status.RTTHistogram)
		for _, p := range r.Status.Sent {
			if p.RTT != nil {
				longest = max(longest, p.RTT.Max.Duration)
			}
		}
	}
	return xdpgenv1alpha1.LatencyOf(xdpgenv1alpha1.MergeLatencyBuckets(histograms...), longest)
}

// rateFor is a rate as status.rate shows it, such as "1.49 Mpps, 9.41 Gbit/s", or "avg 1.49 Mpps, 9.41 Gbit/s"
// for the average over a run: three significant digits and an SI prefix.
func rateFor(pps, bps int64, average bool) string {
	s := withPrefix(pps, "pps") + ", " + withPrefix(bps, "bit/s")
	if average {
		return "avg " + s
	}
	return s
}

// withPrefix formats n units with three significant digits (no trailing zeros) and an SI prefix: 950 pps,
// 14.9 kpps, 100 kpps, 9.41 Gbit/s.
func withPrefix(n int64, unit string) string {
	x := float64(n)
	prefix := ""
	for _, p := range []string{"k", "M", "G", "T", "P"} {
		if x < 999.5 { // what rounds to three digits
			break
		}
		x, prefix = x/1000, p
	}
	return strconv.FormatFloat(x, 'g', 3, 64) + " " + prefix + unit
}

// durationOf is the run's duration for a message: "an unknown time" when the status has none.
func durationOf(st xdpgenv1alpha1.TrafficGeneratorStatus) string {
	if st.Duration == nil {
		return "an unknown time"
	}
	return st.Duration.Duration.String()
}

// summarize joins the first few of the total node failures and says how many more there are.
func summarize(failures []string, total int32) string {
	named := failures[:min(len(failures), maxFailuresInMessage)]
	if more := int(total) - len(named); more > 0 {
		return fmt.Sprintf("%s; and %d more", strings.Join(named, "; "), more)
	}
	return strings.Join(named, "; ")
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
