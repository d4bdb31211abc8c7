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
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	xdpgenv1alpha1 "github.com/xdpgen/xdpgen/api/v1alpha1"
)

// Labels and annotations the controller puts on what it creates.
const (
	labelName      = "app.kubernetes.io/name"
	labelInstance  = "app.kubernetes.io/instance"
	labelComponent = "app.kubernetes.io/component"
	labelManagedBy = "app.kubernetes.io/managed-by"

	agentName = "xdpgen-agent"
	managedBy = "xdpgen-manager"

	// annotationTemplateHash holds a hash of the DaemonSet the controller wants. The API server fills in many
	// defaults, so comparing the stored object with the desired one field by field would see a difference on
	// every reconcile; comparing hashes of the desired objects does not.
	annotationTemplateHash = "xdpgen.io/template-hash"
)

// AgentConfig is how the controller runs the node agents. The manager fills it from its flags.
type AgentConfig struct {
	// Image is the agent's container image.
	Image string
	// ImagePullPolicy of the agent container; empty means IfNotPresent.
	ImagePullPolicy corev1.PullPolicy
	// ServiceAccount the agent pods run as. It must exist in the TrafficGenerator's namespace and be bound to the
	// xdpgen-agent ClusterRole (config/rbac/agent_role.yaml).
	ServiceAccount string
	// HealthPort serves the agent's /healthz and /readyz; MetricsPort its Prometheus metrics. The agents use the
	// host's network, so these ports must be free on every node (the manager uses 8080/8081).
	HealthPort  int32
	MetricsPort int32
	// Privileged runs the agent as a privileged container instead of with the capabilities below. Only for
	// container runtimes that do not know CAP_BPF and CAP_PERFMON (runc before 1.0, Docker before 20.10).
	Privileged bool
	// Env is added to the agent container's environment after the downward-API variables. For clusters where
	// host-network pods cannot reach the kubernetes Service (no kube-proxy, as in test/cluster): there
	// KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT point the agents at the API server directly.
	Env []corev1.EnvVar
}

// DefaultAgentConfig is the agent configuration the manager's flags default to.
func DefaultAgentConfig() AgentConfig {
	return AgentConfig{
		Image:          "ghcr.io/xdpgen/xdpgen:dev",
		ServiceAccount: agentName,
		HealthPort:     9440,
		MetricsPort:    9441,
	}
}

// DaemonSetName is the name of the agent DaemonSet of a TrafficGenerator, in the TrafficGenerator's namespace.
func DaemonSetName(tg *xdpgenv1alpha1.TrafficGenerator) string {
	return "xdpgen-" + tg.Name
}

// agentSelectorLabels select the agent pods of one TrafficGenerator. A DaemonSet's selector is immutable: never
// change these.
func agentSelectorLabels(tg *xdpgenv1alpha1.TrafficGenerator) map[string]string {
	return map[string]string{
		labelName:                     agentName,
		xdpgenv1alpha1.LabelGenerator: tg.Name,
	}
}

// agentLabels are the labels of the agent DaemonSet and its pods.
func agentLabels(tg *xdpgenv1alpha1.TrafficGenerator) map[string]string {
	l := agentSelectorLabels(tg)
	l[labelInstance] = tg.Name
	l[labelComponent] = "agent"
	l[labelManagedBy] = managedBy
	return l
}

// agentCapabilities is the least privilege the agent works with (Linux 5.18 or later, which live frames need and
// which all have CAP_BPF and CAP_PERFMON):
//   - BPF: create maps and load programs (bpf(2) BPF_MAP_CREATE, BPF_PROG_LOAD).
//   - NET_ADMIN: load programs of a networking type (the kernel requires CAP_NET_ADMIN besides CAP_BPF to load
//     XDP programs), attach XDP to the egress interface (netlink or BPF links), and read routes and neighbours.
//     BPF_PROG_RUN with BPF_F_TEST_XDP_LIVE_FRAMES itself checks no capability beyond holding the program's fd.
//   - PERFMON: lets the verifier skip its Spectre v1/v4 sanitising and allow pointer comparisons
//     (bpf_allow_ptr_leaks, bpf_bypass_spec_v1); without it some programs are rejected or run slower.
//
// Not SYS_RESOURCE: it would only raise RLIMIT_MEMLOCK, which kernels before 5.11 charge BPF maps to; the 5.18+
// that live frames need charge the memory cgroup instead. Asking for it is worse than useless where the host's
// bounding set lacks it (some VMs and sandboxed nodes, and test/cluster's VM): runc then refuses to start the
// container ("unable to apply caps: operation not permitted").
//
// Everything else is dropped. The agent runs as root because added capabilities only reach the effective set of
// uid 0 (Kubernetes sets no ambient capabilities). seccompProfile is left to the cluster's default: some runtime
// default profiles only let bpf(2) through with CAP_SYS_ADMIN.
var agentCapabilities = []corev1.Capability{"BPF", "NET_ADMIN", "PERFMON"}

// daemonSetFor builds the agent DaemonSet of a TrafficGenerator: one agent per selected node, on the host's
// network, told which TrafficGenerator to run. The agent reads the rest of the spec from the API server, so a
// change of the traffic (rate, frame size, ...) does not restart the pods; a change of the node selection does.
func daemonSetFor(tg *xdpgenv1alpha1.TrafficGenerator, agent AgentConfig) *appsv1.DaemonSet {
	nodeSelector := map[string]string{corev1.LabelOSStable: "linux"}
	for k, v := range tg.Spec.NodeSelector {
		nodeSelector[k] = v
	}
	pullPolicy := agent.ImagePullPolicy
	if pullPolicy == "" {
		pullPolicy = corev1.PullIfNotPresent
	}

	securityContext := &corev1.SecurityContext{
		Capabilities: &corev1.Capabilities{
			Drop: []corev1.Capability{"ALL"},
			Add:  agentCapabilities,
		},
		Privileged:               ptr.To(false),
		AllowPrivilegeEscalation: ptr.To(false),
		ReadOnlyRootFilesystem:   ptr.To(true),
		RunAsUser:                ptr.To[int64](0),
		RunAsNonRoot:             ptr.To(false),
	}
	if agent.Privileged {
		// The API server refuses allowPrivilegeEscalation: false together with privileged: true.
		securityContext = &corev1.SecurityContext{
			Privileged:             ptr.To(true),
			ReadOnlyRootFilesystem: ptr.To(true),
			RunAsUser:              ptr.To[int64](0),
		}
	}

	probe := func(path string, period int32) *corev1.Probe {
		return &corev1.Probe{
			ProbeHandler: corev1.ProbeHandler{
				HTTPGet: &corev1.HTTPGetAction{Path: path, Port: intstr.FromString("health")},
			},
			PeriodSeconds:    period,
			TimeoutSeconds:   2,
			FailureThreshold: 3,
		}
	}

	labels := agentLabels(tg)
	ds := &appsv1.DaemonSet{
		TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "DaemonSet"},
		ObjectMeta: metav1.ObjectMeta{
			Name:      DaemonSetName(tg),
			Namespace: tg.Namespace,
			Labels:    labels,
			OwnerReferences: []metav1.OwnerReference{
				*metav1.NewControllerRef(tg, xdpgenv1alpha1.GroupVersion.WithKind("TrafficGenerator")),
			},
		},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: agentSelectorLabels(tg)},
			// A generator's nodes should run the same spec: replace every agent at once instead of node by node.
			UpdateStrategy: appsv1.DaemonSetUpdateStrategy{
				Type: appsv1.RollingUpdateDaemonSetStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDaemonSet{
					MaxUnavailable: ptr.To(intstr.FromString("100%")),
				},
			},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					ServiceAccountName: agent.ServiceAccount,
					// The agent sends on the node's interfaces and reads the node's routes and neighbours.
					HostNetwork:                   true,
					DNSPolicy:                     corev1.DNSClusterFirstWithHostNet,
					NodeSelector:                  nodeSelector,
					Tolerations:                   tg.Spec.Tolerations,
					TerminationGracePeriodSeconds: ptr.To[int64](10),
					Containers: []corev1.Container{{
						Name:            "agent",
						Image:           agent.Image,
						ImagePullPolicy: pullPolicy,
						Command:         []string{"/agent"},
						Args: []string{
							"--generator=" + tg.Name,
							"--namespace=" + tg.Namespace,
							fmt.Sprintf("--health-probe-bind-address=:%d", agent.HealthPort),
							fmt.Sprintf("--metrics-bind-address=:%d", agent.MetricsPort),
						},
						Env: append([]corev1.EnvVar{
							fieldEnv("NODE_NAME", "spec.nodeName"),
							fieldEnv("POD_NAME", "metadata.name"),
							fieldEnv("POD_NAMESPACE", "metadata.namespace"),
							fieldEnv("POD_UID", "metadata.uid"),
						}, agent.Env...),
						Ports: []corev1.ContainerPort{
							{Name: "health", ContainerPort: agent.HealthPort, Protocol: corev1.ProtocolTCP},
							{Name: "metrics", ContainerPort: agent.MetricsPort, Protocol: corev1.ProtocolTCP},
						},
						ReadinessProbe: probe("/readyz", 5),
						LivenessProbe:  probe("/healthz", 10),
						// Requests only: a limit would throttle the sending threads.
						Resources: corev1.ResourceRequirements{
							Requests: corev1.ResourceList{
								corev1.ResourceCPU:    resource.MustParse("100m"),
								corev1.ResourceMemory: resource.MustParse("64Mi"),
							},
						},
						SecurityContext: securityContext,
					}},
				},
			},
		},
	}
	ds.Annotations = map[string]string{annotationTemplateHash: templateHash(ds)}
	return ds
}

func fieldEnv(name, path string) corev1.EnvVar {
	return corev1.EnvVar{
		Name:      name,
		ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: path}},
	}
}

// templateHash hashes what the controller sets on a DaemonSet: labels and spec.
func templateHash(ds *appsv1.DaemonSet) string {
	b, err := json.Marshal(struct {
		Labels map[string]string    `json:"labels"`
		Spec   appsv1.DaemonSetSpec `json:"spec"`
	}{ds.Labels, ds.Spec})
	if err != nil {
		// Marshalling API types cannot fail; a hash that never matches would only cause an extra update.
		return ""
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])[:16]
}
