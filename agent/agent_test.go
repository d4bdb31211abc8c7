package agent_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/xdpgen/xdpgen/agent"
	"github.com/xdpgen/xdpgen/agent/dataplane"
	xdpgenv1alpha1 "github.com/xdpgen/xdpgen/api/v1alpha1"
	"github.com/xdpgen/xdpgen/test/k8senv"
	"github.com/xdpgen/xdpgen/test/netnstest"
	"github.com/xdpgen/xdpgen/test/poll"
)

// These tests run agents in this process against a real API server; each agent sends from a veth pair of its
// own, and the frames are counted by an XDP program on the far end. No controller runs: the tests read the
// NodeReports the agents write.

var (
	env    *k8senv.Env
	envErr error
	k8s    client.Client
)

func TestMain(m *testing.M) {
	// The agents log errors only, unless XDPGEN_TEST_LOG=debug.
	level := zapcore.ErrorLevel
	if os.Getenv("XDPGEN_TEST_LOG") == "debug" {
		level = zapcore.DebugLevel
	}
	logf.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.Level(level)))
	if os.Geteuid() == 0 {
		env, envErr = k8senv.Start("..")
	} else {
		envErr = fmt.Errorf("%w: not root", k8senv.ErrMissing)
	}
	if env != nil {
		var err error
		if k8s, err = client.New(env.Config, client.Options{Scheme: k8senv.Scheme}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	code := m.Run()
	if env != nil {
		_ = env.Stop()
	}
	os.Exit(code)
}

// fixture is one node: a veth pair whose far end counts the generator's frames, and a namespace for objects.
type fixture struct {
	t         *testing.T
	pair      *netnstest.Pair
	rx        *dataplane.RxCounter
	namespace string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	netnstest.RequirePrivileges(t)
	k8senv.Require(t, env, envErr)
	f := &fixture{t: t, pair: netnstest.NewPair(t, netnstest.Options{})}
	if err := netnstest.Do(f.pair.Remote.NS, func() (err error) {
		f.rx, err = dataplane.AttachRxCounter(f.pair.Remote.Interface, 1, 65535, false)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.rx.Close() })
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "agent-test-"}}
	if err := k8s.Create(t.Context(), ns); err != nil {
		t.Fatal(err)
	}
	f.namespace = ns.Name
	return f
}

// generator creates a TrafficGenerator aimed at the far end of the pair.
func (f *fixture) generator(name string, spec func(*xdpgenv1alpha1.TrafficGeneratorSpec)) *xdpgenv1alpha1.TrafficGenerator {
	f.t.Helper()
	tg := &xdpgenv1alpha1.TrafficGenerator{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: f.namespace},
		Spec: xdpgenv1alpha1.TrafficGeneratorSpec{
			Destination: xdpgenv1alpha1.Destination{Address: f.pair.Remote.IPv4.String()},
			Packets:     ptr.To[int64](5000),
		},
	}
	if spec != nil {
		spec(&tg.Spec)
	}
	if err := k8s.Create(f.t.Context(), tg); err != nil {
		f.t.Fatalf("create TrafficGenerator: %v", err)
	}
	return tg
}

// startAgent runs an agent for tg as node `node` until the returned stop is called (or the test ends). restCfg
// is the API server to talk to (nil: the test's).
func (f *fixture) startAgent(tg *xdpgenv1alpha1.TrafficGenerator, node string, restCfg *rest.Config) (stop func()) {
	f.t.Helper()
	if restCfg == nil {
		restCfg = env.Config
	}
	mgr, err := ctrl.NewManager(restCfg, ctrl.Options{
		Scheme:                 k8senv.Scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Client:                 client.Options{Cache: &client.CacheOptions{DisableFor: []client.Object{&xdpgenv1alpha1.NodeReport{}}}},
		// Several agents (a manager each) live in this process: their controllers share a name.
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		f.t.Fatal(err)
	}
	a := agent.New(agent.Options{Generator: tg.Name, Namespace: tg.Namespace, NodeName: node, PodName: "pod-of-" + node,
		ReportInterval: 300 * time.Millisecond, NetNS: f.pair.Local.NS}, mgr.GetClient())
	if err := a.SetupWithManager(mgr); err != nil {
		f.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	var stopped bool
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			f.t.Errorf("agent manager: %v", err)
		}
	}
	f.t.Cleanup(stop)
	return stop
}

// report waits until the node's report satisfies cond, and returns it.
func (f *fixture) report(tg *xdpgenv1alpha1.TrafficGenerator, node string, within time.Duration, what string,
	cond func(*xdpgenv1alpha1.NodeReport) bool) *xdpgenv1alpha1.NodeReport {
	f.t.Helper()
	key := client.ObjectKey{Namespace: tg.Namespace, Name: xdpgenv1alpha1.NodeReportName(tg.Name, node)}
	var rep xdpgenv1alpha1.NodeReport
	poll.Until(f.t, within, 50*time.Millisecond, "NodeReport "+key.Name+" "+what, func() error {
		if err := k8s.Get(f.t.Context(), key, &rep); err != nil {
			return fmt.Errorf("%+v (err %v)", rep.Status, err)
		}
		if !cond(&rep) {
			return fmt.Errorf("%+v", rep.Status)
		}
		return nil
	})
	return &rep
}

func (f *fixture) received() uint64 {
	m, _, err := f.rx.Counts()
	if err != nil {
		f.t.Fatal(err)
	}
	return m.Packets
}

func phase(p xdpgenv1alpha1.Phase) func(*xdpgenv1alpha1.NodeReport) bool {
	return func(r *xdpgenv1alpha1.NodeReport) bool { return r.Status.Phase == p }
}

func (f *fixture) requireNoXDP() {
	f.t.Helper()
	if f.pair.Local.XDPAttached(f.t) {
		f.t.Fatalf("an XDP program is still attached to %s", f.pair.Local.Interface)
	}
}
