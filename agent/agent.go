package agent

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/vishvananda/netns"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/xdpgen/xdpgen/agent/dataplane"
	xdpgenv1alpha1 "github.com/xdpgen/xdpgen/api/v1alpha1"
)

// Options say which node the agent runs on and how it runs and reports.
type Options struct {
	// NodeName is the node the agent runs on (the downward API's spec.nodeName).
	NodeName string
	// PodName names the agent's pod in messages.
	PodName string
	// ReportInterval is how often the agent writes a run's NodeReport while sending.
	ReportInterval time.Duration
	// NetNS is the network namespace the engine sends from; zero (or netns.None()) is the agent's own (the
	// host's, since agents run on the host network). Tests use it to run several agents on one machine.
	NetNS netns.NsHandle
	// CPUs are the CPUs runs may pin their threads to. Empty: every CPU the agent may run on.
	CPUs []int
	// PinDir is a directory on a bpffs where runs pin their counters (DefaultPinDir in a pod). Empty: nothing is
	// pinned, and an agent killed mid-run loses the counts of up to one report interval.
	PinDir string
}

// DefaultReportInterval keeps a thousand nodes' reports at a few hundred small writes per second.
const DefaultReportInterval = 2 * time.Second

// Why a run was stopped before it ended by itself.
var (
	errSpecChanged = errors.New("the TrafficGenerator's spec changed")
	errDeleted     = errors.New("the TrafficGenerator was deleted")
	errUnselected  = errors.New("the TrafficGenerator no longer selects this node")
	errShutdown    = errors.New("the agent is shutting down")
	errNextTrial   = errors.New("the search moved on to another trial")
)

// runIsOver says whether a run stopped for cause will never be taken up again by an agent on this node: its
// pinned counters can go. Only a run stopped with the agent (shutdown, or a kill) is taken up again.
func runIsOver(cause error) bool {
	return cause == nil || errors.Is(cause, errSpecChanged) || errors.Is(cause, errNextTrial) || errors.Is(cause, errDeleted) ||
		errors.Is(cause, errUnselected)
}

// Agent runs, on its node, every TrafficGenerator whose node selector picks the node, in any namespace, each
// in a run of its own: one generation at a time per generator, on CPUs of its own while the node has enough.
type Agent struct {
	opts    Options
	client  client.Client
	metrics *generatorMetrics
	cpus    *cpuAllocator
	// nodes reads Nodes from the API server: the agent caches only its own. A replay's ConfigMap is read through
	// it too (replayCapture), uncached.
	nodes client.Reader
	// newEngine readies the data plane for a run: the package's newEngine, or a fake in the run's unit tests.
	newEngine func(ctx context.Context, spec *xdpgenv1alpha1.TrafficGeneratorSpec, plan enginePlan) (engine, error)
	// receivers shares each interface's receive program among the runs that receive or time round trips there.
	receivers *receiverSet

	// base is the agent's lifetime: runs outlive the reconcile that starts them.
	base  context.Context
	ready chan struct{}
	mu    sync.Mutex
	runs  map[types.NamespacedName]*activeRun
}

// activeRun is a run in progress, or finished and kept so that its generation is not run twice.
type activeRun struct {
	uid        types.UID
	generation int64
	// trial is the search trial the run is, 0 for a generator without spec.search.
	trial  int32
	cancel context.CancelCauseFunc
	done   chan struct{}
}

// New makes an agent that writes through c and lists Nodes through nodes (uncached: the manager's API reader);
// add it to mgr with SetupWithManager.
func New(opts Options, c client.Client, nodes client.Reader) (*Agent, error) {
	if opts.ReportInterval <= 0 {
		opts.ReportInterval = DefaultReportInterval
	}
	if len(opts.CPUs) == 0 {
		var err error
		if opts.CPUs, err = dataplane.AllowedCPUs(); err != nil {
			return nil, err
		}
	}
	a := &Agent{opts: opts, client: c, nodes: nodes, metrics: newGeneratorMetrics(opts.NodeName), cpus: newCPUAllocator(opts.CPUs),
		newEngine: newEngine, ready: make(chan struct{}), runs: map[types.NamespacedName]*activeRun{}}
	a.receivers = &receiverSet{byInterface: map[string]*sharedReceiver{}, attach: func(ifname string) (rx rxEngine, err error) {
		err = a.inEngineNetNS(func() (err error) {
			rx, err = dataplane.AttachReceiver(ifname, dataplane.ReceiverOptions{})
			return err
		})
		return rx, err
	}}
	return a, nil
}

// SetupWithManager watches the TrafficGenerators and the agent's node, and runs the agent's lifetime with the
// manager's. A change of the node's labels looks at every generator again.
func (a *Agent) SetupWithManager(mgr ctrl.Manager) error {
	if err := mgr.Add(a); err != nil {
		return err
	}
	thisNode := predicate.NewPredicateFuncs(func(o client.Object) bool { return o.GetName() == a.opts.NodeName })
	return ctrl.NewControllerManagedBy(mgr).
		Named("agent").
		For(&xdpgenv1alpha1.TrafficGenerator{}, builder.WithPredicates(predicate.Or[client.Object](predicate.GenerationChangedPredicate{}, trialChanged))).
		Watches(&corev1.Node{}, handler.EnqueueRequestsFromMapFunc(a.everyGenerator),
			builder.WithPredicates(thisNode, predicate.LabelChangedPredicate{})).
		Complete(a)
}

// everyGenerator asks for every TrafficGenerator to be looked at again.
func (a *Agent) everyGenerator(ctx context.Context, _ client.Object) []reconcile.Request {
	var tgs xdpgenv1alpha1.TrafficGeneratorList
	if err := a.client.List(ctx, &tgs); err != nil {
		log.FromContext(ctx).Error(err, "cannot list the TrafficGenerators to match the node's new labels")
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(tgs.Items))
	for _, tg := range tgs.Items {
		reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&tg)})
	}
	return reqs
}

// Start holds the agent's lifetime. It first removes the pins of runs that ended while no agent ran; when it
// ends (SIGTERM), the runs in progress are stopped and reported.
func (a *Agent) Start(ctx context.Context) error {
	a.base = ctx
	if err := a.removeStalePins(ctx); err != nil {
		log.FromContext(ctx).Error(err, "cannot remove the pinned counters of runs that are over")
	}
	close(a.ready)
	<-ctx.Done()
	a.stopAll(errShutdown)
	return nil
}

// NeedLeaderElection: every node's agent runs.
func (a *Agent) NeedLeaderElection() bool { return false }

// Reconcile starts the run of the TrafficGenerator's current generation when it selects this node, stopping
// the run of an older one; or stops its run when it is gone or no longer selects the node.
func (a *Agent) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	select {
	case <-a.ready:
	case <-ctx.Done():
		return reconcile.Result{}, ctx.Err()
	}
	var tg xdpgenv1alpha1.TrafficGenerator
	if err := a.client.Get(ctx, req.NamespacedName, &tg); err != nil {
		if apierrors.IsNotFound(err) {
			a.stop(req.NamespacedName, errDeleted)
			a.metrics.forgetLater(req.NamespacedName)
			return reconcile.Result{}, nil
		}
		return reconcile.Result{}, err
	}
	roles, err := a.rolesOf(ctx, &tg)
	if err != nil {
		return reconcile.Result{}, err
	}
	if !roles.any() {
		if a.stop(req.NamespacedName, errUnselected) {
			log.FromContext(ctx).Info("stopped the run: the TrafficGenerator no longer selects this node")
		}
		a.pinsOf(&tg).remove(ctx) // of a run stopped with an agent before the node was relabelled
		return reconcile.Result{}, nil
	}

	run := &tg
	if tg.Spec.Search != nil {
		if tg.CurrentTrial() == nil || tg.Status.Search.Phase.Over() {
			// The controller has not started the search of this generation yet, or it is over: no trial to run
			// (an agent back after the search failed without it must not run its last trial).
			a.stop(req.NamespacedName, errSpecChanged)
			return reconcile.Result{}, nil
		}
		if run, err = a.trialRun(ctx, &tg); err != nil {
			return reconcile.Result{}, err
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	r := a.runs[req.NamespacedName]
	if r != nil && r.uid == tg.UID && r.generation == tg.Generation && r.trial == tg.TrialNumber() {
		return reconcile.Result{}, nil
	}
	if r != nil {
		cause := errSpecChanged
		switch {
		case r.uid != tg.UID:
			cause = errDeleted // and made again under the same name
		case r.generation == tg.Generation:
			cause = errNextTrial
		}
		r.cancel(cause)
		<-r.done
	}
	// Runs end only through cancel, so that the cause (shutdown, spec change, deletion) is always known.
	runCtx, cancel := context.WithCancelCause(context.WithoutCancel(a.base))
	r = &activeRun{uid: tg.UID, generation: tg.Generation, trial: tg.TrialNumber(), cancel: cancel, done: make(chan struct{})}
	a.runs[req.NamespacedName] = r
	m := a.metrics.forGenerator(req.NamespacedName)
	log.FromContext(ctx).Info("starting run", append([]any{"generation", tg.Generation}, trialNote(&tg)...)...)
	go func() {
		defer close(r.done)
		a.execute(log.IntoContext(runCtx, log.FromContext(ctx)), run, roles, m)
	}()
	return reconcile.Result{}, nil
}

// roles are what this node does in a generator's run: send, receive, or both.
type roles struct{ send, receive bool }

func (r roles) any() bool { return r.send || r.receive }

// rolesOf says what the generator's selectors make of this node, as its labels are now. A change of roles is
// a change of selection: it stops the run, as a spec change does, only if the node leaves the run altogether.
func (a *Agent) rolesOf(ctx context.Context, tg *xdpgenv1alpha1.TrafficGenerator) (roles, error) {
	var node corev1.Node
	if err := a.client.Get(ctx, client.ObjectKey{Name: a.opts.NodeName}, &node); err != nil {
		return roles{}, err
	}
	set := labels.Set(node.Labels)
	return roles{
		send:    tg.Spec.SenderSelector().Matches(set),
		receive: tg.Spec.Receivers != nil && tg.Spec.ReceiverSelector().Matches(set),
	}, nil
}

// stop ends the generator's run, if it has one, and waits for its last report; it says whether the run was
// still going. The run is forgotten: a generator made again under the same name, or selecting the node again,
// starts afresh.
func (a *Agent) stop(key types.NamespacedName, cause error) (wasGoing bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	r := a.runs[key]
	if r == nil {
		return false
	}
	select {
	case <-r.done:
	default:
		wasGoing = true
	}
	r.cancel(cause)
	<-r.done
	delete(a.runs, key)
	return wasGoing
}

// stopAll ends every run at once, and waits for their last reports.
func (a *Agent) stopAll(cause error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, r := range a.runs {
		r.cancel(cause)
	}
	for _, r := range a.runs {
		<-r.done
	}
}
