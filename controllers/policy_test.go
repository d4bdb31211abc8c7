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
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	jsonpatch "github.com/evanphx/json-patch/v5"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	sigsyaml "sigs.k8s.io/yaml"

	xdpgenv1alpha1 "github.com/xdpgen/xdpgen/api/v1alpha1"
	"github.com/xdpgen/xdpgen/test/manifest"
)

// policyTestLabel labels the namespaces the admission policy applies to in these tests: the other tests of the
// package share the control plane and run their generators in namespaces without a TrafficGeneratorPolicy.
const policyTestLabel = "xdpgen.io/policy-test"

// installGeneratorPolicy creates the ValidatingAdmissionPolicy of config/policy and its binding, the binding
// narrowed to the namespaces labelled policyTestLabel, and removes them when the test ends.
func installGeneratorPolicy(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	var objs []*unstructured.Unstructured
	for _, file := range []string{"trafficgenerator_policy.yaml", "trafficgenerator_policy_binding.yaml"} {
		objs = append(objs, manifest.DecodeFile(t, filepath.Join("..", "config", "policy", file))...)
	}
	for _, o := range objs {
		if o.GetKind() == "ValidatingAdmissionPolicyBinding" {
			selector := map[string]any{"matchLabels": map[string]any{policyTestLabel: "true"}}
			if err := unstructured.SetNestedField(o.Object, selector, "spec", "matchResources", "namespaceSelector"); err != nil {
				t.Fatal(err)
			}
		}
		if err := k8sClient.Create(ctx, o); err != nil {
			t.Fatalf("create %s %s: %v", o.GetKind(), o.GetName(), err)
		}
	}
	t.Cleanup(func() { removeGeneratorPolicy(t) })
}

// removeGeneratorPolicy deletes the ValidatingAdmissionPolicy xdpgen-trafficgenerator-policy and its binding, and
// waits until the API server no longer applies them, for the tests that follow.
func removeGeneratorPolicy(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	for _, kind := range []string{"ValidatingAdmissionPolicyBinding", "ValidatingAdmissionPolicy"} {
		o := &unstructured.Unstructured{}
		o.SetAPIVersion("admissionregistration.k8s.io/v1")
		o.SetKind(kind)
		o.SetName("xdpgen-trafficgenerator-policy")
		if err := k8sClient.Delete(ctx, o); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("delete %s: %v", kind, err)
		}
	}
	unpoliced := policyNamespace(t, "policy-removed", nil)
	NewWithT(t).Eventually(func() error {
		return admit(policyGenerator(t, unpoliced, "probe", ""))
	}).WithTimeout(eventually).WithPolling(poll).Should(Succeed())
}

// policyNamespace creates a namespace the admission policy applies to, with a TrafficGeneratorPolicy named default
// of the given spec unless spec is nil.
func policyNamespace(t *testing.T, prefix string, spec *xdpgenv1alpha1.TrafficGeneratorPolicySpec) string {
	t.Helper()
	ctx := context.Background()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: prefix + "-", Labels: map[string]string{policyTestLabel: "true"}}}
	if err := k8sClient.Create(ctx, ns); err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	if spec != nil {
		policy := &xdpgenv1alpha1.TrafficGeneratorPolicy{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: xdpgenv1alpha1.DefaultPolicyName},
			Spec:       *spec,
		}
		if err := k8sClient.Create(ctx, policy); err != nil {
			t.Fatalf("create TrafficGeneratorPolicy: %v", err)
		}
	}
	return ns.Name
}

// admittedSpec is a spec that strictPolicy admits, which each case of TestGeneratorPolicy patches.
const admittedSpec = `
nodeSelector: {xdpgen.io/sender: "true"}
rate: {packetsPerSecond: 1000}
`

// strictPolicy limits every field it has.
var strictPolicy = xdpgenv1alpha1.TrafficGeneratorPolicySpec{
	AllowedDestinationCIDRs:    []string{"10.200.0.0/16", "fd00:200::/64"},
	AllowedInterfaces:          []string{"auto", "eth0"},
	AllowedVLANs:               []int32{100},
	NodeSelector:               map[string]string{"xdpgen.io/sender": "true"},
	MaxPacketsPerSecondPerNode: ptr.To[int64](1_000_000),
	MaxBitsPerSecondPerNode:    ptr.To[int64](10_000_000_000),
	MaxDuration:                &metav1.Duration{Duration: 3600e9},
}

// permissivePolicy allows what strictPolicy refuses.
var permissivePolicy = xdpgenv1alpha1.TrafficGeneratorPolicySpec{AllowSpecialAddresses: true, AllowContinuous: true}

// policyGenerator is a TrafficGenerator of namespace ns whose spec is baseSpec, admittedSpec and patch merged.
func policyGenerator(t *testing.T, ns, name, patch string) *unstructured.Unstructured {
	t.Helper()
	tg := generatorFromPatch(t, ns, name, admittedSpec)
	if patch == "" {
		return tg
	}
	spec, err := json.Marshal(tg.Object["spec"])
	if err != nil {
		t.Fatal(err)
	}
	p, err := sigsyaml.YAMLToJSON([]byte(patch))
	if err != nil {
		t.Fatalf("patch %q: %v", patch, err)
	}
	if spec, err = jsonpatch.MergePatch(spec, p); err != nil {
		t.Fatalf("merge %q: %v", patch, err)
	}
	var specMap map[string]any
	if err := json.Unmarshal(spec, &specMap); err != nil {
		t.Fatal(err)
	}
	tg.Object["spec"] = specMap
	return tg
}

// admit asks the API server to create tg without storing it, and returns its error.
func admit(tg *unstructured.Unstructured) error {
	return k8sClient.Create(context.Background(), tg.DeepCopy(), client.DryRunAll)
}

// TestGeneratorPolicy checks the ValidatingAdmissionPolicy of config/policy against dangerous TrafficGenerators:
// each is refused in a namespace whose TrafficGeneratorPolicy does not allow it, with a message that names the
// policy and what to change, and admitted in a namespace whose policy allows it. A namespace without a policy
// admits no TrafficGenerator.
func TestGeneratorPolicy(t *testing.T) {
	requireEnvtest(t)
	installGeneratorPolicy(t)
	strict := policyNamespace(t, "policy-strict", &strictPolicy)
	permissive := policyNamespace(t, "policy-permissive", &permissivePolicy)
	none := policyNamespace(t, "policy-none", nil)
	strictName := "TrafficGeneratorPolicy " + strict + "/default"

	// The API server compiles a new policy and binding in the background: wait until it refuses.
	NewWithT(t).Eventually(func() error {
		return admit(policyGenerator(t, strict, "probe", "destination: {address: 255.255.255.255}"))
	}).WithTimeout(eventually).WithPolling(poll).Should(MatchError(ContainSubstring(strictName)))

	if err := admit(policyGenerator(t, strict, "admitted", "")); err != nil {
		t.Fatalf("a generator within the policy: %v", err)
	}
	for _, r := range []string{"10.200.1.0/24", "10.200.0.10-10.200.3.20", "'fd00:200::100/120'", "10.200.0.9"} {
		if err := admit(policyGenerator(t, strict, "admitted-range", "destination: {address: null, addressRange: "+r+"}")); err != nil {
			t.Fatalf("a generator with a destination range within the policy: %v", err)
		}
	}
	// Receivers have no destination address to check: their nodes are kept within the policy's nodes.
	receiving := "{destination: {address: null}, receivers: {nodeSelector: {xdpgen.io/sender: 'true'}}}"
	if err := admit(policyGenerator(t, strict, "admitted-receivers", receiving)); err != nil {
		t.Fatalf("a generator with receivers within the policy: %v", err)
	}
	searching := "{destination: {address: null}, duration: null, rate: null, receivers: {nodeSelector: {xdpgen.io/sender: 'true'}}, search: {maxPacketsPerSecond: 1000}}"
	if err := admit(policyGenerator(t, strict, "admitted-search", searching)); err != nil {
		t.Fatalf("a search within the policy: %v", err)
	}

	for _, tc := range []struct {
		name, patch string
		// want are substrings of the refusal in the strict namespace.
		want []string
	}{
		{"broadcast", "destination: {address: 255.255.255.255}", []string{"255.255.255.255 is the broadcast address", "allowSpecialAddresses: true"}},
		{"loopback", "destination: {address: 127.0.0.1}", []string{"127.0.0.1 is a loopback address"}},
		{"loopback-ipv6", "destination: {address: '::1'}", []string{"::1 is a loopback address"}},
		{"cloud-metadata", "destination: {address: 169.254.169.254}", []string{"169.254.169.254 is a link-local address", "metadata"}},
		{"link-local-ipv6", "destination: {address: 'fe80::1'}", []string{"fe80::1 is a link-local address"}},
		{"all-hosts", "destination: {address: 224.0.0.1}", []string{"224.0.0.1 is a multicast address"}},
		{"mdns", "destination: {address: 224.0.0.251}", []string{"224.0.0.251 is a multicast address"}},
		{"admin-scoped-multicast", "destination: {address: 239.1.1.1}", []string{"239.1.1.1 is a multicast address"}},
		{"all-nodes-ipv6", "destination: {address: 'ff02::1'}", []string{"ff02::1 is a multicast address"}},
		{"site-local-multicast-ipv6", "destination: {address: 'ff05::2'}", []string{"ff05::2 is a multicast address"}},
		{"broadcast-mac", "destination: {mac: 'ff:ff:ff:ff:ff:ff'}", []string{"spec.destination.mac ff:ff:ff:ff:ff:ff is a group", "allowSpecialAddresses: true"}},
		{"ipv6-multicast-mac", "destination: {mac: '33:33:00:00:00:01'}", []string{"spec.destination.mac 33:33:00:00:00:01 is a group"}},
		{"multicast-source-mac", "source: {mac: '01:00:5e:00:00:01'}", []string{"spec.source.mac 01:00:5e:00:00:01 is a group"}},
		{"range-loopback-prefix", "destination: {address: null, addressRange: 127.0.0.0/30}", []string{"spec.destination.addressRange 127.0.0.0/30 holds addresses that are not unicast", "allowSpecialAddresses: true"}},
		{"range-holding-loopback", "destination: {address: null, addressRange: 96.0.0.0/3}", []string{"96.0.0.0/3 holds addresses that are not unicast"}},
		{"range-across-metadata", "destination: {address: null, addressRange: 169.200.0.1-169.255.0.1}", []string{"169.200.0.1-169.255.0.1 holds addresses that are not unicast"}},
		{"range-across-loopback", "destination: {address: null, addressRange: 126.0.0.1-128.0.0.1}", []string{"126.0.0.1-128.0.0.1 holds addresses that are not unicast"}},
		{"range-to-broadcast", "destination: {address: null, addressRange: 10.200.0.1-255.255.255.255}", []string{"holds addresses that are not unicast"}},
		{"range-multicast-ipv6", "destination: {address: null, addressRange: 'ff02::/120'}", []string{"ff02::/120 holds addresses that are not unicast"}},
		{"range-outside-cidrs", "destination: {address: null, addressRange: 10.200.255.0-10.201.0.10}", []string{"spec.destination.addressRange 10.200.255.0-10.201.0.10 is not within one of the networks " + strictName + " allows"}},
		{"range-prefix-outside-cidrs", "destination: {address: null, addressRange: 10.0.0.0/8}", []string{"10.0.0.0/8 is not within one of the networks"}},
		{"bit-rate-of-a-mix", "{rate: {packetsPerSecond: 1000000}, frameSizes: {weights: [{size: 64, weight: 100}, {size: 1514, weight: 1}]}}", []string{strictName + " allows at most 10000000000 bits/s per node: lower spec.rate (12112000000 bits/s)"}},
		{"packet-rate-of-a-range", "{rate: {packetsPerSecond: null, bitsPerSecond: 1000000000}, frameSizes: {min: 64, max: 1514}}", []string{strictName + " allows at most 1000000 packets/s per node: lower spec.rate (1953125 packets/s of 64 bytes)"}},
		{"bit-rate-of-a-replay", "{rate: {packetsPerSecond: 1000000}, replay: {configMap: capture}}", []string{strictName + " allows at most 10000000000 bits/s per node: lower spec.rate (28160000000 bits/s)"}},
		{"packet-rate-of-a-replay", "{rate: {packetsPerSecond: null, bitsPerSecond: 1000000000}, replay: {configMap: capture}}", []string{strictName + " allows at most 1000000 packets/s per node: lower spec.rate (2083334 packets/s of 60 bytes)"}},
		{"l1-packet-rate", "{rate: {packetsPerSecond: null, l1BitsPerSecond: 10000000000}, frameSize: 60}", []string{strictName + " allows at most 1000000 packets/s per node: lower spec.rate (14880953 packets/s of 60 bytes)"}},
		{"l1-bit-rate", "{rate: {packetsPerSecond: null, l1BitsPerSecond: 40000000000}, frameSize: 9000}", []string{strictName + " allows at most 10000000000 bits/s per node: lower spec.rate (39893617021 bits/s)"}},
		{"percent-of-line-rate", "rate: {packetsPerSecond: null, percentOfLineRate: '10'}", []string{"set spec.rate in packets or bits per second (a percentage of the line rate depends on each node's link)"}},
		{"outside-cidrs", "destination: {address: 10.201.0.1}", []string{"10.201.0.1 is outside the networks " + strictName + " allows (10.200.0.0/16, fd00:200::/64)", "allowedDestinationCIDRs"}},
		{"packet-rate", "rate: {packetsPerSecond: 2000000}", []string{strictName + " allows at most 1000000 packets/s per node: lower spec.rate", "raise maxPacketsPerSecondPerNode"}},
		{"bit-rate", "{rate: {packetsPerSecond: null, bitsPerSecond: 20000000000}, frameSize: 9000}", []string{strictName + " allows at most 10000000000 bits/s per node", "raise maxBitsPerSecondPerNode"}},
		{"line-rate", "rate: null", []string{"at most 1000000 packets/s per node: set spec.rate"}},
		{"tcp", "{protocol: tcp, rate: null}", []string{"every tcp run"}},
		{"duration", "duration: 2h", []string{strictName + " allows runs of at most 1h0m0s: lower spec.duration (2h)"}},
		{"packets-too-many", "{duration: null, packets: 10000000}", []string{"lower spec.packets to at most 3600000"}},
		{"continuous", "{duration: null, continuous: true}", []string{strictName + " does not allow continuous runs", "allowContinuous: true"}},
		{"interface", "interface: eth1", []string{"spec.interface eth1 is not one of the interfaces " + strictName + " allows (auto, eth0)"}},
		{"vlan", "vlan: 200", []string{"spec.vlan 200 is not one of the VLANs " + strictName + " allows (100)"}},
		{"no-node-selector", "nodeSelector: null", []string{strictName + " keeps TrafficGenerators to the nodes labelled xdpgen.io/sender=true"}},
		{"other-nodes", "nodeSelector: {xdpgen.io/sender: other}", []string{"xdpgen.io/sender=true: add every one"}},
		{"search-without-maximum", "{destination: {address: null}, duration: null, rate: null, receivers: {nodeSelector: {xdpgen.io/sender: 'true'}}, search: {}}",
			[]string{strictName + " allows at most 1000000 packets/s per node: set spec.search.maxPacketsPerSecond (a search without one starts as fast as the nodes can)"}},
		{"search-too-fast", "{destination: {address: null}, duration: null, rate: null, receivers: {nodeSelector: {xdpgen.io/sender: 'true'}}, search: {maxPacketsPerSecond: 2000000}}",
			[]string{strictName + " allows at most 1000000 packets/s per node: lower spec.search.maxPacketsPerSecond (2000000 packets/s of 64 bytes)"}},
		{"search-too-long", "{destination: {address: null}, duration: null, rate: null, receivers: {nodeSelector: {xdpgen.io/sender: 'true'}}, search: {maxPacketsPerSecond: 1000, trialDuration: 1m, maxTrials: 61}}",
			[]string{strictName + " allows runs of at most 1h0m0s, and a search sends for up to maxTrials x trialDuration (3660s): lower spec.search.maxTrials"}},
		{"receivers-anywhere", "{destination: {address: null}, receivers: {}}", []string{"xdpgen.io/sender=true, receivers too: add every one of these labels to spec.receivers.nodeSelector"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := admit(policyGenerator(t, strict, tc.name, tc.patch))
			if !apierrors.IsForbidden(err) && !apierrors.IsInvalid(err) {
				t.Fatalf("strict policy: error = %v, want refused", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("strict policy: error %q does not say %q", err, w)
				}
			}
			if err := admit(policyGenerator(t, permissive, tc.name, tc.patch)); err != nil {
				t.Errorf("permissive policy: %v", err)
			}
		})
	}

	// The unspecified address is never a destination: the CRD refuses it whatever the policy.
	for _, address := range []string{"0.0.0.0", "::"} {
		err := admit(policyGenerator(t, permissive, "unspecified", fmt.Sprintf("destination: {address: '%s'}", address)))
		if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "unspecified address") {
			t.Errorf("destination %s: error = %v, want the CRD's refusal of the unspecified address", address, err)
		}
	}

	err := admit(policyGenerator(t, none, "no-policy", ""))
	if err == nil || !strings.Contains(err.Error(), "xdpgen-trafficgenerator-policy") || !strings.Contains(err.Error(), "no params found") {
		t.Errorf("namespace without a TrafficGeneratorPolicy: error = %v, want refused by xdpgen-trafficgenerator-policy for want of params (reason %s)", err, apierrors.ReasonForError(err))
	}
}
