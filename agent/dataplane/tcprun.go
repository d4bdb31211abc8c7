package dataplane

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/cilium/ebpf"

	"github.com/xdpgen/xdpgen/bpf"
)

// Run sends until the segment count is acknowledged, the duration is up, or ctx is cancelled; then it lets
// what is in flight be acknowledged (for at most a couple of seconds), stops the workers, and closes every
// connection with a FIN. It returns ctx's error when ctx ended the run, and an error naming the flow when the
// peer reset a connection or stopped acknowledging. Run may be called once.
func (g *TCPGenerator) Run(ctx context.Context) error {
	if g.ran {
		return errors.New("a TCP generator runs once: make a new one")
	}
	g.ran = true
	if err := g.initRun(); err != nil {
		return err
	}
	r := &tcpRun{g: g, ctx: ctx}
	workers := startWorkers(g.target.CPUs, liveFrameJob{program: g.objs.Send, frame: g.template.Frame, ns: g.host.ns,
		budget: func(int) (uint64, error) { return maxRepeat, nil }})
	err := supervise(ctx, workers, r.poll)
	var sched SchedTimes
	for _, w := range workers {
		sched = sched.add(w.sched)
	}
	g.workersSched.Store(&sched)
	err = errors.Join(err, r.err, g.handBackAll())
	if err == nil {
		err = ctx.Err()
	}
	return err
}

// initRun spreads the flows over the workers (flow i to worker i mod threads) and sets where each flow's new
// data ends.
func (g *TCPGenerator) initRun() error {
	threads := len(g.target.CPUs)
	workers := make([]bpf.TCPWorker, ebpf.MustPossibleCPU())
	for i, cpu := range g.target.CPUs {
		workers[cpu] = bpf.TCPWorker{First: uint32(i), Stride: uint32(threads), Count: uint32((len(g.conns) - i + threads - 1) / threads)}
	}
	if err := g.objs.Workers.Put(uint32(0), workers); err != nil {
		return fmt.Errorf("set up the workers: %w", err)
	}
	for i := range g.conns {
		if err := g.setControl(i, bpf.TCPFlowCtl{End: g.flowEnd(i)}); err != nil {
			return err
		}
	}
	return nil
}

// flowEnd is the stream offset flow i's new data stops at: its share of the segments.
func (g *TCPGenerator) flowEnd(i int) uint64 {
	n := g.cfg.Segments
	if n == 0 {
		return math.MaxUint64
	}
	share := n / uint64(len(g.conns))
	if uint64(i) < n%uint64(len(g.conns)) {
		share++
	}
	return share * uint64(g.mss)
}

func (g *TCPGenerator) setControl(i int, ctl bpf.TCPFlowCtl) error {
	if err := g.objs.Control.Update(uint32(i), ctl, ebpf.UpdateExist); err != nil {
		return fmt.Errorf("control flow %d: %w", i, err)
	}
	return nil
}

const (
	// tcpDrainTimeout bounds how long the end of a run waits for what is in flight to be acknowledged.
	tcpDrainTimeout = 2 * time.Second
	// tcpPollInterval is how often the supervisor reads the flows.
	tcpPollInterval = 10 * time.Millisecond
)

// tcpRun is the supervisor's view of a run: sending, then draining what is in flight, then done.
type tcpRun struct {
	g   *TCPGenerator
	ctx context.Context
	// draining: no new data; the workers run until what is in flight is acknowledged or drainBy passes.
	draining bool
	drainBy  time.Time
	// firstFrame is when the supervisor first saw a segment sent: a duration counts from it.
	firstFrame time.Time
	lastPoll   time.Time
	// err is why the run failed, returned once the connections are closed.
	err error
}

// poll reads the flows every tcpPollInterval and moves the run along.
func (r *tcpRun) poll() (func(*liveFrameWorker) bool, error) {
	now := time.Now()
	if now.Sub(r.lastPoll) < tcpPollInterval && r.ctx.Err() == nil {
		return keepRunning, nil
	}
	r.lastPoll = now
	flows, err := r.g.readFlows()
	if err != nil {
		return nil, err
	}
	if r.draining {
		if now.After(r.drainBy) || drained(flows) {
			return stopEvery, nil
		}
		return keepRunning, nil
	}

	if r.firstFrame.IsZero() {
		for _, f := range flows {
			if f.SegsSent > 0 {
				r.firstFrame = now
			}
		}
	}
	for i, f := range flows {
		if f.State == bpf.TCPFlowReset {
			r.err = fmt.Errorf("flow %d (%s -> %s): %w after %d bytes were acknowledged", i, r.g.conns[i].local, r.g.conns[i].remote,
				ErrPeerReset, f.SndUna)
			return r.drain(now)
		}
		if err := r.g.stalled(i, f); err != nil {
			// The peer is gone or not reading: waiting for what is in flight would only wait longer.
			r.err = err
			return stopEvery, nil
		}
	}
	switch {
	case r.ctx.Err() != nil:
		return r.drain(now)
	case r.g.cfg.Duration > 0 && !r.firstFrame.IsZero() && now.Sub(r.firstFrame) >= r.g.cfg.Duration:
		return r.drain(now)
	case r.g.cfg.Segments > 0 && r.allSent(flows):
		return stopEvery, nil
	}
	return keepRunning, nil
}

// drain stops new data on every flow; the workers keep running to recover losses until all is acknowledged.
func (r *tcpRun) drain(now time.Time) (func(*liveFrameWorker) bool, error) {
	r.draining, r.drainBy = true, now.Add(tcpDrainTimeout)
	for i := range r.g.conns {
		if err := r.g.setControl(i, bpf.TCPFlowCtl{End: r.g.flowEnd(i), Stop: 1}); err != nil {
			return nil, err
		}
	}
	return keepRunning, nil
}

func drained(flows []bpf.TCPFlow) bool {
	for _, f := range flows {
		if f.State == bpf.TCPFlowRunning && f.SndUna < f.SndMax {
			return false
		}
	}
	return true
}

// allSent: every flow's share is acknowledged.
func (r *tcpRun) allSent(flows []bpf.TCPFlow) bool {
	for i, f := range flows {
		if f.State == bpf.TCPFlowRunning && f.SndUna < r.g.flowEnd(i) {
			return false
		}
	}
	return true
}

// stalled says why flow i makes no progress, when it has had data to send and no acknowledgement for the
// stall timeout.
func (g *TCPGenerator) stalled(i int, f bpf.TCPFlow) error {
	if f.State != bpf.TCPFlowRunning || (f.SndUna >= f.SndMax && f.SndUna >= g.flowEnd(i)) {
		return nil
	}
	idle := time.Duration(monotonicNow() - f.ProgressAt)
	if idle < g.cfg.StallTimeout {
		return nil
	}
	c := g.conns[i]
	if f.SndUna >= f.SndMax && f.PeerWnd < uint32(g.mss) {
		return fmt.Errorf("flow %d (%s -> %s): the peer's receive window stayed closed for %s: its application is not reading",
			i, c.local, c.remote, idle.Round(time.Millisecond))
	}
	return fmt.Errorf("flow %d (%s -> %s): the peer acknowledged nothing for %s (%d retransmission timeouts): it is gone or unreachable",
		i, c.local, c.remote, idle.Round(time.Millisecond), f.Timeouts)
}
