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

package v1alpha1

// Replay sends a capture's frames instead of frames built from the spec (udp): each sending node replays the
// Ethernet frames of a pcap or pcapng file held in a ConfigMap of the TrafficGenerator's namespace, in order and
// looped. Every frame is rewritten for the node's path to destination.address: that address as its destination,
// the node's address (or source.address) as its source, the node's MAC (or source.mac) and the next hop's (or
// destination.mac), with its IPv4, TCP, UDP, ICMP and ICMPv6 checksums computed anew; so every frame of the
// capture must be IP of destination.address's family, and the ports are the capture's. packets counts frames (a
// number of loops is that many times the capture's frames). Each node holds the capture in kernel memory for the
// run (at most 65536 frames, each within the interface's MTU).
type Replay struct {
	// ConfigMap is the name of the ConfigMap, in the TrafficGenerator's namespace, whose binaryData holds the
	// capture (kubectl create configmap NAME --from-file=capture.pcap=FILE). A ConfigMap holds at most 1 MiB.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	ConfigMap string `json:"configMap"`
	// Key is the capture's key in the ConfigMap's binaryData. Left out: capture.pcap.
	// +optional
	// +kubebuilder:default=capture.pcap
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	Key string `json:"key,omitempty"`
	// Timing is Rate (each node paced by spec.rate, or as fast as it can) or Capture (each frame at its time in
	// the capture, from the first frame of each of the node's threads). Left out: Rate.
	// +optional
	// +kubebuilder:default=Rate
	Timing ReplayTiming `json:"timing,omitempty"`
}

// ReplayTiming is when a replay sends each frame.
// +kubebuilder:validation:Enum=Rate;Capture
type ReplayTiming string

const (
	// ReplayAtRate paces the frames by spec.rate.
	ReplayAtRate ReplayTiming = "Rate"
	// ReplayAtCaptureTiming sends each frame at its time in the capture.
	ReplayAtCaptureTiming ReplayTiming = "Capture"
)

// DefaultReplayKey is spec.replay.key when the API server did not default it (its marker above says the same).
const DefaultReplayKey = "capture.pcap"
