package dataplane

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	vnl "github.com/vishvananda/netlink"

	"github.com/xdpgen/xdpgen/bpf"
	"github.com/xdpgen/xdpgen/bpf/bpftest"
	"github.com/xdpgen/xdpgen/test/netnstest"
)

// attachReceiver attaches a Receiver that takes any generator's frames to the host's veth and checks, when the
// test ends, that it left nothing attached.
func attachReceiver(t *testing.T, h netnstest.Host, opts ReceiverOptions) *Receiver {
	t.Helper()
	opts.AnyGenerator = true
	var rx *Receiver
	if err := netnstest.Do(h.NS, func() (err error) {
		rx, err = AttachReceiver(h.Interface, opts)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := rx.Close(); err != nil {
			t.Errorf("close receiver: %v", err)
		}
		if h.XDPAttached(t) {
			t.Errorf("an XDP program is still attached to %s after the receiver closed", h.Interface)
		}
	})
	return rx
}

// newGenerator makes a UDPGenerator in the host's namespace, closed when the test ends.
func newGenerator(t *testing.T, h netnstest.Host, cfg UDPConfig) *UDPGenerator {
	t.Helper()
	var g *UDPGenerator
	if err := netnstest.Do(h.NS, func() (err error) {
		g, err = NewUDPGenerator(cfg)
		return err
	}); err != nil {
		t.Fatalf("NewUDPGenerator: %v", err)
	}
	t.Cleanup(func() { g.Close() })
	return g
}

// settledPaths waits until the receivers' paths of generator have received all that stats says was sent (or
// stop changing for 200 ms: frames were lost), and settles each destination's path.
func settledPaths(t *testing.T, generator, sender uint32, stats Stats, receivers ...*Receiver) map[netip.Addr]PathResult {
	t.Helper()
	var sentTotal uint64
	for _, d := range stats.Destinations {
		sentTotal += d.Packets
	}
	var paths map[PathKey]StreamCounts
	var last uint64
	stableSince := time.Now()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		var streams []Stream
		for _, rx := range receivers {
			s, err := rx.Streams()
			if err != nil {
				t.Fatal(err)
			}
			streams = append(streams, s...)
		}
		paths = Paths(streams)
		var got uint64
		for k, c := range paths {
			if k.Generator == generator {
				got += c.Packets
			}
		}
		if got >= sentTotal {
			break
		}
		if got != last {
			last, stableSince = got, time.Now()
		} else if time.Since(stableSince) > 200*time.Millisecond {
			break
		}
	}
	out := map[netip.Addr]PathResult{}
	for _, d := range stats.Destinations {
		out[d.Addr] = SettlePath(d.Packets, paths[PathKey{Generator: generator, Sender: sender, Dst: d.Addr}])
	}
	return out
}

// TestStampedRunSettlesExactly sends a bounded count of stamped frames from every thread: the receiver
// accounts one stream per thread, and what it received is exactly what the generator sent, with nothing
// reordered or duplicated.
func TestStampedRunSettlesExactly(t *testing.T) {
	threads := min(runtime.NumCPU(), 2)
	for _, v6 := range []bool{false, true} {
		t.Run(map[bool]string{false: "ipv4", true: "ipv6"}[v6], func(t *testing.T) {
			p := netnstest.NewPair(t, netnstest.Options{Queues: threads})
			rx := attachReceiver(t, p.Remote, ReceiverOptions{})
			src, dst := p.Local.IPv4, p.Remote.IPv4
			if v6 {
				src, dst = p.Local.IPv6, p.Remote.IPv6
			}
			const count = 100_001
			g := newGenerator(t, p.Local, UDPConfig{DstAddr: dst, Threads: threads, Packets: count, Stamp: &Stamp{Generator: 7, Sender: 3}})
			s := run(t, g)
			if len(s.Destinations) != 1 || s.Destinations[0] != (DestinationSent{Addr: dst, Packets: count}) {
				t.Fatalf("sent per destination %+v, want %d to %s", s.Destinations, count, dst)
			}
			res := settledPaths(t, 7, 3, s, rx)[dst]
			if res != (PathResult{Sent: count, Received: count}) {
				t.Fatalf("path settled as %+v, want all %d received", res, count)
			}
			streams, err := rx.Streams()
			if err != nil {
				t.Fatal(err)
			}
			if len(streams) != threads {
				t.Fatalf("%d streams, want one per thread (%d): %+v", len(streams), threads, streams)
			}
			for _, st := range streams {
				if st.Src != src || st.Dst != dst || int(st.Stream) >= threads || st.Expected != st.Packets || st.Gaps() != 0 {
					t.Fatalf("stream %+v: want %s -> %s, a thread's index, every sequence number once", st, src, dst)
				}
			}
			c, err := rx.Counts()
			if err != nil {
				t.Fatal(err)
			}
			if c.Stamped.Packets != count || c.Matched.Packets != 0 {
				t.Fatalf("counts %+v, want %d stamped frames", c, count)
			}
		})
	}
}

// TestStampedFramesReachASocket lets stamped frames through to a UDP socket: the kernel validated their
// checksums, and each payload starts with its stamp.
func TestStampedFramesReachASocket(t *testing.T) {
	for _, tc := range []struct {
		name string
		v6   bool
		size int
	}{{"ipv4 64", false, 64}, {"ipv6 82", true, 82}, {"ipv6 300", true, 300}} {
		t.Run(tc.name, func(t *testing.T) {
			const count, dport = 300, 7777
			p := netnstest.NewPair(t, netnstest.Options{})
			rx := attachReceiver(t, p.Remote, ReceiverOptions{Pass: true})
			dst := p.Remote.IPv4
			if tc.v6 {
				dst = p.Remote.IPv6
			}
			conn := netnstest.ListenUDP(t, p.Remote.NS, dst, dport, p.Remote.Interface)
			before := netnstest.ReadUDPStats(t, p.Remote.NS)
			g := newGenerator(t, p.Local, UDPConfig{DstAddr: dst, DstPort: dport, FrameSize: tc.size, Packets: count,
				Stamp: &Stamp{Generator: 0x01020304, Sender: 0x0a0b0c0d, ReflectEvery: 0}})
			run(t, g)
			buf := make([]byte, 4096)
			seen := map[uint32]bool{}
			for i := range count {
				_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
				n, _, err := conn.ReadFromUDPAddrPort(buf)
				if err != nil {
					t.Fatalf("datagram %d of %d: %v", i+1, count, err)
				}
				b := buf[:n]
				if n != tc.size-headerLen(tc.v6, 0) || binary.BigEndian.Uint16(b) != bpf.StampMagic || b[2] != 0 || b[3] != 0 ||
					binary.BigEndian.Uint32(b[4:]) != 0x01020304 || binary.BigEndian.Uint32(b[8:]) != 0x0a0b0c0d {
					t.Fatalf("datagram %d: % x, want a %d-byte payload starting with the stamp", i, b[:min(n, StampLen)], tc.size-headerLen(tc.v6, 0))
				}
				seen[binary.BigEndian.Uint32(b[12:])] = true
			}
			if len(seen) != count {
				t.Fatalf("%d distinct sequence numbers in %d datagrams", len(seen), count)
			}
			after := netnstest.ReadUDPStats(t, p.Remote.NS)
			if after.InCsumErrors != before.InCsumErrors || after.InErrors != before.InErrors {
				t.Fatalf("udp errors: before %+v after %+v", before, after)
			}
			if c, _ := rx.Counts(); c.Stamped.Packets != count {
				t.Fatalf("receiver accounted %d stamped frames, want %d", c.Stamped.Packets, count)
			}
		})
	}
}

// passOnRouterOut attaches a pass program to the router's veths towards the receivers, and returns it. A veth
// takes the frames its peer sends back with XDP_TX only while it has an XDP program: with GRO alone the kernel
// queues them and never polls the queue.
func passOnRouterOut(t *testing.T, f *netnstest.Fanout) *ebpf.Program {
	t.Helper()
	pass, err := constantProgram(ActionPass)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pass.Close() })
	for _, out := range f.RouterOut {
		attachXDP(t, out, pass)
	}
	return pass
}

// TestTwoDestinationsWithLoss sends to two receivers behind a router, round-robin, with a dropper on the router
// discarding 1% of the frames to the second: the first path's received equals its sent exactly, the second's
// loss is 1% +- 0.2% and is exactly what the dropper dropped; the sender times both paths' reflected frames.
func TestTwoDestinationsWithLoss(t *testing.T) {
	f := netnstest.NewFanout(t, 2, netnstest.Options{})
	passOnRouterOut(t, f)
	rx0 := attachReceiver(t, f.Receivers[0], ReceiverOptions{})
	rx1 := attachReceiver(t, f.Receivers[1], ReceiverOptions{})
	catcher := attachReceiver(t, f.Sender, ReceiverOptions{})
	drop, err := bpftest.LoadStampDrop(bpftest.StampDropConfig{DstAddr: netip.AddrFrom4(f.Receivers[1].IPv4.As4()).As16(), DropPpm: 10_000})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { drop.Close() })
	attachXDP(t, f.RouterIn, drop.Program)

	const count, every = 60_000, 100
	dsts := []netip.Addr{f.Receivers[0].IPv4, f.Receivers[1].IPv4}
	g := newGenerator(t, f.Sender, UDPConfig{DstAddrs: dsts, Packets: count, RatePPS: 20_000,
		Stamp: &Stamp{Generator: 11, Sender: 1, ReflectEvery: every}})
	s := run(t, g)
	if s.Destinations[0].Packets != count/2 || s.Destinations[1].Packets != count/2 {
		t.Fatalf("sent per destination %+v, want %d each", s.Destinations, count/2)
	}
	res := settledPaths(t, 11, 1, s, rx0, rx1)
	var dropped []bpf.Counter
	if err := drop.Counters.Lookup(bpftest.StampDropDropped, &dropped); err != nil {
		t.Fatal(err)
	}
	var droppedN uint64
	for _, c := range dropped {
		droppedN += c.Packets
	}
	if r := res[dsts[0]]; r != (PathResult{Sent: count / 2, Received: count / 2}) {
		t.Fatalf("path to %s settled as %+v, want everything received", dsts[0], r)
	}
	r := res[dsts[1]]
	if r.Lost != droppedN || r.LossRatio < 0.008 || r.LossRatio > 0.012 || r.Reordered != 0 || r.Duplicates != 0 {
		t.Fatalf("path to %s settled as %+v, want the %d frames the dropper dropped lost (1%% +- 0.2%%)", dsts[1], r, droppedN)
	}
	t.Logf("path to %s: %d of %d lost (%.3f%%)", dsts[1], r.Lost, r.Sent, 100*r.LossRatio)

	lat := waitLatency(t, catcher, 11, len(dsts))
	for i, d := range dsts {
		h := lat[d]
		// Reflect-me frames are seq 0, 100, ...: those the dropper spared come back.
		want := uint64(count / 2 / every)
		if h == nil || h.Count > want || h.Count < want*95/100 {
			t.Fatalf("destination %d (%s): %+v samples, want about %d", i, d, h, want)
		}
		t.Logf("RTT to %s: %+v", d, h.Summary())
	}
}

// waitLatency waits until generator has histograms for n destinations on the receiver, and a moment more for
// the last reflected frames.
func waitLatency(t *testing.T, rx *Receiver, generator uint32, n int) map[netip.Addr]*LatencyHistogram {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		lat, err := rx.Latency(generator)
		if err != nil {
			t.Fatal(err)
		}
		if len(lat) >= n || time.Now().After(deadline) {
			time.Sleep(50 * time.Millisecond)
			if lat, err = rx.Latency(generator); err != nil {
				t.Fatal(err)
			}
			return lat
		}
	}
}

// attachXDP attaches prog to the host's veth with a BPF link, detached when the test ends.
func attachXDP(t *testing.T, h netnstest.Host, prog *ebpf.Program) {
	t.Helper()
	var lk link.Link
	err := netnstest.Do(h.NS, func() error {
		l, err := vnl.LinkByName(h.Interface)
		if err != nil {
			return err
		}
		lk, err = link.AttachXDP(link.XDPOptions{Program: prog, Interface: l.Attrs().Index})
		return err
	})
	if err != nil {
		t.Fatalf("attach to %s: %v", h.Interface, err)
	}
	t.Cleanup(func() { lk.Close() })
}

// TestRTTAgreesWithPing measures the round-trip time to a receiver behind a router: on the idle path the
// median agrees with ping's (within 50 us or 20%), and with a token bucket queueing the path it grows.
func TestRTTAgreesWithPing(t *testing.T) {
	f := netnstest.NewFanout(t, 1, netnstest.Options{})
	attachXDP(t, f.RouterIn, passOnRouterOut(t, f))
	rx := attachReceiver(t, f.Receivers[0], ReceiverOptions{})
	catcher := attachReceiver(t, f.Sender, ReceiverOptions{})
	dst := f.Receivers[0].IPv4

	// measure returns the round trips the sender timed and the one-way delays the receiver timed (one host, one
	// TAI clock: the one-way numbers are exact here).
	measure := func(generator uint32, rate uint64, n uint64) (rtt, oneWay LatencySummary) {
		t.Helper()
		g := newGenerator(t, f.Sender, UDPConfig{DstAddr: dst, Packets: n, RatePPS: rate, Stamp: &Stamp{Generator: generator, Sender: 1, ReflectEvery: 1}})
		run(t, g)
		h := waitLatency(t, catcher, generator, 1)[dst]
		if h == nil || h.Count == 0 {
			rc, _ := rx.Counts()
			cc, _ := catcher.Counts()
			t.Fatalf("generator %d: no round-trip times; the receiver counted %+v, the sender %+v", generator, rc, cc)
		}
		ow, err := rx.OneWay(generator)
		if err != nil {
			t.Fatal(err)
		}
		// Every frame is a sample; those a queue drops never arrive.
		if h := ow[f.Sender.IPv4]; h == nil || h.Count == 0 || h.Count > n || len(ow) != 1 {
			t.Fatalf("generator %d: one-way delays %+v, want up to %d samples from %s", generator, ow, n, f.Sender.IPv4)
		}
		return h.Summary(), ow[f.Sender.IPv4].Summary()
	}
	// A ping a millisecond, as xdpgen sends 1000 frames a second: pings 10 ms apart find the CPUs asleep and take
	// 40-60 us more to wake them.
	pings := f.Sender.Ping(t, dst, 200, time.Millisecond)
	slices.Sort(pings)
	pingMedian := pings[len(pings)/2]
	idle, idleOneWay := measure(1, 1000, 1000)
	diff := max(idle.P50-pingMedian, pingMedian-idle.P50)
	t.Logf("idle: ping median %s, xdpgen %+v, one way %+v", pingMedian, idle, idleOneWay)
	if idleOneWay.Samples != 1000 || idleOneWay.P50 <= 0 || idleOneWay.P50 > idle.P50 {
		t.Errorf("idle path: one-way median %s, round trip %s: want the one way shorter than the round trip", idleOneWay.P50, idle.P50)
	}
	if diff > 50*time.Microsecond && float64(diff) > 0.2*float64(pingMedian) {
		t.Fatalf("idle path: xdpgen's median RTT %s, ping's %s: want them within 50us or 20%%", idle.P50, pingMedian)
	}

	// 2000 64-byte frames a second are 1 Mbit/s: a 500 kbit/s token bucket holds them in its queue.
	f.RouterOut[0].Exec(t, "tc", "qdisc", "add", "dev", f.RouterOut[0].Interface, "root", "tbf", "rate", "500kbit", "burst", "1600", "latency", "30ms")
	queued, queuedOneWay := measure(2, 2000, 2000)
	t.Logf("queued by tbf: %+v, one way %+v", queued, queuedOneWay)
	if queued.P50 < 5*time.Millisecond || queued.P50 < 10*idle.P50 {
		t.Fatalf("with a token bucket queueing the path, the median RTT is %s (idle %s): want it to grow to milliseconds", queued.P50, idle.P50)
	}
	// The queue is on the way there: the one-way delay grows as much, and stays below the round trip.
	if queuedOneWay.P50 < queued.P50/2 || queuedOneWay.P50 > queued.P50 {
		t.Errorf("queued path: one-way median %s, round trip %s: want most of the round trip on the way there", queuedOneWay.P50, queued.P50)
	}
}

// TestReceiverSharedByTwoGenerators: one receiver accounts two generators sending at once, each exactly, and
// Forget removes one's streams and leaves the other's.
func TestReceiverSharedByTwoGenerators(t *testing.T) {
	cpus, err := AllowedCPUs()
	if err != nil {
		t.Fatal(err)
	}
	if len(cpus) < 2 {
		if os.Getenv("XDPGEN_REQUIRE_PRIVILEGED") == "1" {
			t.Fatal("XDPGEN_REQUIRE_PRIVILEGED=1 but this machine gives the tests one CPU: this test needs two, one per generator")
		}
		t.Skip("needs two CPUs, one per generator (set XDPGEN_REQUIRE_PRIVILEGED=1 to make this a failure)")
	}
	p := netnstest.NewPair(t, netnstest.Options{Queues: 2})
	rx := attachReceiver(t, p.Remote, ReceiverOptions{})
	counts := []uint64{30_000, 50_000}
	gens := make([]*UDPGenerator, 2)
	for i := range gens {
		gens[i] = newGenerator(t, p.Local, UDPConfig{DstAddr: p.Remote.IPv4, CPUs: []int{cpus[i]}, Packets: counts[i],
			Stamp: &Stamp{Generator: uint32(100 + i), Sender: 5}})
	}
	stats := make([]Stats, 2)
	var wg sync.WaitGroup
	for i, g := range gens {
		wg.Go(func() { stats[i] = run(t, g) })
	}
	wg.Wait()
	for i := range gens {
		if res := settledPaths(t, uint32(100+i), 5, stats[i], rx)[p.Remote.IPv4]; res != (PathResult{Sent: counts[i], Received: counts[i]}) {
			t.Fatalf("generator %d settled as %+v, want %d received", 100+i, res, counts[i])
		}
	}
	if err := rx.Forget(100); err != nil {
		t.Fatal(err)
	}
	streams, err := rx.Streams()
	if err != nil {
		t.Fatal(err)
	}
	if len(streams) != 1 || streams[0].Generator != 101 || streams[0].Packets != counts[1] {
		t.Fatalf("after forgetting generator 100: streams %+v, want generator 101's alone", streams)
	}
}

// TestReceiverLeavesAnotherProgramAlone: an interface that carries another XDP program is refused with the
// program named, and the program stays attached.
func TestReceiverLeavesAnotherProgramAlone(t *testing.T) {
	p := netnstest.NewPair(t, netnstest.Options{})
	pass, err := constantProgram(ActionPass)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pass.Close() })
	attachXDP(t, p.Remote, pass)
	err = netnstest.Do(p.Remote.NS, func() error {
		_, err := AttachReceiver(p.Remote.Interface, ReceiverOptions{})
		return err
	})
	var inUse *XDPInUseError
	info, _ := pass.Info()
	id, _ := info.ID()
	if !errors.As(err, &inUse) || inUse.ProgramID != uint32(id) || !strings.Contains(err.Error(), "does not replace another program") {
		t.Fatalf("AttachReceiver = %v, want the program in the way (id %d) named", err, id)
	}
	if !p.Remote.XDPAttached(t) {
		t.Fatal("the other program was detached")
	}
}

// TestPinnedCountersPerDestination: a run to two destinations (two addresses of the peer) pins its counters;
// what the pin says was sent to each is what the run's own stats say, and what the receiver got.
func TestPinnedCountersPerDestination(t *testing.T) {
	p := netnstest.NewPair(t, netnstest.Options{})
	second := netip.MustParseAddr("10.200.0.3")
	p.Remote.Exec(t, "ip", "addr", "add", second.String()+"/24", "dev", p.Remote.Interface)
	rx := attachReceiver(t, p.Remote, ReceiverOptions{})
	const count = 1001
	g := newGenerator(t, p.Local, UDPConfig{DstAddrs: []netip.Addr{p.Remote.IPv4, second}, Packets: count, Stamp: &Stamp{Generator: 3, Sender: 4}})
	pin := filepath.Join(netnstest.BPFFSDir(t), "counters")
	if err := g.PinCounters(pin); err != nil {
		t.Fatal(err)
	}
	s := run(t, g)
	pinned, err := PinnedCounters(pin)
	if err != nil {
		t.Fatal(err)
	}
	want := []DestinationSent{{Packets: 501}, {Packets: 500}}
	if len(pinned.Destinations) != 2 || pinned.Destinations[0] != want[0] || pinned.Destinations[1] != want[1] {
		t.Fatalf("pinned destinations %+v, want %+v", pinned.Destinations, want)
	}
	res := settledPaths(t, 3, 4, s, rx)
	for i, d := range []netip.Addr{p.Remote.IPv4, second} {
		if r := res[d]; r.Sent != want[i].Packets || r.Received != want[i].Packets {
			t.Fatalf("path to %s settled as %+v, want %d sent and received", d, r, want[i].Packets)
		}
	}
}

// TestContinuedStreams: a stamped run stopped after part of its count pins its counters; a second run of the
// same streams continues their sequence numbers from the pin (Stamp.Continue), so that the receiver accounts one
// stream per thread and destination, with every frame of both runs received once: no duplicates, no gap.
func TestContinuedStreams(t *testing.T) {
	threads := min(runtime.NumCPU(), 2)
	p := netnstest.NewPair(t, netnstest.Options{Queues: threads})
	second := netip.MustParseAddr("10.200.0.3")
	p.Remote.Exec(t, "ip", "addr", "add", second.String()+"/24", "dev", p.Remote.Interface)
	dsts := []netip.Addr{p.Remote.IPv4, second}
	rx := attachReceiver(t, p.Remote, ReceiverOptions{})
	first := newGenerator(t, p.Local, UDPConfig{DstAddrs: dsts, Threads: threads, Packets: 1001, Stamp: &Stamp{Generator: 3, Sender: 4}})
	pin := filepath.Join(netnstest.BPFFSDir(t), "counters")
	if err := first.PinCounters(pin); err != nil {
		t.Fatal(err)
	}
	s1 := run(t, first)
	streams, err := PinnedStreams(pin)
	if err != nil {
		t.Fatal(err)
	}
	var pinned uint64
	for _, sent := range streams {
		for _, n := range sent {
			pinned += n
		}
	}
	if len(streams) != threads || pinned != 1001 {
		t.Fatalf("pinned streams %v, want %d summing to 1001", streams, threads)
	}

	next := newGenerator(t, p.Local, UDPConfig{DstAddrs: dsts, Threads: threads, Packets: 999,
		Stamp: &Stamp{Generator: 3, Sender: 4, Continue: streams}})
	s2 := run(t, next)
	both := s2
	both.Destinations = slices.Clone(s2.Destinations)
	for i := range both.Destinations {
		both.Destinations[i].Packets += s1.Destinations[i].Packets
	}
	res := settledPaths(t, 3, 4, both, rx)
	var received uint64
	for _, d := range both.Destinations {
		received += res[d.Addr].Received
		if r := res[d.Addr]; r != (PathResult{Sent: d.Packets, Received: d.Packets}) {
			t.Errorf("path to %s settled as %+v, want all %d sent received, nothing duplicated or reordered", d.Addr, r, d.Packets)
		}
	}
	if received != 2000 {
		t.Errorf("received %d frames over the paths, want the two runs' 2000", received)
	}
	got, err := rx.Streams()
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range got {
		var before uint64
		if i := slices.Index(dsts, st.Dst); st.Stream < uint8(len(streams)) && i < len(streams[st.Stream]) {
			before = streams[st.Stream][i]
		}
		if st.Expected != st.Packets || st.Duplicates != 0 || st.Reordered != 0 || st.Packets <= before {
			t.Errorf("stream %+v: want one sequence from 0, without gaps, duplicates or reordering, longer than the first run's %d frames", st, before)
		}
	}
	if len(got) != threads*len(dsts) {
		t.Errorf("%d streams accounted, want %d (one per thread and destination)", len(got), threads*len(dsts))
	}
}
