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

package v1alpha1

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// SenderSelector selects the Nodes that send: those spec.nodeSelector matches, among the Linux nodes (where the
// agents run; a selector may still ask for another kubernetes.io/os).
func (s *TrafficGeneratorSpec) SenderSelector() labels.Selector {
	return linuxNodes(s.NodeSelector)
}

// ReceiverSelector selects the Nodes that receive: those spec.receivers.nodeSelector matches, among the Linux
// nodes; none without spec.receivers.
func (s *TrafficGeneratorSpec) ReceiverSelector() labels.Selector {
	if s.Receivers == nil {
		return labels.Nothing()
	}
	return linuxNodes(s.Receivers.NodeSelector)
}

func linuxNodes(selector map[string]string) labels.Selector {
	set := labels.Set{corev1.LabelOSStable: "linux"}
	maps.Copy(set, selector)
	return labels.SelectorFromSet(set)
}

// CurrentReports returns the reports of the current run (status.generation equal to the generator's
// metadata.generation and, for a search, status.trial its current trial), sorted by node name: only these count,
// the others are of runs the spec (or the search) replaced.
func (tg *TrafficGenerator) CurrentReports(reports []NodeReport) []NodeReport {
	var current []NodeReport
	trial := tg.TrialNumber()
	for _, r := range reports {
		if r.Status.Generation == tg.Generation && r.Status.Trial == trial {
			current = append(current, r)
		}
	}
	slices.SortFunc(current, func(a, b NodeReport) int { return cmp.Compare(a.Spec.NodeName, b.Spec.NodeName) })
	return current
}

// DefaultDrainTime is receivers.drainTime when left out (the API server defaults it; code reading a spec that did
// not go through it uses this).
const DefaultDrainTime = 2 * time.Second

// DrainTimeOrDefault is how long the receivers count after the last sender finished.
func (r *Receivers) DrainTimeOrDefault() time.Duration {
	if r.DrainTime == nil {
		return DefaultDrainTime
	}
	return r.DrainTime.Duration
}

// LossRatio formats lost over sent as status fields hold it: "0" without loss, else four significant digits.
func LossRatio(lost, sent int64) string {
	if lost <= 0 || sent <= 0 {
		return "0"
	}
	return fmt.Sprintf("%.4g", float64(lost)/float64(sent))
}

// LatencyOf sums up a histogram: the percentiles are the upper bounds of the buckets they fall in (at most the
// largest sample), max is the largest sample when known (else the highest bucket's bound). Buckets must be sorted by bound; nil when empty.
func LatencyOf(buckets []LatencyBucket, max time.Duration) *Latency {
	var total int64
	for _, b := range buckets {
		total += b.Count
	}
	if total == 0 {
		return nil
	}
	at := func(q float64) metav1.Duration {
		rank := int64(q*float64(total) + 0.999999) // the sample at this rank (1-based) or above
		var seen int64
		bound := time.Duration(buckets[len(buckets)-1].UpperBoundNanoseconds)
		for _, b := range buckets {
			seen += b.Count
			if seen >= rank {
				bound = time.Duration(b.UpperBoundNanoseconds)
				break
			}
		}
		if max > 0 {
			bound = min(bound, max) // no sample took longer than the largest
		}
		return metav1.Duration{Duration: bound}
	}
	l := &Latency{Samples: total, P50: at(0.50), P90: at(0.90), P99: at(0.99), P999: at(0.999)}
	l.Max = metav1.Duration{Duration: max}
	if max <= 0 {
		l.Max = at(1)
	}
	return l
}

// MergeLatencyBuckets adds histograms with the same bucket bounds (any subset of them), sorted by bound.
func MergeLatencyBuckets(histograms ...[]LatencyBucket) []LatencyBucket {
	sum := map[int64]int64{}
	for _, h := range histograms {
		for _, b := range h {
			sum[b.UpperBoundNanoseconds] += b.Count
		}
	}
	out := make([]LatencyBucket, 0, len(sum))
	for bound, count := range sum {
		if count > 0 {
			out = append(out, LatencyBucket{UpperBoundNanoseconds: bound, Count: count})
		}
	}
	slices.SortFunc(out, func(a, b LatencyBucket) int { return cmp.Compare(a.UpperBoundNanoseconds, b.UpperBoundNanoseconds) })
	return out
}
