package agent_test

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	xdpgenv1alpha1 "github.com/xdpgen/xdpgen/api/v1alpha1"
	"github.com/xdpgen/xdpgen/test/netnstest"
	"github.com/xdpgen/xdpgen/test/pcaptest"
)

// TestShapesThroughTheAgent: a generator with the simple IMIX, a range of source addresses and a layer-1 rate runs
// on the node as asked: the far end counts every frame, and the report's bytes are the mix's.
func TestShapesThroughTheAgent(t *testing.T) {
	f := newFixture(t)
	const cycles = 200
	tg := f.generator("shapes", func(s *xdpgenv1alpha1.TrafficGeneratorSpec) {
		s.Packets = ptr.To[int64](12 * cycles)
		s.FrameSizes = &xdpgenv1alpha1.FrameSizes{Profile: "imix-simple"}
		s.Source.AddressRange = "10.200.0.50-10.200.0.57"
		s.Rate = &xdpgenv1alpha1.Rate{L1BitsPerSecond: ptr.To[int64](100_000_000)}
	})
	f.startAgent("node-a", nil)
	done := f.report(tg, "node-a", 20*time.Second, "Completed", phase(xdpgenv1alpha1.PhaseCompleted))
	if want := int64(cycles * (7*60 + 4*566 + 1514)); done.Status.Packets != 12*cycles || done.Status.Bytes != want {
		t.Fatalf("completed report %+v, want %d packets of %d bytes", done.Status, 12*cycles, want)
	}
	if got := f.received(); got != 12*cycles {
		t.Fatalf("the far end counted %d, want %d", got, 12*cycles)
	}
	want := []xdpgenv1alpha1.SizeCount{{Min: 60, Max: 60, Packets: 7 * cycles}, {Min: 566, Max: 566, Packets: 4 * cycles}, {Min: 1514, Max: 1514, Packets: cycles}}
	if diff := cmp.Diff(want, done.Status.Sizes); diff != "" {
		t.Fatalf("the report's sizes (-want +got):\n%s", diff)
	}
	f.requireNoXDP()
}

// TestInjectThroughTheAgent: a generator in mode Inject hands its frames to the node's own interface: a socket of
// the node receives every one, the far end of the link none, and the report counts them as sent.
func TestInjectThroughTheAgent(t *testing.T) {
	f := newFixture(t)
	const count, port = 500, 7777
	conn := netnstest.ListenUDP(t, f.pair.Local.NS, f.pair.Local.IPv4, port, "")
	tg := f.generator("inject", func(s *xdpgenv1alpha1.TrafficGeneratorSpec) {
		s.Packets = ptr.To[int64](count)
		s.Mode = xdpgenv1alpha1.ModeInject
		s.Interface = f.pair.Local.Interface
		s.Destination.Address, s.Destination.Port = f.pair.Local.IPv4.String(), port
		s.Source.Address = f.pair.Remote.IPv4.String()
		s.Rate = &xdpgenv1alpha1.Rate{PacketsPerSecond: ptr.To[int64](10000)}
	})
	f.startAgent("node-a", nil)
	buf := make([]byte, 2048)
	for i := range count {
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, from, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatalf("datagram %d of %d: %v", i+1, count, err)
		}
		if from.Addr() != f.pair.Remote.IPv4 {
			t.Fatalf("datagram from %s, want %s", from, netip.AddrPortFrom(f.pair.Remote.IPv4, 9))
		}
	}
	done := f.report(tg, "node-a", 10*time.Second, "Completed", phase(xdpgenv1alpha1.PhaseCompleted))
	if done.Status.Packets != count {
		t.Fatalf("completed report %+v, want %d packets", done.Status, count)
	}
	if got := f.received(); got != 0 {
		t.Fatalf("the far end of the link counted %d frames of an injecting run", got)
	}
	f.requireNoXDP()
}

// TestReplayThroughTheAgent: a generator that replays a capture from a ConfigMap sends its frames, rewritten for
// the node's path, as many as asked: the far end counts every one, and the report counts them per size.
func TestReplayThroughTheAgent(t *testing.T) {
	f := newFixture(t)
	const loops = 100
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "capture", Namespace: f.namespace},
		BinaryData: map[string][]byte{"trace.pcap": pcaptest.UDP(t, 9, 64, 300, 1514)}}
	if err := k8s.Create(t.Context(), cm); err != nil {
		t.Fatal(err)
	}
	tg := f.generator("replay", func(s *xdpgenv1alpha1.TrafficGeneratorSpec) {
		s.Packets = ptr.To[int64](3 * loops)
		s.Replay = &xdpgenv1alpha1.Replay{ConfigMap: "capture", Key: "trace.pcap"}
		s.Rate = &xdpgenv1alpha1.Rate{PacketsPerSecond: ptr.To[int64](10000)}
	})
	f.startAgent("node-a", nil)
	done := f.report(tg, "node-a", 20*time.Second, "Completed", phase(xdpgenv1alpha1.PhaseCompleted))
	if want := int64(loops * (64 + 300 + 1514)); done.Status.Packets != 3*loops || done.Status.Bytes != want {
		t.Fatalf("completed report %+v, want %d packets of %d bytes", done.Status, 3*loops, want)
	}
	if got := f.received(); got != 3*loops {
		t.Fatalf("the far end counted %d, want %d", got, 3*loops)
	}
	want := []xdpgenv1alpha1.SizeCount{{Min: 64, Max: 64, Packets: loops}, {Min: 300, Max: 300, Packets: loops}, {Min: 1514, Max: 1514, Packets: loops}}
	if diff := cmp.Diff(want, done.Status.Sizes); diff != "" {
		t.Fatalf("the report's sizes (-want +got):\n%s", diff)
	}
	f.requireNoXDP()
}

// TestReplayOfAMissingCapture: a replay whose ConfigMap or key is missing fails on the node, saying how to make it.
func TestReplayOfAMissingCapture(t *testing.T) {
	f := newFixture(t)
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "text-only", Namespace: f.namespace}, Data: map[string]string{"capture.pcap": "not binary"}}
	if err := k8s.Create(t.Context(), cm); err != nil {
		t.Fatal(err)
	}
	missing := f.generator("replay-missing", func(s *xdpgenv1alpha1.TrafficGeneratorSpec) {
		s.Replay = &xdpgenv1alpha1.Replay{ConfigMap: "nope"}
	})
	textual := f.generator("replay-textual", func(s *xdpgenv1alpha1.TrafficGeneratorSpec) {
		s.Replay = &xdpgenv1alpha1.Replay{ConfigMap: "text-only"}
	})
	f.startAgent("node-a", nil)
	for tg, want := range map[*xdpgenv1alpha1.TrafficGenerator]string{
		missing: "spec.replay.configMap nope: no such ConfigMap in namespace " + f.namespace + ": create it (kubectl create configmap nope -n " + f.namespace +
			" --from-file=capture.pcap=FILE.pcap)",
		textual: "spec.replay.key capture.pcap: ConfigMap text-only holds no capture under it (capture.pcap is in its data, which holds text: a capture is binary, give it with --from-file)",
	} {
		failed := f.report(tg, "node-a", 10*time.Second, "Failed", phase(xdpgenv1alpha1.PhaseFailed))
		if !strings.Contains(failed.Status.Message, want) {
			t.Errorf("%s: message %q, want it to say %q", tg.Name, failed.Status.Message, want)
		}
	}
	if got := f.received(); got != 0 {
		t.Fatalf("the far end counted %d frames of failed replays", got)
	}
	f.requireNoXDP()
}
