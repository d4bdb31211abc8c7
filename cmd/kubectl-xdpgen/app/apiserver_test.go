package app

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	xdpgenv1alpha1 "github.com/xdpgen/xdpgen/api/v1alpha1"
	"github.com/xdpgen/xdpgen/test/k8senv"
	"github.com/xdpgen/xdpgen/test/k8sversion"
	"github.com/xdpgen/xdpgen/test/manifest"
)

const repoRoot = "../../.."

// TestResultsFromAPIServer runs the plugin against a real kube-apiserver through a kubeconfig file: a mesh
// TrafficGenerator at generation 2 with NodeReports of generations 1 and 2 (and another generator's report beside
// them) prints the generation-2 matrix only, sorted, with its unsettled path marked; a missing generator and a
// user without rights get errors that name the generator and the fix; a user with xdpgen's viewer role may read.
func TestResultsFromAPIServer(t *testing.T) {
	env := k8senv.StartForTest(t, repoRoot)
	ctx := context.Background()
	c, err := client.New(env.Config, client.Options{Scheme: k8senv.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	const ns = "load"
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}

	tg := &xdpgenv1alpha1.TrafficGenerator{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "mesh"},
		Spec: xdpgenv1alpha1.TrafficGeneratorSpec{
			Receivers: &xdpgenv1alpha1.Receivers{},
			Duration:  &metav1.Duration{Duration: 10 * time.Second},
		},
	}
	if err := c.Create(ctx, tg); err != nil {
		t.Fatalf("create TrafficGenerator: %v", err)
	}
	// A new spec: generation 2, whose run replaces generation 1's.
	tg.Spec.Duration = &metav1.Duration{Duration: 20 * time.Second}
	if err := c.Update(ctx, tg); err != nil {
		t.Fatal(err)
	}
	if tg.Generation != 2 {
		t.Fatalf("generation after the spec update = %d, want 2", tg.Generation)
	}
	tg.Status = xdpgenv1alpha1.TrafficGeneratorStatus{
		Phase: xdpgenv1alpha1.PhaseRunning, ObservedGeneration: 2,
		Totals: xdpgenv1alpha1.Totals{Packets: 2000, Bytes: 128000, ReceivedPackets: 1990, LostPackets: 4,
			LossRatio: "0.002"},
		Latency: latency(3, 1048576, 2*time.Millisecond, 3*time.Millisecond, 3*time.Millisecond, 3*time.Millisecond),
	}
	if err := c.Status().Update(ctx, tg); err != nil {
		t.Fatalf("write the TrafficGenerator's status: %v", err)
	}
	writeReport := func(generator, node string, st xdpgenv1alpha1.NodeReportStatus) {
		t.Helper()
		r := &xdpgenv1alpha1.NodeReport{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: xdpgenv1alpha1.NodeReportName(generator, node),
				Labels: map[string]string{
					xdpgenv1alpha1.LabelGenerator: xdpgenv1alpha1.LabelValue(generator),
					xdpgenv1alpha1.LabelNode:      xdpgenv1alpha1.LabelValue(node),
				}},
			Spec: xdpgenv1alpha1.NodeReportSpec{Generator: generator, NodeName: node},
		}
		if err := c.Create(ctx, r); err != nil {
			t.Fatalf("create NodeReport %s: %v", r.Name, err)
		}
		r.Status = st
		if err := c.Status().Update(ctx, r); err != nil {
			t.Fatalf("write NodeReport %s's status: %v", r.Name, err)
		}
	}
	ms := time.Millisecond
	writeReport("mesh", "node-b", xdpgenv1alpha1.NodeReportStatus{Generation: 2, Phase: xdpgenv1alpha1.PhaseRunning,
		Packets: 1000, Bytes: 64000,
		Sent: []xdpgenv1alpha1.SentPath{{Receiver: "node-a", Address: "192.0.2.1", Packets: 1000,
			RTT: latency(1, 3*ms, 3*ms, 3*ms, 3*ms, 3*ms)}},
		Received: []xdpgenv1alpha1.PathResult{{Sender: "node-a", Receiver: "node-b", SentPackets: 1000,
			ReceivedPackets: 996, ReceivedBytes: 63744, LostPackets: 4, LossRatio: "0.004", Settled: true,
			RTT: latency(2, 1*ms, 1*ms, 1*ms, 1*ms, 2*ms)}},
	})
	writeReport("mesh", "node-a", xdpgenv1alpha1.NodeReportStatus{Generation: 2, Phase: xdpgenv1alpha1.PhaseCompleted,
		Packets: 1000, Bytes: 64000,
		Sent: []xdpgenv1alpha1.SentPath{{Receiver: "node-b", Address: "192.0.2.2", Packets: 1000}},
		Received: []xdpgenv1alpha1.PathResult{{Sender: "node-b", Receiver: "node-a", SentPackets: 900,
			ReceivedPackets: 994, ReceivedBytes: 63616, OutOfOrder: 2}},
	})
	// Generation 1's run on a node that left the run, and another generator's report in the same namespace.
	writeReport("mesh", "node-0", xdpgenv1alpha1.NodeReportStatus{Generation: 1, Phase: xdpgenv1alpha1.PhaseCompleted,
		Packets: 5,
		Received: []xdpgenv1alpha1.PathResult{{Sender: "node-a", Receiver: "node-0", SentPackets: 5, ReceivedPackets: 5,
			Settled: true}},
	})
	writeReport("other", "node-a", xdpgenv1alpha1.NodeReportStatus{Generation: 2, Phase: xdpgenv1alpha1.PhaseRunning,
		Received: []xdpgenv1alpha1.PathResult{{Sender: "node-z", Receiver: "node-a", ReceivedPackets: 1}},
	})

	admin := env.UserKubeconfig(t, envtest.User{Name: "admin", Groups: []string{"system:masters"}})
	out, err := runPlugin(t, "--kubeconfig", admin, "-n", ns, "results", "mesh")
	if err != nil {
		t.Fatalf("results mesh: %v", err)
	}
	want := strings.Join([]string{
		"Name:       load/mesh",
		"Phase:      Running (generation 2)",
		"Sent:       2000 packets",
		"Received:   1990 packets",
		"Lost:       4 packets (loss ratio 0.002)",
		"RTT:        p50 1.05ms, p99 3ms, max 3ms (3 samples)",
		"",
		"SENDER   RECEIVER   SENT   RECEIVED   LOST   LOSS    OUT-OF-ORDER   DUPLICATES   RTT-P50   RTT-P99   RTT-MAX   SETTLED",
		"node-a   node-b     1000   996        4      0.004   0              0            1ms       1ms       2ms       yes",
		"node-b   node-a     1000   994        0      0       2              0            3ms       3ms       3ms       no",
		"",
		"SETTLED no: the loss is not final (the sender is still sending, or the receiver's drain time has not passed): LOST counts the gaps in the sequence numbers so far.",
		"",
	}, "\n")
	if diff := cmp.Diff(want, out); diff != "" {
		t.Errorf("results mesh (-want +got):\n%s", diff)
	}

	out, err = runPlugin(t, "--kubeconfig", admin, "-n", ns, "results", "mesh", "-o", "json")
	if err != nil {
		t.Fatalf("results mesh -o json: %v", err)
	}
	for _, want := range []string{`"generation": 2`, `"sender": "node-b"`, `"settled": false`} {
		if !strings.Contains(out, want) {
			t.Errorf("results mesh -o json lacks %s:\n%s", want, out)
		}
	}

	t.Run("completion", func(t *testing.T) {
		out, err := runPlugin(t, "--kubeconfig", admin, "-n", ns, cobra.ShellCompRequestCmd, "results", "")
		if err != nil {
			t.Fatal(err)
		}
		if want := "mesh\n:4\n"; !strings.HasPrefix(out, want) {
			t.Errorf("completing results' name printed %q, want it to start with %q", out, want)
		}
	})

	t.Run("missing generator", func(t *testing.T) {
		_, err := runPlugin(t, "--kubeconfig", admin, "-n", ns, "results", "nosuch")
		requireError(t, err, `TrafficGenerator "nosuch" in namespace "load" not found`,
			"kubectl get trafficgenerators -n load lists")
	})

	t.Run("no reports yet", func(t *testing.T) {
		quiet := &xdpgenv1alpha1.TrafficGenerator{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "quiet"},
			Spec: xdpgenv1alpha1.TrafficGeneratorSpec{
				Destination: xdpgenv1alpha1.Destination{Address: "192.0.2.9", Port: 9, PortCount: 1},
				Packets:     ptr.To[int64](100),
			},
		}
		if err := c.Create(ctx, quiet); err != nil {
			t.Fatal(err)
		}
		_, err := runPlugin(t, "--kubeconfig", admin, "-n", ns, "results", "quiet")
		requireError(t, err, `TrafficGenerator "quiet" in namespace "load" (phase Pending) has no NodeReports of its generation 1 yet`,
			"check that the xdpgen agent runs")
	})

	t.Run("forbidden", func(t *testing.T) {
		nobody := env.UserKubeconfig(t, envtest.User{Name: "nobody"})
		_, err := runPlugin(t, "--kubeconfig", nobody, "-n", ns, "results", "mesh")
		requireError(t, err, `reading TrafficGenerator "mesh" in namespace "load" is forbidden: you may not get trafficgenerators`,
			"--clusterrole=xdpgen-trafficgenerator-viewer --user=<you> -n load")
	})

	t.Run("viewer role", func(t *testing.T) {
		var role *rbacv1.ClusterRole
		for _, o := range manifest.DecodeFile(t, filepath.Join(repoRoot, "config", "rbac", "trafficgenerator_viewer_role.yaml")) {
			if o.GetKind() == "ClusterRole" {
				role = &rbacv1.ClusterRole{}
				if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, role); err != nil {
					t.Fatal(err)
				}
			}
		}
		if role == nil {
			t.Fatal("no ClusterRole in config/rbac/trafficgenerator_viewer_role.yaml")
		}
		if err := c.Create(ctx, role); err != nil {
			t.Fatal(err)
		}
		if err := c.Create(ctx, &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "viewer"},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "viewer"}},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		}); err != nil {
			t.Fatal(err)
		}
		viewer := env.UserKubeconfig(t, envtest.User{Name: "viewer"})
		got, err := runPlugin(t, "--kubeconfig", viewer, "-n", ns, "results", "mesh")
		if err != nil {
			t.Fatalf("results mesh as a user with %s: %v", role.Name, err)
		}
		if got != want {
			t.Errorf("results mesh as a viewer differs from an admin's:\n%s", got)
		}
	})

	t.Run("through kubectl", func(t *testing.T) {
		kubectl := filepath.Join(repoRoot, "bin", "k8s", k8sversion.Version, "kubectl")
		if _, err := os.Stat(kubectl); err != nil {
			msg := "no kubectl at " + kubectl + " (make kubectl builds it)"
			k8senv.Missing(t, msg)
		}
		// kubectl finds the plugin as kubectl-xdpgen on PATH.
		dir := t.TempDir()
		build := exec.Command("go", "build", "-o", filepath.Join(dir, "kubectl-xdpgen"), "../")
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("go build the plugin: %v\n%s", err, out)
		}
		cmd := exec.Command(kubectl, "xdpgen", "results", "mesh", "--kubeconfig", admin, "-n", ns)
		cmd.Env = append(os.Environ(), "PATH="+dir+string(os.PathListSeparator)+os.Getenv("PATH"))
		got, err := cmd.Output()
		if err != nil {
			t.Fatalf("kubectl xdpgen results mesh: %v", err)
		}
		if diff := cmp.Diff(want, string(got)); diff != "" {
			t.Errorf("kubectl xdpgen results mesh (-want +got):\n%s", diff)
		}
	})
}

// runPlugin runs the plugin's command line in this process; err holds what it printed on stderr when it failed.
func runPlugin(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if code := Main(args, &stdout, &stderr); code != 0 {
		return stdout.String(), &exitError{code, stderr.String()}
	}
	if stderr.Len() > 0 {
		t.Logf("kubectl-xdpgen %s: stderr:\n%s", strings.Join(args, " "), stderr.String())
	}
	return stdout.String(), nil
}

type exitError struct {
	code   int
	stderr string
}

func (e *exitError) Error() string { return fmt.Sprintf("exit status %d: %s", e.code, e.stderr) }

func requireError(t *testing.T, err error, wants ...string) {
	t.Helper()
	if err == nil {
		t.Fatal("succeeded, want an error")
	}
	t.Logf("error, as expected: %v", err)
	for _, want := range wants {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}
