package dataplane

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/xdpgen/xdpgen/agent/dataplane/netnsthread"
	"github.com/xdpgen/xdpgen/bpf"
)

// liveFrameJob is what pinned workers run: one program over one frame, in one network namespace.
type liveFrameJob struct {
	program *ebpf.Program
	frame   []byte
	ns      netns.NsHandle
	// budget is how many frames the worker on cpu may run in its next call; 0 ends the worker.
	budget func(cpu int) (uint64, error)
	// ingress is the interface whose receive path takes the frames the program passes (0: none does).
	ingress int
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

func keepRunning(*liveFrameWorker) bool { return false }

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
	// sched is the scheduler's account of the worker's thread over its run, set before done closes.
	sched SchedTimes
}

// SchedTimes is the scheduler's account of threads: time on a CPU, and time runnable but waiting for one (a
// worker waits when other threads share its CPU; softirq work it triggers, such as a veth peer's receive
// path, runs on its time).
type SchedTimes struct {
	OnCPU   time.Duration `json:"onCPUNs"`
	Waiting time.Duration `json:"waitingNs"`
}

func (s SchedTimes) add(o SchedTimes) SchedTimes {
	return SchedTimes{OnCPU: s.OnCPU + o.OnCPU, Waiting: s.Waiting + o.Waiting}
}

// threadSchedTimes reads the calling thread's /proc/thread-self/schedstat; zero where the kernel keeps no
// scheduler statistics.
func threadSchedTimes() SchedTimes {
	b, err := os.ReadFile("/proc/thread-self/schedstat")
	if err != nil {
		return SchedTimes{}
	}
	var onCPU, waiting int64
	if _, err := fmt.Sscan(string(b), &onCPU, &waiting); err != nil {
		return SchedTimes{}
	}
	return SchedTimes{OnCPU: time.Duration(onCPU), Waiting: time.Duration(waiting)}
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
	began := threadSchedTimes()
	defer func() {
		ended := threadSchedTimes()
		w.sched = SchedTimes{OnCPU: ended.OnCPU - began.OnCPU, Waiting: ended.Waiting - began.Waiting}
	}()

	for !w.stopping.Load() {
		repeat, err := job.budget(w.cpu)
		if err != nil {
			w.err = err
			return
		}
		if repeat == 0 {
			return
		}
		if err := runLiveFrames(job.program, job.frame, uint32(min(repeat, maxRepeat)), job.ingress); err != nil && !errors.Is(err, errInterrupted) {
			w.err = fmt.Errorf("live-frame run on cpu %d: %w", w.cpu, err)
			return
		}
	}
}

// stop ends the worker's run: the flag stops the loop, the signal interrupts the call it is in. The supervisor
// calls it again until the worker is done, in case the signal came before the call.
func (w *liveFrameWorker) stop() {
	w.stopping.Store(true)
	if tid := w.tid.Load(); tid != 0 {
		_ = unix.Tgkill(unix.Getpid(), int(tid), unix.SIGURG) // the Go runtime ignores a SIGURG it did not ask for
	}
}

// readWorkerStates reads every CPU's WorkerState from a program's per-CPU worker map.
func readWorkerStates(m *ebpf.Map) ([]bpf.WorkerState, error) {
	var states []bpf.WorkerState
	if err := m.Lookup(uint32(0), &states); err != nil {
		return nil, fmt.Errorf("read worker counters: %w", err)
	}
	return states, nil
}

// runCountedWorkers writes states to a program's worker map, and runs job on cpus until each worker has sent its
// share (its state's Limit), or with a duration, for that long since its first frame, or until ctx ends; and
// returns promptly (a few milliseconds) after any of them, with ctx's error when ctx ended the run. paced says
// whether the program drops the frames that are not due yet (then a call's repeat cannot end at the limit).
func runCountedWorkers(ctx context.Context, m *ebpf.Map, states []bpf.WorkerState, paced bool, d time.Duration, job liveFrameJob, cpus []int) error {
	if err := m.Put(uint32(0), states); err != nil {
		return fmt.Errorf("set worker limits: %w", err)
	}
	job.budget = func(cpu int) (uint64, error) {
		states, err := readWorkerStates(m)
		if err != nil {
			return 0, err
		}
		return workerBudget(states[cpu], paced), nil
	}
	workers := startWorkers(cpus, job)
	// Each worker's duration counts from its first frame: the kernel takes tens of milliseconds to start a
	// run, and the rate over the duration must hold for every worker.
	err := supervise(ctx, workers, func() (func(*liveFrameWorker) bool, error) {
		if ctx.Err() != nil {
			return stopEvery, nil
		}
		states, err := readWorkerStates(m)
		if err != nil {
			return nil, err
		}
		return func(w *liveFrameWorker) bool { return w.finished(states[w.cpu], d) }, nil
	})
	if err == nil {
		err = ctx.Err()
	}
	return err
}

// workerBudget is how many frames a worker in state st may run in its next call: none once its share is sent.
func workerBudget(st bpf.WorkerState, paced bool) uint64 {
	if st.Emitted >= st.Limit {
		return 0
	}
	if !paced {
		// Every frame is sent, so the call can end exactly at the limit.
		return min(maxRepeat, st.Limit-st.Emitted)
	}
	return maxRepeat
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

// workerShares is the worker state of each CPU (indexed by CPU) before a run on cpus: each worker's stream index
// and its share of the packet count (all of it: no limit).
func workerShares(cpus []int, packets uint64) []bpf.WorkerState {
	states := make([]bpf.WorkerState, ebpf.MustPossibleCPU())
	for i, cpu := range cpus {
		states[cpu].Stream = uint32(i)
		states[cpu].Limit = math.MaxUint64
		if packets > 0 {
			share := packets / uint64(len(cpus))
			if uint64(i) < packets%uint64(len(cpus)) {
				share++
			}
			states[cpu].Limit = share
		}
	}
	return states
}
