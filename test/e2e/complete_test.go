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
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	xdpgenv1alpha1 "github.com/xdpgen/xdpgen/api/v1alpha1"
)

// udpSpec is the spec of a bounded UDP run from the node to a far host: rate-limited so that it lasts long enough
// to be seen running (the controller writes status every 2 s).
func udpSpec(dst string, port, ports int, pps, packets int64, extra string) string {
	return fmt.Sprintf(`  destination:
    address: %s
    port: %d
    portCount: %d
  source:
    port: 10000
    portCount: 4
  frameSize: 64
  threads: 1
  rate:
    packetsPerSecond: %d
  packets: %d
%s`, dst, port, ports, pps, packets, extra)
}

// onFirstNode is the spec's nodeSelector for the first node (the host), where newFarHost's far hosts are: the
// second node has no route to them.
func (e *clusterEnv) onFirstNode() string {
	return fmt.Sprintf("  nodeSelector:\n    kubernetes.io/hostname: %s\n", e.cluster.NodeName())
}

// TestRunCompletes is the whole path a user takes: kubectl apply a TrafficGenerator; the node's agent (the
// DaemonSet xdpgen-agent, our image, as the agents' service account with the declared capabilities) sends a
// bounded number of frames over the node's veth; the far end counts exactly what the status says; the phase goes
// Pending, Running, Completed; the run leaves neither an XDP program nor its pins behind, and the agent runs on.
func TestRunCompletes(t *testing.T) {
	e := requireCluster(t)
	const (
		name    = "e2e-complete"
		packets = 200_000
		rate    = 20_000
		port    = 9
		ports   = 16
	)
	far := newFarHost(t, 1, port, port+ports-1)
	phases := e.recordPhases(t, name)
	e.applyTrafficGenerator(t, name, udpSpec(far.farIP.String(), port, ports, rate, packets, e.onFirstNode()))

	pod := e.waitAgentRunning(t, e.cluster.NodeName(), 60*time.Second)
	e.checkAgentProcess(t, pod)

	// What a CI job does: kubectl wait returns once the run finished well, and not before.
	e.kubectlWait(t, name, xdpgenv1alpha1.ConditionComplete, 90*time.Second)
	tg := e.waitPhase(t, name, xdpgenv1alpha1.PhaseCompleted, time.Second)
	if diff := cmp.Diff([]xdpgenv1alpha1.Phase{xdpgenv1alpha1.PhasePending, xdpgenv1alpha1.PhaseRunning,
		xdpgenv1alpha1.PhaseCompleted}, phases.seenUntil(tg.Status.Phase)); diff != "" {
		t.Errorf("phases (-want +got):\n%s", diff)
	}

	// The rate in the status is the current rate, not a running sum: within a third of the one asked for.
	if pps := phases.highestPPS(); pps < rate*2/3 || pps > rate*4/3 {
		t.Errorf("status.totals.packetsPerSecond reached %d while running at %d packets/s", pps, rate)
	}

	matched, other := far.counts(t)
	t.Logf("far end counted %d packets, %d bytes (%d other frames); status totals %+v", matched.Packets, matched.Bytes,
		other.Packets, tg.Status.Totals)
	if tg.Status.Totals.Packets != packets || int64(matched.Packets) != packets {
		t.Errorf("status totals %d packets, far end %d, spec %d: all three must be equal", tg.Status.Totals.Packets,
			matched.Packets, packets)
	}
	if int64(matched.Bytes) != tg.Status.Totals.Bytes {
		t.Errorf("status totals %d bytes, far end %d", tg.Status.Totals.Bytes, matched.Bytes)
	}
	if st := tg.Status; st.NodesTotal != 1 || st.NodesCompleted != 1 {
		t.Errorf("status counts %d nodes, %d completed, want node %s alone, Completed", st.NodesTotal, st.NodesCompleted, e.cluster.NodeName())
	}
	if tg.Status.StartTime == nil || tg.Status.CompletionTime == nil {
		t.Errorf("status start and completion times: %v, %v", tg.Status.StartTime, tg.Status.CompletionTime)
	}

	// The average rate over the run (its times are to the second: 10 s, give or take one).
	if avg := tg.Status.Totals.AveragePacketsPerSecond; avg < rate*3/4 || avg > rate*5/4 || tg.Status.Duration == nil ||
		!strings.HasPrefix(tg.Status.Rate, "avg ") {
		t.Errorf("status: average %d packets/s over %v (%q), want about %d", avg, tg.Status.Duration, tg.Status.Rate, rate)
	}

	e.checkRunCleanedUp(t, tg, pod)
	e.kubectlShows(t, name, []string{"Completed", strconv.Itoa(packets), far.farIP.String(), tg.Status.Rate},
		[]string{"Phase:", "Completed", "Packets:", "Complete", "RunCompleted"})
}
