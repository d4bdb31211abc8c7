package dataplane

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/xdpgen/xdpgen/bpf/bpftest"
	"github.com/xdpgen/xdpgen/test/netnstest"
)

// Benchmarks are harnesses: each runs its variants in interleaved rounds on one veth pair (this machine's speed
// drifts, so only ratios measured side by side mean anything) and reports Mpps received by the peer's XDP
// counter, plus the ratios. Run them with `make bench`; b.N is ignored.

const (
	benchRounds = 16
	// targetBenchRounds: for the benchmarks whose ratios are checked against a target a few percent away
	// (stamping and the receiver, issue 11); 16 rounds tell two variants apart to about ±10% here, 40 to ±3%.
	targetBenchRounds = 40
	benchPeriod       = 500 * time.Millisecond
)

type benchVariant struct {
	name string
	cfg  func(r *rig) UDPConfig
	// noTouch runs the no-touch bpf_redirect ceiling instead of the generator.
	noTouch bool
	// peer, when set, attaches what counts this variant's frames on the peer for each of its runs (the rig
	// has no receiver then); nil: the rig's receiver counts.
	peer func(b *testing.B, r *rig) peerCounter
	// replay, when set, runs a capture replay instead of cfg.
	replay func(r *rig) ReplayConfig
}

// benchGenerator is a UDP or replay generator as a benchmark drives it.
type benchGenerator interface {
	Run(context.Context) error
	Stats() (Stats, error)
	Close() error
}

// start makes v's generator on r, and returns it with what releases it.
func (v benchVariant) start(b *testing.B, r *rig) (benchGenerator, func()) {
	b.Helper()
	if v.replay != nil {
		g, err := r.tryReplayGenerator(v.replay(r))
		if err != nil {
			b.Fatal(err)
		}
		return g, func() { g.Close() }
	}
	g, err := r.tryGenerator(v.cfg(r))
	if err != nil {
		b.Fatal(err)
	}
	if !v.noTouch {
		return g, func() { g.Close() }
	}
	if g.program, err = bpftest.LoadRedirectNoTouch(uint32(g.target.Ifindex), g.objs.Workers); err != nil {
		b.Fatal(err)
	}
	return g, func() {
		g.Close()
		g.program.Close()
	}
}

// peerCounter counts the frames the peer received.
type peerCounter interface {
	packets(b *testing.B) uint64
	Close() error
}

func (r *Receiver) packets(b *testing.B) uint64 {
	c, err := r.Counts()
	if err != nil {
		b.Fatal(err)
	}
	return c.Matched.Packets + c.Stamped.Packets
}

type benchResult struct {
	received, sent, dropped uint64
	seconds                 float64
}

func (b benchResult) mpps() float64 { return float64(b.received) / b.seconds / 1e6 }

// measure runs every variant once per round for benchRounds rounds, and sums what the peer received.
func measure(b *testing.B, r *rig, variants []benchVariant) map[string]benchResult {
	b.Helper()
	return measureRounds(b, r, benchRounds, variants)
}

// measureRounds runs every variant once per round, in turn (starting each round with the next variant, so that
// none always follows the same one), and sums what the peer received.
func measureRounds(b *testing.B, r *rig, rounds int, variants []benchVariant) map[string]benchResult {
	b.Helper()
	results := map[string]benchResult{}
	for round := range rounds {
		for i := range variants {
			v := variants[(round+i)%len(variants)]
			// The peer's counter first: a veth transmits redirected frames only while its peer has a program.
			counter := peerCounter(r.rx)
			if v.peer != nil {
				counter = v.peer(b, r)
			}
			g, release := v.start(b, r)
			before := counter.packets(b)
			if err := g.Run(b.Context()); err != nil {
				b.Fatal(err)
			}
			time.Sleep(20 * time.Millisecond) // let the peer drain its ring
			s, err := g.Stats()
			if err != nil {
				b.Fatal(err)
			}
			release()
			res := results[v.name]
			res.received += counter.packets(b) - before
			if v.peer != nil {
				counter.Close()
			}
			res.sent += s.Sent().Packets
			res.dropped += s.Egress.TxDropped
			res.seconds += benchPeriod.Seconds()
			results[v.name] = res
		}
	}
	for _, v := range variants {
		res := results[v.name]
		b.ReportMetric(res.mpps(), "Mpps-"+v.name)
		b.Logf("%-22s %6.3f Mpps received, %6.3f Mpps sent, %.2f%% dropped by the veth", v.name, res.mpps(),
			float64(res.sent)/res.seconds/1e6, 100*float64(res.dropped)/float64(max(res.sent, 1)))
	}
	return results
}

func newBenchRig(b *testing.B, queues int) *rig {
	// newRig takes a *testing.T for its cleanup checks; a benchmark's testing.TB does the same job.
	r := &rig{Pair: netnstest.NewPair(b, netnstest.Options{Queues: queues})}
	if err := netnstest.Do(r.Remote.NS, func() (err error) {
		r.rx, err = AttachReceiver(r.Remote.Interface, ReceiverOptions{FirstPort: 1, LastPort: 65535, AnyGenerator: true})
		return err
	}); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { r.rx.Close() })
	return r
}

func ratio(b *testing.B, res map[string]benchResult, num, den string) {
	q := res[num].mpps() / res[den].mpps()
	b.ReportMetric(q, num+"/"+den)
	b.Logf("%s / %s = %.3f", num, den, q)
}

// BenchmarkUDPVersusNoTouch: fixed UDP and 100 dynamic destination ports against the no-touch ceiling.
func BenchmarkUDPVersusNoTouch(b *testing.B) {
	r := newBenchRig(b, 1)
	fixed := func(r *rig) UDPConfig { return UDPConfig{DstAddr: r.Remote.IPv4, Duration: benchPeriod} }
	res := measure(b, r, []benchVariant{
		{name: "notouch", cfg: fixed, noTouch: true},
		{name: "fixed", cfg: fixed},
		{name: "dyn100", cfg: func(r *rig) UDPConfig {
			return UDPConfig{DstAddr: r.Remote.IPv4, DstPort: 1000, DstPortCount: 100, Duration: benchPeriod}
		}},
	})
	ratio(b, res, "fixed", "notouch")
	ratio(b, res, "dyn100", "notouch")
}

// BenchmarkThreads: one thread against two, into a peer with one RX queue per sender thread and with one RX
// queue for both.
func BenchmarkThreads(b *testing.B) {
	for _, queues := range []int{2, 1} {
		b.Run(fmt.Sprintf("peer-rx-queues=%d", queues), func(b *testing.B) {
			r := newBenchRig(b, queues)
			threads := func(n int) func(r *rig) UDPConfig {
				return func(r *rig) UDPConfig { return UDPConfig{DstAddr: r.Remote.IPv4, Threads: n, Duration: benchPeriod} }
			}
			res := measure(b, r, []benchVariant{{name: "1thread", cfg: threads(1)}, {name: "2threads", cfg: threads(2)}})
			ratio(b, res, "2threads", "1thread")
		})
	}
}

// BenchmarkShapes: what varying the frame size and the addresses costs, against fixed flows. imix trims each frame
// of the simple IMIX from a 1514-byte template; fixed-64 and fixed-1514 are one size without a trim (the mix's
// smallest and its template); randsize picks a random size of 60-1514 per frame; addrs sends to 253 destination
// and from 64 source addresses in turn (64-byte frames); imix+addrs does both.
func BenchmarkShapes(b *testing.B) {
	r := newBenchRig(b, 1)
	imix := &FrameSizes{Mix: SizeProfiles["imix-simple"]}
	ranges := func(r *rig) (*AddrRange, *AddrRange) {
		dst := AddrRange{First: r.Remote.IPv4, Last: netip.MustParseAddr("10.200.0.254")}
		src := AddrRange{First: netip.MustParseAddr("10.200.0.100"), Last: netip.MustParseAddr("10.200.0.163")}
		return &dst, &src
	}
	res := measure(b, r, []benchVariant{
		{name: "fixed-64", cfg: func(r *rig) UDPConfig { return UDPConfig{DstAddr: r.Remote.IPv4, Duration: benchPeriod} }},
		{name: "fixed-1514", cfg: func(r *rig) UDPConfig {
			return UDPConfig{DstAddr: r.Remote.IPv4, FrameSize: 1514, Duration: benchPeriod}
		}},
		{name: "imix", cfg: func(r *rig) UDPConfig { return UDPConfig{DstAddr: r.Remote.IPv4, Sizes: imix, Duration: benchPeriod} }},
		{name: "randsize", cfg: func(r *rig) UDPConfig {
			return UDPConfig{DstAddr: r.Remote.IPv4, Sizes: &FrameSizes{Min: 60, Max: 1514, Random: true}, Duration: benchPeriod}
		}},
		{name: "addrs", cfg: func(r *rig) UDPConfig {
			dst, src := ranges(r)
			return UDPConfig{DstRange: dst, SrcRange: src, Duration: benchPeriod}
		}},
		{name: "imix+addrs", cfg: func(r *rig) UDPConfig {
			dst, src := ranges(r)
			return UDPConfig{DstRange: dst, SrcRange: src, Sizes: imix, Duration: benchPeriod}
		}},
	})
	ratio(b, res, "imix", "fixed-64")
	ratio(b, res, "imix", "fixed-1514")
	ratio(b, res, "randsize", "fixed-1514")
	ratio(b, res, "addrs", "fixed-64")
	ratio(b, res, "imix+addrs", "imix")
}

// BenchmarkReplay: what replaying a capture costs against the UDP generator sending the same frames. replay-64 and
// replay-1514 replay 100 copies of the fixed flow's frame (each written whole from the maps: one 2048-byte chunk,
// one bpf_xdp_store_bytes); replay-imix replays 12 frames in the simple IMIX's proportion (7:4:1), against the
// generator's imix.
func BenchmarkReplay(b *testing.B) {
	r := newBenchRig(b, 1)
	capture := func(r *rig, sizes ...int) *Capture {
		c := &Capture{}
		for _, size := range sizes {
			tpl, err := buildUDPTemplate(udpFlow{SrcMAC: r.Local.MAC, DstMAC: r.Remote.MAC, SrcAddr: r.Local.IPv4, DstAddr: r.Remote.IPv4,
				SrcPort: defaultPort, DstPort: defaultPort, FrameSize: size})
			if err != nil {
				b.Fatal(err)
			}
			c.Frames = append(c.Frames, CapturedFrame{Data: tpl.Frame})
		}
		return c
	}
	copies := func(n, size int) []int {
		s := make([]int, n)
		for i := range s {
			s[i] = size
		}
		return s
	}
	replay := func(sizes ...int) func(r *rig) ReplayConfig {
		return func(r *rig) ReplayConfig {
			return ReplayConfig{Interface: r.Local.Interface, Capture: capture(r, sizes...), Duration: benchPeriod}
		}
	}
	imix := append(append(copies(7, 60), copies(4, 566)...), 1514)
	res := measure(b, r, []benchVariant{
		{name: "fixed-64", cfg: func(r *rig) UDPConfig { return UDPConfig{DstAddr: r.Remote.IPv4, Duration: benchPeriod} }},
		{name: "replay-64", replay: replay(copies(100, 64)...)},
		{name: "fixed-1514", cfg: func(r *rig) UDPConfig {
			return UDPConfig{DstAddr: r.Remote.IPv4, FrameSize: 1514, Duration: benchPeriod}
		}},
		{name: "replay-1514", replay: replay(copies(100, 1514)...)},
		{name: "imix", cfg: func(r *rig) UDPConfig {
			return UDPConfig{DstAddr: r.Remote.IPv4, Sizes: &FrameSizes{Mix: SizeProfiles["imix-simple"]}, Duration: benchPeriod}
		}},
		{name: "replay-imix", replay: replay(imix...)},
	})
	ratio(b, res, "replay-64", "fixed-64")
	ratio(b, res, "replay-1514", "fixed-1514")
	ratio(b, res, "replay-imix", "imix")
}
