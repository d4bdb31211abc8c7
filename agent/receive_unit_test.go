package agent

import (
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/xdpgen/xdpgen/agent/dataplane"
	xdpgenv1alpha1 "github.com/xdpgen/xdpgen/api/v1alpha1"
)

func TestPathRows(t *testing.T) {
	t0 := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *metav1.Time { m := metav1.NewTime(t0.Add(d)); return &m }
	rtt := &xdpgenv1alpha1.Latency{Samples: 3, P50: metav1.Duration{Duration: 20 * time.Microsecond}}
	sentTo := func(phase xdpgenv1alpha1.Phase, updated, completed *metav1.Time, packets int64) *xdpgenv1alpha1.NodeReport {
		return &xdpgenv1alpha1.NodeReport{Status: xdpgenv1alpha1.NodeReportStatus{Phase: phase, LastUpdateTime: updated,
			CompletionTime: completed, Sent: []xdpgenv1alpha1.SentPath{{Receiver: "other", Packets: 1}, {Receiver: "rx", Packets: packets, RTT: rtt}}}}
	}
	s := settling{drain: 2 * time.Second, silentAfter: time.Minute, since: t0}
	receiving := sentTo(xdpgenv1alpha1.PhaseRunning, at(9*time.Second), nil, 2000) // sent all, still receiving
	receiving.Status.SendCompletionTime = at(5 * time.Second)
	senders := []sender{
		{node: "also-receives", report: receiving},
		{node: "running", report: sentTo(xdpgenv1alpha1.PhaseRunning, at(9*time.Second), nil, 5000)},
		{node: "done", report: sentTo(xdpgenv1alpha1.PhaseCompleted, at(9*time.Second), at(9*time.Second), 1000)},
		{node: "rx"}, // the receiver itself: no path
		{node: "silent"},
	}
	got := map[string]dataplane.StreamCounts{
		"also-receives": {Packets: 1999, Bytes: 1999 * 64, Expected: 1999},
		"running":       {Packets: 4990, Bytes: 4990 * 64, Expected: 4993, Reordered: 2},
		"done":          {Packets: 994, Bytes: 994 * 64, Expected: 991, Duplicates: 4},
		"rx":            {Packets: 7},
	}

	oneWay := map[string]*xdpgenv1alpha1.Latency{"running": {Samples: 49, P50: metav1.Duration{Duration: 9 * time.Microsecond}}}
	rows, settled := pathRows("rx", senders, got, oneWay, s, t0.Add(10*time.Second))
	want := []xdpgenv1alpha1.PathResult{
		// Finished sending 5 s ago: settled, though its run goes on (it receives until its own paths settle).
		{Sender: "also-receives", Receiver: "rx", SentPackets: 2000, ReceivedPackets: 1999, ReceivedBytes: 1999 * 64, LostPackets: 1,
			LossRatio: "0.0005", Settled: true, RTT: rtt},
		// Finished 1 s ago, drain 2 s: not settled, loss from the gaps.
		{Sender: "done", Receiver: "rx", SentPackets: 1000, ReceivedPackets: 990, ReceivedBytes: 994 * 64, LostPackets: 1,
			LossRatio: "0.001", Duplicates: 4, RTT: rtt},
		{Sender: "running", Receiver: "rx", SentPackets: 5000, ReceivedPackets: 4990, ReceivedBytes: 4990 * 64, LostPackets: 3,
			LossRatio: "0.0006", OutOfOrder: 2, RTT: rtt, OneWay: oneWay["running"]},
		{Sender: "silent", Receiver: "rx", LossRatio: "0"},
	}
	if diff := cmp.Diff(want, rows); diff != "" || settled {
		t.Errorf("paths 10 s in (settled %v; -want +got):\n%s", settled, diff)
	}

	// 3 s later the finished sender's path settles against its count; the running one and the silent one do not.
	rows, settled = pathRows("rx", senders, got, oneWay, s, t0.Add(13*time.Second))
	if r := rows[1]; !r.Settled || r.LostPackets != 10 || r.LossRatio != "0.01" || settled {
		t.Errorf("finished sender's path after the drain: %+v (all settled %v), want settled with 10 of 1000 lost", r, settled)
	}

	// A sender that never reported is gone a minute after the receiver started; one whose report stopped moving,
	// a minute after its last write. Both settle what they have once the drain passed.
	rows, settled = pathRows("rx", senders, got, oneWay, s, t0.Add(71*time.Second))
	if !settled {
		t.Errorf("after every sender finished or went silent and the drain passed, paths %+v are not all settled", rows)
	}
	if r := rows[2]; r.LostPackets != 10 || !r.Settled {
		t.Errorf("silent sender's path: %+v, want settled against its last count (10 of 5000 lost)", r)
	}
}

func TestIDs(t *testing.T) {
	a := &xdpgenv1alpha1.TrafficGenerator{ObjectMeta: metav1.ObjectMeta{UID: "u1", Generation: 1}}
	b := a.DeepCopy()
	b.Generation = 2
	if generatorID(a) == generatorID(b) || generatorID(a) != generatorID(a.DeepCopy()) {
		t.Error("a generator's id must follow its UID and generation, and only them")
	}
	if nodeID("node-a") == nodeID("node-b") {
		t.Error("two nodes share an id")
	}
}

// TestUnitReceiverPathsStartAtZero: a receiving node's first report, the one that tells the senders to send,
// already holds a row for every sender, at zero. Its metrics are there at zero before the first frame arrives,
// so that increase() and rate() over the run count every frame.
func TestUnitReceiverPathsStartAtZero(t *testing.T) {
	tg := unitGenerator("receiver-zero", func(s *xdpgenv1alpha1.TrafficGeneratorSpec) {
		s.Destination.Address = ""
		s.NodeSelector = map[string]string{"pool": "senders"}
		s.Receivers = &xdpgenv1alpha1.Receivers{NodeSelector: map[string]string{"pool": "unit"}, Interface: "fake0"}
	})
	sender := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-s", Labels: map[string]string{"pool": "senders", "kubernetes.io/os": "linux"}}}
	h := newRunHarness(t, tg, sender)
	h.reconcile()
	st := h.awaitWrite("the receiver's ready report", func(st xdpgenv1alpha1.NodeReportStatus) bool {
		return st.ReceiveStartTime != nil
	})
	want := []xdpgenv1alpha1.PathResult{{Sender: "node-s", Receiver: "node-u", LossRatio: "0"}}
	if diff := cmp.Diff(want, st.Received); diff != "" {
		t.Fatalf("the receiver's paths when it is ready (-want +got):\n%s", diff)
	}
	// Gathered, not looked up: a lookup would make the series.
	families, err := ctrlmetrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"xdpgen_agent_received_packets_total", "xdpgen_agent_received_bytes_total"} {
		found := false
		for _, f := range families {
			for _, m := range f.GetMetric() {
				l := map[string]string{}
				for _, p := range m.GetLabel() {
					l[p.GetName()] = p.GetValue()
				}
				if f.GetName() == name && l["generator"] == "receiver-zero" && l["sender"] == "node-s" {
					found = true
					if v := m.GetCounter().GetValue(); v != 0 {
						t.Errorf("%s%v = %v before any frame", name, l, v)
					}
				}
			}
		}
		if !found {
			t.Errorf("no %s series for the path node-s > node-u before the first frame", name)
		}
	}
}

// TestUnitContinueFrom: what earlier incarnations' streams sent goes to the same receivers by address, whatever
// their order now; a destination no longer sent to is left out.
func TestUnitContinueFrom(t *testing.T) {
	a, b, c, gone := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("10.0.0.3"), netip.MustParseAddr("10.0.0.9")
	p := &sendingPaths{receivers: []receiverNode{{node: "a", addr: a}, {node: "b", addr: b}, {node: "c", addr: c}}, stamp: &dataplane.Stamp{}}
	p.continueFrom([][]uint64{{5, 7, 2}, {1}}, []netip.Addr{c, a, gone})
	if want := [][]uint64{{7, 0, 5}, {0, 0, 1}}; !cmp.Equal(p.stamp.Continue, want) {
		t.Errorf("Continue %v, want %v", p.stamp.Continue, want)
	}
	if want := []uint64{7, 0, 6}; !cmp.Equal(p.earlier, want) {
		t.Errorf("earlier %v, want %v", p.earlier, want)
	}
	// Never reported a path: the earlier destinations were this run's receivers.
	p.continueFrom([][]uint64{{5, 7}}, nil)
	if want := [][]uint64{{5, 7, 0}}; !cmp.Equal(p.stamp.Continue, want) {
		t.Errorf("Continue without paths %v, want %v", p.stamp.Continue, want)
	}
}
