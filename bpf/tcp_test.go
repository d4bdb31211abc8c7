package bpf_test

import (
	"encoding/binary"
	"fmt"
	"math"
	"net/netip"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"golang.org/x/sys/unix"

	"github.com/xdpgen/xdpgen/bpf"
	"github.com/xdpgen/xdpgen/bpf/bpftest"
	"github.com/xdpgen/xdpgen/test/netnstest"
)

const (
	tcpMSS   = 1000
	peerPort = 5201
	ourPort  = 40000
	iss      = 0xfffff000 // the sequence numbers wrap inside the fifth segment
	rcvNxt   = 5555
	tsOffset = 77
)

// tcpSegment builds a TCP segment with gopacket, independently of the engine's template code.
func tcpSegment(t *testing.T, src, dst netip.Addr, tcp *layers.TCP, payload []byte) []byte {
	t.Helper()
	eth := &layers.Ethernet{SrcMAC: srcMAC, DstMAC: dstMAC, EthernetType: layers.EthernetTypeIPv4}
	var ip gopacket.SerializableLayer
	if dst.Is6() {
		eth.EthernetType = layers.EthernetTypeIPv6
		ip6 := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolTCP, SrcIP: src.AsSlice(), DstIP: dst.AsSlice()}
		_ = tcp.SetNetworkLayerForChecksum(ip6)
		ip = ip6
	} else {
		ip4 := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: src.AsSlice(), DstIP: dst.AsSlice()}
		_ = tcp.SetNetworkLayerForChecksum(ip4)
		ip = ip4
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, eth, ip, tcp, gopacket.Payload(payload)); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func tsOption(val, ecr uint32) []layers.TCPOption {
	data := binary.BigEndian.AppendUint32(nil, val)
	data = binary.BigEndian.AppendUint32(data, ecr)
	return []layers.TCPOption{
		{OptionType: layers.TCPOptionKindNop}, {OptionType: layers.TCPOptionKindNop},
		{OptionType: layers.TCPOptionKindTimestamps, OptionLength: 10, OptionData: data},
	}
}

// tcpRig is the TCP programs loaded for one flow (index 0) sent by the worker on the test's CPU.
type tcpRig struct {
	*bpf.TCP
	src, dst netip.Addr
	template []byte
	tcpOff   int
}

func newTCPRig(t *testing.T, src, dst netip.Addr) *tcpRig {
	t.Helper()
	netnstest.RequirePrivileges(t)
	// The template: every stamped field zero, the payload's first 8 bytes (the stream offset) too.
	payload := make([]byte, tcpMSS)
	for i := 8; i < len(payload); i++ {
		payload[i] = byte(i)
	}
	tmpl := tcpSegment(t, src, dst, &layers.TCP{DstPort: peerPort, ACK: true, Window: 512, Options: tsOption(0, 0)}, payload)
	r := &tcpRig{src: src, dst: dst, template: tmpl, tcpOff: 14 + 20}
	cfg := bpf.TCPConfig{Ifindex: 1, Mss: tcpMSS, DstPort: peerPort, Timestamps: 1, RcvWnd: 512 << 7, MaxCwnd: 1000,
		MinRto: uint64(200 * time.Millisecond), MaxRto: uint64(5 * time.Second)}
	if dst.Is6() {
		r.tcpOff = 14 + 40
		cfg.Ipv6 = 1
	}
	cfg.TcpOffset = uint16(r.tcpOff)
	cfg.TcpCheck = binary.BigEndian.Uint16(tmpl[r.tcpOff+16:])
	copy(cfg.SrcAddr[:], src.AsSlice())
	copy(cfg.DstAddr[:], dst.AsSlice())
	objs, err := bpf.LoadTCP(cfg, tmpl)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { objs.Close() })
	r.TCP = objs
	cpu := onOneCPU(t)
	workers := make([]bpf.TCPWorker, ebpf.MustPossibleCPU())
	workers[cpu] = bpf.TCPWorker{Count: 1, Stride: 1}
	if err := objs.Workers.Put(uint32(0), workers); err != nil {
		t.Fatal(err)
	}
	if err := objs.Control.Update(uint32(0), bpf.TCPFlowCtl{End: math.MaxUint64}, ebpf.UpdateAny); err != nil {
		t.Fatal(err)
	}
	if err := objs.Ports.Update(uint16(ourPort>>8|ourPort<<8&0xff00), uint32(0), ebpf.UpdateAny); err != nil {
		t.Fatal(err)
	}
	return r
}

// flow is a running flow at the start of its stream with the given congestion window.
func flow(cwnd uint32) bpf.TCPFlow {
	return bpf.TCPFlow{
		State: bpf.TCPFlowRunning, Iss: iss, RcvNxt: rcvNxt, TsOffset: tsOffset, TsRecent: 4242,
		PeerWnd: 1 << 20, Cwnd: cwnd, Ssthresh: math.MaxUint32, Wscale: 7,
		Port: ourPort>>8 | ourPort<<8&0xff00, Rto: uint64(time.Second),
	}
}

func (r *tcpRig) setFlow(t *testing.T, f bpf.TCPFlow) {
	t.Helper()
	if err := r.Flows.Update(uint32(0), f, ebpf.UpdateAny); err != nil {
		t.Fatal(err)
	}
}

func (r *tcpRig) flow(t *testing.T) bpf.TCPFlow {
	t.Helper()
	var f bpf.TCPFlow
	if err := r.Flows.LookupWithFlags(uint32(0), &f, ebpf.LookupLock); err != nil {
		t.Fatal(err)
	}
	return f
}

// send runs the send program on in and returns the verdict and the segment it made.
func (r *tcpRig) send(t *testing.T, in []byte) (uint32, []byte) {
	t.Helper()
	ret, out := run(t, r.Send, in)
	return ret, out[:len(r.template)]
}

// ack runs the ack program on a segment from the peer.
func (r *tcpRig) ack(t *testing.T, tcp *layers.TCP) uint32 {
	t.Helper()
	if tcp.SrcPort == 0 {
		tcp.SrcPort = peerPort
	}
	if tcp.DstPort == 0 {
		tcp.DstPort = ourPort
	}
	ret, _ := run(t, r.Ack, tcpSegment(t, r.dst, r.src, tcp, nil))
	return ret
}

// seqAt is the sequence number of stream offset n segments.
func seqAt(n int) uint32 {
	return uint32(iss) + uint32(n*tcpMSS)
}

func monotonicMs() uint32 {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return uint32(ts.Nano() / 1e6)
}

// TestTCPSendStampsSegments: consecutive segments carry the right sequence numbers (across a wrap), ACK,
// port, timestamps and stream offset, and a valid checksum, whatever a recycled page held; a full congestion
// window stops the flow.
func TestTCPSendStampsSegments(t *testing.T) {
	for _, tc := range []struct {
		name     string
		src, dst netip.Addr
	}{
		{"ipv4", netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")},
		{"ipv6", netip.MustParseAddr("fd00::1"), netip.MustParseAddr("fd00::2")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newTCPRig(t, tc.src, tc.dst)
			r.setFlow(t, flow(6))
			in := r.template
			for i := range 6 {
				before := monotonicMs()
				ret, out := r.send(t, in)
				after := monotonicMs()
				if ret != xdpRedirect {
					t.Fatalf("segment %d: verdict %d, want XDP_REDIRECT", i, ret)
				}
				seg := out[r.tcpOff:]
				if !netnstest.TCPChecksumOK(tc.src, tc.dst, seg) {
					t.Fatalf("segment %d: bad TCP checksum", i)
				}
				pkt := gopacket.NewPacket(out, layers.LayerTypeEthernet, gopacket.Default)
				tcp, _ := pkt.Layer(layers.LayerTypeTCP).(*layers.TCP)
				if tcp == nil || len(tcp.Options) != 3 {
					t.Fatalf("segment %d: not a TCP segment with timestamps", i)
				}
				tsval, tsecr := binary.BigEndian.Uint32(tcp.Options[2].OptionData), binary.BigEndian.Uint32(tcp.Options[2].OptionData[4:])
				if tcp.SrcPort != ourPort || tcp.DstPort != peerPort || tcp.Seq != seqAt(i) || tcp.Ack != rcvNxt || !tcp.ACK ||
					tcp.PSH || tcp.FIN || tsecr != 4242 || tsval < before+tsOffset || tsval > after+tsOffset {
					t.Fatalf("segment %d: %d->%d seq %d ack %d TS %d/%d; want %d->%d seq %d ack %d TS %d-%d/4242",
						i, tcp.SrcPort, tcp.DstPort, tcp.Seq, tcp.Ack, tsval, tsecr, ourPort, peerPort, seqAt(i), rcvNxt,
						before+tsOffset, after+tsOffset)
				}
				if off := binary.BigEndian.Uint64(tcp.Payload); off != uint64(i*tcpMSS) || string(tcp.Payload[8:]) != string(r.template[len(r.template)-tcpMSS+8:]) {
					t.Fatalf("segment %d: payload at offset %d, want %d, and the pattern", i, off, i*tcpMSS)
				}
				if unstamped := unstampedBytes(r.template, r.tcpOff); string(unstampedBytes(out, r.tcpOff)) != string(unstamped) {
					t.Fatalf("segment %d: a header byte the program does not stamp differs from the template's", i)
				}
				// Feed back the segment with every header byte and the stream offset scrambled: a recycled page
				// holds whatever an earlier segment (of any flow) put there, and whatever the receiver's stack
				// wrote (a router's MACs and TTL, GRO's merged length, flags and checksums).
				in = append([]byte(nil), out...)
				for j := range r.tcpOff + 40 {
					in[j] ^= byte(0xa5 + 3*j)
				}
			}
			if ret, _ := r.send(t, r.template); ret != xdpDrop {
				t.Fatalf("with the congestion window full: verdict %d, want XDP_DROP", ret)
			}
			f := r.flow(t)
			if f.SndNxt != 6*tcpMSS || f.SndMax != 6*tcpMSS || f.SegsSent != 6 || f.SegsRetrans != 0 || f.RtoAt == 0 || f.RttStart == 0 {
				t.Fatalf("flow after 6 segments: %+v", f)
			}
		})
	}
}

// unstampedBytes is a segment's headers (with timestamps) without the fields the send program stamps: source
// port, sequence and acknowledgement numbers, checksum, TSval and TSecr.
func unstampedBytes(seg []byte, tcpOff int) []byte {
	var b []byte
	b = append(b, seg[:tcpOff]...)
	b = append(b, seg[tcpOff+2:tcpOff+4]...)
	b = append(b, seg[tcpOff+12:tcpOff+16]...)
	b = append(b, seg[tcpOff+18:tcpOff+24]...)
	return b
}

// TestTCPSendRefusesAnotherLength: a frame that is not the template's length is aborted, not stamped.
func TestTCPSendRefusesAnotherLength(t *testing.T) {
	r := newTCPRig(t, netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2"))
	r.setFlow(t, flow(6))
	if ret, _ := run(t, r.Send, r.template[:len(r.template)-2]); ret != xdpAborted {
		t.Fatalf("a frame 2 bytes short: verdict %d, want XDP_ABORTED", ret)
	}
}

// TestTCPWindowsAndLimit: the peer's window and the end of the stream stop a flow as the congestion window does.
func TestTCPWindowsAndLimit(t *testing.T) {
	r := newTCPRig(t, netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2"))
	f := flow(100)
	f.PeerWnd = 2*tcpMSS + tcpMSS/2
	r.setFlow(t, f)
	verdicts := func(n int) (v []uint32) {
		for range n {
			ret, _ := r.send(t, r.template)
			v = append(v, ret)
		}
		return v
	}
	if got := verdicts(3); got[0] != xdpRedirect || got[1] != xdpRedirect || got[2] != xdpDrop {
		t.Fatalf("a window of 2.5 segments: verdicts %v, want two sent then a drop", got)
	}
	r.setFlow(t, flow(100))
	if err := r.Control.Update(uint32(0), bpf.TCPFlowCtl{End: 3 * tcpMSS}, ebpf.UpdateAny); err != nil {
		t.Fatal(err)
	}
	if got := verdicts(4); got[2] != xdpRedirect || got[3] != xdpDrop {
		t.Fatalf("a stream of 3 segments: verdicts %v, want three sent then a drop", got)
	}
	if err := r.Control.Update(uint32(0), bpf.TCPFlowCtl{End: math.MaxUint64, Stop: 1}, ebpf.UpdateAny); err != nil {
		t.Fatal(err)
	}
	if got := verdicts(1); got[0] != xdpDrop {
		t.Fatalf("stopped: verdict %v, want a drop", got)
	}
	var workers []bpf.TCPWorker
	if err := r.Workers.Lookup(uint32(0), &workers); err != nil {
		t.Fatal(err)
	}
	var idle, sent uint64
	for _, w := range workers {
		idle += w.Idle
		sent += w.Actions[xdpRedirect].Packets
	}
	if idle != 3 || sent != 5 {
		t.Fatalf("workers counted %d idle and %d sent frames, want 3 and 5", idle, sent)
	}
}

// TestTCPAcks walks a flow through the ACK program: a cumulative ACK (slow start, window scaling, the peer's
// timestamp, an RTT sample), three duplicate ACKs (fast retransmit of the segment at snd_una), the ACK that
// ends recovery, a retransmission timeout (go back to snd_una with a window of one), the peer's FIN, and a RST.
func TestTCPAcks(t *testing.T) {
	src, dst := netip.MustParseAddr("fd00::1"), netip.MustParseAddr("fd00::2")
	r := newTCPRig(t, src, dst)
	r.setFlow(t, flow(4))
	for range 4 {
		if ret, _ := r.send(t, r.template); ret != xdpRedirect {
			t.Fatal("could not send the first window")
		}
	}

	if ret := r.ack(t, &layers.TCP{Seq: rcvNxt, Ack: seqAt(2), ACK: true, Window: 100, Options: tsOption(5000, 0)}); ret != xdpDrop {
		t.Fatalf("an ACK of the flow: verdict %d, want XDP_DROP", ret)
	}
	f := r.flow(t)
	if f.SndUna != 2*tcpMSS || f.Cwnd != 6 || f.PeerWnd != 100<<7 || f.TsRecent != 5000 || f.Srtt == 0 || f.AcksSeen != 1 || f.RtoAt == 0 {
		t.Fatalf("after a cumulative ACK of 2 segments: %+v", f)
	}

	sack := append(tsOption(5001, 0), layers.TCPOption{OptionType: layers.TCPOptionKindNop}, layers.TCPOption{OptionType: layers.TCPOptionKindNop},
		layers.TCPOption{OptionType: layers.TCPOptionKindSACK, OptionLength: 10, OptionData: make([]byte, 8)})
	for i := range 3 {
		r.ack(t, &layers.TCP{Seq: rcvNxt, Ack: seqAt(2), ACK: true, Window: 100, Options: sack})
		if f = r.flow(t); (i < 2) == (f.FastRetrans != 0) {
			t.Fatalf("after %d duplicate ACKs: %d fast retransmits", i+1, f.FastRetrans)
		}
	}
	if f.InRecovery != 1 || f.RtxPending != 1 || f.Ssthresh != 4 || f.Cwnd != 4 || f.Recover != 4*tcpMSS || f.DupacksSeen != 3 {
		t.Fatalf("after three duplicate ACKs: %+v", f)
	}
	ret, out := r.send(t, r.template)
	seq := binary.BigEndian.Uint32(out[r.tcpOff+4:])
	if f = r.flow(t); ret != xdpRedirect || seq != seqAt(2) || f.SegsRetrans != 1 || f.SndNxt != 4*tcpMSS {
		t.Fatalf("fast retransmit: verdict %d seq %d, flow %+v; want the segment at %d again", ret, seq, f, seqAt(2))
	}

	r.ack(t, &layers.TCP{Seq: rcvNxt, Ack: seqAt(4), ACK: true, Window: 100, Options: tsOption(5002, 0)})
	if f = r.flow(t); f.InRecovery != 0 || f.Cwnd != 4 || f.SndUna != 4*tcpMSS || f.RtoAt != 0 {
		t.Fatalf("after the ACK that ends recovery: %+v", f)
	}

	// Two more segments, then their timer runs out.
	r.send(t, r.template)
	r.send(t, r.template)
	f = r.flow(t)
	f.RtoAt = 1
	rto := f.Rto
	r.setFlow(t, f)
	ret, out = r.send(t, r.template)
	seq = binary.BigEndian.Uint32(out[r.tcpOff+4:])
	if f = r.flow(t); ret != xdpRedirect || seq != seqAt(4) || f.Timeouts != 1 || f.Cwnd != 1 || f.Rto != 2*rto || f.SndNxt != 5*tcpMSS {
		t.Fatalf("timeout: verdict %d seq %d, flow %+v; want the segment at snd_una with a window of one and the timer backed off", ret, seq, f)
	}
	if ret, _ := r.send(t, r.template); ret != xdpDrop {
		t.Fatal("after a timeout a window of one segment let a second through")
	}

	r.ack(t, &layers.TCP{Seq: rcvNxt, Ack: seqAt(4), ACK: true, FIN: true, Window: 100, Options: tsOption(5003, 0)})
	if f = r.flow(t); f.PeerFin != 1 || f.RcvNxt != rcvNxt+1 {
		t.Fatalf("after the peer's FIN: %+v", f)
	}
	r.ack(t, &layers.TCP{Seq: rcvNxt + 1, RST: true})
	if f = r.flow(t); f.State != bpf.TCPFlowReset {
		t.Fatalf("after a RST: %+v", f)
	}
	if ret, _ := r.send(t, r.template); ret != xdpDrop {
		t.Fatal("a reset flow still sends")
	}
}

// TestTCPAckIgnores: the ACK program passes what is not the flow's (so the host's other traffic is untouched),
// and takes, without acting on, ACKs for data never sent and old ACKs.
func TestTCPAckIgnores(t *testing.T) {
	src, dst := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
	r := newTCPRig(t, src, dst)
	f := flow(10)
	f.SndUna, f.SndNxt, f.SndMax = 4*tcpMSS, 6*tcpMSS, 6*tcpMSS
	r.setFlow(t, f)
	for _, tc := range []struct {
		name    string
		tcp     *layers.TCP
		from    netip.Addr
		verdict uint32
	}{
		{"another local port", &layers.TCP{DstPort: ourPort + 1, Ack: seqAt(5), ACK: true}, dst, xdpPass},
		{"another peer port", &layers.TCP{SrcPort: peerPort + 1, Ack: seqAt(5), ACK: true}, dst, xdpPass},
		{"another peer", &layers.TCP{Ack: seqAt(5), ACK: true}, netip.MustParseAddr("10.0.0.3"), xdpPass},
		{"an ACK of unsent data", &layers.TCP{Ack: seqAt(7), ACK: true}, dst, xdpDrop},
		{"an old ACK", &layers.TCP{Ack: seqAt(3), ACK: true}, dst, xdpDrop},
		{"a RST out of the window", &layers.TCP{Seq: rcvNxt - 1, RST: true}, dst, xdpDrop},
	} {
		if tc.tcp.SrcPort == 0 {
			tc.tcp.SrcPort = peerPort
		}
		if tc.tcp.DstPort == 0 {
			tc.tcp.DstPort = ourPort
		}
		ret, _ := run(t, r.Ack, tcpSegment(t, tc.from, src, tc.tcp, nil))
		if ret != tc.verdict {
			t.Errorf("%s: verdict %d, want %d", tc.name, ret, tc.verdict)
		}
	}
	if got := r.flow(t); got.SndUna != f.SndUna || got.State != bpf.TCPFlowRunning || got.Dupacks != 0 {
		t.Fatalf("the flow changed: %+v", got)
	}
	if ret, _ := run(t, r.Ack, udpFrame(t, dst, src, peerPort, ourPort, 0, 20)); ret != xdpPass {
		t.Fatalf("UDP: verdict %d, want XDP_PASS", ret)
	}
	if err := r.Control.Update(uint32(0), bpf.TCPFlowCtl{HandedBack: 1}, ebpf.UpdateAny); err != nil {
		t.Fatal(err)
	}
	if ret := r.ack(t, &layers.TCP{Ack: seqAt(5), ACK: true}); ret != xdpPass {
		t.Fatalf("a flow handed back to the kernel: verdict %d, want XDP_PASS", ret)
	}
}

// TestTCPLossInjector: one data segment in N is dropped; pure ACKs and other ports pass; every frame counts.
func TestTCPLossInjector(t *testing.T) {
	netnstest.RequirePrivileges(t)
	loss, err := bpftest.LoadTCPLoss(bpftest.TCPLossConfig{DstPort: peerPort, DropEvery: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer loss.Close()
	onOneCPU(t)
	src, dst := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
	data := tcpSegment(t, src, dst, &layers.TCP{SrcPort: ourPort, DstPort: peerPort, ACK: true}, make([]byte, 100))
	var verdicts []uint32
	for range 6 {
		ret, _ := run(t, loss.Program, data)
		verdicts = append(verdicts, ret)
	}
	if want := []uint32{xdpPass, xdpPass, xdpDrop, xdpPass, xdpPass, xdpDrop}; string(fmtU32(verdicts)) != string(fmtU32(want)) {
		t.Fatalf("verdicts %v, want %v", verdicts, want)
	}
	pureACK := tcpSegment(t, src, dst, &layers.TCP{SrcPort: ourPort, DstPort: peerPort, ACK: true}, nil)
	for _, f := range [][]byte{
		pureACK,
		tcpSegment(t, src, dst, &layers.TCP{SrcPort: ourPort, DstPort: peerPort + 1, ACK: true}, make([]byte, 100)),
	} {
		if ret, _ := run(t, loss.Program, f); ret != xdpPass {
			t.Fatalf("verdict %d, want XDP_PASS", ret)
		}
	}
	read := func(key uint32) (n, bytes uint64) {
		var perCPU []bpf.Counter
		if err := loss.Counters.Lookup(key, &perCPU); err != nil {
			t.Fatal(err)
		}
		for _, c := range perCPU {
			n, bytes = n+c.Packets, bytes+c.Bytes
		}
		return
	}
	if n, b := read(bpftest.TCPLossPassed); n != 4 || b != 400 {
		t.Errorf("passed %d segments of %d bytes, want 4 and 400", n, b)
	}
	if n, b := read(bpftest.TCPLossDropped); n != 2 || b != 200 {
		t.Errorf("dropped %d segments of %d bytes, want 2 and 200", n, b)
	}
	if n, b := read(bpftest.TCPLossFrames); n != 7 || b != 6*uint64(len(data))+uint64(len(pureACK)) {
		t.Errorf("counted %d frames of %d bytes, want 7 of %d", n, b, 6*len(data)+len(pureACK))
	}
}

// sackOption is timestamps and one SACK block [left, right).
func sackOption(tsval, left, right uint32) []layers.TCPOption {
	block := binary.BigEndian.AppendUint32(nil, left)
	block = binary.BigEndian.AppendUint32(block, right)
	return append(tsOption(tsval, 0), layers.TCPOption{OptionType: layers.TCPOptionKindNop}, layers.TCPOption{OptionType: layers.TCPOptionKindNop},
		layers.TCPOption{OptionType: layers.TCPOptionKindSACK, OptionLength: 10, OptionData: block})
}

// TestTCPSACKRecovery: one duplicate ACK whose SACK block shows the peer holds segments 3-9 (a receiver's GRO
// merges segments and sends one ACK for many) starts recovery; the whole hole, segments 0-2, is retransmitted,
// then new data flows within the reduced window; a retransmission not acknowledged in time is sent again, once;
// a partial ACK does not resend what is already on its way again.
func TestTCPSACKRecovery(t *testing.T) {
	src, dst := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
	r := newTCPRig(t, src, dst)
	r.setFlow(t, flow(10))
	sendOffset := func() (uint32, int64) {
		t.Helper()
		ret, out := r.send(t, r.template)
		if ret != xdpRedirect {
			return ret, -1
		}
		return ret, int64(binary.BigEndian.Uint32(out[r.tcpOff+4:])-seqAt(0)) / tcpMSS
	}
	for range 10 {
		sendOffset()
	}

	r.ack(t, &layers.TCP{Seq: rcvNxt, Ack: seqAt(0), ACK: true, Window: 100, Options: sackOption(5000, seqAt(3), seqAt(10))})
	f := r.flow(t)
	if f.FastRetrans != 1 || f.InRecovery != 1 || f.HoleEnd != 3*tcpMSS || f.SackHigh != 10*tcpMSS || f.Ssthresh != 7 || f.Cwnd != 7 {
		t.Fatalf("after one duplicate ACK with 7 segments SACKed above the first: %+v", f)
	}
	var got []int64
	for range 5 {
		_, seg := sendOffset()
		got = append(got, seg)
	}
	if want := []int64{0, 1, 2, 10, 11}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("segments sent in recovery: %v, want the hole %v first, then new data", got, want)
	}
	if f = r.flow(t); f.SegsRetrans != 3 {
		t.Fatalf("%d retransmissions counted, want 3", f.SegsRetrans)
	}

	f.RtxLostAt = 1
	r.setFlow(t, f)
	if _, seg := sendOffset(); seg != 0 {
		t.Fatalf("a lost retransmission: sent segment %d, want 0 again", seg)
	}
	if f = r.flow(t); f.LostRetrans != 1 || f.SegsRetrans != 4 {
		t.Fatalf("after the lost retransmission: %+v", f)
	}

	// Segment 0 arrives: a partial ACK up to the hole's next segment, which was retransmitted already (its
	// timer starts now).
	r.ack(t, &layers.TCP{Seq: rcvNxt, Ack: seqAt(1), ACK: true, Window: 100, Options: sackOption(5001, seqAt(3), seqAt(12))})
	if f = r.flow(t); f.InRecovery != 1 || f.SndUna != tcpMSS || f.RtxPending != 0 || f.RtxLostAt == 0 {
		t.Fatalf("after a partial ACK: %+v", f)
	}
	if ret, seg := sendOffset(); seg != 12 && ret != xdpDrop {
		t.Fatalf("after a partial ACK: sent segment %d, want new data (12) or nothing, not the hole again", seg)
	}
	r.ack(t, &layers.TCP{Seq: rcvNxt, Ack: seqAt(12), ACK: true, Window: 100, Options: tsOption(5002, 0)})
	if f = r.flow(t); f.InRecovery != 0 || f.Cwnd != f.Ssthresh {
		t.Fatalf("after the ACK that ends recovery: %+v", f)
	}
}

// TestTCPFastRetransmitBeforeTimer: a fast retransmit that an ACK asked for but the worker sent only after the
// timer's deadline (it was off its CPU meanwhile) goes out as a fast retransmit and restarts the timer; it is
// not a timeout, which would cut the window to one segment and send again what the peer's SACK blocks show it
// holds. A retransmission lost again and left unanswered still meets the timeout.
func TestTCPFastRetransmitBeforeTimer(t *testing.T) {
	src, dst := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
	r := newTCPRig(t, src, dst)
	r.setFlow(t, flow(10))
	for range 10 {
		r.send(t, r.template)
	}
	r.ack(t, &layers.TCP{Seq: rcvNxt, Ack: seqAt(0), ACK: true, Window: 100, Options: sackOption(5000, seqAt(1), seqAt(10))})
	f := r.flow(t)
	if f.InRecovery != 1 || f.RtxPending != 1 {
		t.Fatalf("after a duplicate ACK with 9 segments SACKed above the first: %+v", f)
	}
	f.RtoAt = 1 // the deadline passed before the worker came back
	r.setFlow(t, f)
	var now unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &now)
	began := uint64(now.Nano())
	ret, out := r.send(t, r.template)
	seq := binary.BigEndian.Uint32(out[r.tcpOff+4:])
	if f = r.flow(t); ret != xdpRedirect || seq != seqAt(0) || f.Timeouts != 0 || f.Cwnd != 7 || f.RtoAt < began {
		t.Fatalf("the fast retransmit, late: verdict %d seq %d, flow %+v; want segment 0 again, no timeout, the window "+
			"of the recovery (7) and the timer restarted", ret, seq, f)
	}

	f.RtxLostAt, f.RtoAt = 1, 1 // the retransmission was lost too, and the timer ran out
	r.setFlow(t, f)
	ret, out = r.send(t, r.template)
	seq = binary.BigEndian.Uint32(out[r.tcpOff+4:])
	if f = r.flow(t); ret != xdpRedirect || seq != seqAt(0) || f.Timeouts != 1 || f.Cwnd != 1 {
		t.Fatalf("a lost retransmission past the deadline: verdict %d seq %d, flow %+v; want a timeout", ret, seq, f)
	}
}

// TestTCPEarlyRetransmit: at the end of the stream, a loss among the last three segments cannot bring three
// duplicate ACKs; with fewer than four segments outstanding and nothing new to send, one less than what is
// outstanding starts the fast retransmit (RFC 5827) instead of the retransmission timeout, also when the ACK
// that shows it moves snd_una too (the receiver's GRO merged what came before the hole with what came after).
// In the middle of the stream the threshold stays three.
func TestTCPEarlyRetransmit(t *testing.T) {
	src, dst := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
	for _, tc := range []struct {
		name string
		end  uint64
		// acks: cumulative ACK (in segments) and the SACK block [left, right).
		acks    [][3]int
		lost    int // the segment retransmitted; -1: none
		recover bool
	}{
		{"the last three segments, two duplicate ACKs", 3 * tcpMSS, [][3]int{{0, 1, 2}, {0, 1, 3}}, 0, true},
		{"the last three segments, one ACK that moves snd_una", 3 * tcpMSS, [][3]int{{1, 2, 3}}, 1, true},
		{"more of the stream to come", math.MaxUint64, [][3]int{{0, 1, 2}, {0, 1, 3}}, -1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newTCPRig(t, src, dst)
			if err := r.Control.Update(uint32(0), bpf.TCPFlowCtl{End: tc.end}, ebpf.UpdateAny); err != nil {
				t.Fatal(err)
			}
			r.setFlow(t, flow(3))
			for range 3 {
				if ret, _ := r.send(t, r.template); ret != xdpRedirect {
					t.Fatal("could not send three segments")
				}
			}
			for i, a := range tc.acks {
				r.ack(t, &layers.TCP{Seq: rcvNxt, Ack: seqAt(a[0]), ACK: true, Window: 100, Options: sackOption(uint32(5000+i), seqAt(a[1]), seqAt(a[2]))})
			}
			f := r.flow(t)
			if (f.FastRetrans == 1) != tc.recover || (f.InRecovery == 1) != tc.recover {
				t.Fatalf("after ACKs %v for three segments sent: %+v; want recovery %v", tc.acks, f, tc.recover)
			}
			if tc.lost < 0 {
				return
			}
			ret, out := r.send(t, r.template)
			if seq := binary.BigEndian.Uint32(out[r.tcpOff+4:]); ret != xdpRedirect || seq != seqAt(tc.lost) {
				t.Fatalf("early retransmit: verdict %d seq %d, want segment %d again", ret, seq, tc.lost)
			}
		})
	}
}

// TestTCPIdleNote: a flow that found nothing to send is not looked at again (no lock, no precise clock) until an
// ACK arrives or its earliest timer is due, per the note it leaves; an ACK that opens the window, and a timer
// that is due, each make it send again.
func TestTCPIdleNote(t *testing.T) {
	src, dst := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
	r := newTCPRig(t, src, dst)
	r.setFlow(t, flow(2))
	r.send(t, r.template)
	r.send(t, r.template)
	if ret, _ := r.send(t, r.template); ret != xdpDrop {
		t.Fatal("a full window let a third segment through")
	}
	f := r.flow(t)
	if f.IdleAcks != f.AcksSeen+1 || f.IdleUntil != f.RtoAt || f.RtoAt == 0 {
		t.Fatalf("after a full window: %+v; want the note valid until the retransmission timer", f)
	}

	// The timer's deadline passes, but the note says otherwise: the flow is not looked at.
	f.RtoAt = 1
	r.setFlow(t, f)
	if ret, _ := r.send(t, r.template); ret != xdpDrop || r.flow(t).Timeouts != 0 {
		t.Fatalf("a flow with a valid note was looked at: verdict %d, %+v", ret, r.flow(t))
	}
	// With the note's deadline passed too, the timeout is taken.
	f.IdleUntil = 1
	r.setFlow(t, f)
	if ret, _ := r.send(t, r.template); ret != xdpRedirect || r.flow(t).Timeouts != 1 {
		t.Fatalf("a due timer: verdict %d, %+v; want the timeout's retransmission", ret, r.flow(t))
	}
	if ret, _ := r.send(t, r.template); ret != xdpDrop {
		t.Fatal("after a timeout a window of one segment let a second through")
	}

	// An ACK of the retransmission opens the window: the flow sends again, its note notwithstanding.
	r.ack(t, &layers.TCP{Seq: rcvNxt, Ack: seqAt(1), ACK: true, Window: 100, Options: tsOption(5000, 0)})
	if ret, _ := r.send(t, r.template); ret != xdpRedirect {
		t.Fatalf("after an ACK that opened the window: verdict %d, %+v", ret, r.flow(t))
	}
}
