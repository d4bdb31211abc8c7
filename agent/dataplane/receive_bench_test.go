package dataplane

import (
	"errors"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	vnl "github.com/vishvananda/netlink"

	"github.com/xdpgen/xdpgen/bpf"
	"github.com/xdpgen/xdpgen/bpf/bpftest"
	"github.com/xdpgen/xdpgen/test/netnstest"
)

// dropCounter is one of the receiver's baselines (bpftest.DropCount) attached to the peer's veth.
type dropCounter struct {
	objs *bpftest.DropCount
	link link.Link
	// counts: where the program counts.
	counts baselineCounts
}

// baselineCounts says where a baseline program counts its frames.
type baselineCounts int

const (
	inCounter        baselineCounts = iota // DropCount.Counter
	inStreamCounters                       // DropCount.StreamCounters
	inLeastRows                            // DropCount.LeastRows
)

func (d *dropCounter) packets(b *testing.B) uint64 {
	if d.counts == inLeastRows {
		// One sender's thread into one RX queue: every frame is the one its row expects, or the row does not
		// follow its stream and the baseline measures something else.
		if n := sumPerCPU(b, d.objs.LeastRows, 256, func(r bpftest.LeastRow) uint64 { return r.Unexpected }); n != 0 {
			b.Fatalf("the least receiver found %d frames out of sequence on an in-order path", n)
		}
		return sumPerCPU(b, d.objs.LeastRows, 256, func(r bpftest.LeastRow) uint64 { return r.Packets })
	}
	m, keys := d.objs.Counter, uint32(1)
	if d.counts == inStreamCounters {
		m, keys = d.objs.StreamCounters, 256
	}
	return sumPerCPU(b, m, keys, func(c bpf.Counter) uint64 { return c.Packets })
}

// sumPerCPU sums packets over keys 0 .. keys-1 of a per-CPU array and over its CPUs.
func sumPerCPU[V any](b *testing.B, m *ebpf.Map, keys uint32, packets func(V) uint64) uint64 {
	var n uint64
	for key := range keys {
		var perCPU []V
		if err := m.Lookup(key, &perCPU); err != nil {
			b.Fatal(err)
		}
		for _, v := range perCPU {
			n += packets(v)
		}
	}
	return n
}

func (d *dropCounter) Close() error { return errors.Join(d.link.Close(), d.objs.Close()) }

// attachDropCounter attaches the drop-only counter to the peer's veth. It drops ARP too: variants using it
// give the destination MAC.
func attachDropCounter(b *testing.B, r *rig) peerCounter {
	return attachCounter(b, r, inCounter, func(d *bpftest.DropCount) *ebpf.Program { return d.Program })
}

// attachStreamCounter attaches the counter that finds each frame's stamp and counts it in a counter per stream
// number, without looking the stream up: the least a receiver that counts per stream does.
func attachStreamCounter(b *testing.B, r *rig) peerCounter {
	return attachCounter(b, r, inStreamCounters, func(d *bpftest.DropCount) *ebpf.Program { return d.StreamProgram })
}

// attachLeastReceiver attaches the least receiver: each stamped frame accounted in its stream's row, by the
// stream's whole key and its sequence numbers, and nothing more.
func attachLeastReceiver(b *testing.B, r *rig) peerCounter {
	return attachCounter(b, r, inLeastRows, func(d *bpftest.DropCount) *ebpf.Program { return d.LeastReceiver })
}

func attachCounter(b *testing.B, r *rig, counts baselineCounts, program func(*bpftest.DropCount) *ebpf.Program) peerCounter {
	objs, err := bpftest.LoadDropCount()
	if err != nil {
		b.Fatal(err)
	}
	d := &dropCounter{objs: objs, counts: counts}
	err = netnstest.Do(r.Remote.NS, func() error {
		l, err := vnl.LinkByName(r.Remote.Interface)
		if err != nil {
			return err
		}
		d.link, err = link.AttachXDP(link.XDPOptions{Program: program(objs), Interface: l.Attrs().Index})
		return err
	})
	if err != nil {
		objs.Close()
		b.Fatal(err)
	}
	return d
}

// attachReceiverB attaches a Receiver to the peer's veth, accounting stamped frames.
func attachReceiverB(b *testing.B, r *rig) peerCounter {
	var rx *Receiver
	if err := netnstest.Do(r.Remote.NS, func() (err error) {
		rx, err = AttachReceiver(r.Remote.Interface, ReceiverOptions{AnyGenerator: true})
		return err
	}); err != nil {
		b.Fatal(err)
	}
	return rx
}

// BenchmarkStamping: stamped frames (sequence number, checksum), and stamped frames one in 100 of which asks
// to be reflected (and reads the clock), against the same fixed flow unstamped, all counted by the drop-only
// counter on the peer, so that only the sender's work differs.
func BenchmarkStamping(b *testing.B) {
	r := &rig{Pair: netnstest.NewPair(b, netnstest.Options{Queues: 1})}
	flow := func(stamp *Stamp) func(r *rig) UDPConfig {
		return func(r *rig) UDPConfig {
			return UDPConfig{DstAddr: r.Remote.IPv4, DstMAC: r.Remote.MAC, Duration: benchPeriod, Stamp: stamp}
		}
	}
	res := measureRounds(b, r, targetBenchRounds, []benchVariant{
		{name: "fixed", peer: attachDropCounter, cfg: flow(nil)},
		{name: "stamped", peer: attachDropCounter, cfg: flow(&Stamp{Generator: 1, Sender: 1})},
		{name: "reflect100", peer: attachDropCounter, cfg: flow(&Stamp{Generator: 1, Sender: 1, ReflectEvery: 100})},
	})
	ratio(b, res, "stamped", "fixed")
	ratio(b, res, "reflect100", "fixed")
}

// BenchmarkReceiver: one sender of stamped frames at full rate into the peer, counted by the receive program
// (accounting every frame in its stream), by the drop-only counter, by the least receiver (each frame's stream
// told by its whole key, its sequence numbers followed, in a row of its own, and nothing more), or by a counter
// that finds each frame's stamp as the receive program does and counts it per stream number with no lookup (the
// floor of any receiver counting per stream). A veth runs its peer's XDP program in the softirq of the CPU that
// sent the frame, so what the receiver costs per frame slows the sender down: the ratios are the receiver's cost
// charged to one CPU that also sends, all of it (receiver / dropcount, the target), what any receiver
// accounting per stream costs there (leastreceiver / dropcount), the receive program against that
// (receiver / leastreceiver), and reading the frame (streamcount / dropcount).
func BenchmarkReceiver(b *testing.B) {
	r := &rig{Pair: netnstest.NewPair(b, netnstest.Options{Queues: 1})}
	stamped := func(r *rig) UDPConfig {
		return UDPConfig{DstAddr: r.Remote.IPv4, DstMAC: r.Remote.MAC, Duration: benchPeriod, Stamp: &Stamp{Generator: 1, Sender: 1}}
	}
	res := measureRounds(b, r, targetBenchRounds, []benchVariant{
		{name: "dropcount", peer: attachDropCounter, cfg: stamped},
		{name: "streamcount", peer: attachStreamCounter, cfg: stamped},
		{name: "leastreceiver", peer: attachLeastReceiver, cfg: stamped},
		{name: "receiver", peer: attachReceiverB, cfg: stamped},
	})
	ratio(b, res, "receiver", "dropcount")
	ratio(b, res, "leastreceiver", "dropcount")
	ratio(b, res, "receiver", "leastreceiver")
	ratio(b, res, "streamcount", "dropcount")
}
