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

package e2e

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/xdpgen/xdpgen/agent"
	xdpgenv1alpha1 "github.com/xdpgen/xdpgen/api/v1alpha1"
	"github.com/xdpgen/xdpgen/test/cluster"
	"github.com/xdpgen/xdpgen/test/poll"
)

// checkFailed checks a run that failed on the node: phase Failed, the node's error naming what is wrong in the
// status, in `kubectl get tg` and `kubectl describe tg`; no XDP program and no pin left, the agent running on.
func (e *clusterEnv) checkFailed(t *testing.T, name string, phases *phaseRecorder, far *farHost, reason ...string) {
	t.Helper()
	pod := e.waitAgentRunning(t, e.cluster.NodeName(), 60*time.Second)
	e.kubectlWait(t, name, xdpgenv1alpha1.ConditionFailed, 90*time.Second)
	e.kubectlWait(t, name, xdpgenv1alpha1.ConditionProgressing+"=false", 5*time.Second) // the end, good or bad
	tg := e.waitPhase(t, name, xdpgenv1alpha1.PhaseFailed, time.Second)
	if diff := cmp.Diff([]xdpgenv1alpha1.Phase{xdpgenv1alpha1.PhasePending, xdpgenv1alpha1.PhaseFailed},
		phases.seenUntil(tg.Status.Phase)); diff != "" {
		t.Errorf("phases (-want +got):\n%s", diff)
	}
	if n := tg.Status.NodesOfInterest; len(n) != 1 || n[0].Phase != xdpgenv1alpha1.PhaseFailed {
		t.Fatalf("status.nodesOfInterest = %+v, want this node Failed", n)
	}
	for _, r := range reason {
		if !strings.Contains(tg.Status.NodesOfInterest[0].LastError, r) {
			t.Errorf("the node's error %q does not mention %q", tg.Status.NodesOfInterest[0].LastError, r)
		}
	}
	if matched, _ := far.counts(t); matched.Packets != 0 || tg.Status.Totals.Packets != 0 {
		t.Errorf("a failed run sent: far end %d packets, status %d", matched.Packets, tg.Status.Totals.Packets)
	}
	e.kubectlShows(t, name, []string{"Failed"}, append([]string{"Failed", "Degraded"}, reason...))
	e.checkRunCleanedUp(t, tg, pod)
}

// TestNonexistentInterface: spec.interface names no interface on the node.
func TestNonexistentInterface(t *testing.T) {
	e := requireCluster(t)
	const name = "e2e-no-interface"
	far := newFarHost(t, 2, 9, 9)
	phases := e.recordPhases(t, name)
	e.applyTrafficGenerator(t, name, udpSpec(far.farIP.String(), 9, 1, 1000, 1000, "  interface: nosuch0\n"+e.onFirstNode()))
	e.checkFailed(t, name, phases, far, "spec.interface", "nosuch0")
}

// TestUnresolvableMAC: the destination is on the node's veth subnet, but no host answers ARP for it.
func TestUnresolvableMAC(t *testing.T) {
	e := requireCluster(t)
	const name = "e2e-no-mac"
	far := newFarHost(t, 3, 9, 9)
	silent := far.farIP.Next() // 10.251.3.3: nobody there
	phases := e.recordPhases(t, name)
	e.applyTrafficGenerator(t, name, udpSpec(silent.String(), 9, 1, 1000, 1000, e.onFirstNode()))
	e.checkFailed(t, name, phases, far, "spec.destination.mac", "cannot resolve the MAC", "ARP")
}

// TestAgentPodDeletedMidRun: the node's agent pod is deleted while it sends; the DaemonSet starts another, which
// finishes the run without sending twice what the first one sent.
func TestAgentPodDeletedMidRun(t *testing.T) {
	e := requireCluster(t)
	const (
		name    = "e2e-pod-deleted"
		packets = 200_000
	)
	far := newFarHost(t, 4, 9, 9)
	phases := e.recordPhases(t, name)
	e.applyTrafficGenerator(t, name, udpSpec(far.farIP.String(), 9, 1, 20_000, packets, e.onFirstNode()))
	first := e.waitAgentRunning(t, e.cluster.NodeName(), 60*time.Second)
	e.waitPackets(t, name, 40_000, 60*time.Second)

	if out, err := e.run("-n", namespace, "delete", "pod", first.Name, "--wait=true"); err != nil {
		t.Fatalf("kubectl delete pod: %v\n%s", err, out)
	}
	atDelete, _ := far.counts(t)
	t.Logf("deleted agent pod %s after %d packets had arrived", first.Name, atDelete.Packets)
	if atDelete.Packets >= packets {
		t.Fatalf("the run was over (%d packets) before the pod was deleted: slow the rate down", atDelete.Packets)
	}
	second := e.waitAgentRunning(t, e.cluster.NodeName(), 60*time.Second)
	if second.UID == first.UID {
		t.Fatalf("the same pod %s still runs", first.Name)
	}

	tg := e.waitPhase(t, name, xdpgenv1alpha1.PhaseCompleted, 90*time.Second)
	if diff := cmp.Diff([]xdpgenv1alpha1.Phase{xdpgenv1alpha1.PhasePending, xdpgenv1alpha1.PhaseRunning,
		xdpgenv1alpha1.PhaseCompleted}, phases.seenUntil(tg.Status.Phase)); diff != "" {
		t.Errorf("phases (-want +got):\n%s", diff)
	}
	matched, _ := far.counts(t)
	t.Logf("far end %d packets, status %d, spec %d", matched.Packets, tg.Status.Totals.Packets, packets)
	if int64(matched.Packets) != packets || tg.Status.Totals.Packets != packets {
		t.Errorf("after a restart: far end %d packets, status %d, spec %d: all three must be equal (no double counting, no loss)",
			matched.Packets, tg.Status.Totals.Packets, packets)
	}
	nr := e.nodeReport(t, name)
	t.Logf("NodeReport: restarts %d, message %q", nr.Status.Restarts, nr.Status.Message)
	if nr.Status.Restarts < 1 {
		t.Errorf("the NodeReport says %d restarts after the agent pod was deleted mid-run", nr.Status.Restarts)
	}
	e.kubectlShows(t, name, []string{"Completed", strconv.Itoa(packets)}, []string{"Completed"})
	// What happened must be visible where the user looks, not only in the NodeReport: the run was restarted.
	if out, _ := e.run("-n", namespace, "describe", "tg", name); !strings.Contains(strings.ToLower(out), "restart") {
		t.Errorf("kubectl describe tg %s does not say that the node's agent restarted mid-run (the NodeReport has restarts %d)",
			name, nr.Status.Restarts)
	}
	e.checkRunCleanedUp(t, tg, second)
}

// TestAPIServerOutage: the API server stops for ten seconds mid-run. The traffic goes on meanwhile, and the
// reports catch up when it is back.
func TestAPIServerOutage(t *testing.T) {
	e := requireCluster(t)
	const (
		name    = "e2e-apiserver-outage"
		packets = 500_000
	)
	far := newFarHost(t, 5, 9, 9)
	e.applyTrafficGenerator(t, name, udpSpec(far.farIP.String(), 9, 1, 20_000, packets, e.onFirstNode()))
	pod := e.waitAgentRunning(t, e.cluster.NodeName(), 60*time.Second)
	e.waitPackets(t, name, 40_000, 60*time.Second)

	before, _ := far.counts(t)
	stopped := time.Now()
	restarted := false
	restart := func() {
		if !restarted {
			restarted = true
			if err := e.cluster.Start(context.Background(), cluster.APIServer); err != nil {
				t.Fatalf("start the API server again: %v", err)
			}
			e.waitAdmissionReady(t, 90*time.Second)
		}
	}
	defer restart()
	// An outage, not a maintenance: SIGTERM, and SIGKILL if it has not gone within 2 s.
	if err := e.cluster.Stop(cluster.APIServer, 2*time.Second); err != nil {
		t.Logf("stop the API server: %v", err)
	}
	t.Logf("API server stopped in %.1f s", time.Since(stopped).Seconds())
	time.Sleep(10*time.Second - time.Since(stopped))
	during, _ := far.counts(t)
	restart()
	t.Logf("API server down %.1f s: the far end counted %d packets meanwhile", time.Since(stopped).Seconds(),
		during.Packets-before.Packets)
	if during.Packets-before.Packets < 100_000 { // 10 s at 20 kpps is 200k
		t.Errorf("the traffic stalled while the API server was away: %d packets in 10 s at 20 kpps",
			during.Packets-before.Packets)
	}

	tg := e.waitPhase(t, name, xdpgenv1alpha1.PhaseCompleted, 120*time.Second)
	matched, _ := far.counts(t)
	t.Logf("far end %d packets, status %d, spec %d", matched.Packets, tg.Status.Totals.Packets, packets)
	if int64(matched.Packets) != packets || tg.Status.Totals.Packets != packets {
		t.Errorf("after an API server outage: far end %d packets, status %d, spec %d: all three must be equal",
			matched.Packets, tg.Status.Totals.Packets, packets)
	}
	e.kubectlShows(t, name, []string{"Completed", strconv.Itoa(packets)}, []string{"Completed"})
	e.checkRunCleanedUp(t, tg, pod)
}

// TestDeletedMidRun: the TrafficGenerator is deleted while the node's agent sends for it. The agent stops sending,
// the node's report and the run's pins go, no XDP program is left, and the agent runs on.
func TestDeletedMidRun(t *testing.T) {
	e := requireCluster(t)
	const name = "e2e-deleted"
	far := newFarHost(t, 6, 9, 9)
	e.applyTrafficGenerator(t, name, udpSpec(far.farIP.String(), 9, 1, 20_000, 10_000_000, e.onFirstNode()))
	pod := e.waitAgentRunning(t, e.cluster.NodeName(), 60*time.Second)
	tg := e.waitPackets(t, name, 40_000, 60*time.Second)
	if len(runPins(t, tg)) == 0 {
		t.Errorf("the run pinned no counters in %s", agent.DefaultPinDir)
	}

	if out, err := e.run("-n", namespace, "delete", "tg", name, "--wait=true"); err != nil {
		t.Fatalf("kubectl delete tg: %v\n%s", err, out)
	}
	out, err := e.run("-n", namespace, "get", "tg", name)
	t.Logf("$ kubectl get tg %s\n%s", name, out)
	if err == nil || !strings.Contains(out, "not found") {
		t.Errorf("kubectl get tg after the deletion: %v, %s", err, out)
	}
	poll.Until(t, 30*time.Second, pollInterval, "the NodeReport removed with its TrafficGenerator", func() error {
		var nrs xdpgenv1alpha1.NodeReportList
		if err := e.client.List(context.Background(), &nrs, client.InNamespace(namespace),
			client.MatchingLabels{xdpgenv1alpha1.LabelGenerator: name}); err != nil {
			return err
		}
		if len(nrs.Items) > 0 {
			return fmt.Errorf("%d reports", len(nrs.Items))
		}
		return nil
	})
	a, _ := far.counts(t)
	time.Sleep(2 * time.Second)
	b, _ := far.counts(t)
	if b.Packets != a.Packets {
		t.Errorf("frames still arrive after the TrafficGenerator and its report are gone: %d in 2 s", b.Packets-a.Packets)
	}
	e.checkRunCleanedUp(t, tg, pod)
	var events corev1.EventList
	_ = e.client.List(context.Background(), &events, client.InNamespace(namespace))
	for _, ev := range events.Items {
		if ev.InvolvedObject.Name == name || strings.HasPrefix(ev.InvolvedObject.Name, name+"-") {
			t.Logf("event %s %s/%s: %s %s", ev.LastTimestamp.Format(time.TimeOnly), ev.InvolvedObject.Kind,
				ev.InvolvedObject.Name, ev.Reason, ev.Message)
		}
	}
}
