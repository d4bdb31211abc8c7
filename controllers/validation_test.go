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
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	jsonpatch "github.com/evanphx/json-patch/v5"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	sigsyaml "sigs.k8s.io/yaml"

	xdpgenv1alpha1 "github.com/xdpgen/xdpgen/api/v1alpha1"
	"github.com/xdpgen/xdpgen/test/manifest"
)

// baseSpec is a valid spec that each validation case patches (JSON merge patch, written as YAML).
const baseSpec = `
destination:
  address: 10.200.0.2
duration: 30s
`

// generatorFromPatch returns a TrafficGenerator named name whose spec is baseSpec merged with patch.
func generatorFromPatch(t *testing.T, ns, name, patch string) *unstructured.Unstructured {
	t.Helper()
	base, err := sigsyaml.YAMLToJSON([]byte(baseSpec))
	if err != nil {
		t.Fatal(err)
	}
	spec := base
	if patch != "" {
		p, err := sigsyaml.YAMLToJSON([]byte(patch))
		if err != nil {
			t.Fatalf("patch %q: %v", patch, err)
		}
		if spec, err = jsonpatch.MergePatch(base, p); err != nil {
			t.Fatalf("merge %q: %v", patch, err)
		}
	}
	u := &unstructured.Unstructured{}
	u.SetAPIVersion(xdpgenv1alpha1.GroupVersion.String())
	u.SetKind("TrafficGenerator")
	u.SetNamespace(ns)
	u.SetName(name)
	var specMap map[string]any
	if err := sigsyaml.Unmarshal(spec, &specMap); err != nil {
		t.Fatal(err)
	}
	u.Object["spec"] = specMap
	return u
}

func TestCRDsInstalled(t *testing.T) {
	requireEnvtest(t)
	ctx := context.Background()
	for _, list := range []client.ObjectList{&xdpgenv1alpha1.TrafficGeneratorList{}, &xdpgenv1alpha1.NodeReportList{}} {
		if err := k8sClient.List(ctx, list); err != nil {
			t.Errorf("list %T: %v (CRD not installed?)", list, err)
		}
	}
}

// TestInvalidSpecsRejected sends specs that are wrong in one way each and checks that the API server refuses them
// with the message that tells the user what to change.
func TestInvalidSpecsRejected(t *testing.T) {
	requireEnvtest(t)
	ns := testNamespace(t, "invalid")
	tests := []struct {
		name  string
		patch string
		want  string
	}{
		{"search without receivers", `{duration: null, search: {}}`,
			"search needs receivers, which count what arrived on each path: set receivers"},
		{"search with a duration", `{destination: {address: null}, receivers: {}, search: {}}`,
			"search sets each trial's rate and duration itself: remove rate, duration, packets and continuous"},
		{"search with a rate", `{destination: {address: null}, duration: null, receivers: {}, rate: {packetsPerSecond: 5}, search: {}}`,
			"search sets each trial's rate and duration itself"},
		{"search with start.at", `{destination: {address: null}, duration: null, receivers: {}, search: {}, start: {policy: At, at: "2030-01-01T00:00:00Z"}}`,
			"search starts each trial when the last one settled: remove start.at"},
		{"search pdr not above ndr", `{destination: {address: null}, duration: null, receivers: {}, search: {ndrLossRatio: "0.01", pdrLossRatio: "0.005"}}`,
			"search.pdrLossRatio must be above search.ndrLossRatio"},
		{"search loss ratio not a decimal", `{destination: {address: null}, duration: null, receivers: {}, search: {pdrLossRatio: "0.5%"}}`,
			"search.pdrLossRatio must be a decimal above 0 and below 1, such as 0.005 for 0.5%"},
		{"search loss ratio of 1", `{destination: {address: null}, duration: null, receivers: {}, search: {ndrLossRatio: "1"}}`,
			"search.ndrLossRatio must be a decimal from 0 to below 1"},
		{"search precision too wide", `{destination: {address: null}, duration: null, receivers: {}, search: {precision: "0.5"}}`,
			"search.precision must be a decimal above 0 and below 0.5"},
		{"search minimum not below the maximum", `{destination: {address: null}, duration: null, receivers: {}, search: {minPacketsPerSecond: 1000, maxPacketsPerSecond: 1000}}`,
			"search.minPacketsPerSecond must be below search.maxPacketsPerSecond"},
		{"search trial too short", `{destination: {address: null}, duration: null, receivers: {}, search: {trialDuration: 500ms}}`,
			"search.trialDuration must be a Go duration from 1s to 1h"},
		{"search too many trials", `{destination: {address: null}, duration: null, receivers: {}, search: {maxTrials: 101}}`,
			"spec.search.maxTrials: Invalid value: 101"},
		{"destination address not an IP", `{destination: {address: 10.200.0.300}}`,
			"destination.address must be an IPv4 or IPv6 address such as 10.200.0.2 or fd00::2"},
		{"destination address with a prefix length", `{destination: {address: 10.200.0.0/24}}`,
			"destination.address must be an IPv4 or IPv6 address"},
		{"destination address a host name", `{destination: {address: receiver.example}}`,
			"destination.address must be an IPv4 or IPv6 address"},
		{"destination address unspecified", `{destination: {address: "::"}}`,
			"destination.address must not be the unspecified address (0.0.0.0 or ::)"},
		{"destination address missing", `{destination: {address: null, port: 80}}`,
			"set destination.address or destination.addressRange (receivers outside the cluster) or receivers (nodes of the cluster that count what arrives)"},
		{"destination address and range", `{destination: {addressRange: 10.0.0.0/24}}`,
			"destination.address and destination.addressRange exclude each other: give one address or a range"},
		{"destination range not a range", `{destination: {address: null, addressRange: 10.0.0.1-10.0.0}}`,
			"destination.addressRange must be a prefix such as 192.0.2.0/24 or fd00::/120, or FIRST-LAST"},
		{"destination range order without a range", `{destination: {addressOrder: Random}}`,
			"destination.addressOrder orders destination.addressRange: remove addressOrder, or give addressRange"},
		{"destination range with receivers", `{destination: {address: null, addressRange: 10.0.0.0/24}, receivers: {}}`,
			"destination.addressRange does not apply with receivers, which account per destination address"},
		{"source address and range", `{source: {address: 10.0.0.1, addressRange: 10.0.0.0/24}}`,
			"source.address and source.addressRange exclude each other"},
		{"source range not a range", `{source: {addressRange: "10.0.0.1 - 10.0.0.9"}}`,
			"source.addressRange must be a prefix such as 198.51.100.0/24 or fd00::/120, or FIRST-LAST"},
		{"address ranges for tcp", `{protocol: tcp, source: {addressRange: 10.0.0.0/24}}`,
			"address ranges apply to udp: a tcp run connects from and to one address"},
		{"destination address and receivers", `{receivers: {}}`,
			"destination.address and receivers exclude each other: remove destination.address to send to the receiving nodes"},
		{"receivers and a destination MAC", `{destination: {address: null, mac: "02:00:00:00:00:02"}, receivers: {}}`,
			"destination.mac does not apply with receivers: each sender resolves each receiver's next hop"},
		{"receivers for tcp", `{destination: {address: null}, protocol: tcp, receivers: {}}`,
			"receivers apply to udp: a tcp run's server acknowledges what arrived"},
		{"receivers of IPv5", `{destination: {address: null}, receivers: {ipFamily: IPv5}}`,
			`spec.receivers.ipFamily: Unsupported value: "IPv5": supported values: "IPv4", "IPv6"`},
		{"receivers' stamp does not fit 60 bytes", `{destination: {address: null}, receivers: {}, frameSize: 60}`,
			"+ UDP (8) + the receivers stamp (20) bytes: set frameSize to at least 62"},
		{"IPv6 receivers' stamp does not fit 64 bytes", `{destination: {address: null}, receivers: {ipFamily: IPv6}, frameSize: 64}`,
			"set frameSize to at least 82"},
		{"drain time too long", `{destination: {address: null}, receivers: {drainTime: 2m}}`,
			"receivers.drainTime must be a Go duration from 0s to 1m, such as 2s"},
		{"latency samples too rare", `{destination: {address: null}, receivers: {latencySampleEvery: 1000001}}`,
			"spec.receivers.latencySampleEvery in body should be less than or equal to 1000000"},
		{"receiver interface with a slash", `{destination: {address: null}, receivers: {interface: "eth0/1"}}`,
			"receivers.interface must be auto or a network interface name such as eth0"},
		{"two rates", `{rate: {packetsPerSecond: 10, l1BitsPerSecond: 1000000}}`,
			"rate: set only one of packetsPerSecond, bitsPerSecond, l1BitsPerSecond and percentOfLineRate"},
		{"percent of line rate above 100", `{rate: {percentOfLineRate: "120"}}`,
			"rate.percentOfLineRate must be a decimal number above 0 and at most 100, such as 50 or 2.5"},
		{"percent of line rate not a number", `{rate: {percentOfLineRate: "10%"}}`,
			"rate.percentOfLineRate must be a decimal number above 0 and at most 100"},
		{"burst without a rate", `{rate: {packetsPerSecond: null, burst: 64}}`,
			"rate: set packetsPerSecond, bitsPerSecond, l1BitsPerSecond or percentOfLineRate, or remove rate"},
		{"percent of line rate zero", `{rate: {percentOfLineRate: "0"}}`,
			"rate.percentOfLineRate must be a decimal number above 0 and at most 100"},
		{"inject tcp", `{protocol: tcp, mode: Inject, interface: eth0, source: {address: 10.200.0.9}}`,
			"mode Inject applies to udp: use protocol: udp"},
		{"inject with receivers", `{destination: {address: null}, receivers: {}, mode: Inject, interface: eth0, source: {address: 10.200.0.9}}`,
			"mode Inject hands the frames to each sending node's own stack: remove receivers"},
		{"inject auto", `{mode: Inject, source: {address: 10.200.0.9}}`,
			"mode Inject needs the interface whose receive path takes the frames: set interface to its name"},
		{"inject without a source", `{mode: Inject, interface: eth0}`,
			"mode Inject needs source.address (or source.addressRange): a peer the nodes accept frames from"},
		{"unknown mode", `{mode: Reflect}`,
			`spec.mode: Unsupported value: "Reflect": supported values: "Transmit", "Inject"`},
		{"replay tcp", `{protocol: tcp, replay: {configMap: capture}}`, "replay sends the capture's frames as they are: use protocol: udp"},
		{"replay with a frame size", `{frameSize: 100, replay: {configMap: capture}}`, "replay sends the capture's frames at their own sizes: remove frameSize and frameSizes"},
		{"replay with frame sizes", `{frameSizes: {profile: imix-simple}, replay: {configMap: capture}}`, "replay sends the capture's frames at their own sizes"},
		{"replay with receivers", `{destination: {address: null}, receivers: {}, replay: {configMap: capture}}`,
			"replay sends the capture's frames, which carry no receivers' stamp, to destination.address: remove receivers"},
		{"replay injected", `{mode: Inject, interface: eth0, source: {address: 10.200.0.9}, replay: {configMap: capture}}`, "replay transmits the capture: remove mode Inject"},
		{"replay with a vlan", `{vlan: 100, replay: {configMap: capture}}`, "replay sends the frames with the tags they were captured with: remove vlan"},
		{"replay to a range", `{destination: {address: null, addressRange: 192.0.2.0/24}, replay: {configMap: capture}}`,
			"replay rewrites every frame to destination.address: remove destination.addressRange and source.addressRange"},
		{"replay at a layer-1 rate", `{rate: {l1BitsPerSecond: 1000000}, replay: {configMap: capture}}`,
			"a replay is paced by rate.packetsPerSecond or rate.bitsPerSecond: remove l1BitsPerSecond, percentOfLineRate and burst"},
		{"replay at the capture's timing and a rate", `{rate: {packetsPerSecond: 1000}, replay: {configMap: capture, timing: Capture}}`,
			"replay.timing Capture sends each frame at its time in the capture: remove rate, or use timing: Rate"},
		{"replay without a ConfigMap", `{replay: {configMap: ""}}`, "spec.replay.configMap: Invalid value"},
		{"replay key", `{replay: {configMap: capture, key: "a/b"}}`, "spec.replay.key in body should match"},
		{"replay timing", `{replay: {configMap: capture, timing: Later}}`, `spec.replay.timing: Unsupported value: "Later": supported values: "Rate", "Capture"`},
		{"frame size and frame sizes", `{frameSize: 100, frameSizes: {profile: imix-simple}}`,
			"frameSize and frameSizes exclude each other: remove frameSize to vary the size"},
		{"frame sizes: IMIX with receivers", `{destination: {address: null}, receivers: {}, frameSizes: {profile: imix-simple}}`,
			"frameSizes.profile imix-simple has 60-byte frames, too small for the receivers' 20-byte stamp"},
		{"frame sizes for tcp", `{protocol: tcp, frameSizes: {profile: imix-simple}}`,
			"frameSizes applies to udp"},
		{"frame sizes: a range and a profile", `{frameSizes: {min: 64, max: 128, profile: imix-simple}}`,
			"frameSizes: set exactly one of min and max (a range), profile (a named mix such as imix-simple) or weights"},
		{"frame sizes: nothing", `{frameSizes: {}}`,
			"frameSizes: set exactly one of min and max"},
		{"frame sizes: half a range", `{frameSizes: {min: 64}}`,
			"frameSizes: a range needs both min and max"},
		{"frame sizes: inverted range", `{frameSizes: {min: 128, max: 64}}`,
			"frameSizes.max must be at least frameSizes.min"},
		{"frame sizes: order of a mix", `{frameSizes: {profile: imix-simple, order: Random}}`,
			"frameSizes.order orders a range: remove order"},
		{"frame sizes: unknown profile", `{frameSizes: {profile: imix-fancy}}`,
			`spec.frameSizes.profile: Unsupported value: "imix-fancy": supported values: "imix-simple"`},
		{"frame sizes: too heavy", `{frameSizes: {weights: [{size: 64, weight: 1000}, {size: 128, weight: 100}]}}`,
			"frameSizes.weights add up to more than 1024: scale them down"},
		{"frame sizes: a size twice", `{frameSizes: {weights: [{size: 64, weight: 1}, {size: 64, weight: 2}]}}`,
			"frameSizes.weights: give each size once, with its whole weight"},
		{"frame sizes: too large", `{frameSizes: {min: 64, max: 9000}}`,
			"spec.frameSizes.max: Invalid value: 9000: spec.frameSizes.max in body should be less than or equal to 3520"},
		{"source address not an IP", `{source: {address: 10.200.0}}`,
			"source.address must be an IPv4 or IPv6 address"},
		{"IPv4 destination, IPv6 source", `{source: {address: "fd00::1"}}`,
			"destination.address and source.address must both be IPv4 or both IPv6"},
		{"IPv6 destination, IPv4 source", `{destination: {address: "fd00::2"}, source: {address: 10.200.0.1}, frameSize: 128}`,
			"destination.address and source.address must both be IPv4 or both IPv6"},
		{"destination MAC too short", `{destination: {mac: "02:00:00:00:00"}}`,
			"destination.mac must be a MAC address such as 02:00:00:00:00:02"},
		{"source MAC with dashes", `{source: {mac: "02-00-00-00-00-01"}}`,
			"source.mac must be a MAC address such as 02:00:00:00:00:01"},
		{"destination ports past 65535", `{destination: {port: 65000, portCount: 1000}}`,
			"destination.port + destination.portCount - 1 must be <= 65535: lower port or portCount"},
		{"source ports past 65535", `{source: {port: 65535, portCount: 2}}`,
			"source.port + source.portCount - 1 must be <= 65535: lower port or portCount"},
		{"port 0", `{destination: {port: 0}}`,
			"spec.destination.port: Invalid value: 0: spec.destination.port in body should be greater than or equal to 1"},
		{"protocol icmp", `{protocol: icmp}`,
			`spec.protocol: Unsupported value: "icmp": supported values: "udp", "tcp"`},
		{"frame below the Ethernet minimum", `{frameSize: 59}`,
			"spec.frameSize in body should be greater than or equal to 60"},
		{"frame above jumbo", `{frameSize: 9217}`,
			"spec.frameSize in body should be less than or equal to 9216"},
		{"IPv6 TCP does not fit 64 bytes", `{destination: {address: "fd00::2"}, protocol: tcp, frameSize: 64}`,
			"frameSize must hold Ethernet (14) + VLAN tag (4, when vlan is set) + IP header (20 for IPv4, 40 for IPv6) + TCP with timestamps (32) + the stream offset (8) bytes: set frameSize to at least 94"},
		{"TCP with a rate", `{protocol: tcp, rate: {packetsPerSecond: 1000}}`,
			"rate applies to udp: a tcp run sends as fast as its congestion window allows; remove rate"},
		{"TCP in a VLAN", `{protocol: tcp, vlan: 10}`, "vlan applies to udp only: tcp mode sends untagged frames; remove vlan"},
		{"TCP to a port range", `{protocol: tcp, destination: {portCount: 2}}`,
			"a tcp run connects to one destination.port: remove destination.portCount (use tcp.flows for more connections)"},
		{"TCP options on a UDP run", `{tcp: {flows: 2}}`, "tcp options need protocol: tcp"},
		{"no TCP flows", `{protocol: tcp, tcp: {flows: 0}}`, "spec.tcp.flows in body should be greater than or equal to 1"},
		{"IPv6 UDP does not fit 60 bytes", `{destination: {address: "fd00::2"}, frameSize: 60}`,
			"set frameSize to at least 62"},
		{"VLAN 4095", `{vlan: 4095}`, "spec.vlan in body should be less than or equal to 4094"},
		{"VLAN 0", `{vlan: 0}`, "spec.vlan in body should be greater than or equal to 1"},
		{"no threads", `{threads: 0}`, "spec.threads in body should be greater than or equal to 1"},
		{"too many threads", `{threads: 257}`, "spec.threads in body should be less than or equal to 256"},
		{"rate in pps and bps", `{rate: {packetsPerSecond: 1000, bitsPerSecond: 1000000}}`,
			"rate: set only one of packetsPerSecond, bitsPerSecond, l1BitsPerSecond and percentOfLineRate"},
		{"empty rate", `{rate: {}}`,
			"rate: set packetsPerSecond, bitsPerSecond, l1BitsPerSecond or percentOfLineRate, or remove rate to send as fast as the node can"},
		{"zero pps", `{rate: {packetsPerSecond: 0}}`,
			"spec.rate.packetsPerSecond in body should be greater than or equal to 1"},
		{"duration not a duration", `{duration: ten minutes}`,
			"duration must be a Go duration such as 30s, 10m or 1h30m"},
		{"duration too short", `{duration: 500ms}`, "duration must be between 1s and 168h (7 days)"},
		{"duration too long", `{duration: 169h}`, "duration must be between 1s and 168h (7 days)"},
		{"dead-man timeout off", `{deadManTimeout: 0s}`,
			"deadManTimeout must be between 1s and 1h: a node stops sending when it cannot reach the API server for this long"},
		{"dead-man timeout too long", `{deadManTimeout: 2h}`,
			"deadManTimeout must be between 1s and 1h: a node stops sending when it cannot reach the API server for this long"},
		{"dead-man timeout not a duration", `{deadManTimeout: forever}`, "deadManTimeout must be a Go duration such as 30s or 5m"},
		{"no bound and not continuous", `{duration: null}`,
			"set duration or packets to bound the run, set continuous: true to send until the TrafficGenerator is deleted, or set search"},
		{"continuous with a packet count", `{duration: null, packets: 1000, continuous: true}`,
			"continuous: true sends until the TrafficGenerator is deleted: remove duration and packets, or set continuous: false"},
		{"zero packets", `{duration: null, packets: 0}`, "spec.packets in body should be greater than or equal to 1"},
		{"start At without a time", `{start: {policy: At}}`,
			"start.policy At needs start.at, the time at which every node starts sending"},
		{"start time without At", `{start: {policy: WhenReady, at: "2030-01-01T00:00:00Z"}}`,
			"start.at is only used with start.policy At: set policy: At or remove at"},
		{"start policy unknown", `{start: {policy: Now}}`, `spec.start.policy: Unsupported value: "Now"`},
		{"interface with a slash", `{interface: "eth0/1"}`,
			"interface must be auto or a network interface name such as eth0"},
		{"interface name too long", `{interface: averyveryverylongname}`,
			"spec.interface: Too long: may not be more than 15 bytes"},
	}
	ctx := context.Background()
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tg := generatorFromPatch(t, ns, fmt.Sprintf("invalid-%d", i), tc.patch)
			err := k8sClient.Create(ctx, tg)
			if err == nil {
				t.Fatalf("the API server accepted spec patch %s; want it refused with %q", tc.patch, tc.want)
			}
			if !apierrors.IsInvalid(err) {
				t.Fatalf("error = %v, want an Invalid error", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v\nwant it to contain %q", err, tc.want)
			}
		})
	}

	t.Run("name longer than a label value", func(t *testing.T) {
		tg := generatorFromPatch(t, ns, strings.Repeat("n", 64), "")
		err := k8sClient.Create(ctx, tg)
		want := "metadata.name must be at most 63 characters: it is a label value on the agent pods and the node reports"
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error = %v, want it to contain %q", err, want)
		}
	})
}

// TestValidSpecsAccepted checks edge cases that must pass and the defaults the API server fills in.
func TestValidSpecsAccepted(t *testing.T) {
	requireEnvtest(t)
	ns := testNamespace(t, "valid")
	ctx := context.Background()
	for i, patch := range []string{
		``,
		`{destination: {address: "fd00::2"}, protocol: tcp, frameSize: 94}`,
		`{protocol: tcp, frameSize: 74, tcp: {flows: 256}}`,
		`{protocol: tcp}`,
		`{destination: {address: 192.0.2.1, port: 65535, portCount: 1}, source: {address: 192.0.2.10, port: 1, portCount: 65535}}`,
		`{duration: 168h, packets: 5, rate: {bitsPerSecond: 1}}`,
		`{duration: 1s, frameSize: 9216, threads: 256}`,
		`{duration: 1h30m}`,
		`{duration: null, continuous: true, start: {policy: At, at: "2030-01-01T00:00:00Z"}}`,
		`{interface: enp1s0f0np0, destination: {mac: "AA:bb:cc:dd:ee:ff"}, source: {mac: "02:00:00:00:00:01"}}`,
		`{destination: null, receivers: {nodeSelector: {role: rx}, ipFamily: IPv6, drainTime: 0s, latencySampleEvery: 0}, frameSize: 82}`,
		`{destination: {address: null, port: 7}, receivers: {interface: eth1, drainTime: 1m}, frameSize: 62}`,
		`{frameSizes: {min: 60, max: 3520, order: Random}}`,
		`{destination: {address: null, addressRange: 192.0.2.0/24, addressOrder: Random}, source: {addressRange: 198.51.100.10-198.51.100.20, addressOrder: Stepped}}`,
		`{destination: {address: null, addressRange: "fd00::1-fd00::ff"}, source: {addressRange: "fd00:1::/120"}}`,
		`{destination: {address: null, port: 7}, receivers: {}, source: {addressRange: 10.0.0.0/24}}`,
		`{frameSizes: {profile: imix-simple}}`,
		`{rate: {l1BitsPerSecond: 10000000000}}`,
		`{rate: {percentOfLineRate: "2.5"}}`,
		`{rate: {percentOfLineRate: "100"}}`,
		`{rate: {packetsPerSecond: 1000, burst: 64}}`,
		`{mode: Inject, interface: eth0, source: {address: 10.200.0.9}}`,
		`{mode: Inject, interface: eth0, source: {addressRange: 10.200.0.0/24}, frameSizes: {profile: imix-simple}}`,
		`{mode: Transmit}`,
		`{frameSizes: {weights: [{size: 64, weight: 1000}, {size: 1514, weight: 24}]}}`,
		`{replay: {configMap: capture}, rate: {bitsPerSecond: 1000000}}`,
		`{replay: {configMap: capture, key: trace.pcapng, timing: Capture}, source: {address: 10.200.0.1, mac: "02:00:00:00:00:01"}, destination: {mac: "02:00:00:00:00:02"}}`,
		`{destination: {address: null}, duration: null, receivers: {}, search: {}}`,
		`{destination: {address: null}, duration: null, receivers: {}, search: {trialDuration: 1h, ndrLossRatio: "0.0001", pdrLossRatio: "0.005", minPacketsPerSecond: 1, maxPacketsPerSecond: 20000000, precision: "0.001", maxTrials: 100}}`,
	} {
		tg := generatorFromPatch(t, ns, fmt.Sprintf("valid-%d", i), patch)
		if err := k8sClient.Create(ctx, tg); err != nil {
			t.Errorf("spec patch %s refused: %v", patch, err)
		}
	}

	var got xdpgenv1alpha1.TrafficGenerator
	if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "valid-0"}, &got); err != nil {
		t.Fatal(err)
	}
	s := got.Spec
	if s.Interface != "auto" || s.Protocol != xdpgenv1alpha1.ProtocolUDP || s.FrameSize != 0 || s.Threads != 1 ||
		s.Destination.Port != 9 || s.Destination.PortCount != 1 || s.Source.Port != 9 || s.Source.PortCount != 1 ||
		s.Start.Policy != xdpgenv1alpha1.StartWhenReady || s.Receivers != nil {
		t.Errorf("defaults not applied as documented: %+v", s)
	}
	if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "valid-10"}, &got); err != nil {
		t.Fatal(err)
	}
	s = got.Spec
	if r := s.Receivers; r == nil || r.Interface != "auto" || r.DrainTime.Duration != 0 || *r.LatencySampleEvery != 0 ||
		s.Destination.Port != 9 || s.Destination.PortCount != 1 || s.Destination.Address != "" {
		t.Errorf("receivers' spec not kept, or its defaults not applied as documented: %+v, receivers %+v", s, r)
	}
	if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "valid-11"}, &got); err != nil {
		t.Fatal(err)
	}
	if r := got.Spec.Receivers; r.IPFamily != xdpgenv1alpha1.IPv4 || r.DrainTime.Duration != time.Minute || *r.LatencySampleEvery != 1000 {
		t.Errorf("receivers' defaults not applied as documented: %+v", r)
	}
	if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "valid-27"}, &got); err != nil {
		t.Fatal(err)
	}
	if s := got.Spec.Search; s == nil || s.TrialDuration.Duration != xdpgenv1alpha1.DefaultSearchTrialDuration || s.NDRLossRatio != "0" ||
		s.PDRLossRatio != "" || s.Precision != xdpgenv1alpha1.DefaultSearchPrecision || s.MaxTrials != xdpgenv1alpha1.DefaultSearchMaxTrials ||
		s.MinPacketsPerSecond != nil || s.MaxPacketsPerSecond != nil {
		t.Errorf("search's defaults not applied as documented: %+v", s)
	}
}

// TestSamplesAccepted creates every sample of config/samples.
func TestSamplesAccepted(t *testing.T) {
	requireEnvtest(t)
	ns := testNamespace(t, "samples")
	files, err := filepath.Glob(filepath.Join("..", "config", "samples", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no samples in config/samples: %v", err)
	}
	for _, f := range files {
		for _, u := range manifest.DecodeFile(t, f) {
			u.SetNamespace(ns)
			if err := k8sClient.Create(context.Background(), u); err != nil {
				t.Errorf("%s: %s %s refused: %v", f, u.GetKind(), u.GetName(), err)
			}
		}
	}
}

// TestNodeReportSpecImmutable checks that a report stays tied to its generator and node.
func TestNodeReportSpecImmutable(t *testing.T) {
	requireEnvtest(t)
	ns := testNamespace(t, "immutable")
	ctx := context.Background()
	nr := &xdpgenv1alpha1.NodeReport{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: xdpgenv1alpha1.NodeReportName("udp", "node-a")},
		Spec:       xdpgenv1alpha1.NodeReportSpec{Generator: "udp", NodeName: "node-a"},
	}
	if err := k8sClient.Create(ctx, nr); err != nil {
		t.Fatal(err)
	}
	nr.Spec.NodeName = "node-b"
	err := k8sClient.Update(ctx, nr)
	want := "spec is immutable: a NodeReport belongs to one generator and one node"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("changing spec.nodeName: error = %v, want it to contain %q", err, want)
	}
}
