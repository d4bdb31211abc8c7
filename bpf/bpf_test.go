package bpf_test

import (
	"encoding/binary"
	"math"
	"net"
	"net/netip"
	"runtime"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"golang.org/x/sys/unix"

	"github.com/xdpgen/xdpgen/bpf"
	"github.com/xdpgen/xdpgen/test/netnstest"
)

const (
	xdpAborted  = 0
	xdpDrop     = 1
	xdpPass     = 2
	xdpRedirect = 4
)

var (
	srcMAC = net.HardwareAddr{2, 0, 0, 0, 0, 1}
	dstMAC = net.HardwareAddr{2, 0, 0, 0, 0, 2}
)

// udpFrame builds a frame with gopacket, independently of the engine's template code.
func udpFrame(t testing.TB, src, dst netip.Addr, sport, dport uint16, vlan uint16, payload int) []byte {
	t.Helper()
	eth := &layers.Ethernet{SrcMAC: srcMAC, DstMAC: dstMAC, EthernetType: layers.EthernetTypeIPv4}
	stack := []gopacket.SerializableLayer{eth}
	l3 := layers.EthernetTypeIPv4
	if dst.Is6() {
		l3 = layers.EthernetTypeIPv6
	}
	eth.EthernetType = l3
	if vlan != 0 {
		eth.EthernetType = layers.EthernetTypeDot1Q
		stack = append(stack, &layers.Dot1Q{VLANIdentifier: vlan, Type: l3})
	}
	udp := &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(dport)}
	if dst.Is6() {
		ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolUDP, SrcIP: src.AsSlice(), DstIP: dst.AsSlice()}
		_ = udp.SetNetworkLayerForChecksum(ip)
		stack = append(stack, ip)
	} else {
		ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: src.AsSlice(), DstIP: dst.AsSlice()}
		_ = udp.SetNetworkLayerForChecksum(ip)
		stack = append(stack, ip)
	}
	stack = append(stack, udp, gopacket.Payload(make([]byte, payload)))
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, stack...); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// onOneCPU pins the test's thread so that every run sees the same per-CPU worker state.
func onOneCPU(t *testing.T) int {
	t.Helper()
	runtime.LockOSThread()
	t.Cleanup(runtime.UnlockOSThread)
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		t.Fatal(err)
	}
	cpu := 0
	for !set.IsSet(cpu) {
		cpu++
	}
	var one unix.CPUSet
	one.Set(cpu)
	if err := unix.SchedSetaffinity(0, &one); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.SchedSetaffinity(0, &set) })
	return cpu
}

func loadUDP(t *testing.T, cfg bpf.UDPConfig, frame []byte, limit uint64, cpu int) *bpf.UDP {
	t.Helper()
	netnstest.RequirePrivileges(t)
	g, err := bpf.LoadUDP(cfg, [][]byte{frame})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	states := make([]bpf.WorkerState, ebpf.MustPossibleCPU())
	states[cpu].Limit = limit
	if err := g.Workers.Put(uint32(0), states); err != nil {
		t.Fatal(err)
	}
	return g
}

func run(t *testing.T, prog *ebpf.Program, frame []byte) (uint32, []byte) {
	t.Helper()
	out := make([]byte, len(frame)+256)
	ret, err := prog.Run(&ebpf.RunOptions{Data: frame, DataOut: out})
	if err != nil {
		t.Fatal(err)
	}
	return ret, out
}

// TestUDPStampsPortsAndChecksums runs the generator on crafted frames and checks every rewritten frame:
// destination ports cycle first, source ports advance on each wrap, and every checksum verifies.
func TestUDPStampsPortsAndChecksums(t *testing.T) {
	for _, tc := range []struct {
		name     string
		src, dst netip.Addr
		vlan     uint16
		payload  int
	}{
		{"ipv4", netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2"), 0, 18},
		{"ipv6", netip.MustParseAddr("fd00::1"), netip.MustParseAddr("fd00::2"), 0, 100},
		{"ipv4-vlan", netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("198.51.100.7"), 42, 1000},
		{"ipv6-vlan", netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::ffff"), 4094, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const dport, dcount, sport, scount = 65530, 6, 1000, 3
			frame := udpFrame(t, tc.src, tc.dst, sport, dport, tc.vlan, tc.payload)
			udpOff := len(frame) - tc.payload - 8
			cpu := onOneCPU(t)
			g := loadUDP(t, bpf.UDPConfig{
				Ifindex: 1, UdpOffset: uint16(udpOff),
				DstPort: dport, DstPortCount: dcount, SrcPort: sport, SrcPortCount: scount,
			}, frame, math.MaxUint64, cpu)

			// Feed the previous output back in, as a recycled page would, or it with every header byte
			// scrambled, as the receiving stack may leave it: the result must not depend on it.
			in := frame
			for i := 0; i < dcount*scount*2; i++ {
				ret, out := run(t, g.Send, in)
				if ret != xdpRedirect {
					t.Fatalf("packet %d: verdict %d, want XDP_REDIRECT", i, ret)
				}
				udp := out[udpOff:len(frame)]
				gotS, gotD := binary.BigEndian.Uint16(udp[0:]), binary.BigEndian.Uint16(udp[2:])
				wantD := uint16(dport + i%dcount)
				wantS := uint16(sport + (i/dcount)%scount)
				if gotS != wantS || gotD != wantD {
					t.Fatalf("packet %d: ports %d->%d, want %d->%d", i, gotS, gotD, wantS, wantD)
				}
				if !netnstest.UDPChecksumOK(tc.src, tc.dst, udp) {
					t.Fatalf("packet %d: bad UDP checksum %#04x", i, binary.BigEndian.Uint16(udp[6:]))
				}
				if string(out[:udpOff]) != string(frame[:udpOff]) || string(out[udpOff+8:len(frame)]) != string(frame[udpOff+8:]) {
					t.Fatalf("packet %d: bytes outside the UDP ports and checksum changed", i)
				}
				switch i % 3 {
				case 0:
					in = out[:len(frame)]
				case 1:
					in = scrambledHeaders(out[:len(frame)], udpOff+8)
				default:
					in = frame
				}
			}
		})
	}
}

// TestUDPFixedFlowUntouched checks that a single-port flow is redirected byte for byte, as the template, even
// from a page whose headers the receiving stack rewrote; a frame of another length is aborted.
func TestUDPFixedFlowUntouched(t *testing.T) {
	for _, vlan := range []uint16{0, 7} {
		frame := udpFrame(t, netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2"), 9, 9, vlan, 18)
		udpOff := len(frame) - 18 - 8
		cpu := onOneCPU(t)
		g := loadUDP(t, bpf.UDPConfig{Ifindex: 1, UdpOffset: uint16(udpOff), DstPort: 9, DstPortCount: 1, SrcPort: 9, SrcPortCount: 1}, frame, math.MaxUint64, cpu)
		for _, in := range [][]byte{frame, scrambledHeaders(frame, udpOff+8)} {
			ret, out := run(t, g.Send, in)
			if ret != xdpRedirect || string(out[:len(frame)]) != string(frame) {
				t.Fatalf("vlan %d: verdict %d, frame changed: %v", vlan, ret, string(out[:len(frame)]) != string(frame))
			}
		}
		if ret, _ := run(t, g.Send, append(frame[:len(frame):len(frame)], 0, 0)); ret != xdpAborted {
			t.Fatalf("vlan %d: a frame 2 bytes long: verdict %d, want XDP_ABORTED", vlan, ret)
		}
	}
}

// scrambledHeaders is frame with its first n bytes changed, as a recycled page may hold them.
func scrambledHeaders(frame []byte, n int) []byte {
	in := append([]byte(nil), frame...)
	for j := range n {
		in[j] ^= byte(0x5a + 7*j)
	}
	return in
}

// TestUDPLimitAndCounters checks the per-CPU limit and the per-verdict counters.
func TestUDPLimitAndCounters(t *testing.T) {
	frame := udpFrame(t, netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2"), 9, 9, 0, 100)
	cpu := onOneCPU(t)
	g := loadUDP(t, bpf.UDPConfig{Ifindex: 1, UdpOffset: 34, DstPort: 9, DstPortCount: 1, SrcPort: 9, SrcPortCount: 1}, frame, 3, cpu)
	var verdicts []uint32
	for range 5 {
		ret, _ := run(t, g.Send, frame)
		verdicts = append(verdicts, ret)
	}
	if want := []uint32{xdpRedirect, xdpRedirect, xdpRedirect, xdpDrop, xdpDrop}; string(fmtU32(verdicts)) != string(fmtU32(want)) {
		t.Fatalf("verdicts %v, want %v", verdicts, want)
	}
	var states []bpf.WorkerState
	if err := g.Workers.Lookup(uint32(0), &states); err != nil {
		t.Fatal(err)
	}
	st := states[cpu]
	if st.Emitted != 3 || st.Actions[xdpRedirect].Packets != 3 || st.Actions[xdpRedirect].Bytes != 3*uint64(len(frame)) ||
		st.Actions[xdpDrop].Packets != 0 {
		t.Fatalf("state %+v: want 3 emitted and 3 redirected frames of %d bytes, limit drops uncounted", st, len(frame))
	}
}

func fmtU32(v []uint32) []byte {
	b := make([]byte, len(v))
	for i, x := range v {
		b[i] = byte(x)
	}
	return b
}

// TestReceiveUnstampedFilter checks which crafted unstamped frames the receive program counts as matched.
func TestReceiveUnstampedFilter(t *testing.T) {
	netnstest.RequirePrivileges(t)
	v4s, v4d := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
	v6s, v6d := netip.MustParseAddr("fd00::1"), netip.MustParseAddr("fd00::2")
	for _, pass := range []bool{true, false} {
		cfg := bpf.RxConfig{DstPortFirst: 100, DstPortLast: 199}
		if pass {
			cfg.Pass = 1
		}
		rx, err := bpf.LoadReceiver(cfg, 64)
		if err != nil {
			t.Fatal(err)
		}
		defer rx.Close()
		matchVerdict := uint32(xdpDrop)
		if pass {
			matchVerdict = xdpPass
		}
		for _, tc := range []struct {
			name  string
			frame []byte
			match bool
		}{
			{"ipv4 first port", udpFrame(t, v4s, v4d, 1, 100, 0, 10), true},
			{"ipv4 last port", udpFrame(t, v4s, v4d, 1, 199, 0, 10), true},
			{"ipv4 below", udpFrame(t, v4s, v4d, 1, 99, 0, 10), false},
			{"ipv4 above", udpFrame(t, v4s, v4d, 1, 200, 0, 10), false},
			{"ipv6", udpFrame(t, v6s, v6d, 1, 150, 0, 10), true},
			{"ipv4 vlan", udpFrame(t, v4s, v4d, 1, 150, 7, 10), true},
			{"ipv6 vlan", udpFrame(t, v6s, v6d, 1, 150, 7, 10), true},
			{"truncated", udpFrame(t, v4s, v4d, 1, 150, 0, 10)[:36], false},
		} {
			ret, _ := run(t, rx.Program, tc.frame)
			want := uint32(xdpPass)
			if tc.match {
				want = matchVerdict
			}
			if ret != want {
				t.Errorf("pass=%v %s: verdict %d, want %d", pass, tc.name, ret, want)
			}
		}
		matched, other := received(t, rx, bpf.RxMatched), received(t, rx, bpf.RxOther)
		if m, o := matched, other; m != 5 || o != 3 {
			t.Errorf("pass=%v: matched %d other %d, want 5 and 3", pass, m, o)
		}
	}
}

// received is how many frames the receive program counted under key (bpf.RxMatched ...), on every CPU.
func received(t *testing.T, rx *bpf.Receiver, key uint32) uint64 {
	t.Helper()
	c, err := rx.Counters()
	if err != nil {
		t.Fatal(err)
	}
	return c[key].Packets
}
