/*
Copyright 2026 The xdpgen Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

// Package controllers holds the reconcilers of the xdpgen operator. It imports no eBPF: the controller computes
// the agent DaemonSet and the TrafficGenerator status from what it observes in the API server.
package controllers

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	xdpgenv1alpha1 "github.com/xdpgen/xdpgen/api/v1alpha1"
)

// DefaultStatusInterval is the least time between two status writes of one TrafficGenerator.
const DefaultStatusInterval = 2 * time.Second

// generatorIndex indexes NodeReports by spec.generator, so that a reconcile reads only its generator's reports.
const generatorIndex = ".spec.generator"

// statusWrites counts the controller's writes of TrafficGenerator status, the load it puts on the API server
// however many nodes report.
var statusWrites = prometheus.NewCounter(prometheus.CounterOpts{
	Name: "xdpgen_trafficgenerator_status_writes_total",
	Help: "Writes of TrafficGenerator status by the controller (coalesced to at most one per generator per status interval).",
})

func init() {
	metrics.Registry.MustRegister(statusWrites)
}

// TrafficGeneratorReconciler runs the agents of each TrafficGenerator as a DaemonSet and sums the agents'
// NodeReports into the TrafficGenerator's status.
//
// A thousand nodes reporting every few seconds must not turn into a thousand status writes: NodeReport events are
// queued no sooner than StatusInterval after the generator's status was last computed, and a reconcile writes the
// status at most once, only when it changed, and no sooner than StatusInterval after the last write. Each
// TrafficGenerator's status is thus written at most once per StatusInterval, whatever the number of nodes.
type TrafficGeneratorReconciler struct {
	Client client.Client
	// APIReader reads from the API server, not the cache: used before starting agents, where a stale cache could
	// start a run that has already ended.
	APIReader client.Reader
	Recorder  events.EventRecorder
	Agent     AgentConfig
	// StatusInterval is the least time between two status writes of one TrafficGenerator.
	StatusInterval time.Duration

	mu   sync.Mutex
	last map[types.NamespacedName]*lastTimes
}

// lastTimes is when a TrafficGenerator's status was last computed and last written.
type lastTimes struct {
	computed, written time.Time
}

// CacheOptions restricts the manager's cache of DaemonSets to the agent DaemonSets, so that the controller does
// not hold every DaemonSet of the cluster in memory.
func CacheOptions() cache.Options {
	return cache.Options{
		ByObject: map[client.Object]cache.ByObject{
			&appsv1.DaemonSet{}: {Label: labels.SelectorFromSet(labels.Set{labelManagedBy: managedBy})},
		},
	}
}

// SetupWithManager registers the NodeReport index and the controller with mgr.
func (r *TrafficGeneratorReconciler) SetupWithManager(ctx context.Context, mgr ctrl.Manager) error {
	if r.StatusInterval <= 0 {
		r.StatusInterval = DefaultStatusInterval
	}
	if err := mgr.GetFieldIndexer().IndexField(ctx, &xdpgenv1alpha1.NodeReport{}, generatorIndex,
		func(o client.Object) []string { return []string{o.(*xdpgenv1alpha1.NodeReport).Spec.Generator} },
	); err != nil {
		return fmt.Errorf("index NodeReports by %s: %w", generatorIndex, err)
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("trafficgenerator").
		// The controller writes the status itself; only spec changes (and deletions) need a reconcile.
		For(&xdpgenv1alpha1.TrafficGenerator{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Owns(&appsv1.DaemonSet{}).
		Watches(&xdpgenv1alpha1.NodeReport{}, handler.Funcs{
			CreateFunc: func(_ context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
				r.enqueueForReport(e.Object, q)
			},
			UpdateFunc: func(_ context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
				r.enqueueForReport(e.ObjectNew, q)
			},
			DeleteFunc: func(_ context.Context, e event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
				r.enqueueForReport(e.Object, q)
			},
		}).
		Complete(r)
}

// enqueueForReport queues the report's TrafficGenerator (found through its label) for one status interval after
// its status was last computed. The queue keeps one entry per generator, so the reports of a thousand nodes become
// one reconcile per interval, even when they change nothing (heartbeats).
func (r *TrafficGeneratorReconciler) enqueueForReport(o client.Object, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
	name := o.GetLabels()[xdpgenv1alpha1.LabelGenerator]
	if name == "" {
		if nr, ok := o.(*xdpgenv1alpha1.NodeReport); ok {
			name = nr.Spec.Generator
		}
	}
	if name == "" {
		return
	}
	key := types.NamespacedName{Namespace: o.GetNamespace(), Name: name}
	req := reconcile.Request{NamespacedName: key}
	if wait := r.until(key, func(l *lastTimes) time.Time { return l.computed }, time.Now()); wait > 0 {
		q.AddAfter(req, wait)
		return
	}
	q.Add(req)
}

// until is how long key must wait for one status interval to pass since the time which picks.
func (r *TrafficGeneratorReconciler) until(key types.NamespacedName, which func(*lastTimes) time.Time, now time.Time) time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	l, ok := r.last[key]
	if !ok {
		return 0
	}
	return which(l).Add(r.StatusInterval).Sub(now)
}

// mark records now as the time that set picks.
func (r *TrafficGeneratorReconciler) mark(key types.NamespacedName, set func(*lastTimes, time.Time), now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.last == nil {
		r.last = map[types.NamespacedName]*lastTimes{}
	}
	l, ok := r.last[key]
	if !ok {
		l = &lastTimes{}
		r.last[key] = l
	}
	set(l, now)
}

func (r *TrafficGeneratorReconciler) forget(key types.NamespacedName) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.last, key)
}

// +kubebuilder:rbac:groups=xdpgen.io,resources=trafficgenerators,verbs=get;list;watch
// +kubebuilder:rbac:groups=xdpgen.io,resources=trafficgenerators/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=xdpgen.io,resources=trafficgenerators/finalizers,verbs=update
// +kubebuilder:rbac:groups=xdpgen.io,resources=nodereports,verbs=get;list;watch
// +kubebuilder:rbac:groups=apps,resources=daemonsets,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch

// Reconcile observes a TrafficGenerator's DaemonSet and NodeReports, computes the status from them, creates,
// updates or (once the run is over) deletes the DaemonSet, and writes the status at most once.
func (r *TrafficGeneratorReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	log := logf.FromContext(ctx)

	tg := &xdpgenv1alpha1.TrafficGenerator{}
	if err := r.Client.Get(ctx, req.NamespacedName, tg); err != nil {
		if apierrors.IsNotFound(err) {
			r.forget(req.NamespacedName)
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, fmt.Errorf("get TrafficGenerator: %w", err)
	}
	if !tg.DeletionTimestamp.IsZero() {
		// Everything the controller created carries an owner reference: the garbage collector removes it.
		return ctrl.Result{}, nil
	}

	ds, err := r.daemonSet(ctx, tg)
	if err != nil {
		r.Recorder.Eventf(tg, nil, corev1.EventTypeWarning, xdpgenv1alpha1.ReasonReconcileFailed, "Reconcile", err.Error())
		return ctrl.Result{}, err
	}
	reports, err := r.reports(ctx, tg)
	if err != nil {
		return ctrl.Result{}, err
	}
	now := metav1.Now().Rfc3339Copy()
	status := statusFor(tg, ds, reports, now)
	r.mark(req.NamespacedName, func(l *lastTimes, t time.Time) { l.computed = t }, time.Now())

	if !status.Phase.Terminal() {
		if err := r.syncDaemonSet(ctx, tg, ds); err != nil {
			return ctrl.Result{}, err
		}
		return r.writeStatus(ctx, tg, status)
	}

	// The run is over. Record that before removing the agents, so that a later reconcile, seeing no DaemonSet,
	// knows not to start them again.
	if !finished(tg) {
		res, err := r.writeStatus(ctx, tg, status)
		if err != nil || !finished(tg) {
			return res, err
		}
	}
	if ds != nil {
		log.Info("run finished, deleting the agents", "daemonSet", ds.Name, "phase", tg.Status.Phase)
		if err := r.Client.Delete(ctx, ds, client.PropagationPolicy(metav1.DeletePropagationBackground)); client.IgnoreNotFound(err) != nil {
			return ctrl.Result{}, fmt.Errorf("delete DaemonSet %s: %w", ds.Name, err)
		}
		r.Recorder.Eventf(tg, ds, corev1.EventTypeNormal, xdpgenv1alpha1.ReasonDaemonSetDeleted, "Delete",
			"run %s: deleted the agent DaemonSet %s", tg.Status.Phase, ds.Name)
		return ctrl.Result{}, nil
	}
	return r.writeStatus(ctx, tg, status)
}

// daemonSet returns the TrafficGenerator's agent DaemonSet from the cache, or nil when there is none.
func (r *TrafficGeneratorReconciler) daemonSet(ctx context.Context, tg *xdpgenv1alpha1.TrafficGenerator) (*appsv1.DaemonSet, error) {
	ds := &appsv1.DaemonSet{}
	err := r.Client.Get(ctx, types.NamespacedName{Namespace: tg.Namespace, Name: DaemonSetName(tg)}, ds)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get DaemonSet %s: %w", DaemonSetName(tg), err)
	}
	if !metav1.IsControlledBy(ds, tg) {
		return nil, fmt.Errorf("DaemonSet %s/%s exists and is not controlled by this TrafficGenerator: delete it or rename the TrafficGenerator", ds.Namespace, ds.Name)
	}
	return ds, nil
}

// reports returns the NodeReports of a TrafficGenerator. Reports owned by another object of the same name (an
// earlier TrafficGenerator that was deleted and recreated) are left out.
func (r *TrafficGeneratorReconciler) reports(ctx context.Context, tg *xdpgenv1alpha1.TrafficGenerator) ([]xdpgenv1alpha1.NodeReport, error) {
	var list xdpgenv1alpha1.NodeReportList
	// statusFor only reads the reports: skip the cache's deep copy of a thousand objects.
	if err := r.Client.List(ctx, &list, client.InNamespace(tg.Namespace), client.MatchingFields{generatorIndex: tg.Name},
		client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("list NodeReports: %w", err)
	}
	reports := list.Items[:0]
	for _, nr := range list.Items {
		if ownedByAnother(&nr, tg) {
			continue
		}
		reports = append(reports, nr)
	}
	return reports, nil
}

// ownedByAnother reports whether o has an owner reference to a TrafficGenerator other than tg.
func ownedByAnother(o metav1.Object, tg *xdpgenv1alpha1.TrafficGenerator) bool {
	for _, ref := range o.GetOwnerReferences() {
		if ref.Kind == "TrafficGenerator" && ref.APIVersion == xdpgenv1alpha1.GroupVersion.String() && ref.UID != tg.UID {
			return true
		}
	}
	return false
}

// syncDaemonSet creates the agent DaemonSet, or updates it when the desired one changed.
func (r *TrafficGeneratorReconciler) syncDaemonSet(ctx context.Context, tg *xdpgenv1alpha1.TrafficGenerator, ds *appsv1.DaemonSet) error {
	desired := daemonSetFor(tg, r.Agent)
	if ds == nil {
		// The cache may lag behind a status write that ended this generation's run; ask the API server.
		fresh := &xdpgenv1alpha1.TrafficGenerator{}
		if err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(tg), fresh); err != nil {
			return client.IgnoreNotFound(err)
		}
		if finished(fresh) || fresh.Generation != tg.Generation {
			return nil // the event of that write queues another reconcile
		}
		if err := r.Client.Create(ctx, desired); err != nil {
			if apierrors.IsAlreadyExists(err) {
				return r.checkExisting(ctx, tg, desired)
			}
			return fmt.Errorf("create DaemonSet %s: %w", desired.Name, err)
		}
		r.Recorder.Eventf(tg, desired, corev1.EventTypeNormal, xdpgenv1alpha1.ReasonDaemonSetCreated, "Create",
			"created the agent DaemonSet %s", desired.Name)
		return nil
	}
	if ds.Annotations[annotationTemplateHash] == desired.Annotations[annotationTemplateHash] {
		return nil
	}
	updated := ds.DeepCopy()
	updated.Labels = desired.Labels
	if updated.Annotations == nil {
		updated.Annotations = map[string]string{}
	}
	updated.Annotations[annotationTemplateHash] = desired.Annotations[annotationTemplateHash]
	// The selector is immutable and agentSelectorLabels never change; everything else is ours.
	updated.Spec.Template = desired.Spec.Template
	updated.Spec.UpdateStrategy = desired.Spec.UpdateStrategy
	if err := r.Client.Update(ctx, updated); err != nil {
		return fmt.Errorf("update DaemonSet %s: %w", ds.Name, err)
	}
	r.Recorder.Eventf(tg, updated, corev1.EventTypeNormal, xdpgenv1alpha1.ReasonDaemonSetUpdated, "Update",
		"updated the agent DaemonSet %s to the new spec", ds.Name)
	return nil
}

// checkExisting decides about a DaemonSet that exists although the cache did not show it: the controller's own
// (the cache has not caught up) is fine, anything else is a name clash.
func (r *TrafficGeneratorReconciler) checkExisting(ctx context.Context, tg *xdpgenv1alpha1.TrafficGenerator, desired *appsv1.DaemonSet) error {
	existing := &appsv1.DaemonSet{}
	if err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(desired), existing); err != nil {
		return client.IgnoreNotFound(err)
	}
	if metav1.IsControlledBy(existing, tg) {
		return nil
	}
	err := fmt.Errorf("DaemonSet %s/%s exists and is not controlled by this TrafficGenerator: delete it or rename the TrafficGenerator", existing.Namespace, existing.Name)
	r.Recorder.Eventf(tg, nil, corev1.EventTypeWarning, xdpgenv1alpha1.ReasonReconcileFailed, "Create", err.Error())
	return err
}

// writeStatus writes status when it differs from the stored one and the generator's status interval has passed
// since its last write; otherwise it asks to be called again when the interval has passed.
func (r *TrafficGeneratorReconciler) writeStatus(ctx context.Context, tg *xdpgenv1alpha1.TrafficGenerator, status xdpgenv1alpha1.TrafficGeneratorStatus) (ctrl.Result, error) {
	if equality.Semantic.DeepEqual(tg.Status, status) {
		return ctrl.Result{}, nil
	}
	key := client.ObjectKeyFromObject(tg)
	if wait := r.until(key, func(l *lastTimes) time.Time { return l.written }, time.Now()); wait > 0 {
		return ctrl.Result{RequeueAfter: wait}, nil
	}
	old := tg.Status
	tg.Status = status
	if err := r.Client.Status().Update(ctx, tg); err != nil {
		tg.Status = old
		if apierrors.IsConflict(err) {
			// The spec changed or the cache lags: the next reconcile sees the new object.
			return ctrl.Result{RequeueAfter: 100 * time.Millisecond}, nil
		}
		return ctrl.Result{}, fmt.Errorf("write status: %w", err)
	}
	r.mark(key, func(l *lastTimes, t time.Time) { l.written = t }, time.Now())
	statusWrites.Inc()
	r.recordTransitions(tg, old, status)
	return ctrl.Result{}, nil
}

// maxNodeEventsPerWrite bounds the NodeFailed events of one status write.
const maxNodeEventsPerWrite = 10

// recordTransitions emits events for the transitions between two written statuses.
func (r *TrafficGeneratorReconciler) recordTransitions(tg *xdpgenv1alpha1.TrafficGenerator, old, cur xdpgenv1alpha1.TrafficGeneratorStatus) {
	sameRun := old.ObservedGeneration == cur.ObservedGeneration
	if cur.Phase == xdpgenv1alpha1.PhaseRunning && (!sameRun || old.Phase != xdpgenv1alpha1.PhaseRunning) {
		r.Recorder.Eventf(tg, nil, corev1.EventTypeNormal, xdpgenv1alpha1.ReasonRunStarted, "Run",
			"generation %d: %s nodes sending", tg.Generation, cur.NodesSummary)
	}
	if cur.Phase.Terminal() && (!sameRun || !old.Phase.Terminal()) {
		if cur.Phase == xdpgenv1alpha1.PhaseFailed {
			msg := ""
			if c := meta.FindStatusCondition(cur.Conditions, xdpgenv1alpha1.ConditionDegraded); c != nil {
				msg = c.Message
			}
			r.Recorder.Eventf(tg, nil, corev1.EventTypeWarning, xdpgenv1alpha1.ReasonRunFailed, "Run",
				"generation %d failed: %s", tg.Generation, msg)
		} else {
			r.Recorder.Eventf(tg, nil, corev1.EventTypeNormal, xdpgenv1alpha1.ReasonRunCompleted, "Run",
				"generation %d completed on %d nodes: %d packets, %d bytes", tg.Generation, cur.NodesTotal, cur.Totals.Packets, cur.Totals.Bytes)
		}
	}
	before := map[string]xdpgenv1alpha1.NodeSummary{}
	if sameRun {
		for _, n := range old.Nodes {
			before[n.Node] = n
		}
	}
	emitted := 0
	for _, n := range cur.Nodes {
		if emitted == maxNodeEventsPerWrite {
			break
		}
		was := before[n.Node]
		if n.Phase == xdpgenv1alpha1.PhaseFailed && was.Phase != xdpgenv1alpha1.PhaseFailed {
			emitted++
			r.Recorder.Eventf(tg, nil, corev1.EventTypeWarning, xdpgenv1alpha1.ReasonNodeFailed, "Run",
				"node %s failed: %s", n.Node, orDefault(n.LastError, "no message"))
		}
		if n.Restarts > was.Restarts {
			emitted++
			r.Recorder.Eventf(tg, nil, corev1.EventTypeWarning, xdpgenv1alpha1.ReasonAgentRestarted, "Run",
				"the agent on node %s restarted mid-run (%d restarts); it resumed after %d packets without counting any twice",
				n.Node, n.Restarts, n.Packets)
		}
	}
}
