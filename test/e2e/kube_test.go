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
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	authzv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/xdpgen/xdpgen/agent"
	xdpgenv1alpha1 "github.com/xdpgen/xdpgen/api/v1alpha1"
	"github.com/xdpgen/xdpgen/test/poll"
)

// agentServiceAccount is the identity config/default gives the agents (manager flag --agent-service-account).
const agentServiceAccount = "xdpgen-agent"

// otherNamespace is the second namespace of test/e2e/install, where the agents' RoleBinding lets them report too.
const otherNamespace = "xdpgen-e2e-other"

// trafficGeneratorManifest is a TrafficGenerator as a user writes it: spec is YAML, indented by two.
func trafficGeneratorManifest(ns, name, spec string) string {
	return fmt.Sprintf("apiVersion: xdpgen.io/v1alpha1\nkind: TrafficGenerator\nmetadata:\n  name: %s\n  namespace: %s\nspec:\n%s",
		name, ns, spec)
}

// applyTrafficGenerator applies a TrafficGenerator in the agents' namespace with kubectl, as a user would.
func (e *clusterEnv) applyTrafficGenerator(t *testing.T, name, spec string) {
	t.Helper()
	e.applyManifest(t, trafficGeneratorManifest(namespace, name, spec))
	e.deleteAfterTest(t, client.ObjectKey{Namespace: namespace, Name: name})
}

// applyManifest applies a manifest with kubectl.
func (e *clusterEnv) applyManifest(t *testing.T, manifest string) {
	t.Helper()
	out, err := e.runStdin([]byte(manifest), "apply", "-f", "-")
	if err != nil {
		t.Fatalf("kubectl apply:\n%s\n%v: %s", manifest, err, out)
	}
	t.Logf("kubectl apply:\n%s%s", manifest, out)
}

// waitAdmissionReady waits until the API server admits a TrafficGenerator again (a server-side dry run). A
// restarted kube-apiserver denies every generator until its admission policy resolves the policy CRD named as its
// paramKind, which takes up to its 30 s discovery resync (kubernetes/kubernetes#124237); the README says so.
func (e *clusterEnv) waitAdmissionReady(t *testing.T, timeout time.Duration) {
	t.Helper()
	manifest := trafficGeneratorManifest(namespace, "e2e-admission-probe",
		udpSpec("10.251.250.2", 9, 1, 1000, 1000, e.onFirstNode()))
	start := time.Now()
	poll.Until(t, timeout, time.Second, "the API server admits a TrafficGenerator after its restart", func() error {
		out, err := e.runStdin([]byte(manifest), "apply", "--dry-run=server", "-f", "-")
		if err != nil {
			return fmt.Errorf("%w: %s", err, out)
		}
		return nil
	})
	t.Logf("the API server admits TrafficGenerators again %.1f s after its restart", time.Since(start).Seconds())
}

// deleteAfterTest leaves nothing of a TrafficGenerator for the next test: the generator, its reports (garbage
// collected) and its runs' pins on the nodes.
func (e *clusterEnv) deleteAfterTest(t *testing.T, key client.ObjectKey) {
	t.Helper()
	tg := e.trafficGeneratorAt(t, key)
	t.Cleanup(func() {
		_, _ = e.run("-n", key.Namespace, "delete", "tg", key.Name, "--ignore-not-found", "--wait=true", "--timeout=60s")
		e.waitPinsGone(t, tg, time.Minute)
	})
}

// trafficGenerator reads a TrafficGenerator of the agents' namespace.
func (e *clusterEnv) trafficGenerator(t *testing.T, name string) *xdpgenv1alpha1.TrafficGenerator {
	t.Helper()
	return e.trafficGeneratorAt(t, client.ObjectKey{Namespace: namespace, Name: name})
}

func (e *clusterEnv) trafficGeneratorAt(t *testing.T, key client.ObjectKey) *xdpgenv1alpha1.TrafficGenerator {
	t.Helper()
	var tg xdpgenv1alpha1.TrafficGenerator
	if err := e.client.Get(context.Background(), key, &tg); err != nil {
		t.Fatalf("get TrafficGenerator %s: %v", key, err)
	}
	return &tg
}

// phaseRecorder polls a TrafficGenerator's phase (more often than the controller writes its status) and keeps
// the sequence of phases it went through.
type phaseRecorder struct {
	mu     sync.Mutex
	phases []xdpgenv1alpha1.Phase
	// maxPPS is the highest status.totals.packetsPerSecond seen.
	maxPPS int64
	stop   context.CancelFunc
	done   chan struct{}
}

func (e *clusterEnv) recordPhases(t *testing.T, name string) *phaseRecorder {
	ctx, cancel := context.WithCancel(context.Background())
	r := &phaseRecorder{stop: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		for ctx.Err() == nil {
			var tg xdpgenv1alpha1.TrafficGenerator
			if err := e.client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, &tg); err == nil {
				r.mu.Lock()
				if p := tg.Status.Phase; p != "" && (len(r.phases) == 0 || r.phases[len(r.phases)-1] != p) {
					r.phases = append(r.phases, p)
				}
				r.maxPPS = max(r.maxPPS, tg.Status.Totals.PacketsPerSecond)
				r.mu.Unlock()
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	t.Cleanup(r.halt)
	return r
}

// highestPPS is the highest rate the status showed.
func (r *phaseRecorder) highestPPS() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.maxPPS
}

func (r *phaseRecorder) halt() {
	r.stop()
	<-r.done
}

// seenUntil stops recording and returns the phases seen, ending with final (the phase a waiter saw last, which
// the recorder's own polling may not have caught yet).
func (r *phaseRecorder) seenUntil(final xdpgenv1alpha1.Phase) []xdpgenv1alpha1.Phase {
	r.halt()
	r.mu.Lock()
	defer r.mu.Unlock()
	seen := slices.Clone(r.phases)
	if len(seen) == 0 || seen[len(seen)-1] != final {
		seen = append(seen, final)
	}
	return seen
}

// waitPhase waits until the TrafficGenerator reaches phase (or another terminal phase, which fails the test).
func (e *clusterEnv) waitPhase(t *testing.T, name string, phase xdpgenv1alpha1.Phase, timeout time.Duration) *xdpgenv1alpha1.TrafficGenerator {
	t.Helper()
	return e.waitPhaseAt(t, client.ObjectKey{Namespace: namespace, Name: name}, phase, timeout)
}

func (e *clusterEnv) waitPhaseAt(t *testing.T, key client.ObjectKey, phase xdpgenv1alpha1.Phase, timeout time.Duration) *xdpgenv1alpha1.TrafficGenerator {
	t.Helper()
	var tg *xdpgenv1alpha1.TrafficGenerator
	poll.Until(t, timeout, pollInterval, fmt.Sprintf("TrafficGenerator %s phase %s", key, phase), func() error {
		tg = e.trafficGeneratorAt(t, key)
		if p := tg.Status.Phase; p.Terminal() && p != phase {
			out, _ := e.run("-n", key.Namespace, "describe", "tg", key.Name)
			t.Fatalf("TrafficGenerator %s ended %s, want %s:\n%s", key, p, phase, out)
		}
		if tg.Status.Phase != phase {
			return fmt.Errorf("phase %q, totals %+v, nodes %+v", tg.Status.Phase, tg.Status.Totals, tg.Status.NodesOfInterest)
		}
		return nil
	})
	return tg
}

// waitPackets waits until the TrafficGenerator's status counts at least n packets.
func (e *clusterEnv) waitPackets(t *testing.T, name string, n int64, timeout time.Duration) *xdpgenv1alpha1.TrafficGenerator {
	t.Helper()
	var tg *xdpgenv1alpha1.TrafficGenerator
	poll.Until(t, timeout, pollInterval, fmt.Sprintf("TrafficGenerator %s to report %d packets", name, n), func() error {
		tg = e.trafficGenerator(t, name)
		if tg.Status.Phase.Terminal() {
			out, _ := e.run("-n", namespace, "describe", "tg", name)
			t.Fatalf("TrafficGenerator %s ended %s before %d packets:\n%s", name, tg.Status.Phase, n, out)
		}
		if tg.Status.Totals.Packets < n {
			return fmt.Errorf("phase %q, totals %+v", tg.Status.Phase, tg.Status.Totals)
		}
		return nil
	})
	return tg
}

// agentPods lists the pods of the agents' DaemonSet.
func (e *clusterEnv) agentPods(t *testing.T) []corev1.Pod {
	t.Helper()
	var pods corev1.PodList
	if err := e.client.List(context.Background(), &pods, client.InNamespace(namespace),
		client.MatchingLabels{"app.kubernetes.io/name": "xdpgen-agent"}); err != nil {
		t.Fatalf("list agent pods: %v", err)
	}
	return pods.Items
}

// waitAgentRunning waits for the container of node's agent pod to run and returns the pod.
func (e *clusterEnv) waitAgentRunning(t *testing.T, node string, timeout time.Duration) *corev1.Pod {
	t.Helper()
	var pod *corev1.Pod
	poll.Until(t, timeout, pollInterval, "the agent pod of node "+node+" running", func() error {
		var seen []string
		for _, p := range e.agentPods(t) {
			if p.Spec.NodeName != node {
				continue
			}
			for _, cs := range p.Status.ContainerStatuses {
				if cs.State.Running != nil && cs.ContainerID != "" && p.DeletionTimestamp == nil {
					pod = &p
					return nil
				}
				seen = append(seen, fmt.Sprintf("%s: %+v", p.Name, cs.State))
			}
			if len(p.Status.ContainerStatuses) == 0 {
				seen = append(seen, fmt.Sprintf("%s: %s", p.Name, p.Status.Phase))
			}
		}
		return errors.New(strings.Join(seen, "; "))
	})
	return pod
}

// runPins lists the directories in which the agents pinned the counters of a TrafficGenerator's runs (every node's
// agent pins on the host's bpffs: the second node's mount namespace has the same).
func runPins(t *testing.T, tg *xdpgenv1alpha1.TrafficGenerator) []string {
	t.Helper()
	pins, err := filepath.Glob(filepath.Join(agent.DefaultPinDir, string(tg.UID)+"-*"))
	if err != nil {
		t.Fatal(err)
	}
	return pins
}

// waitPinsGone waits until no pin of a TrafficGenerator's runs is left.
func (e *clusterEnv) waitPinsGone(t *testing.T, tg *xdpgenv1alpha1.TrafficGenerator, timeout time.Duration) {
	t.Helper()
	poll.Until(t, timeout, pollInterval, "the pins of "+tg.Name+"'s runs removed", func() error {
		if pins := runPins(t, tg); len(pins) > 0 {
			return fmt.Errorf("still pinned: %v", pins)
		}
		return nil
	})
}

// checkRunCleanedUp checks what a run leaves on the first node once it is over: neither its pins nor any XDP
// program, while the node's long-lived agent (pod) goes on running.
func (e *clusterEnv) checkRunCleanedUp(t *testing.T, tg *xdpgenv1alpha1.TrafficGenerator, agentPod *corev1.Pod) {
	t.Helper()
	e.waitPinsGone(t, tg, 30*time.Second)
	poll.Until(t, 30*time.Second, pollInterval, "no XDP program attached on the node", func() error {
		if x := xdpAttached(t); len(x) > 0 {
			return fmt.Errorf("XDP programs left attached: %v", x)
		}
		return nil
	})
	now := e.waitAgentRunning(t, agentPod.Spec.NodeName, 10*time.Second)
	if now.UID != agentPod.UID {
		t.Errorf("the agent pod of node %s is %s now, was %s: it must outlive the runs", agentPod.Spec.NodeName, now.Name, agentPod.Name)
	}
}

// nodeReport reads the first node's report of a TrafficGenerator.
func (e *clusterEnv) nodeReport(t *testing.T, name string) *xdpgenv1alpha1.NodeReport {
	t.Helper()
	return e.nodeReportOf(t, name, e.cluster.NodeName())
}

// nodeReportOf reads node's report of a TrafficGenerator.
func (e *clusterEnv) nodeReportOf(t *testing.T, name, node string) *xdpgenv1alpha1.NodeReport {
	t.Helper()
	return e.nodeReportAt(t, client.ObjectKey{Namespace: namespace, Name: name}, node)
}

func (e *clusterEnv) nodeReportAt(t *testing.T, tg client.ObjectKey, node string) *xdpgenv1alpha1.NodeReport {
	t.Helper()
	var nr xdpgenv1alpha1.NodeReport
	key := client.ObjectKey{Namespace: tg.Namespace, Name: xdpgenv1alpha1.NodeReportName(tg.Name, node)}
	if err := e.client.Get(context.Background(), key, &nr); err != nil {
		t.Fatalf("get NodeReport %s: %v", key.Name, err)
	}
	return &nr
}

// kubectlWait runs `kubectl wait --for=condition=<condition> tg/<name>` as a CI job would, until it returns, and
// fails the test unless it says the condition is met.
func (e *clusterEnv) kubectlWait(t *testing.T, name, condition string, timeout time.Duration) {
	t.Helper()
	args := []string{"-n", namespace, "wait", "--for=condition=" + condition, "tg/" + name, "--timeout=" + timeout.String()}
	out, err := e.run(args...)
	t.Logf("$ kubectl %s\n%s", strings.Join(args, " "), out)
	if err != nil || !strings.Contains(out, "condition met") {
		t.Fatalf("kubectl %s: %v", strings.Join(args, " "), err)
	}
}

// kubectlShows checks that `kubectl get tg` and `kubectl describe tg` show each of wants, as a user would see it.
func (e *clusterEnv) kubectlShows(t *testing.T, name string, get, describe []string) {
	t.Helper()
	for _, c := range []struct {
		args  []string
		wants []string
	}{
		{[]string{"-n", namespace, "get", "tg", name, "-o", "wide"}, get},
		{[]string{"-n", namespace, "describe", "tg", name}, describe},
	} {
		out, err := e.run(c.args...)
		if err != nil {
			t.Fatalf("kubectl %s: %v\n%s", strings.Join(c.args, " "), err, out)
		}
		t.Logf("$ kubectl %s\n%s", strings.Join(c.args, " "), out)
		for _, w := range c.wants {
			if !strings.Contains(out, w) {
				t.Errorf("kubectl %s does not show %q", strings.Join(c.args, " "), w)
			}
		}
	}
}

// Capabilities by number (linux/capability.h).
const (
	capNetAdmin = 12
	capPerfmon  = 38
	capBPF      = 39
)

// checkAgentProcess checks the running agent from the node's side: its process has exactly the capabilities the
// DaemonSet declares (and cannot gain more), and the token in its container authenticates as the agents'
// service account, whose RBAC lets it write NodeReports but not TrafficGenerators or anything else.
func (e *clusterEnv) checkAgentProcess(t *testing.T, pod *corev1.Pod) {
	t.Helper()
	if pod.Spec.ServiceAccountName != agentServiceAccount {
		t.Errorf("agent pod %s runs as service account %q, want %q", pod.Name, pod.Spec.ServiceAccountName, agentServiceAccount)
	}
	c := pod.Spec.Containers[0]
	if c.Image != image {
		t.Errorf("agent image %q, want %q", c.Image, image)
	}
	if sc := c.SecurityContext; sc == nil || sc.Privileged == nil || *sc.Privileged {
		t.Errorf("agent container is privileged (securityContext %+v); it must run with capabilities only", sc)
	}

	pid := agentPID(t, pod)
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("agent process %d: %v", pid, err)
	}
	field := func(name string) string {
		for _, l := range strings.Split(string(status), "\n") {
			if v, ok := strings.CutPrefix(l, name+":"); ok {
				return strings.TrimSpace(v)
			}
		}
		return ""
	}
	want := uint64(1)<<capBPF | 1<<capNetAdmin | 1<<capPerfmon
	for _, set := range []string{"CapEff", "CapPrm", "CapBnd"} {
		got, err := strconv.ParseUint(field(set), 16, 64)
		if err != nil || got != want {
			t.Errorf("agent process %d %s = %s, want %016x (BPF, NET_ADMIN, PERFMON only)", pid, set, field(set), want)
		}
	}
	if nnp := field("NoNewPrivs"); nnp != "1" {
		t.Errorf("agent process %d NoNewPrivs = %s, want 1 (allowPrivilegeEscalation: false)", pid, nnp)
	}
	if mode := field("Seccomp"); mode != "2" {
		t.Errorf("agent process %d Seccomp = %s, want 2 (a filter: seccompProfile RuntimeDefault)", pid, mode)
	}
	e.checkAgentEndpoints(t, pid)
	t.Logf("agent pod %s: process %d, CapEff %s, NoNewPrivs %s, Seccomp %s", pod.Name, pid, field("CapEff"), field("NoNewPrivs"), field("Seccomp"))

	token, err := os.ReadFile(fmt.Sprintf("/proc/%d/root/var/run/secrets/kubernetes.io/serviceaccount/token", pid))
	if err != nil {
		t.Fatalf("the agent's service-account token: %v", err)
	}
	ctx := context.Background()
	review, err := e.clients.AuthenticationV1().TokenReviews().Create(ctx,
		&authnv1.TokenReview{Spec: authnv1.TokenReviewSpec{Token: string(token)}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("review the agent's token: %v", err)
	}
	user := fmt.Sprintf("system:serviceaccount:%s:%s", namespace, agentServiceAccount)
	if !review.Status.Authenticated || review.Status.User.Username != user {
		t.Fatalf("the agent's token authenticates as %+v, want %s", review.Status, user)
	}
	for _, c := range []struct {
		verb, resource, sub string
		allowed             bool
	}{
		{"get", "trafficgenerators", "", true},
		{"patch", "nodereports", "status", true},
		{"update", "trafficgenerators", "", false},
		{"patch", "trafficgenerators", "status", false},
		{"create", "pods", "", false},
		{"list", "secrets", "", false},
	} {
		group := "xdpgen.io"
		if c.resource == "pods" || c.resource == "secrets" {
			group = ""
		}
		sar, err := e.clients.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authzv1.SubjectAccessReview{Spec: authzv1.SubjectAccessReviewSpec{
			User: review.Status.User.Username, Groups: review.Status.User.Groups, UID: review.Status.User.UID,
			ResourceAttributes: &authzv1.ResourceAttributes{Namespace: namespace, Verb: c.verb, Group: group,
				Resource: c.resource, Subresource: c.sub},
		}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("access review: %v", err)
		}
		if sar.Status.Allowed != c.allowed {
			t.Errorf("the agent's service account may %s %s/%s: %v, want %v", c.verb, c.resource, c.sub, sar.Status.Allowed, c.allowed)
		}
	}
}

// checkAgentEndpoints checks, in the network namespace of the agent process pid (the first node's, the host's),
// that its unauthenticated health probes listen on the loopback only (in the sockets the kernel lists) and answer
// there, and that its metrics refuse a client without a token.
func (e *clusterEnv) checkAgentEndpoints(t *testing.T, pid int) {
	t.Helper()
	health := fmt.Sprintf(":%04X", 9440)
	for _, table := range []string{"tcp", "tcp6"} {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", pid, table))
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(l)
			const listen = "0A"
			if len(f) > 3 && f[3] == listen && strings.HasSuffix(f[1], health) && f[1] != "0100007F"+health {
				t.Errorf("the agent's health probes listen on %s %s, want 127.0.0.1:9440 only", table, f[1])
			}
		}
	}
	insecure := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // the agent's certificate is self-signed
	for url, want := range map[string]int{"http://127.0.0.1:9440/healthz": http.StatusOK, "https://127.0.0.1:9441/metrics": http.StatusUnauthorized} {
		resp, err := insecure.Get(url)
		if err != nil {
			t.Errorf("GET %s: %v", url, err)
			continue
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s without credentials: status %d, want %d", url, resp.StatusCode, want)
		}
	}
}

// agentPID is the host's PID of the agent process in a running agent pod.
func agentPID(t *testing.T, pod *corev1.Pod) int {
	t.Helper()
	_, id, _ := strings.Cut(pod.Status.ContainerStatuses[0].ContainerID, "://")
	pid := containerPID(t, id)
	if cmd, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err != nil || !strings.HasPrefix(string(cmd), "/agent\x00") {
		t.Fatalf("process %d of the agent's container runs %q (%v), want /agent", pid, cmd, err)
	}
	return pid
}

// containerPID finds a container's process through its cgroup (the kubelets use cgroupfs: kubepods/.../<id> for the
// first node, node2/kubepods/.../<id> for the second).
func containerPID(t *testing.T, id string) int {
	t.Helper()
	var pid int
	root := "/sys/fs/cgroup/pids"
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() || d.Name() != id {
			return nil
		}
		b, _ := os.ReadFile(filepath.Join(p, "cgroup.procs"))
		if f := strings.Fields(string(b)); len(f) > 0 {
			pid, _ = strconv.Atoi(f[0])
		}
		return fs.SkipAll
	})
	if pid == 0 {
		t.Fatalf("no process of container %s under %s", id, root)
	}
	return pid
}

// kubectlOK runs kubectl against the cluster and fails the test when it fails.
func (e *clusterEnv) kubectlOK(t *testing.T, args ...string) string {
	t.Helper()
	out, err := e.run(args...)
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// helmBinary is the pinned helm, bin/helm/<helmVersion> (make helm builds it; make test and make e2e do).
func (e *clusterEnv) helmBinary(t *testing.T) string {
	t.Helper()
	helm := filepath.Join(e.root, "bin", "helm", helmVersion, "helm")
	if _, err := os.Stat(helm); err != nil {
		t.Fatalf("no helm at %s: make helm builds it (make e2e does)", helm)
	}
	return helm
}

// helm runs helm against the cluster, with a home of its own, and fails the test when it fails.
func (e *clusterEnv) helm(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	home := t.TempDir()
	cmd := exec.CommandContext(ctx, e.helmBinary(t), append(args, "--kubeconfig", e.cluster.Kubeconfig())...)
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+home, "HELM_CONFIG_HOME="+home, "HELM_DATA_HOME="+home)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helm %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	t.Logf("$ helm %s", strings.Join(args, " "))
	return string(out)
}
