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

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Protocol is the layer 4 protocol of the generated frames.
// +kubebuilder:validation:Enum=udp;tcp
type Protocol string

const (
	ProtocolUDP Protocol = "udp"
	ProtocolTCP Protocol = "tcp"
)

// Mode says where a node's frames go.
// +kubebuilder:validation:Enum=Transmit;Inject
type Mode string

const (
	// ModeTransmit sends the frames out of the interface.
	ModeTransmit Mode = "Transmit"
	// ModeInject hands each frame to the interface's own receive path instead (XDP_PASS of a live frame), as if
	// it had arrived there: the node's own stack (netfilter, kube-proxy or the CNI's programs, routing, sockets)
	// is loaded with no second machine.
	ModeInject Mode = "Inject"
)

// InterfaceAuto asks each node's agent to use the interface of the route to the destination.
const InterfaceAuto = "auto"

// StartPolicy says when a node starts sending.
// +kubebuilder:validation:Enum=WhenReady;At
type StartPolicy string

const (
	// StartWhenReady: each node starts as soon as its agent is ready; nodes start at slightly different times.
	StartWhenReady StartPolicy = "WhenReady"
	// StartAt: every node starts at start.at (by its own clock), so that all nodes send together.
	StartAt StartPolicy = "At"
)

// Phase is the phase of a run, both of a whole TrafficGenerator and of one node's NodeReport, and of a node in the
// TrafficGenerator's status (which adds Lost).
// +kubebuilder:validation:Enum=Pending;Running;Completed;Failed;Lost
type Phase string

const (
	// PhasePending: the run has not started (agents scheduling, waiting for start.at, resolving the neighbour).
	PhasePending Phase = "Pending"
	// PhaseRunning: frames are being sent.
	PhaseRunning Phase = "Running"
	// PhaseCompleted: the run ended as asked (duration elapsed or packet count sent).
	PhaseCompleted Phase = "Completed"
	// PhaseFailed: the run ended with an error; the message says why.
	PhaseFailed Phase = "Failed"
	// PhaseLost: the controller gave up on a node: it did not report for the current generation, its report's
	// lastUpdateTime stopped moving, or the Node went away (or stopped matching spec.nodeSelector) before it
	// finished. Only the controller sets it, on a node of the TrafficGenerator's status; an agent never writes it.
	// A lost node ends the run as a failed one does.
	PhaseLost Phase = "Lost"
)

// Terminal reports whether a run in this phase is over.
func (p Phase) Terminal() bool { return p == PhaseCompleted || p == PhaseFailed || p == PhaseLost }

// Condition types of a TrafficGenerator.
const (
	// ConditionReady is True when every expected node (the Nodes spec.nodeSelector matches) has reported for the
	// current generation and none failed or is lost.
	ConditionReady = "Ready"
	// ConditionProgressing is True while the run has not ended.
	ConditionProgressing = "Progressing"
	// ConditionDegraded is True when at least one node failed or was lost; the message names the first few nodes
	// and why.
	ConditionDegraded = "Degraded"
	// ConditionComplete is True once the run of the current generation ended well (phase Completed), as a Job's
	// Complete: `kubectl wait --for=condition=Complete` waits for it. False before, and for a failed run.
	ConditionComplete = "Complete"
	// ConditionFailed is True once the run of the current generation ended with a node failed or lost (phase
	// Failed), as a Job's Failed: `kubectl wait --for=condition=Failed` waits for it. False otherwise.
	ConditionFailed = "Failed"
	// ConditionReconciling and ConditionStalled are kstatus's (sigs.k8s.io/cli-utils), which Flux, Argo CD's
	// kstatus health checks and kpt read for any resource: Reconciling is True while the run has not ended
	// (as Progressing), Stalled is True once it failed (as Failed). A run that ended well has both False: kstatus
	// calls it Current.
	ConditionReconciling = "Reconciling"
	ConditionStalled     = "Stalled"
)

// Condition reasons of a TrafficGenerator.
const (
	ReasonAgentsReady        = "AgentsReady"
	ReasonNoMatchingNodes    = "NoMatchingNodes"
	ReasonWaitingForAgents   = "WaitingForAgents"
	ReasonNodesLost          = "NodesLost"
	ReasonRunning            = "Running"
	ReasonRunCompleted       = "RunCompleted"
	ReasonRunFailed          = "RunFailed"
	ReasonNodeFailed         = "NodeFailed"
	ReasonNodeLost           = "NodeLost"
	ReasonAgentRestarted     = "AgentRestarted"
	ReasonAsExpected         = "AsExpected"
	ReasonReconcileFailed    = "ReconcileFailed"
	ReasonRunStarted         = "RunStarted"
	ReasonNodeReportRejected = "NodeReportRejected"
)

// Destination is where the frames go.
// +kubebuilder:validation:XValidation:rule="self.port + self.portCount - 1 <= 65535",message="destination.port + destination.portCount - 1 must be <= 65535: lower port or portCount"
// +kubebuilder:validation:XValidation:rule="!has(self.address) || !has(self.addressRange)",message="destination.address and destination.addressRange exclude each other: give one address or a range",fieldPath=".addressRange"
// +kubebuilder:validation:XValidation:rule="!has(self.addressOrder) || has(self.addressRange)",message="destination.addressOrder orders destination.addressRange: remove addressOrder, or give addressRange",fieldPath=".addressOrder"
type Destination struct {
	// Address is the destination IPv4 or IPv6 address: a receiver outside the cluster (xdpgen receive, say). Left
	// out when receivers are nodes of the cluster (spec.receivers): each sender then sends to their addresses.
	// +optional
	// +kubebuilder:validation:MinLength=2
	// +kubebuilder:validation:MaxLength=45
	// +kubebuilder:validation:XValidation:rule="isIP(self)",message="destination.address must be an IPv4 or IPv6 address such as 10.200.0.2 or fd00::2 (no prefix length, no zone)"
	// +kubebuilder:validation:XValidation:rule="!isIP(self) || !ip(self).isUnspecified()",message="destination.address must not be the unspecified address (0.0.0.0 or ::): give the receiver's address"
	Address string `json:"address,omitempty"`

	// AddressRange varies each frame's destination address over a range instead of address: a prefix
	// (192.0.2.0/24; an IPv4 prefix of /30 or wider leaves out its network and broadcast addresses) or FIRST-LAST
	// (192.0.2.10-192.0.2.20). An IPv6 range stays within one /96. Every address goes to the next hop of the
	// first, so that the far end's RSS spreads the flows over its queues. Not with receivers, which account per
	// destination address.
	// +optional
	// +kubebuilder:validation:MaxLength=91
	// +kubebuilder:validation:XValidation:rule="isCIDR(self) || isIP(self) || (self.split('-').size() == 2 && isIP(self.split('-')[0]) && isIP(self.split('-')[1]))",message="destination.addressRange must be a prefix such as 192.0.2.0/24 or fd00::/120, or FIRST-LAST such as 192.0.2.10-192.0.2.20"
	AddressRange string `json:"addressRange,omitempty"`

	// AddressOrder is the order of addressRange: Stepped (in turn, after the ports, so that every combination of
	// ports and addresses is sent) or Random. Left out: Stepped.
	// +optional
	AddressOrder Order `json:"addressOrder,omitempty"`

	// MAC is the destination MAC address. Left out, each node resolves the next hop's MAC from its neighbour table.
	// +optional
	// +kubebuilder:validation:MaxLength=17
	// +kubebuilder:validation:XValidation:rule="self.matches('^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$')",message="destination.mac must be a MAC address such as 02:00:00:00:00:02, or be left out to resolve it from each node's neighbour table"
	MAC string `json:"mac,omitempty"`

	// Port is the first destination port.
	// +optional
	// +kubebuilder:default=9
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port int32 `json:"port,omitempty"`

	// PortCount spreads frames over the ports port..port+portCount-1 ("dynamic ports").
	// +optional
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	PortCount int32 `json:"portCount,omitempty"`
}

// Source is what the frames come from. Every field has a per-node default.
// +kubebuilder:validation:XValidation:rule="self.port + self.portCount - 1 <= 65535",message="source.port + source.portCount - 1 must be <= 65535: lower port or portCount"
// +kubebuilder:validation:XValidation:rule="!has(self.address) || !has(self.addressRange)",message="source.address and source.addressRange exclude each other: give one address or a range",fieldPath=".addressRange"
// +kubebuilder:validation:XValidation:rule="!has(self.addressOrder) || has(self.addressRange)",message="source.addressOrder orders source.addressRange: remove addressOrder, or give addressRange",fieldPath=".addressOrder"
type Source struct {
	// Address is the source IPv4 or IPv6 address. Left out, each node uses its interface's address of the
	// destination's family.
	// +optional
	// +kubebuilder:validation:MaxLength=45
	// +kubebuilder:validation:XValidation:rule="isIP(self)",message="source.address must be an IPv4 or IPv6 address such as 10.200.0.1 or fd00::1 (no prefix length, no zone), or be left out to use the interface's address"
	// +kubebuilder:validation:XValidation:rule="!isIP(self) || !ip(self).isUnspecified()",message="source.address must not be the unspecified address (0.0.0.0 or ::): leave it out to use the interface's address"
	Address string `json:"address,omitempty"`

	// AddressRange varies each frame's source address over a range instead of address, as
	// destination.addressRange does (every node sends from the whole range).
	// +optional
	// +kubebuilder:validation:MaxLength=91
	// +kubebuilder:validation:XValidation:rule="isCIDR(self) || isIP(self) || (self.split('-').size() == 2 && isIP(self.split('-')[0]) && isIP(self.split('-')[1]))",message="source.addressRange must be a prefix such as 198.51.100.0/24 or fd00::/120, or FIRST-LAST such as 198.51.100.10-198.51.100.20"
	AddressRange string `json:"addressRange,omitempty"`

	// AddressOrder is the order of addressRange: Stepped (in turn, after the ports and the destination
	// addresses) or Random. Left out: Stepped.
	// +optional
	AddressOrder Order `json:"addressOrder,omitempty"`

	// MAC is the source MAC address. Left out, each node uses its interface's MAC.
	// +optional
	// +kubebuilder:validation:MaxLength=17
	// +kubebuilder:validation:XValidation:rule="self.matches('^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$')",message="source.mac must be a MAC address such as 02:00:00:00:00:01, or be left out to use the interface's MAC"
	MAC string `json:"mac,omitempty"`

	// Port is the first source port.
	// +optional
	// +kubebuilder:default=9
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port int32 `json:"port,omitempty"`

	// PortCount spreads frames over the source ports port..port+portCount-1.
	// +optional
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	PortCount int32 `json:"portCount,omitempty"`
}

// Rate caps how fast each node sends. Exactly one of its fields is set.
// +kubebuilder:validation:XValidation:rule="(has(self.packetsPerSecond) ? 1 : 0) + (has(self.bitsPerSecond) ? 1 : 0) + (has(self.l1BitsPerSecond) ? 1 : 0) + (has(self.percentOfLineRate) ? 1 : 0) <= 1",message="rate: set only one of packetsPerSecond, bitsPerSecond, l1BitsPerSecond and percentOfLineRate"
// +kubebuilder:validation:XValidation:rule="has(self.packetsPerSecond) || has(self.bitsPerSecond) || has(self.l1BitsPerSecond) || has(self.percentOfLineRate)",message="rate: set packetsPerSecond, bitsPerSecond, l1BitsPerSecond or percentOfLineRate, or remove rate to send as fast as the node can"
type Rate struct {
	// PacketsPerSecond is the rate of each node in frames per second.
	// +optional
	// +kubebuilder:validation:Minimum=1
	PacketsPerSecond *int64 `json:"packetsPerSecond,omitempty"`

	// BitsPerSecond is the rate of each node in bits per second of Ethernet frames (layer 2: without preamble and
	// FCS).
	// +optional
	// +kubebuilder:validation:Minimum=1
	BitsPerSecond *int64 `json:"bitsPerSecond,omitempty"`

	// L1BitsPerSecond is the rate of each node in bits per second on the wire (layer 1): each frame with its FCS,
	// preamble and SFD and the inter-frame gap, 24 bytes more than frameSize. 64-byte frames (frameSize 60) at
	// 10 Gbit/s are 14.88 million frames per second.
	// +optional
	// +kubebuilder:validation:Minimum=1
	L1BitsPerSecond *int64 `json:"l1BitsPerSecond,omitempty"`

	// PercentOfLineRate is the rate of each node as a percentage of its interface's link speed, at layer 1 (a
	// decimal number such as "50" or "2.5"). A node whose driver reports no speed (a veth, most virtual NICs)
	// fails saying so.
	// +optional
	// +kubebuilder:validation:MaxLength=16
	// +kubebuilder:validation:XValidation:rule="self.matches('^[0-9]+(\\\\.[0-9]+)?$') && double(self) > 0.0 && double(self) <= 100.0",message="rate.percentOfLineRate must be a decimal number above 0 and at most 100, such as 50 or 2.5"
	PercentOfLineRate string `json:"percentOfLineRate,omitempty"`

	// Burst sends this many frames back to back per sending thread each time the rate lets one through, then
	// waits as many frames' time: the average rate holds, the traffic comes in bursts.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1048576
	Burst *int32 `json:"burst,omitempty"`
}

// Order is the order the values of a range (frame sizes, addresses) are sent in.
// +kubebuilder:validation:Enum=Stepped;Random
type Order string

const (
	// OrderStepped sends each value in turn: first, first+1, ..., last, first, ...
	OrderStepped Order = "Stepped"
	// OrderRandom picks each frame's value uniformly at random from the range.
	OrderRandom Order = "Random"
)

// FrameSizes varies the frame size from frame to frame: a range (min and max), a named mix (profile), or a mix of
// your own (weights). Sizes are Ethernet frame lengths without FCS, as frameSize. Each node's BPF program trims
// every frame from one of the largest size, so a mix costs no more per frame than a range of ports; a rate in
// bitsPerSecond is paced by the mean frame size.
// +kubebuilder:validation:XValidation:rule="(has(self.min) || has(self.max) ? 1 : 0) + (has(self.profile) ? 1 : 0) + (has(self.weights) ? 1 : 0) == 1",message="frameSizes: set exactly one of min and max (a range), profile (a named mix such as imix-simple) or weights (a mix of your own)"
// +kubebuilder:validation:XValidation:rule="has(self.min) == has(self.max)",message="frameSizes: a range needs both min and max"
// +kubebuilder:validation:XValidation:rule="!has(self.min) || !has(self.max) || self.min <= self.max",message="frameSizes.max must be at least frameSizes.min",fieldPath=".max"
// +kubebuilder:validation:XValidation:rule="!has(self.order) || has(self.min)",message="frameSizes.order orders a range: remove order, or give min and max instead of a mix",fieldPath=".order"
type FrameSizes struct {
	// Min and Max bound a range of sizes.
	// +optional
	// +kubebuilder:validation:Minimum=60
	// +kubebuilder:validation:Maximum=3520
	Min *int32 `json:"min,omitempty"`
	// +optional
	// +kubebuilder:validation:Minimum=60
	// +kubebuilder:validation:Maximum=3520
	Max *int32 `json:"max,omitempty"`
	// Order is the order of a range: Stepped (min, min+1, ..., max, in turn) or Random. Left out: Stepped.
	// +optional
	Order Order `json:"order,omitempty"`

	// Profile is a named mix: imix-simple is 64, 570 and 1518-byte frames with FCS (60, 566 and 1514 without)
	// weighted 7:4:1. Its 60-byte frames are IPv4 only: an IPv6 run needs weights of its own.
	// +optional
	// +kubebuilder:validation:Enum=imix-simple
	Profile string `json:"profile,omitempty"`

	// Weights is a mix of your own: each size once, with its weight. Each thread sends the sizes interleaved in
	// cycles of sum(weight) frames, each size weight times per cycle.
	// +optional
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:XValidation:rule="self.map(w, w.weight).sum() <= 1024",message="frameSizes.weights add up to more than 1024: scale them down"
	// +kubebuilder:validation:XValidation:rule="self.all(a, self.exists_one(b, b.size == a.size))",message="frameSizes.weights: give each size once, with its whole weight"
	Weights []SizeWeight `json:"weights,omitempty"`
}

// SizeWeight is one size of a mix and its weight.
type SizeWeight struct {
	// Size is the Ethernet frame length without FCS.
	// +kubebuilder:validation:Minimum=60
	// +kubebuilder:validation:Maximum=3520
	Size int32 `json:"size"`
	// Weight is how many frames of this size each cycle of the mix holds.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1024
	Weight int32 `json:"weight"`
}

// TCPOptions tune a tcp run. Each node opens its own connections to destination.address, port destination.port
// (a server must listen there), and sends a byte stream over each; packets counts data segments.
type TCPOptions struct {
	// Flows is the number of connections per node, spread over its threads. Left out: one per thread.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=256
	Flows *int32 `json:"flows,omitempty"`
}

// Start says when each node starts sending.
// +kubebuilder:validation:XValidation:rule="self.policy != 'At' || has(self.at)",message="start.policy At needs start.at, the time at which every node starts sending",fieldPath=".at"
// +kubebuilder:validation:XValidation:rule="self.policy == 'At' || !has(self.at)",message="start.at is only used with start.policy At: set policy: At or remove at",fieldPath=".at"
type Start struct {
	// Policy is WhenReady (each node starts as soon as its agent is ready) or At (every node starts at start.at).
	// +optional
	// +kubebuilder:default=WhenReady
	Policy StartPolicy `json:"policy,omitempty"`

	// At is the time at which every node starts sending, when policy is At.
	// +optional
	At *metav1.Time `json:"at,omitempty"`
}

// IPFamily is an IP version.
// +kubebuilder:validation:Enum=IPv4;IPv6
type IPFamily string

const (
	IPv4 IPFamily = "IPv4"
	IPv6 IPFamily = "IPv6"
)

// Receivers makes nodes of the cluster the far end of a udp run, so that the run says what arrived: every sender
// sends to every receiver (never to itself), its rate spread evenly over them, and stamps each frame with its
// stream and a sequence number; each receiver's agent counts per sender what arrived, out of order and twice, and
// settles the loss against the sender's count once the senders finished and the drain time passed. A sample of the
// frames is sent back by the receivers, and the senders time the round trip.
type Receivers struct {
	// NodeSelector picks the receiving nodes: every Node whose labels match (Linux nodes only unless the selector
	// says otherwise). Empty: every Linux node. A node may be both sender and receiver (a mesh).
	// +optional
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`

	// IPFamily says which of each receiving Node's InternalIP addresses the senders send to.
	// +optional
	// +kubebuilder:default=IPv4
	IPFamily IPFamily `json:"ipFamily,omitempty"`

	// Interface is where each receiver counts: a name such as eth0, or auto for the interface that holds the
	// address the senders send to. The receiver attaches an XDP program there, and refuses to if another XDP
	// program is attached already (it never replaces one).
	// +optional
	// +kubebuilder:default=auto
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=15
	// +kubebuilder:validation:XValidation:rule="self == 'auto' || self.matches('^[^/:\\\\s]+$')",message="receivers.interface must be auto or a network interface name such as eth0 (at most 15 characters, no '/', ':' or white space)"
	Interface string `json:"interface,omitempty"`

	// DrainTime is how long receivers go on counting after the last sender finished, for the frames still in
	// flight, before they settle the loss (a Go duration from 0s to 1m).
	// +optional
	// +kubebuilder:default="2s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+(\\\\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$') && duration(self) <= duration('1m')",message="receivers.drainTime must be a Go duration from 0s to 1m, such as 2s"
	DrainTime *metav1.Duration `json:"drainTime,omitempty"`

	// LatencySampleEvery makes one frame in this many, on each path, a latency sample: its receiver sends it
	// back and its sender times the round trip. 0: no latency samples.
	// +optional
	// +kubebuilder:default=1000
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=1000000
	LatencySampleEvery *int32 `json:"latencySampleEvery,omitempty"`
}

// TrafficGeneratorSpec is what to send, from which nodes, and for how long.
// +kubebuilder:validation:XValidation:rule="!has(self.source) || !has(self.source.address) || !has(self.destination.address) || !isIP(self.source.address) || !isIP(self.destination.address) || ip(self.source.address).family() == ip(self.destination.address).family()",message="destination.address and source.address must both be IPv4 or both IPv6",fieldPath=".source.address"
// +kubebuilder:validation:XValidation:rule="!has(self.frameSize) || self.frameSize >= (14 + (has(self.vlan) ? 4 : 0) + (((has(self.destination.address) && isIP(self.destination.address) && ip(self.destination.address).family() == 6) || (has(self.receivers) && self.receivers.ipFamily == 'IPv6')) ? 40 : 20) + (self.protocol == 'tcp' ? 40 : 8) + (has(self.receivers) ? 20 : 0))",messageExpression="'frameSize must hold Ethernet (14) + VLAN tag (4, when vlan is set) + IP header (20 for IPv4, 40 for IPv6) + %s%sbytes: set frameSize to at least %d'.format([self.protocol == 'tcp' ? 'TCP with timestamps (32) + the stream offset (8)' : 'UDP (8)', has(self.receivers) ? ' + the receivers stamp (20) ' : ' ', (14 + (has(self.vlan) ? 4 : 0) + (((has(self.destination.address) && isIP(self.destination.address) && ip(self.destination.address).family() == 6) || (has(self.receivers) && self.receivers.ipFamily == 'IPv6')) ? 40 : 20) + (self.protocol == 'tcp' ? 40 : 8) + (has(self.receivers) ? 20 : 0))])",fieldPath=".frameSize"
// +kubebuilder:validation:XValidation:rule="!has(self.frameSize) || !has(self.frameSizes)",message="frameSize and frameSizes exclude each other: remove frameSize to vary the size, or frameSizes for one size",fieldPath=".frameSizes"
// +kubebuilder:validation:XValidation:rule="!has(self.frameSizes) || !has(self.frameSizes.profile) || !has(self.receivers)",message="frameSizes.profile imix-simple has 60-byte frames, too small for the receivers' 20-byte stamp: give frameSizes.weights from 62 bytes (IPv4) or 82 (IPv6) up",fieldPath=".frameSizes"
// +kubebuilder:validation:XValidation:rule="self.protocol != 'tcp' || !has(self.frameSizes)",message="frameSizes applies to udp: a tcp run's segments are as large as frameSize or the MSS allows; remove frameSizes",fieldPath=".frameSizes"
// +kubebuilder:validation:XValidation:rule="!has(self.mode) || self.mode != 'Inject' || self.protocol == 'udp'",message="mode Inject applies to udp: use protocol: udp",fieldPath=".mode"
// +kubebuilder:validation:XValidation:rule="!has(self.mode) || self.mode != 'Inject' || !has(self.receivers)",message="mode Inject hands the frames to each sending node's own stack: remove receivers, and give destination.address",fieldPath=".receivers"
// +kubebuilder:validation:XValidation:rule="!has(self.mode) || self.mode != 'Inject' || (has(self.interface) && self.interface != 'auto')",message="mode Inject needs the interface whose receive path takes the frames: set interface to its name, such as eth0",fieldPath=".interface"
// +kubebuilder:validation:XValidation:rule="!has(self.mode) || self.mode != 'Inject' || (has(self.source) && (has(self.source.address) || has(self.source.addressRange)))",message="mode Inject needs source.address (or source.addressRange): a peer the nodes accept frames from, not one of their own addresses",fieldPath=".source"
// +kubebuilder:validation:XValidation:rule="self.protocol != 'tcp' || !has(self.rate)",message="rate applies to udp: a tcp run sends as fast as its congestion window allows; remove rate",fieldPath=".rate"
// +kubebuilder:validation:XValidation:rule="self.protocol != 'tcp' || !has(self.vlan)",message="vlan applies to udp only: tcp mode sends untagged frames; remove vlan",fieldPath=".vlan"
// +kubebuilder:validation:XValidation:rule="self.protocol != 'tcp' || self.destination.portCount == 1",message="a tcp run connects to one destination.port: remove destination.portCount (use tcp.flows for more connections)",fieldPath=".destination.portCount"
// +kubebuilder:validation:XValidation:rule="self.protocol == 'tcp' || !has(self.tcp)",message="tcp options need protocol: tcp",fieldPath=".tcp"
// +kubebuilder:validation:XValidation:rule="has(self.duration) || has(self.packets) || (has(self.continuous) && self.continuous) || has(self.search)",message="set duration or packets to bound the run, set continuous: true to send until the TrafficGenerator is deleted, or set search to search for the highest rate without loss"
// +kubebuilder:validation:XValidation:rule="!has(self.search) || has(self.receivers)",message="search needs receivers, which count what arrived on each path: set receivers (nodes of the cluster)",fieldPath=".search"
// +kubebuilder:validation:XValidation:rule="!has(self.search) || !(has(self.rate) || has(self.duration) || has(self.packets) || (has(self.continuous) && self.continuous))",message="search sets each trial's rate and duration itself: remove rate, duration, packets and continuous (bound the search with search.minPacketsPerSecond, maxPacketsPerSecond and trialDuration)",fieldPath=".search"
// +kubebuilder:validation:XValidation:rule="!has(self.search) || self.start.policy != 'At'",message="search starts each trial when the last one settled: remove start.at and set start.policy WhenReady",fieldPath=".start"
// +kubebuilder:validation:XValidation:rule="!(has(self.continuous) && self.continuous) || !(has(self.duration) || has(self.packets))",message="continuous: true sends until the TrafficGenerator is deleted: remove duration and packets, or set continuous: false",fieldPath=".continuous"
// +kubebuilder:validation:XValidation:rule="has(self.destination.address) || has(self.destination.addressRange) || has(self.receivers)",message="set destination.address or destination.addressRange (receivers outside the cluster) or receivers (nodes of the cluster that count what arrives)"
// +kubebuilder:validation:XValidation:rule="!has(self.destination.address) || !has(self.receivers)",message="destination.address and receivers exclude each other: remove destination.address to send to the receiving nodes, or remove receivers to send to that address",fieldPath=".receivers"
// +kubebuilder:validation:XValidation:rule="!has(self.receivers) || !has(self.destination.addressRange)",message="destination.addressRange does not apply with receivers, which account per destination address: vary source.addressRange or the ports instead",fieldPath=".destination.addressRange"
// +kubebuilder:validation:XValidation:rule="self.protocol != 'tcp' || (!has(self.destination.addressRange) && !has(self.source.addressRange))",message="address ranges apply to udp: a tcp run connects from and to one address; remove destination.addressRange and source.addressRange",fieldPath=".protocol"
// +kubebuilder:validation:XValidation:rule="!has(self.receivers) || !has(self.destination.mac)",message="destination.mac does not apply with receivers: each sender resolves each receiver's next hop; remove destination.mac",fieldPath=".destination.mac"
// +kubebuilder:validation:XValidation:rule="self.protocol != 'tcp' || !has(self.receivers)",message="receivers apply to udp: a tcp run's server acknowledges what arrived; remove receivers or use protocol: udp",fieldPath=".receivers"
// +kubebuilder:validation:XValidation:rule="!has(self.replay) || self.protocol == 'udp'",message="replay sends the capture's frames as they are: use protocol: udp",fieldPath=".replay"
// +kubebuilder:validation:XValidation:rule="!has(self.replay) || (!has(self.frameSize) && !has(self.frameSizes))",message="replay sends the capture's frames at their own sizes: remove frameSize and frameSizes",fieldPath=".replay"
// +kubebuilder:validation:XValidation:rule="!has(self.replay) || !has(self.receivers)",message="replay sends the capture's frames, which carry no receivers' stamp, to destination.address: remove receivers and give destination.address",fieldPath=".replay"
// +kubebuilder:validation:XValidation:rule="!has(self.replay) || !has(self.mode) || self.mode != 'Inject'",message="replay transmits the capture: remove mode Inject",fieldPath=".replay"
// +kubebuilder:validation:XValidation:rule="!has(self.replay) || !has(self.vlan)",message="replay sends the frames with the tags they were captured with: remove vlan",fieldPath=".replay"
// +kubebuilder:validation:XValidation:rule="!has(self.replay) || (!has(self.destination.addressRange) && !has(self.source.addressRange))",message="replay rewrites every frame to destination.address: remove destination.addressRange and source.addressRange",fieldPath=".replay"
// +kubebuilder:validation:XValidation:rule="!has(self.replay) || !has(self.rate) || (!has(self.rate.l1BitsPerSecond) && !has(self.rate.percentOfLineRate) && !has(self.rate.burst))",message="a replay is paced by rate.packetsPerSecond or rate.bitsPerSecond: remove l1BitsPerSecond, percentOfLineRate and burst",fieldPath=".rate"
// +kubebuilder:validation:XValidation:rule="!has(self.replay) || !has(self.replay.timing) || self.replay.timing != 'Capture' || !has(self.rate)",message="replay.timing Capture sends each frame at its time in the capture: remove rate, or use timing: Rate",fieldPath=".rate"
type TrafficGeneratorSpec struct {
	// NodeSelector picks the nodes that send: the agent on every Node whose labels match runs this generator, and
	// the run waits for each of them. Only Linux nodes (kubernetes.io/os=linux) unless the selector says otherwise.
	// Empty: every Linux node.
	// +optional
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`

	// Interface is the network interface to send on: a name such as eth0, or auto for the interface of each
	// node's route to the destination.
	// +optional
	// +kubebuilder:default=auto
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=15
	// +kubebuilder:validation:XValidation:rule="self == 'auto' || self.matches('^[^/:\\\\s]+$')",message="interface must be auto or a network interface name such as eth0 (at most 15 characters, no '/', ':' or white space)"
	Interface string `json:"interface,omitempty"`

	// Protocol is udp or tcp.
	// +optional
	// +kubebuilder:default=udp
	Protocol Protocol `json:"protocol,omitempty"`

	// Mode is Transmit (frames leave through the interface) or Inject (udp: each node hands its frames to the
	// named interface's own receive path, addressed to its MAC, from source.address: a Service or pod address,
	// or one of the node's own, is then reached through the node's own datapath). Left out: Transmit.
	// +optional
	Mode Mode `json:"mode,omitempty"`

	// Destination is where the frames go: an address, or with receivers only the ports.
	// +optional
	// +kubebuilder:default={port: 9, portCount: 1}
	Destination Destination `json:"destination,omitempty"`

	// Receivers makes nodes of the cluster the receivers of a udp run, which then reports what arrived: received,
	// lost, reordered and round-trip time, per path and in total.
	// +optional
	Receivers *Receivers `json:"receivers,omitempty"`

	// Source is what the frames come from; every field defaults per node.
	// +optional
	// +kubebuilder:default={port: 9, portCount: 1}
	Source Source `json:"source,omitempty"`

	// FrameSize is the size of each Ethernet frame in bytes, without the FCS; for tcp, of a full segment. Left
	// out: 64 for udp, and as large as the connection's MSS allows for tcp. The agent checks it against the
	// interface MTU when it starts.
	// +optional
	// +kubebuilder:validation:Minimum=60
	// +kubebuilder:validation:Maximum=9216
	FrameSize int32 `json:"frameSize,omitempty"`

	// FrameSizes varies the frame size from frame to frame (udp), instead of frameSize.
	// +optional
	FrameSizes *FrameSizes `json:"frameSizes,omitempty"`

	// Replay sends the frames of a capture held in a ConfigMap instead of built ones (udp).
	// +optional
	Replay *Replay `json:"replay,omitempty"`

	// VLAN is an 802.1Q VLAN ID to tag the frames with.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=4094
	VLAN *int32 `json:"vlan,omitempty"`

	// Threads is the number of sending threads (pinned CPUs) on each node.
	// +optional
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=256
	Threads int32 `json:"threads,omitempty"`

	// Rate caps each node's sending rate. Left out, each node sends as fast as it can.
	// +optional
	Rate *Rate `json:"rate,omitempty"`

	// Duration bounds the run in time (a Go duration such as 30s, 10m or 1h30m; 1s to 168h).
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+(\\\\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$')",message="duration must be a Go duration such as 30s, 10m or 1h30m"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^([0-9]+(\\\\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$') || (duration(self) >= duration('1s') && duration(self) <= duration('168h'))",message="duration must be between 1s and 168h (7 days)"
	Duration *metav1.Duration `json:"duration,omitempty"`

	// Packets bounds the run in frames sent by each node (for tcp: data segments, acknowledged by the server).
	// +optional
	// +kubebuilder:validation:Minimum=1
	Packets *int64 `json:"packets,omitempty"`

	// TCP tunes protocol tcp.
	// +optional
	TCP *TCPOptions `json:"tcp,omitempty"`

	// Continuous runs until the TrafficGenerator is deleted. A run needs duration, packets, continuous: true or
	// search.
	// +optional
	Continuous bool `json:"continuous,omitempty"`

	// Search searches for the highest rate the paths to the receivers carry without loss (NDR) and with little
	// loss (PDR), trial by trial, instead of sending at one rate: status.search has the result and every trial.
	// Needs receivers; excludes rate, duration, packets and continuous, which each trial sets.
	// +optional
	Search *Search `json:"search,omitempty"`

	// Start says when each node starts sending.
	// +optional
	// +kubebuilder:default={policy: WhenReady}
	Start Start `json:"start,omitempty"`

	// DeadManTimeout is the dead-man switch of every node's run (a Go duration, 1s to 1h): a node whose agent
	// has not written its NodeReport to the API server for this long while sending stops sending, and its run ends
	// Failed, saying why, once the API server takes the report again. The run does not resume by itself: traffic
	// that cut the node off from the control plane would cut it off again; change the spec (or recreate the
	// TrafficGenerator) to run again. Shorter API server outages do not stop the traffic. It cannot be turned off:
	// no run, continuous or bounded, sends on unchecked.
	// +optional
	// +kubebuilder:default="60s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+(\\\\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$')",message="deadManTimeout must be a Go duration such as 30s or 5m"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^([0-9]+(\\\\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$') || (duration(self) >= duration('1s') && duration(self) <= duration('1h'))",message="deadManTimeout must be between 1s and 1h: a node stops sending when it cannot reach the API server for this long"
	DeadManTimeout *metav1.Duration `json:"deadManTimeout,omitempty"`
}

// DefaultDeadManTimeout is spec.deadManTimeout when the API server did not default it (its marker above says
// the same).
const DefaultDeadManTimeout = 60 * time.Second

// NodeSummary is one node's part of a run, copied from its NodeReport (or, for a lost node, what the controller
// knows about it).
type NodeSummary struct {
	// Node is the node's name.
	Node string `json:"node"`
	// Phase is the node's phase for the current generation.
	Phase Phase `json:"phase"`
	// Packets and Bytes are what the node has sent in this run.
	Packets int64 `json:"packets"`
	Bytes   int64 `json:"bytes"`
	// PacketsPerSecond and BitsPerSecond are the node's current rates.
	PacketsPerSecond int64 `json:"packetsPerSecond"`
	BitsPerSecond    int64 `json:"bitsPerSecond"`
	// LastError is the node's message when it failed, or why the controller considers it lost.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	LastError string `json:"lastError,omitempty"`
	// Restarts counts the node's agent restarts during this run (pod deleted, crash, node reboot): each resumed
	// the run where the last report left it.
	// +optional
	Restarts int32 `json:"restarts,omitempty"`
	// EgressDroppedPackets are the frames the node's egress interface refused: see
	// NodeReportStatus.EgressDroppedPackets.
	// +optional
	EgressDroppedPackets int64 `json:"egressDroppedPackets,omitempty"`
	// TCP is what the node's connections counted, for a tcp run; its goodput is zero once the node stopped.
	// +optional
	TCP *TCPStatus `json:"tcp,omitempty"`
}

// Totals sums the nodes of the current generation. Rates sum the nodes that are running.
type Totals struct {
	Packets          int64 `json:"packets"`
	Bytes            int64 `json:"bytes"`
	PacketsPerSecond int64 `json:"packetsPerSecond"`
	BitsPerSecond    int64 `json:"bitsPerSecond"`
	// AveragePacketsPerSecond and AverageBitsPerSecond are the run's average rates once it is over: packets and
	// bits (of frames, without the FCS) over status.duration.
	// +optional
	AveragePacketsPerSecond int64 `json:"averagePacketsPerSecond,omitempty"`
	// +optional
	AverageBitsPerSecond int64 `json:"averageBitsPerSecond,omitempty"`
	// EgressDroppedPackets sums the frames the nodes' egress interfaces refused (a full transmit ring): sent by
	// the XDP program, but they did not leave the node. See NodeReportStatus.EgressDroppedPackets.
	// +optional
	EgressDroppedPackets int64 `json:"egressDroppedPackets,omitempty"`
	// TCP sums the nodes' TCP counters, for a tcp run; its goodput sums the nodes that are running.
	// +optional
	TCP *TCPStatus `json:"tcp,omitempty"`
	// ReceivedPackets, LostPackets and LossRatio sum the paths to the receivers, for a run with receivers: see
	// PathResult for what they mean before the paths settle.
	// +optional
	ReceivedPackets int64 `json:"receivedPackets,omitempty"`
	// +optional
	LostPackets int64 `json:"lostPackets,omitempty"`
	// +optional
	LossRatio string `json:"lossRatio,omitempty"`
	// Sizes sums the nodes' frames per size bucket, for a run whose frame sizes vary (spec.frameSizes): the mix
	// the run achieved, each size of a mix or up to 16 equal slices of a range, sorted by size.
	// +optional
	// +kubebuilder:validation:MaxItems=16
	Sizes []SizeCount `json:"sizes,omitempty"`
}

// MaxWorstPaths bounds status.worstPaths.
const MaxWorstPaths = 10

// MaxNodesOfInterest bounds status.nodesOfInterest, so that the status has the same size on five nodes and on
// five thousand.
const MaxNodesOfInterest = 20

// TrafficGeneratorStatus is computed by the controller from the Nodes that spec.nodeSelector matches and the
// NodeReports. Its size does not grow with the number of nodes: per-node detail is in the NodeReports.
type TrafficGeneratorStatus struct {
	// Phase is Pending until a node runs, Running while any node runs or nodes are still to finish, and
	// Completed (or Failed, when a node failed or was lost) once every expected node has finished.
	// +optional
	Phase Phase `json:"phase,omitempty"`

	// ObservedGeneration is the generation of the spec this status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// ObservedGenerationTime is when the controller first saw observedGeneration: the start of the run, from
	// which the node-lost timeout counts for a node that never reports.
	// +optional
	ObservedGenerationTime *metav1.Time `json:"observedGenerationTime,omitempty"`

	// Conditions are Ready, Progressing, Degraded, Complete and Failed, and kstatus's Reconciling and Stalled.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// NodesTotal is the number of nodes of the run: the Nodes spec.nodeSelector matches, and any other node that
	// reported for the current generation. The counts by phase below add up to it.
	// +optional
	NodesTotal int32 `json:"nodesTotal,omitempty"`

	// NodesPending counts the nodes that have not started sending (or not reported yet).
	// +optional
	NodesPending int32 `json:"nodesPending,omitempty"`
	// NodesRunning counts the nodes sending now.
	// +optional
	NodesRunning int32 `json:"nodesRunning,omitempty"`
	// NodesCompleted counts the nodes that finished their run as asked.
	// +optional
	NodesCompleted int32 `json:"nodesCompleted,omitempty"`
	// NodesFailed counts the nodes whose agent reported a failure.
	// +optional
	NodesFailed int32 `json:"nodesFailed,omitempty"`
	// NodesLost counts the nodes the controller gave up on (phase Lost).
	// +optional
	NodesLost int32 `json:"nodesLost,omitempty"`

	// NodesSummary is "running/total", for kubectl get.
	// +optional
	NodesSummary string `json:"nodesSummary,omitempty"`

	// Totals sums the nodes of the current generation.
	// +optional
	Totals Totals `json:"totals,omitempty"`

	// NodesOfInterest are the nodes to look at first, at most MaxNodesOfInterest: the failed and lost nodes
	// (sorted by name), then the running nodes that sent the fewest packets. Every node's detail is in its
	// NodeReport (kubectl get nodereports -l xdpgen.io/generator=NAME).
	// +optional
	// +listType=map
	// +listMapKey=node
	// +kubebuilder:validation:MaxItems=20
	NodesOfInterest []NodeSummary `json:"nodesOfInterest,omitempty"`

	// Latency is the round-trip time of the whole run's latency samples, for a run with receivers.
	// +optional
	Latency *Latency `json:"latency,omitempty"`

	// WorstPaths are the paths to look at first, at most MaxWorstPaths: the highest loss ratio, then the highest
	// p99 round-trip time. Every path is in the receivers' NodeReports (kubectl xdpgen results NAME prints them).
	// +optional
	// +kubebuilder:validation:MaxItems=10
	WorstPaths []PathResult `json:"worstPaths,omitempty"`

	// StartTime is when the first node started sending.
	// +optional
	StartTime *metav1.Time `json:"startTime,omitempty"`

	// CompletionTime is when the last node finished.
	// +optional
	CompletionTime *metav1.Time `json:"completionTime,omitempty"`

	// Duration is how long the nodes sent, once the run is over: from the first sending node's start to the last
	// one's end of sending (its sendCompletionTime with receivers, else its completionTime), to the second; nodes
	// that only receive do not count. The average rates are over it.
	// +optional
	Duration *metav1.Duration `json:"duration,omitempty"`

	// Search is where the search stands and what it found, for a generator with spec.search. While it
	// searches, the nodes, totals, paths and rates above describe the current trial; phase is Running until
	// the search is over.
	// +optional
	Search *SearchStatus `json:"search,omitempty"`

	// Rate is the run's rate for people, as kubectl get shows it: the running nodes' current rate while the run
	// runs, such as "1.49 Mpps, 0.762 Gbit/s", and the average over the run once it is over, such as
	// "avg 1.49 Mpps, 0.762 Gbit/s".
	// +optional
	// +kubebuilder:validation:MaxLength=64
	Rate string `json:"rate,omitempty"`
}

// TrafficGenerator sends XDP live frames from a set of nodes: the xdpgen agent on each selected node (one
// long-lived agent per node, installed with xdpgen) runs it, and the controller sums what the agents report into
// the status.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=tg,categories=xdpgen
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Nodes",type=string,JSONPath=`.status.nodesSummary`,description="nodes running/nodes of the run"
// +kubebuilder:printcolumn:name="Rate",type=string,JSONPath=`.status.rate`,description="all nodes: the current rate while running, the average over the run (avg) once over"
// +kubebuilder:printcolumn:name="Packets",type=integer,JSONPath=`.status.totals.packets`,description="packets sent, all nodes"
// +kubebuilder:printcolumn:name="Loss",type=string,JSONPath=`.status.totals.lossRatio`,description="lost/sent over all paths to the receivers"
// +kubebuilder:printcolumn:name="Search",type=string,JSONPath=`.status.search.phase`,priority=1,description="where the search stands, for a generator with spec.search"
// +kubebuilder:printcolumn:name="NDR-pps",type=integer,JSONPath=`.status.search.ndr.packetsPerSecond`,priority=1,description="the Non-Drop Rate found, all senders together"
// +kubebuilder:printcolumn:name="PDR-pps",type=integer,JSONPath=`.status.search.pdr.packetsPerSecond`,priority=1,description="the Partial-Drop Rate found, all senders together"
// +kubebuilder:printcolumn:name="Received",type=integer,JSONPath=`.status.totals.receivedPackets`,priority=1,description="packets the receivers counted, all paths"
// +kubebuilder:printcolumn:name="RTT-p99",type=string,JSONPath=`.status.latency.p99`,priority=1,description="99th percentile of the round-trip time"
// +kubebuilder:printcolumn:name="Duration",type=string,JSONPath=`.status.duration`,priority=1,description="how long the nodes sent, once the run is over"
// +kubebuilder:printcolumn:name="Destination",type=string,JSONPath=`.spec.destination.address`,priority=1
// +kubebuilder:printcolumn:name="Protocol",type=string,JSONPath=`.spec.protocol`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="self.metadata.name.size() <= 63",message="metadata.name must be at most 63 characters: it is a label value on the agent pods and the node reports"
type TrafficGenerator struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec TrafficGeneratorSpec `json:"spec"`

	// +optional
	Status TrafficGeneratorStatus `json:"status,omitempty"`
}

// TrafficGeneratorList is a list of TrafficGenerators.
// +kubebuilder:object:root=true
type TrafficGeneratorList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []TrafficGenerator `json:"items"`
}
