package agent

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/vishvananda/netns"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	xdpgenv1alpha1 "github.com/xdpgen/xdpgen/api/v1alpha1"
)

// Options say which TrafficGenerator this agent runs, on which node, and how it reports.
type Options struct {
	Generator, Namespace string
	// NodeName is the node the agent runs on (the downward API's spec.nodeName).
	NodeName string
	// PodName names the agent's pod in messages.
	PodName string
	// ReportInterval is how often the agent writes its NodeReport while sending.
	ReportInterval time.Duration
	// NetNS is the network namespace the engine sends from; zero (or netns.None()) is the agent's own (the
	// host's, since agents run on the host network). Tests use it to run several agents on one machine.
	NetNS netns.NsHandle
}

// DefaultReportInterval keeps a thousand nodes' reports at a few hundred small writes per second.
const DefaultReportInterval = 2 * time.Second

// Why a run was stopped before it ended by itself.
var (
	errSpecChanged = errors.New("the TrafficGenerator's spec changed")
	errDeleted     = errors.New("the TrafficGenerator was deleted")
	errShutdown    = errors.New("the agent is shutting down")
)

// Agent reconciles one TrafficGenerator on one node: it runs the generation the spec asks for, one at a time.
type Agent struct {
	opts    Options
	client  client.Client
	metrics *metrics
	// newEngine readies the data plane for a run: the package's newEngine, or a fake in the run's unit tests.
	newEngine func(context.Context, *xdpgenv1alpha1.TrafficGeneratorSpec, progress) (engine, error)

	// base is the agent's lifetime: runs outlive the reconcile that starts them.
	base   context.Context
	ready  chan struct{}
	mu     sync.Mutex
	active *activeRun
}

// activeRun is a run in progress, or finished and kept so that its generation is not run twice.
type activeRun struct {
	generation int64
	cancel     context.CancelCauseFunc
	done       chan struct{}
}

// New makes an agent; add it to mgr with SetupWithManager.
func New(opts Options, c client.Client) *Agent {
	if opts.ReportInterval <= 0 {
		opts.ReportInterval = DefaultReportInterval
	}
	return &Agent{opts: opts, client: c, metrics: newMetrics(opts.Generator, opts.NodeName), newEngine: newEngine,
		ready: make(chan struct{})}
}

// SetupWithManager watches the agent's TrafficGenerator and runs the agent's lifetime with the manager's.
func (a *Agent) SetupWithManager(mgr ctrl.Manager) error {
	if err := mgr.Add(a); err != nil {
		return err
	}
	mine := predicate.NewPredicateFuncs(func(o client.Object) bool {
		return o.GetName() == a.opts.Generator && o.GetNamespace() == a.opts.Namespace
	})
	return ctrl.NewControllerManagedBy(mgr).
		Named("agent").
		For(&xdpgenv1alpha1.TrafficGenerator{}, builder.WithPredicates(mine, predicate.GenerationChangedPredicate{})).
		Complete(a)
}

// Start holds the agent's lifetime; when it ends (SIGTERM), the run in progress is stopped and reported.
func (a *Agent) Start(ctx context.Context) error {
	a.base = ctx
	close(a.ready)
	<-ctx.Done()
	a.stop(errShutdown)
	return nil
}

// NeedLeaderElection: every node's agent runs.
func (a *Agent) NeedLeaderElection() bool { return false }

// Reconcile starts the run of the TrafficGenerator's current generation, stopping the run of an older one,
// or stops the run when the TrafficGenerator is gone.
func (a *Agent) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	select {
	case <-a.ready:
	case <-ctx.Done():
		return reconcile.Result{}, ctx.Err()
	}
	var tg xdpgenv1alpha1.TrafficGenerator
	if err := a.client.Get(ctx, req.NamespacedName, &tg); err != nil {
		if apierrors.IsNotFound(err) {
			a.stop(errDeleted)
			return reconcile.Result{}, nil
		}
		return reconcile.Result{}, err
	}

	a.mu.Lock()
	defer a.mu.Unlock()
	if a.active != nil && a.active.generation == tg.Generation {
		return reconcile.Result{}, nil
	}
	if a.active != nil {
		a.active.cancel(errSpecChanged)
		<-a.active.done
	}
	// Runs end only through cancel, so that the cause (shutdown, spec change, deletion) is always known.
	runCtx, cancel := context.WithCancelCause(context.WithoutCancel(a.base))
	r := &activeRun{generation: tg.Generation, cancel: cancel, done: make(chan struct{})}
	a.active = r
	log.FromContext(ctx).Info("starting run", "generation", tg.Generation)
	go func() {
		defer close(r.done)
		a.execute(runCtx, &tg)
	}()
	return reconcile.Result{}, nil
}

// stop ends the active run, if any, and waits for its last report.
func (a *Agent) stop(cause error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.active != nil {
		a.active.cancel(cause)
		<-a.active.done
		if cause == errDeleted {
			a.active = nil // a TrafficGenerator made again under the same name starts afresh
		}
	}
}
