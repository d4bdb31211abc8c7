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
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// DefaultPolicyName is the name of the TrafficGeneratorPolicy that the ValidatingAdmissionPolicy
// xdpgen-trafficgenerator-policy reads in a TrafficGenerator's namespace. A namespace without one runs no
// TrafficGenerator.
const DefaultPolicyName = "default"

// TrafficGeneratorPolicySpec says what the TrafficGenerators of its namespace may do. The ValidatingAdmissionPolicy
// xdpgen-trafficgenerator-policy checks every TrafficGenerator created, or whose spec is changed, against it. An
// empty spec allows unicast destinations only, on any interface, VLAN and node, at any rate, for any duration, but
// not continuous runs.
//
// There is no limit on the rate of a whole generator: a generator sends its rate from each node its nodeSelector
// matches, and how many nodes that is, is unknown when it is admitted (and changes as nodes come and go). Bound
// the whole by the per-node limits and a nodeSelector that keeps generators to known nodes.
type TrafficGeneratorPolicySpec struct {
	// AllowedDestinationCIDRs are the networks destination.address must be in, such as 10.0.0.0/8 or fd00::/8.
	// Empty: any destination that allowSpecialAddresses lets through.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=49
	// +kubebuilder:validation:items:XValidation:rule="isCIDR(self)",message="allowedDestinationCIDRs must be CIDRs such as 10.0.0.0/8 or fd00::/8"
	AllowedDestinationCIDRs []string `json:"allowedDestinationCIDRs,omitempty"`

	// AllowSpecialAddresses allows destination addresses that are not global unicast (broadcast such as
	// 255.255.255.255, multicast such as 224.0.0.1 or ff02::1, loopback, and link-local such as 169.254.169.254
	// or fe80::1) and group MAC addresses (broadcast ff:ff:ff:ff:ff:ff and multicast, the low bit of the first
	// octet set) as destination.mac or source.mac. Such frames reach every host of a link or group, or the node
	// itself and its cloud metadata service.
	// +optional
	AllowSpecialAddresses bool `json:"allowSpecialAddresses,omitempty"`

	// AllowedInterfaces are the interfaces spec.interface may name; add auto to allow each node's route to the
	// destination. Empty: any interface, and auto.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=15
	AllowedInterfaces []string `json:"allowedInterfaces,omitempty"`

	// AllowedVLANs are the VLAN IDs spec.vlan may tag frames with. Empty: any VLAN, and untagged.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=4094
	// +kubebuilder:validation:items:Minimum=1
	// +kubebuilder:validation:items:Maximum=4094
	AllowedVLANs []int32 `json:"allowedVLANs,omitempty"`

	// NodeSelector keeps generators to some nodes: a TrafficGenerator's nodeSelector must hold every label of it,
	// with the same value, so that it selects only nodes this selector selects.
	// +optional
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`

	// MaxPacketsPerSecondPerNode bounds rate.packetsPerSecond (and the packets per second of rate.bitsPerSecond
	// or rate.l1BitsPerSecond at the generator's frameSize, 64 bytes when left out, or the smallest of its
	// frameSizes). Set, a generator needs a rate in packets or bits per second (no tcp run: tcp sends as fast as
	// its congestion window allows; no rate.percentOfLineRate: it depends on each node's link).
	// +optional
	// +kubebuilder:validation:Minimum=1
	MaxPacketsPerSecondPerNode *int64 `json:"maxPacketsPerSecondPerNode,omitempty"`

	// MaxBitsPerSecondPerNode bounds rate.bitsPerSecond, in bits of Ethernet frames (layer 2), and the same bits
	// of rate.packetsPerSecond or rate.l1BitsPerSecond at the generator's frameSize (64 bytes when left out, or the
	// largest of its frameSizes). Set, a generator needs a rate in packets or bits per second (no tcp run).
	// +optional
	// +kubebuilder:validation:Minimum=1
	MaxBitsPerSecondPerNode *int64 `json:"maxBitsPerSecondPerNode,omitempty"`

	// MaxDuration bounds a run in time (a Go duration such as 10m or 1h): spec.duration, or for a run bounded by
	// packets, packets / rate.packetsPerSecond (so such a run needs rate.packetsPerSecond).
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+(\\\\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$')",message="maxDuration must be a Go duration such as 10m or 1h30m"
	MaxDuration *metav1.Duration `json:"maxDuration,omitempty"`

	// AllowContinuous allows continuous: true, runs that send until the TrafficGenerator is deleted.
	// +optional
	AllowContinuous bool `json:"allowContinuous,omitempty"`
}

// TrafficGeneratorPolicy says what the TrafficGenerators of its namespace may do, as a ResourceQuota says how much
// they may use. Only the one named default counts (DefaultPolicyName); it is for cluster admins to write:
// namespace admins and editors may read it.
// +kubebuilder:object:root=true
// +kubebuilder:resource:shortName=tgp,categories=xdpgen
// +kubebuilder:printcolumn:name="Special",type=boolean,JSONPath=`.spec.allowSpecialAddresses`
// +kubebuilder:printcolumn:name="Continuous",type=boolean,JSONPath=`.spec.allowContinuous`
// +kubebuilder:printcolumn:name="Max PPS",type=integer,JSONPath=`.spec.maxPacketsPerSecondPerNode`
// +kubebuilder:printcolumn:name="Max Duration",type=string,JSONPath=`.spec.maxDuration`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type TrafficGeneratorPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec defaults to {} so that the admission policy's CEL can read its fields without checking for it first.
	// +optional
	// +kubebuilder:default={}
	Spec TrafficGeneratorPolicySpec `json:"spec,omitempty"`
}

// TrafficGeneratorPolicyList is a list of TrafficGeneratorPolicies.
// +kubebuilder:object:root=true
type TrafficGeneratorPolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []TrafficGeneratorPolicy `json:"items"`
}
