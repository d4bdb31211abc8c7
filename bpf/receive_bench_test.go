package bpf_test

import (
	"net/netip"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/xdpgen/xdpgen/bpf"
	"github.com/xdpgen/xdpgen/bpf/bpftest"
	"github.com/xdpgen/xdpgen/test/netnstest"
)

// BenchmarkReceiveProgram times the receive program alone on one CPU (BPF_PROG_TEST_RUN, not live) against the
// drop-only counter the receiver benchmark compares it with: ns per frame, the run's cost without the veth's.
// The same frame runs every repeat, so after the first it is a duplicate of its stream's highest: the stream's
// lookup and window, not the in-order path. Run: go test -run '^$' -bench ReceiveProgram ./bpf
func BenchmarkReceiveProgram(b *testing.B) {
	netnstest.RequirePrivileges(b)
	src, dst := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
	stamped := stampedFrame(b, src, dst, 0, stamp{magic: bpf.StampMagic, generator: 1, sender: 2}, 0)
	unstamped := udpFrame(b, src, dst, 4000, 9, 0, bpf.StampLen)

	drop, err := bpftest.LoadDropCount()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { drop.Close() })
	rx, err := bpf.LoadReceiver(bpf.RxConfig{DstPortFirst: 9, DstPortLast: 9}, 16)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { rx.Close() })
	if err := rx.Generators.Update(uint32(1), uint8(1), ebpf.UpdateAny); err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name  string
		prog  *ebpf.Program
		frame []byte
	}{
		{"dropcount", drop.Program, stamped},
		{"receive-stamped", rx.Program, stamped},
		{"receive-unstamped", rx.Program, unstamped},
	} {
		b.Run(bc.name, func(b *testing.B) {
			_, d, err := bc.prog.Benchmark(bc.frame, b.N, nil)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(d.Nanoseconds()), "ns/frame")
		})
	}
}
