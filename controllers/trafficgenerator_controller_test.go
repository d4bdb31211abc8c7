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
	"testing"
	"time"

	. "github.com/onsi/gomega"
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

// setDaemonSetStatus plays the DaemonSet controller, which envtest does not run.
func setDaemonSetStatus(ctx context.Context, key types.NamespacedName, desired, ready int32) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		ds := &appsv1.DaemonSet{}
		if err := k8sClient.Get(ctx, key, ds); err != nil {
			return err
		}
		ds.Status = appsv1.DaemonSetStatus{
			ObservedGeneration:     ds.Generation,
			DesiredNumberScheduled: desired,
			CurrentNumberScheduled: desired,
			UpdatedNumberScheduled: desired,
			NumberReady:            ready,
			NumberAvailable:        ready,
		}
		return k8sClient.Status().Update(ctx, ds)
	})
}

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

// TestControllerLifecycle follows one TrafficGenerator through the controller: the agent DaemonSet is created and
// kept in sync with the spec, NodeReports are summed into the status (Pending, Running, Completed; then a new
// generation that fails), the DaemonSet is removed when a run ends and the status kept, and what the controller
// created is owned by the TrafficGenerator.
func TestControllerLifecycle(t *testing.T) {
	requireEnvtest(t)
	g := NewWithT(t)
	ctx := context.Background()
	ns := testNamespace(t, "lifecycle")
	startManager(t, ns, 200*time.Millisecond, nil)

	tg := &xdpgenv1alpha1.TrafficGenerator{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "udp"},
		Spec: xdpgenv1alpha1.TrafficGeneratorSpec{
			NodeSelector: map[string]string{"xdpgen.io/sender": "true"},
			Tolerations:  []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "load", Effect: corev1.TaintEffectNoSchedule}},
			Destination:  xdpgenv1alpha1.Destination{Address: "10.200.0.2"},
			Duration:     &metav1.Duration{Duration: 30 * time.Second},
		},
	}
	g.Expect(k8sClient.Create(ctx, tg)).To(Succeed())
	tgKey := client.ObjectKeyFromObject(tg)
	dsKey := types.NamespacedName{Namespace: ns, Name: "xdpgen-udp"}
	get := func(g Gomega) *xdpgenv1alpha1.TrafficGenerator {
		cur := &xdpgenv1alpha1.TrafficGenerator{}
		g.Expect(k8sClient.Get(ctx, tgKey, cur)).To(Succeed())
		return cur
	}
	getDS := func(g Gomega) *appsv1.DaemonSet {
		ds := &appsv1.DaemonSet{}
		g.Expect(k8sClient.Get(ctx, dsKey, ds)).To(Succeed())
		return ds
	}
	dsGone := func(g Gomega) {
		err := k8sClient.Get(ctx, dsKey, &appsv1.DaemonSet{})
		g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "DaemonSet still there: %v", err)
	}

	t.Log("the agent DaemonSet is created as daemonSetFor builds it, owned by the TrafficGenerator")
	var ds *appsv1.DaemonSet
	g.Eventually(func(g Gomega) { ds = getDS(g) }).WithTimeout(eventually).WithPolling(poll).Should(Succeed())
	cur := get(g)
	want := daemonSetFor(cur, DefaultAgentConfig())
	g.Expect(metav1.IsControlledBy(ds, cur)).To(BeTrue(), "owner references: %+v", ds.OwnerReferences)
	g.Expect(ds.Annotations[annotationTemplateHash]).To(Equal(want.Annotations[annotationTemplateHash]))
	g.Expect(ds.Spec.Selector).To(Equal(want.Spec.Selector))
	pod := ds.Spec.Template.Spec
	g.Expect(pod.NodeSelector).To(Equal(map[string]string{"kubernetes.io/os": "linux", "xdpgen.io/sender": "true"}))
	g.Expect(pod.Tolerations).To(Equal(cur.Spec.Tolerations))
	g.Expect(pod.HostNetwork).To(BeTrue())
	g.Expect(pod.DNSPolicy).To(Equal(corev1.DNSClusterFirstWithHostNet))
	g.Expect(pod.ServiceAccountName).To(Equal("xdpgen-agent"))
	g.Expect(pod.Containers).To(HaveLen(1))
	g.Expect(pod.Containers[0].Image).To(Equal(DefaultAgentConfig().Image))
	g.Expect(pod.Containers[0].Args).To(ContainElements("--generator=udp", "--namespace="+ns))
	g.Expect(pod.Containers[0].SecurityContext.Capabilities.Add).To(ConsistOf(corev1.Capability("BPF"), corev1.Capability("NET_ADMIN"), corev1.Capability("PERFMON")))
	g.Expect(pod.Containers[0].Env[0].ValueFrom.FieldRef.FieldPath).To(Equal("spec.nodeName"))

	t.Log("Pending while the DaemonSet controller has not scheduled the agents, Ready once they are")
	g.Eventually(func(g Gomega) {
		cur := get(g)
		g.Expect(cur.Status.ObservedGeneration).To(Equal(int64(1)))
		g.Expect(cur.Status.Phase).To(Equal(xdpgenv1alpha1.PhasePending))
		g.Expect(condition(cur, xdpgenv1alpha1.ConditionReady).Reason).To(Equal(xdpgenv1alpha1.ReasonWaitingForAgents))
	}).WithTimeout(eventually).WithPolling(poll).Should(Succeed())
	g.Expect(setDaemonSetStatus(ctx, dsKey, 3, 3)).To(Succeed())
	g.Eventually(func(g Gomega) {
		cur := get(g)
		c := condition(cur, xdpgenv1alpha1.ConditionReady)
		g.Expect(c.Status).To(Equal(metav1.ConditionTrue))
		g.Expect(c.Message).To(Equal("3/3 agents ready"))
		g.Expect(cur.Status.NodesSummary).To(Equal("0/3"))
	}).WithTimeout(eventually).WithPolling(poll).Should(Succeed())

	t.Log("a change of the node selection updates the DaemonSet; a change of the traffic does not touch it")
	g.Expect(retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur := get(g)
		cur.Spec.NodeSelector = map[string]string{"xdpgen.io/sender": "yes"}
		return k8sClient.Update(ctx, cur)
	})).To(Succeed())
	g.Eventually(func(g Gomega) {
		ds := getDS(g)
		g.Expect(ds.Spec.Template.Spec.NodeSelector).To(HaveKeyWithValue("xdpgen.io/sender", "yes"))
		g.Expect(ds.Annotations[annotationTemplateHash]).To(Equal(daemonSetFor(get(g), DefaultAgentConfig()).Annotations[annotationTemplateHash]))
	}).WithTimeout(eventually).WithPolling(poll).Should(Succeed())
	g.Expect(setDaemonSetStatus(ctx, dsKey, 3, 3)).To(Succeed())
	rv := getDS(g).ResourceVersion
	g.Expect(retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur := get(g)
		cur.Spec.Rate = &xdpgenv1alpha1.Rate{PacketsPerSecond: ptr.To[int64](1000)}
		return k8sClient.Update(ctx, cur)
	})).To(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(get(g).Status.ObservedGeneration).To(Equal(int64(3)))
	}).WithTimeout(eventually).WithPolling(poll).Should(Succeed())
	g.Consistently(func(g Gomega) {
		g.Expect(getDS(g).ResourceVersion).To(Equal(rv))
	}).WithTimeout(time.Second).WithPolling(100 * time.Millisecond).Should(Succeed())

	t.Log("reports of the current generation are summed; a report of an older generation is not")
	cur = get(g)
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
		g.Expect(cur.Status.Totals).To(Equal(xdpgenv1alpha1.Totals{Packets: 3000, Bytes: 3000 * 64, PacketsPerSecond: 300, BitsPerSecond: 300 * 64 * 8}))
		g.Expect(cur.Status.Nodes).To(HaveLen(3))
		g.Expect(cur.Status.StartTime).NotTo(BeNil())
		g.Expect(condition(cur, xdpgenv1alpha1.ConditionProgressing).Reason).To(Equal(xdpgenv1alpha1.ReasonRunning))
	}).WithTimeout(eventually).WithPolling(poll).Should(Succeed())

	t.Log("node-a's agent restarted mid-run: its summary says so, and so does an event")
	restarted := nodeStatus(gen, xdpgenv1alpha1.PhaseRunning, 1500, 100, "")
	restarted.Restarts = 1
	_, err := putReport(ctx, k8sClient, cur, "node-a", restarted)
	g.Expect(err).NotTo(HaveOccurred())
	g.Eventually(func(g Gomega) {
		cur := get(g)
		g.Expect(cur.Status.Nodes).To(ContainElement(And(HaveField("Node", "node-a"), HaveField("Restarts", int32(1)))))
	}).WithTimeout(eventually).WithPolling(poll).Should(Succeed())

	t.Log("every node completed: Completed, the DaemonSet is deleted, the status stays")
	for node, packets := range map[string]int64{"node-a": 5000, "node-b": 6000, "node-c": 7000} {
		_, err := putReport(ctx, k8sClient, cur, node, nodeStatus(gen, xdpgenv1alpha1.PhaseCompleted, packets, 0, ""))
		g.Expect(err).NotTo(HaveOccurred())
	}
	g.Eventually(func(g Gomega) {
		cur := get(g)
		g.Expect(cur.Status.Phase).To(Equal(xdpgenv1alpha1.PhaseCompleted))
		g.Expect(cur.Status.Totals.Packets).To(Equal(int64(18000)))
		g.Expect(cur.Status.CompletionTime).NotTo(BeNil())
		g.Expect(condition(cur, xdpgenv1alpha1.ConditionProgressing).Reason).To(Equal(xdpgenv1alpha1.ReasonRunCompleted))
		g.Expect(condition(cur, xdpgenv1alpha1.ConditionReady).Reason).To(Equal(xdpgenv1alpha1.ReasonAgentsRemoved))
		dsGone(g)
	}).WithTimeout(eventually).WithPolling(poll).Should(Succeed())
	g.Consistently(func(g Gomega) {
		dsGone(g)
		cur := get(g)
		g.Expect(cur.Status.Phase).To(Equal(xdpgenv1alpha1.PhaseCompleted))
		g.Expect(cur.Status.Totals.Packets).To(Equal(int64(18000)))
	}).WithTimeout(2 * time.Second).WithPolling(100 * time.Millisecond).Should(Succeed())

	t.Log("a new generation starts the agents again; a failed node fails the run with its message")
	g.Expect(retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur := get(g)
		cur.Spec.Duration, cur.Spec.Packets = nil, ptr.To[int64](1000000)
		return k8sClient.Update(ctx, cur)
	})).To(Succeed())
	g.Eventually(func(g Gomega) {
		getDS(g)
		cur := get(g)
		g.Expect(cur.Status.ObservedGeneration).To(Equal(cur.Generation))
		g.Expect(cur.Status.Phase).To(Equal(xdpgenv1alpha1.PhasePending))
		g.Expect(cur.Status.Totals).To(Equal(xdpgenv1alpha1.Totals{}))
	}).WithTimeout(eventually).WithPolling(poll).Should(Succeed())
	g.Expect(setDaemonSetStatus(ctx, dsKey, 2, 2)).To(Succeed())
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
		g.Expect(cur.Status.Totals.Packets).To(Equal(int64(1000010)))
		dsGone(g)
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
			xdpgenv1alpha1.ReasonDaemonSetCreated, xdpgenv1alpha1.ReasonDaemonSetUpdated, xdpgenv1alpha1.ReasonRunStarted,
			xdpgenv1alpha1.ReasonRunCompleted, xdpgenv1alpha1.ReasonDaemonSetDeleted, xdpgenv1alpha1.ReasonRunFailed,
			xdpgenv1alpha1.ReasonNodeFailed, xdpgenv1alpha1.ReasonAgentRestarted,
		} {
			g.Expect(reasons).To(HaveKey(r))
		}
	}).WithTimeout(eventually).WithPolling(200 * time.Millisecond).Should(Succeed())

	t.Log("deleting the TrafficGenerator: all the controller created is owned by it, for the garbage collector")
	g.Expect(retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur := get(g)
		cur.Spec.Packets = ptr.To[int64](2000000)
		return k8sClient.Update(ctx, cur)
	})).To(Succeed())
	g.Eventually(func(g Gomega) { getDS(g) }).WithTimeout(eventually).WithPolling(poll).Should(Succeed())
	cur = get(g)
	g.Expect(k8sClient.Delete(ctx, cur)).To(Succeed())
	g.Eventually(func(g Gomega) {
		err := k8sClient.Get(ctx, tgKey, &xdpgenv1alpha1.TrafficGenerator{})
		g.Expect(apierrors.IsNotFound(err)).To(BeTrue())
	}).WithTimeout(eventually).WithPolling(poll).Should(Succeed())
	// envtest runs no garbage collector: check that it would find everything. The controller creates
	// DaemonSets only; each must name the deleted TrafficGenerator as its controller.
	var daemonSets appsv1.DaemonSetList
	g.Expect(k8sClient.List(ctx, &daemonSets, client.InNamespace(ns))).To(Succeed())
	g.Expect(daemonSets.Items).To(HaveLen(1))
	for _, ds := range daemonSets.Items {
		ref := metav1.GetControllerOf(&ds)
		g.Expect(ref).NotTo(BeNil(), "DaemonSet %s has no controller", ds.Name)
		g.Expect(ref.UID).To(Equal(cur.UID))
		g.Expect(ref.BlockOwnerDeletion).To(Equal(ptr.To(true)))
	}
	var reports xdpgenv1alpha1.NodeReportList
	g.Expect(k8sClient.List(ctx, &reports, client.InNamespace(ns))).To(Succeed())
	for _, nr := range reports.Items {
		g.Expect(nr.OwnerReferences).To(ContainElement(HaveField("UID", cur.UID)), "NodeReport %s", nr.Name)
	}
	// And the controller does not start anything for a TrafficGenerator that is gone.
	g.Consistently(func(g Gomega) {
		var daemonSets appsv1.DaemonSetList
		g.Expect(k8sClient.List(ctx, &daemonSets, client.InNamespace(ns))).To(Succeed())
		g.Expect(daemonSets.Items).To(HaveLen(1))
	}).WithTimeout(time.Second).WithPolling(100 * time.Millisecond).Should(Succeed())
}
