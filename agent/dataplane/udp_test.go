package dataplane

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	vnl "github.com/vishvananda/netlink"

	"github.com/xdpgen/xdpgen/test/netnstest"
)

// rig is a veth pair with the receive counter on the remote end, where the generator's frames are counted.
type rig struct {
	*netnstest.Pair
	rx *Receiver
}

// newRig counts UDP to ports [first, last] on the remote veth; pass lets the frames reach sockets.
func newRig(t *testing.T, opts netnstest.Options, first, last uint16, pass bool) *rig {
	t.Helper()
	return countOn(t, netnstest.NewPair(t, opts), first, last, pass)
}

// countOn is newRig on the ends of p, which may be more than a veth apart.
func countOn(t *testing.T, p *netnstest.Pair, first, last uint16, pass bool) *rig {
	t.Helper()
	r := &rig{Pair: p}
	err := netnstest.Do(r.Remote.NS, func() (err error) {
		r.rx, err = AttachReceiver(r.Remote.Interface, ReceiverOptions{FirstPort: first, LastPort: last, Pass: pass, AnyGenerator: true})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		r.rx.Close()
		if r.Remote.XDPAttached(t) {
			t.Errorf("an XDP program is still attached to %s after the counter closed", r.Remote.Interface)
		}
	})
	return r
}

// generator makes a UDPGenerator on the local end and checks, when the test ends, that it left nothing attached.
func (r *rig) generator(t *testing.T, cfg UDPConfig) *UDPGenerator {
	t.Helper()
	g, err := r.tryGenerator(cfg)
	if err != nil {
		t.Fatalf("NewUDPGenerator: %v", err)
	}
	t.Cleanup(func() {
		if err := g.Close(); err != nil {
			t.Errorf("close generator: %v", err)
		}
		r.requireNoLocalXDP(t)
	})
	return g
}

func (r *rig) tryGenerator(cfg UDPConfig) (g *UDPGenerator, err error) {
	err = netnstest.Do(r.Local.NS, func() error {
		g, err = NewUDPGenerator(cfg)
		return err
	})
	return g, err
}

func (r *rig) requireNoLocalXDP(t *testing.T) {
	t.Helper()
	if r.Local.XDPAttached(t) {
		t.Errorf("an XDP program is still attached to %s", r.Local.Interface)
	}
}

func (r *rig) received(t *testing.T) Counter {
	t.Helper()
	c, err := r.rx.Counts()
	if err != nil {
		t.Fatal(err)
	}
	return c.Matched
}

// receivedAll waits up to two seconds for the counter to reach want packets (the receive side may still be
// draining its ring when Run returns), and returns what it counted.
func (r *rig) receivedAll(t *testing.T, want uint64) Counter {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for r.received(t).Packets < want && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	return r.received(t)
}

func run(t *testing.T, g *UDPGenerator) Stats {
	t.Helper()
	if err := g.Run(t.Context()); err != nil {
		t.Fatalf("Run: %v", err)
	}
	s, err := g.Stats()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestFramesArriveOnASocket sends a bounded count and reads every datagram back from a real UDP socket in the
// peer namespace: the kernel has validated the checksums, and addresses, ports, size and payload are as asked.
func TestFramesArriveOnASocket(t *testing.T) {
	for _, tc := range []struct {
		name string
		v6   bool
		size int
	}{
		{"ipv4 64", false, 64},
		{"ipv4 mtu", false, 1514},
		{"ipv6 64", true, 64},
		{"ipv6 777", true, 777},
		{"ipv6 mtu", true, 1514},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const count, dport, sport = 200, 7777, 4321
			r := newRig(t, netnstest.Options{}, dport, dport, true)
			src, dst := r.Local.IPv4, r.Remote.IPv4
			if tc.v6 {
				src, dst = r.Local.IPv6, r.Remote.IPv6
			}
			conn := netnstest.ListenUDP(t, r.Remote.NS, dst, dport, r.Remote.Interface)
			before := netnstest.ReadUDPStats(t, r.Remote.NS)

			// No interface, MAC or source address given: the route and the neighbour table supply them.
			g := r.generator(t, UDPConfig{DstAddr: dst, DstPort: dport, SrcPort: sport, FrameSize: tc.size, Packets: count})
			s := run(t, g)
			if sent := s.Actions[ActionRedirect]; sent.Packets != count || sent.Bytes != count*uint64(tc.size) {
				t.Fatalf("engine counted %+v, want %d frames of %d bytes", sent, count, tc.size)
			}

			want := payload(tc.size - headerLen(tc.v6, 0))
			buf := make([]byte, 4096)
			for i := range count {
				_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
				n, from, err := conn.ReadFromUDPAddrPort(buf)
				if err != nil {
					t.Fatalf("datagram %d of %d: %v (udp stats %+v)", i+1, count, err, netnstest.ReadUDPStats(t, r.Remote.NS))
				}
				if from != netip.AddrPortFrom(src, sport) {
					t.Fatalf("datagram %d from %s, want %s", i, from, netip.AddrPortFrom(src, sport))
				}
				if !bytes.Equal(buf[:n], want) {
					t.Fatalf("datagram %d: %d payload bytes, want %d of the pattern", i, n, len(want))
				}
			}
			after := netnstest.ReadUDPStats(t, r.Remote.NS)
			if after.InCsumErrors != before.InCsumErrors || after.InErrors != before.InErrors {
				t.Fatalf("udp errors: before %+v after %+v", before, after)
			}
			if got := r.received(t); got.Packets != count {
				t.Fatalf("the peer's XDP counter saw %d frames, want %d", got.Packets, count)
			}
		})
	}
}

// TestVLANTaggedFrames sends 802.1Q-tagged frames and captures them in the peer namespace with a packet socket,
// which reports the tag the kernel parsed. (A socket cannot receive them here: the kernel has no 8021q module
// for a VLAN device, so the checksums are checked independently of the code that made them.)
func TestVLANTaggedFrames(t *testing.T) {
	for _, tc := range []struct {
		name string
		v6   bool
		vlan uint16
		size int
	}{
		{"ipv4 vlan 100", false, 100, 128},
		{"ipv6 vlan 4094 mtu", true, 4094, 1518},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const count, dport, sport = 50, 7777, 4321
			r := newRig(t, netnstest.Options{}, dport, dport, true)
			src, dst := r.Local.IPv4, r.Remote.IPv4
			if tc.v6 {
				src, dst = r.Local.IPv6, r.Remote.IPv6
			}
			capture := netnstest.NewCapture(t, r.Remote.NS, r.Remote.Interface)
			g := r.generator(t, UDPConfig{Interface: r.Local.Interface, DstAddr: dst, DstPort: dport, SrcPort: sport, VLAN: tc.vlan,
				FrameSize: tc.size, Packets: count})
			run(t, g)

			for got := 0; got < count; {
				f, err := capture.Next(2 * time.Second)
				if err != nil {
					t.Fatalf("frame %d of %d: %v", got+1, count, err)
				}
				pkt := gopacket.NewPacket(f.Data, layers.LayerTypeEthernet, gopacket.Default)
				udp, _ := pkt.Layer(layers.LayerTypeUDP).(*layers.UDP)
				if udp == nil || udp.DstPort != dport {
					continue // neighbour discovery and the like
				}
				got++
				if f.VLAN != tc.vlan || len(f.Data)+4 != tc.size || udp.SrcPort != sport {
					t.Fatalf("frame: vlan %d, %d bytes + tag, source port %d; want vlan %d, %d bytes, port %d",
						f.VLAN, len(f.Data), udp.SrcPort, tc.vlan, tc.size, sport)
				}
				net := pkt.NetworkLayer().NetworkFlow()
				if net.Src().String() != src.String() || net.Dst().String() != dst.String() {
					t.Fatalf("frame %s, want %s -> %s", net, src, dst)
				}
				if !netnstest.UDPChecksumOK(src, dst, append(udp.Contents, udp.Payload...)) {
					t.Fatal("bad UDP checksum")
				}
				if !tc.v6 && !netnstest.IPv4HeaderChecksumOK(pkt.NetworkLayer().LayerContents()) {
					t.Fatal("bad IPv4 header checksum")
				}
			}
		})
	}
}

// TestDynamicPortsCoverTheRange sprays destination ports over 100 ports and source ports over 3: every
// destination port gets its share, nothing lands outside the range, and every checksum passes the kernel.
func TestDynamicPortsCoverTheRange(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		t.Run(fmt.Sprintf("ipv6=%v", v6), func(t *testing.T) {
			const first, ports, sport, sports, rounds = 20000, 100, 3000, 3, 6
			r := newRig(t, netnstest.Options{}, 0, 65535, true)
			dst := r.Remote.IPv4
			if v6 {
				dst = r.Remote.IPv6
			}
			conns := make([]interface {
				ReadFromUDPAddrPort([]byte) (int, netip.AddrPort, error)
				SetReadDeadline(time.Time) error
			}, ports)
			for i := range conns {
				conns[i] = netnstest.ListenUDP(t, r.Remote.NS, dst, first+uint16(i), "")
			}
			before := netnstest.ReadUDPStats(t, r.Remote.NS)
			g := r.generator(t, UDPConfig{DstAddr: dst, DstPort: first, DstPortCount: ports, SrcPort: sport, SrcPortCount: sports,
				Packets: ports * sports * rounds})
			run(t, g)

			buf := make([]byte, 2048)
			for i, c := range conns {
				seen := map[uint16]int{}
				for range sports * rounds {
					_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
					_, from, err := c.ReadFromUDPAddrPort(buf)
					if err != nil {
						t.Fatalf("port %d: %v after %v", first+i, err, seen)
					}
					seen[from.Port()]++
				}
				for s := uint16(sport); s < sport+sports; s++ {
					if seen[s] != rounds {
						t.Fatalf("port %d got source ports %v, want each of %d-%d %d times", first+i, seen, sport, sport+sports-1, rounds)
					}
				}
			}
			after := netnstest.ReadUDPStats(t, r.Remote.NS)
			if after.NoPorts != before.NoPorts || after.InCsumErrors != before.InCsumErrors {
				t.Fatalf("datagrams outside the range or with bad checksums: before %+v after %+v", before, after)
			}
			if got := after.InDatagrams - before.InDatagrams; got != ports*sports*rounds {
				t.Fatalf("kernel delivered %d datagrams, want %d", got, ports*sports*rounds)
			}
		})
	}
}

// TestCountsReconcile sends a bounded count from every CPU: what the engine says it sent is exactly what the
// peer's XDP counter saw.
func TestCountsReconcile(t *testing.T) {
	threads := min(runtime.NumCPU(), 4)
	r := newRig(t, netnstest.Options{Queues: threads}, 9, 9, false)
	const count = 300_001 // not a multiple of the thread count
	g := r.generator(t, UDPConfig{DstAddr: r.Remote.IPv4, Threads: threads, Packets: count})
	s := run(t, g)
	if got := s.Sent().Packets; got != count {
		t.Fatalf("engine sent %d, want %d", got, count)
	}
	if got := r.receivedAll(t, count); got.Packets != count || got.Bytes != s.Sent().Bytes {
		t.Fatalf("peer counted %+v, engine sent %+v", got, s.Sent())
	}
	if e := s.Egress; e.TxPackets < count || e.TxDropped != 0 {
		t.Fatalf("the veth counted %+v, want %d transmitted and none dropped", e, count)
	}
}

// TestRateLimit checks the achieved rate over a one-second run, in packets/s and in bits/s.
func TestRateLimit(t *testing.T) {
	threads := min(runtime.NumCPU(), 2)
	for _, tc := range []struct {
		name         string
		pps, bps, l1 uint64
		threads      int
		wantPPS      float64
		frameSize    int
		tolerancePct float64
	}{
		{"1kpps", 1_000, 0, 0, 1, 1_000, 64, 5},
		{"20kpps 2 threads", 20_000, 0, 0, threads, 20_000, 64, 5},
		{"200kpps", 200_000, 0, 0, 1, 200_000, 64, 5},
		{"100Mbps of 1000-byte frames", 0, 100_000_000, 0, threads, 12_500, 1000, 5},
		// Each 1000-byte frame takes 1024 bytes on the wire: FCS, preamble and SFD, inter-frame gap.
		{"100Mbps L1 of 1000-byte frames", 0, 0, 100_000_000, threads, 100e6 / (1024 * 8), 1000, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, netnstest.Options{Queues: threads}, 9, 9, false)
			const d = time.Second
			g := r.generator(t, UDPConfig{DstAddr: r.Remote.IPv4, Threads: tc.threads, RatePPS: tc.pps, RateBPS: tc.bps,
				RateL1BPS: tc.l1, FrameSize: tc.frameSize, Duration: d})
			s := run(t, g)
			got := float64(r.received(t).Packets) / d.Seconds()
			if diff := 100 * (got - tc.wantPPS) / tc.wantPPS; diff > tc.tolerancePct || diff < -tc.tolerancePct {
				t.Fatalf("peer received %.0f pps, want %.0f ±%.0f%% (engine sent %d)", got, tc.wantPPS, tc.tolerancePct, s.Sent().Packets)
			}
			t.Logf("peer received %.0f pps for a target of %.0f", got, tc.wantPPS)
		})
	}
}

// TestStops checks that a duration, a count and a cancellation each end the run, promptly.
func TestStops(t *testing.T) {
	r := newRig(t, netnstest.Options{}, 9, 9, false)

	t.Run("duration", func(t *testing.T) {
		g := r.generator(t, UDPConfig{DstAddr: r.Remote.IPv4, Duration: 300 * time.Millisecond})
		began := time.Now()
		run(t, g)
		if took := time.Since(began); took < 300*time.Millisecond || took > 500*time.Millisecond {
			t.Fatalf("a 300ms run took %s", took)
		}
	})
	t.Run("count", func(t *testing.T) {
		g := r.generator(t, UDPConfig{DstAddr: r.Remote.IPv4, Packets: 12345, RatePPS: 1e6})
		if s := run(t, g); s.Sent().Packets != 12345 {
			t.Fatalf("sent %d, want 12345", s.Sent().Packets)
		}
	})
	for _, tc := range []struct {
		name string
		cfg  UDPConfig
	}{
		{"cancel at full speed", UDPConfig{DstAddr: r.Remote.IPv4, Threads: min(runtime.NumCPU(), 2)}},
		{"cancel while rate limited to 1 pps", UDPConfig{DstAddr: r.Remote.IPv4, RatePPS: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := r.generator(t, tc.cfg)
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan error, 1)
			go func() { done <- g.Run(ctx) }()
			time.Sleep(300 * time.Millisecond)
			cancel()
			cancelled := time.Now()
			select {
			case err := <-done:
				if !errors.Is(err, context.Canceled) {
					t.Fatalf("Run after cancel = %v, want context.Canceled", err)
				}
				if took := time.Since(cancelled); took > 200*time.Millisecond {
					t.Fatalf("Run returned %s after cancel, want under 200ms", took)
				}
			case <-time.After(2 * time.Second):
				t.Fatal("Run did not return within 2s of cancel")
			}
		})
	}
}

// TestBadInputFailsClearly checks that what cannot work is refused with the field named, and that a failed
// start leaves nothing attached.
func TestBadInputFailsClearly(t *testing.T) {
	r := newRig(t, netnstest.Options{}, 9, 9, false)
	for _, tc := range []struct {
		name  string
		cfg   UDPConfig
		field Field
		hint  string
	}{
		{"unknown interface", UDPConfig{Interface: "nope0", DstAddr: r.Remote.IPv4}, FieldInterface, "no such interface here; these exist: lo, " + r.Local.Interface},
		{"frame over mtu", UDPConfig{DstAddr: r.Remote.IPv4, FrameSize: 1515}, FieldFrameSize, "at most 1514"},
		{"too many threads", UDPConfig{DstAddr: r.Remote.IPv4, Threads: runtime.NumCPU() + 1}, FieldThreads, "use at most"},
		{"unresolvable mac", UDPConfig{DstAddr: netip.MustParseAddr("10.200.0.99")}, FieldDstMAC, "ARP/ND got no answer"},
		{"no route", UDPConfig{DstAddr: netip.MustParseAddr("10.99.0.1")}, FieldDstAddr, "no route"},
		{"no ipv6 source", UDPConfig{DstAddr: netip.MustParseAddr("fd00:200::99"), SrcAddr: netip.MustParseAddr("10.200.0.1")}, FieldSrcAddr, "same IP family"},
		{"destinations through two interfaces", UDPConfig{DstAddrs: []netip.Addr{r.Remote.IPv4, netip.MustParseAddr("127.0.0.2")}, DstMAC: r.Remote.MAC, SrcMAC: r.Local.MAC},
			FieldDstAddr, "give destinations that one interface reaches"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := r.tryGenerator(tc.cfg)
			var ce *ConfigError
			if !errors.As(err, &ce) || ce.Field != tc.field || !strings.Contains(err.Error(), tc.hint) {
				t.Fatalf("NewUDPGenerator = %v, want a %s error saying %q", err, tc.field, tc.hint)
			}
			r.requireNoLocalXDP(t)
		})
	}
}

// TestVethPeerWithoutReceiver checks that a veth whose peer cannot take redirected frames is refused with the
// fix in the message, and that Probe says the same.
func TestVethPeerWithoutReceiver(t *testing.T) {
	p := netnstest.NewPair(t, netnstest.Options{})
	err := netnstest.Do(p.Local.NS, func() error {
		res, err := Probe(p.Local.Interface)
		if err != nil {
			return err
		}
		if res.CanTransmit || !res.LiveFrames || !strings.Contains(res.Summary(), "ethtool -K <peer> gro on") {
			return fmt.Errorf("probe = %+v, want live frames but no transmit, with the fix", res)
		}
		_, err = NewUDPGenerator(UDPConfig{DstAddr: p.Remote.IPv4})
		if err == nil || !strings.Contains(err.Error(), "has no XDP program and GRO off") {
			return fmt.Errorf("NewUDPGenerator = %v, want the veth peer explained", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if p.Local.XDPAttached(t) || p.Remote.XDPAttached(t) {
		t.Fatal("an XDP program was left attached")
	}
}

// TestProbeReady checks the probe's answer for a veth whose peer can receive.
func TestProbeReady(t *testing.T) {
	r := newRig(t, netnstest.Options{}, 9, 9, false)
	err := netnstest.Do(r.Local.NS, func() error {
		res, err := Probe(r.Local.Interface)
		if err != nil {
			return err
		}
		if !res.LiveFrames || !res.CanTransmit || res.NeedsXDPProgram || !strings.Contains(res.Features, "ndo-xmit") {
			return fmt.Errorf("probe = %+v", res)
		}
		if !strings.HasPrefix(res.Summary(), r.Local.Interface+": yes") {
			return fmt.Errorf("summary %q", res.Summary())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	r.requireNoLocalXDP(t)
}

// TestEgressThatCannotTransmit: a bridge has no ndo_xdp_xmit. The engine attaches its pass program to see
// whether the driver then transmits (as some do), finds it does not, detaches it again and says so.
func TestEgressThatCannotTransmit(t *testing.T) {
	p := netnstest.NewPair(t, netnstest.Options{})
	err := netnstest.Do(p.Local.NS, func() error {
		br := &vnl.Bridge{LinkAttrs: vnl.LinkAttrs{Name: "xgbr0"}}
		if err := vnl.LinkAdd(br); err != nil {
			return err
		}
		addr, _ := vnl.ParseAddr("10.203.0.1/24")
		if err := vnl.AddrAdd(br, addr); err != nil {
			return err
		}
		if err := vnl.LinkSetUp(br); err != nil {
			return err
		}
		_, err := NewUDPGenerator(UDPConfig{Interface: "xgbr0", DstAddr: netip.MustParseAddr("10.203.0.2"),
			DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}})
		if err == nil || !strings.Contains(err.Error(), "not even with an XDP program attached") {
			return fmt.Errorf("NewUDPGenerator on a bridge = %v, want the driver explained", err)
		}
		l, err := vnl.LinkByName("xgbr0")
		if err != nil {
			return err
		}
		if l.Attrs().Xdp != nil && l.Attrs().Xdp.Attached {
			return errors.New("the pass program was left attached to the bridge")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
