package dataplane

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"
	vnl "github.com/vishvananda/netlink"

	"github.com/xdpgen/xdpgen/bpf"
)

// Receiver is the receive program on one interface: it accounts for the stamped frames of every generator that
// arrive there (Streams), sends back the frames their senders asked to time, and times the frames that come
// back to this host's own generators (Latency). Unstamped UDP to a port range is counted too (Counts). On a
// veth it also lets the interface receive redirected and reflected frames at all.
//
// An interface carries one Receiver, whatever number of generators use it: share it. Counts, Streams,
// Latency and Forget are safe to call concurrently with each other and with the traffic; Close must come after
// every other call has returned (reference-count the users).
type Receiver struct {
	objs *bpf.Receiver
	link link.Link
}

// ReceiverOptions configure a Receiver. The zero value accounts stamped frames only, drops them after
// accounting, and lets every other frame pass.
type ReceiverOptions struct {
	// FirstPort and LastPort are the UDP destination ports whose unstamped frames are counted (Counts'
	// Matched), as `xdpgen count` does. LastPort 0: none is.
	FirstPort, LastPort uint16
	// Pass lets counted frames (stamped frames, and unstamped ones to the ports) on to the stack instead of
	// dropping them. Frames flagged for reflection are reflected either way.
	Pass bool
	// MaxStreams is how many streams the stream table holds. 0: DefaultMaxStreams.
	MaxStreams int
	// AnyGenerator takes every frame that looks stamped as one. Otherwise only the generators registered with
	// Serve are: on a host with other UDP traffic, a datagram that happens to start like a stamp (1 in 4
	// million random payloads) would be accounted and dropped, or reflected, instead of reaching its socket.
	AnyGenerator bool
}

// DefaultMaxStreams is how many streams the stream table holds unless ReceiverOptions say otherwise: 32 senders of
// 64 threads, 128 of 16. Its 4096 slots' counters take 768 KB per possible CPU (bpf.LoadReceiver).
const DefaultMaxStreams = 2048

// XDPInUseError says that an interface already carries another XDP program. xdpgen never detaches or replaces
// another program (a CNI's, another tool's).
type XDPInUseError struct {
	Interface string
	ProgramID uint32
	// ProgramName is the program's name as the kernel knows it (may be empty or truncated to 15 characters).
	ProgramName string
}

func (e *XDPInUseError) Error() string {
	return fmt.Sprintf("%s already has an XDP program attached (id %d, name %q): xdpgen does not replace another program; "+
		"detach it (`ip link set dev %s xdp off`, if it is yours to remove) or receive on another interface",
		e.Interface, e.ProgramID, e.ProgramName, e.Interface)
}

// AttachReceiver attaches the receive program to ifname, in the calling thread's network namespace, with a BPF
// link: the kernel detaches it when the Receiver closes or the process dies. It fails with an *XDPInUseError
// when another XDP program is attached there. On an interface that generators also send from, attach it first:
// a driver that transmits redirected frames only with an XDP program attached gets the generator's pass
// program otherwise (named xdpgen_pass in the error), and the receive program serves that purpose as well.
func AttachReceiver(ifname string, opts ReceiverOptions) (*Receiver, error) {
	l, err := vnl.LinkByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("receiver interface %s: %w", ifname, err)
	}
	if err := xdpFree(l); err != nil {
		return nil, err
	}
	cfg := bpf.RxConfig{DstPortFirst: 1, DstPortLast: 0}
	if opts.LastPort != 0 {
		cfg.DstPortFirst, cfg.DstPortLast = opts.FirstPort, opts.LastPort
	}
	if opts.Pass {
		cfg.Pass = 1
	}
	if opts.AnyGenerator {
		cfg.AnyGenerator = 1
	}
	maxStreams := opts.MaxStreams
	if maxStreams <= 0 {
		maxStreams = DefaultMaxStreams
	}
	_ = rlimit.RemoveMemlock() // only kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK
	objs, err := bpf.LoadReceiver(cfg, uint32(maxStreams))
	if err != nil {
		return nil, privilegeHint(err)
	}
	lk, err := link.AttachXDP(link.XDPOptions{Program: objs.Program, Interface: l.Attrs().Index})
	if err != nil {
		objs.Close()
		if inUse := xdpFree(l); inUse != nil {
			return nil, inUse // attached by someone else in the meantime
		}
		return nil, privilegeHint(fmt.Errorf("attach receiver to %s: %w", ifname, err))
	}
	return &Receiver{objs: objs, link: lk}, nil
}

// xdpFree returns an *XDPInUseError when l (as netlink reports it now) has an XDP program attached.
func xdpFree(l vnl.Link) error {
	fresh, err := vnl.LinkByIndex(l.Attrs().Index)
	if err != nil {
		return fmt.Errorf("%s: %w", l.Attrs().Name, err)
	}
	x := fresh.Attrs().Xdp
	if x == nil || !x.Attached {
		return nil
	}
	e := &XDPInUseError{Interface: l.Attrs().Name, ProgramID: x.ProgId}
	if prog, err := ebpf.NewProgramFromID(ebpf.ProgramID(x.ProgId)); err == nil {
		if info, err := prog.Info(); err == nil {
			e.ProgramName = info.Name
		}
		prog.Close()
	}
	return e
}

// ReceiverCounts are a receiver's frame counters, summed over CPUs.
type ReceiverCounts struct {
	// Matched is unstamped UDP to the ports in ReceiverOptions; Other every frame not ours.
	Matched Counter `json:"matched"`
	Other   Counter `json:"other"`
	// Stamped frames were accounted in a stream; StreamsFull frames were not, because their stream was new
	// and the stream table full.
	Stamped     Counter `json:"stamped"`
	StreamsFull Counter `json:"streamsFull"`
	// Reflected frames were sent back to their senders; Timed frames came back to this host's generators and
	// went into their latency histograms, or into none for LatencyFull ones (the table was full).
	Reflected   Counter `json:"reflected"`
	Timed       Counter `json:"timed"`
	LatencyFull Counter `json:"latencyFull"`
}

// Counts reads the receiver's counters.
func (r *Receiver) Counts() (ReceiverCounts, error) {
	var c ReceiverCounts
	counters, err := r.objs.Counters()
	if err != nil {
		return c, err
	}
	for key, dst := range map[uint32]*Counter{
		bpf.RxMatched: &c.Matched, bpf.RxOther: &c.Other, bpf.RxStamped: &c.Stamped, bpf.RxStreamsFull: &c.StreamsFull,
		bpf.RxReflected: &c.Reflected, bpf.RxTimed: &c.Timed, bpf.RxLatencyFull: &c.LatencyFull,
	} {
		*dst = Counter{Packets: counters[key].Packets, Bytes: counters[key].Bytes}
	}
	return c, nil
}

// StreamKey names a stream as a receiver sees it: one sending thread of one generator on one sender, to one of
// the receiver's addresses.
type StreamKey struct {
	Generator uint32 `json:"generator"`
	Sender    uint32 `json:"sender"`
	// Stream is the sending thread's index.
	Stream uint8 `json:"stream"`
	// Dst is the address the frames were sent to.
	Dst netip.Addr `json:"dst"`
}

// Stream is what a receiver accounted of one stream.
type Stream struct {
	StreamKey
	// Src is the source address of the stream's first frame.
	Src netip.Addr `json:"src"`
	// CPUs is how many CPUs received the stream's frames: above 1, reordering and duplicates between them went
	// unseen (see Streams).
	CPUs int `json:"cpus"`
	StreamCounts
}

// StreamCounts are a stream's counters, or a path's (the sum of its streams').
type StreamCounts struct {
	// Packets and Bytes are every frame received, duplicates included.
	Packets uint64 `json:"packets"`
	Bytes   uint64 `json:"bytes"`
	// Expected is the highest sequence number received plus one: how many frames the sender had sent when it
	// sent the latest one that arrived.
	Expected uint64 `json:"expected"`
	// Reordered frames arrived after a frame sent later; Duplicates had been received before; Late frames
	// arrived too far behind to tell whether they were duplicates (counted as reordered and received).
	Reordered  uint64 `json:"reordered"`
	Duplicates uint64 `json:"duplicates"`
	Late       uint64 `json:"late"`
}

// Unique is how many distinct frames arrived.
func (c StreamCounts) Unique() uint64 { return c.Packets - c.Duplicates }

// Gaps is how many frames below the highest sequence number have not arrived: the loss as far as the receiver
// can tell. Frames lost after the last one received do not show; SettlePath with the sender's count does.
func (c StreamCounts) Gaps() uint64 {
	if u := c.Unique(); c.Expected > u {
		return c.Expected - u
	}
	return 0
}

// Add sums two streams' counts, or two paths'.
func (c StreamCounts) Add(o StreamCounts) StreamCounts {
	return StreamCounts{Packets: c.Packets + o.Packets, Bytes: c.Bytes + o.Bytes, Expected: c.Expected + o.Expected,
		Reordered: c.Reordered + o.Reordered, Duplicates: c.Duplicates + o.Duplicates, Late: c.Late + o.Late}
}

// Streams reads every stream the receiver accounted for. The receive program counts each CPU apart, without a
// lock: a stream is one sending thread, whose frames arrive on one CPU (a veth; a NIC hashing the stream's fixed
// addresses and ports to one RX queue). Its CPUs' rows are summed, the highest sequence number is the highest of
// theirs, and CPUs says how many saw it: above 1, frames reordered or duplicated across CPUs went unseen (the
// received and expected counts, and so the loss, stay exact).
func (r *Receiver) Streams() ([]Stream, error) {
	table, err := r.objs.StreamRows()
	if err != nil {
		return nil, err
	}
	var streams []Stream
	index := map[bpf.RxStreamKey]int{}
	for _, t := range table {
		k := t.Key
		i, seen := index[k]
		if !seen {
			i, index[k] = len(streams), len(streams)
			streams = append(streams, Stream{StreamKey: StreamKey{Generator: k.Generator, Sender: k.Sender, Stream: k.Stream,
				Dst: netip.AddrFrom16(k.DstAddr).Unmap()}})
		}
		s := &streams[i]
		for _, v := range t.Rows {
			if v.Packets == 0 {
				continue
			}
			s.CPUs++
			if v.SrcAddr != [16]byte{} {
				s.Src = netip.AddrFrom16(v.SrcAddr).Unmap()
			}
			s.StreamCounts = s.Add(StreamCounts{Packets: v.Packets, Bytes: v.Bytes, Reordered: v.Reordered,
				Duplicates: v.Duplicates, Late: v.Late})
			s.Expected = max(s.Expected, v.NextSeq)
		}
	}
	return streams, nil
}

// PathKey names a path: one generator's frames from one sender to one destination address.
type PathKey struct {
	Generator uint32     `json:"generator"`
	Sender    uint32     `json:"sender"`
	Dst       netip.Addr `json:"dst"`
}

// Paths sums streams by path: every thread of a sender to one destination.
func Paths(streams []Stream) map[PathKey]StreamCounts {
	paths := map[PathKey]StreamCounts{}
	for _, s := range streams {
		k := PathKey{Generator: s.Generator, Sender: s.Sender, Dst: s.Dst}
		paths[k] = paths[k].Add(s.StreamCounts)
	}
	return paths
}

// PathResult is a path settled: what its sender sent against what its receiver counted.
type PathResult struct {
	Sent     uint64 `json:"sent"`
	Received uint64 `json:"received"`
	// Lost is Sent - Received (0 if more arrived than were sent, which only mixed-up ids would do).
	Lost uint64 `json:"lost"`
	// LossRatio is Lost / Sent (0 when nothing was sent).
	LossRatio  float64 `json:"lossRatio"`
	Reordered  uint64  `json:"reordered"`
	Duplicates uint64  `json:"duplicates"`
}

// SettlePath settles a path once its sender is done and the frames in flight have arrived: sent is the
// sender's count for the destination (UDPGenerator Stats' Destinations), counts the receiver's for the path
// (Paths).
func SettlePath(sent uint64, counts StreamCounts) PathResult {
	res := PathResult{Sent: sent, Received: counts.Unique(), Reordered: counts.Reordered, Duplicates: counts.Duplicates}
	if sent > res.Received {
		res.Lost = sent - res.Received
	}
	if sent > 0 {
		res.LossRatio = float64(res.Lost) / float64(sent)
	}
	return res
}

// Latency reads the round-trip times of generator's reflected frames that came back through this receiver,
// per destination. Only a generator sending from this host with Stamp.ReflectEvery set has any.
func (r *Receiver) Latency(generator uint32) (map[netip.Addr]*LatencyHistogram, error) {
	return r.delays(generator, bpf.LatencyRoundTrip)
}

// OneWay reads the one-way delays of generator's sampled frames that arrived here, per source address: each the
// receiver's TAI clock at arrival less the sender's at sending. They mean something only where the two hosts'
// clocks are synchronised (PTP, say), or on one host; skewed clocks shift every sample, and a receiver clock
// behind the sender's wraps them to seconds.
func (r *Receiver) OneWay(generator uint32) (map[netip.Addr]*LatencyHistogram, error) {
	return r.delays(generator, bpf.LatencyOneWay)
}

func (r *Receiver) delays(generator, kind uint32) (map[netip.Addr]*LatencyHistogram, error) {
	var (
		k bpf.LatencyKey
		v bpf.LatencyHist
	)
	out := map[netip.Addr]*LatencyHistogram{}
	it := r.objs.Latency.Iterate()
	for it.Next(&k, &v) {
		if k.Generator != generator || k.Kind != kind {
			continue
		}
		h := &LatencyHistogram{}
		h.add(v)
		out[netip.AddrFrom16(k.Addr).Unmap()] = h
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("read latency: %w", err)
	}
	return out, nil
}

// Serve makes the receiver take generator's stamped frames: account those sent here, reflect those asked to
// come back, time those that come back. Call it before the generator's frames can arrive (before its senders
// send, before this host sends), unless the receiver takes any generator's (ReceiverOptions.AnyGenerator).
func (r *Receiver) Serve(generator uint32) error {
	if err := r.objs.Generators.Update(generator, uint8(1), ebpf.UpdateAny); err != nil {
		return fmt.Errorf("serve generator %d: %w (at most %d at once)", generator, err, bpf.RxMaxGenerators)
	}
	return nil
}

// Forget deletes what the receiver holds of generator (its registration, streams and latency histograms): call
// it once a finished run's results are read, so that the tables do not fill up.
func (r *Receiver) Forget(generator uint32) error {
	if err := r.objs.Generators.Delete(generator); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("forget generator: %w", err)
	}
	if err := r.objs.ForgetStreams(generator); err != nil {
		return err
	}
	var (
		lk    bpf.LatencyKey
		lv    bpf.LatencyHist
		lkeys []bpf.LatencyKey
	)
	it := r.objs.Latency.Iterate()
	for it.Next(&lk, &lv) {
		if lk.Generator == generator {
			lkeys = append(lkeys, lk)
		}
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("list latency: %w", err)
	}
	for _, k := range lkeys {
		if err := r.objs.Latency.Delete(&k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("forget latency: %w", err)
		}
	}
	return nil
}

// Close detaches the receive program and releases its maps.
func (r *Receiver) Close() error {
	return errors.Join(r.link.Close(), r.objs.Close())
}
