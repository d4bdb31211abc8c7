package agent

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	xdpgenv1alpha1 "github.com/xdpgen/xdpgen/api/v1alpha1"
)

// These tests drive one agent running several generators on its node, as the run's unit tests do one.

// selectingGenerator is a generator in namespace ns that sends with threads threads from the nodes selector picks.
func selectingGenerator(ns, name string, threads int32, selector map[string]string) *xdpgenv1alpha1.TrafficGenerator {
	tg := unitGenerator(name, func(s *xdpgenv1alpha1.TrafficGeneratorSpec) {
		s.Threads, s.NodeSelector = threads, selector
	})
	tg.Namespace = ns
	return tg
}

// waitReport waits until the node's report for tg satisfies cond, and returns its status.
func (h *runHarness) waitReport(tg *xdpgenv1alpha1.TrafficGenerator, what string, cond func(xdpgenv1alpha1.NodeReportStatus) bool) xdpgenv1alpha1.NodeReportStatus {
	h.t.Helper()
	key := client.ObjectKey{Namespace: tg.Namespace, Name: xdpgenv1alpha1.NodeReportName(tg.Name, "node-u")}
	var rep xdpgenv1alpha1.NodeReport
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		err := h.client.Get(h.t.Context(), key, &rep)
		if err == nil && cond(rep.Status) {
			return rep.Status
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("the report of %s/%s is never %s; last: %+v (err %v)", tg.Namespace, tg.Name, what, rep.Status, err)
		}
	}
}

func running(st xdpgenv1alpha1.NodeReportStatus) bool { return st.Phase == xdpgenv1alpha1.PhaseRunning }

// TestUnitConcurrentRuns: generators of any namespace that select the node run at once, on CPUs of their own
// while there are enough, then sharing the least used ones and saying so; a generator that selects other nodes
// does not run; deleting one generator leaves the others running.
func TestUnitConcurrentRuns(t *testing.T) {
	a := selectingGenerator("ns-a", "a", 2, unitNodeLabels)
	b := selectingGenerator("ns-b", "b", 2, map[string]string{"pool": "unit"})
	elsewhere := selectingGenerator("ns-a", "elsewhere", 1, map[string]string{"pool": "other"})
	third := selectingGenerator("ns-c", "third", 1, nil)
	h := newRunHarness(t, a, b, elsewhere, third)

	h.reconcileOf(client.ObjectKeyFromObject(a))
	ea := h.engine()
	h.reconcileOf(client.ObjectKeyFromObject(b))
	eb := h.engine()
	if diff := cmp.Diff([][]int{{0, 1}, {2, 3}}, [][]int{ea.cpus, eb.cpus}); diff != "" {
		t.Errorf("CPUs of the two runs (-want +got):\n%s", diff)
	}
	for tg, want := range map[*xdpgenv1alpha1.TrafficGenerator]string{a: "0-1", b: "2-3"} {
		st := h.waitReport(tg, "running", running)
		if st.CPUs != want || st.CPUsShared || strings.Contains(st.Message, "sharing") {
			t.Errorf("%s reports CPUs %q (shared %v, %q), want %s of its own", tg.Name, st.CPUs, st.CPUsShared, st.Message, want)
		}
	}

	h.reconcileOf(client.ObjectKeyFromObject(elsewhere))
	h.requireNoEngine()
	err := h.client.Get(t.Context(), client.ObjectKey{Namespace: "ns-a", Name: xdpgenv1alpha1.NodeReportName("elsewhere", "node-u")},
		&xdpgenv1alpha1.NodeReport{})
	if !apierrors.IsNotFound(err) {
		t.Errorf("a generator selecting other nodes has a report on this node (err %v)", err)
	}

	h.reconcileOf(client.ObjectKeyFromObject(third))
	ec := h.engine()
	st := h.waitReport(third, "running", running)
	if !cmp.Equal(ec.cpus, []int{0}) || st.CPUs != "0" || !st.CPUsShared ||
		!strings.Contains(st.Message, "sharing CPUs 0 with other TrafficGenerators on this node") {
		t.Errorf("the run past the free CPUs got CPUs %v and reports %q (shared %v, %q), want CPU 0, shared, and a note",
			ec.cpus, st.CPUs, st.CPUsShared, st.Message)
	}

	if err := h.client.Delete(t.Context(), a); err != nil {
		t.Fatal(err)
	}
	h.reconcileOf(client.ObjectKeyFromObject(a))
	if !ea.isClosed() || eb.isClosed() || ec.isClosed() {
		t.Fatalf("after deleting a: engines closed a %v, b %v, third %v; want only a's", ea.isClosed(), eb.isClosed(), ec.isClosed())
	}
	eb.send <- 100
	eb.finish <- nil
	h.waitRunOf(client.ObjectKeyFromObject(b))
	done := h.waitReport(b, "completed", func(st xdpgenv1alpha1.NodeReportStatus) bool { return st.Phase == xdpgenv1alpha1.PhaseCompleted })
	if done.Packets != 100 || done.CPUs != "2-3" {
		t.Errorf("b completed with %d packets on CPUs %q, want 100 on 2-3", done.Packets, done.CPUs)
	}
	ec.finish <- nil
	h.waitRunOf(client.ObjectKeyFromObject(third))
}

// TestUnitRelabel: when the node's labels change so that a generator no longer selects it, its run stops and
// its report says why; a generator that still selects the node runs on. The node's change looks at every
// generator.
func TestUnitRelabel(t *testing.T) {
	unselected := selectingGenerator("unit", "unselected", 1, unitNodeLabels)
	everywhere := selectingGenerator("unit", "everywhere", 1, nil)
	h := newRunHarness(t, unselected, everywhere)
	h.reconcileOf(client.ObjectKeyFromObject(unselected))
	eu := h.engine()
	h.reconcileOf(client.ObjectKeyFromObject(everywhere))
	ee := h.engine()
	eu.send <- 300
	h.waitReport(unselected, "running", running)

	var node corev1.Node
	if err := h.client.Get(t.Context(), client.ObjectKey{Name: "node-u"}, &node); err != nil {
		t.Fatal(err)
	}
	node.Labels = map[string]string{"pool": "other", "kubernetes.io/os": "linux"}
	if err := h.client.Update(t.Context(), &node); err != nil {
		t.Fatal(err)
	}
	var keys []types.NamespacedName
	for _, req := range h.agent.everyGenerator(t.Context(), &node) {
		keys = append(keys, req.NamespacedName)
		h.reconcileOf(req.NamespacedName)
	}
	if len(keys) != 2 {
		t.Errorf("the node's change looked at %v, want both generators", keys)
	}
	if !eu.isClosed() || ee.isClosed() {
		t.Fatalf("after the relabel: engines closed unselected %v, everywhere %v; want only unselected's", eu.isClosed(), ee.isClosed())
	}
	h.requireNoEngine()
	st := h.waitReport(unselected, "failed", func(st xdpgenv1alpha1.NodeReportStatus) bool { return st.Phase == xdpgenv1alpha1.PhaseFailed })
	if want := "stopped after 300 packets: the node's labels no longer match spec.nodeSelector"; st.Message != want || st.Packets != 300 ||
		st.CompletionTime == nil {
		t.Errorf("the unselected run reports %+v, want 300 packets and %q", st, want)
	}
	ee.finish <- nil
	h.waitRunOf(client.ObjectKeyFromObject(everywhere))
}

// TestCPUList: CPUs are written as the kernel writes CPU lists.
func TestCPUList(t *testing.T) {
	for _, tc := range []struct {
		cpus []int
		want string
	}{{nil, ""}, {[]int{3}, "3"}, {[]int{0, 1, 2, 3}, "0-3"}, {[]int{0, 2, 3, 4, 7}, "0,2-4,7"}} {
		if got := cpuList(tc.cpus); got != tc.want {
			t.Errorf("cpuList(%v) = %q, want %q", tc.cpus, got, tc.want)
		}
	}
}
