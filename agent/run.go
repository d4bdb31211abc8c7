package agent

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/xdpgen/xdpgen/agent/dataplane/netnsthread"
	xdpgenv1alpha1 "github.com/xdpgen/xdpgen/api/v1alpha1"
)

// finalWriteTimeout bounds how long the agent keeps retrying its last report when it is shutting down.
const finalWriteTimeout = 5 * time.Second

// execute is one run of one generation on this node, from the first report to the last: sending, receiving, or
// both (a receiver's run ends once its paths settle, after its own sending if it sends too).
func (a *Agent) execute(ctx context.Context, tg *xdpgenv1alpha1.TrafficGenerator, roles roles, m *metrics) {
	logger := log.FromContext(ctx).WithValues("generation", tg.Generation)
	pins := a.pinsOf(tg)
	defer func() {
		if runIsOver(context.Cause(ctx)) {
			pins.remove(ctx)
		}
	}()
	var rep *xdpgenv1alpha1.NodeReport
	for backoff := time.Second; ; backoff = min(2*backoff, 30*time.Second) {
		var err error
		if rep, err = a.ensureReport(ctx, tg); err == nil {
			break
		}
		// Nothing is sent before the node can report it: wait for the API server.
		logger.Info("cannot create or read this node's NodeReport; retrying", "error", err.Error(), "in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
	}
	w := &reportWriter{client: a.client, report: rep, metrics: m}
	st := rep.Status
	earlierPaths := st.Sent
	pinned, havePins, err := pins.counters()
	if err != nil {
		logger.Error(err, "cannot read the counters pinned by an earlier agent: resuming from the report")
	}
	var (
		done    progress
		resumed bool
	)
	switch {
	case st.Generation == tg.Generation && st.Trial == tg.TrialNumber() && st.Phase.Terminal():
		logger.Info("this node already finished this generation", "phase", st.Phase)
		m.set(st)
		return
	case st.Generation == tg.Generation && st.Trial == tg.TrialNumber() && (st.StartTime != nil || havePins):
		// An earlier incarnation of the agent was sending: finish its run instead of starting over. What it
		// pinned is exact; its report may be up to an interval behind.
		if havePins {
			// The frames per verdict are; the rest (connections, sizes, egress drops) are the report's last known.
			earlier := earlierCountsOf(st)
			earlier.frames = pinned
			st = statusWith(st, earlier, stats{}, stats{})
		}
		done, resumed = progress{packets: uint64(st.Packets)}, true
		if st.StartTime != nil {
			done.running = time.Since(st.StartTime.Time)
		}
		st.Restarts++
		st.Message = fmt.Sprintf("agent restarted (%s) after %d packets: finishing the run", a.opts.PodName, st.Packets)
	default:
		if havePins {
			pins.remove(ctx) // of an incarnation that never reported this generation: it sent nothing
		}
		st = xdpgenv1alpha1.NodeReportStatus{Generation: tg.Generation, Trial: tg.TrialNumber(), Phase: xdpgenv1alpha1.PhasePending,
			Message: "preparing: resolving the interface, the addresses and the destination MAC"}
	}
	base := earlierCountsOf(st)
	w.write(ctx, st)

	fail := func(err error) {
		st = withoutRates(st)
		st.Phase, st.Message, st.CompletionTime = xdpgenv1alpha1.PhaseFailed, err.Error(), now()
		w.writeFinal(ctx, st)
		logger.Info("run failed", "reason", err.Error())
	}

	var rcv *receiving
	if roles.receive {
		// Before sending: the frames of the fastest sender, this node's own included, must find it attached.
		if rcv, err = a.startReceiving(ctx, tg); err != nil {
			fail(err)
			return
		}
		defer rcv.stop()
		// The senders wait for this before they send here. Its paths start at zero: their counters are there
		// before the first frame arrives, so that increase() and rate() see every frame.
		st.ReceiveStartTime, st.Message = now(), rcv.receivingNote()
		st.Received, _ = rcv.rows(ctx, time.Now())
		w.write(ctx, st)
	}
	if !roles.send {
		if st.StartTime == nil {
			st.StartTime = now()
		}
		st.Phase, st.Message = xdpgenv1alpha1.PhaseRunning, rcv.receivingNote()
		w.write(ctx, st)
		a.receiveUntilSettled(ctx, w, st, rcv, "")
		return
	}

	// Only what this node sends is checked: receivers' addresses are their Nodes'.
	if err := refuseSpecialAddresses(ctx, a.client, tg); err != nil {
		fail(err)
		return
	}

	plan := enginePlan{done: done}
	if tg.Spec.Replay != nil {
		if plan.capture, err = a.replayCapture(ctx, tg); err != nil {
			fail(err)
			return
		}
	}
	var snd *sendingPaths
	if tg.Spec.Receivers != nil {
		if snd, err = a.planPaths(ctx, tg); err != nil {
			fail(err)
			return
		}
		defer snd.stop()
		if !snd.waitForReceivers(ctx, a, tg) {
			return // stopped while waiting
		}
		if len(snd.receivers) == 0 {
			st.StartTime, st.SendCompletionTime, st.Message = now(), now(), snd.nothingToSendNote()
			if rcv != nil {
				st.Phase, st.Message = xdpgenv1alpha1.PhaseRunning, joinNonEmpty(st.Message, rcv.receivingNote())
				w.write(ctx, st)
				a.receiveUntilSettled(ctx, w, st, rcv, snd.nothingToSendNote())
				return
			}
			st.Phase, st.CompletionTime = xdpgenv1alpha1.PhaseCompleted, now()
			w.writeFinal(ctx, st)
			return
		}
		if resumed && havePins {
			if pinned, err := pins.streams(); err != nil {
				logger.Error(err, "cannot read the streams pinned by an earlier agent: its receivers will count the repeated sequence numbers as duplicates")
			} else {
				snd.continueFrom(pinned, sentAddrs(earlierPaths))
			}
		}
		plan.receivers, plan.stamp = snd.receivers, snd.stamp
	}
	cpus, shared, err := a.cpus.take(max(1, int(tg.Spec.Threads)))
	if err != nil {
		fail(err)
		return
	}
	defer a.cpus.release(cpus)
	plan.cpus = cpus
	var gen engine
	err = a.inEngineNetNS(func() (err error) {
		gen, err = a.newEngine(ctx, &tg.Spec, plan)
		return err
	})
	if errors.Is(err, errNothingLeft) {
		st.Phase, st.Message, st.CompletionTime = xdpgenv1alpha1.PhaseCompleted, "sent everything before the agent restarted", now()
		w.writeFinal(ctx, st)
		return
	}
	if err != nil {
		fail(userError(err))
		return
	}
	defer gen.Close()
	st.CPUs, st.CPUsShared = cpuList(cpus), shared
	if err := pins.pin(gen); err != nil {
		logger.Error(err, "cannot pin the run's counters: an agent killed mid-run would lose the counts of up to one report interval")
	}

	if at := tg.Spec.Start; at.Policy == xdpgenv1alpha1.StartAt && at.At != nil && st.StartTime == nil {
		st.Message = "ready: waiting to start at " + at.At.UTC().Format(time.RFC3339Nano)
		w.write(ctx, st)
		if !sleepUntil(ctx, at.At.Time) {
			w.stopped(ctx, st, base, gen, a.opts.PodName)
			return
		}
	}

	name, index := gen.Interface()
	if st.StartTime == nil {
		st.StartTime = now()
	}
	st.Phase = xdpgenv1alpha1.PhaseRunning
	sending := joinNonEmpty(fmt.Sprintf("sending on %s (ifindex %d): %s", name, index, gen.Flow()), sharedCPUsNote(cpus, shared),
		snd.missingNote())
	if st.Restarts == 0 {
		st.Message = sending
	}

	prev, err := gen.Stats()
	if err != nil {
		fail(err)
		return
	}
	// The dead-man switch: each report the API server takes confirms the run; without one for deadMan, the
	// node stops sending. A timer of its own, so that a write that hangs does not hold it back.
	deadMan := deadManTimeout(&tg.Spec)
	sendCtx, stopSending := context.WithCancelCause(ctx)
	defer stopSending(nil)
	watchdog := time.AfterFunc(deadMan, func() { stopSending(errDeadMan) })
	defer watchdog.Stop()
	w.confirmed = func() { watchdog.Reset(deadMan) }
	runErr := make(chan error, 1)
	go func() { runErr <- gen.Run(sendCtx) }()
	// Reported once sending: a write to the API server takes milliseconds to a hundred and more, which must not
	// come between a start time and the first frame (nodes given one start time begin together).
	w.write(ctx, st)
	logger.Info("sending", "interface", name, "flow", gen.Flow(), "cpus", st.CPUs)
	tick := time.NewTicker(a.opts.ReportInterval)
	defer tick.Stop()
	for {
		select {
		case err := <-runErr:
			if ctx.Err() != nil {
				w.stopped(ctx, st, base, gen, a.opts.PodName)
				return
			}
			if cur, serr := gen.Stats(); serr == nil {
				st = snd.withPaths(statusWith(st, base, cur, prev), cur)
			}
			if err != nil && errors.Is(context.Cause(sendCtx), errDeadMan) {
				st = withoutRates(st)
				st.Phase, st.CompletionTime = xdpgenv1alpha1.PhaseFailed, now()
				st.Message = fmt.Sprintf("stopped sending after %d packets: the agent could not write this report to the API "+
					"server for %s (spec.deadManTimeout), so nothing confirmed that the run was still wanted; change the spec "+
					"or recreate the TrafficGenerator to run again", st.Packets, deadMan)
				logger.Info("dead-man switch: stopped sending", "deadManTimeout", deadMan.String(), "packets", st.Packets)
				w.writeFinal(ctx, st) // once the API server is back
				return
			}
			if err != nil {
				fail(err)
				return
			}
			st = withoutRates(st)
			sent := joinNonEmpty(fmt.Sprintf("sent %d packets (%d bytes) on %s", st.Packets, st.Bytes, name), protocolNote(st),
				sharedCPUsNote(cpus, shared), restartNote(st.Restarts))
			if snd != nil {
				st.SendCompletionTime = now()
			}
			if rcv != nil {
				st.Message = joinNonEmpty(sent, rcv.receivingNote())
				w.write(ctx, st)
				a.receiveUntilSettled(ctx, w, st, rcv, sent)
				return
			}
			st.Phase, st.CompletionTime, st.Message = xdpgenv1alpha1.PhaseCompleted, now(), sent
			w.writeFinal(ctx, st)
			logger.Info("run completed", "packets", st.Packets)
			return
		case <-tick.C:
			cur, err := gen.Stats()
			if err != nil {
				continue
			}
			st = snd.withPaths(statusWith(st, base, cur, prev), cur)
			if rcv != nil {
				st.Received, _ = rcv.rows(ctx, time.Now())
			}
			st.Message = joinNonEmpty(sending, protocolNote(st), cur.frames.EgressDrops(), restartNote(st.Restarts))
			prev = cur
			w.write(ctx, st)
		}
	}
}

// errDeadMan stops sending when the API server has not taken a report for spec.deadManTimeout.
var errDeadMan = errors.New("the dead-man switch tripped")

// deadManTimeout is the spec's dead-man timeout, or its default for a spec the API server did not default.
func deadManTimeout(spec *xdpgenv1alpha1.TrafficGeneratorSpec) time.Duration {
	if spec.DeadManTimeout == nil || spec.DeadManTimeout.Duration <= 0 {
		return xdpgenv1alpha1.DefaultDeadManTimeout
	}
	return spec.DeadManTimeout.Duration
}

// inEngineNetNS runs fn where the engine sends from.
func (a *Agent) inEngineNetNS(fn func() error) error {
	if a.opts.NetNS > 0 { // 0 (the zero Options) and -1 (netns.None) both mean the agent's own namespace
		return netnsthread.Do(a.opts.NetNS, fn)
	}
	return fn()
}

// ensureReport returns this node's report for the TrafficGenerator, creating it (owned by the generator, so
// that it goes when the generator goes) or taking over one left by a generator of the same name.
func (a *Agent) ensureReport(ctx context.Context, tg *xdpgenv1alpha1.TrafficGenerator) (*xdpgenv1alpha1.NodeReport, error) {
	want := nodeReportFor(tg, a.opts.NodeName)
	err := a.client.Create(ctx, want)
	if err == nil || !apierrors.IsAlreadyExists(err) {
		return want, err
	}
	var have xdpgenv1alpha1.NodeReport
	if err := a.client.Get(ctx, client.ObjectKeyFromObject(want), &have); err != nil {
		return nil, err
	}
	if owned := have.OwnerReferences; len(owned) == 1 && owned[0].UID == tg.UID {
		return &have, nil
	}
	// Left by a deleted generator of the same name that the garbage collector has not removed yet. Clear its
	// status on the server first: the agent's writes are merge patches, which would keep whatever of the old run
	// (start time, packets, restarts) they do not overwrite. The controller ignores the report until it carries
	// the new owner, by then with an empty status.
	have.Status = xdpgenv1alpha1.NodeReportStatus{}
	if err := a.client.Status().Update(ctx, &have); err != nil {
		return nil, err
	}
	have.OwnerReferences = want.OwnerReferences
	if err := a.client.Update(ctx, &have); err != nil {
		return nil, err
	}
	return &have, nil
}

// nodeReportFor is the NodeReport of one node for one TrafficGenerator, before any status.
func nodeReportFor(tg *xdpgenv1alpha1.TrafficGenerator, node string) *xdpgenv1alpha1.NodeReport {
	return &xdpgenv1alpha1.NodeReport{
		ObjectMeta: metav1.ObjectMeta{
			Name:      xdpgenv1alpha1.NodeReportName(tg.Name, node),
			Namespace: tg.Namespace,
			Labels: map[string]string{
				xdpgenv1alpha1.LabelGenerator: xdpgenv1alpha1.LabelValue(tg.Name),
				xdpgenv1alpha1.LabelNode:      xdpgenv1alpha1.LabelValue(node),
			},
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: xdpgenv1alpha1.GroupVersion.String(), Kind: "TrafficGenerator",
				Name: tg.Name, UID: tg.UID,
			}},
		},
		Spec: xdpgenv1alpha1.NodeReportSpec{Generator: tg.Name, NodeName: node},
	}
}

// restartNote says that the run survived agent restarts, if it did.
func restartNote(restarts int32) string {
	if restarts == 0 {
		return ""
	}
	return fmt.Sprintf("the agent restarted %d time(s) during the run and resumed each time", restarts)
}

// joinNonEmpty joins the parts of a message that say something.
func joinNonEmpty(parts ...string) string {
	var out []string
	for _, p := range parts {
		if p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, "; ")
}

func sleepUntil(ctx context.Context, t time.Time) bool {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
		return true
	}
}

func now() *metav1.Time {
	t := metav1.Now()
	return &t
}
