package agent

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	xdpgenv1alpha1 "github.com/xdpgen/xdpgen/api/v1alpha1"
)

// searchUnitGenerator is a search from node-u (the one sender) to node-r, at trial 0 (none yet).
func searchUnitGenerator() *xdpgenv1alpha1.TrafficGenerator {
	return unitGenerator("search", func(s *xdpgenv1alpha1.TrafficGeneratorSpec) {
		s.Destination, s.Packets = xdpgenv1alpha1.Destination{Port: 9, PortCount: 1}, nil
		s.NodeSelector = map[string]string{"pool": "unit"}
		s.Receivers = &xdpgenv1alpha1.Receivers{NodeSelector: map[string]string{"role": "rx"}, LatencySampleEvery: ptr.To[int32](0)}
		s.Search = &xdpgenv1alpha1.Search{TrialDuration: &metav1.Duration{Duration: time.Second}}
	})
}

// searchReceiver is node-r, the search's receiver, and its report of trial, ready to receive.
func searchReceiver(tg *xdpgenv1alpha1.TrafficGenerator, trial int32) (*corev1.Node, *xdpgenv1alpha1.NodeReport) {
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-r", Labels: map[string]string{"role": "rx", "kubernetes.io/os": "linux"}},
		Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "192.0.2.9"}}}}
	rep := nodeReportFor(tg, "node-r")
	rep.Status = xdpgenv1alpha1.NodeReportStatus{Generation: tg.Generation, Trial: trial, ReceiveStartTime: now()}
	return node, rep
}

// TestUnitSearchTrials: a sender runs nothing until the controller asks for a trial; then each trial is a run of
// its own: the trial's rate and frames (rate x duration, the duration only a guard), its number in the report,
// a generator id of its own in the frames; the next trial starts afresh, not as the last one resumed; once the
// search is over, nothing runs.
func TestUnitSearchTrials(t *testing.T) {
	tg := searchUnitGenerator()
	node, ready := searchReceiver(tg, 1)
	h := newRunHarness(t, tg, node, ready)
	h.reconcile()
	requireNoRun(h)

	startTrial := func(number int32, pps int64, d time.Duration, phase ...xdpgenv1alpha1.SearchPhase) {
		t.Helper()
		var cur xdpgenv1alpha1.TrafficGenerator
		if err := h.client.Get(t.Context(), h.key, &cur); err != nil {
			t.Fatal(err)
		}
		cur.Status.ObservedGeneration = cur.Generation
		cur.Status.Search = &xdpgenv1alpha1.SearchStatus{Phase: append(phase, xdpgenv1alpha1.SearchSearching)[0], Trial: &xdpgenv1alpha1.SearchTrial{
			Number: number, Attempt: 1, PacketsPerSecond: pps, Duration: metav1.Duration{Duration: d}, StartTime: metav1.Now()}}
		if err := h.client.Update(t.Context(), &cur); err != nil { // the fake client keeps the status this way
			t.Fatal(err)
		}
		_, want := searchReceiver(&cur, number)
		var rep xdpgenv1alpha1.NodeReport
		if err := h.client.Get(t.Context(), client.ObjectKeyFromObject(want), &rep); err != nil {
			t.Fatal(err)
		}
		rep.Status = want.Status
		if err := h.client.Status().Update(t.Context(), &rep); err != nil {
			t.Fatal(err)
		}
		h.reconcile()
	}

	startTrial(1, 50_000, time.Second)
	first := h.engine()
	if first.packets != 50_000 || first.duration != 3*time.Second {
		t.Fatalf("trial 1 asked the engine for %d packets within %s, want 50000 (50 kpps x 1s) within 3s", first.packets, first.duration)
	}
	first.send <- 50_000
	first.finish <- nil
	h.waitRun()
	if done := h.awaitWrite("trial 1 completed", func(st xdpgenv1alpha1.NodeReportStatus) bool {
		return st.Phase == xdpgenv1alpha1.PhaseCompleted
	}); done.Trial != 1 || done.Packets != 50_000 {
		t.Fatalf("trial 1's last report: %+v", done)
	}

	startTrial(2, 20_000, 100*time.Millisecond)
	second := h.engine()
	if second.packets != 2000 || second.done.packets != 0 || second.generator == first.generator {
		t.Fatalf("trial 2: engine for %d packets, handed %d done, generator %d (trial 1's %d); want 2000 afresh under an id of its own",
			second.packets, second.done.packets, second.generator, first.generator)
	}
	if pending := h.awaitWrite("trial 2 pending", func(st xdpgenv1alpha1.NodeReportStatus) bool {
		return st.Phase == xdpgenv1alpha1.PhasePending
	}); pending.Trial != 2 || pending.Packets != 0 || pending.Restarts != 0 {
		t.Fatalf("trial 2's first report: %+v, want trial 2 from zero", pending)
	}
	second.send <- 2000
	second.finish <- nil
	h.waitRun()

	// A search that is over runs no trial, not even its last one on a node that did not run it.
	startTrial(3, 20_000, time.Second, xdpgenv1alpha1.SearchFailed)
	requireNoRun(h)
}

// requireNoRun checks that the agent holds no run of the harness's generator (Reconcile starts one before it
// returns).
func requireNoRun(h *runHarness) {
	h.t.Helper()
	h.agent.mu.Lock()
	defer h.agent.mu.Unlock()
	if r := h.agent.runs[h.key]; r != nil {
		h.t.Fatalf("the agent runs generation %d, trial %d", r.generation, r.trial)
	}
	h.requireNoEngine()
}
