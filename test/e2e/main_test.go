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

// Package e2e tests xdpgen as a user runs it: on a real two-node Kubernetes (test/cluster: the host, and node2 in
// network namespaces of its own) with the kubelets running our image, installed with the project's manifests
// (config/local, through test/e2e/install), driven with kubectl, sending over a veth pair into a network namespace
// that stands in for a remote host and counts what arrives. Each node has one long-lived agent (the DaemonSet
// xdpgen-agent) that runs every TrafficGenerator selecting the node. Most tests run on the first node;
// TestEveryNodeSends and TestNodeLost use both. TestInstallUninstall and TestInstallRelease (from the files of a
// release: install.yaml, the packaged chart, the image archive) install it other ways, and put it back.
//
// The tests need root and the Kubernetes binaries of `make k8s-bins`; without them they skip, unless
// XDPGEN_REQUIRE_PRIVILEGED=1 (CI), which makes that a failure. TestMain brings the cluster up once and tears it
// down at the end, also when a test fails, on Ctrl-C, and before `go test -timeout` would kill the process; then
// it checks that the host is as it was.
package e2e

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	xdpgenv1alpha1 "github.com/xdpgen/xdpgen/api/v1alpha1"
	"github.com/xdpgen/xdpgen/test/cluster"
	"github.com/xdpgen/xdpgen/test/k8sversion"
)

const (
	// pollInterval is how often the tests look at the cluster while they wait for it.
	pollInterval = 200 * time.Millisecond
	// clusterDir is the e2e cluster's run folder, apart from `make cluster-up`'s.
	clusterDir = "/run/xdpgen-e2e"
	// namespace is where config/local installs xdpgen, and where the agents' service account is bound.
	namespace = "xdpgen-system"
	// kustomization is what the tests install (config/local with a short node-lost timeout, a second namespace
	// for generators, and agent pods configured by a patch), relative to the repository.
	kustomization = "test/e2e/install"
	image         = "ghcr.io/xdpgen/xdpgen:dev"
)

// env is the running cluster, or nil when the tests skip (skipReason says why).
var (
	env        *clusterEnv
	skipReason string
)

type clusterEnv struct {
	root    string // the repository
	cluster *cluster.Cluster
	kubectl string
	client  client.Client
	clients *kubernetes.Clientset
}

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	root, err := filepath.Abs("../..")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	binDir := filepath.Join(root, "bin", "k8s", k8sversion.Version)
	if reason := missingPrerequisite(binDir); reason != "" {
		if os.Getenv("XDPGEN_REQUIRE_PRIVILEGED") == "1" {
			fmt.Fprintf(os.Stderr, "e2e: XDPGEN_REQUIRE_PRIVILEGED=1 but %s\n", reason)
			return 1
		}
		skipReason = reason + " (set XDPGEN_REQUIRE_PRIVILEGED=1 to make this a failure)"
		return m.Run()
	}
	// One run at a time: two would share the cluster's ports and fixed paths. A killed run's lock goes with it;
	// its cluster is torn down below, before the host's state is recorded.
	lock, err := os.OpenFile(clusterDir+".lock", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: another end-to-end run holds %s: wait for it to finish\n", lock.Name())
		return 1
	}
	defer os.Remove(lock.Name())
	if _, err := os.Stat(filepath.Join(cluster.DefaultDir, "state.json")); err == nil {
		fmt.Fprintf(os.Stderr, "e2e: a local cluster runs in %s and would hold every port: `make cluster-down` first\n", cluster.DefaultDir)
		return 1
	}

	// Holding the lock, a cluster in clusterDir and far hosts are a killed run's: removed now, so that the host's
	// "before" is the host's and not theirs (a kubelet's sysctls, pods' mounts, agents' pins, veths). Down goes on
	// past what it cannot do and says so; whatever it left is then in "before", and its later going in the diff.
	removeKilledRunsFarHosts()
	if err := cluster.Down(clusterDir, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: tearing down what a killed run left in %s: %v\n", clusterDir, err)
	}

	tmp, err := os.MkdirTemp("", "xdpgen-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(tmp)
	images, err := buildImages(root, tmp)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}

	// Ctrl-C or SIGTERM: stop what is under way (a starting cluster tears itself down), tear down, exit.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	upDone := make(chan struct{})

	before := cluster.Fingerprint()
	var once sync.Once
	code := 0
	teardown := func() {
		once.Do(func() {
			removeFarHosts()
			start := time.Now()
			if err := cluster.Down(clusterDir, os.Stderr); err != nil {
				fmt.Fprintln(os.Stderr, "e2e: teardown:", err)
				code = 1
			}
			fmt.Fprintf(os.Stderr, "e2e: cluster down in %.1f s\n", time.Since(start).Seconds())
			if d := cluster.DiffFingerprints(before, cluster.Fingerprint()); len(d) > 0 {
				fmt.Fprintf(os.Stderr, "e2e: the host differs from before the cluster (- gone, + left behind):\n    %s\n",
					strings.Join(d, "\n    "))
				code = 1
			}
		})
	}
	go func() {
		if _, ok := <-sigs; !ok {
			return
		}
		fmt.Fprintln(os.Stderr, "e2e: interrupted: tearing down")
		cancel()
		<-upDone
		teardown()
		os.Exit(130)
	}()

	start := time.Now()
	c, err := cluster.Up(ctx, cluster.Options{Dir: clusterDir, BinDir: binDir, Images: images, InstallPackages: true})
	close(upDone)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: local cluster:", err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "e2e: cluster up in %.1f s\n", time.Since(start).Seconds())
	defer teardown()
	// `go test -timeout` panics and exits without deferred calls: tear down a minute before it would.
	if t := flag.Lookup("test.timeout"); t != nil {
		if d, err := time.ParseDuration(t.Value.String()); err == nil && d > 2*time.Minute {
			timer := time.AfterFunc(d-time.Minute, func() {
				fmt.Fprintln(os.Stderr, "e2e: the test timeout is a minute away: tearing down")
				teardown()
				os.Exit(1)
			})
			defer timer.Stop()
		}
	}

	env, err = newClusterEnv(ctx, root, binDir, c)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	if c := m.Run(); c != 0 {
		env.dumpState()
		logs := filepath.Join(os.TempDir(), "xdpgen-e2e-logs-"+time.Now().Format("150405"))
		if err := env.cluster.SaveLogs(logs); err == nil {
			fmt.Fprintf(os.Stderr, "e2e: the cluster's logs are in %s\n", logs)
		}
		teardown()
		return c
	}
	teardown()
	return code
}

// missingPrerequisite says why the tests cannot run here, or "".
func missingPrerequisite(binDir string) string {
	if os.Geteuid() != 0 {
		return "the e2e tests need root (a kubelet, containers, network namespaces, BPF)"
	}
	for _, b := range []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kubectl"} {
		if _, err := os.Stat(filepath.Join(binDir, b)); err != nil {
			return fmt.Sprintf("%s is not in %s: run `make k8s-bins` (~20 min the first time)", b, binDir)
		}
	}
	return ""
}

// buildImages builds our image (the manager and the agent, as `make image`) and the pause image into dir, from
// the working tree, so the cluster always runs the code under test.
func buildImages(root, dir string) ([]string, error) {
	builds := []struct {
		tar, tag string
		bins     []string
	}{
		{filepath.Join(dir, "xdpgen.tar"), image, []string{"manager=./cmd/manager", "agent=./cmd/agent"}},
		{filepath.Join(dir, "pause.tar"), cluster.PauseImage, []string{"pause=./test/cluster/pause"}},
	}
	var tars []string
	for _, b := range builds {
		start := time.Now()
		cmd := exec.Command("go", append([]string{"run", "./hack/image", "-o", b.tar, "-tag", b.tag}, b.bins...)...)
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		if err != nil {
			return nil, fmt.Errorf("build %s: %w\n%s", b.tag, err, out)
		}
		fmt.Fprintf(os.Stderr, "e2e: built %s in %.1f s\n", b.tag, time.Since(start).Seconds())
		tars = append(tars, b.tar)
	}
	return tars, nil
}

func newClusterEnv(ctx context.Context, root, binDir string, c *cluster.Cluster) (*clusterEnv, error) {
	cfg, err := c.RESTConfig()
	if err != nil {
		return nil, err
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, err
	}
	if err := xdpgenv1alpha1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	cl, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	e := &clusterEnv{root: root, cluster: c, kubectl: filepath.Join(binDir, "kubectl"), client: cl, clients: cs}

	// Install as a user would: the project's manifests, applied with kubectl.
	start := time.Now()
	if err := e.applyKustomization(filepath.Join(root, kustomization)); err != nil {
		return nil, err
	}
	if out, err := e.run("-n", namespace, "rollout", "status", "deployment/xdpgen-controller-manager", "--timeout=120s"); err != nil {
		e.dumpState()
		return nil, fmt.Errorf("the manager did not become available: %w\n%s", err, out)
	}
	var dep appsv1.Deployment
	if err := cl.Get(ctx, client.ObjectKey{Namespace: namespace, Name: "xdpgen-controller-manager"}, &dep); err != nil {
		return nil, err
	}
	fmt.Fprintf(os.Stderr, "e2e: xdpgen installed and its manager available in %.1f s\n", time.Since(start).Seconds())
	return e, nil
}

// run runs kubectl against the cluster and returns its combined output.
func (e *clusterEnv) run(args ...string) (string, error) {
	return e.runStdin(nil, args...)
}

func (e *clusterEnv) runStdin(stdin []byte, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.kubectl, append([]string{"--kubeconfig", e.cluster.Kubeconfig()}, args...)...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// dumpState prints what a failure needs to be understood: the objects, the manager's log, the kubelet's errors.
func (e *clusterEnv) dumpState() {
	fmt.Fprintln(os.Stderr, "e2e: state of the cluster:")
	for _, args := range [][]string{
		{"get", "tg,tgnr,ds,pods", "-A", "-o", "wide"},
		{"-n", namespace, "logs", "deployment/xdpgen-controller-manager", "--tail=40"},
		{"get", "events", "-A", "--sort-by=.lastTimestamp"},
	} {
		out, _ := e.run(args...)
		fmt.Fprintf(os.Stderr, "$ kubectl %s\n%s\n", strings.Join(args, " "), out)
	}
}

// requireCluster skips a test when the cluster could not be brought up for a reason TestMain accepted.
func requireCluster(t *testing.T) *clusterEnv {
	t.Helper()
	if env == nil {
		t.Skip(skipReason)
	}
	return env
}

// applyKustomization applies a kustomization with kubectl apply --server-side -k. It holds the
// TrafficGeneratorPolicies with their CRD, which kubectl cannot map on a cluster without the CRD: once the CRD is
// established, a second apply creates them.
func (e *clusterEnv) applyKustomization(kustomization string) error {
	out, err := e.run("apply", "--server-side", "-k", kustomization)
	if err == nil {
		return nil
	}
	if wout, werr := e.run("wait", "--for=condition=Established", "--timeout=60s", "crd/trafficgeneratorpolicies.xdpgen.io"); werr != nil {
		return fmt.Errorf("kubectl apply -k %s: %w\n%s\n%s", kustomization, err, out, wout)
	}
	if out, err := e.run("apply", "--server-side", "-k", kustomization); err != nil {
		return fmt.Errorf("kubectl apply -k %s: %w\n%s", kustomization, err, out)
	}
	return nil
}
