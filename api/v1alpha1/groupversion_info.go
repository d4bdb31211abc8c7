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

// Package v1alpha1 contains the xdpgen.io/v1alpha1 API: TrafficGenerator, which a user writes, NodeReport,
// which each node's agent writes for its own node, and TrafficGeneratorPolicy, which a cluster admin writes to say
// what the TrafficGenerators of a namespace may do.
// +kubebuilder:object:generate=true
// +groupName=xdpgen.io
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	// GroupVersion is the group and version of every kind in this package.
	GroupVersion = schema.GroupVersion{Group: "xdpgen.io", Version: "v1alpha1"}

	// SchemeBuilder registers the kinds of this package with a runtime.Scheme. It is apimachinery's builder, not
	// controller-runtime's, so that the agent and the CLI can import this package without a controller framework.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

	// AddToScheme adds the kinds of this package to a runtime.Scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion,
		&TrafficGenerator{}, &TrafficGeneratorList{},
		&NodeReport{}, &NodeReportList{},
		&TrafficGeneratorPolicy{}, &TrafficGeneratorPolicyList{},
	)
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
