package agent_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vishvananda/netns"
	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
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

// fixture is one node: a veth pair whose far end counts the generator's frames, a namespace for objects, and a
// bpffs directory for the agents' pins. Its nodes carry a label of the fixture, which its generators select: an
// agent of one test never runs the generators of another.
type fixture struct {
	t         *testing.T
	pair      *netnstest.Pair
	rx        *dataplane.Receiver
	namespace string
	pinDir    string
	// hostOf places a node's agent in a namespace of its own; the others send from the pair's local end.
	hostOf map[string]netnstest.Host
	// cpus are the CPUs the fixture's agents send from; nil: every CPU the test may use.
	cpus []int
}

// fixtureLabel is the label a fixture's nodes carry and its generators select.
const fixtureLabel = "test.xdpgen.io/fixture"

func newFixture(t *testing.T) *fixture {
	t.Helper()
	netnstest.RequirePrivileges(t)
	k8senv.Require(t, env, envErr)
	f := &fixture{t: t, pair: netnstest.NewPair(t, netnstest.Options{})}
	if err := netnstest.Do(f.pair.Remote.NS, func() (err error) {
		f.rx, err = dataplane.AttachReceiver(f.pair.Remote.Interface, dataplane.ReceiverOptions{FirstPort: 1, LastPort: 65535})
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
	f.pinDir = bpffsDir(t)
	return f
}

// bpffsDir is a directory on a bpffs for the test's pins: under /sys/fs/bpf when a bpffs is mounted there, else
// on a bpffs mounted for the test. What runs the test stopped mid-run left in it goes with it. Like the agent's
// own, it is a directory of its own on the bpffs.
func bpffsDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(netnstest.BPFFSDir(t), "xdpgen")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	return dir
}

// pins lists the run directories in the fixture's pin directory.
func (f *fixture) pins() []string {
	f.t.Helper()
	entries, err := os.ReadDir(f.pinDir)
	if err != nil {
		f.t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// requireNoPins waits for the runs' pins to be removed.
func (f *fixture) requireNoPins() {
	f.t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for len(f.pins()) > 0 {
		if time.Now().After(deadline) {
			f.t.Fatalf("pins left behind: %v", f.pins())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// node is the fixture's node called name (made once, labelled for the fixture): where an agent runs.
func (f *fixture) node(name string) string {
	f.t.Helper()
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: f.namespace + "-" + name, Labels: map[string]string{fixtureLabel: f.namespace, corev1.LabelOSStable: "linux"}}}
	if err := k8s.Create(f.t.Context(), node); err != nil && !apierrors.IsAlreadyExists(err) {
		f.t.Fatal(err)
	}
	return node.Name
}

// generator creates a TrafficGenerator aimed at the far end of the pair.
func (f *fixture) generator(name string, spec func(*xdpgenv1alpha1.TrafficGeneratorSpec)) *xdpgenv1alpha1.TrafficGenerator {
	f.t.Helper()
	tg := &xdpgenv1alpha1.TrafficGenerator{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: f.namespace},
		Spec: xdpgenv1alpha1.TrafficGeneratorSpec{
			Destination:  xdpgenv1alpha1.Destination{Address: f.pair.Remote.IPv4.String()},
			Packets:      ptr.To[int64](5000),
			NodeSelector: map[string]string{fixtureLabel: f.namespace},
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

// pacedGenerator creates a TrafficGenerator of total packets at pps.
func (f *fixture) pacedGenerator(name string, total, pps int64) *xdpgenv1alpha1.TrafficGenerator {
	f.t.Helper()
	return f.generator(name, func(s *xdpgenv1alpha1.TrafficGeneratorSpec) {
		s.Packets = ptr.To(total)
		s.Rate = &xdpgenv1alpha1.Rate{PacketsPerSecond: ptr.To(pps)}
	})
}

// startAgent runs an agent on the fixture's node `node` until the returned stop is called (or the test ends).
// restCfg is the API server to talk to (nil: the test's).
func (f *fixture) startAgent(node string, restCfg *rest.Config) (stop func()) {
	f.t.Helper()
	_, stop = f.startAgentOf(node, restCfg)
	return stop
}

func (f *fixture) startAgentOf(node string, restCfg *rest.Config) (a *agent.Agent, stop func()) {
	f.t.Helper()
	if restCfg == nil {
		restCfg = env.Config
	}
	mgr, err := ctrl.NewManager(restCfg, ctrl.Options{
		Scheme:                 k8senv.Scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Client: client.Options{Cache: &client.CacheOptions{DisableFor: []client.Object{&xdpgenv1alpha1.NodeReport{},
			&xdpgenv1alpha1.TrafficGeneratorPolicy{}}}},
		// Several agents (a manager each) live in this process: their controllers share a name.
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		f.t.Fatal(err)
	}
	a, err = agent.New(agent.Options{NodeName: f.node(node), PodName: "pod-of-" + node,
		ReportInterval: 300 * time.Millisecond, NetNS: f.agentNS(node), PinDir: f.pinDir, CPUs: f.cpus}, mgr.GetClient(), mgr.GetAPIReader())
	if err != nil {
		f.t.Fatal(err)
	}
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
	return a, stop
}

// agentNS is the network namespace node's agent sends (and receives) in.
func (f *fixture) agentNS(node string) netns.NsHandle {
	if h, ok := f.hostOf[node]; ok {
		return h.NS
	}
	return f.pair.Local.NS
}

// report waits until the node's report satisfies cond, and returns it.
func (f *fixture) report(tg *xdpgenv1alpha1.TrafficGenerator, node string, within time.Duration, what string,
	cond func(*xdpgenv1alpha1.NodeReport) bool) *xdpgenv1alpha1.NodeReport {
	f.t.Helper()
	key := client.ObjectKey{Namespace: tg.Namespace, Name: xdpgenv1alpha1.NodeReportName(tg.Name, f.node(node))}
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
	c, err := f.rx.Counts()
	if err != nil {
		f.t.Fatal(err)
	}
	return c.Matched.Packets
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
