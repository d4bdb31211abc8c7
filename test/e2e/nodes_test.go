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
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	xdpgenv1alpha1 "github.com/xdpgen/xdpgen/api/v1alpha1"
	"github.com/xdpgen/xdpgen/test/cluster"
	"github.com/xdpgen/xdpgen/test/poll"
)

// farHostOfEachNode makes far host number index on each of the two nodes, counting UDP to port, by node name.
func (e *clusterEnv) farHostOfEachNode(t *testing.T, index int, port uint16) ([]cluster.Node, map[string]*farHost) {
	t.Helper()
	nodes := e.cluster.Nodes()
	if len(nodes) != 2 {
		t.Fatalf("the cluster has %d nodes, want 2", len(nodes))
	}
	fars := map[string]*farHost{}
	for _, n := range nodes {
		fars[n.Name] = newFarHostOf(t, n, index, port, port)
	}
	return nodes, fars
}

// TestEveryNodeSends: a TrafficGenerator without a nodeSelector runs on the agent of each of the two nodes, each
// sending from its own node's network namespace, and both nodes report. Each node has a far host of its own with
// the same addresses on a veth from that node, so the one destination is on every node's own link: no frame is
// routed on its way (routed live frames come back to the page pool rewritten, a bug of its own).
func TestEveryNodeSends(t *testing.T) {
	e := requireCluster(t)
	const (
		name    = "e2e-every-node"
		packets = 100_000
		port    = 9
	)
	nodes, fars := e.farHostOfEachNode(t, 30, port)
	dst := fars[nodes[0].Name].farIP.String()
	e.applyTrafficGenerator(t, name, udpSpec(dst, port, 1, 20_000, packets, ""))

	agentPod := e.waitAgentRunning(t, nodes[0].Name, 60*time.Second)
	e.waitAgentRunning(t, nodes[1].Name, 60*time.Second)

	tg := e.waitPhase(t, name, xdpgenv1alpha1.PhaseCompleted, 90*time.Second)
	t.Logf("status.totals %+v, nodes completed %d of %d", tg.Status.Totals, tg.Status.NodesCompleted, tg.Status.NodesTotal)
	for _, n := range nodes {
		s := e.nodeReportOf(t, name, n.Name).Status
		matched, other := fars[n.Name].counts(t)
		t.Logf("node %s: reported %s with %d packets; its far host counted %d (%d other frames)", n.Name, s.Phase,
			s.Packets, matched.Packets, other.Packets)
		if s.Phase != xdpgenv1alpha1.PhaseCompleted || s.Packets != packets || int64(matched.Packets) != packets {
			t.Errorf("node %s: phase %s, reported %d packets, its far host counted %d, spec %d per node: want Completed and all equal",
				n.Name, s.Phase, s.Packets, matched.Packets, packets)
		}
	}
	if tg.Status.Totals.Packets != 2*packets {
		t.Errorf("status.totals.packets %d, want %d (two nodes of %d)", tg.Status.Totals.Packets, 2*packets, packets)
	}
	e.checkRunCleanedUp(t, tg, agentPod)
}

// TestNodeLost: a run on both nodes, and the second node goes down mid-run: its kubelet stops and its agent dies
// (stopping the kubelet alone leaves its containers running, and the agent would go on reporting). The controller
// marks the silent node lost after the node-lost timeout (test/e2e/install: 45 s); the first node finishes its
// part, and the run completes Failed, saying why in its Degraded condition. The kubelet starts again afterwards.
func TestNodeLost(t *testing.T) {
	e := requireCluster(t)
	const (
		name    = "e2e-node-lost"
		packets = 1_200_000 // 60 s at 20 kpps: the first node is still sending when the second is lost
		port    = 9
	)
	nodes, fars := e.farHostOfEachNode(t, 32, port)
	first, second := nodes[0].Name, nodes[1].Name
	agentPod := e.waitAgentRunning(t, first, 60*time.Second)
	secondPod := e.waitAgentRunning(t, second, 60*time.Second)
	e.applyTrafficGenerator(t, name, udpSpec(fars[first].farIP.String(), port, 1, 20_000, packets, ""))
	poll.Until(t, 60*time.Second, pollInterval, "node "+second+" to report packets", func() error {
		var nr xdpgenv1alpha1.NodeReport
		key := client.ObjectKey{Namespace: namespace, Name: xdpgenv1alpha1.NodeReportName(name, second)}
		if err := e.client.Get(context.Background(), key, &nr); err != nil {
			return err
		}
		if nr.Status.Packets < 20_000 {
			return fmt.Errorf("phase %s, %d packets", nr.Status.Phase, nr.Status.Packets)
		}
		return nil
	})

	kubelet, err := e.cluster.NodeComponent(second, cluster.Kubelet)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.cluster.Stop(kubelet, 5*time.Second); err != nil {
		t.Fatalf("stop %s: %v", kubelet, err)
	}
	defer func() {
		if err := e.cluster.Start(context.Background(), kubelet); err != nil {
			t.Errorf("start %s again: %v", kubelet, err)
		}
		e.waitAgentRunning(t, second, 2*time.Minute)
	}()
	pid := agentPID(t, secondPod)
	if err := unix.Kill(pid, unix.SIGKILL); err != nil {
		t.Fatalf("kill the agent of node %s (process %d): %v", second, pid, err)
	}
	down := time.Now()
	t.Logf("node %s down: kubelet stopped, agent process %d killed", second, pid)

	tg := e.waitPhase(t, name, xdpgenv1alpha1.PhaseFailed, 90*time.Second)
	t.Logf("Failed %.1f s after node %s went down; status nodes %d, completed %d, lost %d; nodes of interest %+v",
		time.Since(down).Seconds(), second, tg.Status.NodesTotal, tg.Status.NodesCompleted, tg.Status.NodesLost,
		tg.Status.NodesOfInterest)
	if st := tg.Status; st.NodesTotal != 2 || st.NodesCompleted != 1 || st.NodesLost != 1 {
		t.Errorf("status counts %d nodes, %d completed, %d lost; want 2, 1 (%s), 1 (%s)", st.NodesTotal,
			st.NodesCompleted, st.NodesLost, first, second)
	}
	if !slices.ContainsFunc(tg.Status.NodesOfInterest, func(n xdpgenv1alpha1.NodeSummary) bool {
		return n.Node == second && n.Phase == xdpgenv1alpha1.PhaseLost
	}) {
		t.Errorf("status.nodesOfInterest %+v does not show node %s Lost", tg.Status.NodesOfInterest, second)
	}
	degraded := meta.FindStatusCondition(tg.Status.Conditions, xdpgenv1alpha1.ConditionDegraded)
	if degraded == nil || degraded.Status != metav1.ConditionTrue || !strings.Contains(degraded.Message, "node "+second+" lost") {
		t.Errorf("condition Degraded %+v, want True saying node %s lost", degraded, second)
	}
	s := e.nodeReportOf(t, name, first).Status
	matched, _ := fars[first].counts(t)
	t.Logf("node %s: %s with %d packets, its far host counted %d", first, s.Phase, s.Packets, matched.Packets)
	if s.Phase != xdpgenv1alpha1.PhaseCompleted || s.Packets != packets || int64(matched.Packets) != packets {
		t.Errorf("node %s: phase %s, reported %d packets, its far host counted %d, spec %d: want Completed and all equal",
			first, s.Phase, s.Packets, matched.Packets, packets)
	}
	e.kubectlShows(t, name, []string{"Failed"}, []string{"Degraded", "node " + second + " lost"})
	e.checkRunCleanedUp(t, tg, agentPod)
}
