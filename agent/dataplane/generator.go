package dataplane

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/rlimit"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/xdpgen/xdpgen/agent/dataplane/netnsthread"
	"github.com/xdpgen/xdpgen/bpf"
)

// Generator sends one UDP flow (or a range of ports) as XDP live frames from pinned workers.
// Make one with NewGenerator, Run it once, and Close it.
type Generator struct {
	cfg      Config
	target   target
	template udpTemplate
	objs     *bpf.Generator
	// program is what the workers run: the UDP generator, or in benchmarks the no-touch ceiling (package bpftest).
	program *ebpf.Program
	// host is the namespace, netlink sockets and egress interface state the generator holds.
	host *sendingHost
}

// NewGenerator validates cfg against this host, builds the frame, loads the programs and readies the egress
// interface. It works in the calling thread's network namespace (netnsthread.Do picks another).
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

	clockBase := monotonicNow()
	objs, err := bpf.LoadGenerator(bpf.UDPConfig{
		Ifindex:      uint32(tgt.Ifindex),
		UdpOffset:    uint16(tmpl.UDPOffset),
		UdpCheck:     tmpl.UDPCheck,
		DstPort:      cfg.DstPort,
		DstPortCount: cfg.DstPortCount,
		SrcPort:      cfg.SrcPort,
		SrcPortCount: cfg.SrcPortCount,
		PaceInterval: paceInterval(cfg.ratePPS(), cfg.Threads),
		ClockBase:    clockBase,
	})
	if err != nil {
		return nil, privilegeHint(err)
	}
	g := &Generator{cfg: cfg, target: tgt, template: tmpl, objs: objs, program: objs.UDP}
	if g.host, err = openSendingHost(tgt); err != nil {
		g.Close()
		return nil, err
	}
	if err := g.host.prepareEgress(objs.Pass); err != nil {
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
	if g.objs != nil {
		errs = append(errs, g.objs.Close())
		g.objs = nil
	}
	errs = append(errs, g.host.close())
	return errors.Join(errs...)
}

// Stats reads the counters, summed over CPUs. Safe to call while Run is going.
func (g *Generator) Stats() (Stats, error) {
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

func (g *Generator) workerStates() ([]bpf.WorkerState, error) {
	var states []bpf.WorkerState
	if err := g.objs.Workers.Lookup(uint32(0), &states); err != nil {
		return nil, fmt.Errorf("read worker counters: %w", err)
	}
	return states, nil
}

// Run generates until the packet count is reached, the duration is up, or ctx is cancelled, and returns
// promptly (a few milliseconds) after any of them. It returns ctx's error when ctx ended the run.
func (g *Generator) Run(ctx context.Context) error {
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
func (g *Generator) budget(cpu int) (uint64, error) {
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

// liveFrameJob is what pinned workers run: one program over one frame, in one network namespace.
type liveFrameJob struct {
	program *ebpf.Program
	frame   []byte
	ns      netns.NsHandle
	// budget is how many frames the worker on cpu may run in its next call; 0 ends the worker.
	budget func(cpu int) (uint64, error)
}

// startWorkers starts one worker per CPU.
func startWorkers(cpus []int, job liveFrameJob) []*liveFrameWorker {
	workers := make([]*liveFrameWorker, len(cpus))
	for i, cpu := range cpus {
		workers[i] = &liveFrameWorker{cpu: cpu, done: make(chan struct{})}
		go workers[i].run(job)
	}
	return workers
}

// supervise waits for the workers. Every superviseInterval (and at once when ctx ends) it polls, and stops
// each worker the poll says to stop; a poll error or a worker's error stops all of them, and is returned once
// they are done. What ctx ending means is the poll's business: it may stop everything, or wind down first.
func supervise(ctx context.Context, workers []*liveFrameWorker, poll func() (stop func(*liveFrameWorker) bool, err error)) error {
	tick := time.NewTicker(superviseInterval)
	defer tick.Stop()
	cancelled := ctx.Done()
	stopAll := false
	var pollErr error
	for {
		select {
		case <-cancelled:
			cancelled = nil // wakes the loop once; the poll sees ctx.Err() from then on
		case <-tick.C:
		}
		stop := stopEvery
		if !stopAll {
			var err error
			if stop, err = poll(); err != nil {
				pollErr, stopAll, stop = err, true, stopEvery
			}
		}
		running := 0
		var errs []error
		for _, w := range workers {
			select {
			case <-w.done:
				errs = append(errs, w.err)
				continue
			default:
			}
			running++
			if stop(w) {
				w.stop()
			}
		}
		if err := errors.Join(append(errs, pollErr)...); err != nil {
			stopAll = true
			if running == 0 {
				return err
			}
		}
		if running == 0 {
			return nil
		}
	}
}

// stopEvery is a poll's answer that stops every worker.
func stopEvery(*liveFrameWorker) bool { return true }

// superviseInterval is how often a run checks its workers: the bound on how late a stop is.
const superviseInterval = 2 * time.Millisecond

// maxRepeat bounds one BPF_PROG_RUN call; calls are ended by a signal long before it is reached.
const maxRepeat = 1 << 30

// liveFrameWorker loops BPF_PROG_RUN on one pinned CPU until it is stopped or its share is sent.
type liveFrameWorker struct {
	cpu int
	// firstFrame is when the supervisor first saw this worker's counters move.
	firstFrame time.Time
	tid        atomic.Int32
	stopping   atomic.Bool
	done       chan struct{}
	err        error
}

func (w *liveFrameWorker) run(job liveFrameJob) {
	defer close(w.done)
	// The thread's affinity and namespace are changed for good: it stays locked and dies with the goroutine.
	runtime.LockOSThread()
	var set unix.CPUSet
	set.Set(w.cpu)
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		w.err = fmt.Errorf("pin worker to cpu %d: %w", w.cpu, err)
		return
	}
	if err := netnsthread.Enter(job.ns); err != nil {
		w.err = err
		return
	}
	w.tid.Store(int32(unix.Gettid()))

	for !w.stopping.Load() {
		repeat, err := job.budget(w.cpu)
		if err != nil {
			w.err = err
			return
		}
		if repeat == 0 {
			return
		}
		if err := runLiveFrames(job.program, job.frame, uint32(min(repeat, maxRepeat))); err != nil && !errors.Is(err, errInterrupted) {
			w.err = fmt.Errorf("live-frame run on cpu %d: %w", w.cpu, err)
			return
		}
	}
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

// stop ends the worker's run: the flag stops the loop, the signal interrupts the call it is in. The supervisor
// calls it again until the worker is done, in case the signal came before the call.
func (w *liveFrameWorker) stop() {
	w.stopping.Store(true)
	if tid := w.tid.Load(); tid != 0 {
		_ = unix.Tgkill(unix.Getpid(), int(tid), unix.SIGURG) // the Go runtime ignores a SIGURG it did not ask for
	}
}

// initWorkers gives each worker's CPU its share of the packet count (all of it: no limit).
func (g *Generator) initWorkers() error {
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

// monotonicNow is CLOCK_MONOTONIC in ns, the clock bpf_ktime_get_ns reads.
func monotonicNow() uint64 {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return uint64(ts.Nano())
}
