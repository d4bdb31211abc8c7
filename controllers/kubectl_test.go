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
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/xdpgen/xdpgen/test/k8senv"
	"github.com/xdpgen/xdpgen/test/k8sversion"
)

// kubectlBinary is the kubectl the tests drive: $XDPGEN_KUBECTL, or the one `make kubectl` builds next to the
// control plane. (A kubectl from the host's PATH may be of another version, or not a real kubectl at all.)
func kubectlBinary(t *testing.T) string {
	t.Helper()
	p := os.Getenv("XDPGEN_KUBECTL")
	if p == "" {
		p = filepath.Join("..", "bin", "k8s", k8sversion.Version, "kubectl")
	}
	abs, err := filepath.Abs(p)
	if err == nil {
		_, err = os.Stat(abs)
	}
	if err != nil {
		msg := "no kubectl at " + p + " (make kubectl builds it, or set XDPGEN_KUBECTL)"
		k8senv.Missing(t, msg)
	}
	return abs
}

// TestKubectlApply drives the real kubectl against the envtest API server: the samples apply, the broken sample is
// refused with a message that says what to change, `kubectl get tg` shows the printer columns, and the kustomize
// installation in config/default applies.
func TestKubectlApply(t *testing.T) {
	requireEnvtest(t)
	kubectl := kubectlBinary(t)

	kubeconfigPath := testEnv.UserKubeconfig(t, envtest.User{Name: "kubectl-test", Groups: []string{"system:masters"}})
	ns := testNamespace(t, "kubectl")
	// kubectl runs in the test's namespace unless args name one.
	run := func(args ...string) (string, error) {
		global := []string{"--kubeconfig=" + kubeconfigPath}
		if !strings.HasPrefix(strings.Join(args, " "), "--namespace=") {
			global = append(global, "--namespace="+ns)
		}
		cmd := exec.Command(kubectl, append(global, args...)...)
		out, err := cmd.CombinedOutput()
		t.Logf("kubectl %s:\n%s", strings.Join(args, " "), out)
		return string(out), err
	}

	samples := filepath.Join("..", "config", "samples") + string(filepath.Separator)
	out, err := run("apply", "-f", samples)
	if err != nil {
		t.Fatalf("kubectl apply -f config/samples/: %v", err)
	}
	for _, name := range []string{"udp-sample", "udp6-continuous-sample", "tcp-sample"} {
		if want := "trafficgenerator.xdpgen.io/" + name + " created"; !strings.Contains(out, want) {
			t.Errorf("kubectl apply output lacks %q", want)
		}
	}
	// One TrafficGenerator per sample file (and the objects some of them need, such as a replay's ConfigMap).
	sampleFiles, _ := filepath.Glob(samples + "*.yaml")
	out, err = run("apply", "-f", samples)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if err != nil || strings.Count(out, "unchanged") != len(lines) || strings.Count(out, "trafficgenerator.xdpgen.io/") != len(sampleFiles) {
		t.Errorf("applying the samples again: err %v, want every object unchanged, one TrafficGenerator per sample", err)
	}

	out, err = run("apply", "-f", filepath.Join("testdata", "broken_trafficgen.yaml"))
	if err == nil {
		t.Fatalf("kubectl apply of the broken sample succeeded; want it refused")
	}
	for _, want := range []string{
		`The TrafficGenerator "broken-sample" is invalid`,
		"destination.address and source.address must both be IPv4 or both IPv6",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("kubectl apply of the broken sample: output lacks %q", want)
		}
	}

	out, err = run("get", "tg")
	if err != nil {
		t.Fatalf("kubectl get tg: %v", err)
	}
	header := strings.Fields(strings.SplitN(out, "\n", 2)[0])
	if want := []string{"NAME", "PHASE", "NODES", "RATE", "PACKETS", "LOSS", "AGE"}; strings.Join(header, " ") != strings.Join(want, " ") {
		t.Errorf("kubectl get tg columns = %v, want %v", header, want)
	}
	out, err = run("get", "trafficgenerators", "-o", "wide")
	if err != nil || !strings.Contains(out, "DESTINATION") || !strings.Contains(out, "fd00:200::2") {
		t.Errorf("kubectl get -o wide: err %v, want a DESTINATION column with the samples' addresses", err)
	}
	if _, err := run("get", "tgnr"); err != nil {
		t.Errorf("kubectl get tgnr: %v", err)
	}

	// The whole installation (CRDs, RBAC, the manager Deployment) is accepted by the API server.
	// Its TrafficGenerator admission policy would refuse the generators of the other tests, in namespaces without a
	// TrafficGeneratorPolicy: it goes when this test ends.
	t.Cleanup(func() { removeGeneratorPolicy(t) })
	// The TrafficGeneratorPolicy comes with its CRD: kubectl maps it once the CRD is established (envtest has
	// installed the CRDs already).
	if _, err := run("--namespace=xdpgen-system", "apply", "-k", filepath.Join("..", "config", "default")); err != nil {
		t.Fatalf("kubectl apply -k config/default: %v", err)
	}
	for _, obj := range [][]string{
		{"deployment/xdpgen-controller-manager"},
		{"serviceaccount/xdpgen-agent"},
		{"rolebinding/xdpgen-agent"},
		{"role/xdpgen-leader-election"},
		{"clusterrole/xdpgen-manager"},
		{"clusterrole/xdpgen-agent"},
		{"trafficgeneratorpolicy/default"},
		{"validatingadmissionpolicy/xdpgen-trafficgenerator-policy"},
	} {
		if _, err := run(append([]string{"--namespace=xdpgen-system", "get"}, obj...)...); err != nil {
			t.Errorf("kubectl get %s after apply -k config/default: %v", strings.Join(obj, " "), err)
		}
	}
}
