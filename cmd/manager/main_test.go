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

package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	xdpgenv1alpha1 "github.com/xdpgen/xdpgen/api/v1alpha1"
	"github.com/xdpgen/xdpgen/test/k8senv"
	"github.com/xdpgen/xdpgen/test/poll"
	"github.com/xdpgen/xdpgen/test/selfexec"
)

// The test binary doubles as the manager (selfexec), so that the tests exercise main's flags and wiring as a
// process.
func TestMain(m *testing.M) { selfexec.Main(m, main) }

func TestManagerRejectsBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--status-interval=0s"}, "--status-interval=0s: want a positive duration"},
		{[]string{"--node-lost-timeout=-1s"}, "--node-lost-timeout=-1s: want a positive duration"},
		{[]string{"--agent-image=x"}, "flag provided but not defined: -agent-image"},
	} {
		cmd, out := selfexec.Command(tc.args...)
		err := cmd.Run()
		if err == nil || !strings.Contains(out.String(), tc.want) {
			t.Errorf("manager %v: err %v, output %q; want a failure saying %q", tc.args, err, out, tc.want)
		}
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func httpGet(url string) (int, string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// TestManagerProcess runs the manager as a process against a real API server: it serves its probes and metrics,
// takes the leader election Lease, runs the controller (which expects the run on the Nodes the selector matches and
// loses a node that never reports after its --node-lost-timeout), and exits cleanly on SIGTERM.
func TestManagerProcess(t *testing.T) {
	env := k8senv.StartForTest(t, filepath.Join("..", ".."))
	c, err := client.New(env.Config, client.Options{Scheme: k8senv.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	kubeconfigPath := env.UserKubeconfig(t, envtest.User{Name: "manager", Groups: []string{"system:masters"}})

	health, metrics := freePort(t), freePort(t)
	cmd, out := selfexec.Command(
		"--kubeconfig="+kubeconfigPath,
		"--leader-elect", "--leader-election-namespace=default",
		fmt.Sprintf("--health-probe-bind-address=127.0.0.1:%d", health),
		fmt.Sprintf("--metrics-bind-address=127.0.0.1:%d", metrics),
		"--status-interval=500ms",
		"--node-lost-timeout=2s",
	)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = cmd.Process.Kill()
			<-exited //nolint:errcheck // killed: its exit status says nothing
		}
		if t.Failed() {
			t.Logf("manager output:\n%s", out)
		}
	})

	for _, path := range []string{"/healthz", "/readyz"} {
		url := fmt.Sprintf("http://127.0.0.1:%d%s", health, path)
		poll.Until(t, 30*time.Second, 100*time.Millisecond, "GET "+url, func() error {
			code, body, err := httpGet(url)
			if err == nil && code != http.StatusOK {
				err = fmt.Errorf("status %d: %s", code, body)
			}
			return err
		})
	}

	ctx := context.Background()
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "sender-1", Labels: map[string]string{
		corev1.LabelOSStable: "linux", "xdpgen.io/sender": "true",
	}}}
	if err := c.Create(ctx, node); err != nil {
		t.Fatal(err)
	}
	tg := &xdpgenv1alpha1.TrafficGenerator{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "udp"},
		Spec: xdpgenv1alpha1.TrafficGeneratorSpec{
			NodeSelector: map[string]string{"xdpgen.io/sender": "true"},
			Destination:  xdpgenv1alpha1.Destination{Address: "10.200.0.2"},
			Duration:     &metav1.Duration{Duration: time.Minute},
		},
	}
	if err := c.Create(ctx, tg); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 30*time.Second, 100*time.Millisecond, "the run expecting the selected Node, which never reports and is lost after --node-lost-timeout", func() error {
		cur := &xdpgenv1alpha1.TrafficGenerator{}
		if err := c.Get(ctx, client.ObjectKeyFromObject(tg), cur); err != nil {
			return err
		}
		if st := cur.Status; st.NodesTotal != 1 || st.NodesLost != 1 || st.Phase != xdpgenv1alpha1.PhaseFailed {
			return fmt.Errorf("status %+v", st)
		}
		return nil
	})
	poll.Until(t, 10*time.Second, 100*time.Millisecond, "the leader election Lease", func() error {
		return c.Get(ctx, client.ObjectKey{Namespace: "default", Name: "xdpgen-manager.xdpgen.io"}, &coordinationv1.Lease{})
	})
	metricsURL := fmt.Sprintf("http://127.0.0.1:%d/metrics", metrics)
	poll.Until(t, 10*time.Second, 100*time.Millisecond, "GET "+metricsURL, func() error {
		_, body, err := httpGet(metricsURL)
		if err != nil {
			return err
		}
		for _, want := range []string{"xdpgen_trafficgenerator_status_writes_total", `controller_runtime_reconcile_total{controller="trafficgenerator"`} {
			if !strings.Contains(body, want) {
				return fmt.Errorf("no %s in the metrics", want)
			}
		}
		return nil
	})

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		stopped = true
		if err != nil {
			t.Errorf("manager exited with %v after SIGTERM, want 0", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("manager still running 30s after SIGTERM")
	}
}
