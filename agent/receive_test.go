package agent_test

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	vnl "github.com/vishvananda/netlink"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/xdpgen/xdpgen/agent"
	xdpgenv1alpha1 "github.com/xdpgen/xdpgen/api/v1alpha1"
	"github.com/xdpgen/xdpgen/bpf"
	"github.com/xdpgen/xdpgen/bpf/bpftest"
	"github.com/xdpgen/xdpgen/test/netnstest"
	"github.com/xdpgen/xdpgen/test/poll"
)

// meshNode is a node of the mesh test: its agent sends and receives in a namespace of its own, behind a router
// shared with the other nodes, and its Node carries that namespace's address as its InternalIP.
func (f *fixture) meshNode(name string, h netnstest.Host) string {
	f.t.Helper()
	node := f.node(name)
	var n corev1.Node
	if err := k8s.Get(f.t.Context(), client.ObjectKey{Name: node}, &n); err != nil {
		f.t.Fatal(err)
	}
	n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: h.IPv4.String()}, {Type: corev1.NodeHostName, Address: node}}
	if err := k8s.Status().Update(f.t.Context(), &n); err != nil {
		f.t.Fatal(err)
	}
	if f.hostOf == nil {
		f.hostOf = map[string]netnstest.Host{}
	}
	f.hostOf[name] = h
	return node
}

// meshOf makes n hosts behind a router (netnstest.NewStar) and a mesh node of each, named prefix0, prefix1, ...;
// it returns the star and the nodes' names.
func (f *fixture) meshOf(n int, prefix string) (*netnstest.Star, []string) {
	f.t.Helper()
	star := netnstest.NewStar(f.t, n, netnstest.Options{})
	var nodes []string
	for i, h := range star.Hosts {
		nodes = append(nodes, f.meshNode(fmt.Sprintf("%s%d", prefix, i), h))
	}
	return star, nodes
}

// meshSpec makes s a mesh of the fixture's nodes: each sends to every other, one frame in sampleEvery timed.
func (f *fixture) meshSpec(s *xdpgenv1alpha1.TrafficGeneratorSpec, sampleEvery int32) {
	s.Destination = xdpgenv1alpha1.Destination{Port: 9, PortCount: 1}
	s.Receivers = &xdpgenv1alpha1.Receivers{NodeSelector: map[string]string{fixtureLabel: f.namespace}, Interface: "auto",
		DrainTime: &metav1.Duration{Duration: time.Second}, LatencySampleEvery: ptr.To(sampleEvery)}
}

// routerDropping loads the test's stamp dropper, dropping ppm of the stamped frames to dst (none when ppm is 0),
// and attaches it to the router's end of a node's link. A router port takes the frames its peer redirects or
// sends back with XDP_TX only while it has an XDP program, so every port gets one.
func routerDropping(t *testing.T, port netnstest.Host, dst netip.Addr, ppm uint32) *bpftest.StampDrop {
	t.Helper()
	d, err := bpftest.LoadStampDrop(bpftest.StampDropConfig{DstAddr: netip.AddrFrom4(dst.As4()).As16(), DropPpm: ppm})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	var lk link.Link
	if err := netnstest.Do(port.NS, func() error {
		l, err := vnl.LinkByName(port.Interface)
		if err != nil {
			return err
		}
		lk, err = link.AttachXDP(link.XDPOptions{Program: d.Program, Interface: l.Attrs().Index})
		return err
	}); err != nil {
		t.Fatalf("attach the dropper to %s: %v", port.Interface, err)
	}
	t.Cleanup(func() { lk.Close() })
	return d
}

// routerDelaying makes the path from src to dst reorder frames where the router sends them on to dst (the
// egress of port, dst's link): an htb qdisc whose class 1:2 has a token bucket of 100 kbit/s shallower than one
// frame, and the test's delayer, which puts the frames whose sequence numbers are 500 and 501 of every 1000 of
// each stream in that class. The first of a pair goes through at once and leaves the bucket about 5 ms in debt;
// the second waits that long, while the path's later frames (100 µs apart at the test's rate) overtake it
// through the default class. Class 1:2 is served only when the default class has nothing to send, so that the
// first of a pair never overtakes an earlier frame; it may be overtaken itself when frames queue in the default
// class (a loaded router), and arrive out of order too.
func routerDelaying(t *testing.T, port netnstest.Host, src, dst netip.Addr) *bpftest.StampDelay {
	t.Helper()
	d, err := bpftest.LoadStampDelay(bpftest.StampDelayConfig{SrcAddr: netip.AddrFrom4(src.As4()).As16(),
		DstAddr: netip.AddrFrom4(dst.As4()).As16(), Every: 1000, First: 500, Classid: 0x1_0002})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	port.Exec(t, "tc", "qdisc", "add", "dev", port.Interface, "root", "handle", "1:", "htb", "default", "1")
	t.Cleanup(func() { port.Exec(t, "tc", "qdisc", "del", "dev", port.Interface, "root") })
	port.Exec(t, "tc", "class", "add", "dev", port.Interface, "parent", "1:", "classid", "1:1", "htb", "rate", "10gbit",
		"burst", "1m", "quantum", "1514", "prio", "0")
	port.Exec(t, "tc", "class", "add", "dev", port.Interface, "parent", "1:", "classid", "1:2", "htb", "rate", "100kbit",
		"ceil", "100kbit", "burst", "10", "cburst", "10", "quantum", "1514", "prio", "1")
	var lk link.Link
	if err := netnstest.Do(port.NS, func() error {
		l, err := vnl.LinkByName(port.Interface)
		if err != nil {
			return err
		}
		lk, err = link.AttachTCX(link.TCXOptions{Program: d.Program, Attach: ebpf.AttachTCXEgress, Interface: l.Attrs().Index})
		return err
	}); err != nil {
		t.Fatalf("attach the delayer to %s: %v", port.Interface, err)
	}
	t.Cleanup(func() { lk.Close() })
	return d
}

// delayed is how many frames the delayer put in the delaying class: the first frames of its pairs (key
// bpftest.StampDelayFirst) or the second ones, which it held back (bpftest.StampDelayHeld).
func delayed(t *testing.T, d *bpftest.StampDelay, key uint32) int64 {
	t.Helper()
	var perCPU []bpf.Counter
	if err := d.Counters.Lookup(key, &perCPU); err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, c := range perCPU {
		n += int64(c.Packets)
	}
	return n
}

func dropped(t *testing.T, d *bpftest.StampDrop) int64 {
	t.Helper()
	var perCPU []bpf.Counter
	if err := d.Counters.Lookup(bpftest.StampDropDropped, &perCPU); err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, c := range perCPU {
		n += int64(c.Packets)
	}
	return n
}

// TestMeshOfThree: three nodes, each sender and receiver of one generator, behind a router that drops 1% of the
// stamped frames from the third node to the first, and holds back 2 in 1000 of the second node's to the first
// so that later ones overtake them. Every node sends to the two others, and each receiver settles its paths
// against its senders' reports: every path arrives exactly, but the dropping one, whose loss is what the dropper
// dropped (1% +- 0.2%); the delayed path's frames arrive out of order as many times as the delayer held one
// back, and none of them is lost; every path's round trip is timed; no XDP program is left on the nodes.
func TestMeshOfThree(t *testing.T) {
	f := newFixture(t)
	star, nodes := f.meshOf(3, "mesh")
	routerDropping(t, star.Ports[0], star.Hosts[0].IPv4, 0)
	routerDropping(t, star.Ports[1], star.Hosts[0].IPv4, 0)
	dropper := routerDropping(t, star.Ports[2], star.Hosts[0].IPv4, 10_000)
	delayer := routerDelaying(t, star.Ports[0], star.Hosts[1].IPv4, star.Hosts[0].IPv4)

	const perNode, pps = 60_000, 20_000
	tg := f.generator("mesh", func(s *xdpgenv1alpha1.TrafficGeneratorSpec) {
		f.meshSpec(s, 100)
		s.Packets, s.Rate = ptr.To[int64](perNode), &xdpgenv1alpha1.Rate{PacketsPerSecond: ptr.To[int64](pps)}
	})
	for i := range nodes {
		f.startAgent(fmt.Sprintf("mesh%d", i), nil)
	}
	reports := map[string]*xdpgenv1alpha1.NodeReport{}
	for i, node := range nodes {
		reports[node] = f.report(tg, fmt.Sprintf("mesh%d", i), 60*time.Second, "completed", phase(xdpgenv1alpha1.PhaseCompleted))
	}
	lossy, reordering := [2]string{nodes[2], nodes[0]}, [2]string{nodes[1], nodes[0]}
	for _, node := range nodes {
		rep := reports[node]
		t.Logf("%s: %s", node, rep.Status.Message)
		if rep.Status.Packets != perNode || len(rep.Status.Sent) != 2 {
			t.Errorf("%s sent %d packets over paths %+v, want %d over two", node, rep.Status.Packets, rep.Status.Sent, perNode)
		}
		for _, p := range rep.Status.Sent {
			if p.Packets != perNode/2 || p.RTT == nil || p.RTT.Samples < perNode/2/100*9/10 || p.RTT.P50.Duration <= 0 || p.RTT.P50.Duration > 10*time.Millisecond {
				t.Errorf("%s sent to %s: %+v (RTT %+v), want %d packets and about %d round trips timed", node, p.Receiver, p, p.RTT, perNode/2, perNode/2/100)
			}
		}
		var timed, longest int64
		for _, b := range rep.Status.RTTHistogram {
			timed += b.Count
		}
		for _, p := range rep.Status.Sent {
			if p.RTT != nil {
				longest = max(longest, int64(p.RTT.Max.Duration))
			}
		}
		if mean := rep.Status.RTTSumNanoseconds / max(timed, 1); timed == 0 || mean <= 0 || mean > longest {
			t.Errorf("%s timed %d round trips summing to %d ns: want a mean above 0 and at most the longest, %d ns", node, timed,
				rep.Status.RTTSumNanoseconds, longest)
		}
		// The agent's histogram metric holds what the report does.
		if h := agent.RTTHistogramOf(t, tg.Namespace, tg.Name, node); h.GetSampleCount() != uint64(timed) || h.GetSampleSum() != float64(rep.Status.RTTSumNanoseconds)/1e9 {
			t.Errorf("%s: xdpgen_agent_rtt_seconds counts %d round trips summing to %gs, the report %d summing to %d ns", node,
				h.GetSampleCount(), h.GetSampleSum(), timed, rep.Status.RTTSumNanoseconds)
		}
		var senders []string
		for _, p := range rep.Status.Received {
			senders = append(senders, p.Sender)
			// Out of order: at least every frame held back, at most those and the first frames of their pairs.
			var leastOutOfOrder, mostOutOfOrder int64
			if [2]string{p.Sender, p.Receiver} == reordering {
				// 500 and 501 of every 1000 of a stream are 30 pairs of the path's 30000 frames over one thread.
				held := delayed(t, delayer, bpftest.StampDelayHeld)
				mostOutOfOrder = held + delayed(t, delayer, bpftest.StampDelayFirst)
				if held < perNode/2/1000 {
					t.Errorf("the delayer held back %d frames of path %s>%s, want one per 1000 of its %d", held, p.Sender, p.Receiver, perNode/2)
				}
				// A held frame that the token bucket's timer releases on the other CPU reaches that CPU's row of the
				// stream, which did not see the frames that overtook it (out of order is seen per receiving CPU,
				// README): all but a tenth must be counted.
				leastOutOfOrder = held - held/10
				t.Logf("path %s>%s: %d frames held back, %d counted out of order", p.Sender, p.Receiver, held, p.OutOfOrder)
			}
			if !p.Settled || p.Receiver != node || p.SentPackets != perNode/2 || p.Duplicates != 0 || p.OutOfOrder < leastOutOfOrder ||
				p.OutOfOrder > mostOutOfOrder {
				t.Errorf("path %s>%s: %+v, want settled with %d sent, %d to %d out of order, no duplicates", p.Sender, p.Receiver, p,
					perNode/2, leastOutOfOrder, mostOutOfOrder)
			}
			// One host, one clock: the one-way delays are real, and shorter than the round trips.
			if p.OneWay == nil || p.RTT == nil || p.OneWay.Samples < perNode/2/100*9/10 || p.OneWay.P50.Duration <= 0 || p.OneWay.P50.Duration > p.RTT.P99.Duration {
				t.Errorf("path %s>%s: one way %+v, round trip %+v; want about %d one-way samples, their median below the round trip's p99",
					p.Sender, p.Receiver, p.OneWay, p.RTT, perNode/2/100)
			}
			if [2]string{p.Sender, p.Receiver} == lossy {
				if lost := dropped(t, dropper); p.LostPackets != lost || p.LostPackets < 240 || p.LostPackets > 360 {
					t.Errorf("path %s>%s lost %d of %d, want what the router dropped (%d), 1%% +- 0.2%%", p.Sender, p.Receiver, p.LostPackets, p.SentPackets, lost)
				}
				t.Logf("path %s>%s: %d of %d lost (loss ratio %s), RTT %+v", p.Sender, p.Receiver, p.LostPackets, p.SentPackets, p.LossRatio, p.RTT)
			} else if p.ReceivedPackets != perNode/2 || p.LostPackets != 0 {
				t.Errorf("path %s>%s: received %d, lost %d; want all %d", p.Sender, p.Receiver, p.ReceivedPackets, p.LostPackets, perNode/2)
			}
		}
		sort.Strings(senders)
		var want []string
		for _, n := range nodes {
			if n != node {
				want = append(want, n)
			}
		}
		if fmt.Sprint(senders) != fmt.Sprint(want) {
			t.Errorf("%s received from %v, want %v", node, senders, want)
		}
	}
	// The runs are over: the receive programs go with their last user.
	for _, h := range star.Hosts {
		poll.Until(t, 5*time.Second, 50*time.Millisecond, "the receive program on "+h.Interface+" detached", func() error {
			if h.XDPAttached(t) {
				return fmt.Errorf("an XDP program is attached")
			}
			return nil
		})
	}
}

// TestMeshRTTAgreesWithPing: two nodes behind a router, each sending to the other 1000 frames a second, every
// frame timed. On the idle path the median round trip in the sender's NodeReport agrees with ping's on the same
// path (within 50 us or 20%, as the data plane's TestRTTAgreesWithPing). With a token bucket queueing the way to
// the second node, both round trips grow to milliseconds (each crosses the queue, one on its way out, the other
// on its way back), and the one-way delays say which way the queue is: the second node's, not the first's.
func TestMeshRTTAgreesWithPing(t *testing.T) {
	f := newFixture(t)
	star, nodes := f.meshOf(2, "rtt")
	for i, port := range star.Ports {
		routerDropping(t, port, star.Hosts[1-i].IPv4, 0) // the router's veth ends receive redirected frames
	}
	for i := range nodes {
		f.startAgent(fmt.Sprintf("rtt%d", i), nil)
	}
	// delays runs a generator of perNode frames per node at pps and returns, per node, the median round trip to
	// the other node and the median one-way delay from it.
	type delays struct{ rtt, oneWay time.Duration }
	run := func(name string, perNode, pps int64) map[string]delays {
		t.Helper()
		tg := f.generator(name, func(s *xdpgenv1alpha1.TrafficGeneratorSpec) {
			f.meshSpec(s, 1)
			s.Packets, s.Rate = ptr.To(perNode), &xdpgenv1alpha1.Rate{PacketsPerSecond: ptr.To(pps)}
		})
		medians := map[string]delays{}
		for i, node := range nodes {
			rep := f.report(tg, fmt.Sprintf("rtt%d", i), 60*time.Second, "completed", phase(xdpgenv1alpha1.PhaseCompleted))
			sent, received := rep.Status.Sent, rep.Status.Received
			if len(sent) != 1 || sent[0].RTT == nil || sent[0].RTT.Samples == 0 || len(received) != 1 || received[0].OneWay == nil ||
				received[0].OneWay.Samples == 0 {
				t.Fatalf("%s: %s sent %+v and received %+v, want one path each way, timed", name, node, sent, received)
			}
			medians[node] = delays{rtt: sent[0].RTT.P50.Duration, oneWay: received[0].OneWay.P50.Duration}
			t.Logf("%s: %s to %s: RTT %+v; from %s: one way %+v", name, node, sent[0].Receiver, sent[0].RTT, received[0].Sender,
				received[0].OneWay)
		}
		return medians
	}
	// A ping a millisecond, as the nodes send 1000 frames a second (pings farther apart find the CPUs asleep).
	pings := star.Hosts[0].Ping(t, star.Hosts[1].IPv4, 200, time.Millisecond)
	slices.Sort(pings)
	pingMedian := pings[len(pings)/2]
	idle := run("rtt-idle", 2000, 1000)
	rtt := idle[nodes[0]].rtt
	t.Logf("idle: ping median %s, xdpgen's %s", pingMedian, rtt)
	if diff := max(rtt-pingMedian, pingMedian-rtt); diff > 50*time.Microsecond && float64(diff) > 0.2*float64(pingMedian) {
		t.Fatalf("idle path %s>%s: the report's median RTT %s, ping's %s: want them within 50us or 20%%", nodes[0], nodes[1], rtt,
			pingMedian)
	}

	// 2000 64-byte frames a second are 1 Mbit/s: a 500 kbit/s token bucket on the way to the second node holds them
	// in its queue.
	star.Ports[1].Exec(t, "tc", "qdisc", "add", "dev", star.Ports[1].Interface, "root", "tbf", "rate", "500kbit", "burst", "1600",
		"latency", "30ms")
	queued := run("rtt-queued", 4000, 2000)
	for _, node := range nodes {
		if q := queued[node].rtt; q < 5*time.Millisecond || q < 10*idle[node].rtt {
			t.Errorf("with a token bucket queueing the way to %s, %s's median RTT is %s (idle %s): want it to grow to milliseconds",
				nodes[1], node, q, idle[node].rtt)
		}
	}
	if into, from := queued[nodes[1]].oneWay, queued[nodes[0]].oneWay; into < 5*time.Millisecond || from > time.Millisecond {
		t.Errorf("median one-way delay into %s (queued) %s, into %s (not queued) %s: want milliseconds and microseconds", nodes[1],
			into, nodes[0], from)
	}
}

// TestRestartedSenderContinuesItsStreams: a sender killed mid-run (no last report, its counters left pinned) and
// started again continues its streams' sequence numbers from the pins, so that its receiver accounts every
// frame of the run once: the path settles with all that was sent received, no duplicates, nothing reordered or
// lost, and the sender's path count holds both incarnations' frames.
func TestRestartedSenderContinuesItsStreams(t *testing.T) {
	f := newFixture(t)
	star := netnstest.NewStar(t, 2, netnstest.Options{})
	sender := f.meshNode("sender", star.Hosts[0])
	receiver := f.meshNode("receiver", star.Hosts[1])
	const receiverLabel = "test.xdpgen.io/receiver"
	var n corev1.Node
	if err := k8s.Get(t.Context(), client.ObjectKey{Name: receiver}, &n); err != nil {
		t.Fatal(err)
	}
	n.Labels[receiverLabel] = f.namespace
	if err := k8s.Update(t.Context(), &n); err != nil {
		t.Fatal(err)
	}
	for _, port := range star.Ports {
		routerDropping(t, port, star.Hosts[1].IPv4, 0)
	}

	const total, pps = 40_000, 10_000
	tg := f.generator("restarted", func(s *xdpgenv1alpha1.TrafficGeneratorSpec) {
		s.Destination = xdpgenv1alpha1.Destination{Port: 9, PortCount: 1}
		s.Receivers = &xdpgenv1alpha1.Receivers{NodeSelector: map[string]string{receiverLabel: f.namespace}, Interface: "auto",
			DrainTime: &metav1.Duration{Duration: time.Second}, LatencySampleEvery: ptr.To[int32](100)}
		s.Packets, s.Rate = ptr.To[int64](total), &xdpgenv1alpha1.Rate{PacketsPerSecond: ptr.To[int64](pps)}
	})
	f.startAgent("receiver", nil)
	killed, stop := f.startAgentOf("sender", nil)
	f.report(tg, "sender", 30*time.Second, "sending", func(r *xdpgenv1alpha1.NodeReport) bool { return r.Status.Packets > total/4 })
	killed.Kill()
	stop()
	left := f.report(tg, "sender", time.Second, "left running", phase(xdpgenv1alpha1.PhaseRunning))
	t.Logf("the killed sender last reported %d packets", left.Status.Packets)

	f.startAgent("sender", nil)
	done := f.report(tg, "sender", 30*time.Second, "Completed", phase(xdpgenv1alpha1.PhaseCompleted))
	if done.Status.Packets != total || done.Status.Restarts != 1 || len(done.Status.Sent) != 1 || done.Status.Sent[0].Packets != total {
		t.Fatalf("the sender completed with %d packets, %d restarts, paths %+v; want %d packets, 1 restart, all to %s", done.Status.Packets,
			done.Status.Restarts, done.Status.Sent, total, receiver)
	}
	rep := f.report(tg, "receiver", 30*time.Second, "Completed", phase(xdpgenv1alpha1.PhaseCompleted))
	if len(rep.Status.Received) != 1 {
		t.Fatalf("the receiver's paths: %+v, want the one from %s", rep.Status.Received, sender)
	}
	p := rep.Status.Received[0]
	t.Logf("path %s>%s: %+v", p.Sender, p.Receiver, p)
	if !p.Settled || p.Sender != sender || p.SentPackets != total || p.ReceivedPackets != total || p.LostPackets != 0 ||
		p.Duplicates != 0 || p.OutOfOrder != 0 {
		t.Fatalf("path %s>%s: %+v; want settled with all %d sent received once, in order", p.Sender, p.Receiver, p, total)
	}
}
