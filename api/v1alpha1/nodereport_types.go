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
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"unicode/utf8"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Labels on NodeReports (and on the agent pods) that tie them to their TrafficGenerator and node.
const (
	// LabelGenerator holds the TrafficGenerator's name; the controller maps NodeReport events to it.
	LabelGenerator = "xdpgen.io/generator"
	// LabelNode holds the node's name (LabelValue of it, when the name is too long for a label value).
	LabelNode = "xdpgen.io/node"
)

// maxNameLength is the longest object name (a DNS subdomain); maxLabelValueLength the longest label value.
const (
	maxNameLength       = 253
	maxLabelValueLength = 63
	hashLength          = 10
)

// NodeReportName is the name of the NodeReport of generator on node: "<generator>-<node>", cut and suffixed with a
// hash of the whole when it would be longer than an object name may be. Both the agent (which creates it) and
// anyone looking for a node's report use this.
func NodeReportName(generator, node string) string {
	return fitWithHash(generator+"-"+node, maxNameLength)
}

// LabelValue returns s if it is short enough for a label value, or a cut of s suffixed with a hash of s.
// Node names can be up to 253 characters, label values only 63.
func LabelValue(s string) string {
	return fitWithHash(s, maxLabelValueLength)
}

// fitWithHash returns s when it fits in max characters, or its first characters and "-" and a hash of s. The cut
// never ends in '-' or '.', so a DNS name stays a DNS name.
func fitWithHash(s string, max int) string {
	if len(s) <= max {
		return s
	}
	sum := sha256.Sum256([]byte(s))
	prefix := strings.TrimRight(s[:max-hashLength-1], "-.")
	return prefix + "-" + hex.EncodeToString(sum[:])[:hashLength]
}

// MaxMessageLength is the longest status.message of a NodeReport (and lastError of a node in a TrafficGenerator's
// status) the API server accepts.
const MaxMessageLength = 1024

// ShortenMessage returns msg if it has at most max bytes, or its head followed by a note of how much was cut, in
// max bytes at most. It cuts on a UTF-8 character boundary, so the result stays valid text.
func ShortenMessage(msg string, max int) string {
	if len(msg) <= max {
		return msg
	}
	note := fmt.Sprintf(" [... %d bytes cut]", len(msg))
	keep := max - len(note)
	if keep <= 0 {
		return note[:max]
	}
	for keep > 0 && !utf8.RuneStart(msg[keep]) {
		keep--
	}
	return msg[:keep] + fmt.Sprintf(" [... %d bytes cut]", len(msg)-keep)
}

// XDPAction is the verdict of the XDP program on a frame.
// +kubebuilder:validation:Enum=XDP_ABORTED;XDP_DROP;XDP_PASS;XDP_TX;XDP_REDIRECT
type XDPAction string

const (
	XDPAborted  XDPAction = "XDP_ABORTED"
	XDPDrop     XDPAction = "XDP_DROP"
	XDPPass     XDPAction = "XDP_PASS"
	XDPTx       XDPAction = "XDP_TX"
	XDPRedirect XDPAction = "XDP_REDIRECT"
)

// ActionCount counts the frames (and their bytes) that ended with one XDP action.
type ActionCount struct {
	// Action is the XDP verdict.
	Action XDPAction `json:"action"`
	// +optional
	Packets int64 `json:"packets,omitempty"`
	// +optional
	Bytes int64 `json:"bytes,omitempty"`
}

// SizeCount is how many frames of sizes min to max (bytes, without FCS) a node sent.
type SizeCount struct {
	Min     int32 `json:"min"`
	Max     int32 `json:"max"`
	Packets int64 `json:"packets"`
}

// TCPStatus is what a tcp run's connections counted, summed over its flows, and their goodput. Bytes are payload
// bytes; counts are totals of the run, across restarts of the agent.
type TCPStatus struct {
	// BytesAcknowledged is the payload the server acknowledged: what it received.
	// +optional
	// +kubebuilder:validation:Minimum=0
	BytesAcknowledged int64 `json:"bytesAcknowledged,omitempty"`
	// SegmentsSent counts the data segments put on the wire, retransmissions included.
	// +optional
	// +kubebuilder:validation:Minimum=0
	SegmentsSent int64 `json:"segmentsSent,omitempty"`
	// SegmentsRetransmitted counts the data segments sent again: lost, or taken for lost.
	// +optional
	// +kubebuilder:validation:Minimum=0
	SegmentsRetransmitted int64 `json:"segmentsRetransmitted,omitempty"`
	// BytesRetransmitted is the payload of the retransmitted segments.
	// +optional
	// +kubebuilder:validation:Minimum=0
	BytesRetransmitted int64 `json:"bytesRetransmitted,omitempty"`
	// GoodputBitsPerSecond is the payload the server acknowledged, in bits per second, over the agent's last
	// reporting interval: zero once the run is over.
	// +optional
	// +kubebuilder:validation:Minimum=0
	GoodputBitsPerSecond int64 `json:"goodputBitsPerSecond,omitempty"`
}

// Add adds o's counts and goodput to s.
func (s *TCPStatus) Add(o TCPStatus) {
	s.BytesAcknowledged += o.BytesAcknowledged
	s.SegmentsSent += o.SegmentsSent
	s.SegmentsRetransmitted += o.SegmentsRetransmitted
	s.BytesRetransmitted += o.BytesRetransmitted
	s.GoodputBitsPerSecond += o.GoodputBitsPerSecond
}

// Latency sums up round-trip times: percentiles from a histogram of the samples (each within the histogram's
// bucket width, 1/8 of its power of two), and the largest sample.
type Latency struct {
	// Samples is how many round trips were timed.
	Samples int64 `json:"samples"`
	// P50, P90, P99 and P999 are the percentiles 50, 90, 99 and 99.9 of the round-trip time.
	// +optional
	P50 metav1.Duration `json:"p50,omitempty"`
	// +optional
	P90 metav1.Duration `json:"p90,omitempty"`
	// +optional
	P99 metav1.Duration `json:"p99,omitempty"`
	// +optional
	P999 metav1.Duration `json:"p999,omitempty"`
	// +optional
	Max metav1.Duration `json:"max,omitempty"`
}

// LatencyBucket counts the round trips that took at most UpperBoundNanoseconds (and more than the previous
// bucket's bound).
type LatencyBucket struct {
	UpperBoundNanoseconds int64 `json:"upperBoundNanoseconds"`
	Count                 int64 `json:"count"`
}

// MaxLatencyBuckets bounds a histogram in a report (the data plane's histogram has fewer buckets).
const MaxLatencyBuckets = 512

// SentPath is what a sender sent to one receiver.
type SentPath struct {
	// Receiver is the receiving node.
	Receiver string `json:"receiver"`
	// Address is the receiver's address the frames went to.
	Address string `json:"address"`
	// Packets counts the frames sent to this receiver.
	Packets int64 `json:"packets"`
	// RTT is the round-trip time of the latency samples on this path.
	// +optional
	RTT *Latency `json:"rtt,omitempty"`
}

// PathResult is what one path (sender to receiver) carried: written by the receiver, which counts what arrived
// and settles the loss against the sender's count.
type PathResult struct {
	Sender   string `json:"sender"`
	Receiver string `json:"receiver"`
	// SentPackets is the sender's count for this path, once the sender reported it (and final once Settled).
	// +optional
	SentPackets int64 `json:"sentPackets,omitempty"`
	// ReceivedPackets and ReceivedBytes count the frames that arrived, each sequence number once.
	// +optional
	ReceivedPackets int64 `json:"receivedPackets,omitempty"`
	// +optional
	ReceivedBytes int64 `json:"receivedBytes,omitempty"`
	// LostPackets is SentPackets - ReceivedPackets once settled; before, the gaps in the sequence numbers seen.
	// +optional
	LostPackets int64 `json:"lostPackets,omitempty"`
	// LossRatio is LostPackets over the packets sent (received + lost before settling), as a decimal such as
	// 0.0012.
	// +optional
	LossRatio string `json:"lossRatio,omitempty"`
	// OutOfOrder counts frames that arrived after a later one of their stream; Duplicates frames that arrived
	// again.
	// +optional
	OutOfOrder int64 `json:"outOfOrder,omitempty"`
	// +optional
	Duplicates int64 `json:"duplicates,omitempty"`
	// Settled is true once the loss is final: the sender finished and the drain time passed.
	// +optional
	Settled bool `json:"settled,omitempty"`
	// RTT is the round-trip time of the path's latency samples, as the sender timed them.
	// +optional
	RTT *Latency `json:"rtt,omitempty"`
	// OneWay is the one-way delay of the path's latency samples, as the receiver timed them against the sender's
	// clock: both nodes' TAI clocks. Meaningful only where the nodes' clocks are synchronised (PTP, say); skewed
	// clocks shift every sample, and a receiver clock behind the sender's wraps them to seconds.
	// +optional
	OneWay *Latency `json:"oneWay,omitempty"`
}

// NodeReportSpec ties the report to one TrafficGenerator and one node, for the report's whole life.
type NodeReportSpec struct {
	// Generator is the name of the TrafficGenerator (in the same namespace) this report is for.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Generator string `json:"generator"`

	// NodeName is the node whose agent writes this report.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	NodeName string `json:"nodeName"`
}

// NodeReportStatus is one node's run of one generation of the TrafficGenerator. Written by that node's agent only.
type NodeReportStatus struct {
	// Generation is the TrafficGenerator's metadata.generation this run is for. The controller ignores reports of
	// other generations.
	// +optional
	Generation int64 `json:"generation,omitempty"`

	// Trial is the number of the search trial this run is for, for a TrafficGenerator with spec.search (its
	// status.search.trial): each trial is a run of its own. 0 otherwise.
	// +optional
	// +kubebuilder:validation:Minimum=0
	Trial int32 `json:"trial,omitempty"`

	// Phase is the node's phase.
	// +optional
	Phase Phase `json:"phase,omitempty"`

	// StartTime is when the node started sending.
	// +optional
	StartTime *metav1.Time `json:"startTime,omitempty"`

	// LastUpdateTime is when the agent last wrote this status: its heartbeat. An agent writes its report at least
	// every report interval while its run is not over; the controller considers a node lost when this is older
	// than its --node-lost-timeout.
	// +optional
	LastUpdateTime *metav1.Time `json:"lastUpdateTime,omitempty"`

	// CompletionTime is when the node finished.
	// +optional
	CompletionTime *metav1.Time `json:"completionTime,omitempty"`

	// ReceiveStartTime is when the node's receive program was ready, for a generator with receivers: senders
	// wait for it before they send to the node, so that every frame they send is counted.
	// +optional
	ReceiveStartTime *metav1.Time `json:"receiveStartTime,omitempty"`

	// SendCompletionTime is when the node finished sending, for a generator with receivers: its receivers settle
	// their paths from it on. A node that also receives finishes its run later, once its own paths settle.
	// +optional
	SendCompletionTime *metav1.Time `json:"sendCompletionTime,omitempty"`

	// Packets and Bytes count the frames sent in this run (XDP_TX and XDP_REDIRECT that the driver took).
	// +optional
	Packets int64 `json:"packets,omitempty"`
	// +optional
	Bytes int64 `json:"bytes,omitempty"`

	// PacketsPerSecond and BitsPerSecond are the rates over the agent's last reporting interval.
	// +optional
	PacketsPerSecond int64 `json:"packetsPerSecond,omitempty"`
	// +optional
	BitsPerSecond int64 `json:"bitsPerSecond,omitempty"`

	// EgressDroppedPackets are the frames the egress interface refused during this run: its transmit ring was
	// full (for a veth, its peer's receive ring). They were counted as sent by the XDP program (XDP_REDIRECT) but
	// did not leave. The interface's counter counts its other traffic too. Not pinned: after an agent is killed,
	// the next one carries the last report's count.
	// +optional
	EgressDroppedPackets int64 `json:"egressDroppedPackets,omitempty"`

	// TCP is what the connections of a tcp run counted; unset for udp.
	// +optional
	TCP *TCPStatus `json:"tcp,omitempty"`

	// Sizes are the frames sent per size bucket, for a run whose frame sizes vary (spec.frameSizes): each size of
	// a mix, or up to 16 equal slices of a range. They are not pinned: after an agent is killed, the next one
	// carries them from the last report, up to a report interval behind.
	// +optional
	// +kubebuilder:validation:MaxItems=16
	Sizes []SizeCount `json:"sizes,omitempty"`

	// Sent is what a sender sent to each receiver of the generator's receivers.
	// +optional
	// +listType=map
	// +listMapKey=receiver
	Sent []SentPath `json:"sent,omitempty"`

	// RTTHistogram is the sender's round-trip times over all its paths (the buckets that counted any), from which
	// the controller computes the run's percentiles.
	// +optional
	// +kubebuilder:validation:MaxItems=512
	RTTHistogram []LatencyBucket `json:"rttHistogram,omitempty"`

	// RTTSumNanoseconds is the sum of the round-trip times RTTHistogram counts: with their count, their mean (the
	// agent's metrics export it as the histogram's sum).
	// +optional
	// +kubebuilder:validation:Minimum=0
	RTTSumNanoseconds int64 `json:"rttSumNanoseconds,omitempty"`

	// Received is what a receiver counted from each sender: its row of the run's sender x receiver matrix.
	// +optional
	// +listType=map
	// +listMapKey=sender
	Received []PathResult `json:"received,omitempty"`

	// Actions counts frames by the XDP program's verdict.
	// +optional
	// +listType=map
	// +listMapKey=action
	// +kubebuilder:validation:MaxItems=5
	Actions []ActionCount `json:"actions,omitempty"`

	// Message says what the node is doing or, when it failed, why. Writers fit it with ShortenMessage.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Message string `json:"message,omitempty"`

	// Restarts counts how often the agent restarted this run (agent restarts, interface changes).
	// +optional
	// +kubebuilder:validation:Minimum=0
	Restarts int32 `json:"restarts,omitempty"`

	// CPUs are the CPUs the node's sending threads are pinned to, as a list such as "2-3" or "0,4-5".
	// +optional
	// +kubebuilder:validation:MaxLength=256
	CPUs string `json:"cpus,omitempty"`

	// CPUsShared is true when the node had too few CPUs free of other runs for this run's threads: it runs on
	// the least used CPUs, shared with other TrafficGenerators, and each run gets less of them.
	// +optional
	CPUsShared bool `json:"cpusShared,omitempty"`
}

// NodeReport is what one node's agent reports about its run of a TrafficGenerator: one small object per
// (generator, node), named NodeReportName(generator, node), labelled LabelGenerator and LabelNode, and owned by the
// TrafficGenerator. Agents write only their own node's report and never the TrafficGenerator; the controller sums
// the reports into the TrafficGenerator's status. The owner reference leaves blockOwnerDeletion unset: setting it
// would need update on trafficgenerators/finalizers, which the agent's role does not grant.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=tgnr,categories=xdpgen
// +kubebuilder:printcolumn:name="Generator",type=string,JSONPath=`.spec.generator`
// +kubebuilder:printcolumn:name="Node",type=string,JSONPath=`.spec.nodeName`
// +kubebuilder:printcolumn:name="Generation",type=integer,JSONPath=`.status.generation`,priority=1
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="PPS",type=integer,JSONPath=`.status.packetsPerSecond`
// +kubebuilder:printcolumn:name="Packets",type=integer,JSONPath=`.status.packets`
// +kubebuilder:printcolumn:name="Message",type=string,JSONPath=`.status.message`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type NodeReport struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is immutable, so that an admission policy can tie a report to the node that writes it.
	// +required
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec is immutable: a NodeReport belongs to one generator and one node; delete it and create another"
	Spec NodeReportSpec `json:"spec"`

	// +optional
	Status NodeReportStatus `json:"status,omitempty"`
}

// NodeReportList is a list of NodeReports.
// +kubebuilder:object:root=true
type NodeReportList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []NodeReport `json:"items"`
}
