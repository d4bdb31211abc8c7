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

package chart

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	xdpgenv1alpha1 "github.com/xdpgen/xdpgen/api/v1alpha1"
	"github.com/xdpgen/xdpgen/test/k8senv"
)

// The envtest tests share one control plane: a real etcd and kube-apiserver (make envtest-assets), started without
// xdpgen's CRDs, which the chart installs.
var (
	testEnv   *k8senv.Env
	envErr    error
	k8sClient client.Client
	scheme    = runtime.NewScheme()
)

const (
	eventually = 20 * time.Second
	poll       = 200 * time.Millisecond
)

func init() {
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(xdpgenv1alpha1.AddToScheme(scheme))
	utilruntime.Must(apiextensionsv1.AddToScheme(scheme))
}

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	testEnv, envErr = k8senv.StartWithoutCRDs(repoRoot)
	if envErr != nil {
		if !errors.Is(envErr, k8senv.ErrMissing) {
			fmt.Fprintln(os.Stderr, "envtest:", envErr)
			return 1
		}
		return m.Run()
	}
	defer func() {
		if err := testEnv.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "envtest: stop the control plane:", err)
		}
	}()
	var err error
	k8sClient, err = client.New(testEnv.Config, client.Options{Scheme: scheme})
	if err != nil {
		fmt.Fprintln(os.Stderr, "envtest: client:", err)
		return 1
	}
	return m.Run()
}

func requireEnvtest(t *testing.T) {
	t.Helper()
	k8senv.Require(t, testEnv, envErr)
}

// adminKubeconfig writes a kubeconfig of a cluster admin of the control plane, for helm and kubectl.
func adminKubeconfig(t *testing.T) string {
	t.Helper()
	return testEnv.UserKubeconfig(t, envtest.User{Name: "chart-admin", Groups: []string{"system:masters"}})
}

// TestHelmInstallUninstall installs the chart into a real API server with its default values, checks every object
// it renders is there and the admission policy compiles, checks an agent's reach with the agents' real service
// account, uninstalls, and checks that only the CRDs are left; then does the same with non-default values.
func TestHelmInstallUninstall(t *testing.T) {
	requireEnvtest(t)
	g := NewWithT(t)
	ctx := context.Background()
	helm := helmBinary(t)
	kubeconfig := adminKubeconfig(t)
	helmRun := func(args ...string) string {
		t.Helper()
		out, err := run(t, helm, append(args, "--kubeconfig", kubeconfig, "--namespace", "default")...)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("helm %s:\n%s", strings.Join(args, " "), out)
		return out
	}

	rendered := helmTemplate(t, "--include-crds")
	out := helmRun("install", "xdpgen", chartDir)
	g.Expect(out).To(ContainSubstring("kubectl -n xdpgen-system apply -f config/samples/trafficgen.yaml"), "NOTES.txt")
	expectInstalled(t, rendered)

	// The CRDs serve.
	for _, crd := range []string{"trafficgenerators.xdpgen.io", "nodereports.xdpgen.io"} {
		g.Eventually(func(g Gomega) {
			var c apiextensionsv1.CustomResourceDefinition
			g.Expect(k8sClient.Get(ctx, client.ObjectKey{Name: crd}, &c)).To(Succeed())
			established := false
			for _, cond := range c.Status.Conditions {
				established = established || (cond.Type == apiextensionsv1.Established && cond.Status == apiextensionsv1.ConditionTrue)
			}
			g.Expect(established).To(BeTrue(), "CRD %s not established", crd)
		}).WithTimeout(eventually).WithPolling(poll).Should(Succeed())
	}
	// The admission policy's status (its type check) is written by kube-controller-manager, which envtest does not
	// run; testAgentReach shows its expressions at work instead.

	t.Run("agent reach", func(t *testing.T) { testAgentReach(t, "xdpgen-system", "xdpgen-agent") })

	helmRun("uninstall", "xdpgen")
	expectOnlyCRDsLeft(t, rendered)

	// Non-default values: another namespace, image, resources, node selector; the CRDs are there already.
	values := filepath.Join(t.TempDir(), "values.yaml")
	g.Expect(os.WriteFile(values, []byte(`
namespace: {name: traffic-gen}
image: {repository: registry.example.com/xdpgen, tag: v9.9.9, pullPolicy: Never}
manager:
  resources:
    requests: {cpu: 50m, memory: 96Mi}
    limits: {memory: 300Mi}
  nodeSelector: {node-role.example.com/infra: "true"}
agent:
  extraNamespaces: [default]
  imagePullSecrets: [{name: agent-registry}]
  resources:
    requests: {cpu: 200m, memory: 128Mi}
  priorityClassName: system-node-critical
`), 0o644)).To(Succeed())
	rendered = helmTemplate(t, "-f", values)
	helmRun("install", "traffic", chartDir, "-f", values)
	expectInstalled(t, rendered)
	var deploy appsv1.Deployment
	g.Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: "traffic-gen", Name: "xdpgen-controller-manager"}, &deploy)).To(Succeed())
	pod := deploy.Spec.Template.Spec
	g.Expect(pod.Containers[0].Image).To(Equal("registry.example.com/xdpgen:v9.9.9"))
	g.Expect(pod.Containers[0].ImagePullPolicy).To(Equal(corev1.PullNever))
	g.Expect(pod.Containers[0].Resources.Requests.Cpu().Cmp(resource.MustParse("50m"))).To(Equal(0))
	g.Expect(pod.Containers[0].Resources.Limits.Memory().Cmp(resource.MustParse("300Mi"))).To(Equal(0))
	g.Expect(pod.NodeSelector).To(HaveKeyWithValue("node-role.example.com/infra", "true"))
	// The agent DaemonSet as the API server took it: the manager's image, and the agent values.
	var ds appsv1.DaemonSet
	g.Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: "traffic-gen", Name: "xdpgen-agent"}, &ds)).To(Succeed())
	agentPod := ds.Spec.Template.Spec
	g.Expect(agentPod.Containers[0].Image).To(Equal("registry.example.com/xdpgen:v9.9.9"))
	g.Expect(agentPod.Containers[0].ImagePullPolicy).To(Equal(corev1.PullNever))
	g.Expect(agentPod.ImagePullSecrets).To(Equal([]corev1.LocalObjectReference{{Name: "agent-registry"}}))
	g.Expect(agentPod.PriorityClassName).To(Equal("system-node-critical"))
	g.Expect(agentPod.Containers[0].Resources.Requests.Cpu().Cmp(resource.MustParse("200m"))).To(Equal(0))
	g.Expect(agentPod.HostNetwork).To(BeTrue())
	g.Expect(agentPod.Tolerations).To(Equal([]corev1.Toleration{{Operator: corev1.TolerationOpExists}}))
	// The agents (service account in traffic-gen) may report in default.
	var rb rbacv1.RoleBinding
	g.Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: "default", Name: "xdpgen-agent"}, &rb)).To(Succeed())
	g.Expect(rb.Subjects).To(Equal([]rbacv1.Subject{{Kind: "ServiceAccount", Name: "xdpgen-agent", Namespace: "traffic-gen"}}))
	helmRun("uninstall", "traffic")
	expectOnlyCRDsLeft(t, rendered)
}

// expectInstalled checks that every rendered object exists in the API server.
func expectInstalled(t *testing.T, rendered []*unstructured.Unstructured) {
	t.Helper()
	for _, o := range rendered {
		got := &unstructured.Unstructured{}
		got.SetGroupVersionKind(o.GroupVersionKind())
		if err := k8sClient.Get(context.Background(), client.ObjectKeyFromObject(o), got); err != nil {
			t.Errorf("%s after helm install: %v", key(o), err)
		}
	}
}

// expectOnlyCRDsLeft checks that, after helm uninstall, of the rendered objects only the CRDs are left, and no
// release record either. envtest runs no namespace controller, so a deleted namespace stays Terminating: that is
// as deleted as it gets here.
func expectOnlyCRDsLeft(t *testing.T, rendered []*unstructured.Unstructured) {
	t.Helper()
	ctx := context.Background()
	for _, o := range rendered {
		got := &unstructured.Unstructured{}
		got.SetGroupVersionKind(o.GroupVersionKind())
		err := k8sClient.Get(ctx, client.ObjectKeyFromObject(o), got)
		switch {
		case o.GetKind() == "CustomResourceDefinition":
			if err != nil {
				t.Errorf("%s after helm uninstall: %v, want it kept (Helm never deletes CRDs)", key(o), err)
			}
		case o.GetKind() == "Namespace" && err == nil:
			if got.GetDeletionTimestamp() == nil {
				t.Errorf("%s is left after helm uninstall", key(o))
			}
		case !apierrors.IsNotFound(err):
			t.Errorf("%s after helm uninstall: %v, want NotFound", key(o), err)
		}
	}
	var secrets corev1.SecretList
	if err := k8sClient.List(ctx, &secrets, client.InNamespace("default"), client.MatchingLabels{"owner": "helm"}); err != nil {
		t.Fatal(err)
	}
	for _, s := range secrets.Items {
		t.Errorf("helm release record %s is left after helm uninstall", s.Name)
	}
}
