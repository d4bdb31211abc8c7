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
	"encoding/base64"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	xdpgenv1alpha1 "github.com/xdpgen/xdpgen/api/v1alpha1"
	"github.com/xdpgen/xdpgen/test/pcaptest"
)

// TestReplayRuns replays a capture from a ConfigMap on the node, as a user would set it up with kubectl: the agent
// (as the agents' service account, whose ClusterRole lets it get the ConfigMap) sends every frame, rewritten to
// the far host, which counts exactly what the status says; status.totals.sizes is the capture's mix.
func TestReplayRuns(t *testing.T) {
	e := requireCluster(t)
	const (
		name  = "e2e-replay"
		loops = 1000
		port  = 9
	)
	sizes := []int{64, 300, 1514}
	far := newFarHost(t, 1, port, port)
	capture := base64.StdEncoding.EncodeToString(pcaptest.UDP(t, port, sizes...))
	e.applyManifest(t, fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s-capture\n  namespace: %s\nbinaryData:\n  capture.pcap: %s\n",
		name, namespace, capture))
	t.Cleanup(func() { _, _ = e.run("-n", namespace, "delete", "configmap", name+"-capture", "--ignore-not-found") })
	e.applyTrafficGenerator(t, name, fmt.Sprintf(`  destination:
    address: %s
  replay:
    configMap: %s-capture
  rate:
    packetsPerSecond: 20000
  packets: %d
%s`, far.farIP, name, len(sizes)*loops, e.onFirstNode()))

	e.kubectlWait(t, name, xdpgenv1alpha1.ConditionComplete, 90*time.Second)
	tg := e.waitPhase(t, name, xdpgenv1alpha1.PhaseCompleted, time.Second)
	matched, _ := far.counts(t)
	if want := int64(len(sizes) * loops); tg.Status.Totals.Packets != want || int64(matched.Packets) != want {
		t.Errorf("status totals %d packets, far end %d, want %d", tg.Status.Totals.Packets, matched.Packets, want)
	}
	var want []xdpgenv1alpha1.SizeCount
	for _, s := range sizes {
		want = append(want, xdpgenv1alpha1.SizeCount{Min: int32(s), Max: int32(s), Packets: loops})
	}
	if diff := cmp.Diff(want, tg.Status.Totals.Sizes); diff != "" {
		t.Errorf("status.totals.sizes (-want +got):\n%s", diff)
	}
}
