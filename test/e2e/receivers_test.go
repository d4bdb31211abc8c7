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
*/package e2e

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	xdpgenv1alpha1 "github.com/xdpgen/xdpgen/api/v1alpha1"
)

// TestReceiversMesh: a TrafficGenerator whose every node sends and receives (a mesh of the two nodes): each
// node sends to the other's InternalIP, each counts what arrives from the other and settles the path against the
// sender's report; the status says every packet sent arrived, with the round-trip time of the latency samples,
// and kubectl shows it.
func TestReceiversMesh(t *testing.T) {
	e := requireCluster(t)
	const (
		name    = "e2e-mesh"
		perNode = 100_000
		pps     = 20_000
	)
	e.applyTrafficGenerator(t, name, meshSpec(pps, perNode))
	tg := e.waitPhase(t, name, xdpgenv1alpha1.PhaseCompleted, 120*time.Second)
	tot := tg.Status.Totals
	t.Logf("totals %+v, latency %+v", tot, tg.Status.Latency)
	if tot.Packets != 2*perNode || tot.ReceivedPackets != 2*perNode || tot.LostPackets != 0 || tot.LossRatio != "0" {
		t.Errorf("totals: sent %d, received %d, lost %d (%s); want %d sent and received, none lost",
			tot.Packets, tot.ReceivedPackets, tot.LostPackets, tot.LossRatio, 2*perNode)
	}
	if l := tg.Status.Latency; l == nil || l.Samples < 2*perNode/100*9/10 || l.P50.Duration <= 0 || l.P99.Duration < l.P50.Duration {
		t.Errorf("run latency %+v, want about %d samples with percentiles", l, 2*perNode/100)
	}
	if len(tg.Status.WorstPaths) != 2 {
		t.Errorf("worst paths %+v, want both paths of the mesh", tg.Status.WorstPaths)
	}
	for _, p := range tg.Status.WorstPaths {
		if !p.Settled || p.SentPackets != perNode || p.ReceivedPackets != perNode || p.RTT == nil {
			t.Errorf("path %s>%s: %+v, want settled with all %d packets and its RTT", p.Sender, p.Receiver, p, perNode)
		}
	}
	for _, n := range e.cluster.Nodes() {
		rep := e.nodeReportOf(t, name, n.Name)
		if len(rep.Status.Received) != 1 || len(rep.Status.Sent) != 1 || rep.Status.Received[0].Sender == n.Name {
			t.Errorf("node %s: received %+v, sent %+v; want one path each way, to and from the other node", n.Name,
				rep.Status.Received, rep.Status.Sent)
		}
	}
	e.kubectlShows(t, name, []string{"Completed", strconv.Itoa(2 * perNode), "0"}, []string{"Received Packets", "Worst Paths"})
}

// meshSpec is the spec of a mesh of every node: each sends packets frames at pps to the others, each receives and
// times one frame in 100.
func meshSpec(pps, packets int) string {
	return fmt.Sprintf(`  destination:
    port: 9
  receivers:
    latencySampleEvery: 100
    drainTime: 1s
  source:
    port: 10000
    portCount: 8
  rate:
    packetsPerSecond: %d
  packets: %d
`, pps, packets)
}
