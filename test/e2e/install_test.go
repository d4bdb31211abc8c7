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
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	xdpgenv1alpha1 "github.com/xdpgen/xdpgen/api/v1alpha1"
	"github.com/xdpgen/xdpgen/test/manifest"
	"github.com/xdpgen/xdpgen/test/poll"
)

// helmVersion is the Makefile's HELM_VERSION: helm comes from bin/helm/<version> (make helm).
const helmVersion = "v4.3.1"

// TestInstallUninstall installs xdpgen the two ways a user does, on the real cluster, and removes it again:
//
//   - kubectl delete -k of the kustomize installation TestMain made leaves nothing of it behind, CRDs included;
//   - helm install of charts/xdpgen (with hack/helm/local-cluster-values.yaml, the chart's counterpart of
//     config/local, and the agents' image pull secrets, resources and PriorityClass set, which the running agent
//     pods show) brings up a manager whose agent runs a TrafficGenerator to completion, counted at the far end;
//     the agent's real token carries its node, and the admission policy refuses it another node's NodeReport;
//     helm uninstall leaves only the CRDs (the namespace and everything in it are gone);
//   - kubectl apply -k installs it again, with the overlay's patch of the agent pods, which the running agent
//     pods show, and a run completes again (the state the other tests expect).
func TestInstallUninstall(t *testing.T) {
	e := requireCluster(t)
	helm := e.helmBinary(t)
	kustomization := filepath.Join(e.root, kustomization)
	chart := filepath.Join(e.root, "charts", "xdpgen")
	localValues := filepath.Join(e.root, "hack", "helm", "local-cluster-values.yaml")
	// Whatever happens, leave the kustomize installation the other tests run on.
	t.Cleanup(func() {
		if _, err := e.run("get", "deployment", "-n", namespace, "xdpgen-controller-manager"); err == nil {
			return
		}
		_, _ = exec.Command(helm, "uninstall", "xdpgen", "--wait", "--timeout=2m", "--kubeconfig", e.cluster.Kubeconfig()).CombinedOutput()
		e.waitGone(t, []*unstructured.Unstructured{namespaceObject()}, 2*time.Minute)
		_ = e.applyKustomization(kustomization)
		_, _ = e.run("-n", namespace, "rollout", "status", "deployment/xdpgen-controller-manager", "--timeout=120s")
	})

	// kubectl delete -k: everything goes, the CRDs too. The TrafficGeneratorPolicies go with their CRD, which kubectl
	// may delete first: --ignore-not-found, as a user uninstalling would.
	kustomized := manifest.Decode(t, e.kubectlOK(t, "kustomize", kustomization))
	e.kubectlOK(t, "delete", "-k", kustomization, "--ignore-not-found", "--wait=true", "--timeout=120s")
	e.waitGone(t, kustomized, 2*time.Minute)

	// helm install, with the local cluster's values and the agent pods configured.
	helmAgents := agentPodSettings{pullSecret: "xdpgen-e2e-helm-registry", priorityClass: "xdpgen-e2e-helm-agent",
		priority: 900_000, cpu: "60m", memory: "40Mi"}
	agentValues := filepath.Join(t.TempDir(), "agent-values.yaml")
	if err := os.WriteFile(agentValues, []byte(fmt.Sprintf(`agent:
  imagePullSecrets: [{name: %s}]
  priorityClassName: %s
  resources: {requests: {cpu: %s, memory: %s}}
`, helmAgents.pullSecret, helmAgents.priorityClass, helmAgents.cpu, helmAgents.memory)), 0o644); err != nil {
		t.Fatal(err)
	}
	e.kubectlOK(t, "create", "priorityclass", helmAgents.priorityClass, fmt.Sprintf("--value=%d", helmAgents.priority))
	defer func() { _, _ = e.run("delete", "priorityclass", helmAgents.priorityClass, "--ignore-not-found") }()
	out := e.helm(t, "install", "xdpgen", chart, "-f", localValues, "-f", agentValues, "--wait", "--timeout=2m")
	if !strings.Contains(out, "STATUS: deployed") || !strings.Contains(out, "kubectl -n "+namespace+" get tg -w") {
		t.Errorf("helm install: want the release deployed and the NOTES")
	}
	charted := manifest.Decode(t, e.helm(t, "template", "xdpgen", chart, "-f", localValues, "-f", agentValues, "--include-crds"))
	e.waitPresent(t, charted)
	var ns corev1.Namespace
	if err := e.client.Get(context.Background(), client.ObjectKey{Name: namespace}, &ns); err != nil {
		t.Fatal(err)
	}
	if l := ns.Labels["pod-security.kubernetes.io/enforce"]; l != "privileged" {
		t.Errorf("namespace %s pod-security enforce = %q, want privileged", namespace, l)
	}

	e.checkAgentPods(t, helmAgents)
	e.runToCompletion(t, "e2e-helm", 20, true)

	// helm uninstall: only the CRDs are left.
	e.helm(t, "uninstall", "xdpgen", "--wait", "--timeout=2m")
	var crds, rest []*unstructured.Unstructured
	for _, o := range charted {
		if o.GetKind() == "CustomResourceDefinition" {
			crds = append(crds, o)
		} else {
			rest = append(rest, o)
		}
	}
	e.waitGone(t, rest, 2*time.Minute)
	e.waitPresent(t, crds)
	var records corev1.SecretList
	if err := e.client.List(context.Background(), &records, client.MatchingLabels{"owner": "helm"}); err != nil {
		t.Fatal(err)
	}
	for _, r := range records.Items {
		t.Errorf("helm uninstall left its release record %s/%s", r.Namespace, r.Name)
	}

	// kubectl apply -k again: the installation the other tests use, and a run on it.
	if err := e.applyKustomization(kustomization); err != nil {
		t.Fatal(err)
	}
	e.kubectlOK(t, "-n", namespace, "rollout", "status", "deployment/xdpgen-controller-manager", "--timeout=120s")
	e.waitPresent(t, kustomized)
	// As test/e2e/install/agent_pods.yaml and agent_priority_class.yaml configure them.
	e.checkAgentPods(t, agentPodSettings{pullSecret: "xdpgen-e2e-registry", priorityClass: "xdpgen-e2e-agent",
		priority: 1_000_000, cpu: "50m", memory: "48Mi"})
	e.runToCompletion(t, "e2e-kustomize", 21, false)
}

// agentPodSettings is what a user configures on the agent pods.
type agentPodSettings struct {
	pullSecret, priorityClass string
	priority                  int32
	cpu, memory               string
}

// checkAgentPods checks each node's running agent pod against the settings the installation gave them.
func (e *clusterEnv) checkAgentPods(t *testing.T, want agentPodSettings) {
	t.Helper()
	for _, n := range e.cluster.Nodes() {
		pod := e.waitAgentRunning(t, n.Name, 2*time.Minute)
		spec := pod.Spec
		req := spec.Containers[0].Resources.Requests
		t.Logf("agent pod %s on %s: imagePullSecrets %v, priorityClassName %q (priority %v), requests cpu %s memory %s",
			pod.Name, n.Name, spec.ImagePullSecrets, spec.PriorityClassName, ptr.Deref(spec.Priority, 0), req.Cpu(), req.Memory())
		if len(spec.ImagePullSecrets) != 1 || spec.ImagePullSecrets[0].Name != want.pullSecret {
			t.Errorf("agent pod %s imagePullSecrets %v, want [%s]", pod.Name, spec.ImagePullSecrets, want.pullSecret)
		}
		if spec.PriorityClassName != want.priorityClass || ptr.Deref(spec.Priority, 0) != want.priority {
			t.Errorf("agent pod %s priorityClassName %q, priority %d, want %q, %d", pod.Name, spec.PriorityClassName,
				ptr.Deref(spec.Priority, 0), want.priorityClass, want.priority)
		}
		if req.Cpu().Cmp(resource.MustParse(want.cpu)) != 0 || req.Memory().Cmp(resource.MustParse(want.memory)) != 0 {
			t.Errorf("agent pod %s requests cpu %s, memory %s, want %s, %s", pod.Name, req.Cpu(), req.Memory(), want.cpu, want.memory)
		}
	}
}

// runToCompletion runs a bounded UDP run to far host index and checks that it completes with the far end's count
// in the status. With checkPolicy, while the agent runs, it also checks the agent's own token: it names the node,
// and the admission policy refuses it a NodeReport of another node.
func (e *clusterEnv) runToCompletion(t *testing.T, name string, index int, checkPolicy bool) {
	t.Helper()
	const packets = 100_000
	far := newFarHost(t, index, 9, 12)
	e.applyTrafficGenerator(t, name, udpSpec(far.farIP.String(), 9, 4, 20_000, packets, e.onFirstNode()))
	pod := e.waitAgentRunning(t, e.cluster.NodeName(), 60*time.Second)
	if checkPolicy {
		e.checkAgentOwnReportOnly(t, pod, name)
	}
	tg := e.waitPhase(t, name, xdpgenv1alpha1.PhaseCompleted, 90*time.Second)
	matched, _ := far.counts(t)
	if tg.Status.Totals.Packets != packets || int64(matched.Packets) != packets {
		t.Errorf("%s: status totals %d packets, far end %d, spec %d: all three must be equal", name,
			tg.Status.Totals.Packets, matched.Packets, packets)
	}
	e.checkRunCleanedUp(t, tg, pod)
}

// checkAgentOwnReportOnly takes the token the kubelet projected into the running agent's container and checks
// what the API server makes of it (the agents' service account, and this node in the extra
// authentication.kubernetes.io/node-name), and that with it the admission policy refuses a NodeReport of another
// node, which the agents' RBAC alone would allow.
func (e *clusterEnv) checkAgentOwnReportOnly(t *testing.T, pod *corev1.Pod, generator string) {
	t.Helper()
	ctx := context.Background()
	token, err := os.ReadFile(fmt.Sprintf("/proc/%d/root/var/run/secrets/kubernetes.io/serviceaccount/token", agentPID(t, pod)))
	if err != nil {
		t.Fatalf("the agent's token: %v", err)
	}
	review, err := e.clients.AuthenticationV1().TokenReviews().Create(ctx,
		&authnv1.TokenReview{Spec: authnv1.TokenReviewSpec{Token: string(token)}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("review the agent's token: %v", err)
	}
	node := e.cluster.NodeName()
	if got := review.Status.User.Extra["authentication.kubernetes.io/node-name"]; len(got) != 1 || got[0] != node {
		t.Errorf("the agent's token names node %v, want %s: the admission policy depends on it", got, node)
	}

	cfg, err := e.cluster.RESTConfig()
	if err != nil {
		t.Fatal(err)
	}
	asAgent := rest.AnonymousClientConfig(cfg) // the server and its CA, none of the admin's credentials
	asAgent.BearerToken = string(token)
	agent, err := client.New(asAgent, client.Options{Scheme: e.client.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	other := &xdpgenv1alpha1.NodeReport{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: xdpgenv1alpha1.NodeReportName(generator, "another-node")},
		Spec:       xdpgenv1alpha1.NodeReportSpec{Generator: generator, NodeName: "another-node"},
	}
	err = agent.Create(ctx, other, client.DryRunAll)
	want := "the agent on node " + node + " may write only its own node's NodeReport, not one with spec.nodeName another-node"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("the agent creating another node's NodeReport: %v, want it refused with %q", err, want)
	}
	// Its own node's report of another generator, named and labelled as the agent writes it (the generator's own
	// report exists already); a second report of its node under another name is refused.
	probe := generator + "-probe"
	mine := &xdpgenv1alpha1.NodeReport{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: xdpgenv1alpha1.NodeReportName(probe, node), Labels: map[string]string{
			xdpgenv1alpha1.LabelGenerator: probe, xdpgenv1alpha1.LabelNode: xdpgenv1alpha1.LabelValue(node)}},
		Spec: xdpgenv1alpha1.NodeReportSpec{Generator: probe, NodeName: node},
	}
	if err := agent.Create(ctx, mine, client.DryRunAll); err != nil {
		t.Errorf("the agent creating (dry run) a NodeReport of its own node: %v", err)
	}
	second := mine.DeepCopy()
	second.Name += "-second"
	err = agent.Create(ctx, second, client.DryRunAll)
	if want := "must be named " + mine.Name; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("the agent creating a second NodeReport of its node: %v, want it refused with %q", err, want)
	}
}

// waitPresent waits until every object exists.
func (e *clusterEnv) waitPresent(t *testing.T, objs []*unstructured.Unstructured) {
	t.Helper()
	for _, o := range objs {
		poll.Until(t, time.Minute, pollInterval, describeObject(o)+" present", func() error {
			return e.client.Get(context.Background(), client.ObjectKeyFromObject(o), emptyLike(o))
		})
	}
}

// waitGone waits until none of the objects exists (a namespace goes once the namespace controller emptied it).
func (e *clusterEnv) waitGone(t *testing.T, objs []*unstructured.Unstructured, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for _, o := range objs {
		poll.Until(t, time.Until(deadline), pollInterval, describeObject(o)+" gone", func() error {
			err := e.client.Get(context.Background(), client.ObjectKeyFromObject(o), emptyLike(o))
			if apierrors.IsNotFound(err) {
				return nil
			}
			return fmt.Errorf("still there (%v)", err)
		})
	}
}

func emptyLike(o *unstructured.Unstructured) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(o.GroupVersionKind())
	return u
}

func describeObject(o *unstructured.Unstructured) string {
	if o.GetNamespace() == "" {
		return o.GetKind() + " " + o.GetName()
	}
	return o.GetKind() + " " + o.GetNamespace() + "/" + o.GetName()
}

func namespaceObject() *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("v1")
	u.SetKind("Namespace")
	u.SetName(namespace)
	return u
}
