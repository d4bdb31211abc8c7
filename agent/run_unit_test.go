package agent

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/xdpgen/xdpgen/agent/dataplane"
	xdpgenv1alpha1 "github.com/xdpgen/xdpgen/api/v1alpha1"
	"github.com/xdpgen/xdpgen/test/k8senv"
)

// These tests drive the agent's runs (Reconcile, execute, stop) with a fake engine and controller-runtime's fake
// client: no root, no veth, no API server. The tests in agent_test check the same runs with the real data plane.

// fakeFrameSize is the size of every frame a fake engine sends; fakePayloadSize the payload of each of a tcp fake
// engine's segments (the frame less the Ethernet, IPv4 and TCP headers). A tcp fake engine retransmits every
// fakeRetransmitEvery-th segment. The egress interface of every fake engine refuses every fakeEgressDropEvery-th
// frame.
const (
	fakeFrameSize       = 64
	fakePayloadSize     = 10
	fakeRetransmitEvery = 10
	fakeEgressDropEvery = 100
)

// fakeEngine stands in for the data plane: its Run sends what the test tells it to, and ends when told to.
type fakeEngine struct {
	// done is what the run was handed: what earlier incarnations of the agent did.
	done progress
	// packets and duration are what is left of the run, as the real engine is configured.
	packets  uint64
	duration time.Duration

	// cpus are the CPUs the run was given.
	cpus []int
	// tcp engines count their connections too.
	tcp bool
	// generator is the id the run's frames are stamped with, for a generator with receivers.
	generator uint32

	send   chan uint64 // Run sends each count it receives
	finish chan error  // Run returns what it receives
	closed chan struct{}

	mu   sync.Mutex
	sent uint64
}

func (e *fakeEngine) Interface() (string, int) { return "fake0", 7 }
func (e *fakeEngine) Flow() string             { return "fake flow" }
func (e *fakeEngine) Close() error             { close(e.closed); return nil }

func (e *fakeEngine) PinCounters(string) error { return errors.New("a fake engine pins nothing") }

func (e *fakeEngine) Run(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case n := <-e.send:
			e.mu.Lock()
			e.sent += n
			e.mu.Unlock()
		case err := <-e.finish:
			return err
		}
	}
}

func (e *fakeEngine) Stats() (stats, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := stats{frames: dataplane.Stats{At: time.Now()}}
	s.frames.Actions[dataplane.ActionRedirect] = dataplane.Counter{Packets: e.sent, Bytes: e.sent * fakeFrameSize}
	s.frames.Egress.TxDropped = e.sent / fakeEgressDropEvery
	if e.tcp {
		retransmitted := e.sent / fakeRetransmitEvery
		s.tcp = &dataplane.TCPStats{At: s.frames.At, Total: dataplane.TCPCounters{
			SegmentsSent: e.sent + retransmitted, BytesSent: (e.sent + retransmitted) * fakePayloadSize,
			SegmentsRetransmitted: retransmitted, BytesRetransmitted: retransmitted * fakePayloadSize,
			BytesAcked: e.sent * fakePayloadSize,
		}}
	}
	return s, nil
}

// fakeReceiver stands in for an interface's receive program that has counted nothing.
type fakeReceiver struct{}

func (fakeReceiver) Streams() ([]dataplane.Stream, error) { return nil, nil }
func (fakeReceiver) Latency(uint32) (map[netip.Addr]*dataplane.LatencyHistogram, error) {
	return nil, nil
}
func (fakeReceiver) OneWay(uint32) (map[netip.Addr]*dataplane.LatencyHistogram, error) {
	return nil, nil
}
func (fakeReceiver) Serve(uint32) error  { return nil }
func (fakeReceiver) Forget(uint32) error { return nil }
func (fakeReceiver) Close() error        { return nil }

func (e *fakeEngine) isClosed() bool {
	select {
	case <-e.closed:
		return true
	default:
		return false
	}
}

// runHarness is one agent on node "node-u" (labelled unitNodeLabels, four CPUs) with a fake data plane and a
// fake API server that records every status the agent writes.
type runHarness struct {
	t       *testing.T
	agent   *Agent
	client  client.Client
	key     types.NamespacedName
	engines chan *fakeEngine
	// engineErr, if set, is what making an engine fails with.
	engineErr error

	mu     sync.Mutex
	writes []xdpgenv1alpha1.NodeReportStatus

	stopAgent func()
}

// unitNodeLabels are node-u's labels, unitNodeIP its InternalIP.
var unitNodeLabels = map[string]string{"pool": "unit", "kubernetes.io/os": "linux"}

const unitNodeIP = "192.0.2.10"

func newRunHarness(t *testing.T, tg *xdpgenv1alpha1.TrafficGenerator, existing ...client.Object) *runHarness {
	h := &runHarness{t: t, key: client.ObjectKeyFromObject(tg), engines: make(chan *fakeEngine, 4)}
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-u", Labels: unitNodeLabels},
		Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: unitNodeIP}}}}
	h.client = fake.NewClientBuilder().
		WithScheme(k8senv.Scheme).
		WithStatusSubresource(&xdpgenv1alpha1.NodeReport{}).
		WithObjects(append([]client.Object{tg, node}, existing...)...).
		WithInterceptorFuncs(interceptor.Funcs{SubResourcePatch: h.recordWrite}).
		Build()
	// An hour between progress reports: the writes a test sees are the run's own steps.
	var err error
	h.agent, err = New(Options{NodeName: "node-u", PodName: "pod-u", ReportInterval: time.Hour, CPUs: []int{0, 1, 2, 3}}, h.client, h.client)
	if err != nil {
		t.Fatal(err)
	}
	h.agent.newEngine = h.newEngine
	h.agent.receivers.attach = func(string) (rxEngine, error) { return fakeReceiver{}, nil }
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan error, 1)
	go func() { started <- h.agent.Start(ctx) }()
	h.stopAgent = sync.OnceFunc(func() {
		cancel()
		if err := <-started; err != nil {
			t.Errorf("agent: %v", err)
		}
	})
	t.Cleanup(h.stopAgent)
	return h
}

func (h *runHarness) recordWrite(ctx context.Context, c client.Client, sub string, obj client.Object, patch client.Patch,
	opts ...client.SubResourcePatchOption) error {
	if rep, ok := obj.(*xdpgenv1alpha1.NodeReport); ok && sub == "status" {
		h.mu.Lock()
		h.writes = append(h.writes, *rep.Status.DeepCopy())
		h.mu.Unlock()
	}
	return c.SubResource(sub).Patch(ctx, obj, patch, opts...)
}

// newEngine makes an engine as the real one does, with what is left of the run.
func (h *runHarness) newEngine(_ context.Context, spec *xdpgenv1alpha1.TrafficGeneratorSpec, plan enginePlan) (engine, error) {
	done, cpus := plan.done, plan.cpus
	if h.engineErr != nil {
		return nil, h.engineErr
	}
	packets, duration, err := remaining(spec, done)
	if err != nil {
		return nil, err
	}
	e := &fakeEngine{done: done, packets: packets, duration: duration, cpus: cpus, tcp: spec.Protocol == xdpgenv1alpha1.ProtocolTCP,
		send: make(chan uint64), finish: make(chan error), closed: make(chan struct{})}
	if plan.stamp != nil {
		e.generator = plan.stamp.Generator
	}
	h.engines <- e
	return e, nil
}

func (h *runHarness) reconcile() {
	h.t.Helper()
	h.reconcileOf(h.key)
}

func (h *runHarness) reconcileOf(key types.NamespacedName) {
	h.t.Helper()
	if _, err := h.agent.Reconcile(h.t.Context(), reconcile.Request{NamespacedName: key}); err != nil {
		h.t.Fatalf("reconcile %s: %v", key, err)
	}
}

// engine is the engine the run made.
func (h *runHarness) engine() *fakeEngine {
	h.t.Helper()
	select {
	case e := <-h.engines:
		return e
	case <-time.After(5 * time.Second):
		h.t.Fatal("the run made no engine")
		return nil
	}
}

func (h *runHarness) requireNoEngine() {
	h.t.Helper()
	select {
	case <-h.engines:
		h.t.Fatal("the run made an engine")
	default:
	}
}

// waitRun waits for the run of the harness's generator to end.
func (h *runHarness) waitRun() {
	h.t.Helper()
	h.waitRunOf(h.key)
}

func (h *runHarness) waitRunOf(key types.NamespacedName) {
	h.t.Helper()
	h.agent.mu.Lock()
	r := h.agent.runs[key]
	h.agent.mu.Unlock()
	select {
	case <-r.done:
	case <-time.After(5 * time.Second):
		h.t.Fatal("the run did not end")
	}
}

// takeWrites returns the statuses written since the last call.
func (h *runHarness) takeWrites() []xdpgenv1alpha1.NodeReportStatus {
	h.mu.Lock()
	defer h.mu.Unlock()
	w := h.writes
	h.writes = nil
	return w
}

// awaitWrite waits for the run to write a status that matches, and returns it; the writes before it are taken.
func (h *runHarness) awaitWrite(what string, matches func(xdpgenv1alpha1.NodeReportStatus) bool) xdpgenv1alpha1.NodeReportStatus {
	h.t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		for _, st := range h.takeWrites() {
			if matches(st) {
				return st
			}
		}
	}
	h.t.Fatalf("no write of %s", what)
	return xdpgenv1alpha1.NodeReportStatus{}
}

// requireWrites compares the statuses written since the last call with want, times aside; the times are checked
// for being set when they should be.
func (h *runHarness) requireWrites(want ...xdpgenv1alpha1.NodeReportStatus) []xdpgenv1alpha1.NodeReportStatus {
	h.t.Helper()
	got := h.takeWrites()
	if diff := cmp.Diff(want, got, cmpopts.EquateEmpty(),
		cmpopts.IgnoreFields(xdpgenv1alpha1.NodeReportStatus{}, "StartTime", "CompletionTime", "LastUpdateTime")); diff != "" {
		h.t.Fatalf("written statuses (-want +got):\n%s", diff)
	}
	for _, st := range got {
		if (st.Phase == xdpgenv1alpha1.PhaseRunning || st.Phase == xdpgenv1alpha1.PhaseCompleted) && st.StartTime == nil {
			h.t.Errorf("a %s status without a start time", st.Phase)
		}
		if st.Phase.Terminal() != (st.CompletionTime != nil) {
			h.t.Errorf("a %s status with completion time %v", st.Phase, st.CompletionTime)
		}
	}
	return got
}

func unitGenerator(name string, spec func(*xdpgenv1alpha1.TrafficGeneratorSpec)) *xdpgenv1alpha1.TrafficGenerator {
	tg := &xdpgenv1alpha1.TrafficGenerator{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "unit", UID: types.UID(name + "-uid"), Generation: 1},
		Spec: xdpgenv1alpha1.TrafficGeneratorSpec{
			Destination: xdpgenv1alpha1.Destination{Address: "192.0.2.1"},
			Packets:     ptr.To[int64](1000),
		},
	}
	if spec != nil {
		spec(&tg.Spec)
	}
	return tg
}

// earlierReport is the report an earlier incarnation of the agent left for tg's generation.
func earlierReport(tg *xdpgenv1alpha1.TrafficGenerator, st xdpgenv1alpha1.NodeReportStatus) *xdpgenv1alpha1.NodeReport {
	rep := nodeReportFor(tg, "node-u")
	rep.Status = st
	return rep
}

// sentStatus is the counters of a status after packets were sent.
func sentStatus(st xdpgenv1alpha1.NodeReportStatus, packets int64) xdpgenv1alpha1.NodeReportStatus {
	st.Packets, st.Bytes = packets, packets*fakeFrameSize
	st.Actions = []xdpgenv1alpha1.ActionCount{{Action: xdpgenv1alpha1.XDPRedirect, Packets: packets, Bytes: packets * fakeFrameSize}}
	st.EgressDroppedPackets = packets / fakeEgressDropEvery
	return st
}

const (
	preparing = "preparing: resolving the interface, the addresses and the destination MAC"
	sending   = "sending on fake0 (ifindex 7): fake flow"
)

// TestUnitFreshRun: a run reports Pending, then Running, then what the engine's Run ended with, with its counts.
func TestUnitFreshRun(t *testing.T) {
	for _, tc := range []struct {
		name   string
		runErr error
		want   xdpgenv1alpha1.NodeReportStatus
	}{
		{"completed", nil, xdpgenv1alpha1.NodeReportStatus{Phase: xdpgenv1alpha1.PhaseCompleted,
			Message: "sent 1000 packets (64000 bytes) on fake0"}},
		{"failed", errors.New("the interface went away"), xdpgenv1alpha1.NodeReportStatus{Phase: xdpgenv1alpha1.PhaseFailed,
			Message: "the interface went away"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newRunHarness(t, unitGenerator("fresh-"+tc.name, nil))
			h.reconcile()
			e := h.engine()
			if diff := cmp.Diff(progress{}, e.done, cmp.AllowUnexported(progress{})); diff != "" {
				t.Errorf("a fresh run was handed progress (-want +got):\n%s", diff)
			}
			if e.packets != 1000 {
				t.Errorf("the engine was asked for %d packets, want 1000", e.packets)
			}
			e.send <- 400
			e.send <- 600
			e.finish <- tc.runErr
			h.waitRun()
			tc.want.Generation, tc.want.CPUs = 1, "0"
			h.requireWrites(
				xdpgenv1alpha1.NodeReportStatus{Generation: 1, Phase: xdpgenv1alpha1.PhasePending, Message: preparing},
				xdpgenv1alpha1.NodeReportStatus{Generation: 1, Phase: xdpgenv1alpha1.PhaseRunning, Message: sending, CPUs: "0"},
				sentStatus(tc.want, 1000),
			)
			if !e.isClosed() {
				t.Error("the engine was not closed")
			}
		})
	}
}

// TestUnitProgressReports: while sending, the run reports the engine's counts every report interval.
func TestUnitProgressReports(t *testing.T) {
	h := newRunHarness(t, unitGenerator("progress", nil))
	h.agent.opts.ReportInterval = 10 * time.Millisecond
	h.reconcile()
	e := h.engine()
	e.send <- 300
	h.awaitWrite("a report of the 300 packets sent", func(st xdpgenv1alpha1.NodeReportStatus) bool {
		return st.Phase == xdpgenv1alpha1.PhaseRunning && st.Packets == 300 && st.Bytes == 300*fakeFrameSize
	})
	e.finish <- nil
	h.waitRun()
}

// resumedWrites are the statuses a run resumed from an earlier incarnation's report writes when it completes
// with total packets: the resumption, the sending (from the engine on, the run reports its CPUs), and the
// completion with message.
func resumedWrites(earlier xdpgenv1alpha1.NodeReportStatus, total int64, message string) []xdpgenv1alpha1.NodeReportStatus {
	resumed := earlier
	resumed.Restarts++
	resumed.Message = fmt.Sprintf("agent restarted (pod-u) after %d packets: finishing the run", earlier.Packets)
	sendingResumed := resumed
	sendingResumed.CPUs = "0"
	completed := sentStatus(sendingResumed, total)
	completed.Phase, completed.Message = xdpgenv1alpha1.PhaseCompleted, message
	return []xdpgenv1alpha1.NodeReportStatus{resumed, sendingResumed, completed}
}

// TestUnitResume: a report of the same generation with a start time is an earlier incarnation's run: the agent
// finishes it, counting the restart, instead of starting over.
func TestUnitResume(t *testing.T) {
	tg := unitGenerator("resume", func(s *xdpgenv1alpha1.TrafficGeneratorSpec) {
		s.Packets = ptr.To[int64](10000)
		s.Duration = &metav1.Duration{Duration: time.Hour}
	})
	started := metav1.NewTime(time.Now().Add(-10 * time.Minute).Truncate(time.Second))
	earlier := sentStatus(xdpgenv1alpha1.NodeReportStatus{Generation: 1, Phase: xdpgenv1alpha1.PhaseRunning, StartTime: &started,
		Restarts: 1, Message: "agent pod-t stopped after 3000 packets (pod terminating); the next agent on this node finishes the run"}, 3000)
	h := newRunHarness(t, tg, earlierReport(tg, earlier))
	h.reconcile()
	e := h.engine()

	if e.done.packets != 3000 || e.done.running < 10*time.Minute || e.done.running > 11*time.Minute {
		t.Errorf("the run was handed %d packets in %s, want 3000 in about 10m", e.done.packets, e.done.running)
	}
	if e.packets != 7000 || e.duration > 50*time.Minute || e.duration < 49*time.Minute {
		t.Errorf("the engine was asked for %d packets in %s, want 7000 in about 50m", e.packets, e.duration)
	}
	e.send <- 7000
	e.finish <- nil
	h.waitRun()

	got := h.requireWrites(resumedWrites(earlier, 10000,
		"sent 10000 packets (640000 bytes) on fake0; the agent restarted 2 time(s) during the run and resumed each time")...)
	for _, st := range got {
		if !st.StartTime.Equal(&started) {
			t.Errorf("the start time moved from %s to %s", started, st.StartTime)
		}
	}
}

// tcpGenerator is a tcp generator of packets segments.
func tcpGenerator(name string, packets int64) *xdpgenv1alpha1.TrafficGenerator {
	return unitGenerator(name, func(s *xdpgenv1alpha1.TrafficGeneratorSpec) {
		s.Protocol, s.Destination.Port, s.Packets = xdpgenv1alpha1.ProtocolTCP, 5201, ptr.To(packets)
	})
}

// tcpSent is what a tcp fake engine's connections count once it sent packets segments.
func tcpSent(packets int64) *xdpgenv1alpha1.TCPStatus {
	retransmitted := packets / fakeRetransmitEvery
	return &xdpgenv1alpha1.TCPStatus{BytesAcknowledged: packets * fakePayloadSize, SegmentsSent: packets + retransmitted,
		SegmentsRetransmitted: retransmitted, BytesRetransmitted: retransmitted * fakePayloadSize}
}

// TestUnitTCPCounts: a tcp run reports its connections' counts beside its frames, and says them in its last message.
func TestUnitTCPCounts(t *testing.T) {
	h := newRunHarness(t, tcpGenerator("tcp", 1000))
	h.reconcile()
	e := h.engine()
	e.send <- 1000
	e.finish <- nil
	h.waitRun()
	completed := sentStatus(xdpgenv1alpha1.NodeReportStatus{Generation: 1, Phase: xdpgenv1alpha1.PhaseCompleted, CPUs: "0",
		Message: "sent 1000 packets (64000 bytes) on fake0; 10000 bytes acknowledged by the server, 100 segments retransmitted"}, 1000)
	completed.TCP = tcpSent(1000)
	h.requireWrites(
		xdpgenv1alpha1.NodeReportStatus{Generation: 1, Phase: xdpgenv1alpha1.PhasePending, Message: preparing},
		xdpgenv1alpha1.NodeReportStatus{Generation: 1, Phase: xdpgenv1alpha1.PhaseRunning, Message: sending, CPUs: "0"},
		completed,
	)
}

// TestUnitTCPProgressReports: while sending, a tcp run reports its connections' counts and goodput every report
// interval; the goodput is zero once the run is over.
func TestUnitTCPProgressReports(t *testing.T) {
	h := newRunHarness(t, tcpGenerator("tcp-progress", 1000))
	h.agent.opts.ReportInterval = 10 * time.Millisecond
	h.reconcile()
	e := h.engine()
	e.send <- 300
	st := h.awaitWrite("a report of the 300 segments' counts and goodput", func(st xdpgenv1alpha1.NodeReportStatus) bool {
		return st.Phase == xdpgenv1alpha1.PhaseRunning && st.TCP != nil && st.TCP.GoodputBitsPerSecond != 0
	})
	want := *tcpSent(300)
	want.GoodputBitsPerSecond = st.TCP.GoodputBitsPerSecond
	if diff := cmp.Diff(&want, st.TCP); diff != "" {
		t.Fatalf("reported tcp counts (-want +got):\n%s", diff)
	}
	if note := "3000 bytes acknowledged by the server, 30 segments retransmitted"; !strings.Contains(st.Message, note) {
		t.Fatalf("message %q does not say %q", st.Message, note)
	}
	e.send <- 700
	e.finish <- nil
	h.waitRun()
	writes := h.takeWrites()
	if last := writes[len(writes)-1]; last.Phase != xdpgenv1alpha1.PhaseCompleted || cmp.Diff(tcpSent(1000), last.TCP) != "" {
		t.Fatalf("last report %+v with tcp %+v, want Completed with %+v", last, last.TCP, tcpSent(1000))
	}
}

// TestUnitTCPResume: an agent that finishes an earlier incarnation's tcp run adds its connections' counts to the
// report's, as it does its frames.
func TestUnitTCPResume(t *testing.T) {
	tg := tcpGenerator("tcp-resume", 10000)
	started := metav1.NewTime(time.Now().Add(-time.Minute).Truncate(time.Second))
	earlier := sentStatus(xdpgenv1alpha1.NodeReportStatus{Generation: 1, Phase: xdpgenv1alpha1.PhaseRunning, StartTime: &started,
		Message: "sending", TCP: &xdpgenv1alpha1.TCPStatus{BytesAcknowledged: 30000, SegmentsSent: 3500,
			SegmentsRetransmitted: 500, BytesRetransmitted: 5000, GoodputBitsPerSecond: 8000}}, 3000)
	h := newRunHarness(t, tg, earlierReport(tg, earlier))
	h.reconcile()
	e := h.engine()
	if e.done.packets != 3000 || e.packets != 7000 {
		t.Errorf("the run was handed %d packets and asked for %d more, want 3000 and 7000", e.done.packets, e.packets)
	}
	e.send <- 7000
	e.finish <- nil
	h.waitRun()

	want := resumedWrites(earlier, 10000, "sent 10000 packets (640000 bytes) on fake0; "+
		"100000 bytes acknowledged by the server, 1200 segments retransmitted; the agent restarted 1 time(s) during the run and resumed each time")
	want[2].TCP = &xdpgenv1alpha1.TCPStatus{BytesAcknowledged: 30000 + 70000, SegmentsSent: 3500 + 7700,
		SegmentsRetransmitted: 500 + 700, BytesRetransmitted: 5000 + 7000}
	h.requireWrites(want...)
}

// TestUnitRunEndsWithoutSending: what the run finds in the report, or the engine's making, ends it before it sends.
func TestUnitRunEndsWithoutSending(t *testing.T) {
	started := metav1.NewTime(time.Now().Add(-time.Minute))
	finished := metav1.NewTime(time.Now().Add(-time.Second))
	// stoppedAfter is the report of an agent stopped after sending packets; nothingLeftAfter is what the next
	// agent writes when those were the whole run.
	stoppedAfter := func(packets int64) *xdpgenv1alpha1.NodeReportStatus {
		return ptr.To(sentStatus(xdpgenv1alpha1.NodeReportStatus{Generation: 1, Phase: xdpgenv1alpha1.PhaseRunning, StartTime: &started}, packets))
	}
	nothingLeftAfter := func(packets int64) []xdpgenv1alpha1.NodeReportStatus {
		resumed := xdpgenv1alpha1.NodeReportStatus{Generation: 1, Phase: xdpgenv1alpha1.PhaseRunning, Restarts: 1,
			Message: fmt.Sprintf("agent restarted (pod-u) after %d packets: finishing the run", packets)}
		completed := resumed
		completed.Phase, completed.Message = xdpgenv1alpha1.PhaseCompleted, "sent everything before the agent restarted"
		return []xdpgenv1alpha1.NodeReportStatus{sentStatus(resumed, packets), sentStatus(completed, packets)}
	}
	for _, tc := range []struct {
		name      string
		spec      func(*xdpgenv1alpha1.TrafficGeneratorSpec)
		earlier   *xdpgenv1alpha1.NodeReportStatus
		engineErr error
		want      []xdpgenv1alpha1.NodeReportStatus
	}{{
		name: "terminal report of this generation is not run again",
		earlier: &xdpgenv1alpha1.NodeReportStatus{Generation: 1, Phase: xdpgenv1alpha1.PhaseCompleted, StartTime: &started,
			CompletionTime: &finished, Message: "sent 1000 packets (64000 bytes) on eth0"},
	}, {
		name:    "every packet sent before the restart",
		earlier: stoppedAfter(1000),
		want:    nothingLeftAfter(1000),
	}, {
		name: "the whole duration run before the restart",
		spec: func(s *xdpgenv1alpha1.TrafficGeneratorSpec) {
			s.Packets, s.Duration = nil, &metav1.Duration{Duration: 30 * time.Second}
		},
		earlier: stoppedAfter(500),
		want:    nothingLeftAfter(500),
	}, {
		name: "more threads than the node has CPUs",
		spec: func(s *xdpgenv1alpha1.TrafficGeneratorSpec) { s.Threads = 5 },
		want: []xdpgenv1alpha1.NodeReportStatus{
			{Generation: 1, Phase: xdpgenv1alpha1.PhasePending, Message: preparing},
			{Generation: 1, Phase: xdpgenv1alpha1.PhaseFailed, Message: "spec.threads 5: this node's agent may use 4 CPUs (0-3): use at most 4 threads"},
		},
	}, {
		name:      "the engine cannot be made",
		engineErr: &dataplane.ConfigError{Field: dataplane.FieldInterface, Value: "nope0", Problem: "no such interface here"},
		want: []xdpgenv1alpha1.NodeReportStatus{
			{Generation: 1, Phase: xdpgenv1alpha1.PhasePending, Message: preparing},
			{Generation: 1, Phase: xdpgenv1alpha1.PhaseFailed, Message: "spec.interface nope0: no such interface here"},
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			tg := unitGenerator("ends", tc.spec)
			var existing []client.Object
			if tc.earlier != nil {
				existing = append(existing, earlierReport(tg, *tc.earlier))
			}
			h := newRunHarness(t, tg, existing...)
			h.engineErr = tc.engineErr
			h.reconcile()
			h.waitRun()
			h.requireNoEngine()
			h.requireWrites(tc.want...)
		})
	}
}

// TestUnitSpecChange: a new generation stops the old run, which writes nothing more, and starts a run from zero
// even though the report holds the old generation's progress.
func TestUnitSpecChange(t *testing.T) {
	tg := unitGenerator("change", nil)
	h := newRunHarness(t, tg)
	h.reconcile()
	old := h.engine()
	old.send <- 500
	h.reconcile() // the same generation again: nothing changes
	h.requireNoEngine()
	h.takeWrites()

	var changed xdpgenv1alpha1.TrafficGenerator
	if err := h.client.Get(t.Context(), h.key, &changed); err != nil {
		t.Fatal(err)
	}
	changed.Generation, changed.Spec.Packets = 2, ptr.To[int64](200)
	if err := h.client.Update(t.Context(), &changed); err != nil {
		t.Fatal(err)
	}
	h.reconcile()
	if !old.isClosed() {
		t.Error("the old generation's engine was not closed")
	}
	e := h.engine()
	if diff := cmp.Diff(progress{}, e.done, cmp.AllowUnexported(progress{})); diff != "" {
		t.Errorf("the new generation's run was handed progress (-want +got):\n%s", diff)
	}
	e.send <- 200
	e.finish <- nil
	h.waitRun()
	h.requireWrites(
		xdpgenv1alpha1.NodeReportStatus{Generation: 2, Phase: xdpgenv1alpha1.PhasePending, Message: preparing},
		xdpgenv1alpha1.NodeReportStatus{Generation: 2, Phase: xdpgenv1alpha1.PhaseRunning, Message: sending, CPUs: "0"},
		sentStatus(xdpgenv1alpha1.NodeReportStatus{Generation: 2, Phase: xdpgenv1alpha1.PhaseCompleted, CPUs: "0",
			Message: "sent 200 packets (12800 bytes) on fake0"}, 200),
	)
}

// TestUnitStop: a run stopped from outside closes its engine; only an agent shutting down reports what it sent,
// for the next agent on the node to finish.
func TestUnitStop(t *testing.T) {
	for _, tc := range []struct {
		name string
		stop func(*runHarness)
		want []xdpgenv1alpha1.NodeReportStatus
	}{{
		name: "deleted",
		stop: func(h *runHarness) {
			if err := h.client.Delete(h.t.Context(), &xdpgenv1alpha1.TrafficGenerator{
				ObjectMeta: metav1.ObjectMeta{Name: h.key.Name, Namespace: h.key.Namespace}}); err != nil {
				h.t.Fatal(err)
			}
			h.reconcile()
		},
	}, {
		name: "shutdown",
		stop: func(h *runHarness) { h.stopAgent() },
		want: []xdpgenv1alpha1.NodeReportStatus{sentStatus(xdpgenv1alpha1.NodeReportStatus{Generation: 1, Phase: xdpgenv1alpha1.PhaseRunning, CPUs: "0",
			Message: "agent pod-u stopped after 500 packets (pod terminating); the next agent on this node finishes the run"}, 500)},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			h := newRunHarness(t, unitGenerator("stop-"+tc.name, nil))
			h.reconcile()
			e := h.engine()
			e.send <- 500
			h.takeWrites()
			tc.stop(h)
			if !e.isClosed() {
				t.Error("the engine was not closed")
			}
			h.requireWrites(tc.want...)
		})
	}
}
