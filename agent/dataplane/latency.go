package dataplane

import (
	"math"
	"time"

	"github.com/xdpgen/xdpgen/bpf"
)

// LatencyHistogram holds round-trip times as the receive program buckets them: log-linear, each bucket at most
// 6.25% wide (1 ns below 16 ns), up to 2^32 ns (4.29 s, what the stamp's 32-bit timestamp can tell).
type LatencyHistogram struct {
	Count uint64
	Sum   time.Duration
	Max   time.Duration
	// counts per bucket (bpf.LatencyBuckets of them)
	buckets [bpf.LatencyBuckets]uint64
}

func (h *LatencyHistogram) add(c bpf.LatencyHist) {
	h.Count += c.Count
	h.Sum += time.Duration(c.SumNs)
	h.Max = max(h.Max, time.Duration(c.MaxNs))
	for i, n := range c.Buckets {
		h.buckets[i] += n
	}
}

// Merge adds o's samples to h: a run's histogram over several paths or senders.
func (h *LatencyHistogram) Merge(o *LatencyHistogram) {
	h.Count += o.Count
	h.Sum += o.Sum
	h.Max = max(h.Max, o.Max)
	for i, n := range o.buckets {
		h.buckets[i] += n
	}
}

// latencyBucketBounds is bucket b's range of nanoseconds, [lo, hi).
func latencyBucketBounds(b int) (lo, hi uint64) {
	const sub = 1 << bpf.LatencySubBits
	if b < sub {
		return uint64(b), uint64(b) + 1
	}
	shift := uint(b/sub - 1)
	lo = uint64(sub+b%sub) << shift
	return lo, lo + 1<<shift
}

// Percentile is the round-trip time below which a fraction q (0 < q <= 1) of the samples fall: the upper bound of
// its bucket (at most 6.25% above), never above Max; 0 without samples. The operator's percentiles
// (v1alpha1.LatencyOf, from the same buckets) are the same bounds, so that the CLI and a status agree.
func (h *LatencyHistogram) Percentile(q float64) time.Duration {
	if h.Count == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.Count)))
	rank = min(max(rank, 1), h.Count)
	var seen uint64
	for b, n := range h.buckets {
		if seen += n; seen >= rank {
			_, hi := latencyBucketBounds(b)
			return min(time.Duration(hi), h.Max)
		}
	}
	return h.Max
}

// Mean is the average round-trip time; 0 without samples.
func (h *LatencyHistogram) Mean() time.Duration {
	if h.Count == 0 {
		return 0
	}
	return h.Sum / time.Duration(h.Count)
}

// LatencyBucket is one non-empty bucket: Count samples below UpperBound (and at or above the previous
// bucket's). What a metrics histogram is filled from.
type LatencyBucket struct {
	UpperBound time.Duration
	Count      uint64
}

// Buckets lists the non-empty buckets in order.
func (h *LatencyHistogram) Buckets() []LatencyBucket {
	var out []LatencyBucket
	for b, n := range h.buckets {
		if n > 0 {
			_, hi := latencyBucketBounds(b)
			out = append(out, LatencyBucket{UpperBound: time.Duration(hi), Count: n})
		}
	}
	return out
}

// LatencySummary is a histogram's percentiles, for reports.
type LatencySummary struct {
	Samples uint64        `json:"samples"`
	Mean    time.Duration `json:"meanNs"`
	P50     time.Duration `json:"p50Ns"`
	P90     time.Duration `json:"p90Ns"`
	P99     time.Duration `json:"p99Ns"`
	P999    time.Duration `json:"p999Ns"`
	Max     time.Duration `json:"maxNs"`
}

// Summary is h's percentiles p50, p90, p99, p99.9, its mean and its maximum.
func (h *LatencyHistogram) Summary() LatencySummary {
	return LatencySummary{Samples: h.Count, Mean: h.Mean(), P50: h.Percentile(0.5), P90: h.Percentile(0.9),
		P99: h.Percentile(0.99), P999: h.Percentile(0.999), Max: h.Max}
}
