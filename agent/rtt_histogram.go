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

package agent

import (
	"slices"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// rttBoundsNs are the upper bounds of xdpgen_agent_rtt_seconds' buckets, in nanoseconds: the powers of two from
// 2^11 ns (2.05 µs) to 2^31 ns (2.15 s). Every power of two from 16 ns is a bound of the data plane's log-linear
// buckets, so each of its buckets falls in exactly one of these: the counts are exact, not interpolated.
var rttBoundsNs = func() []int64 {
	var b []int64
	for p := 11; p <= 31; p++ {
		b = append(b, 1<<p)
	}
	return b
}()

// rttHistograms is xdpgen_agent_rtt_seconds, the round trips a sending node timed over all its paths: a Prometheus
// histogram per generator and node, built from the reports' histograms (which the data plane buckets more finely)
// and made a const histogram at each scrape. Its _sum is the sum of the round-trip times the data plane measured
// (the reports' rttSumNanoseconds), so rate(_sum)/rate(_count) is their mean. A round trip of exactly a bound
// counts in the next bucket: the data plane's buckets hold [lo, hi).
type rttHistograms struct {
	desc   *prometheus.Desc
	mu     sync.Mutex
	series map[rttKey]*rttSeries
}

// rttKey is a series' label values: namespace, generator, node.
type rttKey [3]string

// rttSeries counts the round trips of one series, in buckets of rttBoundsNs and the last for those above.
type rttSeries struct {
	counts []uint64
	sumNs  int64
}

func newRTTHistograms() *rttHistograms {
	return &rttHistograms{
		desc: prometheus.NewDesc("xdpgen_agent_rtt_seconds",
			"Round-trip times of the generator's latency samples this sending node timed, over all its paths to the receivers.",
			[]string{"namespace", "generator", "node"}, nil),
		series: map[rttKey]*rttSeries{},
	}
}

func keyOf(labels prometheus.Labels) rttKey {
	return rttKey{labels["namespace"], labels["generator"], labels["node"]}
}

// seriesOf returns the series of labels, made when missing. h.mu must be held.
func (h *rttHistograms) seriesOf(labels prometheus.Labels) *rttSeries {
	s := h.series[keyOf(labels)]
	if s == nil {
		s = &rttSeries{counts: make([]uint64, len(rttBoundsNs)+1)}
		h.series[keyOf(labels)] = s
	}
	return s
}

// add counts n round trips below upperBoundNs, a bound of the data plane's buckets.
func (h *rttHistograms) add(labels prometheus.Labels, upperBoundNs, n int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	// The first bound at or above the data plane bucket's: its round trips are all below it.
	i, _ := slices.BinarySearch(rttBoundsNs, upperBoundNs)
	h.seriesOf(labels).counts[i] += uint64(n)
}

// addSum adds ns nanoseconds of round trips to the sum.
func (h *rttHistograms) addSum(labels prometheus.Labels, ns int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.seriesOf(labels).sumNs += ns
}

// deletePartialMatch removes the series whose labels include labels.
func (h *rttHistograms) deletePartialMatch(labels prometheus.Labels) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for k := range h.series {
		if (labels["namespace"] == "" || k[0] == labels["namespace"]) &&
			(labels["generator"] == "" || k[1] == labels["generator"]) && (labels["node"] == "" || k[2] == labels["node"]) {
			delete(h.series, k)
		}
	}
}

func (h *rttHistograms) Describe(ch chan<- *prometheus.Desc) { ch <- h.desc }

func (h *rttHistograms) Collect(ch chan<- prometheus.Metric) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for k, s := range h.series {
		buckets := make(map[float64]uint64, len(rttBoundsNs))
		var cumulative uint64
		for i, bound := range rttBoundsNs {
			cumulative += s.counts[i]
			buckets[float64(bound)/1e9] = cumulative
		}
		count := cumulative + s.counts[len(rttBoundsNs)]
		ch <- prometheus.MustNewConstHistogram(h.desc, count, float64(s.sumNs)/1e9, buckets, k[0], k[1], k[2])
	}
}
