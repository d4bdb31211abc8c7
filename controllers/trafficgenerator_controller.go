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
// the TrafficGenerator status from what it observes in the API server (Nodes and NodeReports).
package controllers

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

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
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	xdpgenv1alpha1 "github.com/xdpgen/xdpgen/api/v1alpha1"
)

// DefaultStatusInterval is the least time between two status writes of one TrafficGenerator.
const DefaultStatusInterval = 2 * time.Second

// generatorIndex indexes NodeReports by spec.generator, so that a reconcile reads only its generator's reports.
const generatorIndex = ".spec.generator"

// DefaultNodeLostTimeout is how long a node of a run may go without reporting before the controller gives up on it.
const DefaultNodeLostTimeout = 60 * time.Second

// TrafficGeneratorReconciler sums the NodeReports of each TrafficGenerator into its status. The agents are not
// its business: one long-lived agent per node (the xdpgen-agent DaemonSet, installed with xdpgen) runs every
// TrafficGenerator that selects its node. The controller only knows which nodes a run expects, the Nodes that
// spec.nodeSelector matches, and ends a bounded run once each of them has finished or is lost.
//
// A thousand nodes reporting every few seconds must not turn into a thousand status writes: NodeReport and Node
// events are queued no sooner than StatusInterval after the generator's status was last computed, and a reconcile
// writes the status at most once, only when it changed, and no sooner than StatusInterval after the last write.
// Each TrafficGenerator's status is thus written at most once per StatusInterval, whatever the number of nodes.
type TrafficGeneratorReconciler struct {
	Client   client.Client
	Recorder events.EventRecorder
	// StatusInterval is the least time between two status writes of one TrafficGenerator.
	StatusInterval time.Duration
	// NodeLostTimeout is how long an expected node may go without a report for the current generation (since the
	// run began, or since its last report) before it is lost.
	NodeLostTimeout time.Duration

	mu   sync.Mutex
	last map[types.NamespacedName]*lastTimes
}

// lastTimes is when a TrafficGenerator's status was last computed and last written.
type lastTimes struct {
	computed, written time.Time
}

// SetupWithManager registers the NodeReport index and the controller with mgr.
func (r *TrafficGeneratorReconciler) SetupWithManager(ctx context.Context, mgr ctrl.Manager) error {
	if r.StatusInterval <= 0 {
		r.StatusInterval = DefaultStatusInterval
	}
	if r.NodeLostTimeout <= 0 {
		r.NodeLostTimeout = DefaultNodeLostTimeout
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
		// Only the Nodes' names and labels matter: cache their metadata, not their status, and look only at the
		// events that change which nodes a run expects (the kubelet's status updates change nothing here).
		Watches(&corev1.Node{}, handler.Funcs{
			CreateFunc: func(ctx context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
				r.enqueueForNode(ctx, q, e.Object.GetLabels())
			},
			UpdateFunc: func(ctx context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
				if !maps.Equal(e.ObjectOld.GetLabels(), e.ObjectNew.GetLabels()) {
					r.enqueueForNode(ctx, q, e.ObjectOld.GetLabels(), e.ObjectNew.GetLabels())
				}
			},
			DeleteFunc: func(ctx context.Context, e event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
				r.enqueueForNode(ctx, q, e.Object.GetLabels())
			},
		}, builder.OnlyMetadata).
		Complete(r)
}

// nodeSelectorsOf selects the Nodes of a TrafficGenerator's run: its senders, and its receivers if it has any.
func nodeSelectorsOf(tg *xdpgenv1alpha1.TrafficGenerator) []labels.Selector {
	if tg.Spec.Receivers == nil {
		return []labels.Selector{tg.Spec.SenderSelector()}
	}
	return []labels.Selector{tg.Spec.SenderSelector(), tg.Spec.ReceiverSelector()}
}

// enqueueForNode queues the TrafficGenerators whose selector matches any of a Node's label sets (before and after
// a change). Its cost is one pass over the cached TrafficGenerators per Node creation, deletion or label change.
func (r *TrafficGeneratorReconciler) enqueueForNode(ctx context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request], nodeLabels ...map[string]string) {
	var list xdpgenv1alpha1.TrafficGeneratorList
	if err := r.Client.List(ctx, &list, client.UnsafeDisableDeepCopy); err != nil {
		logf.FromContext(ctx).Error(err, "list TrafficGenerators for a Node event")
		return
	}
	for i := range list.Items {
		tg := &list.Items[i]
		for _, l := range nodeLabels {
			if slices.ContainsFunc(nodeSelectorsOf(tg), func(sel labels.Selector) bool { return sel.Matches(labels.Set(l)) }) {
				r.enqueue(client.ObjectKeyFromObject(tg), q)
				break
			}
		}
	}
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
	r.enqueue(types.NamespacedName{Namespace: o.GetNamespace(), Name: name}, q)
}

// enqueue queues a TrafficGenerator for one status interval after its status was last computed.
func (r *TrafficGeneratorReconciler) enqueue(key types.NamespacedName, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
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
// +kubebuilder:rbac:groups=xdpgen.io,resources=trafficgenerators/status,verbs=update
// +kubebuilder:rbac:groups=xdpgen.io,resources=nodereports,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=nodes,verbs=get;list;watch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile observes a TrafficGenerator's expected nodes and NodeReports, computes the status from them, and
// writes it at most once. While a node may still become lost, it comes back when that would happen.
func (r *TrafficGeneratorReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	tg := &xdpgenv1alpha1.TrafficGenerator{}
	if err := r.Client.Get(ctx, req.NamespacedName, tg); err != nil {
		if apierrors.IsNotFound(err) {
			r.forget(req.NamespacedName)
			unexportRun(req.NamespacedName)
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, fmt.Errorf("get TrafficGenerator: %w", err)
	}
	if !tg.DeletionTimestamp.IsZero() {
		// The NodeReports carry an owner reference: the garbage collector removes them.
		return ctrl.Result{}, nil
	}

	expected, err := r.expectedNodes(ctx, tg)
	if err != nil {
		return ctrl.Result{}, err
	}
	reports, err := r.reports(ctx, tg)
	if err != nil {
		return ctrl.Result{}, err
	}
	status, recheck := statusFor(tg, expected, reports, metav1.Now().Rfc3339Copy(), r.NodeLostTimeout)
	r.mark(req.NamespacedName, func(l *lastTimes, t time.Time) { l.computed = t }, time.Now())
	exportRun(req.NamespacedName, status)

	res, err := r.writeStatus(ctx, tg, status)
	if err != nil || recheck.IsZero() {
		return res, err
	}
	// The status holds times to the second: look again just after the deadline, not just before it.
	if wait := time.Until(recheck) + 100*time.Millisecond; res.RequeueAfter == 0 || wait < res.RequeueAfter {
		res.RequeueAfter = wait
	}
	return res, nil
}

// expectedNodes returns the names of the Nodes the TrafficGenerator's run expects, its senders and its receivers,
// from the cache of the Nodes' metadata.
func (r *TrafficGeneratorReconciler) expectedNodes(ctx context.Context, tg *xdpgenv1alpha1.TrafficGenerator) (map[string]bool, error) {
	names := map[string]bool{}
	for _, sel := range nodeSelectorsOf(tg) {
		list := &metav1.PartialObjectMetadataList{}
		list.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("NodeList"))
		if err := r.Client.List(ctx, list, client.MatchingLabelsSelector{Selector: sel}, client.UnsafeDisableDeepCopy); err != nil {
			return nil, fmt.Errorf("list Nodes: %w", err)
		}
		for _, n := range list.Items {
			names[n.Name] = true
		}
	}
	return names, nil
}

// reports returns the NodeReports of a TrafficGenerator. Reports owned by another object of the same name (an
// earlier TrafficGenerator that was deleted and recreated) are left out, and so is any report not named as its
// node's report is (NodeReportName): there is one per node, the one its agent writes, and a second one (a copy, or
// a report no agent wrote) would make two entries of one node. Those are logged and recorded as events.
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
		if want := xdpgenv1alpha1.NodeReportName(tg.Name, nr.Spec.NodeName); nr.Name != want {
			logf.FromContext(ctx).Info("ignoring a NodeReport that is not its node's report", "nodeReport", nr.Name,
				"node", nr.Spec.NodeName, "nodesReport", want)
			r.runEvent(tg, corev1.EventTypeWarning, xdpgenv1alpha1.ReasonNodeReportRejected,
				"ignored NodeReport %s: the report of node %s for this TrafficGenerator is %s, which its agent writes",
				nr.Name, nr.Spec.NodeName, want)
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

// maxEventNote is the longest note the events API takes.
const maxEventNote = 1024

// runEvent records an event about a TrafficGenerator's run, its note shortened to what the events API takes (a
// node's message alone may fill it).
func (r *TrafficGeneratorReconciler) runEvent(tg *xdpgenv1alpha1.TrafficGenerator, eventType, reason, note string, args ...any) {
	r.Recorder.Eventf(tg, nil, eventType, reason, "Run", "%s", xdpgenv1alpha1.ShortenMessage(fmt.Sprintf(note, args...), maxEventNote))
}

// maxNodeEventsPerWrite bounds the node events (failed, lost, restarted) of one status write.
const maxNodeEventsPerWrite = 10

// recordTransitions emits events for the transitions between two written statuses.
func (r *TrafficGeneratorReconciler) recordTransitions(tg *xdpgenv1alpha1.TrafficGenerator, old, cur xdpgenv1alpha1.TrafficGeneratorStatus) {
	sameRun := old.ObservedGeneration == cur.ObservedGeneration
	if cur.Phase == xdpgenv1alpha1.PhaseRunning && (!sameRun || old.Phase != xdpgenv1alpha1.PhaseRunning) {
		r.runEvent(tg, corev1.EventTypeNormal, xdpgenv1alpha1.ReasonRunStarted,
			"generation %d: %s nodes sending", tg.Generation, cur.NodesSummary)
	}
	if cur.Phase.Terminal() && (!sameRun || !old.Phase.Terminal()) {
		if cur.Phase == xdpgenv1alpha1.PhaseFailed {
			msg := ""
			if c := meta.FindStatusCondition(cur.Conditions, xdpgenv1alpha1.ConditionDegraded); c != nil {
				msg = c.Message
			}
			r.runEvent(tg, corev1.EventTypeWarning, xdpgenv1alpha1.ReasonRunFailed,
				"generation %d failed: %s", tg.Generation, msg)
		} else {
			r.runEvent(tg, corev1.EventTypeNormal, xdpgenv1alpha1.ReasonRunCompleted,
				"generation %d completed on %d nodes: %d packets, %d bytes", tg.Generation, cur.NodesTotal, cur.Totals.Packets, cur.Totals.Bytes)
		}
	}
	if cur.Search != nil && cur.Search.Phase.Over() && (!sameRun || old.Search == nil || !old.Search.Phase.Over()) {
		eventType, reason := corev1.EventTypeNormal, xdpgenv1alpha1.ReasonSearchCompleted
		switch cur.Search.Phase {
		case xdpgenv1alpha1.SearchIncomplete:
			eventType, reason = corev1.EventTypeWarning, xdpgenv1alpha1.ReasonSearchIncomplete
		case xdpgenv1alpha1.SearchFailed:
			eventType, reason = corev1.EventTypeWarning, xdpgenv1alpha1.ReasonSearchFailed
		}
		r.runEvent(tg, eventType, reason, "generation %d: search %s: %s", tg.Generation, strings.ToLower(string(cur.Search.Phase)), cur.Search.Message)
	}
	// Node events for the nodes of interest only: a bounded number per write, whatever the number of nodes.
	before := map[string]xdpgenv1alpha1.NodeSummary{}
	if sameRun {
		for _, n := range old.NodesOfInterest {
			before[n.Node] = n
		}
	}
	emitted := 0
	for _, n := range cur.NodesOfInterest {
		if emitted == maxNodeEventsPerWrite {
			break
		}
		was := before[n.Node]
		if n.Phase == xdpgenv1alpha1.PhaseFailed && was.Phase != xdpgenv1alpha1.PhaseFailed {
			emitted++
			r.runEvent(tg, corev1.EventTypeWarning, xdpgenv1alpha1.ReasonNodeFailed,
				"node %s failed: %s", n.Node, n.LastError)
		}
		if n.Phase == xdpgenv1alpha1.PhaseLost && was.Phase != xdpgenv1alpha1.PhaseLost {
			emitted++
			r.runEvent(tg, corev1.EventTypeWarning, xdpgenv1alpha1.ReasonNodeLost,
				"node %s lost: %s", n.Node, n.LastError)
		}
		if n.Restarts > was.Restarts {
			emitted++
			r.runEvent(tg, corev1.EventTypeWarning, xdpgenv1alpha1.ReasonAgentRestarted,
				"the agent on node %s restarted mid-run (%d restarts); it resumed after %d packets without counting any twice",
				n.Node, n.Restarts, n.Packets)
		}
	}
}
