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
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	xdpgenv1alpha1 "github.com/xdpgen/xdpgen/api/v1alpha1"
	"github.com/xdpgen/xdpgen/test/k8senv"
)

// The envtest suites of this package share one control plane (a real etcd and kube-apiserver, see test/k8senv),
// started in TestMain. Without the binaries those tests skip, and fail instead when XDPGEN_REQUIRE_ENVTEST=1 or
// XDPGEN_REQUIRE_PRIVILEGED=1 (CI).
var (
	testEnv    *k8senv.Env
	envErr     error
	cfg        *rest.Config
	k8sClient  client.Client
	testScheme = k8senv.Scheme
)

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	// The controllers under test log errors only, unless XDPGEN_TEST_LOG=debug.
	level := zapcore.ErrorLevel
	if os.Getenv("XDPGEN_TEST_LOG") == "debug" {
		level = zapcore.DebugLevel
	}
	logf.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.Level(level)))

	start := time.Now()
	testEnv, envErr = k8senv.Start("..")
	if envErr != nil {
		if !errors.Is(envErr, k8senv.ErrMissing) {
			fmt.Fprintln(os.Stderr, "envtest:", envErr)
			return 1
		}
		return m.Run()
	}
	fmt.Fprintf(os.Stderr, "envtest: control plane up in %s\n", time.Since(start).Round(time.Millisecond))
	defer func() {
		if err := testEnv.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "envtest: stop the control plane:", err)
		}
	}()
	cfg = testEnv.Config
	var err error
	k8sClient, err = client.New(cfg, client.Options{Scheme: testScheme})
	if err != nil {
		fmt.Fprintln(os.Stderr, "envtest: client:", err)
		return 1
	}
	return m.Run()
}

// requireEnvtest skips a test that needs the control plane when it is not there, or fails it when the
// environment says the control plane must be there.
func requireEnvtest(t *testing.T) {
	t.Helper()
	k8senv.Require(t, testEnv, envErr)
}

// testNamespace creates a namespace of its own for a test. envtest runs no namespace controller, so namespaces
// are never removed; their names are unique.
func testNamespace(t *testing.T, prefix string) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: prefix + "-"}}
	if err := k8sClient.Create(context.Background(), ns); err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	return ns.Name
}

// startManager runs the TrafficGenerator controller in a manager of its own that watches only namespace ns, until
// the test ends. wrap, when not nil, wraps the controller's client (to count its writes).
func startManager(t *testing.T, ns string, interval time.Duration, wrap func(client.Client) client.Client) *TrafficGeneratorReconciler {
	t.Helper()
	return startManagerAs(t, cfg, ns, interval, 0, wrap)
}

// startManagerAs is startManager with the manager's credentials in restConfig and a node-lost timeout (zero: the
// default).
func startManagerAs(t *testing.T, restConfig *rest.Config, ns string, interval, lostAfter time.Duration, wrap func(client.Client) client.Client) *TrafficGeneratorReconciler {
	t.Helper()
	r, _ := startStoppableManager(t, restConfig, ns, interval, lostAfter, wrap)
	return r
}

// startStoppableManager is startManagerAs that also returns a function stopping the manager before the test
// ends (a manager restart, with the next one started anew).
func startStoppableManager(t *testing.T, restConfig *rest.Config, ns string, interval, lostAfter time.Duration,
	wrap func(client.Client) client.Client) (*TrafficGeneratorReconciler, func()) {
	t.Helper()
	mgr, err := ctrl.NewManager(restConfig, ctrl.Options{
		Scheme:                 testScheme,
		Cache:                  cache.Options{DefaultNamespaces: map[string]cache.Config{ns: {}}},
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		// Every test has a manager of its own with a controller of the same name.
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		t.Fatalf("create manager: %v", err)
	}
	c := mgr.GetClient()
	if wrap != nil {
		c = wrap(c)
	}
	r := &TrafficGeneratorReconciler{
		Client:          c,
		Recorder:        mgr.GetEventRecorder("xdpgen-manager"),
		StatusInterval:  interval,
		NodeLostTimeout: lostAfter,
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := r.SetupWithManager(ctx, mgr); err != nil {
		cancel()
		t.Fatalf("set up controller: %v", err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := mgr.Start(ctx); err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("manager: %v", err)
		}
	}()
	stop := func() {
		cancel()
		wg.Wait()
	}
	t.Cleanup(stop)
	return r, stop
}

// createNodes creates Linux Nodes of the given names, labelled so that a selector of {testNodeLabel: ns} picks
// exactly them, and deletes them when the test ends. Nodes are cluster-wide and the tests share one control plane:
// every test gives its TrafficGenerators such a selector of its own.
func createNodes(t *testing.T, ns string, names ...string) {
	t.Helper()
	ctx := context.Background()
	t.Cleanup(func() {
		_ = k8sClient.DeleteAllOf(context.Background(), &corev1.Node{}, client.MatchingLabels(testNodeSelector(ns)))
	})
	// Many Nodes: a client that does not throttle itself.
	fast := rest.CopyConfig(cfg)
	fast.QPS, fast.Burst = 5000, 5000
	c, err := client.New(fast, client.Options{Scheme: testScheme})
	if err != nil {
		t.Fatal(err)
	}
	const workers = 64
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(names); i += workers {
				n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: names[i], Labels: map[string]string{
					corev1.LabelOSStable: "linux", testNodeLabel: ns,
				}}}
				if err := c.Create(ctx, n); err != nil {
					errs <- fmt.Errorf("create Node %s: %w", names[i], err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
}

// testNodeLabel labels a test's Nodes with the test's namespace.
const testNodeLabel = "xdpgen.io/test"

// testNodeSelector selects the Nodes createNodes made for namespace ns.
func testNodeSelector(ns string) map[string]string {
	return map[string]string{testNodeLabel: ns}
}

// generatorOnTestNodes is a TrafficGenerator of namespace ns that selects the Nodes createNodes made for ns, with
// the run's bound (duration, packets or continuous) set by bound.
func generatorOnTestNodes(ns, name string, bound func(*xdpgenv1alpha1.TrafficGeneratorSpec)) *xdpgenv1alpha1.TrafficGenerator {
	tg := &xdpgenv1alpha1.TrafficGenerator{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: xdpgenv1alpha1.TrafficGeneratorSpec{
			NodeSelector: testNodeSelector(ns),
			Destination:  xdpgenv1alpha1.Destination{Address: "10.200.0.2"},
		},
	}
	bound(&tg.Spec)
	return tg
}
