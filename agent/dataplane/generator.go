package dataplane

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/rlimit"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/xdpgen/xdpgen/bpf"
)

// Batch bounds for one BPF_PROG_RUN call. A worker adapts its batch so that a call lasts about
// targetRunTime: long enough that the syscall costs nothing, short enough that a stop is prompt.
const (
	minBatch      = 64
	maxBatch      = 1 << 22
	targetRunTime = 10 * time.Millisecond
)

// Generator sends one UDP flow (or a range of ports) as XDP live frames from pinned workers.
// Make one with NewGenerator, Run it once, and Close it.
type Generator struct {
	cfg      Config
	target   target
	template udpTemplate
	objs     *bpf.Generator
	// program is what the workers run: the UDP generator, or the no-touch ceiling in benchmarks.
	program *ebpf.Program
	egress  *egress
	// ns is the network namespace NewGenerator was called in: live frames redirect to an ifindex of the
	// calling thread's namespace, so every worker enters it.
	ns netns.NsHandle
}

// NewGenerator validates cfg against this host, builds the frame, loads the programs and readies the egress
// interface. It works in the calling thread's network namespace.
func NewGenerator(cfg Config) (*Generator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	tgt, err := resolveTarget(cfg)
	if err != nil {
		return nil, err
	}
	tmpl, err := buildUDPTemplate(tgt.Flow)
	if err != nil {
		return nil, err
	}
	if err := probeLiveFrames(); err != nil {
		return nil, err
	}
	_ = rlimit.RemoveMemlock() // only kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK

	objs, err := bpf.LoadGenerator(bpf.UDPConfig{
		Ifindex:      uint32(tgt.Ifindex),
		UdpOffset:    uint16(tmpl.UDPOffset),
		UdpCheck:     tmpl.UDPCheck,
		DstPort:      cfg.DstPort,
		DstPortCount: cfg.DstPortCount,
		SrcPort:      cfg.SrcPort,
		SrcPortCount: cfg.SrcPortCount,
	})
	if err != nil {
		return nil, privilegeHint(err)
	}
	g := &Generator{cfg: cfg, target: tgt, template: tmpl, objs: objs, program: objs.UDP}
	if g.ns, err = netns.Get(); err != nil {
		g.Close()
		return nil, fmt.Errorf("current network namespace: %w", err)
	}
	if g.egress, err = prepareEgress(tgt.Link, objs.Pass); err != nil {
		g.Close()
		return nil, err
	}
	return g, nil
}

// Interface is the egress interface's name and index.
func (g *Generator) Interface() (string, int) {
	return g.target.Link.Attrs().Name, g.target.Ifindex
}

// Flow describes what is sent, for a human.
func (g *Generator) Flow() string {
	f := g.target.Flow
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
func (g *Generator) Close() error {
	var errs []error
	if g.egress != nil {
		errs = append(errs, g.egress.close())
		g.egress = nil
	}
	if g.objs != nil {
		errs = append(errs, g.objs.Close())
		g.objs = nil
	}
	if g.ns.IsOpen() {
		errs = append(errs, g.ns.Close())
	}
	return errors.Join(errs...)
}

// Stats reads the counters, summed over CPUs. Safe to call while Run is going.
func (g *Generator) Stats() (Stats, error) {
	states, err := g.workerStates()
	if err != nil {
		return Stats{}, err
	}
	s := Stats{At: time.Now()}
	for _, st := range states {
		for a, c := range st.Actions {
			s.Actions[a] = s.Actions[a].add(Counter{Packets: c.Packets, Bytes: c.Bytes})
		}
	}
	return s, nil
}

func (g *Generator) workerStates() ([]bpf.WorkerState, error) {
	var states []bpf.WorkerState
	if err := g.objs.Workers.Lookup(uint32(0), &states); err != nil {
		return nil, fmt.Errorf("read worker counters: %w", err)
	}
	return states, nil
}

// Run generates until the packet count is reached, the duration is up, or ctx is cancelled, and returns
// within a worker's batch time (about 10 ms) of any of them. It returns ctx's error when ctx ended the run.
func (g *Generator) Run(ctx context.Context) error {
	if err := g.setLimits(); err != nil {
		return err
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	if g.cfg.Duration > 0 {
		runCtx, cancel = context.WithTimeout(runCtx, g.cfg.Duration)
		defer cancel()
	}

	ratePerWorker := g.cfg.ratePPS() / float64(len(g.target.CPUs))
	errs := make([]error, len(g.target.CPUs))
	var wg sync.WaitGroup
	for i, cpu := range g.target.CPUs {
		wg.Go(func() {
			errs[i] = g.work(runCtx, cpu, ratePerWorker)
			if errs[i] != nil {
				cancel() // one worker failing ends the run
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return ctx.Err()
}

// setLimits gives each worker's CPU its share of the packet count (all of it: no limit).
func (g *Generator) setLimits() error {
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

// work is one live-frame worker: it pins its thread to cpu, enters the generator's namespace and loops
// BPF_PROG_RUN until its CPU's limit is reached or ctx ends. ratePPS caps this worker (0: no cap).
func (g *Generator) work(ctx context.Context, cpu int, ratePPS float64) error {
	// The thread's affinity and namespace are changed for good: it stays locked and dies with the goroutine.
	runtime.LockOSThread()
	var set unix.CPUSet
	set.Set(cpu)
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		return fmt.Errorf("pin worker to cpu %d: %w", cpu, err)
	}
	if err := netns.Set(g.ns); err != nil {
		return fmt.Errorf("enter network namespace: %w", err)
	}

	opts := ebpf.RunOptions{Data: g.template.Frame, Flags: unix.BPF_F_TEST_XDP_LIVE_FRAMES}
	batch := uint64(minBatch)
	start := time.Now()
	for ctx.Err() == nil {
		states, err := g.workerStates()
		if err != nil {
			return err
		}
		st := states[cpu]
		if st.Emitted >= st.Limit {
			return nil
		}
		n := min(batch, st.Limit-st.Emitted)
		if ratePPS > 0 {
			due := uint64(ratePPS * time.Since(start).Seconds())
			if due <= st.Emitted {
				// Sleep until the next frame is due; the target is recomputed from the start, so sleep
				// jitter never accumulates.
				next := start.Add(time.Duration(float64(st.Emitted+1) / ratePPS * float64(time.Second)))
				sleep(ctx, time.Until(next))
				continue
			}
			n = min(n, due-st.Emitted)
		}

		opts.Repeat = uint32(n)
		began := time.Now()
		if _, err := g.program.Run(&opts); err != nil {
			return fmt.Errorf("live-frame run on cpu %d: %w", cpu, err)
		}
		batch = adaptBatch(batch, n, time.Since(began))
	}
	return nil
}

// adaptBatch steers the batch toward targetRunTime, judging only full batches.
func adaptBatch(batch, ran uint64, took time.Duration) uint64 {
	if ran < batch {
		return batch
	}
	switch {
	case took < targetRunTime/2 && batch < maxBatch:
		return batch * 2
	case took > targetRunTime*2 && batch > minBatch:
		return batch / 2
	}
	return batch
}

func sleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
