package dataplane

import (
	"bytes"
	"math"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/xdpgen/xdpgen/test/netnstest"
)

func TestMixSlotsInterleave(t *testing.T) {
	got := FrameSizes{Mix: []WeightedSize{{60, 7}, {566, 4}, {1514, 1}}}.mixSlots()
	// Every size its weight's times per cycle, and the heaviest never more than twice in a row.
	want := []uint16{60, 566, 60, 60, 566, 60, 1514, 60, 566, 60, 566, 60}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("slots (-want +got):\n%s", diff)
	}
}

func TestSizeBuckets(t *testing.T) {
	for _, tc := range []struct {
		name  string
		sizes FrameSizes
		want  []SizeCount
	}{
		{"mix sorted", FrameSizes{Mix: []WeightedSize{{1514, 1}, {60, 7}}}, []SizeCount{{Min: 60, Max: 60}, {Min: 1514, Max: 1514}}},
		{"small range", FrameSizes{Min: 100, Max: 102}, []SizeCount{{Min: 100, Max: 100}, {Min: 101, Max: 101}, {Min: 102, Max: 102}}},
		{"range in 16", FrameSizes{Min: 64, Max: 223}, func() []SizeCount {
			var b []SizeCount
			for lo := 64; lo <= 223; lo += 10 {
				b = append(b, SizeCount{Min: lo, Max: lo + 9})
			}
			return b
		}()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, tc.sizes.buckets()); diff != "" {
				t.Fatalf("buckets (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSizesValidation(t *testing.T) {
	dst := netip.MustParseAddr("192.0.2.1")
	for _, tc := range []struct {
		name string
		cfg  UDPConfig
		want string
	}{
		{"both", UDPConfig{DstAddr: dst, FrameSize: 100, Sizes: &FrameSizes{Min: 64, Max: 100}}, "sizes 64-100 stepped: give one frame size or sizes that vary, not both"},
		{"inverted", UDPConfig{DstAddr: dst, Sizes: &FrameSizes{Min: 200, Max: 100}}, "sizes 200-100: the range ends below its start"},
		{"too small stamped v6", UDPConfig{DstAddr: netip.MustParseAddr("2001:db8::1"), Stamp: &Stamp{}, Sizes: &FrameSizes{Mix: SizeProfiles["imix-simple"]}},
			"sizes 60: below the smallest stamped IPv6 frame: use sizes of at least 82 bytes"},
		{"too large", UDPConfig{DstAddr: dst, Sizes: &FrameSizes{Min: 64, Max: 9000}}, "sizes 9000: live frames hold at most 3520 bytes"},
		{"twice", UDPConfig{DstAddr: dst, Sizes: &FrameSizes{Mix: []WeightedSize{{64, 1}, {64, 2}}}}, "sizes 64: given twice"},
		{"weight", UDPConfig{DstAddr: dst, Sizes: &FrameSizes{Mix: []WeightedSize{{64, 0}}}}, "sizes 64:0: weights are whole numbers from 1"},
		{"heavy", UDPConfig{DstAddr: dst, Sizes: &FrameSizes{Mix: []WeightedSize{{64, 1000}, {128, 100}}}}, "the weights add up to 1100: scale them down to at most 1024"},
		{"random mix", UDPConfig{DstAddr: dst, Sizes: &FrameSizes{Random: true, Mix: []WeightedSize{{64, 1}}}}, "random order applies to a range of sizes"},
		{"rate below mean", UDPConfig{DstAddr: dst, RateBPS: 1000, Sizes: &FrameSizes{Min: 100, Max: 200}}, "rate 1000 bit/s: below one 150-byte frame per second: use at least 1200 bit/s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.cfg.validated()
			if err == nil || !bytes.Contains([]byte(err.Error()), []byte(tc.want)) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
	if _, err := SizeProfile(FieldSizes, "imix-nope"); err == nil || err.Error() != "sizes imix-nope: not a size profile: use one of imix-simple, or give the sizes and their weights" {
		t.Fatalf("unknown profile: %v", err)
	}
}

// receiveSizes reads n datagrams from conn and counts them by frame size (payload plus headers), checking that
// each payload is the template's pattern cut to its length, after its first skip bytes (a stamp's).
func receiveSizes(t *testing.T, conn interface {
	SetReadDeadline(time.Time) error
	Read([]byte) (int, error)
}, n int, hdr int, pattern []byte, skip int) map[int]uint64 {
	t.Helper()
	got := map[int]uint64{}
	buf := make([]byte, 4096)
	for i := range n {
		_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
		m, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("datagram %d of %d: %v (received so far by size: %v)", i+1, n, err, got)
		}
		if !bytes.Equal(buf[skip:m], pattern[skip:m]) {
			t.Fatalf("datagram %d: %d payload bytes that are not the template's", i, m)
		}
		got[m+hdr]++
	}
	return got
}

// TestIMIXArrives sends the simple IMIX through a real socket in the peer namespace: the kernel has validated
// the IP and UDP lengths and checksums of every frame, the received histogram matches the weights within 2%
// (exactly, in fact: a mix is sent in cycles) and the sender's reported buckets exactly.
func TestIMIXArrives(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		t.Run(map[bool]string{false: "ipv4", true: "ipv6"}[v6], func(t *testing.T) {
			const cycles, dport = 100, 7777
			r := newRig(t, netnstest.Options{}, dport, dport, true)
			dst := r.Remote.IPv4
			if v6 {
				dst = r.Remote.IPv6
			}
			conn := netnstest.ListenUDP(t, r.Remote.NS, dst, dport, r.Remote.Interface)
			before := netnstest.ReadUDPStats(t, r.Remote.NS)
			mix := SizeProfiles["imix-simple"]
			if v6 {
				// 60 bytes cannot hold IPv6 and UDP headers (62).
				mix = []WeightedSize{{62, 7}, {566, 4}, {1514, 1}}
			}
			g := r.generator(t, UDPConfig{DstAddr: dst, DstPort: dport, Sizes: &FrameSizes{Mix: mix}, Packets: 12 * cycles})
			s := run(t, g)

			want := map[int]uint64{mix[0].Size: 7 * cycles, 566: 4 * cycles, 1514: cycles}
			got := receiveSizes(t, conn, 12*cycles, headerLen(v6, 0), payload(MaxLiveFrameSize), 0)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("frames received by size (-want +got):\n%s", diff)
			}
			// The achieved mix, as the sender reports it, is what arrived, bucket by bucket.
			reported := map[int]uint64{}
			for _, b := range s.Sizes {
				reported[b.Min] = b.Packets
			}
			if diff := cmp.Diff(got, reported); diff != "" {
				t.Fatalf("received (-) against the sender's reported buckets (+):\n%s", diff)
			}
			for _, w := range mix {
				share, want := float64(got[w.Size])/(12*cycles), float64(w.Weight)/12
				if math.Abs(share-want) > 0.02*want {
					t.Errorf("%d-byte frames are %.4f of those received, want %.4f within 2%%", w.Size, share, want)
				}
			}
			if sent, want := s.Actions[ActionRedirect].Bytes, uint64(cycles*(7*mix[0].Size+4*566+1514)); sent != want {
				t.Fatalf("engine counted %d bytes, want %d", sent, want)
			}
			after := netnstest.ReadUDPStats(t, r.Remote.NS)
			if after.InCsumErrors != before.InCsumErrors || after.InErrors != before.InErrors {
				t.Fatalf("udp errors: before %+v after %+v", before, after)
			}
		})
	}
}

// TestRandomSizesArrive sends a random range of sizes with stamps, from a range of source addresses, counted by a
// stamped-frame receiver and a socket: every size stays in the range, each bucket holds its share within five standard deviations, and
// the receiver finds every stamp intact (no loss, no duplicate).
func TestRandomSizesArrive(t *testing.T) {
	// Few enough frames for the socket buffer to hold them all, should the reader fall behind.
	const n, dport = 1600, 7777
	r := newRig(t, netnstest.Options{}, dport, dport, true)
	conn := netnstest.ListenUDP(t, r.Remote.NS, r.Remote.IPv4, dport, r.Remote.Interface)
	before := netnstest.ReadUDPStats(t, r.Remote.NS)
	sizes := &FrameSizes{Min: 64, Max: 1023, Random: true}
	stamp := &Stamp{Generator: 7, Sender: 9}
	// From a range of sources too: a receiver accounts stamps whatever their source.
	sources := &AddrRange{First: netip.MustParseAddr("10.200.0.50"), Last: netip.MustParseAddr("10.200.0.57")}
	g := r.generator(t, UDPConfig{DstAddr: r.Remote.IPv4, SrcRange: sources, DstPort: dport, Sizes: sizes, Stamp: stamp, Packets: n, RatePPS: 20000})
	// Read while it runs, at a rate the reader keeps up with: the socket's buffer holds fewer frames than are sent.
	done := make(chan error, 1)
	go func() { done <- g.Run(t.Context()) }()

	// The stamp is the start of the payload: it differs from the pattern, the rest must not.
	got := receiveSizes(t, conn, n, headerLen(false, 0), payload(MaxLiveFrameSize), StampLen)
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	s, err := g.Stats()
	if err != nil {
		t.Fatal(err)
	}
	buckets := sizes.buckets()
	counts := make([]uint64, len(buckets))
	for size, c := range got {
		if size < sizes.Min || size > sizes.Max {
			t.Fatalf("%d frames of %d bytes, outside %s", c, size, sizes)
		}
		for i, b := range buckets {
			if size >= b.Min && size <= b.Max {
				counts[i] += c
			}
		}
	}
	for i, b := range buckets {
		if counts[i] != s.Sizes[i].Packets {
			t.Errorf("bucket %s: received %d, the engine counted %d", b, counts[i], s.Sizes[i].Packets)
		}
		p := float64(b.Max-b.Min+1) / float64(sizes.Max-sizes.Min+1)
		mean, sd := n*p, math.Sqrt(n*p*(1-p))
		if math.Abs(float64(counts[i])-mean) > 5*sd {
			t.Errorf("bucket %s: %d frames, want %.0f ± %.0f", b, counts[i], mean, 5*sd)
		}
	}
	after := netnstest.ReadUDPStats(t, r.Remote.NS)
	if after.InCsumErrors != before.InCsumErrors || after.InErrors != before.InErrors {
		t.Fatalf("udp errors: before %+v after %+v", before, after)
	}
	path := settledPaths(t, stamp.Generator, stamp.Sender, s, r.rx)[r.Remote.IPv4]
	if path.Received != n || path.Lost != 0 || path.Duplicates != 0 {
		t.Fatalf("receiver accounted %+v, want %d frames without duplicates", path, n)
	}
}
