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
	"context"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus/testutil"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	xdpgenv1alpha1 "github.com/xdpgen/xdpgen/api/v1alpha1"
)

const (
	eventually = 20 * time.Second
	poll       = 50 * time.Millisecond
)

// putReport plays a node's agent: it creates the node's NodeReport (labels, owner reference) and writes its
// status.
func putReport(ctx context.Context, c client.Client, tg *xdpgenv1alpha1.TrafficGenerator, node string, st xdpgenv1alpha1.NodeReportStatus) (*xdpgenv1alpha1.NodeReport, error) {
	nr := &xdpgenv1alpha1.NodeReport{}
	key := types.NamespacedName{Namespace: tg.Namespace, Name: xdpgenv1alpha1.NodeReportName(tg.Name, node)}
	err := c.Get(ctx, key, nr)
	if apierrors.IsNotFound(err) {
		nr = newReport(tg, node)
		err = c.Create(ctx, nr)
	}
	if err != nil {
		return nil, err
	}
	nr.Status = st
	return nr, c.Status().Update(ctx, nr)
}

func newReport(tg *xdpgenv1alpha1.TrafficGenerator, node string) *xdpgenv1alpha1.NodeReport {
	return &xdpgenv1alpha1.NodeReport{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: tg.Namespace,
			Name:      xdpgenv1alpha1.NodeReportName(tg.Name, node),
			Labels: map[string]string{
				xdpgenv1alpha1.LabelGenerator: tg.Name,
				xdpgenv1alpha1.LabelNode:      xdpgenv1alpha1.LabelValue(node),
			},
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: xdpgenv1alpha1.GroupVersion.String(),
				Kind:       "TrafficGenerator",
				Name:       tg.Name,
				UID:        tg.UID,
			}},
		},
		Spec: xdpgenv1alpha1.NodeReportSpec{Generator: tg.Name, NodeName: node},
	}
}

func nodeStatus(gen int64, phase xdpgenv1alpha1.Phase, packets, pps int64, msg string) xdpgenv1alpha1.NodeReportStatus {
	now := metav1.Now()
	st := xdpgenv1alpha1.NodeReportStatus{
		Generation: gen, Phase: phase, StartTime: &now, LastUpdateTime: &now,
		Packets: packets, Bytes: packets * 64, PacketsPerSecond: pps, BitsPerSecond: pps * 64 * 8, Message: msg,
		Actions: []xdpgenv1alpha1.ActionCount{{Action: xdpgenv1alpha1.XDPRedirect, Packets: packets, Bytes: packets * 64}},
	}
	if phase.Terminal() {
		st.CompletionTime = &now
	}
	return st
}

func condition(tg *xdpgenv1alpha1.TrafficGenerator, typ string) metav1.Condition {
	if c := meta.FindStatusCondition(tg.Status.Conditions, typ); c != nil {
		return *c
	}
	return metav1.Condition{}
}

// TestControllerLifecycle follows one TrafficGenerator through the controller: the run expects the Nodes its
// selector matches (and follows them as they come and go), NodeReports are summed into the status (Pending, Running,
// Completed; then a new generation that fails), the status of a finished run is kept, and the controller creates
// nothing but events: the NodeReports the agents create are owned by the TrafficGenerator.
func TestControllerLifecycle(t *testing.T) {
	requireEnvtest(t)
	g := NewWithT(t)
	ctx := context.Background()
	ns := testNamespace(t, "lifecycle")
	startManager(t, ns, 200*time.Millisecond, nil)
	createNodes(t, ns, "node-a", "node-b")

	tg := generatorOnTestNodes(ns, "udp", func(s *xdpgenv1alpha1.TrafficGeneratorSpec) {
		s.Duration = &metav1.Duration{Duration: 30 * time.Second}
	})
	g.Expect(k8sClient.Create(ctx, tg)).To(Succeed())
	tgKey := client.ObjectKeyFromObject(tg)
	get := func(g Gomega) *xdpgenv1alpha1.TrafficGenerator {
		cur := &xdpgenv1alpha1.TrafficGenerator{}
		g.Expect(k8sClient.Get(ctx, tgKey, cur)).To(Succeed())
		return cur
	}

	t.Log("the run expects the Nodes the selector matches: Pending until they report")
	g.Eventually(func(g Gomega) {
		cur := get(g)
		g.Expect(cur.Status.ObservedGeneration).To(Equal(int64(1)))
		g.Expect(cur.Status.ObservedGenerationTime).NotTo(BeNil())
		g.Expect(cur.Status.Phase).To(Equal(xdpgenv1alpha1.PhasePending))
		g.Expect(cur.Status.NodesSummary).To(Equal("0/2"))
		c := condition(cur, xdpgenv1alpha1.ConditionReady)
		g.Expect(c.Reason).To(Equal(xdpgenv1alpha1.ReasonWaitingForAgents))
		g.Expect(c.Message).To(Equal("0/2 nodes reported for generation 1"))
	}).WithTimeout(eventually).WithPolling(poll).Should(Succeed())

	t.Log("a new matching Node joins the run; one without the label does not")
	createNodes(t, ns, "node-c")
	other := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: ns + "-other", Labels: map[string]string{corev1.LabelOSStable: "linux"}}}
	g.Expect(k8sClient.Create(ctx, other)).To(Succeed())
	t.Cleanup(func() { _ = k8sClient.Delete(context.Background(), other) })
	g.Eventually(func(g Gomega) {
		cur := get(g)
		g.Expect(cur.Status.NodesSummary).To(Equal("0/3"))
		g.Expect(cur.Status.NodesPending).To(Equal(int32(3)))
	}).WithTimeout(eventually).WithPolling(poll).Should(Succeed())

	t.Log("a change of the traffic starts a new generation")
	g.Expect(retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur := get(g)
		cur.Spec.Rate = &xdpgenv1alpha1.Rate{PacketsPerSecond: ptr.To[int64](1000)}
		return k8sClient.Update(ctx, cur)
	})).To(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(get(g).Status.ObservedGeneration).To(Equal(int64(2)))
	}).WithTimeout(eventually).WithPolling(poll).Should(Succeed())

	t.Log("reports of the current generation are summed; a report of an older generation is not")
	cur := get(g)
	gen := cur.Generation
	for node, st := range map[string]xdpgenv1alpha1.NodeReportStatus{
		"node-a": nodeStatus(gen, xdpgenv1alpha1.PhaseRunning, 1000, 100, ""),
		"node-b": nodeStatus(gen, xdpgenv1alpha1.PhaseRunning, 2000, 200, ""),
		"node-c": nodeStatus(gen, xdpgenv1alpha1.PhasePending, 0, 0, "waiting for start"),
		"node-d": nodeStatus(1, xdpgenv1alpha1.PhaseCompleted, 99999, 0, ""),
	} {
		_, err := putReport(ctx, k8sClient, cur, node, st)
		g.Expect(err).NotTo(HaveOccurred())
	}
	g.Eventually(func(g Gomega) {
		cur := get(g)
		g.Expect(cur.Status.Phase).To(Equal(xdpgenv1alpha1.PhaseRunning))
		g.Expect(cur.Status.NodesSummary).To(Equal("2/3"))
		g.Expect(cur.Status.NodesPending).To(Equal(int32(1)))
		g.Expect(cur.Status.Totals).To(Equal(xdpgenv1alpha1.Totals{Packets: 3000, Bytes: 3000 * 64, PacketsPerSecond: 300, BitsPerSecond: 300 * 64 * 8}))
		g.Expect(cur.Status.NodesOfInterest).To(HaveLen(2), "the running nodes, slowest first")
		g.Expect(cur.Status.NodesOfInterest[0].Node).To(Equal("node-a"))
		g.Expect(cur.Status.StartTime).NotTo(BeNil())
		g.Expect(condition(cur, xdpgenv1alpha1.ConditionProgressing).Reason).To(Equal(xdpgenv1alpha1.ReasonRunning))
		g.Expect(condition(cur, xdpgenv1alpha1.ConditionComplete).Status).To(Equal(metav1.ConditionFalse))
		g.Expect(condition(cur, xdpgenv1alpha1.ConditionFailed).Status).To(Equal(metav1.ConditionFalse))
		g.Expect(cur.Status.Rate).To(Equal("300 pps, 154 kbit/s"))
		c := condition(cur, xdpgenv1alpha1.ConditionReady)
		g.Expect(c.Status).To(Equal(metav1.ConditionTrue))
		g.Expect(c.Message).To(Equal("3/3 nodes reported"))
	}).WithTimeout(eventually).WithPolling(poll).Should(Succeed())

	t.Log("node-a's agent restarted mid-run: its summary says so, and so does an event")
	restarted := nodeStatus(gen, xdpgenv1alpha1.PhaseRunning, 1500, 100, "")
	restarted.Restarts = 1
	_, err := putReport(ctx, k8sClient, cur, "node-a", restarted)
	g.Expect(err).NotTo(HaveOccurred())
	g.Eventually(func(g Gomega) {
		cur := get(g)
		g.Expect(cur.Status.NodesOfInterest).To(ContainElement(And(HaveField("Node", "node-a"), HaveField("Restarts", int32(1)))))
	}).WithTimeout(eventually).WithPolling(poll).Should(Succeed())

	t.Log("every node completed: Completed, and the status stays")
	for node, packets := range map[string]int64{"node-a": 5000, "node-b": 6000, "node-c": 7000} {
		_, err := putReport(ctx, k8sClient, cur, node, nodeStatus(gen, xdpgenv1alpha1.PhaseCompleted, packets, 0, ""))
		g.Expect(err).NotTo(HaveOccurred())
	}
	g.Eventually(func(g Gomega) {
		cur := get(g)
		g.Expect(cur.Status.Phase).To(Equal(xdpgenv1alpha1.PhaseCompleted))
		g.Expect(cur.Status.Totals.Packets).To(Equal(int64(18000)))
		g.Expect(cur.Status.NodesCompleted).To(Equal(int32(3)))
		g.Expect(cur.Status.CompletionTime).NotTo(BeNil())
		g.Expect(condition(cur, xdpgenv1alpha1.ConditionProgressing).Reason).To(Equal(xdpgenv1alpha1.ReasonRunCompleted))
		g.Expect(condition(cur, xdpgenv1alpha1.ConditionReady).Reason).To(Equal(xdpgenv1alpha1.ReasonAgentsReady))
		g.Expect(condition(cur, xdpgenv1alpha1.ConditionComplete)).To(And(HaveField("Status", metav1.ConditionTrue),
			HaveField("Reason", xdpgenv1alpha1.ReasonRunCompleted), HaveField("ObservedGeneration", gen)))
		g.Expect(condition(cur, xdpgenv1alpha1.ConditionFailed).Status).To(Equal(metav1.ConditionFalse))
		g.Expect(testutil.ToFloat64(runPhaseMetric.WithLabelValues(ns, "udp", "Completed"))).To(Equal(1.0))
		g.Expect(testutil.ToFloat64(runPhaseMetric.WithLabelValues(ns, "udp", "Running"))).To(Equal(0.0))
		g.Expect(testutil.ToFloat64(runNodesMetric.WithLabelValues(ns, "udp", "Completed"))).To(Equal(3.0))
	}).WithTimeout(eventually).WithPolling(poll).Should(Succeed())
	g.Consistently(func(g Gomega) {
		cur := get(g)
		g.Expect(cur.Status.Phase).To(Equal(xdpgenv1alpha1.PhaseCompleted))
		g.Expect(cur.Status.Totals.Packets).To(Equal(int64(18000)))
	}).WithTimeout(2 * time.Second).WithPolling(100 * time.Millisecond).Should(Succeed())

	t.Log("a new generation starts over; node-c leaves the selection; a failed node fails the run with its message")
	g.Expect(retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur := get(g)
		cur.Spec.Duration, cur.Spec.Packets = nil, ptr.To[int64](1000000)
		return k8sClient.Update(ctx, cur)
	})).To(Succeed())
	g.Eventually(func(g Gomega) {
		cur := get(g)
		g.Expect(cur.Status.ObservedGeneration).To(Equal(cur.Generation))
		g.Expect(cur.Status.Phase).To(Equal(xdpgenv1alpha1.PhasePending))
		g.Expect(cur.Status.Totals).To(Equal(xdpgenv1alpha1.Totals{}))
	}).WithTimeout(eventually).WithPolling(poll).Should(Succeed())
	g.Expect(retry.RetryOnConflict(retry.DefaultRetry, func() error {
		n := &corev1.Node{}
		if err := k8sClient.Get(ctx, client.ObjectKey{Name: "node-c"}, n); err != nil {
			return err
		}
		delete(n.Labels, testNodeLabel)
		return k8sClient.Update(ctx, n)
	})).To(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(get(g).Status.NodesTotal).To(Equal(int32(2)))
	}).WithTimeout(eventually).WithPolling(poll).Should(Succeed())
	cur = get(g)
	_, err = putReport(ctx, k8sClient, cur, "node-a", nodeStatus(cur.Generation, xdpgenv1alpha1.PhaseCompleted, 1000000, 0, ""))
	g.Expect(err).NotTo(HaveOccurred())
	_, err = putReport(ctx, k8sClient, cur, "node-b", nodeStatus(cur.Generation, xdpgenv1alpha1.PhaseFailed, 10, 0, "interface eth9 not found"))
	g.Expect(err).NotTo(HaveOccurred())
	g.Eventually(func(g Gomega) {
		cur := get(g)
		g.Expect(cur.Status.Phase).To(Equal(xdpgenv1alpha1.PhaseFailed))
		d := condition(cur, xdpgenv1alpha1.ConditionDegraded)
		g.Expect(d.Status).To(Equal(metav1.ConditionTrue))
		g.Expect(d.Message).To(Equal("1 of 2 nodes failed: node-b: interface eth9 not found"))
		g.Expect(condition(cur, xdpgenv1alpha1.ConditionProgressing).Reason).To(Equal(xdpgenv1alpha1.ReasonRunFailed))
		g.Expect(condition(cur, xdpgenv1alpha1.ConditionFailed)).To(And(HaveField("Status", metav1.ConditionTrue),
			HaveField("Message", "1 of 2 nodes failed: node-b: interface eth9 not found"), HaveField("ObservedGeneration", cur.Generation)))
		g.Expect(condition(cur, xdpgenv1alpha1.ConditionComplete).Status).To(Equal(metav1.ConditionFalse))
		g.Expect(condition(cur, xdpgenv1alpha1.ConditionReady).Status).To(Equal(metav1.ConditionFalse))
		g.Expect(testutil.ToFloat64(runPhaseMetric.WithLabelValues(ns, "udp", "Failed"))).To(Equal(1.0))
		g.Expect(testutil.ToFloat64(runNodesMetric.WithLabelValues(ns, "udp", "Failed"))).To(Equal(1.0))
		g.Expect(cur.Status.Totals.Packets).To(Equal(int64(1000010)))
		g.Expect(cur.Status.NodesOfInterest).To(ConsistOf(And(HaveField("Node", "node-b"), HaveField("LastError", "interface eth9 not found"))))
	}).WithTimeout(eventually).WithPolling(poll).Should(Succeed())

	t.Log("the important transitions were recorded as events")
	g.Eventually(func(g Gomega) {
		var events eventsv1.EventList
		g.Expect(k8sClient.List(ctx, &events, client.InNamespace(ns))).To(Succeed())
		reasons := map[string]bool{}
		for _, e := range events.Items {
			if e.Regarding.Name == "udp" && e.Regarding.Kind == "TrafficGenerator" {
				reasons[e.Reason] = true
			}
		}
		for _, r := range []string{
			xdpgenv1alpha1.ReasonRunStarted, xdpgenv1alpha1.ReasonRunCompleted, xdpgenv1alpha1.ReasonRunFailed,
			xdpgenv1alpha1.ReasonNodeFailed, xdpgenv1alpha1.ReasonAgentRestarted,
		} {
			g.Expect(reasons).To(HaveKey(r))
		}
	}).WithTimeout(eventually).WithPolling(200 * time.Millisecond).Should(Succeed())

	t.Log("deleting the TrafficGenerator: the NodeReports are owned by it, for the garbage collector")
	cur = get(g)
	g.Expect(k8sClient.Delete(ctx, cur)).To(Succeed())
	g.Eventually(func(g Gomega) {
		err := k8sClient.Get(ctx, tgKey, &xdpgenv1alpha1.TrafficGenerator{})
		g.Expect(apierrors.IsNotFound(err)).To(BeTrue())
	}).WithTimeout(eventually).WithPolling(poll).Should(Succeed())
	g.Eventually(func() int { return seriesIn(t, runPhaseMetric, ns) + seriesIn(t, runNodesMetric, ns) }).
		WithTimeout(eventually).WithPolling(poll).Should(BeZero(), "the deleted generator's phase and node series")
	// envtest runs no garbage collector: check that it would find everything.
	var reports xdpgenv1alpha1.NodeReportList
	g.Expect(k8sClient.List(ctx, &reports, client.InNamespace(ns))).To(Succeed())
	for _, nr := range reports.Items {
		g.Expect(nr.OwnerReferences).To(ContainElement(HaveField("UID", cur.UID)), "NodeReport %s", nr.Name)
	}
	// The controller creates no DaemonSets: the agents are installed once, with xdpgen.
	var daemonSets appsv1.DaemonSetList
	g.Expect(k8sClient.List(ctx, &daemonSets, client.InNamespace(ns))).To(Succeed())
	g.Expect(daemonSets.Items).To(BeEmpty())
}

// TestNodeLost: a bounded run ends although nodes stop reporting. A node that never reports, one whose reports
// stop, and one whose Node goes away are lost, and the run fails saying which and why, without any other event
// than the passing of time.
func TestNodeLost(t *testing.T) {
	requireEnvtest(t)
	g := NewWithT(t)
	ctx := context.Background()
	ns := testNamespace(t, "lost")
	const lostAfter = 3 * time.Second
	startManagerAs(t, cfg, ns, 200*time.Millisecond, lostAfter, nil)
	silent, stale, gone, done := ns+"-silent", ns+"-stale", ns+"-gone", ns+"-done"
	createNodes(t, ns, silent, stale, gone, done)

	tg := generatorOnTestNodes(ns, "udp", func(s *xdpgenv1alpha1.TrafficGeneratorSpec) { s.Duration = &metav1.Duration{Duration: time.Minute} })
	g.Expect(k8sClient.Create(ctx, tg)).To(Succeed())
	for node, st := range map[string]xdpgenv1alpha1.NodeReportStatus{
		stale: nodeStatus(1, xdpgenv1alpha1.PhaseRunning, 100, 10, ""),
		gone:  nodeStatus(1, xdpgenv1alpha1.PhaseRunning, 100, 10, ""),
		done:  nodeStatus(1, xdpgenv1alpha1.PhaseCompleted, 1000, 0, ""),
	} {
		_, err := putReport(ctx, k8sClient, tg, node, st)
		g.Expect(err).NotTo(HaveOccurred())
	}
	g.Expect(k8sClient.Delete(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: gone}})).To(Succeed())

	t.Log("the deleted Node's node is lost at once")
	g.Eventually(func(g Gomega) {
		cur := &xdpgenv1alpha1.TrafficGenerator{}
		g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(tg), cur)).To(Succeed())
		g.Expect(cur.Status.NodesLost).To(Equal(int32(1)))
		g.Expect(cur.Status.NodesOfInterest).To(ContainElement(And(HaveField("Node", gone), HaveField("Phase", xdpgenv1alpha1.PhaseLost),
			HaveField("LastError", nodeGoneReason))))
		g.Expect(cur.Status.Phase).To(Equal(xdpgenv1alpha1.PhaseRunning))
	}).WithTimeout(lostAfter - time.Second).WithPolling(poll).Should(Succeed())

	t.Log("the silent and the stale node are lost after the timeout: the run fails and says why")
	cur := &xdpgenv1alpha1.TrafficGenerator{}
	g.Eventually(func(g Gomega) {
		g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(tg), cur)).To(Succeed())
		g.Expect(cur.Status.Phase).To(Equal(xdpgenv1alpha1.PhaseFailed))
	}).WithTimeout(lostAfter + eventually).WithPolling(poll).Should(Succeed())
	st := cur.Status
	g.Expect([]int32{st.NodesTotal, st.NodesCompleted, st.NodesLost, st.NodesRunning}).To(Equal([]int32{4, 1, 3, 0}))
	g.Expect(st.Totals.Packets).To(Equal(int64(1200)))
	g.Expect(st.CompletionTime).NotTo(BeNil())
	d := condition(cur, xdpgenv1alpha1.ConditionDegraded)
	g.Expect(d.Status).To(Equal(metav1.ConditionTrue))
	g.Expect(d.Reason).To(Equal(xdpgenv1alpha1.ReasonNodeLost))
	g.Expect(d.Message).To(ContainSubstring("node " + silent + " lost: no report for 3s (is the xdpgen agent running there?)"))
	g.Expect(d.Message).To(ContainSubstring("node " + stale + " lost: no report for 3s"))
	g.Expect(condition(cur, xdpgenv1alpha1.ConditionReady).Reason).To(Equal(xdpgenv1alpha1.ReasonNodesLost))
	g.Eventually(func(g Gomega) {
		var events eventsv1.EventList
		g.Expect(k8sClient.List(ctx, &events, client.InNamespace(ns))).To(Succeed())
		var notes []string
		for _, e := range events.Items {
			if e.Reason == xdpgenv1alpha1.ReasonRunFailed || e.Reason == xdpgenv1alpha1.ReasonNodeLost {
				notes = append(notes, e.Note)
			}
		}
		g.Expect(notes).To(ContainElement(And(
			HavePrefix("generation 1 failed: 3 of 4 nodes failed: node "+gone+" lost: "+nodeGoneReason),
			ContainSubstring("node "+silent+" lost: no report for 3s (is the xdpgen agent running there?)"))))
		// The events API folds events of one reason on one object into a series that keeps the first note.
		g.Expect(notes).To(ContainElement(MatchRegexp(`^node ` + ns + `-(gone|silent|stale) lost: `)))
	}).WithTimeout(eventually).WithPolling(200 * time.Millisecond).Should(Succeed())
}

// TestLongFailureMessage: a node's failure message longer than a NodeReport takes, shortened as the agents do,
// still fails the node, and the controller's copies of it stay bounded.
func TestLongFailureMessage(t *testing.T) {
	requireEnvtest(t)
	g := NewWithT(t)
	ctx := context.Background()
	ns := testNamespace(t, "long-message")
	startManager(t, ns, 200*time.Millisecond, nil)
	createNodes(t, ns, ns+"-a")
	tg := generatorOnTestNodes(ns, "udp", func(s *xdpgenv1alpha1.TrafficGeneratorSpec) { s.Packets = ptr.To[int64](10) })
	g.Expect(k8sClient.Create(ctx, tg)).To(Succeed())
	long := "load the XDP program: " + strings.Repeat("verifier line; ", 5000/15)
	g.Expect(len(long)).To(BeNumerically(">=", 5000))
	_, err := putReport(ctx, k8sClient, tg, ns+"-a", nodeStatus(1, xdpgenv1alpha1.PhaseFailed, 0, 0, long))
	g.Expect(err).To(HaveOccurred(), "the CRD bounds status.message")
	_, err = putReport(ctx, k8sClient, tg, ns+"-a", nodeStatus(1, xdpgenv1alpha1.PhaseFailed, 0, 0,
		xdpgenv1alpha1.ShortenMessage(long, xdpgenv1alpha1.MaxMessageLength)))
	g.Expect(err).NotTo(HaveOccurred())
	g.Eventually(func(g Gomega) {
		cur := &xdpgenv1alpha1.TrafficGenerator{}
		g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(tg), cur)).To(Succeed())
		g.Expect(cur.Status.Phase).To(Equal(xdpgenv1alpha1.PhaseFailed))
		g.Expect(cur.Status.NodesFailed).To(Equal(int32(1)))
		g.Expect(cur.Status.NodesOfInterest).To(HaveLen(1))
		g.Expect(cur.Status.NodesOfInterest[0].LastError).To(HavePrefix("load the XDP program: verifier line;"))
		g.Expect(len(cur.Status.NodesOfInterest[0].LastError)).To(BeNumerically("<=", xdpgenv1alpha1.MaxMessageLength))
		d := condition(cur, xdpgenv1alpha1.ConditionDegraded)
		g.Expect(d.Message).To(ContainSubstring("bytes cut]"))
		g.Expect(len(d.Message)).To(BeNumerically("<", 400))
	}).WithTimeout(eventually).WithPolling(poll).Should(Succeed())
	t.Log("the node's failure is an event too, its note shortened to what the events API takes")
	g.Eventually(func(g Gomega) {
		var events eventsv1.EventList
		g.Expect(k8sClient.List(ctx, &events, client.InNamespace(ns))).To(Succeed())
		var notes []string
		for _, e := range events.Items {
			if e.Reason == xdpgenv1alpha1.ReasonNodeFailed {
				notes = append(notes, e.Note)
			}
		}
		g.Expect(notes).To(ConsistOf(And(HavePrefix("node "+ns+"-a failed: load the XDP program"), HaveSuffix("bytes cut]"))))
	}).WithTimeout(eventually).WithPolling(poll).Should(Succeed())
}

// TestRecreatedGeneratorStartsFromZero: a TrafficGenerator deleted and created again under the same name starts
// from zero, although the old run's NodeReport is still there (the garbage collector has not removed it yet):
// the controller ignores reports owned by another UID.
func TestRecreatedGeneratorStartsFromZero(t *testing.T) {
	requireEnvtest(t)
	g := NewWithT(t)
	ctx := context.Background()
	ns := testNamespace(t, "recreate")
	startManager(t, ns, 200*time.Millisecond, nil)
	node := ns + "-a"
	createNodes(t, ns, node)
	newTG := func() *xdpgenv1alpha1.TrafficGenerator {
		return generatorOnTestNodes(ns, "udp", func(s *xdpgenv1alpha1.TrafficGeneratorSpec) { s.Continuous = true })
	}
	get := func(g Gomega) *xdpgenv1alpha1.TrafficGenerator {
		cur := &xdpgenv1alpha1.TrafficGenerator{}
		g.Expect(k8sClient.Get(ctx, types.NamespacedName{Namespace: ns, Name: "udp"}, cur)).To(Succeed())
		return cur
	}
	first := newTG()
	g.Expect(k8sClient.Create(ctx, first)).To(Succeed())
	running := nodeStatus(1, xdpgenv1alpha1.PhaseRunning, 5000, 100, "")
	running.Restarts = 2
	_, err := putReport(ctx, k8sClient, first, node, running)
	g.Expect(err).NotTo(HaveOccurred())
	g.Eventually(func(g Gomega) {
		g.Expect(get(g).Status.Totals.Packets).To(Equal(int64(5000)))
	}).WithTimeout(eventually).WithPolling(poll).Should(Succeed())

	g.Expect(k8sClient.Delete(ctx, first)).To(Succeed())
	second := newTG()
	g.Eventually(func() error { return k8sClient.Create(ctx, second) }).WithTimeout(eventually).WithPolling(poll).Should(Succeed())
	g.Expect(second.UID).NotTo(Equal(first.UID))
	g.Eventually(func(g Gomega) {
		st := get(g).Status
		g.Expect(st.ObservedGeneration).To(Equal(int64(1)))
		g.Expect(st.Phase).To(Equal(xdpgenv1alpha1.PhasePending))
		g.Expect(st.Totals).To(Equal(xdpgenv1alpha1.Totals{}))
		g.Expect(st.StartTime).To(BeNil())
		g.Expect(st.NodesPending).To(Equal(int32(1)))
		g.Expect(st.NodesOfInterest).To(BeEmpty())
	}).WithTimeout(eventually).WithPolling(poll).Should(Succeed())
	g.Consistently(func(g Gomega) {
		g.Expect(get(g).Status.Totals.Packets).To(BeZero())
	}).WithTimeout(time.Second).WithPolling(100 * time.Millisecond).Should(Succeed())
}

// TestDuplicateReportIgnored: a second NodeReport of a node (another name, the same generator and node) is ignored
// and recorded as an event; without that, two entries of one node in status.nodesOfInterest would make every
// status write fail, freezing the status.
func TestDuplicateReportIgnored(t *testing.T) {
	requireEnvtest(t)
	g := NewWithT(t)
	ctx := context.Background()
	ns := testNamespace(t, "duplicate")
	startManager(t, ns, 100*time.Millisecond, nil)
	node := ns + "-a"
	createNodes(t, ns, node)
	tg := generatorOnTestNodes(ns, "udp", func(s *xdpgenv1alpha1.TrafficGeneratorSpec) { s.Packets = ptr.To[int64](1000) })
	g.Expect(k8sClient.Create(ctx, tg)).To(Succeed())

	duplicate := newReport(tg, node)
	duplicate.Name = "udp-copy-of-" + node
	g.Expect(k8sClient.Create(ctx, duplicate)).To(Succeed())
	duplicate.Status = nodeStatus(1, xdpgenv1alpha1.PhaseFailed, 999999, 0, "forged")
	g.Expect(k8sClient.Status().Update(ctx, duplicate)).To(Succeed())
	_, err := putReport(ctx, k8sClient, tg, node, nodeStatus(1, xdpgenv1alpha1.PhaseCompleted, 1000, 0, ""))
	g.Expect(err).NotTo(HaveOccurred())

	g.Eventually(func(g Gomega) {
		cur := &xdpgenv1alpha1.TrafficGenerator{}
		g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(tg), cur)).To(Succeed())
		g.Expect(cur.Status.Phase).To(Equal(xdpgenv1alpha1.PhaseCompleted))
		g.Expect([]int64{int64(cur.Status.NodesTotal), cur.Status.Totals.Packets}).To(Equal([]int64{1, 1000}))
	}).WithTimeout(eventually).WithPolling(poll).Should(Succeed())
	g.Eventually(func(g Gomega) {
		var events eventsv1.EventList
		g.Expect(k8sClient.List(ctx, &events, client.InNamespace(ns))).To(Succeed())
		var notes []string
		for _, e := range events.Items {
			if e.Reason == xdpgenv1alpha1.ReasonNodeReportRejected {
				notes = append(notes, e.Note)
			}
		}
		g.Expect(notes).To(ContainElement("ignored NodeReport " + duplicate.Name + ": the report of node " + node +
			" for this TrafficGenerator is " + xdpgenv1alpha1.NodeReportName("udp", node) + ", which its agent writes"))
	}).WithTimeout(eventually).WithPolling(poll).Should(Succeed())
}
