package agent_test

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	xdpgenv1alpha1 "github.com/xdpgen/xdpgen/api/v1alpha1"
	"github.com/xdpgen/xdpgen/controllers"
	"github.com/xdpgen/xdpgen/test/k8senv"
	"github.com/xdpgen/xdpgen/test/netnstest"
	"github.com/xdpgen/xdpgen/test/poll"
)

// startController runs the operator's TrafficGenerator controller for the fixture's namespace until the test
// ends: the search's trials are its to drive.
func (f *fixture) startController() {
	f.t.Helper()
	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{
		Scheme:                 k8senv.Scheme,
		Cache:                  cache.Options{DefaultNamespaces: map[string]cache.Config{f.namespace: {}}},
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Controller:             config.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		f.t.Fatal(err)
	}
	r := &controllers.TrafficGeneratorReconciler{Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder("xdpgen-manager"),
		StatusInterval: 100 * time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	if err := r.SetupWithManager(ctx, mgr); err != nil {
		cancel()
		f.t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := mgr.Start(ctx); err != nil && !errors.Is(err, context.Canceled) {
			f.t.Errorf("controller manager: %v", err)
		}
	})
	f.t.Cleanup(func() { cancel(); wg.Wait() })
}

// label adds a label to the fixture's node name.
func (f *fixture) label(name, key, value string) {
	f.t.Helper()
	var n corev1.Node
	if err := k8s.Get(f.t.Context(), client.ObjectKey{Name: f.node(name)}, &n); err != nil {
		f.t.Fatal(err)
	}
	n.Labels[key] = value
	if err := k8s.Update(f.t.Context(), &n); err != nil {
		f.t.Fatal(err)
	}
}

// searchCapacity is the token bucket's rate in 64-byte frames per second, well below what the sender and the
// router do on a busy 2-core machine, so that the bucket is the bottleneck (as in xdpgen search's own test).
const searchCapacity = 50_000

// searchTrialsBound bounds the trials of the search below.
const searchTrialsBound = 40

// TestSearchFindsTheBottleneck: a sender node and a receiver node, each an agent in a namespace of its own,
// behind a router whose way to the receiver is a token bucket (tc tbf) of 50 kpps of 64-byte frames; the
// operator's controller drives a search of spec.search. NDR is within 5% of the bucket's rate, PDR (0.5%) at or
// above it, in a bounded number of trials, and the frames the trial history says arrived are those the bucket
// let through.
func TestSearchFindsTheBottleneck(t *testing.T) {
	f := newFixture(t)
	r := netnstest.NewRouted(t, netnstest.Options{})
	r.RouterIn.SetGRO(t, true) // the router's veth takes the redirected frames
	// A burst of 750 frames (15 ms) and a queue of 250 let a 1s trial through at most 2% above the rate.
	r.RouterOut.Exec(t, "tc", "qdisc", "add", "dev", r.RouterOut.Interface, "root", "tbf", "rate", strconv.Itoa(searchCapacity*64*8)+"bit",
		"burst", "48000", "limit", "16000")
	f.meshNode("tx", r.Sender)
	f.meshNode("rx", r.Receiver)
	f.label("tx", "test.xdpgen.io/role", "tx")
	f.label("rx", "test.xdpgen.io/role", "rx")
	f.startController()

	tg := f.generator("search", func(s *xdpgenv1alpha1.TrafficGeneratorSpec) {
		s.Destination = xdpgenv1alpha1.Destination{Port: 9, PortCount: 1}
		s.Packets = nil
		s.NodeSelector = map[string]string{fixtureLabel: f.namespace, "test.xdpgen.io/role": "tx"}
		s.Receivers = &xdpgenv1alpha1.Receivers{NodeSelector: map[string]string{fixtureLabel: f.namespace, "test.xdpgen.io/role": "rx"},
			Interface: "auto", DrainTime: &metav1.Duration{Duration: 500 * time.Millisecond}, LatencySampleEvery: ptr.To[int32](0)}
		s.Search = &xdpgenv1alpha1.Search{TrialDuration: &metav1.Duration{Duration: time.Second}, NDRLossRatio: "0", PDRLossRatio: "0.005",
			Precision: "0.01", MaxTrials: searchTrialsBound}
	})
	f.startAgent("tx", nil)
	f.startAgent("rx", nil)

	var cur xdpgenv1alpha1.TrafficGenerator
	poll.Until(t, 5*time.Minute, 500*time.Millisecond, "the search ends", func() error {
		if err := k8s.Get(t.Context(), client.ObjectKeyFromObject(tg), &cur); err != nil {
			return err
		}
		if s := cur.Status.Search; s == nil {
			return errors.New("no search in the status yet")
		} else if !s.Phase.Over() {
			return errors.New(s.Message)
		}
		return nil
	})
	s := cur.Status.Search
	for _, h := range s.History {
		t.Logf("trial %2d phase %d %6s %8d pps sent %8d received %8d loss %s%s", h.Number, h.Phase, h.Duration.Duration, h.PacketsPerSecond,
			h.SentPackets, h.ReceivedPackets, h.LossRatio, map[bool]string{true: " (repeat)"}[h.Repeat])
	}
	t.Logf("%s: %s", s.Phase, s.Message)
	t.Log(r.RouterOut.Exec(t, "tc", "-s", "qdisc", "show", "dev", r.RouterOut.Interface))
	if s.Phase != xdpgenv1alpha1.SearchCompleted || cur.Status.Phase != xdpgenv1alpha1.PhaseCompleted || int(s.Trials) > searchTrialsBound {
		t.Fatalf("search %s, generator %s after %d trials: want a complete search of at most %d", s.Phase, cur.Status.Phase, s.Trials, searchTrialsBound)
	}
	if s.MaxPacketsPerSecond < 2*searchCapacity {
		t.Fatalf("the sender's maximum through the router is %d pps: want at least twice the bucket's %d", s.MaxPacketsPerSecond, searchCapacity)
	}
	if ndr := float64(s.NDR.PacketsPerSecond); ndr < 0.95*searchCapacity || ndr > 1.05*searchCapacity {
		t.Fatalf("NDR %+v: want within 5%% of the bucket's %d pps", s.NDR, searchCapacity)
	}
	if s.PDR == nil || s.PDR.PacketsPerSecond < s.NDR.PacketsPerSecond {
		t.Fatalf("PDR %+v below NDR %+v", s.PDR, s.NDR)
	}
	if s.MeanFrameSize != 64 || s.NDR.BitsPerSecond != s.NDR.PacketsPerSecond*64*8 {
		t.Fatalf("mean frame size %d, NDR %+v: want 64-byte frames and the bit rate of the NDR's", s.MeanFrameSize, s.NDR)
	}
	if len(s.Paths) != 1 || s.Paths[0].Sender != f.node("tx") || s.Paths[0].Receiver != f.node("rx") || s.Paths[0].FirstLossPacketsPerSecond == 0 {
		t.Fatalf("paths %+v: want the one path, losing above the NDR", s.Paths)
	}
	// Every trial but the first (as fast as the sender went) sent exactly its rate x duration, the one sender's.
	for _, h := range s.History[1:] {
		if want := int64(math.Round(float64(h.PacketsPerSecond) * h.Duration.Seconds())); h.SentPackets != want || h.ReceivedPackets > h.SentPackets {
			t.Fatalf("trial %d: sent %d, received %d; want %d sent (%d pps x %s)", h.Number, h.SentPackets, h.ReceivedPackets, want,
				h.PacketsPerSecond, h.Duration.Duration)
		}
	}
	// The trials' received frames are what the bucket let through to the receiver: every frame it sent there
	// is a trial's (the router's own neighbour discovery aside, a handful).
	var received int64
	for _, h := range s.History {
		received += h.ReceivedPackets
	}
	passed := tbfSentPackets(t, r.RouterOut)
	switch {
	case s.ShortTrials > 0:
		// The frames of a run the sender fell short of are the receiver's and no trial's.
		t.Logf("%d trial(s) ran again: the trials received %d frames, the bucket let %d through", s.ShortTrials, received, passed)
	case received > passed || passed-received > 20:
		t.Fatalf("the trials received %d frames, the bucket let %d through", received, passed)
	}
	// The last trial's reports are the last history entry's.
	last := s.History[len(s.History)-1]
	rep := f.report(tg, "rx", time.Second, "of the last trial", func(r *xdpgenv1alpha1.NodeReport) bool { return r.Status.Trial == last.Number })
	if len(rep.Status.Received) != 1 || rep.Status.Received[0].ReceivedPackets != last.ReceivedPackets || rep.Status.Received[0].SentPackets != last.SentPackets {
		t.Fatalf("the receiver's last report %+v, the last trial %+v", rep.Status.Received, last)
	}
	for _, h := range []netnstest.Host{r.Sender, r.Receiver} {
		poll.Until(t, 5*time.Second, 50*time.Millisecond, "the programs on "+h.Interface+" detached", func() error {
			if h.XDPAttached(t) {
				return errors.New("an XDP program is attached")
			}
			return nil
		})
	}
}

// tbfSentPackets is how many packets the host's root qdisc sent.
func tbfSentPackets(t *testing.T, h netnstest.Host) int64 {
	t.Helper()
	var qdiscs []struct {
		Kind    string `json:"kind"`
		Packets int64  `json:"packets"`
	}
	out := h.Exec(t, "tc", "-s", "-j", "qdisc", "show", "dev", h.Interface)
	if err := json.Unmarshal([]byte(out), &qdiscs); err != nil {
		t.Fatalf("tc -j: %v\n%s", err, out)
	}
	for _, q := range qdiscs {
		if q.Kind == "tbf" {
			return q.Packets
		}
	}
	t.Fatalf("no tbf qdisc on %s: %s", h.Interface, out)
	return 0
}
