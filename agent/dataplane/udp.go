package dataplane

import (
	"context"
	"fmt"
	"math/bits"
	"net/netip"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/rlimit"

	"github.com/xdpgen/xdpgen/bpf"
)

// UDPGenerator sends one UDP flow (or a range of ports) as XDP live frames from pinned workers.
// Make one with NewUDPGenerator, Run it once, and Close it.
type UDPGenerator struct {
	cfg    UDPConfig
	target target
	// flows are what goes to each destination, in the order of cfg.DstAddrs; templates their frames.
	flows     []udpFlow
	templates []udpTemplate
	objs      *bpf.UDP
	// program is what the workers run: the UDP generator, or in benchmarks the no-touch ceiling (package bpftest).
	program *ebpf.Program
	// host is the namespace, netlink sockets and egress interface state the generator holds.
	host *sendingHost
	// ratePPS is the rate the workers are paced to, in frames per second; 0: unpaced.
	ratePPS float64
}

// NewUDPGenerator validates cfg against this host, builds the frames, loads the programs and readies the egress
// interface. It works in the calling thread's network namespace (netnsthread.Do picks another).
//
// A generator that asks for reflected frames (Stamp.ReflectEvery) needs a Receiver on its egress interface to
// time them: attach it first (AttachReceiver), since the interface carries one XDP program.
func NewUDPGenerator(cfg UDPConfig) (*UDPGenerator, error) {
	cfg, tgt, err := checkedTarget(cfg)
	if err != nil {
		return nil, err
	}
	if lo := udpMinFrameSize(cfg.family6(), tgt.VLAN, cfg.Stamp != nil); cfg.smallestFrame() < lo {
		return nil, fieldError(FieldFrameSize, cfg.smallestFrame(), "below the smallest %s%s VLAN-tagged frame (%s is VLAN %d): use at least %d bytes",
			stampNote(cfg.Stamp), family(cfg.DstAddrs[0]), tgt.Link.Attrs().Name, tgt.VLAN, lo)
	}
	flows, err := destinationFlows(cfg, tgt)
	if err != nil {
		return nil, err
	}
	var linkBPS float64
	if cfg.RateLinePercent != 0 {
		if linkBPS, err = lineRate(tgt.Link); err != nil {
			return nil, err
		}
	}
	templates := make([]udpTemplate, len(flows))
	frames := make([][]byte, len(flows))
	for i, f := range flows {
		if templates[i], err = buildUDPTemplate(f); err != nil {
			return nil, err
		}
		frames[i] = templates[i].Frame
	}
	if err := probeLiveFrames(); err != nil {
		return nil, err
	}
	_ = rlimit.RemoveMemlock() // only kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK

	bcfg := bpf.UDPConfig{
		Ifindex:      uint32(tgt.Ifindex),
		UdpOffset:    uint16(templates[0].UDPOffset),
		DstPort:      cfg.DstPort,
		DstPortCount: cfg.DstPortCount,
		SrcPort:      cfg.SrcPort,
		SrcPortCount: cfg.SrcPortCount,
		PaceInterval: paceInterval(cfg.ratePPS(linkBPS), cfg.Threads) * uint64(max(cfg.Burst, 1)),
		Burst:        uint32(cfg.Burst),
		ClockBase:    monotonicNow(),
	}
	if cfg.family6() {
		bcfg.Ipv6 = 1
	}
	if cfg.Inject {
		bcfg.Inject = 1
	}
	if cfg.Sizes != nil {
		cfg.Sizes.program(&bcfg, frames[0], templates[0].UDPOffset)
	}
	cfg.programAddrRanges(&bcfg, templates[0].UDPOffset)
	if s := cfg.Stamp; s != nil {
		// In network byte order, as the stamp carries them.
		bcfg.Stamp, bcfg.ReflectEvery = 1, s.ReflectEvery
		bcfg.StampGenerator, bcfg.StampSender = bits.ReverseBytes32(s.Generator), bits.ReverseBytes32(s.Sender)
	}
	objs, err := bpf.LoadUDP(bcfg, frames)
	if err != nil {
		return nil, privilegeHint(err)
	}
	g := &UDPGenerator{cfg: cfg, target: tgt, flows: flows, templates: templates, objs: objs, program: objs.Send, ratePPS: cfg.ratePPS(linkBPS)}
	if g.host, err = openSendingHost(tgt); err != nil {
		g.Close()
		return nil, err
	}
	if cfg.Inject {
		return g, nil // nothing leaves: the interface transmits nothing of ours
	}
	if err := g.host.readyEgress(objs.Pass); err != nil {
		g.Close()
		return nil, err
	}
	return g, nil
}

// destinationFlows is the flow to each destination: the first through tgt, the others resolved alike, which
// must leave through the same interface with the same VLAN tag.
func destinationFlows(cfg UDPConfig, tgt target) ([]udpFlow, error) {
	flows := make([]udpFlow, len(cfg.DstAddrs))
	for i, dst := range cfg.DstAddrs {
		t := tgt
		if i > 0 {
			spec := cfg.targetSpec()
			spec.DstAddr = dst
			var err error
			if t, err = resolveTarget(spec); err != nil {
				return nil, err
			}
			if t.Ifindex != tgt.Ifindex || t.VLAN != tgt.VLAN {
				return nil, fieldError(FieldDstAddr, dst, "is reached through %s%s, but %s through %s%s: give destinations that one interface reaches",
					t.Link.Attrs().Name, vlanName(t.VLAN), cfg.DstAddrs[0], tgt.Link.Attrs().Name, vlanName(tgt.VLAN))
			}
		}
		flows[i] = udpFlow{
			SrcMAC: t.SrcMAC, DstMAC: t.DstMAC,
			SrcAddr: t.SrcAddr, DstAddr: dst,
			SrcPort: cfg.SrcPort, DstPort: cfg.DstPort,
			VLAN:      t.VLAN,
			FrameSize: cfg.FrameSize,
			Stamp:     cfg.Stamp,
		}
	}
	return flows, nil
}

func vlanName(vlan uint16) string {
	if vlan == 0 {
		return ""
	}
	return fmt.Sprintf(" (VLAN %d)", vlan)
}

// ingress is the interface whose receive path takes injected frames; 0 when the run transmits.
func (g *UDPGenerator) ingress() int {
	if !g.cfg.Inject {
		return 0
	}
	return g.target.Ifindex
}

// Interface is the egress interface's name and index (with Inject, the interface frames are injected into).
func (g *UDPGenerator) Interface() (string, int) {
	return g.target.Link.Attrs().Name, g.target.Ifindex
}

// Destinations are the addresses frames go to, in turn: what Stats' Destinations count.
func (g *UDPGenerator) Destinations() []netip.Addr {
	return g.cfg.DstAddrs
}

// FrameSize is the length of the frames sent, in bytes without FCS (the configured size, or its default).
func (g *UDPGenerator) FrameSize() int {
	return g.cfg.FrameSize
}

// Flow describes what is sent, for a human.
func (g *UDPGenerator) Flow() string {
	f := g.flows[0]
	ports := func(p, n uint16) string {
		if n <= 1 {
			return fmt.Sprint(p)
		}
		return fmt.Sprintf("%d-%d", p, int(p)+int(n)-1)
	}
	vlan := ""
	if f.VLAN != 0 {
		vlan = fmt.Sprintf(" vlan %d", f.VLAN)
	}
	dst := f.DstAddr.String()
	if r := g.cfg.DstRange; r != nil {
		dst = r.String()
	}
	src := f.SrcAddr.String()
	if r := g.cfg.SrcRange; r != nil {
		src = r.String()
	}
	if len(g.flows) > 1 {
		dst = fmt.Sprintf("%d destinations %s .. %s", len(g.flows), f.DstAddr, g.flows[len(g.flows)-1].DstAddr)
	}
	stamp := ""
	if s := g.cfg.Stamp; s != nil {
		stamp = fmt.Sprintf(", stamped (generator %d, sender %d", s.Generator, s.Sender)
		if s.ReflectEvery != 0 {
			stamp += fmt.Sprintf(", 1 in %d reflected", s.ReflectEvery)
		}
		stamp += ")"
	}
	size := fmt.Sprintf("%d-byte frames", f.FrameSize)
	if s := g.cfg.Sizes; s != nil {
		size = fmt.Sprintf("frame sizes %s (mean %.1f bytes)", s, s.mean())
	}
	rate := ""
	if g.ratePPS > 0 {
		rate = fmt.Sprintf(", paced to %.0f pps", g.ratePPS)
		if g.cfg.Burst > 1 {
			rate += fmt.Sprintf(" in bursts of %d per thread", g.cfg.Burst)
		}
	}
	inject := ""
	if g.cfg.Inject {
		inject = ", injected into " + g.target.Link.Attrs().Name + "'s receive path"
	}
	return fmt.Sprintf("udp %s:%s -> %s:%s (%s -> %s%s), %d flow(s), %s, %d thread(s)%s%s%s",
		src, ports(f.SrcPort, g.cfg.SrcPortCount), dst, ports(f.DstPort, g.cfg.DstPortCount),
		f.SrcMAC, f.DstMAC, vlan, g.cfg.Flows(), size, len(g.target.CPUs), rate, stamp, inject)
}

// Close detaches what the generator attached and releases its programs. Safe to call more than once.
func (g *UDPGenerator) Close() error {
	return closeGenerator(&g.objs, g.host)
}

// Stats reads the counters, summed over CPUs. Safe to call while Run is going.
func (g *UDPGenerator) Stats() (Stats, error) {
	states, err := g.workerStates()
	if err != nil {
		return Stats{}, err
	}
	var egress InterfaceCounters
	if !g.cfg.Inject {
		if egress, err = g.host.egressSinceStart(); err != nil {
			return Stats{}, err
		}
	}
	s := Stats{At: time.Now(), Egress: egress, Destinations: make([]DestinationSent, len(g.cfg.DstAddrs))}
	for i, a := range g.cfg.DstAddrs {
		s.Destinations[i].Addr = a
	}
	if r := g.cfg.DstRange; r != nil {
		s.Destinations[0].Last = r.Last
	}
	s.Sizes = []SizeCount{{Min: g.cfg.FrameSize, Max: g.cfg.FrameSize}}
	if g.cfg.Sizes != nil {
		s.Sizes = g.cfg.Sizes.buckets()
	}
	for _, st := range states {
		for a, c := range st.Actions {
			s.Actions[a] = s.Actions[a].add(Counter{Packets: c.Packets, Bytes: c.Bytes})
		}
		for i := range s.Destinations {
			s.Destinations[i].Packets += st.Sent[i]
		}
		if g.cfg.Sizes != nil {
			for i := range s.Sizes {
				s.Sizes[i].Packets += st.SizeFrames[i]
			}
		}
	}
	if g.cfg.Sizes == nil {
		// One size: the program counts no buckets, every frame sent is in the one.
		s.Sizes[0].Packets = s.Sent().Packets
	}
	return s, nil
}

func (g *UDPGenerator) workerStates() ([]bpf.WorkerState, error) {
	return readWorkerStates(g.objs.Workers)
}

// Run generates until the packet count is reached, the duration is up, or ctx is cancelled, and returns
// promptly (a few milliseconds) after any of them. It returns ctx's error when ctx ended the run.
func (g *UDPGenerator) Run(ctx context.Context) error {
	states := workerShares(g.target.CPUs, g.cfg.Packets)
	if s := g.cfg.Stamp; s != nil {
		// Streams of an earlier run continue: their sequence numbers go on where it stopped, per destination.
		for i, cpu := range g.target.CPUs {
			if i < len(s.Continue) {
				for d, n := range s.Continue[i] {
					states[cpu].FirstSeq[d] = uint32(n) // the wire's 32 bits: receivers extend them
				}
			}
		}
	}
	return runCountedWorkers(ctx, g.objs.Workers, states, g.cfg.paced(), g.cfg.Duration,
		liveFrameJob{program: g.program, frame: g.templates[0].Frame, ns: g.host.ns, ingress: g.ingress()}, g.target.CPUs)
}

// paceInterval is the time between one worker's frames in 1/256 ns (PACE_SHIFT), 0 for no pacing.
func paceInterval(ratePPS float64, threads int) uint64 {
	if ratePPS <= 0 {
		return 0
	}
	return uint64(float64(threads) / ratePPS * 1e9 * (1 << paceShift))
}

// paceShift is PACE_SHIFT in xdpgen.h.
const paceShift = 8
