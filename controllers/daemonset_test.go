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
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	xdpgenv1alpha1 "github.com/xdpgen/xdpgen/api/v1alpha1"
)

func testGenerator() *xdpgenv1alpha1.TrafficGenerator {
	return &xdpgenv1alpha1.TrafficGenerator{
		ObjectMeta: metav1.ObjectMeta{Name: "udp", Namespace: "load", UID: "uid-1", Generation: 1},
		Spec: xdpgenv1alpha1.TrafficGeneratorSpec{
			Protocol:    xdpgenv1alpha1.ProtocolUDP,
			Destination: xdpgenv1alpha1.Destination{Address: "10.200.0.2", Port: 9, PortCount: 1},
			FrameSize:   64,
			Threads:     1,
			Duration:    &metav1.Duration{Duration: 30e9},
		},
	}
}

// wantDaemonSet spells out the whole DaemonSet of testGenerator with the default agent configuration.
func wantDaemonSet() *appsv1.DaemonSet {
	labels := map[string]string{
		"app.kubernetes.io/name":       "xdpgen-agent",
		"app.kubernetes.io/instance":   "udp",
		"app.kubernetes.io/component":  "agent",
		"app.kubernetes.io/managed-by": "xdpgen-manager",
		"xdpgen.io/generator":          "udp",
	}
	probe := func(path string, period int32) *corev1.Probe {
		return &corev1.Probe{
			ProbeHandler:     corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: intstr.FromString("health")}},
			PeriodSeconds:    period,
			TimeoutSeconds:   2,
			FailureThreshold: 3,
		}
	}
	env := func(name, path string) corev1.EnvVar {
		return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: path}}}
	}
	return &appsv1.DaemonSet{
		TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "DaemonSet"},
		ObjectMeta: metav1.ObjectMeta{
			Name:      "xdpgen-udp",
			Namespace: "load",
			Labels:    labels,
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion:         "xdpgen.io/v1alpha1",
				Kind:               "TrafficGenerator",
				Name:               "udp",
				UID:                "uid-1",
				Controller:         ptr.To(true),
				BlockOwnerDeletion: ptr.To(true),
			}},
		},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{
				"app.kubernetes.io/name": "xdpgen-agent",
				"xdpgen.io/generator":    "udp",
			}},
			UpdateStrategy: appsv1.DaemonSetUpdateStrategy{
				Type:          appsv1.RollingUpdateDaemonSetStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDaemonSet{MaxUnavailable: ptr.To(intstr.FromString("100%"))},
			},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					ServiceAccountName:            "xdpgen-agent",
					HostNetwork:                   true,
					DNSPolicy:                     corev1.DNSClusterFirstWithHostNet,
					NodeSelector:                  map[string]string{"kubernetes.io/os": "linux"},
					TerminationGracePeriodSeconds: ptr.To[int64](10),
					Containers: []corev1.Container{{
						Name:            "agent",
						Image:           "ghcr.io/xdpgen/xdpgen:dev",
						ImagePullPolicy: corev1.PullIfNotPresent,
						Command:         []string{"/agent"},
						Args: []string{
							"--generator=udp",
							"--namespace=load",
							"--health-probe-bind-address=:9440",
							"--metrics-bind-address=:9441",
						},
						Env: []corev1.EnvVar{
							env("NODE_NAME", "spec.nodeName"),
							env("POD_NAME", "metadata.name"),
							env("POD_NAMESPACE", "metadata.namespace"),
							env("POD_UID", "metadata.uid"),
						},
						Ports: []corev1.ContainerPort{
							{Name: "health", ContainerPort: 9440, Protocol: corev1.ProtocolTCP},
							{Name: "metrics", ContainerPort: 9441, Protocol: corev1.ProtocolTCP},
						},
						ReadinessProbe: probe("/readyz", 5),
						LivenessProbe:  probe("/healthz", 10),
						Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
							corev1.ResourceCPU:    resource.MustParse("100m"),
							corev1.ResourceMemory: resource.MustParse("64Mi"),
						}},
						SecurityContext: &corev1.SecurityContext{
							Capabilities: &corev1.Capabilities{
								Drop: []corev1.Capability{"ALL"},
								Add:  []corev1.Capability{"BPF", "NET_ADMIN", "PERFMON"},
							},
							Privileged:               ptr.To(false),
							AllowPrivilegeEscalation: ptr.To(false),
							ReadOnlyRootFilesystem:   ptr.To(true),
							RunAsUser:                ptr.To[int64](0),
							RunAsNonRoot:             ptr.To(false),
						},
					}},
				},
			},
		},
	}
}

func TestDaemonSetFor(t *testing.T) {
	tests := []struct {
		name  string
		tg    func(*xdpgenv1alpha1.TrafficGenerator)
		agent func(*AgentConfig)
		want  func(*appsv1.DaemonSet)
	}{
		{name: "defaults"},
		{
			name: "node selector is added to the Linux selector, tolerations are copied",
			tg: func(tg *xdpgenv1alpha1.TrafficGenerator) {
				tg.Spec.NodeSelector = map[string]string{"xdpgen.io/sender": "true"}
				tg.Spec.Tolerations = []corev1.Toleration{{Key: "node-role.kubernetes.io/control-plane", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}}
			},
			want: func(ds *appsv1.DaemonSet) {
				ds.Spec.Template.Spec.NodeSelector = map[string]string{"kubernetes.io/os": "linux", "xdpgen.io/sender": "true"}
				ds.Spec.Template.Spec.Tolerations = []corev1.Toleration{{Key: "node-role.kubernetes.io/control-plane", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}}
			},
		},
		{
			name: "agent configuration from the manager's flags",
			agent: func(a *AgentConfig) {
				a.Image = "registry.example/xdpgen:v1"
				a.ImagePullPolicy = corev1.PullNever
				a.ServiceAccount = "agents"
				a.HealthPort, a.MetricsPort = 19440, 19441
			},
			want: func(ds *appsv1.DaemonSet) {
				s := &ds.Spec.Template.Spec
				s.ServiceAccountName = "agents"
				c := &s.Containers[0]
				c.Image, c.ImagePullPolicy = "registry.example/xdpgen:v1", corev1.PullNever
				c.Args[2], c.Args[3] = "--health-probe-bind-address=:19440", "--metrics-bind-address=:19441"
				c.Ports[0].ContainerPort, c.Ports[1].ContainerPort = 19440, 19441
			},
		},
		{
			name: "extra environment follows the downward API",
			agent: func(a *AgentConfig) {
				a.Env = []corev1.EnvVar{{Name: "KUBERNETES_SERVICE_HOST", Value: "127.0.0.1"}}
			},
			want: func(ds *appsv1.DaemonSet) {
				c := &ds.Spec.Template.Spec.Containers[0]
				c.Env = append(c.Env, corev1.EnvVar{Name: "KUBERNETES_SERVICE_HOST", Value: "127.0.0.1"})
			},
		},
		{
			name:  "privileged for runtimes without CAP_BPF",
			agent: func(a *AgentConfig) { a.Privileged = true },
			want: func(ds *appsv1.DaemonSet) {
				ds.Spec.Template.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{
					Privileged:             ptr.To(true),
					ReadOnlyRootFilesystem: ptr.To(true),
					RunAsUser:              ptr.To[int64](0),
				}
			},
		},
		{
			name: "a node selector cannot move the agents off Linux",
			tg: func(tg *xdpgenv1alpha1.TrafficGenerator) {
				tg.Spec.NodeSelector = map[string]string{"kubernetes.io/os": "linux"}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tg := testGenerator()
			if tc.tg != nil {
				tc.tg(tg)
			}
			agent := DefaultAgentConfig()
			if tc.agent != nil {
				tc.agent(&agent)
			}
			want := wantDaemonSet()
			if tc.want != nil {
				tc.want(want)
			}
			got := daemonSetFor(tg, agent)
			if got.Annotations[annotationTemplateHash] == "" {
				t.Errorf("daemonSetFor set no %s annotation", annotationTemplateHash)
			}
			delete(got.Annotations, annotationTemplateHash)
			if len(got.Annotations) == 0 {
				got.Annotations = nil
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("daemonSetFor mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestDaemonSetForHash checks which spec changes reach the pods: the node selection does, the traffic does not
// (the agent reads it from the TrafficGenerator and restarts its run itself).
func TestDaemonSetForHash(t *testing.T) {
	hash := func(mutate func(*xdpgenv1alpha1.TrafficGenerator)) string {
		tg := testGenerator()
		mutate(tg)
		return daemonSetFor(tg, DefaultAgentConfig()).Annotations[annotationTemplateHash]
	}
	base := hash(func(*xdpgenv1alpha1.TrafficGenerator) {})
	tests := []struct {
		name    string
		mutate  func(*xdpgenv1alpha1.TrafficGenerator)
		changes bool
	}{
		{"nothing", func(*xdpgenv1alpha1.TrafficGenerator) {}, false},
		{"rate", func(tg *xdpgenv1alpha1.TrafficGenerator) {
			tg.Spec.Rate = &xdpgenv1alpha1.Rate{PacketsPerSecond: ptr.To[int64](1000)}
		}, false},
		{"frame size", func(tg *xdpgenv1alpha1.TrafficGenerator) { tg.Spec.FrameSize = 1500 }, false},
		{"generation", func(tg *xdpgenv1alpha1.TrafficGenerator) { tg.Generation = 7 }, false},
		{"node selector", func(tg *xdpgenv1alpha1.TrafficGenerator) { tg.Spec.NodeSelector = map[string]string{"a": "b"} }, true},
		{"tolerations", func(tg *xdpgenv1alpha1.TrafficGenerator) {
			tg.Spec.Tolerations = []corev1.Toleration{{Operator: corev1.TolerationOpExists}}
		}, true},
	}
	for _, tc := range tests {
		if got := hash(tc.mutate) != base; got != tc.changes {
			t.Errorf("%s: template hash changed = %v, want %v", tc.name, got, tc.changes)
		}
	}
}
