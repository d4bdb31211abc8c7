package dataplane

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"github.com/xdpgen/xdpgen/test/netnstest"
	"github.com/xdpgen/xdpgen/test/pcaptest"
)

// replayPath is what a test frame is addressed with.
type replayPath struct {
	srcMAC, dstMAC net.HardwareAddr
	src4, dst4     netip.Addr
	src6, dst6     netip.Addr
}

// capturedPath is the path the test captures were taken on: nothing of the test rig's.
var capturedPath = replayPath{
	srcMAC: net.HardwareAddr{0x02, 0, 0, 0, 0xca, 0x01}, dstMAC: net.HardwareAddr{0x02, 0, 0, 0, 0xca, 0x02},
	src4: netip.MustParseAddr("192.0.2.1"), dst4: netip.MustParseAddr("198.51.100.1"),
	src6: netip.MustParseAddr("2001:db8::1"), dst6: netip.MustParseAddr("2001:db8:1::1"),
}

// replayMarker starts every test frame's payload, followed by the frame's index: how the far end tells the
// replayed frames from the host's own traffic, and their order.
const replayMarker = "xdpgen-replay-"

// mixedFrames are frames of different sizes, transports and families addressed with p, serialised with
// gopacket (independently of the replay's rewrite): UDP, TCP with options, ICMP echo over IPv4; UDP, TCP and
// ICMPv6 echo over IPv6; a frame short enough to be padded and one of a full 1500-byte MTU.
func mixedFrames(t *testing.T, p replayPath) [][]byte {
	t.Helper()
	payload := func(i, n int) []byte {
		b := bytes.Repeat([]byte{byte(i*37 + 1)}, n)
		copy(b, fmt.Sprintf("%s%03d", replayMarker, i))
		return b
	}
	ip4 := func(proto layers.IPProtocol) *layers.IPv4 {
		return &layers.IPv4{Version: 4, TTL: 64, Id: 4242, Flags: layers.IPv4DontFragment, Protocol: proto, SrcIP: p.src4.AsSlice(), DstIP: p.dst4.AsSlice()}
	}
	ip6 := func(next layers.IPProtocol) *layers.IPv6 {
		return &layers.IPv6{Version: 6, HopLimit: 64, FlowLabel: 7, NextHeader: next, SrcIP: p.src6.AsSlice(), DstIP: p.dst6.AsSlice()}
	}
	eth := func(typ layers.EthernetType) *layers.Ethernet {
		return &layers.Ethernet{SrcMAC: p.srcMAC, DstMAC: p.dstMAC, EthernetType: typ}
	}
	var frames [][]byte
	add := func(stack ...gopacket.SerializableLayer) {
		for _, l := range stack {
			if c, ok := l.(interface {
				SetNetworkLayerForChecksum(gopacket.NetworkLayer) error
			}); ok {
				for _, n := range stack {
					if nl, ok := n.(gopacket.NetworkLayer); ok {
						_ = c.SetNetworkLayerForChecksum(nl)
					}
				}
			}
		}
		buf := gopacket.NewSerializeBuffer()
		if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, stack...); err != nil {
			t.Fatal(err)
		}
		frames = append(frames, append([]byte(nil), buf.Bytes()...))
	}
	i := func() int { return len(frames) }
	add(eth(layers.EthernetTypeIPv4), ip4(layers.IPProtocolUDP), &layers.UDP{SrcPort: 4000, DstPort: 7777}, gopacket.Payload(payload(i(), 17)))
	add(eth(layers.EthernetTypeIPv4), ip4(layers.IPProtocolTCP), &layers.TCP{SrcPort: 40000, DstPort: 80, Seq: 1000, SYN: true, Window: 64240,
		Options: []layers.TCPOption{{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: []byte{0x05, 0xb4}},
			{OptionType: layers.TCPOptionKindNop}, {OptionType: layers.TCPOptionKindWindowScale, OptionLength: 3, OptionData: []byte{7}}}},
		gopacket.Payload(payload(i(), 300)))
	add(eth(layers.EthernetTypeIPv4), ip4(layers.IPProtocolICMPv4), &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(layers.ICMPv4TypeEchoRequest, 0), Id: 9, Seq: 1},
		gopacket.Payload(payload(i(), 56)))
	add(eth(layers.EthernetTypeIPv6), ip6(layers.IPProtocolUDP), &layers.UDP{SrcPort: 4001, DstPort: 7777}, gopacket.Payload(payload(i(), 1000)))
	add(eth(layers.EthernetTypeIPv6), ip6(layers.IPProtocolTCP), &layers.TCP{SrcPort: 40001, DstPort: 80, Seq: 77, Ack: 88, ACK: true, PSH: true, Window: 512},
		gopacket.Payload(payload(i(), 1200)))
	add(eth(layers.EthernetTypeIPv6), ip6(layers.IPProtocolICMPv6), &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(layers.ICMPv6TypeEchoRequest, 0)},
		&layers.ICMPv6Echo{Identifier: 5, SeqNumber: 6}, gopacket.Payload(payload(i(), 100)))
	add(eth(layers.EthernetTypeIPv4), ip4(layers.IPProtocolUDP), &layers.UDP{SrcPort: 4002, DstPort: 7777}, gopacket.Payload(payload(i(), 1472)))
	return frames
}

func readTestCapture(t *testing.T, pcap []byte) *Capture {
	t.Helper()
	c, err := ReadCapture(FieldCapture, bytes.NewReader(pcap))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestReplayRewritesChecksums rewrites the mixed frames from the captured path to another and gets, byte for byte,
// the frames gopacket builds for that path: MACs, addresses, IPv4, TCP, UDP, ICMP and ICMPv6 checksums.
func TestReplayRewritesChecksums(t *testing.T) {
	to := replayPath{
		srcMAC: net.HardwareAddr{0x02, 1, 1, 1, 1, 1}, dstMAC: net.HardwareAddr{0x02, 2, 2, 2, 2, 2},
		src4: netip.MustParseAddr("10.1.0.1"), dst4: netip.MustParseAddr("10.2.0.2"),
		src6: netip.MustParseAddr("fd00::1"), dst6: netip.MustParseAddr("fd00::2"),
	}
	captured, want := mixedFrames(t, capturedPath), mixedFrames(t, to)
	rw := frameRewrite{srcMAC: to.srcMAC, dstMAC: to.dstMAC, src: [2]netip.Addr{to.src4, to.src6}, dst: [2]netip.Addr{to.dst4, to.dst6}}
	for i, f := range captured {
		got, err := rw.rewrite(FieldCapture, i, f)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want[i], got); diff != "" {
			t.Errorf("frame %d (-want +got):\n%s", i, diff)
		}
	}
	// As captured: the same bytes.
	for i, f := range captured {
		got, err := frameRewrite{}.rewrite(FieldCapture, i, f)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, f) {
			t.Errorf("frame %d changed without a rewrite", i)
		}
	}
}

// TestReadCaptureRefuses: what a replay cannot send is refused with the fix.
func TestReadCaptureRefuses(t *testing.T) {
	frames := mixedFrames(t, capturedPath)
	cooked := pcaptest.Pcap(t, layers.LinkTypeLinuxSLL, [][]byte{make([]byte, 60)}, 0)
	truncated := func() []byte {
		var buf bytes.Buffer
		w := pcapgo.NewWriter(&buf)
		_ = w.WriteFileHeader(96, layers.LinkTypeEthernet)
		_ = w.WritePacket(gopacket.CaptureInfo{Timestamp: time.Now(), CaptureLength: 96, Length: 1514}, frames[6][:96])
		return buf.Bytes()
	}()
	huge := pcaptest.Pcap(t, layers.LinkTypeEthernet, [][]byte{make([]byte, MaxLiveFrameSize+1)}, 0)
	for _, tc := range []struct {
		name string
		pcap []byte
		want string
	}{
		{"not a capture", []byte("hello, world"), "capture: not a pcap or pcapng file"},
		{"empty", pcaptest.Pcap(t, layers.LinkTypeEthernet, nil, 0), "capture: the capture holds no frame"},
		{"linux cooked", cooked, `capture: link type Linux SLL: replay sends Ethernet frames; capture on an Ethernet interface (not "any"`},
		{"truncated", truncated, "capture: frame 1: the capture kept 96 of its 1514 bytes: capture with a snap length that keeps whole frames (tcpdump -s 0)"},
		{"larger than a live frame", huge, "capture: frame 1: 3521 bytes; live frames hold at most 3520"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadCapture(FieldCapture, bytes.NewReader(tc.pcap))
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error starting %q", err, tc.want)
			}
		})
	}
}

// TestReplayMatchesFrameByFrame replays a capture of mixed frames, rewritten for the rig's path, three times over
// a veth: a packet socket in the peer namespace receives every frame, in order, byte for byte what gopacket
// builds for that path, and the kernel there accepts their checksums; the engine counts exactly the loops and
// each size.
func TestReplayMatchesFrameByFrame(t *testing.T) {
	const loops = 3
	r := newRig(t, netnstest.Options{}, 7777, 7777, true)
	captured := mixedFrames(t, capturedPath)
	want := mixedFrames(t, replayPath{srcMAC: r.Local.MAC, dstMAC: r.Remote.MAC, src4: r.Local.IPv4, dst4: r.Remote.IPv4, src6: r.Local.IPv6, dst6: r.Remote.IPv6})
	capture := netnstest.NewCapture(t, r.Remote.NS, r.Remote.Interface)
	before := netnstest.ReadUDPStats(t, r.Remote.NS)

	g := r.replayGenerator(t, ReplayConfig{Interface: r.Local.Interface, Capture: readTestCapture(t, pcaptest.Pcap(t, layers.LinkTypeEthernet, captured, time.Millisecond)),
		DstAddrs: []netip.Addr{r.Remote.IPv4, r.Remote.IPv6}, Packets: loops * uint64(len(captured))})
	if err := g.Run(t.Context()); err != nil {
		t.Fatalf("Run: %v", err)
	}
	n := len(captured)
	for i := range loops * n {
		got := nextReplayed(t, capture, i)
		if diff := cmp.Diff(want[i%n], got); diff != "" {
			t.Fatalf("frame %d received (loop %d, frame %d of the capture) (-want +got):\n%s", i, i/n, i%n, diff)
		}
		checkReplayedChecksums(t, i, got)
	}
	if f, err := capture.Next(200 * time.Millisecond); err == nil && bytes.Contains(f.Data, []byte(replayMarker)) {
		t.Fatalf("a frame beyond the %d loops arrived: %x", loops, f.Data)
	}
	s, err := g.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Actions[ActionRedirect].Packets; got != loops*uint64(n) {
		t.Fatalf("engine sent %d frames, want %d", got, loops*n)
	}
	wantSizes := map[int]uint64{}
	for _, f := range want {
		wantSizes[len(f)] += loops
	}
	gotSizes := map[int]uint64{}
	for _, b := range s.Sizes {
		if b.Min != b.Max {
			t.Fatalf("bucket %s: want one bucket per size of a capture with %d sizes", b, len(wantSizes))
		}
		gotSizes[b.Min] = b.Packets
	}
	if diff := cmp.Diff(wantSizes, gotSizes); diff != "" {
		t.Fatalf("engine's frames per size (-want +got):\n%s", diff)
	}
	after := netnstest.ReadUDPStats(t, r.Remote.NS)
	if after.InCsumErrors != before.InCsumErrors {
		t.Fatalf("the peer's UDP counted checksum errors: before %+v after %+v", before, after)
	}
}

// TestReplayResumes: a replay that goes on from an earlier one's count (Skip) starts at the frame after the last
// one sent, and counts its frames on from there.
func TestReplayResumes(t *testing.T) {
	r := newRig(t, netnstest.Options{}, 7777, 7777, true)
	captured := mixedFrames(t, capturedPath)
	want := mixedFrames(t, replayPath{srcMAC: r.Local.MAC, dstMAC: r.Remote.MAC, src4: r.Local.IPv4, dst4: r.Remote.IPv4, src6: r.Local.IPv6, dst6: r.Remote.IPv6})
	capture := netnstest.NewCapture(t, r.Remote.NS, r.Remote.Interface)
	const skip, packets = 12, 5 // an earlier run sent a loop and 5 frames of the next: this one sends 5, 6, 0, 1, 2
	g := r.replayGenerator(t, ReplayConfig{Interface: r.Local.Interface, Capture: readTestCapture(t, pcaptest.Pcap(t, layers.LinkTypeEthernet, captured, 0)),
		DstAddrs: []netip.Addr{r.Remote.IPv4, r.Remote.IPv6}, Skip: skip, Packets: packets})
	if err := g.Run(t.Context()); err != nil {
		t.Fatalf("Run: %v", err)
	}
	for i := range packets {
		got := nextReplayed(t, capture, i)
		if diff := cmp.Diff(want[(skip+i)%len(want)], got); diff != "" {
			t.Fatalf("frame %d received (-want +got):\n%s", i, diff)
		}
	}
	if f, err := capture.Next(200 * time.Millisecond); err == nil && bytes.Contains(f.Data, []byte(replayMarker)) {
		t.Fatalf("a frame beyond the %d asked arrived: %x", packets, f.Data)
	}
}

// nextReplayed is the next replayed frame the capture receives (the peer's own traffic, such as neighbour
// discovery, is skipped).
func nextReplayed(t *testing.T, c *netnstest.Capture, i int) []byte {
	t.Helper()
	for {
		f, err := c.Next(2 * time.Second)
		if err != nil {
			t.Fatalf("replayed frame %d: %v", i, err)
		}
		if bytes.Contains(f.Data, []byte(replayMarker)) {
			return f.Data
		}
	}
}

// checkReplayedChecksums checks a received frame's IPv4, TCP and UDP checksums with the test's own arithmetic.
func checkReplayedChecksums(t *testing.T, i int, frame []byte) {
	t.Helper()
	p := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.Default)
	var src, dst netip.Addr
	if ip, ok := p.NetworkLayer().(*layers.IPv4); ok {
		if !netnstest.IPv4HeaderChecksumOK(ip.Contents) {
			t.Fatalf("frame %d: bad IPv4 header checksum", i)
		}
		src, dst = netip.AddrFrom4([4]byte(ip.SrcIP.To4())), netip.AddrFrom4([4]byte(ip.DstIP.To4()))
	}
	if ip, ok := p.NetworkLayer().(*layers.IPv6); ok {
		src, dst = netip.AddrFrom16([16]byte(ip.SrcIP)), netip.AddrFrom16([16]byte(ip.DstIP))
	}
	switch l4 := p.TransportLayer().(type) {
	case *layers.UDP:
		if !netnstest.UDPChecksumOK(src, dst, append(l4.Contents, l4.Payload...)) {
			t.Fatalf("frame %d: bad UDP checksum", i)
		}
	case *layers.TCP:
		if !netnstest.TCPChecksumOK(src, dst, append(l4.Contents, l4.Payload...)) {
			t.Fatalf("frame %d: bad TCP checksum", i)
		}
	}
}

// TestReplayRate replays at a rate, and at the capture's timing, for a second: the peer counts the asked rate
// within 5%.
func TestReplayRate(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cfg     ReplayConfig
		gap     time.Duration
		wantPPS float64
	}{
		{"2000 pps", ReplayConfig{RatePPS: 2000}, time.Millisecond, 2000},
		{"2 threads 20000 pps", ReplayConfig{RatePPS: 20000, Threads: 2}, time.Millisecond, 20000},
		// 20 frames 1 ms apart, a loop of 21 ms (the last frame's time and the mean gap): 1000 pps.
		{"capture timing", ReplayConfig{CaptureTiming: true}, time.Millisecond, 1000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, netnstest.Options{Queues: max(tc.cfg.Threads, 1)}, 7777, 7777, false)
			// UDP frames to the counted port, of several sizes.
			var frames [][]byte
			for i := range 20 {
				sizes := []int{60, 200, 1000, 1514}
				tpl, err := buildUDPTemplate(udpFlow{SrcMAC: capturedPath.srcMAC, DstMAC: capturedPath.dstMAC, SrcAddr: capturedPath.src4, DstAddr: capturedPath.dst4,
					SrcPort: 9, DstPort: 7777, FrameSize: sizes[i%len(sizes)]})
				if err != nil {
					t.Fatal(err)
				}
				frames = append(frames, tpl.Frame)
			}
			const d = time.Second
			cfg := tc.cfg
			cfg.Interface, cfg.Capture, cfg.DstAddrs, cfg.Duration = r.Local.Interface, readTestCapture(t, pcaptest.Pcap(t, layers.LinkTypeEthernet, frames, tc.gap)), []netip.Addr{r.Remote.IPv4}, d
			g := r.replayGenerator(t, cfg)
			if err := g.Run(t.Context()); err != nil {
				t.Fatalf("Run: %v", err)
			}
			got := float64(r.received(t).Packets) / d.Seconds()
			if diff := 100 * (got - tc.wantPPS) / tc.wantPPS; diff > 5 || diff < -5 {
				t.Fatalf("peer received %.0f pps, want %.0f ±5%%", got, tc.wantPPS)
			}
			t.Logf("peer received %.0f pps for a target of %.0f", got, tc.wantPPS)
		})
	}
}

// TestReplayRefusesWhatTheHostCannotSend: a frame above the interface's MTU, and bad configurations.
func TestReplayRefusesWhatTheHostCannotSend(t *testing.T) {
	r := newRig(t, netnstest.Options{}, 7777, 7777, false)
	frames := mixedFrames(t, capturedPath)
	jumbo := append(append([]byte(nil), frames[6]...), make([]byte, 100)...)
	for _, tc := range []struct {
		name string
		cfg  ReplayConfig
		want string
	}{
		{"above the MTU", ReplayConfig{Capture: readTestCapture(t, pcaptest.Pcap(t, layers.LinkTypeEthernet, [][]byte{frames[0], jumbo}, 0))},
			"capture: frame 2: 1614 bytes, larger than " + r.Local.Interface + "'s MTU 1500 allows (1514): raise the MTU, or leave the frame out"},
		{"two IPv4 destinations", ReplayConfig{Capture: readTestCapture(t, pcaptest.Pcap(t, layers.LinkTypeEthernet, frames, 0)), DstAddrs: []netip.Addr{r.Remote.IPv4, r.Remote.IPv4.Next()}},
			"dst-addr 10.200.0.3: a second IPv4 destination: give at most one address per IP family"},
		{"source without destination", ReplayConfig{Capture: readTestCapture(t, pcaptest.Pcap(t, layers.LinkTypeEthernet, frames, 0)), SrcAddrs: []netip.Addr{r.Local.IPv6}},
			"src-addr fd00:200::1: rewrites the source of IPv6 frames for the path to an IPv6 destination: give an IPv6 destination address too"},
		{"a frame the rewrite leaves to its captured destination", ReplayConfig{Capture: readTestCapture(t, pcaptest.Pcap(t, layers.LinkTypeEthernet, frames, 0)), DstAddrs: []netip.Addr{r.Remote.IPv4},
			OnlyRewritten: true}, "capture: frame 4 is IPv6, and no IPv6 destination address is given: every frame must go to the destination address"},
		{"timing of a capture without time", ReplayConfig{Capture: readTestCapture(t, pcaptest.Pcap(t, layers.LinkTypeEthernet, frames, 0)), CaptureTiming: true},
			"rate capture timing: the capture's frames all have one time: give a rate instead"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Interface = r.Local.Interface
			g, err := r.tryReplayGenerator(tc.cfg)
			if err == nil {
				g.Close()
				t.Fatal("want an error")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
}

// replayGenerator makes a ReplayGenerator on the local end and checks, when the test ends, that it left nothing
// attached.
func (r *rig) replayGenerator(t *testing.T, cfg ReplayConfig) *ReplayGenerator {
	t.Helper()
	g, err := r.tryReplayGenerator(cfg)
	if err != nil {
		t.Fatalf("NewReplayGenerator: %v", err)
	}
	t.Cleanup(func() {
		if err := g.Close(); err != nil {
			t.Errorf("close generator: %v", err)
		}
		r.requireNoLocalXDP(t)
	})
	return g
}

func (r *rig) tryReplayGenerator(cfg ReplayConfig) (g *ReplayGenerator, err error) {
	err = netnstest.Do(r.Local.NS, func() error {
		g, err = NewReplayGenerator(cfg)
		return err
	})
	return g, err
}
