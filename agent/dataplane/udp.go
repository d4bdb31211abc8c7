package dataplane

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/rlimit"

	"github.com/xdpgen/xdpgen/bpf"
)

// UDPGenerator sends one UDP flow (or a range of ports) as XDP live frames from pinned workers.
// Make one with NewUDPGenerator, Run it once, and Close it.
type UDPGenerator struct {
	cfg      UDPConfig
	target   target
	flow     udpFlow
	template udpTemplate
	objs     *bpf.UDP
	// program is what the workers run: the UDP generator, or in benchmarks the no-touch ceiling (package bpftest).
	program *ebpf.Program
	// host is the namespace, netlink sockets and egress interface state the generator holds.
	host *sendingHost
}

// NewUDPGenerator validates cfg against this host, builds the frame, loads the programs and readies the egress
// interface. It works in the calling thread's network namespace (netnsthread.Do picks another).
func NewUDPGenerator(cfg UDPConfig) (*UDPGenerator, error) {
	cfg, tgt, err := checkedTarget(cfg)
	if err != nil {
		return nil, err
	}
	flow := udpFlow{
		SrcMAC: tgt.SrcMAC, DstMAC: tgt.DstMAC,
		SrcAddr: tgt.SrcAddr, DstAddr: cfg.DstAddr,
		SrcPort: cfg.SrcPort, DstPort: cfg.DstPort,
		VLAN:      tgt.VLAN,
		FrameSize: cfg.FrameSize,
	}
	tmpl, err := buildUDPTemplate(flow)
	if err != nil {
		return nil, err
	}
	if err := probeLiveFrames(); err != nil {
		return nil, err
	}
	_ = rlimit.RemoveMemlock() // only kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK

	clockBase := monotonicNow()
	objs, err := bpf.LoadUDP(bpf.UDPConfig{
		Ifindex:      uint32(tgt.Ifindex),
		UdpOffset:    uint16(tmpl.UDPOffset),
		UdpCheck:     tmpl.UDPCheck,
		DstPort:      cfg.DstPort,
		DstPortCount: cfg.DstPortCount,
		SrcPort:      cfg.SrcPort,
		SrcPortCount: cfg.SrcPortCount,
		PaceInterval: paceInterval(cfg.ratePPS(), cfg.Threads),
		ClockBase:    clockBase,
	}, tmpl.Frame)
	if err != nil {
		return nil, privilegeHint(err)
	}
	g := &UDPGenerator{cfg: cfg, target: tgt, flow: flow, template: tmpl, objs: objs, program: objs.Send}
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

// Interface is the egress interface's name and index.
func (g *UDPGenerator) Interface() (string, int) {
	return g.target.Link.Attrs().Name, g.target.Ifindex
}

// Flow describes what is sent, for a human.
func (g *UDPGenerator) Flow() string {
	f := g.flow
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
	return fmt.Sprintf("udp %s:%s -> %s:%s (%s -> %s%s), %d-byte frames, %d thread(s)",
		f.SrcAddr, ports(f.SrcPort, g.cfg.SrcPortCount), f.DstAddr, ports(f.DstPort, g.cfg.DstPortCount),
		f.SrcMAC, f.DstMAC, vlan, f.FrameSize, len(g.target.CPUs))
}

// Close detaches what the generator attached and releases its programs. Safe to call more than once.
func (g *UDPGenerator) Close() error {
	var errs []error
	if g.objs != nil {
		errs = append(errs, g.objs.Close())
		g.objs = nil
	}
	errs = append(errs, g.host.close())
	return errors.Join(errs...)
}

// Stats reads the counters, summed over CPUs. Safe to call while Run is going.
func (g *UDPGenerator) Stats() (Stats, error) {
	states, err := g.workerStates()
	if err != nil {
		return Stats{}, err
	}
	egress, err := g.host.egressSinceStart()
	if err != nil {
		return Stats{}, err
	}
	s := Stats{At: time.Now(), Egress: egress}
	for _, st := range states {
		for a, c := range st.Actions {
			s.Actions[a] = s.Actions[a].add(Counter{Packets: c.Packets, Bytes: c.Bytes})
		}
	}
	return s, nil
}

func (g *UDPGenerator) workerStates() ([]bpf.WorkerState, error) {
	var states []bpf.WorkerState
	if err := g.objs.Workers.Lookup(uint32(0), &states); err != nil {
		return nil, fmt.Errorf("read worker counters: %w", err)
	}
	return states, nil
}

// Run generates until the packet count is reached, the duration is up, or ctx is cancelled, and returns
// promptly (a few milliseconds) after any of them. It returns ctx's error when ctx ended the run.
func (g *UDPGenerator) Run(ctx context.Context) error {
	if err := g.initWorkers(); err != nil {
		return err
	}
	workers := startWorkers(g.target.CPUs, liveFrameJob{program: g.program, frame: g.template.Frame, ns: g.host.ns, budget: g.budget})
	// Each worker's duration counts from its first frame: the kernel takes tens of milliseconds to start a
	// run, and the rate over the duration must hold for every worker.
	err := supervise(ctx, workers, func() (func(*liveFrameWorker) bool, error) {
		if ctx.Err() != nil {
			return stopEvery, nil
		}
		states, err := g.workerStates()
		if err != nil {
			return nil, err
		}
		return func(w *liveFrameWorker) bool { return w.finished(states[w.cpu], g.cfg.Duration) }, nil
	})
	if err == nil {
		err = ctx.Err()
	}
	return err
}

// budget is how many frames the worker on cpu may run in its next call: none once its share is sent.
func (g *UDPGenerator) budget(cpu int) (uint64, error) {
	states, err := g.workerStates()
	if err != nil {
		return 0, err
	}
	st := states[cpu]
	if st.Emitted >= st.Limit {
		return 0, nil
	}
	if g.cfg.ratePPS() == 0 {
		// Every frame is sent, so the call can end exactly at the limit.
		return min(maxRepeat, st.Limit-st.Emitted), nil
	}
	return maxRepeat, nil
}

// finished reports whether the worker has sent its share or, with a duration, run for it since its first frame.
func (w *liveFrameWorker) finished(st bpf.WorkerState, d time.Duration) bool {
	if st.Emitted >= st.Limit {
		return true
	}
	if d == 0 {
		return false
	}
	if w.firstFrame.IsZero() {
		for _, c := range st.Actions {
			if c.Packets > 0 {
				w.firstFrame = time.Now()
				break
			}
		}
		return false
	}
	return time.Since(w.firstFrame) >= d
}

// initWorkers gives each worker's CPU its share of the packet count (all of it: no limit).
func (g *UDPGenerator) initWorkers() error {
	states := make([]bpf.WorkerState, ebpf.MustPossibleCPU())
	for i, cpu := range g.target.CPUs {
		states[cpu].Limit = math.MaxUint64
		if n := g.cfg.Packets; n > 0 {
			share := n / uint64(len(g.target.CPUs))
			if uint64(i) < n%uint64(len(g.target.CPUs)) {
				share++
			}
			states[cpu].Limit = share
		}
	}
	if err := g.objs.Workers.Put(uint32(0), states); err != nil {
		return fmt.Errorf("set worker limits: %w", err)
	}
	return nil
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
