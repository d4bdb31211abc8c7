package agent

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	xdpgenv1alpha1 "github.com/xdpgen/xdpgen/api/v1alpha1"
)

// A TrafficGenerator with spec.search runs as a series of trials, which the controller asks for one at a time
// in status.search.trial. The agent runs each trial as it runs any generation: a run of its own (its NodeReport
// carries the trial's number, its frames a generator id of the trial's), with the trial's rate and duration in
// place of the spec's. The controller, which sees every receiver's paths, decides the next trial.

// trialChanged passes the updates of a TrafficGenerator that move its search to another trial: the controller
// writes them into the status, which the agent otherwise does not look at.
var trialChanged = predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
	old, oldOK := e.ObjectOld.(*xdpgenv1alpha1.TrafficGenerator)
	cur, curOK := e.ObjectNew.(*xdpgenv1alpha1.TrafficGenerator)
	return oldOK && curOK && old.TrialNumber() != cur.TrialNumber()
}}

// trialGuard x the trial's duration bounds how long a sender sends the frames of a trial: a trial is its frames
// (its share of rate x duration) at its rate, and the duration only stops a sender that cannot keep up.
const trialGuard = 3

// trialRun is the generator's current trial as a run of its own: each sender sends its share of the trial's
// rate (the rate over the number of senders, spread over the receivers as any run with receivers does) for the
// trial's duration, or as fast as it goes when the trial has no rate.
func (a *Agent) trialRun(ctx context.Context, tg *xdpgenv1alpha1.TrafficGenerator) (*xdpgenv1alpha1.TrafficGenerator, error) {
	trial := tg.CurrentTrial()
	run := tg.DeepCopy()
	spec := &run.Spec
	spec.Rate, spec.Packets, spec.Continuous = nil, nil, false
	spec.Duration = &metav1.Duration{Duration: trial.Duration.Duration}
	if trial.PacketsPerSecond == 0 {
		return run, nil
	}
	list := &metav1.PartialObjectMetadataList{}
	list.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("NodeList"))
	if err := a.nodes.List(ctx, list, client.MatchingLabelsSelector{Selector: tg.Spec.SenderSelector()}); err != nil {
		return nil, fmt.Errorf("list the generator's senders to take this node's share of trial %d: %w", trial.Number, err)
	}
	pps, packets := trial.SenderShare(len(list.Items))
	spec.Rate = &xdpgenv1alpha1.Rate{PacketsPerSecond: &pps}
	spec.Packets = &packets
	spec.Duration = &metav1.Duration{Duration: trialGuard * trial.Duration.Duration}
	return run, nil
}

// trialNote says which trial a run is, for the log.
func trialNote(tg *xdpgenv1alpha1.TrafficGenerator) []any {
	t := tg.CurrentTrial()
	if t == nil {
		return nil
	}
	return []any{"trial", t.Number, "trialPacketsPerSecond", t.PacketsPerSecond, "trialDuration", t.Duration.Duration.Round(time.Millisecond).String()}
}
