package bpf_test

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/bits"
	"net/netip"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/google/go-cmp/cmp"
	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"golang.org/x/sys/unix"

	"github.com/xdpgen/xdpgen/bpf"
	"github.com/xdpgen/xdpgen/test/netnstest"
)

const xdpTX = 3

// stamp is a stamp's fields, as the tests write and read them (independently of the programs' struct).
type stamp struct {
	magic             uint16
	flags, stream     uint8
	generator, sender uint32
	seq, txTime       uint32
}

func (s stamp) bytes() []byte {
	b := make([]byte, bpf.StampLen)
	binary.BigEndian.PutUint16(b[0:], s.magic)
	b[2], b[3] = s.flags, s.stream
	binary.BigEndian.PutUint32(b[4:], s.generator)
	binary.BigEndian.PutUint32(b[8:], s.sender)
	binary.BigEndian.PutUint32(b[12:], s.seq)
	binary.BigEndian.PutUint32(b[16:], s.txTime)
	return b
}

func readStamp(b []byte) stamp {
	return stamp{magic: binary.BigEndian.Uint16(b[0:]), flags: b[2], stream: b[3], generator: binary.BigEndian.Uint32(b[4:]),
		sender: binary.BigEndian.Uint32(b[8:]), seq: binary.BigEndian.Uint32(b[12:]), txTime: binary.BigEndian.Uint32(b[16:])}
}

// stampedFrame is a UDP frame whose payload starts with s, followed by extra bytes; checksums valid.
func stampedFrame(t testing.TB, src, dst netip.Addr, vlan uint16, s stamp, extra int) []byte {
	t.Helper()
	frame := udpFrame(t, src, dst, 4000, 9, vlan, bpf.StampLen+extra)
	// Rebuild with the stamp in the payload, so that gopacket computes the checksum over it.
	pkt := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.Default)
	var stack []gopacket.SerializableLayer
	for _, l := range pkt.Layers() {
		if sl, ok := l.(gopacket.SerializableLayer); ok && l.LayerType() != gopacket.LayerTypePayload {
			stack = append(stack, sl)
		}
	}
	udp := pkt.Layer(layers.LayerTypeUDP).(*layers.UDP)
	_ = udp.SetNetworkLayerForChecksum(pkt.NetworkLayer())
	stack = append(stack, gopacket.Payload(append(s.bytes(), make([]byte, extra)...)))
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, stack...); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func taiNow() uint64 {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_TAI, &ts)
	return uint64(ts.Nano())
}

// TestUDPStampsEveryFrame sends to three destinations in turn with stamps: each frame goes to the next
// destination with its template's headers, its stamp is whole (whatever the page held), its sequence number
// counts per destination, one in three per destination asks to be reflected, and every checksum verifies.
func TestUDPStampsEveryFrame(t *testing.T) {
	for _, tc := range []struct {
		name string
		src  netip.Addr
		dsts []netip.Addr
		vlan uint16
	}{
		{"ipv4", netip.MustParseAddr("10.0.0.1"), []netip.Addr{netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("10.0.1.2"), netip.MustParseAddr("10.9.9.9")}, 0},
		{"ipv6-vlan", netip.MustParseAddr("fd00::1"), []netip.Addr{netip.MustParseAddr("fd00::2"), netip.MustParseAddr("fd00:1::2"), netip.MustParseAddr("fd00:9::9")}, 7},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const generator, sender, streamIdx, reflectEvery, extra = 0xdeadbeef, 77, 5, 3, 30
			var frames [][]byte
			for _, d := range tc.dsts {
				frames = append(frames, stampedFrame(t, tc.src, d, tc.vlan, stamp{magic: bpf.StampMagic, generator: generator, sender: sender}, extra))
			}
			udpOff := len(frames[0]) - extra - bpf.StampLen - 8
			cpu := onOneCPU(t)
			netnstest.RequirePrivileges(t)
			g, err := bpf.LoadUDP(bpf.UDPConfig{Ifindex: 1, UdpOffset: uint16(udpOff), DstPort: 9, DstPortCount: 1, SrcPort: 4000, SrcPortCount: 1,
				Stamp: 1, ReflectEvery: reflectEvery, StampGenerator: bits.ReverseBytes32(generator), StampSender: bits.ReverseBytes32(sender)}, frames)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { g.Close() })
			states := make([]bpf.WorkerState, ebpf.MustPossibleCPU())
			states[cpu].Limit, states[cpu].Stream = math.MaxUint64, streamIdx
			if err := g.Workers.Put(uint32(0), states); err != nil {
				t.Fatal(err)
			}

			in := frames[0]
			for i := range 30 {
				before := taiNow()
				ret, out := run(t, g.Send, in)
				after := taiNow()
				out = out[:len(frames[0])]
				if ret != xdpRedirect {
					t.Fatalf("frame %d: verdict %d", i, ret)
				}
				d := i % len(tc.dsts)
				want := frames[d]
				if string(out[:udpOff+6]) != string(want[:udpOff+6]) {
					t.Fatalf("frame %d: headers are not destination %d's template", i, d)
				}
				if string(out[udpOff+8+bpf.StampLen:]) != string(want[udpOff+8+bpf.StampLen:]) {
					t.Fatalf("frame %d: payload after the stamp changed", i)
				}
				got := readStamp(out[udpOff+8:])
				seq := uint32(i / len(tc.dsts))
				wantStamp := stamp{magic: bpf.StampMagic, stream: streamIdx, generator: generator, sender: sender, seq: seq, txTime: got.txTime}
				reflected := seq%reflectEvery == 0
				if reflected {
					wantStamp.flags = bpf.StampReflect
				} else {
					wantStamp.txTime = 0 // only the frames that come back carry their send time
				}
				if diff := cmp.Diff(wantStamp, got, cmp.AllowUnexported(stamp{})); diff != "" {
					t.Fatalf("frame %d: stamp (-want +got):\n%s", i, diff)
				}
				if reflected && got.txTime-uint32(before) > uint32(after-before) {
					t.Fatalf("frame %d: tx time %d not between %d and %d (low 32 bits of TAI ns)", i, got.txTime, uint32(before), uint32(after))
				}
				if !netnstest.UDPChecksumOK(tc.src, tc.dsts[d], out[udpOff:]) {
					t.Fatalf("frame %d: bad UDP checksum", i)
				}
				// Feed back the output, scrambled in its headers and stamp, as a recycled page may hold it.
				in = scrambledHeaders(out, udpOff+8+bpf.StampLen)
			}
			var got []bpf.WorkerState
			if err := g.Workers.Lookup(uint32(0), &got); err != nil {
				t.Fatal(err)
			}
			if s := got[cpu].Sent; s[0] != 10 || s[1] != 10 || s[2] != 10 || s[3] != 0 {
				t.Fatalf("sent per destination %v, want 10 each to 3", s[:4])
			}
		})
	}
}

// receiver loads the receive program (unstamped UDP to port 9 counted, counted frames dropped, the stamped
// frames of any generator taken).
func receiver(t *testing.T) *bpf.Receiver {
	t.Helper()
	netnstest.RequirePrivileges(t)
	rx, err := bpf.LoadReceiver(bpf.RxConfig{DstPortFirst: 9, DstPortLast: 9, AnyGenerator: 1}, 16)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rx.Close() })
	return rx
}

// TestReceiveAccountsStreams feeds the receive program one stream's frames in order, reordered, duplicated,
// with a gap, and across the 32-bit sequence wrap, and checks the stream's counters after each step.
func TestReceiveAccountsStreams(t *testing.T) {
	src, dst := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
	rx := receiver(t)
	onOneCPU(t) // a stream's frames arrive on one CPU, and each CPU accounts apart
	send := func(stream uint8, seqs ...uint32) {
		t.Helper()
		for _, seq := range seqs {
			frame := stampedFrame(t, src, dst, 0, stamp{magic: bpf.StampMagic, stream: stream, generator: 1, sender: 2, seq: seq}, 0)
			if ret, _ := run(t, rx.Program, frame); ret != xdpDrop {
				t.Fatalf("seq %d: verdict %d, want XDP_DROP", seq, ret)
			}
		}
	}
	read := func(stream uint8) bpf.RxStream {
		t.Helper()
		want := bpf.RxStreamKey{Generator: 1, Sender: 2, Stream: stream, DstAddr: netip.AddrFrom4(dst.As4()).As16()} // IPv4-mapped
		table, err := rx.StreamRows()
		if err != nil {
			t.Fatal(err)
		}
		var rows []bpf.RxStream
		for _, st := range table {
			if st.Key == want {
				if rows != nil {
					t.Fatalf("stream %d in two slots", stream)
				}
				rows = st.Rows
			}
		}
		if rows == nil {
			t.Fatalf("stream %d not in the table %+v", stream, table)
		}
		var v bpf.RxStream
		for cpu, row := range rows {
			if row.Packets != 0 && v.Packets != 0 {
				t.Fatalf("stream %d accounted on two CPUs (the second %d), all ran on one", stream, cpu)
			} else if row.Packets != 0 {
				v = row
			}
		}
		if got := netip.AddrFrom16(v.SrcAddr).Unmap(); got != src {
			t.Fatalf("stream %d: source %s, want %s", stream, got, src)
		}
		return v
	}
	type counts struct{ Packets, NextSeq, Reordered, Duplicates, Late uint64 }
	check := func(stream uint8, want counts) {
		t.Helper()
		v := read(stream)
		got := counts{v.Packets, v.NextSeq, v.Reordered, v.Duplicates, v.Late}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("stream %d (-want +got):\n%s", stream, diff)
		}
	}

	send(0, 0, 1, 2, 3)
	check(0, counts{Packets: 4, NextSeq: 4})
	send(0, 5, 4) // swapped
	check(0, counts{Packets: 6, NextSeq: 6, Reordered: 1})
	send(0, 5, 0) // duplicates, the highest and the first
	check(0, counts{Packets: 8, NextSeq: 6, Reordered: 1, Duplicates: 2})
	send(0, 7, 8) // 6 lost
	check(0, counts{Packets: 10, NextSeq: 9, Reordered: 1, Duplicates: 2})
	send(0, 6) // ... or only late
	check(0, counts{Packets: 11, NextSeq: 9, Reordered: 2, Duplicates: 2})
	send(0, 2000, 1000) // 1000 is too far behind to tell a duplicate (window of 15*64 = 960)
	check(0, counts{Packets: 13, NextSeq: 2001, Reordered: 3, Duplicates: 2, Late: 1})
	send(0, 1999, 1999, 1200) // inside the window again
	check(0, counts{Packets: 16, NextSeq: 2001, Reordered: 5, Duplicates: 3, Late: 1})

	// Another stream of the same sender is accounted apart.
	send(1, math.MaxUint32-2, math.MaxUint32-1, math.MaxUint32, 0, 2, 1, 1)
	check(1, counts{Packets: 7, NextSeq: 1<<32 + 3, Reordered: 1, Duplicates: 1})
	// A frame from before the wrap, after it.
	send(1, math.MaxUint32)
	check(1, counts{Packets: 8, NextSeq: 1<<32 + 3, Reordered: 1, Duplicates: 2})
	send(1, 3, 100_000)
	check(1, counts{Packets: 10, NextSeq: 1<<32 + 100_001, Reordered: 1, Duplicates: 2})

	if n := received(t, rx, bpf.RxStamped); n != 26 {
		t.Fatalf("stamped frames counted %d, want 26", n)
	}
}

// TestReceiveStreamsFull: a stream that finds the table full is counted as refused, and its frames dropped.
func TestReceiveStreamsFull(t *testing.T) {
	netnstest.RequirePrivileges(t)
	rx, err := bpf.LoadReceiver(bpf.RxConfig{DstPortFirst: 1, DstPortLast: 0, AnyGenerator: 1}, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	src, dst := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
	for stream := range uint8(3) {
		frame := stampedFrame(t, src, dst, 0, stamp{magic: bpf.StampMagic, stream: stream, generator: 1, sender: 2}, 0)
		if ret, _ := run(t, rx.Program, frame); ret != xdpDrop {
			t.Fatalf("stream %d: verdict %d", stream, ret)
		}
	}
	if n := received(t, rx, bpf.RxStreamsFull); n != 1 {
		t.Fatalf("refused %d frames, want 1", n)
	}
}

// TestReceiveReflects: a frame that asks to be reflected goes back (XDP_TX) with MACs, addresses and ports
// swapped, flagged reflected, and valid checksums; it is accounted first.
func TestReceiveReflects(t *testing.T) {
	for _, tc := range []struct {
		name     string
		src, dst netip.Addr
		vlan     uint16
	}{
		{"ipv4", netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2"), 0},
		{"ipv6", netip.MustParseAddr("fd00::1"), netip.MustParseAddr("fd00::2"), 0},
		{"ipv4-vlan", netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("198.51.100.7"), 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rx := receiver(t)
			in := stampedFrame(t, tc.src, tc.dst, tc.vlan, stamp{magic: bpf.StampMagic, flags: bpf.StampReflect, stream: 3, generator: 9,
				sender: 8, seq: 0x12345678, txTime: 0xcafef00d}, 11)
			ret, out := run(t, rx.Program, in)
			if ret != xdpTX {
				t.Fatalf("verdict %d, want XDP_TX", ret)
			}
			out = out[:len(in)]
			pkt := gopacket.NewPacket(out, layers.LayerTypeEthernet, gopacket.Default)
			eth := pkt.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
			if eth.SrcMAC.String() != dstMAC.String() || eth.DstMAC.String() != srcMAC.String() {
				t.Fatalf("MACs %s -> %s, want %s -> %s", eth.SrcMAC, eth.DstMAC, dstMAC, srcMAC)
			}
			flow := pkt.NetworkLayer().NetworkFlow()
			if flow.Src().String() != tc.dst.String() || flow.Dst().String() != tc.src.String() {
				t.Fatalf("addresses %s, want %s -> %s", flow, tc.dst, tc.src)
			}
			udp := pkt.Layer(layers.LayerTypeUDP).(*layers.UDP)
			if udp.SrcPort != 9 || udp.DstPort != 4000 {
				t.Fatalf("ports %d -> %d, want 9 -> 4000", udp.SrcPort, udp.DstPort)
			}
			got := readStamp(udp.Payload)
			want := stamp{magic: bpf.StampMagic, flags: bpf.StampReflected, stream: 3, generator: 9, sender: 8, seq: 0x12345678, txTime: 0xcafef00d}
			if diff := cmp.Diff(want, got, cmp.AllowUnexported(stamp{})); diff != "" {
				t.Fatalf("stamp (-want +got):\n%s", diff)
			}
			if !netnstest.UDPChecksumOK(tc.dst, tc.src, append(udp.Contents, udp.Payload...)) {
				t.Fatal("bad UDP checksum")
			}
			if tc.src.Is4() && !netnstest.IPv4HeaderChecksumOK(pkt.NetworkLayer().LayerContents()) {
				t.Fatal("bad IPv4 header checksum")
			}
			reflected := received(t, rx, bpf.RxReflected)
			table, err := rx.StreamRows()
			if err != nil {
				t.Fatal(err)
			}
			if reflected != 1 || len(table) != 1 {
				t.Fatalf("reflected %d frames and accounted %d streams, want 1 and 1", reflected, len(table))
			}
		})
	}
}

// TestReceiveTimesReflected: a reflected frame coming back is timed into its (generator, destination)
// histogram, in the bucket of its round-trip time, and dropped.
func TestReceiveTimesReflected(t *testing.T) {
	rx := receiver(t)
	// Coming back: the destination is the source now.
	back, here := netip.MustParseAddr("fd00::2"), netip.MustParseAddr("fd00::1")
	const rtt = 700 * time.Microsecond
	began := taiNow()
	for range 3 {
		frame := stampedFrame(t, back, here, 0, stamp{magic: bpf.StampMagic, flags: bpf.StampReflected, generator: 5,
			txTime: uint32(taiNow() - uint64(rtt))}, 0)
		if ret, _ := run(t, rx.Program, frame); ret != xdpDrop {
			t.Fatalf("verdict %d, want XDP_DROP", ret)
		}
	}
	// Each frame took between rtt and rtt plus however long building and running it took.
	slowest := rtt + time.Duration(taiNow()-began)
	var h bpf.LatencyHist
	if err := rx.Latency.Lookup(&bpf.LatencyKey{Generator: 5, Addr: back.As16()}, &h); err != nil {
		t.Fatal(err)
	}
	if h.Count != 3 || h.MaxNs < uint64(rtt) || h.MaxNs > uint64(slowest) || h.SumNs < 3*uint64(rtt) {
		t.Fatalf("count %d max %d ns sum %d ns, want 3 samples of %s to %s", h.Count, h.MaxNs, h.SumNs, rtt, slowest)
	}
	// 700 us = 700000 ns: 2^19 <= v < 2^20, sub-bucket (700000 >> 15) & 15 = 5: bucket (19-3)*16 + 5 = 261.
	lo, hi := latencyBucket(uint64(rtt)), latencyBucket(uint64(slowest))
	if lo != 261 {
		t.Fatalf("the test's bucket of %s is %d, want 261", rtt, lo)
	}
	for b, n := range h.Buckets {
		if n > 0 && (b < lo || b > hi) {
			t.Fatalf("%d samples in bucket %d, want them in buckets %d (%s) to %d (%s)", n, b, lo, rtt, hi, slowest)
		}
	}
	if table, err := rx.StreamRows(); err != nil || len(table) != 0 {
		t.Fatalf("streams %+v (%v): a reflected frame was accounted as a stream", table, err)
	}
}

// TestReceiveOtherFrames: what is not a whole stamp is not accounted: unstamped UDP to the counted port is
// matched, a wrong magic or unknown flags or a truncated stamp are unstamped frames, non-UDP passes.
func TestReceiveOtherFrames(t *testing.T) {
	rx := receiver(t)
	src, dst := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
	good := stamp{magic: bpf.StampMagic, generator: 1, sender: 1}
	badMagic, badFlags := good, good
	badMagic.magic++
	badFlags.flags = 0x80
	truncated := stampedFrame(t, src, dst, 0, good, 0)
	truncated = truncated[:len(truncated)-1]
	for _, tc := range []struct {
		name  string
		frame []byte
		want  uint32
	}{
		{"unstamped to port 9", udpFrame(t, src, dst, 1, 9, 0, 30), xdpDrop},
		{"unstamped to port 10", udpFrame(t, src, dst, 1, 10, 0, 30), xdpPass},
		{"wrong magic", stampedFrame(t, src, dst, 0, badMagic, 0), xdpDrop},
		{"unknown flags", stampedFrame(t, src, dst, 0, badFlags, 0), xdpDrop},
		{"truncated stamp", truncated, xdpDrop},
		{"arp", make([]byte, 60), xdpPass},
	} {
		if ret, _ := run(t, rx.Program, tc.frame); ret != tc.want {
			t.Errorf("%s: verdict %d, want %d", tc.name, ret, tc.want)
		}
	}
	if table, err := rx.StreamRows(); err != nil || len(table) != 0 {
		t.Fatalf("streams %+v (%v) accounted from frames without a whole stamp", table, err)
	}
	matched, other := received(t, rx, bpf.RxMatched), received(t, rx, bpf.RxOther)
	if matched != 4 || other != 2 {
		t.Fatalf("matched %d other %d, want 4 and 2", matched, other)
	}
}

// latencyBucket is the receive program's bucket of v ns, computed here independently: 16 buckets per power of two.
func latencyBucket(v uint64) int {
	if v < 16 {
		return int(v)
	}
	e := bits.Len64(v) - 1
	return (e-3)*16 + int(v>>(e-4))&15
}

// TestReceiveServesRegisteredGenerators: a receive program that serves registered generators only passes the
// stamped frames of others to the stack untouched, as any frame, and takes a generator's once it is registered.
func TestReceiveServesRegisteredGenerators(t *testing.T) {
	netnstest.RequirePrivileges(t)
	rx, err := bpf.LoadReceiver(bpf.RxConfig{DstPortFirst: 1, DstPortLast: 0}, 16)
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	src, dst := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
	for _, flags := range []uint8{0, bpf.StampReflect, bpf.StampReflected} {
		frame := stampedFrame(t, src, dst, 0, stamp{magic: bpf.StampMagic, flags: flags, generator: 7, sender: 2}, 0)
		if ret, out := run(t, rx.Program, frame); ret != xdpPass || !bytes.Equal(out[:len(frame)], frame) {
			t.Fatalf("a stamped frame (flags %#x) of a generator not served: verdict %d, changed %v; want it passed untouched", flags, ret, !bytes.Equal(out[:len(frame)], frame))
		}
	}
	if n := received(t, rx, bpf.RxOther); n != 3 {
		t.Fatalf("frames of a generator not served counted as other: %d, want 3", n)
	}
	if err := rx.Generators.Update(uint32(7), uint8(1), ebpf.UpdateAny); err != nil {
		t.Fatal(err)
	}
	frame := stampedFrame(t, src, dst, 0, stamp{magic: bpf.StampMagic, generator: 7, sender: 2}, 0)
	if ret, _ := run(t, rx.Program, frame); ret != xdpDrop {
		t.Fatalf("a stamped frame of a served generator: verdict %d, want it accounted and dropped", ret)
	}
	if n := received(t, rx, bpf.RxStamped); n != 1 {
		t.Fatalf("stamped frames accounted %d, want 1", n)
	}
}

// TestReceiveStreamTable fills a table for 48 streams with the streams of two generators: each stream is
// accounted in a slot of its own, found again by its later frames; forgetting one generator zeroes its streams
// and leaves its slots and its share of the 48 to new streams, while the other generator's streams (those behind
// forgotten slots on their probe paths included) are still found, not claimed twice.
func TestReceiveStreamTable(t *testing.T) {
	netnstest.RequirePrivileges(t)
	rx, err := bpf.LoadReceiver(bpf.RxConfig{DstPortFirst: 1, DstPortLast: 0, AnyGenerator: 1}, 48)
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	onOneCPU(t)
	src, dst := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
	send := func(generator uint32, stream uint8, seq uint32) {
		t.Helper()
		frame := stampedFrame(t, src, dst, 0, stamp{magic: bpf.StampMagic, stream: stream, generator: generator, sender: 2, seq: seq}, 0)
		if ret, _ := run(t, rx.Program, frame); ret != xdpDrop {
			t.Fatalf("generator %d stream %d: verdict %d", generator, stream, ret)
		}
	}
	packets := func() map[[2]uint32]uint64 {
		t.Helper()
		table, err := rx.StreamRows()
		if err != nil {
			t.Fatal(err)
		}
		got := map[[2]uint32]uint64{}
		for _, st := range table {
			k := [2]uint32{st.Key.Generator, uint32(st.Key.Stream)}
			if _, twice := got[k]; twice {
				t.Fatalf("generator %d stream %d in two slots", k[0], k[1])
			}
			for _, row := range st.Rows {
				got[k] += row.Packets
			}
		}
		return got
	}
	for seq := range uint32(2) {
		for stream := range uint8(24) {
			send(1, stream, seq)
			send(2, stream, seq)
		}
	}
	got := packets()
	if len(got) != 48 {
		t.Fatalf("%d streams in the table, want 48", len(got))
	}
	for k, n := range got {
		if n != 2 {
			t.Fatalf("generator %d stream %d: %d packets, want 2", k[0], k[1], n)
		}
	}
	if err := rx.ForgetStreams(1); err != nil {
		t.Fatal(err)
	}
	for stream := range uint8(24) {
		send(2, stream, 2)
		send(3, stream, 0)
	}
	got = packets()
	if len(got) != 48 {
		t.Fatalf("%d streams in the table after forgetting 24 and adding 24, want 48", len(got))
	}
	for k, n := range got {
		if want := map[uint32]uint64{2: 3, 3: 1}[k[0]]; n != want {
			t.Fatalf("generator %d stream %d: %d packets, want %d", k[0], k[1], n, want)
		}
	}
	if n := received(t, rx, bpf.RxStreamsFull); n != 0 {
		t.Fatalf("%d frames refused for a full table, want none", n)
	}
}

// TestReceiveForgetsRecentStream: a CPU remembers the slots of the streams it accounted lately, and forgetting a
// stream's generator makes it forget that too: a late frame of the generator, no longer served, is not ours
// (it passes as other), instead of counting in a slot that a new stream may have taken.
func TestReceiveForgetsRecentStream(t *testing.T) {
	netnstest.RequirePrivileges(t)
	rx, err := bpf.LoadReceiver(bpf.RxConfig{DstPortFirst: 1, DstPortLast: 0}, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	onOneCPU(t)
	src, dst := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
	send := func(generator, seq uint32, want uint32) {
		t.Helper()
		frame := stampedFrame(t, src, dst, 0, stamp{magic: bpf.StampMagic, generator: generator, sender: 2, seq: seq}, 0)
		if ret, _ := run(t, rx.Program, frame); ret != want {
			t.Fatalf("generator %d seq %d: verdict %d, want %d", generator, seq, ret, want)
		}
	}
	for _, g := range []uint32{1, 2} {
		if err := rx.Generators.Update(g, uint8(1), ebpf.UpdateAny); err != nil {
			t.Fatal(err)
		}
	}
	send(1, 0, xdpDrop)
	send(1, 1, xdpDrop)
	if err := rx.Generators.Delete(uint32(1)); err != nil {
		t.Fatal(err)
	}
	if err := rx.ForgetStreams(1); err != nil {
		t.Fatal(err)
	}
	send(1, 2, xdpPass)
	send(2, 0, xdpDrop)
	if stamped, other := received(t, rx, bpf.RxStamped), received(t, rx, bpf.RxOther); stamped != 3 || other != 1 {
		t.Fatalf("stamped %d other %d, want 3 and 1", stamped, other)
	}
	table, err := rx.StreamRows()
	if err != nil {
		t.Fatal(err)
	}
	if len(table) != 1 || table[0].Key.Generator != 2 {
		t.Fatalf("streams %+v, want generator 2's only", table)
	}
	var packets uint64
	for _, row := range table[0].Rows {
		packets += row.Packets
	}
	if packets != 1 {
		t.Fatalf("generator 2's stream: %d packets, want 1", packets)
	}
}

// TestReceiveInterleavedStreams: two streams that differ in one part of their key only, their frames
// alternating on one CPU, are two streams each in order: a stream a CPU remembers is told from another by every
// part of the key.
func TestReceiveInterleavedStreams(t *testing.T) {
	netnstest.RequirePrivileges(t)
	v4src, v6src := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("fd00::1")
	base := stamp{magic: bpf.StampMagic, stream: 1, generator: 1, sender: 2}
	for _, tc := range []struct {
		name string
		src  netip.Addr
		dst  [2]netip.Addr
		a, b stamp
	}{
		{"stream", v4src, [2]netip.Addr{netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("10.0.0.2")}, base,
			stamp{magic: bpf.StampMagic, stream: 2, generator: 1, sender: 2}},
		{"generator", v4src, [2]netip.Addr{netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("10.0.0.2")}, base,
			stamp{magic: bpf.StampMagic, stream: 1, generator: 3, sender: 2}},
		{"sender", v4src, [2]netip.Addr{netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("10.0.0.2")}, base,
			stamp{magic: bpf.StampMagic, stream: 1, generator: 1, sender: 4}},
		{"IPv4 destination", v4src, [2]netip.Addr{netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("10.0.0.3")}, base, base},
		{"IPv6 destination, first word", v6src, [2]netip.Addr{netip.MustParseAddr("fd00::2"), netip.MustParseAddr("fd01::2")}, base, base},
		{"IPv6 destination, second word", v6src, [2]netip.Addr{netip.MustParseAddr("fd00::2"), netip.MustParseAddr("fd00:0:0:1::2")}, base, base},
		{"IPv6 destination, third word", v6src, [2]netip.Addr{netip.MustParseAddr("fd00::2"), netip.MustParseAddr("fd00::1:0:0:2")}, base, base},
		{"IPv6 destination, last word", v6src, [2]netip.Addr{netip.MustParseAddr("fd00::2"), netip.MustParseAddr("fd00::3")}, base, base},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rx, err := bpf.LoadReceiver(bpf.RxConfig{DstPortFirst: 1, DstPortLast: 0, AnyGenerator: 1}, 16)
			if err != nil {
				t.Fatal(err)
			}
			defer rx.Close()
			onOneCPU(t)
			for seq := range uint32(4) {
				for i, s := range []stamp{tc.a, tc.b} {
					s.seq = seq
					if ret, _ := run(t, rx.Program, stampedFrame(t, tc.src, tc.dst[i], 0, s, 0)); ret != xdpDrop {
						t.Fatalf("frame %d of stream %d: verdict %d", seq, i, ret)
					}
				}
			}
			table, err := rx.StreamRows()
			if err != nil {
				t.Fatal(err)
			}
			if len(table) != 2 {
				t.Fatalf("%d streams, want 2: %+v", len(table), table)
			}
			for _, st := range table {
				var got bpf.RxStream
				for _, row := range st.Rows {
					got.Packets += row.Packets
					got.NextSeq = max(got.NextSeq, row.NextSeq)
					got.Reordered += row.Reordered
					got.Duplicates += row.Duplicates
				}
				if got.Packets != 4 || got.NextSeq != 4 || got.Reordered != 0 || got.Duplicates != 0 {
					t.Errorf("stream %+v: packets %d, next %d, reordered %d, duplicates %d; want 4 in order",
						st.Key, got.Packets, got.NextSeq, got.Reordered, got.Duplicates)
				}
			}
		})
	}
}
