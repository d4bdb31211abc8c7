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
	"testing"
	"time"

	xdpgenv1alpha1 "github.com/xdpgen/xdpgen/api/v1alpha1"
)

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
	nodes := e.cluster.Nodes()
	if len(nodes) != 2 {
		t.Fatalf("the cluster has %d nodes, want 2", len(nodes))
	}
	fars := map[string]*farHost{}
	for _, n := range nodes {
		fars[n.Name] = newFarHostOf(t, n, 30, port, port)
	}
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
