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
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	xdpgenv1alpha1 "github.com/xdpgen/xdpgen/api/v1alpha1"
	"github.com/xdpgen/xdpgen/test/poll"
)

// TestNamespacePolicy is what a cluster admin does to let a team in: a TrafficGenerator in a namespace without a
// TrafficGeneratorPolicy is refused at admission; once the admin gives the namespace a policy (and the agents their
// RoleBinding there), the same generator runs, and its far host counts every packet; one aimed outside the
// policy's networks is still refused, naming the policy.
func TestNamespacePolicy(t *testing.T) {
	e := requireCluster(t)
	const (
		ns      = "xdpgen-e2e-policy"
		name    = "e2e-policy"
		packets = 50_000
	)
	e.applyManifest(t, fmt.Sprintf(`apiVersion: v1
kind: Namespace
metadata:
  name: %[1]s
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: xdpgen-agent
  namespace: %[1]s
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: xdpgen-agent
subjects:
- kind: ServiceAccount
  name: xdpgen-agent
  namespace: %[2]s
`, ns, namespace))
	t.Cleanup(func() { _, _ = e.run("delete", "namespace", ns, "--ignore-not-found", "--wait=true", "--timeout=120s") })
	far := newFarHost(t, 50, 9, 9)
	generator := []byte(trafficGeneratorManifest(ns, name, udpSpec(far.farIP.String(), 9, 1, 20_000, packets, e.onFirstNode())))

	out, err := e.runStdin(generator, "apply", "-f", "-")
	if err == nil || !strings.Contains(out, "xdpgen-trafficgenerator-policy") || !strings.Contains(out, "no params found") {
		t.Fatalf("a TrafficGenerator in a namespace without a TrafficGeneratorPolicy: %v: %s; want it refused by xdpgen-trafficgenerator-policy", err, out)
	}
	t.Logf("refused without a policy, as it should be: %s", strings.TrimSpace(out))

	e.applyManifest(t, fmt.Sprintf(`apiVersion: xdpgen.io/v1alpha1
kind: TrafficGeneratorPolicy
metadata:
  name: default
  namespace: %s
spec:
  allowedDestinationCIDRs: [%s/32]
  maxPacketsPerSecondPerNode: 50000
  maxDuration: 10m
`, ns, far.farIP))
	elsewhere := []byte(trafficGeneratorManifest(ns, name+"-elsewhere", udpSpec("10.250.255.1", 9, 1, 20_000, packets, e.onFirstNode())))
	// The admission policy sees a new TrafficGeneratorPolicy a moment after it is created.
	poll.Until(t, 30*time.Second, pollInterval, "the TrafficGenerator admitted under the namespace's new policy", func() error {
		if out, err := e.runStdin(generator, "apply", "-f", "-"); err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	})
	key := client.ObjectKey{Namespace: ns, Name: name}
	e.deleteAfterTest(t, key)
	out, err = e.runStdin(elsewhere, "apply", "-f", "-")
	if want := "is outside the networks TrafficGeneratorPolicy " + ns + "/default allows"; err == nil || !strings.Contains(out, want) {
		t.Errorf("a TrafficGenerator outside the policy's networks: %v: %s; want it refused saying %q", err, out, want)
	}

	tg := e.waitPhaseAt(t, key, xdpgenv1alpha1.PhaseCompleted, 90*time.Second)
	matched, _ := far.counts(t)
	if tg.Status.Totals.Packets != packets || int64(matched.Packets) != packets {
		t.Errorf("status totals %d packets, far end %d, spec %d: all three must be equal", tg.Status.Totals.Packets, matched.Packets, packets)
	}
}
