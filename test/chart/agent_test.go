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
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	xdpgenv1alpha1 "github.com/xdpgen/xdpgen/api/v1alpha1"
)

// nodeNameExtra is where the API server puts the node of the pod a service account token was issued to.
const nodeNameExtra = "authentication.kubernetes.io/node-name"

// testAgentReach checks, as the agents' service account sa of namespace ns with the token a pod on node-a gets
// (a real bound token, as the kubelet projects it), that the installed RBAC and admission policy let an agent read
// every TrafficGenerator and its Node and write its own node's NodeReport, and nothing else: not another node's
// NodeReport, not the TrafficGenerator, no report in a namespace not allowed.
func testAgentReach(t *testing.T, ns, sa string) {
	g := NewWithT(t)
	ctx := context.Background()
	admin := kubernetes.NewForConfigOrDie(testEnv.Config)

	for _, node := range []string{"node-a", "node-b"} {
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: node}}
		if err := k8sClient.Create(ctx, n); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatalf("create node %s: %v", node, err)
		}
	}
	other := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "not-the-agents-"}}
	g.Expect(k8sClient.Create(ctx, other)).To(Succeed())

	// An agent pod, as the agent DaemonSet makes it (envtest has no kubelet: it is only ever bound to node-a).
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "xdpgen-udp-agent"},
		Spec: corev1.PodSpec{
			NodeName:           "node-a",
			ServiceAccountName: sa,
			HostNetwork:        true,
			Containers: []corev1.Container{{
				Name: "agent", Image: "ghcr.io/xdpgen/xdpgen:dev", Command: []string{"/agent"},
				SecurityContext: &corev1.SecurityContext{
					Capabilities: &corev1.Capabilities{
						Drop: []corev1.Capability{"ALL"},
						Add:  []corev1.Capability{"BPF", "NET_ADMIN", "PERFMON"},
					},
					RunAsUser: ptr.To[int64](0),
				},
			}},
		},
	}
	// Only the DaemonSet controller may make a pod that runs as the agents' service account: a bare pod, even a
	// cluster admin's, could write its node's NodeReports. The admission policy applies a moment after it is made.
	bare := pod.DeepCopy()
	bare.Name = "bare-agent"
	g.Eventually(func() string {
		err := k8sClient.Create(ctx, bare.DeepCopy(), client.DryRunAll)
		if err == nil {
			return "<created>"
		}
		return err.Error()
	}).WithTimeout(eventually).WithPolling(poll).Should(ContainSubstring(
		"may not create a pod that runs as the service account " + sa + ": its token could write the NodeReports of the pod's node"))
	err := k8sClient.Create(ctx, bare)
	g.Expect(apierrors.IsForbidden(err) || apierrors.IsInvalid(err)).To(BeTrue(), "a bare agent pod: %v", err)
	asDaemonSetController := rest.CopyConfig(testEnv.Config)
	asDaemonSetController.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:kube-system:daemon-set-controller"}
	dsController, err := client.New(asDaemonSetController, client.Options{Scheme: scheme})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(dsController.Create(ctx, pod)).To(Succeed(), "the namespace must admit the DaemonSet controller's agent pod")

	token := func(bound bool) string {
		req := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](3600)}}
		if bound {
			req.Spec.BoundObjectRef = &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID}
		}
		tr, err := admin.CoreV1().ServiceAccounts(ns).CreateToken(ctx, sa, req, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("token for %s/%s: %v", ns, sa, err)
		}
		return tr.Status.Token
	}
	configWith := func(token string) *rest.Config {
		return &rest.Config{
			Host:            testEnv.Config.Host,
			TLSClientConfig: rest.TLSClientConfig{CAData: testEnv.Config.CAData},
			BearerToken:     token,
		}
	}
	agentConfig := configWith(token(true))
	agent, err := client.New(agentConfig, client.Options{Scheme: scheme})
	g.Expect(err).NotTo(HaveOccurred())

	// What the API server (v1.37 here) makes of a pod's token: the service account, and the pod's node in extra.
	review, err := kubernetes.NewForConfigOrDie(agentConfig).AuthenticationV1().SelfSubjectReviews().
		Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(review.Status.UserInfo.Username).To(Equal("system:serviceaccount:" + ns + ":" + sa))
	g.Expect(review.Status.UserInfo.Extra).To(HaveKeyWithValue(nodeNameExtra, authenticationv1.ExtraValue{"node-a"}),
		"a pod's token must name its node for the admission policy to work")

	udp := func(namespace string) *xdpgenv1alpha1.TrafficGenerator {
		return &xdpgenv1alpha1.TrafficGenerator{
			ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "udp"},
			Spec: xdpgenv1alpha1.TrafficGeneratorSpec{
				Destination: xdpgenv1alpha1.Destination{Address: "192.0.2.10"},
				Duration:    &metav1.Duration{Duration: 10 * time.Second},
			},
		}
	}
	tg, tgOther := udp(ns), udp(other.Name)
	// The other namespace may run TrafficGenerators, as a cluster admin lets it with a TrafficGeneratorPolicy; the
	// admission policy sees a new one (and the chart's own) a moment after it is created.
	g.Expect(k8sClient.Create(ctx, &xdpgenv1alpha1.TrafficGeneratorPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: other.Name, Name: xdpgenv1alpha1.DefaultPolicyName},
	})).To(Succeed())
	for _, generator := range []*xdpgenv1alpha1.TrafficGenerator{tg, tgOther} {
		g.Eventually(func() error { return k8sClient.Create(ctx, generator) }).WithTimeout(10 * time.Second).Should(Succeed())
	}
	report := func(namespace, node string) *xdpgenv1alpha1.NodeReport {
		return &xdpgenv1alpha1.NodeReport{
			ObjectMeta: metav1.ObjectMeta{
				Namespace: namespace, Name: xdpgenv1alpha1.NodeReportName("udp", node),
				Labels: map[string]string{xdpgenv1alpha1.LabelGenerator: "udp", xdpgenv1alpha1.LabelNode: xdpgenv1alpha1.LabelValue(node)},
			},
			Spec: xdpgenv1alpha1.NodeReportSpec{Generator: "udp", NodeName: node},
		}
	}
	// node-b's report, as node-b's agent would have written it.
	theirs := report(ns, "node-b")
	g.Expect(k8sClient.Create(ctx, theirs)).To(Succeed())

	// RBAC and the admission policy take effect once the API server's caches see them: wait with a dry run.
	const refusal = "the agent on node node-a may write only its own node's NodeReport, not one with spec.nodeName node-c"
	g.Eventually(func() string {
		err := agent.Create(ctx, report(ns, "node-c"), client.DryRunAll)
		if err == nil {
			return "<created>"
		}
		return err.Error()
	}).WithTimeout(eventually).WithPolling(poll).Should(ContainSubstring(refusal))

	// Allowed: read the TrafficGenerator, write its own node's report and its status, record events.
	g.Expect(agent.Get(ctx, client.ObjectKeyFromObject(tg), &xdpgenv1alpha1.TrafficGenerator{})).To(Succeed())
	g.Expect(agent.List(ctx, &xdpgenv1alpha1.TrafficGeneratorList{}, client.InNamespace(ns))).To(Succeed())
	mine := report(ns, "node-a")
	g.Expect(agent.Create(ctx, mine)).To(Succeed(), "the agent must create its own node's NodeReport")
	mine.Status = xdpgenv1alpha1.NodeReportStatus{Generation: 1, Phase: xdpgenv1alpha1.PhaseRunning, Packets: 10}
	g.Expect(agent.Status().Update(ctx, mine)).To(Succeed(), "the agent must write its own node's NodeReport status")
	mine.Labels["extra"] = "x"
	g.Expect(agent.Update(ctx, mine)).To(Succeed())
	g.Expect(agent.Create(ctx, &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Namespace: ns, GenerateName: "udp-"},
		InvolvedObject: corev1.ObjectReference{Kind: "TrafficGenerator", Namespace: ns, Name: "udp", UID: tg.UID},
		Reason:         "Started", Message: "sending", Type: corev1.EventTypeNormal,
	})).To(Succeed())

	forbidden := func(what string, err error, want string) {
		t.Helper()
		if !apierrors.IsForbidden(err) && !apierrors.IsInvalid(err) {
			t.Errorf("%s: error = %v, want Forbidden", what, err)
			return
		}
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error = %v, want it to say %q", what, err, want)
		}
	}
	// Another node's report: RBAC allows it; the admission policy does not.
	forbidden("agent creates another node's NodeReport", agent.Create(ctx, report(ns, "node-c")), refusal)
	theirs.Status.Phase = xdpgenv1alpha1.PhaseFailed
	forbidden("agent writes another node's NodeReport status", agent.Status().Update(ctx, theirs),
		"may write only its own node's NodeReport, not one with spec.nodeName node-b")
	theirs.Labels["extra"] = "x"
	forbidden("agent updates another node's NodeReport", agent.Update(ctx, theirs), "spec.nodeName node-b")
	forbidden("agent deletes another node's NodeReport", agent.Delete(ctx, theirs), "cannot delete")
	// A second report of its own node, under another name or with another node's label: the controller would take
	// it for another node's, or see two reports of one node.
	copied := report(ns, "node-a")
	copied.Name = "udp-node-a-copy"
	forbidden("agent creates a second report of its node", agent.Create(ctx, copied), "must be named udp-node-a: one report per node and generator")
	relabelled := report(ns, "node-a")
	relabelled.Name = xdpgenv1alpha1.NodeReportName("other", "node-a")
	relabelled.Spec.Generator = "other"
	forbidden("agent creates a report with another generator's label", agent.Create(ctx, relabelled),
		"must carry the labels xdpgen.io/generator=other and xdpgen.io/node=node-a")
	// The TrafficGenerator is the user's and the controller's.
	tgAgent := &xdpgenv1alpha1.TrafficGenerator{}
	g.Expect(agent.Get(ctx, client.ObjectKeyFromObject(tg), tgAgent)).To(Succeed())
	tgAgent.Spec.Threads = 2
	forbidden("agent updates the TrafficGenerator", agent.Update(ctx, tgAgent), "cannot update")
	tgAgent.Status.Phase = xdpgenv1alpha1.PhaseCompleted
	forbidden("agent writes the TrafficGenerator status", agent.Status().Update(ctx, tgAgent), "cannot update")
	forbidden("agent deletes the TrafficGenerator", agent.Delete(ctx, tgAgent), "cannot delete")
	// Nothing outside its namespace, and nothing but its own kinds inside it.
	// One agent per node runs the TrafficGenerators of every namespace: it reads them all, and its Node.
	g.Expect(agent.Get(ctx, client.ObjectKeyFromObject(tgOther), &xdpgenv1alpha1.TrafficGenerator{})).To(Succeed())
	g.Expect(agent.Get(ctx, client.ObjectKey{Name: "node-a"}, &corev1.Node{})).To(Succeed())
	// It reads a namespace's TrafficGeneratorPolicy, to send to a special address only where it allows them.
	g.Expect(agent.Get(ctx, client.ObjectKey{Namespace: other.Name, Name: xdpgenv1alpha1.DefaultPolicyName},
		&xdpgenv1alpha1.TrafficGeneratorPolicy{})).To(Succeed())
	forbidden("agent lists TrafficGeneratorPolicies", agent.List(ctx, &xdpgenv1alpha1.TrafficGeneratorPolicyList{}), "cannot list")
	forbidden("agent writes a NodeReport in another namespace", agent.Create(ctx, report(other.Name, "node-a")), "cannot create")
	forbidden("agent lists pods", agent.List(ctx, &corev1.PodList{}, client.InNamespace(ns)), "cannot list")
	forbidden("agent reads secrets", agent.List(ctx, &corev1.SecretList{}, client.InNamespace(ns)), "cannot list")
	forbidden("agent writes DaemonSets", agent.Create(ctx, &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "x"}}), "cannot create")
	forbidden("agent writes nodes", agent.Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-x"}}), "cannot create")

	// A token of the service account that no pod holds names no node: such a client writes no report at all.
	unbound, err := client.New(configWith(token(false)), client.Options{Scheme: scheme})
	g.Expect(err).NotTo(HaveOccurred())
	forbidden("a token without a node writes a NodeReport", unbound.Create(ctx, report(ns, "node-d")), "its token names no node")
}
