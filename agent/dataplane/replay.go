package dataplane

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/cilium/ebpf/rlimit"
	"github.com/vishvananda/netlink"

	"github.com/xdpgen/xdpgen/bpf"
)

// ReplayConfig describes the replay of a capture: its frames in order, looped, at a rate or at the capture's own
// timing, as captured or rewritten for the local path. Zero values mean "work it out", as in UDPConfig.
type ReplayConfig struct {
	// Interface is the egress interface. Empty: the interface of the route to the first of DstAddrs.
	Interface string
	// Capture is what is replayed (ReadCapture). Required.
	Capture *Capture
	// DstAddrs rewrites the destination address of the capture's IP frames: at most one address per IP family,
	// each frame of a family going to its address; frames of a family without one keep theirs. Every frame then
	// goes to the next hop of the first address (its MAC, through Interface), from Interface's MAC, and the IP
	// frames of a family with an address come from Interface's address of that family (or SrcAddrs').
	DstAddrs []netip.Addr
	// SrcAddrs are the source addresses for the families of DstAddrs (at most one per family).
	SrcAddrs []netip.Addr
	// DstMAC and SrcMAC rewrite every frame's MACs (with DstAddrs: instead of the resolved ones).
	DstMAC, SrcMAC net.HardwareAddr

	// Threads is the number of workers, each pinned to its own CPU: worker k sends the frames k, k+Threads, ... of
	// the capture, so frames stay in the capture's order only with one thread. 0 means 1, or len(CPUs).
	Threads int
	// CPUs are the CPUs the workers are pinned to, one each. Empty: the first Threads CPUs this process may run on.
	CPUs []int
	// Packets is how many frames are sent in all, from the capture's start and looping (a number of loops is that
	// many times the capture's frames); 0: until Duration is up or the run is stopped.
	Packets uint64
	// Skip is how many frames an earlier run already sent of this replay: this one goes on from there, in the
	// capture and in Packets' count.
	Skip uint64
	// OnlyRewritten refuses a capture holding a frame whose destination DstAddrs does not rewrite (not IP, or of
	// a family without an address), so that every frame sent goes to an address of DstAddrs: what an admission
	// policy that checks the destination address has seen.
	OnlyRewritten bool
	// Duration stops the run after this long; 0: no limit.
	Duration time.Duration
	// RatePPS or RateBPS caps the whole run's rate (frames per second, or bits of frames without FCS, paced by
	// the capture's mean frame size); CaptureTiming sends each frame at its time in the capture instead (each
	// thread from its first frame). Give at most one; none: as fast as the machine goes.
	RatePPS, RateBPS uint64
	CaptureTiming    bool
}

// validated is c with its defaults filled in, or what is wrong with it as far as can be told without looking at
// the machine. NewReplayGenerator calls it, the one place a ReplayConfig is checked.
func (c ReplayConfig) validated() (ReplayConfig, error) {
	if c.Threads == 0 {
		c.Threads = max(1, len(c.CPUs))
	}
	var errs []error
	if c.Capture == nil || len(c.Capture.Frames) == 0 {
		errs = append(errs, fieldError(FieldCapture, nil, "required: the capture to replay"))
	}
	if c.Interface == "" && len(c.DstAddrs) == 0 {
		errs = append(errs, fieldError(FieldInterface, nil, "required: the interface to send the capture on (or a destination address whose route names it)"))
	}
	var dstFamilies [2]bool
	for _, a := range c.DstAddrs {
		if dstFamilies[familyIndex(a)] {
			errs = append(errs, fieldError(FieldDstAddr, a, "a second %s destination: give at most one address per IP family", family(a)))
		}
		dstFamilies[familyIndex(a)] = true
	}
	var srcFamilies [2]bool
	for _, a := range c.SrcAddrs {
		switch {
		case srcFamilies[familyIndex(a)]:
			errs = append(errs, fieldError(FieldSrcAddr, a, "a second %s source: give at most one address per IP family", family(a)))
		case !dstFamilies[familyIndex(a)]:
			errs = append(errs, fieldError(FieldSrcAddr, a, "rewrites the source of %s frames for the path to an %s destination: give an %s destination address too",
				family(a), family(a), family(a)))
		}
		srcFamilies[familyIndex(a)] = true
	}
	errs = append(errs, macErrors(c.DstMAC, c.SrcMAC)...)
	errs = append(errs, threadErrors(c.Threads, c.CPUs)...)
	if (c.RatePPS != 0 && c.RateBPS != 0) || (c.CaptureTiming && (c.RatePPS != 0 || c.RateBPS != 0)) {
		errs = append(errs, fieldError(FieldRate, nil, "give one rate: in packets/s, in bits/s, or the capture's timing"))
	}
	if c.Capture != nil && len(c.Capture.Frames) > 0 {
		if c.CaptureTiming && c.Capture.loopTime() == 0 {
			errs = append(errs, fieldError(FieldRate, "capture timing", "the capture's frames all have one time: give a rate instead"))
		}
		if mean := c.Capture.meanFrame(); c.RateBPS != 0 && float64(c.RateBPS) < mean*8 {
			errs = append(errs, fieldError(FieldRate, fmt.Sprintf("%d bit/s", c.RateBPS), "below one %.0f-byte frame per second: use at least %.0f bit/s", mean, mean*8))
		}
	}
	return c, errors.Join(errs...)
}

// familyIndex is 0 for IPv4, 1 for IPv6: frameRewrite's index.
func familyIndex(a netip.Addr) int {
	if a.Is4() {
		return 0
	}
	return 1
}

// ratePPS is the whole run's rate in frames per second; 0 when unpaced or at the capture's timing.
func (c ReplayConfig) ratePPS() float64 {
	if c.RateBPS != 0 {
		return float64(c.RateBPS) / (c.Capture.meanFrame() * 8)
	}
	return float64(c.RatePPS)
}

// ReplayGenerator sends a capture's frames as XDP live frames from pinned workers. Make one with
// NewReplayGenerator, Run it once, and Close it.
type ReplayGenerator struct {
	cfg    ReplayConfig
	target target
	// rewrite is what was changed in the capture's frames.
	rewrite frameRewrite
	// buckets are the size buckets frames are counted in.
	buckets []SizeCount
	objs    *bpf.Replay
	host    *sendingHost
	// buffer is what BPF_PROG_RUN is handed: as long as the largest frame (the program writes every frame whole).
	buffer []byte
}

// NewReplayGenerator validates cfg against this host, rewrites the capture's frames, loads the program and the
// frames and readies the egress interface. It works in the calling thread's network namespace.
func NewReplayGenerator(cfg ReplayConfig) (*ReplayGenerator, error) {
	cfg, err := cfg.validated()
	if err != nil {
		return nil, err
	}
	tgt, rw, err := replayTarget(cfg)
	if err != nil {
		return nil, err
	}
	frames := make([]bpf.ReplayedFrame, len(cfg.Capture.Frames))
	for i, f := range cfg.Capture.Frames {
		if cfg.OnlyRewritten {
			if err := rw.rewritesDestination(FieldCapture, i, f.Data); err != nil {
				return nil, err
			}
		}
		data, err := rw.rewrite(FieldCapture, i, f.Data)
		if err != nil {
			return nil, err
		}
		if len(data) > MaxLiveFrameSize {
			return nil, fieldError(FieldCapture, nil, "frame %d: %d bytes once rewritten; live frames hold at most %d: leave it out", i+1, len(data), MaxLiveFrameSize)
		}
		frames[i] = bpf.ReplayedFrame{Data: data, AtNs: uint64(f.At)}
	}
	buckets := replayBuckets(frames)
	if err := probeLiveFrames(); err != nil {
		return nil, err
	}
	_ = rlimit.RemoveMemlock() // only kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK

	bcfg := bpf.ReplayConfig{
		Ifindex:      uint32(tgt.Ifindex),
		Stride:       uint32(len(tgt.CPUs)),
		PaceInterval: paceInterval(cfg.ratePPS(), len(tgt.CPUs)),
		ClockBase:    monotonicNow(),
	}
	if cfg.CaptureTiming {
		bcfg.CaptureTiming, bcfg.LoopNs = 1, uint64(cfg.Capture.loopTime())
	}
	objs, err := bpf.LoadReplay(bcfg, frames)
	if err != nil {
		return nil, privilegeHint(err)
	}
	largest := 0
	for _, f := range frames {
		largest = max(largest, len(f.Data))
	}
	g := &ReplayGenerator{cfg: cfg, target: tgt, rewrite: rw, buckets: buckets, objs: objs, buffer: make([]byte, largest)}
	if g.host, err = openSendingHost(tgt); err != nil {
		g.Close()
		return nil, err
	}
	if err := g.host.readyEgress(objs.Pass); err != nil {
		g.Close()
		return nil, err
	}
	return g, nil
}

// replayTarget resolves the egress interface (Interface, or the route to the first destination address) and the
// CPUs, works out the rewrite (with destination addresses, the local path's MACs and source addresses), and checks
// each frame against the interface's MTU.
func replayTarget(cfg ReplayConfig) (target, frameRewrite, error) {
	rw := frameRewrite{srcMAC: cfg.SrcMAC, dstMAC: cfg.DstMAC}
	var tgt target
	for i, dst := range cfg.DstAddrs {
		var src netip.Addr
		for _, a := range cfg.SrcAddrs {
			if a.Is4() == dst.Is4() {
				src = a
			}
		}
		// Each frame is checked against the MTU below: the spec's frame size is the smallest the family allows.
		t, err := resolveTarget(targetSpec{Interface: cfg.Interface, DstMAC: cfg.DstMAC, SrcMAC: cfg.SrcMAC, DstAddr: dst, SrcAddr: src,
			FrameSize: minFrameSize(dst.Is6(), 0), Threads: cfg.Threads, CPUs: cfg.CPUs})
		if err != nil {
			return target{}, rw, err
		}
		if t.VLAN != 0 {
			return target{}, rw, fieldError(FieldDstAddr, dst, "is reached through VLAN %d: replay sends frames with the tags they were captured with; give an untagged path", t.VLAN)
		}
		if i == 0 {
			tgt = target{Link: t.Link, Ifindex: t.Ifindex, CPUs: t.CPUs}
			rw.srcMAC, rw.dstMAC = t.SrcMAC, t.DstMAC
		} else if t.Ifindex != tgt.Ifindex {
			return target{}, rw, fieldError(FieldDstAddr, dst, "is reached through %s, but %s through %s: give destinations that one interface reaches",
				t.Link.Attrs().Name, cfg.DstAddrs[0], tgt.Link.Attrs().Name)
		}
		rw.src[familyIndex(dst)], rw.dst[familyIndex(dst)] = t.SrcAddr, dst
	}
	if tgt.Link == nil {
		link, err := egressLink(cfg.Interface, 0)
		if err != nil {
			return target{}, rw, err
		}
		if _, ok := link.(*netlink.Vlan); ok {
			return target{}, rw, fieldError(FieldInterface, link.Attrs().Name, "is a VLAN device, which XDP cannot transmit through: name its parent (frames are sent with the tags they were captured with)")
		}
		tgt = target{Link: link, Ifindex: link.Attrs().Index}
		if tgt.CPUs, err = workerCPUs(cfg.Threads, cfg.CPUs); err != nil {
			return target{}, rw, err
		}
	}
	attrs := tgt.Link.Attrs()
	for i, f := range cfg.Capture.Frames {
		limit := attrs.MTU + ethernetHeaderLen
		if binary.BigEndian.Uint16(f.Data[12:14]) == 0x8100 {
			limit += vlanTagLen
		}
		if len(f.Data) > limit {
			return target{}, rw, fieldError(FieldCapture, nil, "frame %d: %d bytes, larger than %s's MTU %d allows (%d): raise the MTU, or leave the frame out",
				i+1, len(f.Data), attrs.Name, attrs.MTU, limit)
		}
	}
	return tgt, rw, nil
}

// replayBuckets sets each frame's size bucket and returns the buckets: one per distinct size when there are at
// most bpf.SizeBuckets of them, else equal slices of the sizes' range, as a UDP run's.
func replayBuckets(frames []bpf.ReplayedFrame) []SizeCount {
	var sizes []int
	for _, f := range frames {
		sizes = append(sizes, len(f.Data))
	}
	slices.Sort(sizes)
	sizes = slices.Compact(sizes)
	s := FrameSizes{Min: sizes[0], Max: sizes[len(sizes)-1]}
	if len(sizes) <= bpf.SizeBuckets {
		s = FrameSizes{}
		for _, size := range sizes {
			s.Mix = append(s.Mix, WeightedSize{Size: size, Weight: 1})
		}
	}
	buckets := s.buckets()
	for i := range frames {
		n := len(frames[i].Data)
		frames[i].Bucket = uint8(slices.IndexFunc(buckets, func(b SizeCount) bool { return n >= b.Min && n <= b.Max }))
	}
	return buckets
}

// Interface is the egress interface's name and index.
func (g *ReplayGenerator) Interface() (string, int) {
	return g.target.Link.Attrs().Name, g.target.Ifindex
}

// Flow describes what is sent, for a human.
func (g *ReplayGenerator) Flow() string {
	c := g.cfg
	n := uint64(len(c.Capture.Frames))
	loops := "looped until stopped"
	if c.Packets > 0 {
		loops = fmt.Sprintf("%d frames (%.2f loops)", c.Packets, float64(c.Packets)/float64(n))
	}
	if c.Skip > 0 {
		loops += fmt.Sprintf(", from frame %d of the capture (%d sent before)", c.Skip%n+1, c.Skip)
	}
	pace := "as fast as possible"
	switch {
	case c.CaptureTiming:
		pace = fmt.Sprintf("at the capture's timing (%s a loop)", c.Capture.loopTime())
	case c.ratePPS() > 0:
		pace = fmt.Sprintf("paced to %.0f pps", c.ratePPS())
	}
	rewrite := "as captured"
	var parts []string
	for fam := range 2 {
		if d := g.rewrite.dst[fam]; d.IsValid() {
			parts = append(parts, fmt.Sprintf("%s -> %s", g.rewrite.src[fam], d))
		}
	}
	if g.rewrite.dstMAC != nil || g.rewrite.srcMAC != nil {
		parts = append(parts, fmt.Sprintf("MACs %s -> %s", macOrCaptured(g.rewrite.srcMAC), macOrCaptured(g.rewrite.dstMAC)))
	}
	if len(parts) > 0 {
		rewrite = "rewritten: " + strings.Join(parts, ", ")
	}
	return fmt.Sprintf("replay of %d frames (mean %.1f bytes), %s, %s, %s, checksums recomputed, %d thread(s)",
		len(c.Capture.Frames), c.Capture.meanFrame(), loops, pace, rewrite, len(g.target.CPUs))
}

func macOrCaptured(m net.HardwareAddr) string {
	if m == nil {
		return "(as captured)"
	}
	return m.String()
}

// Close detaches what the generator attached and releases its programs. Safe to call more than once.
func (g *ReplayGenerator) Close() error {
	return closeGenerator(&g.objs, g.host)
}

// Stats reads the counters, summed over CPUs. Safe to call while Run is going.
func (g *ReplayGenerator) Stats() (Stats, error) {
	states, err := readWorkerStates(g.objs.Workers)
	if err != nil {
		return Stats{}, err
	}
	egress, err := g.host.egressSinceStart()
	if err != nil {
		return Stats{}, err
	}
	s := Stats{At: time.Now(), Egress: egress, Sizes: slices.Clone(g.buckets)}
	for _, st := range states {
		for a, c := range st.Actions {
			s.Actions[a] = s.Actions[a].add(Counter{Packets: c.Packets, Bytes: c.Bytes})
		}
		for i := range s.Sizes {
			s.Sizes[i].Packets += st.SizeFrames[i]
		}
	}
	return s, nil
}

// PinCounters is UDPGenerator.PinCounters for a replay.
func (g *ReplayGenerator) PinCounters(path string) error { return pinMap(g.objs.Workers, path) }

// Run replays until the frames are sent, the duration is up, or ctx is cancelled, and returns promptly (a few
// milliseconds) after any of them. It returns ctx's error when ctx ended the run.
func (g *ReplayGenerator) Run(ctx context.Context) error {
	n := uint64(len(g.cfg.Capture.Frames))
	states := workerShares(g.target.CPUs, g.cfg.Packets)
	for i, cpu := range g.target.CPUs {
		states[cpu].ReplayPos = uint32((g.cfg.Skip + uint64(i)) % n)
	}
	paced := g.cfg.CaptureTiming || g.cfg.ratePPS() > 0
	return runCountedWorkers(ctx, g.objs.Workers, states, paced, g.cfg.Duration,
		liveFrameJob{program: g.objs.Send, frame: g.buffer, ns: g.host.ns}, g.target.CPUs)
}
