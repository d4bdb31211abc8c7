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
	"bytes"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/xdpgen/xdpgen/test/manifest"
)

// TestLint: `helm lint --strict` finds nothing to warn about (an INFO such as a missing icon is allowed).
func TestLint(t *testing.T) {
	out, err := run(t, helmBinary(t), "lint", "--strict", chartDir)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, bad := range []string{"[WARNING]", "[ERROR]"} {
		if strings.Contains(out, bad) {
			t.Errorf("helm lint --strict:\n%s", out)
		}
	}
	if !strings.Contains(out, "1 chart(s) linted, 0 chart(s) failed") {
		t.Errorf("helm lint --strict:\n%s", out)
	}
}

// TestCopiesInSync: the chart's CRDs and RBAC rules are what config/ has (make helm-sync copies them; make
// verify-helm checks the same).
func TestCopiesInSync(t *testing.T) {
	pairs := map[string]string{}
	crds, err := filepath.Glob(filepath.Join(repoRoot, "config", "crd", "bases", "*.yaml"))
	if err != nil || len(crds) == 0 {
		t.Fatalf("no CRDs in config/crd/bases: %v", err)
	}
	for _, src := range crds {
		pairs[src] = filepath.Join(chartDir, "crds", filepath.Base(src))
	}
	copied, _ := filepath.Glob(filepath.Join(chartDir, "crds", "*.yaml"))
	if len(copied) != len(crds) {
		t.Errorf("chart has %d CRDs, config/crd/bases %d: run make helm-sync", len(copied), len(crds))
	}
	for copied, src := range map[string]string{
		"role.yaml":                 "rbac/role.yaml",
		"leader_election_role.yaml": "rbac/leader_election_role.yaml",
		"agent_role.yaml":           "agent/role.yaml",
		"agent_cluster_role.yaml":   "agent/cluster_role.yaml",
	} {
		pairs[filepath.Join(repoRoot, "config", src)] = filepath.Join(chartDir, "files", "rbac", copied)
	}
	for src, dst := range pairs {
		a, errA := os.ReadFile(src)
		b, errB := os.ReadFile(dst)
		if errA != nil || errB != nil || !bytes.Equal(a, b) {
			t.Errorf("%s differs from %s (%v, %v): run make helm-sync", dst, src, errA, errB)
		}
	}
}

// TestTemplateDefaults renders the chart with its default values and checks what a default install creates.
func TestTemplateDefaults(t *testing.T) {
	objs := index(t, helmTemplate(t, "--include-crds"))
	const ns = "xdpgen-system"
	var got []string
	for k := range objs {
		got = append(got, k)
	}
	sort.Strings(got)
	want := []string{
		"ClusterRole /xdpgen-agent",
		"ClusterRole /xdpgen-agent-reader",
		"ClusterRole /xdpgen-manager",
		"ClusterRole /xdpgen-metrics-reader",
		"ClusterRole /xdpgen-trafficgenerator-editor",
		"ClusterRole /xdpgen-trafficgenerator-viewer",
		"ClusterRoleBinding /xdpgen-agent-reader",
		"ClusterRoleBinding /xdpgen-manager",
		"CustomResourceDefinition /nodereports.xdpgen.io",
		"CustomResourceDefinition /trafficgeneratorpolicies.xdpgen.io",
		"CustomResourceDefinition /trafficgenerators.xdpgen.io",
		"DaemonSet " + ns + "/xdpgen-agent",
		"Deployment " + ns + "/xdpgen-controller-manager",
		"Namespace /" + ns,
		"Role " + ns + "/xdpgen-leader-election",
		"RoleBinding " + ns + "/xdpgen-agent",
		"RoleBinding " + ns + "/xdpgen-leader-election",
		"Service " + ns + "/xdpgen-agent-metrics",
		"Service " + ns + "/xdpgen-manager-metrics",
		"ServiceAccount " + ns + "/xdpgen-agent",
		"ServiceAccount " + ns + "/xdpgen-manager",
		"TrafficGeneratorPolicy " + ns + "/default",
		"ValidatingAdmissionPolicy /xdpgen-agent-own-nodereport",
		"ValidatingAdmissionPolicy /xdpgen-agent-pods",
		"ValidatingAdmissionPolicy /xdpgen-trafficgenerator-policy",
		"ValidatingAdmissionPolicyBinding /xdpgen-agent-own-nodereport",
		"ValidatingAdmissionPolicyBinding /xdpgen-agent-pods",
		"ValidatingAdmissionPolicyBinding /xdpgen-trafficgenerator-policy",
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("objects of a default install (-want +got):\n%s", d)
	}

	nsLabels := get(t, objs, "Namespace /"+ns).GetLabels()
	for _, mode := range []string{"enforce", "audit", "warn"} {
		if l := "pod-security.kubernetes.io/" + mode; nsLabels[l] != "privileged" {
			t.Errorf("namespace label %s = %q, want privileged (the agents use hostNetwork and capabilities)", l, nsLabels[l])
		}
	}

	deploy := get(t, objs, "Deployment "+ns+"/xdpgen-controller-manager")
	c := onlyContainer(t, deploy)
	if c["image"] != "ghcr.io/xdpgen/xdpgen:dev" || c["imagePullPolicy"] != "IfNotPresent" {
		t.Errorf("manager image %v (%v), want ghcr.io/xdpgen/xdpgen:dev (IfNotPresent)", c["image"], c["imagePullPolicy"])
	}
	wantFlags := map[string]string{
		"--leader-elect":              "",
		"--health-probe-bind-address": ":8081",
		"--metrics-bind-address":      ":8080",
		"--status-interval":           "2s",
		"--node-lost-timeout":         "60s",
		"--zap-log-level":             "info",
	}
	if d := cmp.Diff(wantFlags, flags(c)); d != "" {
		t.Errorf("manager flags (-want +got):\n%s", d)
	}
	for probe, path := range map[string]string{"livenessProbe": "/healthz", "readinessProbe": "/readyz"} {
		p, _ := c[probe].(map[string]any)
		if got := nested(&unstructured.Unstructured{Object: p}, "httpGet", "path"); got != path {
			t.Errorf("%s path %v, want %s", probe, got, path)
		}
	}
	requests := nested(&unstructured.Unstructured{Object: c}, "resources", "requests")
	if d := cmp.Diff(map[string]any{"cpu": "10m", "memory": "64Mi"}, requests); d != "" {
		t.Errorf("manager resource requests (-want +got):\n%s", d)
	}
	if got := nested(deploy, "spec", "template", "spec", "nodeSelector"); !cmp.Equal(got, map[string]any{"kubernetes.io/os": "linux"}) {
		t.Errorf("manager nodeSelector %v, want kubernetes.io/os: linux", got)
	}
	if got := nested(deploy, "spec", "template", "spec", "serviceAccountName"); got != "xdpgen-manager" {
		t.Errorf("manager serviceAccountName %v, want xdpgen-manager", got)
	}

	// The agents: one per node, every node by default, with the manager's image and the least privilege.
	ds := get(t, objs, "DaemonSet "+ns+"/xdpgen-agent")
	agentPod := &unstructured.Unstructured{Object: nested(ds, "spec", "template", "spec").(map[string]any)}
	ac := onlyContainer(t, ds)
	if ac["image"] != "ghcr.io/xdpgen/xdpgen:dev" || ac["imagePullPolicy"] != "IfNotPresent" {
		t.Errorf("agent image %v (%v), want the manager's, ghcr.io/xdpgen/xdpgen:dev (IfNotPresent)", ac["image"], ac["imagePullPolicy"])
	}
	if d := cmp.Diff(map[string]string{"--health-probe-bind-address": "127.0.0.1:9440", "--metrics-bind-address": ":9441"}, flags(ac)); d != "" {
		t.Errorf("agent flags (-want +got):\n%s", d)
	}
	for field, want := range map[string]any{
		"hostNetwork":        true,
		"dnsPolicy":          "ClusterFirstWithHostNet",
		"serviceAccountName": "xdpgen-agent",
		"tolerations":        []any{map[string]any{"operator": "Exists"}},
		"nodeSelector":       map[string]any{"kubernetes.io/os": "linux"},
		"securityContext":    map[string]any{"seccompProfile": map[string]any{"type": "RuntimeDefault"}},
	} {
		if d := cmp.Diff(want, nested(agentPod, field)); d != "" {
			t.Errorf("agent pod %s (-want +got):\n%s", field, d)
		}
	}
	if got := nested(agentPod, "imagePullSecrets"); got != nil {
		t.Errorf("agent imagePullSecrets %v, want none by default", got)
	}
	wantSecurity := map[string]any{
		"capabilities":             map[string]any{"drop": []any{"ALL"}, "add": []any{"BPF", "NET_ADMIN", "PERFMON"}},
		"privileged":               false,
		"allowPrivilegeEscalation": false,
		"readOnlyRootFilesystem":   true,
		"runAsUser":                int64(0),
		"runAsNonRoot":             false,
	}
	if d := cmp.Diff(wantSecurity, ac["securityContext"]); d != "" {
		t.Errorf("agent securityContext (-want +got):\n%s", d)
	}
	// The unauthenticated probes stay on the node's loopback, where the kubelet probes them.
	for _, probe := range []string{"readinessProbe", "livenessProbe"} {
		if host := nested(&unstructured.Unstructured{Object: ac}, probe, "httpGet", "host"); host != "127.0.0.1" {
			t.Errorf("agent %s host %v, want 127.0.0.1", probe, host)
		}
	}
	if got := nested(deploy, "spec", "template", "spec", "securityContext", "seccompProfile", "type"); got != "RuntimeDefault" {
		t.Errorf("manager seccompProfile %v, want RuntimeDefault", got)
	}
	var envNames []any
	for _, e := range ac["env"].([]any) {
		envNames = append(envNames, e.(map[string]any)["name"])
	}
	if d := cmp.Diff([]any{"NODE_NAME", "POD_NAME"}, envNames); d != "" {
		t.Errorf("agent env (-want +got):\n%s", d)
	}

	binding := get(t, objs, "RoleBinding "+ns+"/xdpgen-agent")
	wantSubjects := []any{map[string]any{"kind": "ServiceAccount", "name": "xdpgen-agent", "namespace": ns}}
	if d := cmp.Diff(wantSubjects, nested(binding, "subjects")); d != "" {
		t.Errorf("agent RoleBinding subjects (-want +got):\n%s", d)
	}
	if got := nested(binding, "roleRef", "name"); got != "xdpgen-agent" {
		t.Errorf("agent RoleBinding binds %v, want ClusterRole xdpgen-agent", got)
	}
}

// TestTemplateValues renders the chart with non-default values and checks that each reaches its object.
func TestTemplateValues(t *testing.T) {
	values := filepath.Join(t.TempDir(), "values.yaml")
	if err := os.WriteFile(values, []byte(`
namespace:
  name: traffic
image:
  repository: registry.example.com/net/xdpgen
  tag: v0.2.0
  pullPolicy: Never
imagePullSecrets: [{name: registry-credentials}]
manager:
  replicas: 2
  leaderElection: false
  statusInterval: 5s
  logLevel: debug
  resources:
    requests: {cpu: 200m, memory: 128Mi}
    limits: {cpu: "1", memory: 512Mi}
  nodeSelector:
    node-role.example.com/infra: "true"
  tolerations:
  - {key: dedicated, operator: Equal, value: infra, effect: NoSchedule}
  hostNetwork: true
  env: [{name: KUBERNETES_SERVICE_HOST, value: 127.0.0.1}]
  extraArgs: [--leader-election-namespace=traffic]
agent:
  image: {repository: registry.example.com/net/xdpgen-agent, tag: v0.2.1}
  imagePullSecrets: [{name: agent-credentials}]
  serviceAccountName: traffic-agent
  extraNamespaces: [team-a, team-b]
  healthPort: 19440
  metricsPort: 19441
  privileged: true
  env: {KUBERNETES_SERVICE_HOST: 127.0.0.1}
  resources:
    requests: {cpu: 500m, memory: 256Mi}
    limits: {memory: 1Gi}
  priorityClassName: system-node-critical
  nodeSelector: {node-role.example.com/sender: "true"}
  tolerations: [{key: dedicated, operator: Equal, value: load, effect: NoSchedule}]
  podLabels: {team: net}
  podAnnotations: {example.com/scrape: "true"}
metrics:
  serviceMonitor:
    enabled: true
    labels: {release: prometheus}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	objs := index(t, helmTemplate(t, "-f", values))
	const ns = "traffic"
	for k, o := range objs {
		switch n := o.GetNamespace(); n {
		case "", ns:
		case "team-a", "team-b":
			if k != "RoleBinding "+n+"/xdpgen-agent" {
				t.Errorf("%s: only the agents' RoleBinding belongs in an extra namespace", k)
			}
		default:
			t.Errorf("%s is not in namespace %s", k, ns)
		}
	}
	get(t, objs, "Namespace /"+ns)

	deploy := get(t, objs, "Deployment "+ns+"/xdpgen-controller-manager")
	c := onlyContainer(t, deploy)
	const image = "registry.example.com/net/xdpgen:v0.2.0"
	if c["image"] != image || c["imagePullPolicy"] != "Never" {
		t.Errorf("manager image %v (%v), want %s (Never)", c["image"], c["imagePullPolicy"], image)
	}
	wantFlags := map[string]string{
		"--health-probe-bind-address": ":8081",
		"--metrics-bind-address":      ":8080",
		"--status-interval":           "5s",
		"--node-lost-timeout":         "60s",
		"--zap-log-level":             "debug",
		"--leader-election-namespace": "traffic",
	}
	if d := cmp.Diff(wantFlags, flags(c)); d != "" {
		t.Errorf("manager flags (-want +got):\n%s", d)
	}
	wantResources := map[string]any{
		"requests": map[string]any{"cpu": "200m", "memory": "128Mi"},
		"limits":   map[string]any{"cpu": "1", "memory": "512Mi"},
	}
	if d := cmp.Diff(wantResources, c["resources"]); d != "" {
		t.Errorf("manager resources (-want +got):\n%s", d)
	}
	pod := &unstructured.Unstructured{Object: nested(deploy, "spec", "template", "spec").(map[string]any)}
	for field, want := range map[string]any{
		// Helm merges maps: the default kubernetes.io/os stays unless set to null.
		"nodeSelector":     map[string]any{"kubernetes.io/os": "linux", "node-role.example.com/infra": "true"},
		"tolerations":      []any{map[string]any{"key": "dedicated", "operator": "Equal", "value": "infra", "effect": "NoSchedule"}},
		"imagePullSecrets": []any{map[string]any{"name": "registry-credentials"}},
		"hostNetwork":      true,
	} {
		if d := cmp.Diff(want, nested(pod, field)); d != "" {
			t.Errorf("manager pod %s (-want +got):\n%s", field, d)
		}
	}
	if got := nested(deploy, "spec", "replicas"); got != int64(2) {
		t.Errorf("replicas %v, want 2", got)
	}
	if _, ok := objs["Role "+ns+"/xdpgen-leader-election"]; ok {
		t.Errorf("leader election off, but its Role is rendered")
	}

	// The agent DaemonSet with the agent values.
	ds := get(t, objs, "DaemonSet "+ns+"/xdpgen-agent")
	ac := onlyContainer(t, ds)
	if want := "registry.example.com/net/xdpgen-agent:v0.2.1"; ac["image"] != want || ac["imagePullPolicy"] != "Never" {
		t.Errorf("agent image %v (%v), want %s (Never, the manager's)", ac["image"], ac["imagePullPolicy"], want)
	}
	if d := cmp.Diff(map[string]string{"--health-probe-bind-address": "127.0.0.1:19440", "--metrics-bind-address": ":19441"}, flags(ac)); d != "" {
		t.Errorf("agent flags (-want +got):\n%s", d)
	}
	if d := cmp.Diff(map[string]any{"requests": map[string]any{"cpu": "500m", "memory": "256Mi"}, "limits": map[string]any{"memory": "1Gi"}}, ac["resources"]); d != "" {
		t.Errorf("agent resources (-want +got):\n%s", d)
	}
	if d := cmp.Diff(map[string]any{"privileged": true, "readOnlyRootFilesystem": true, "runAsUser": int64(0)}, ac["securityContext"]); d != "" {
		t.Errorf("privileged agent securityContext (-want +got):\n%s", d)
	}
	if env := ac["env"].([]any); !cmp.Equal(env[len(env)-1], map[string]any{"name": "KUBERNETES_SERVICE_HOST", "value": "127.0.0.1"}) {
		t.Errorf("agent env %v, want KUBERNETES_SERVICE_HOST after the downward API", env)
	}
	agentPod := &unstructured.Unstructured{Object: nested(ds, "spec", "template", "spec").(map[string]any)}
	for field, want := range map[string]any{
		"imagePullSecrets":   []any{map[string]any{"name": "agent-credentials"}},
		"priorityClassName":  "system-node-critical",
		"serviceAccountName": "traffic-agent",
		"nodeSelector":       map[string]any{"kubernetes.io/os": "linux", "node-role.example.com/sender": "true"},
		// Lists are replaced, not merged: the default toleration of every taint is gone.
		"tolerations": []any{map[string]any{"key": "dedicated", "operator": "Equal", "value": "load", "effect": "NoSchedule"}},
	} {
		if d := cmp.Diff(want, nested(agentPod, field)); d != "" {
			t.Errorf("agent pod %s (-want +got):\n%s", field, d)
		}
	}
	if got := nested(ds, "spec", "template", "metadata", "labels", "team"); got != "net" {
		t.Errorf("agent pod label team = %v, want net", got)
	}
	if got := nested(ds, "spec", "template", "metadata", "annotations", "example.com/scrape"); got != "true" {
		t.Errorf("agent pod annotation example.com/scrape = %v, want true", got)
	}

	// The agents' service account in the chart's namespace, their RoleBinding there and in each extra namespace;
	// the admission policy matches the renamed service account.
	get(t, objs, "ServiceAccount "+ns+"/traffic-agent")
	for _, n := range []string{ns, "team-a", "team-b"} {
		rb := get(t, objs, "RoleBinding "+n+"/xdpgen-agent")
		want := []any{map[string]any{"kind": "ServiceAccount", "name": "traffic-agent", "namespace": ns}}
		if d := cmp.Diff(want, nested(rb, "subjects")); d != "" {
			t.Errorf("RoleBinding in %s (-want +got):\n%s", n, d)
		}
	}
	vap := get(t, objs, "ValidatingAdmissionPolicy /xdpgen-agent-own-nodereport")
	conds, _ := nested(vap, "spec", "matchConditions").([]any)
	if len(conds) != 1 || !strings.Contains(conds[0].(map[string]any)["expression"].(string), "endsWith(':traffic-agent')") {
		t.Errorf("admission policy does not match the service account traffic-agent: %v", conds)
	}
	podConds, _ := nested(get(t, objs, "ValidatingAdmissionPolicy /xdpgen-agent-pods"), "spec", "matchConditions").([]any)
	if len(podConds) != 1 || !strings.Contains(podConds[0].(map[string]any)["expression"].(string), "serviceAccountName == 'traffic-agent'") {
		t.Errorf("agent pod admission policy does not match the service account traffic-agent: %v", podConds)
	}

	agentSvc := get(t, objs, "Service "+ns+"/xdpgen-agent-metrics")
	ports, _ := nested(agentSvc, "spec", "ports").([]any)
	if len(ports) != 1 || ports[0].(map[string]any)["port"] != int64(19441) {
		t.Errorf("agent metrics Service ports %v, want 19441", ports)
	}
	sm := get(t, objs, "ServiceMonitor "+ns+"/xdpgen")
	if sm.GetLabels()["release"] != "prometheus" {
		t.Errorf("ServiceMonitor labels %v, want release: prometheus", sm.GetLabels())
	}
}

// TestTemplateSwitches: the optional parts can be turned off, and namespace.create=false installs into a namespace
// the user manages (the release's namespace when namespace.name is empty).
func TestTemplateSwitches(t *testing.T) {
	objs := index(t, helmTemplate(t, "--namespace", "ops", "--set", "namespace.create=false", "--set", "namespace.name=",
		"--set", "metrics.service.enabled=false", "--set", "agent.nodeReportPolicy.enabled=false", "--set", "policy.enabled=false"))
	for k := range objs {
		switch {
		case strings.HasPrefix(k, "Namespace "), strings.HasPrefix(k, "Service "), strings.HasPrefix(k, "ValidatingAdmissionPolicy"),
			strings.HasPrefix(k, "TrafficGeneratorPolicy "):
			t.Errorf("rendered %s although it is switched off", k)
		}
	}
	get(t, objs, "Deployment ops/xdpgen-controller-manager")
	get(t, objs, "ServiceAccount ops/xdpgen-agent")
}

// TestSchemaRefusesBadValues: a wrong value fails `helm template` (and so `helm install`) with a message that
// names it.
func TestSchemaRefusesBadValues(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"--set", "image.pullPolicy=Sometimes"}, []string{"/image/pullPolicy", "'Always', 'IfNotPresent', 'Never'"}},
		{[]string{"--set", "image.repository="}, []string{"/image/repository"}},
		{[]string{"--set", "image.tag=v1 beta"}, []string{"/image/tag"}},
		{[]string{"--set", "agent.healthPort=70000"}, []string{"/agent/healthPort", "65,535"}},
		{[]string{"--set", "manager.metricsPort=0"}, []string{"/manager/metricsPort"}},
		{[]string{"--set", "manager.replicas=-1"}, []string{"/manager/replicas"}},
		{[]string{"--set-string", "manager.replicas=two"}, []string{"/manager/replicas", "want integer"}},
		{[]string{"--set", "manager.resources.requests.cpu=lots"}, []string{"/manager/resources/requests/cpu", "'lots'"}},
		{[]string{"--set", "manager.resources.request.cpu=1"}, []string{"/manager/resources", "'request' not allowed"}},
		{[]string{"--set", "manager.statusInterval=soon"}, []string{"/manager/statusInterval"}},
		{[]string{"--set", "manager.logLevel=chatty"}, []string{"/manager/logLevel"}},
		{[]string{"--set", "manager.nodeLostTimeout=a-minute"}, []string{"/manager/nodeLostTimeout"}},
		{[]string{"--set", "agent.image.pullPolicy=Sometimes"}, []string{"/agent/image/pullPolicy"}},
		{[]string{"--set", "agent.resources.requests.cpu=lots"}, []string{"/agent/resources/requests/cpu", "'lots'"}},
		{[]string{"--set", "agent.nodeSelector.zone=1"}, []string{"/agent/nodeSelector/zone", "want string"}},
		{[]string{"--set", "agent.imagePullSecrets[0].nam=x"}, []string{"/agent/imagePullSecrets/0"}},
		{[]string{"--set", "manager.nodeSelector.zone=1"}, []string{"/manager/nodeSelector/zone", "want string"}},
		{[]string{"--set", "namespace.name=Traffic_Gen"}, []string{"/namespace/name", "'Traffic_Gen'"}},
		{[]string{"--set", "agent.extraNamespaces[0]=Team A"}, []string{"/agent/extraNamespaces/0"}},
		{[]string{"--set", "agent.serviceAccountName=agent:x"}, []string{"/agent/serviceAccountName"}},
		{[]string{"--set", "agent.privileged=yes"}, []string{"/agent/privileged", "want boolean"}},
		{[]string{"--set", "metrics.serviceMonitor.interval=often"}, []string{"/metrics/serviceMonitor/interval"}},
		{[]string{"--set", "imag.tag=v1"}, []string{"'imag' not allowed"}},
		// What the schema cannot say, the templates do.
		{[]string{"--set", "agent.metricsPort=9440"}, []string{"agent.metricsPort and agent.healthPort are both 9440"}},
		{[]string{"--set", "agent.seccompProfile.type=Strict"}, []string{"/agent/seccompProfile/type"}},
		{[]string{"--set", "metrics.service.enabled=false", "--set", "metrics.serviceMonitor.enabled=true"}, []string{"metrics.serviceMonitor.enabled needs metrics.service.enabled"}},
		{[]string{"--namespace", "xdpgen-system"}, []string{"namespace.create is true", "namespace.create=false"}},
		{[]string{"--set", "agent.extraNamespaces[0]=xdpgen-system"}, []string{"agent.extraNamespaces lists xdpgen-system"}},
	} {
		name := strings.Join(tc.args, " ")
		t.Run(name, func(t *testing.T) {
			_, err := run(t, helmBinary(t), append([]string{"template", "xdpgen", chartDir}, tc.args...)...)
			if err == nil {
				t.Fatalf("helm template %s succeeded, want it refused", name)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

// TestNotes: NOTES.txt tells the user what to apply next, in the namespace the chart installed into.
func TestNotes(t *testing.T) {
	out, err := run(t, helmBinary(t), "install", "xdpgen", chartDir, "--dry-run=client", "--set", "namespace.name=traffic")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"kubectl -n traffic rollout status deployment/xdpgen-controller-manager",
		"kubectl -n traffic apply -f config/samples/trafficgen.yaml",
		"kubectl -n traffic get tg -w",
		"helm uninstall xdpgen",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("NOTES lack %q:\n%s", want, out)
		}
	}
}

// TestTemplatePolicyDefault: policy.default replaces the spec of the TrafficGeneratorPolicy of the chart's
// namespace, which is config/policy's when left out.
func TestTemplatePolicyDefault(t *testing.T) {
	policy := get(t, index(t, helmTemplate(t, "--set", "policy.default.maxDuration=1h")), "TrafficGeneratorPolicy xdpgen-system/default")
	if d := cmp.Diff(map[string]any{"maxDuration": "1h"}, nested(policy, "spec")); d != "" {
		t.Errorf("spec with policy.default set (-want +got):\n%s", d)
	}
	policy = get(t, index(t, helmTemplate(t)), "TrafficGeneratorPolicy xdpgen-system/default")
	want := manifest.DecodeFile(t, filepath.Join(repoRoot, "config", "policy", "default_trafficgeneratorpolicy.yaml"))[0]
	if d := cmp.Diff(nested(want, "spec"), nested(policy, "spec")); d != "" {
		t.Errorf("default spec (-config/policy +chart):\n%s", d)
	}
}
