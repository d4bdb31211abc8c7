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
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	xdpgenv1alpha1 "github.com/xdpgen/xdpgen/api/v1alpha1"
	"github.com/xdpgen/xdpgen/test/manifest"
)

// applyClusterRole creates the ClusterRole of a file under config/ (or leaves the one another test created).
func applyClusterRole(t *testing.T, file string) string {
	t.Helper()
	objs := manifest.DecodeFile(t, filepath.Join("..", "config", file))
	var role *unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == "ClusterRole" {
			role = o
		}
	}
	if role == nil {
		t.Fatalf("no ClusterRole in config/%s", file)
	}
	if err := k8sClient.Create(context.Background(), role); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("create ClusterRole %s: %v", role.GetName(), err)
	}
	return role.GetName()
}

// userBoundTo returns the config of a new user that holds ClusterRole role, bound in namespace ns (or cluster-wide
// when ns is empty).
func userBoundTo(t *testing.T, name, role, ns string) *rest.Config {
	t.Helper()
	user, err := testEnv.AddUser(envtest.User{Name: name}, nil)
	if err != nil {
		t.Fatalf("add user %s: %v", name, err)
	}
	bindUser(t, name, role, ns)
	return user.Config()
}

// bindUser binds user name to ClusterRole role in namespace ns (or cluster-wide when ns is empty).
func bindUser(t *testing.T, name, role, ns string) {
	t.Helper()
	subjects := []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: name}}
	roleRef := rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role}
	meta := metav1.ObjectMeta{Name: name + "-" + role}
	var binding client.Object = &rbacv1.ClusterRoleBinding{ObjectMeta: meta, Subjects: subjects, RoleRef: roleRef}
	if ns != "" {
		meta.Namespace = ns
		binding = &rbacv1.RoleBinding{ObjectMeta: meta, Subjects: subjects, RoleRef: roleRef}
	}
	if err := k8sClient.Create(context.Background(), binding); err != nil {
		t.Fatalf("bind %s to %s: %v", name, role, err)
	}
}

// TestAgentRole checks the agents' roles as config/agent binds them: config/agent/role.yaml in one namespace and
// config/agent/cluster_role.yaml cluster-wide. An agent reads every TrafficGenerator and its Node, writes
// its NodeReport and events in its namespace, and can write neither the TrafficGenerator nor outside the namespace.
func TestAgentRole(t *testing.T) {
	requireEnvtest(t)
	g := NewWithT(t)
	ctx := context.Background()
	ns, other := testNamespace(t, "agent-rbac"), testNamespace(t, "agent-rbac-other")
	role := applyClusterRole(t, "agent/role.yaml")
	user := "agent-" + ns
	agentConfig := userBoundTo(t, user, role, ns)
	bindUser(t, user, applyClusterRole(t, "agent/cluster_role.yaml"), "")
	agent, err := client.New(agentConfig, client.Options{Scheme: testScheme})
	g.Expect(err).NotTo(HaveOccurred())
	createNodes(t, ns, ns+"-node")

	tg := generatorFromPatch(t, ns, "udp", "")
	g.Expect(k8sClient.Create(ctx, tg)).To(Succeed())
	tgTyped := &xdpgenv1alpha1.TrafficGenerator{}
	// RBAC takes effect once the authorizer's cache sees the binding.
	g.Eventually(func() error { return agent.Get(ctx, client.ObjectKeyFromObject(tg), tgTyped) }).
		WithTimeout(eventually).WithPolling(poll).Should(Succeed())
	g.Expect(agent.List(ctx, &xdpgenv1alpha1.TrafficGeneratorList{}, client.InNamespace(ns))).To(Succeed())

	nr, err := putReport(ctx, agent, tgTyped, "node-a", nodeStatus(1, xdpgenv1alpha1.PhaseRunning, 10, 1, ""))
	g.Expect(err).NotTo(HaveOccurred(), "the agent must create its NodeReport and write its status")
	nr.Labels["extra"] = "x"
	g.Expect(agent.Update(ctx, nr)).To(Succeed())
	g.Expect(agent.Create(ctx, &eventsv1.Event{
		ObjectMeta:          metav1.ObjectMeta{Namespace: ns, GenerateName: "agent-"},
		EventTime:           metav1.NowMicro(),
		ReportingController: "xdpgen.io/agent", ReportingInstance: "agent-node-a",
		Action: "Run", Reason: "Started", Type: "Normal", Note: "sending",
		Regarding: corev1.ObjectReference{
			APIVersion: xdpgenv1alpha1.GroupVersion.String(), Kind: "TrafficGenerator",
			Namespace: ns, Name: tgTyped.Name, UID: tgTyped.UID,
		},
	})).To(Succeed())

	forbidden := func(what string, err error) {
		t.Helper()
		if !apierrors.IsForbidden(err) {
			t.Errorf("%s: error = %v, want Forbidden", what, err)
		}
	}
	tgTyped.Status.Phase = xdpgenv1alpha1.PhaseCompleted
	forbidden("agent writes the TrafficGenerator status", agent.Status().Update(ctx, tgTyped))
	tgTyped.Spec.Threads = 2
	forbidden("agent writes the TrafficGenerator", agent.Update(ctx, tgTyped))
	forbidden("agent deletes the TrafficGenerator", agent.Delete(ctx, tgTyped))
	forbidden("agent deletes a NodeReport", agent.Delete(ctx, nr))
	forbidden("agent writes a NodeReport in another namespace", agent.Create(ctx, newReport(&xdpgenv1alpha1.TrafficGenerator{
		ObjectMeta: metav1.ObjectMeta{Namespace: other, Name: "udp", UID: tgTyped.UID},
	}, "node-a")))
	forbidden("agent reads DaemonSets", agent.List(ctx, &appsv1.DaemonSetList{}, client.InNamespace(ns)))
	forbidden("agent creates a Node", agent.Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: ns + "-forged"}}))
	forbidden("agent writes its Node", agent.Delete(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: ns + "-node"}}))

	// One agent per node runs the TrafficGenerators of every namespace: it reads them all, and watches its Node
	// (RBAC cannot narrow a list or watch to one Node, so it may list them all).
	g.Expect(agent.List(ctx, &xdpgenv1alpha1.TrafficGeneratorList{}, client.InNamespace(other))).To(Succeed())
	g.Expect(agent.List(ctx, &xdpgenv1alpha1.TrafficGeneratorList{})).To(Succeed())
	g.Expect(agent.Get(ctx, client.ObjectKey{Name: ns + "-node"}, &corev1.Node{})).To(Succeed())
	g.Expect(agent.List(ctx, &corev1.NodeList{})).To(Succeed())
	// It reads a namespace's TrafficGeneratorPolicy by name (a run to a special address), and lists none.
	policy := &xdpgenv1alpha1.TrafficGeneratorPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: other, Name: xdpgenv1alpha1.DefaultPolicyName}}
	g.Expect(k8sClient.Create(ctx, policy)).To(Succeed())
	g.Expect(agent.Get(ctx, client.ObjectKeyFromObject(policy), &xdpgenv1alpha1.TrafficGeneratorPolicy{})).To(Succeed())
	forbidden("agent lists TrafficGeneratorPolicies", agent.List(ctx, &xdpgenv1alpha1.TrafficGeneratorPolicyList{}))
	forbidden("agent writes a TrafficGeneratorPolicy", agent.Update(ctx, policy))
	// It serves its metrics to clients the API server authenticates and authorizes for it.
	g.Expect(agent.Create(ctx, &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: "not-a-token"}})).To(Succeed())
	g.Expect(agent.Create(ctx, &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User: "prometheus", NonResourceAttributes: &authorizationv1.NonResourceAttributes{Path: "/metrics", Verb: "get"},
	}})).To(Succeed())
}

// TestManagerRole runs the controller with only the generated config/rbac/role.yaml: the RBAC markers must cover
// all it does (watch the TrafficGenerators, NodeReports and Nodes, write the status, record events).
func TestManagerRole(t *testing.T) {
	requireEnvtest(t)
	g := NewWithT(t)
	ctx := context.Background()
	ns := testNamespace(t, "manager-rbac")
	role := applyClusterRole(t, "rbac/role.yaml")
	startManagerAs(t, userBoundTo(t, "manager-"+ns, role, ""), ns, 100*time.Millisecond, 0, nil)
	node := ns + "-a"
	createNodes(t, ns, node)

	tg := generatorFromPatch(t, ns, "udp", "nodeSelector: {"+testNodeLabel+": "+ns+"}")
	g.Expect(k8sClient.Create(ctx, tg)).To(Succeed())
	cur := &xdpgenv1alpha1.TrafficGenerator{}
	g.Eventually(func(g Gomega) {
		g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(tg), cur)).To(Succeed())
		g.Expect(cur.Status.NodesTotal).To(Equal(int32(1)), "the manager must read the Nodes")
	}).WithTimeout(eventually).WithPolling(poll).Should(Succeed())
	_, err := putReport(ctx, k8sClient, cur, node, nodeStatus(1, xdpgenv1alpha1.PhaseCompleted, 10, 0, ""))
	g.Expect(err).NotTo(HaveOccurred())
	g.Eventually(func(g Gomega) {
		g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(tg), cur)).To(Succeed())
		g.Expect(cur.Status.Phase).To(Equal(xdpgenv1alpha1.PhaseCompleted))
		var events eventsv1.EventList
		g.Expect(k8sClient.List(ctx, &events, client.InNamespace(ns))).To(Succeed())
		g.Expect(events.Items).NotTo(BeEmpty())
	}).WithTimeout(eventually).WithPolling(poll).Should(Succeed())
}

// TestUserRoles checks the roles for people (config/rbac/trafficgenerator_{editor,viewer}_role.yaml): an editor
// runs TrafficGenerators in its namespace and reads their reports and its policy; a viewer only reads; neither may
// write a TrafficGeneratorPolicy, which stays the cluster admins'. The built-in admin, edit and view roles take
// them in through their aggregation labels (kube-controller-manager's aggregation, which envtest does not run).
func TestUserRoles(t *testing.T) {
	requireEnvtest(t)
	ns := testNamespace(t, "user-rbac")
	editor := applyClusterRole(t, "rbac/trafficgenerator_editor_role.yaml")
	viewer := applyClusterRole(t, "rbac/trafficgenerator_viewer_role.yaml")
	bindUser(t, "editor-"+ns, editor, ns)
	bindUser(t, "viewer-"+ns, viewer, ns)
	for _, tc := range []struct {
		user, verb, resource string
		allowed              bool
	}{
		{"editor", "create", "trafficgenerators", true},
		{"editor", "delete", "trafficgenerators", true},
		{"editor", "list", "nodereports", true},
		{"editor", "get", "trafficgeneratorpolicies", true},
		{"editor", "update", "nodereports", false},
		{"editor", "create", "trafficgeneratorpolicies", false},
		{"editor", "update", "trafficgeneratorpolicies", false},
		{"viewer", "watch", "trafficgenerators", true},
		{"viewer", "get", "nodereports", true},
		{"viewer", "create", "trafficgenerators", false},
		{"viewer", "patch", "trafficgeneratorpolicies", false},
	} {
		sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User: tc.user + "-" + ns,
			ResourceAttributes: &authorizationv1.ResourceAttributes{
				Namespace: ns, Verb: tc.verb, Group: xdpgenv1alpha1.GroupVersion.Group, Resource: tc.resource,
			},
		}}
		if err := k8sClient.Create(context.Background(), sar); err != nil {
			t.Fatal(err)
		}
		if sar.Status.Allowed != tc.allowed {
			t.Errorf("%s %s %s: allowed %v, want %v (%s)", tc.user, tc.verb, tc.resource, sar.Status.Allowed, tc.allowed, sar.Status.Reason)
		}
	}
	for _, role := range []string{editor, viewer} {
		var cr rbacv1.ClusterRole
		if err := k8sClient.Get(context.Background(), client.ObjectKey{Name: role}, &cr); err != nil {
			t.Fatal(err)
		}
		aggregated := false
		for k, v := range cr.Labels {
			aggregated = aggregated || (strings.HasPrefix(k, "rbac.authorization.k8s.io/aggregate-to-") && v == "true")
		}
		if !aggregated {
			t.Errorf("ClusterRole %s has no aggregation label: %v", role, cr.Labels)
		}
	}
}
