package dataplane

import (
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

	"github.com/xdpgen/xdpgen/test/netnstest"
)

func TestParseAddrRange(t *testing.T) {
	a := netip.MustParseAddr
	for _, tc := range []struct {
		in   string
		want AddrRange
	}{
		{"192.0.2.0/24", AddrRange{First: a("192.0.2.1"), Last: a("192.0.2.254")}},
		{"192.0.2.8/31", AddrRange{First: a("192.0.2.8"), Last: a("192.0.2.9")}},
		{"192.0.2.7/32", AddrRange{First: a("192.0.2.7"), Last: a("192.0.2.7")}},
		{"192.0.2.10-192.0.2.20", AddrRange{First: a("192.0.2.10"), Last: a("192.0.2.20")}},
		{"2001:db8::/120", AddrRange{First: a("2001:db8::"), Last: a("2001:db8::ff")}},
		{"2001:db8::1 - 2001:db8::1:0", AddrRange{First: a("2001:db8::1"), Last: a("2001:db8::1:0")}},
		{"10.0.0.1", AddrRange{First: a("10.0.0.1"), Last: a("10.0.0.1")}},
	} {
		got, err := ParseAddrRange(FieldDstRange, tc.in)
		if err != nil {
			t.Fatalf("%s: %v", tc.in, err)
		}
		if diff := cmp.Diff(tc.want, got, cmp.Comparer(func(x, y netip.Addr) bool { return x == y })); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.in, diff)
		}
	}
	if _, err := ParseAddrRange(FieldDstRange, "10.0.0.1-x"); err == nil || !strings.Contains(err.Error(), "dst-range 10.0.0.1-x: not an address range: give a prefix") {
		t.Fatalf("bad range: %v", err)
	}
}

func TestAddrRangeValidation(t *testing.T) {
	r := func(s string) *AddrRange {
		x, err := ParseAddrRange(FieldDstRange, s)
		if err != nil {
			t.Fatal(err)
		}
		return &x
	}
	dst := netip.MustParseAddr("192.0.2.1")
	for _, tc := range []struct {
		name string
		cfg  UDPConfig
		want string
	}{
		{"both", UDPConfig{DstAddr: dst, DstRange: r("192.0.2.0/24")}, "dst-range 192.0.2.1-192.0.2.254: give a destination address or a range of them, not both"},
		{"stamped", UDPConfig{DstRange: r("192.0.2.0/24"), Stamp: &Stamp{}}, "stamped frames are accounted per destination address"},
		{"inverted", UDPConfig{DstRange: r("192.0.2.9-192.0.2.1")}, "ends below its start"},
		{"mixed", UDPConfig{DstRange: r("192.0.2.9-2001:db8::1")}, "mixes IPv4 and IPv6"},
		{"wide v6", UDPConfig{DstRange: r("2001:db8::/64")}, "an IPv6 range varies the last 32 bits only: keep it within one /96 (such as 2001:db8::/96)"},
		{"src family", UDPConfig{DstAddr: dst, SrcRange: r("2001:db8::/120")}, "src-range 2001:db8::-2001:db8::ff: is IPv6 but 192.0.2.1 is IPv4"},
		{"src both", UDPConfig{DstAddr: dst, SrcAddr: dst, SrcRange: r("192.0.2.0/24")}, "give a source address or a range of them, not both"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.cfg.validated()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
	if n := (UDPConfig{DstRange: r("192.0.2.0/24"), SrcRange: r("192.0.2.10-192.0.2.13"), DstPortCount: 10}).Flows(); n != 254*4*10 {
		t.Fatalf("Flows() = %d, want %d", n, 254*4*10)
	}
}

// datagramSource reads datagrams with the address each was sent to.
type datagramSource func(b []byte) (n int, src, dst netip.Addr, err error)

func readWithDst(t *testing.T, conn *net.UDPConn, v6 bool) datagramSource {
	t.Helper()
	// ipv4 and ipv6 have a PacketConn each, with a ControlMessage each.
	var readFrom func(b []byte) (n int, dst net.IP, from net.Addr, err error)
	var err error
	if v6 {
		pc := ipv6.NewPacketConn(conn)
		err = pc.SetControlMessage(ipv6.FlagDst, true)
		readFrom = func(b []byte) (int, net.IP, net.Addr, error) {
			n, cm, from, err := pc.ReadFrom(b)
			if err != nil {
				return 0, nil, nil, err
			}
			return n, cm.Dst, from, nil
		}
	} else {
		pc := ipv4.NewPacketConn(conn)
		err = pc.SetControlMessage(ipv4.FlagDst, true)
		readFrom = func(b []byte) (int, net.IP, net.Addr, error) {
			n, cm, from, err := pc.ReadFrom(b)
			if err != nil {
				return 0, nil, nil, err
			}
			return n, cm.Dst, from, nil
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	return func(b []byte) (int, netip.Addr, netip.Addr, error) {
		n, dst, from, err := readFrom(b)
		if err != nil {
			return 0, netip.Addr{}, netip.Addr{}, err
		}
		d, _ := netip.AddrFromSlice(dst)
		return n, from.(*net.UDPAddr).AddrPort().Addr().Unmap(), d.Unmap(), nil
	}
}

// TestAddressRangesArrive sends source and destination address ranges to a real socket that receives for every
// address of the destination range (a local route): the kernel validated each frame's IP and UDP checksums, and
// in turn every (source, destination) pair arrives equally often; at random (with random sizes too, whose
// checksum changes add to the addresses') every address arrives.
func TestAddressRangesArrive(t *testing.T) {
	for _, tc := range []struct {
		name           string
		v6, random     bool
		dstNet, srcNet string
	}{
		{"ipv4 in turn", false, false, "10.200.0.96/28", "10.200.0.50-10.200.0.57"},
		{"ipv6 in turn", true, false, "fd00:200::100/124", "fd00:200::50-fd00:200::57"},
		{"ipv4 random with random sizes", false, true, "10.200.0.96/28", "10.200.0.50-10.200.0.57"},
		{"ipv6 random with random sizes", true, true, "fd00:200::100/124", "fd00:200::50-fd00:200::57"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const dport, rounds = 7777, 5
			r := newRig(t, netnstest.Options{}, dport, dport, true)
			dstRange, err := ParseAddrRange(FieldDstRange, tc.dstNet)
			if err != nil {
				t.Fatal(err)
			}
			srcRange, err := ParseAddrRange(FieldSrcRange, tc.srcNet)
			if err != nil {
				t.Fatal(err)
			}
			dstRange.Random, srcRange.Random = tc.random, tc.random
			prefix := netip.MustParsePrefix(strings.Split(tc.dstNet, "-")[0])
			r.Remote.Exec(t, "ip", "route", "add", "local", prefix.String(), "dev", "lo")
			wildcard := netip.IPv4Unspecified()
			if tc.v6 {
				wildcard = netip.IPv6Unspecified()
			}
			conn := netnstest.ListenUDP(t, r.Remote.NS, wildcard, dport, "")
			read := readWithDst(t, conn, tc.v6)
			before := netnstest.ReadUDPStats(t, r.Remote.NS)

			cfg := UDPConfig{Interface: r.Local.Interface, DstMAC: r.Remote.MAC, DstRange: &dstRange, SrcRange: &srcRange,
				DstPort: dport, RatePPS: 20000}
			flows := dstRange.Count() * srcRange.Count()
			cfg.Packets = rounds * flows
			if tc.random {
				cfg.Sizes = &FrameSizes{Min: 100, Max: 1400, Random: true}
			}
			g := r.generator(t, cfg)
			if want := fmt.Sprintf("%d flow(s)", flows); !strings.Contains(g.Flow(), want) {
				t.Fatalf("flow %q does not say %q", g.Flow(), want)
			}
			done := make(chan error, 1)
			go func() { done <- g.Run(t.Context()) }()

			type pair struct{ src, dst netip.Addr }
			got := map[pair]uint64{}
			buf := make([]byte, 4096)
			for i := range cfg.Packets {
				_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
				_, src, dst, err := read(buf)
				if err != nil {
					t.Fatalf("datagram %d of %d: %v (udp stats %+v)", i+1, cfg.Packets, err, netnstest.ReadUDPStats(t, r.Remote.NS))
				}
				got[pair{src, dst}]++
			}
			if err := <-done; err != nil {
				t.Fatalf("Run: %v", err)
			}
			after := netnstest.ReadUDPStats(t, r.Remote.NS)
			if after.InCsumErrors != before.InCsumErrors || after.InErrors != before.InErrors {
				t.Fatalf("udp errors: before %+v after %+v", before, after)
			}
			srcs, dsts := map[netip.Addr]bool{}, map[netip.Addr]bool{}
			for p, n := range got {
				inRange := func(a netip.Addr, r AddrRange) bool { return !a.Less(r.First) && !r.Last.Less(a) }
				if !inRange(p.src, srcRange) || !inRange(p.dst, dstRange) {
					t.Fatalf("%d datagrams %s -> %s, outside %s -> %s", n, p.src, p.dst, srcRange, dstRange)
				}
				if !tc.random && n != rounds {
					t.Errorf("%d datagrams %s -> %s, want %d", n, p.src, p.dst, rounds)
				}
				srcs[p.src], dsts[p.dst] = true, true
			}
			if uint64(len(srcs)) != srcRange.Count() || uint64(len(dsts)) != dstRange.Count() {
				t.Fatalf("%d sources and %d destinations arrived, want all %d and %d", len(srcs), len(dsts), srcRange.Count(), dstRange.Count())
			}
			t.Logf("%d distinct flows of %d arrived", len(got), flows)
		})
	}
}

var rxQueuePackets = regexp.MustCompile(`rx_queue_(\d+)_xdp_packets: (\d+)`)

// rxQueuePackets reads the frames each RX queue of the host's veth received, from the kernel's own counters.
func rxQueueCounts(t *testing.T, h netnstest.Host) map[int]uint64 {
	t.Helper()
	netnstest.RequireCommand(t, "ethtool")
	counts := map[int]uint64{}
	for _, m := range rxQueuePackets.FindAllStringSubmatch(h.Exec(t, "ethtool", "-S", h.Interface), -1) {
		q, _ := strconv.Atoi(m[1])
		counts[q], _ = strconv.ParseUint(m[2], 10, 64)
	}
	return counts
}

// TestAddressRangesSpreadOverRXQueues sends through a router to a receiver whose veth has four RX queues. The
// router's stack picks the transmit queue, and so the receiver's RX queue, by the flow's hash, as a NIC's RSS
// does: one flow lands on one queue, a range of source addresses on all four. (A veth fed by XDP redirect picks
// the queue by the sending CPU instead, which says nothing about flows.)
func TestAddressRangesSpreadOverRXQueues(t *testing.T) {
	const queues, count, dport = 4, 2000, 7777
	for _, tc := range []struct {
		name       string
		srcRange   string
		wantQueues int
	}{
		{"one flow", "", 1},
		{"64 sources", "10.201.0.100-10.201.0.163", queues},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := countOn(t, routedEnds(t, netnstest.Options{Queues: queues}), dport, dport, false)
			cfg := UDPConfig{DstAddr: r.Remote.IPv4, DstPort: dport, Packets: count, RatePPS: 50_000}
			if tc.srcRange != "" {
				sr, err := ParseAddrRange(FieldSrcRange, tc.srcRange)
				if err != nil {
					t.Fatal(err)
				}
				cfg.SrcRange = &sr
			}
			run(t, r.generator(t, cfg))
			if got := r.receivedAll(t, count).Packets; got != count {
				t.Fatalf("the receiver got %d of %d frames", got, count)
			}
			perQueue := rxQueueCounts(t, r.Remote)
			busy := 0
			for _, n := range perQueue {
				if n > 0 {
					busy++
				}
			}
			if len(perQueue) != queues || busy != tc.wantQueues {
				t.Fatalf("frames per RX queue %v: want %d of %d queues busy", perQueue, tc.wantQueues, queues)
			}
			t.Logf("frames per RX queue: %v", perQueue)
		})
	}
}
