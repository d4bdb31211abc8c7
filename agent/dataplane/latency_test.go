package dataplane

import (
	"math/bits"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// bucketOf is the receive program's bucket for v ns, computed here independently: 16 buckets per power of two.
func bucketOf(v uint64) int {
	if v < 16 {
		return int(v)
	}
	e := bits.Len64(v) - 1
	return (e-3)*16 + int(v>>(e-4))&15
}

func histogramOf(samples ...time.Duration) *LatencyHistogram {
	h := &LatencyHistogram{}
	for _, s := range samples {
		h.Count++
		h.Sum += s
		h.Max = max(h.Max, s)
		h.buckets[bucketOf(uint64(s))]++
	}
	return h
}

func TestLatencyBucketBounds(t *testing.T) {
	for _, v := range []uint64{0, 1, 15, 16, 17, 31, 32, 33, 1000, 700_000, 1<<32 - 1} {
		lo, hi := latencyBucketBounds(bucketOf(v))
		if v < lo || v >= hi {
			t.Errorf("%d ns is in bucket %d, whose bounds are [%d, %d)", v, bucketOf(v), lo, hi)
		}
		if v >= 16 && float64(hi-lo) > float64(lo)/16 {
			t.Errorf("bucket of %d ns is [%d, %d): wider than 1/16 of its start", v, lo, hi)
		}
	}
}

func TestLatencyPercentiles(t *testing.T) {
	var samples []time.Duration
	for i := 1; i <= 1000; i++ {
		samples = append(samples, time.Duration(i)*time.Microsecond)
	}
	got := histogramOf(samples...).Summary()
	// The bound of the sample's bucket: at or above it, by at most a bucket's width (1/16 of its start).
	within := func(got, want time.Duration) bool { return got >= want && got <= want+want/16+1 }
	for _, c := range []struct {
		name      string
		got, want time.Duration
	}{
		{"p50", got.P50, 500 * time.Microsecond}, {"p90", got.P90, 900 * time.Microsecond},
		{"p99", got.P99, 990 * time.Microsecond}, {"p99.9", got.P999, 999 * time.Microsecond},
	} {
		if !within(c.got, c.want) {
			t.Errorf("%s = %s, want %s to %s", c.name, c.got, c.want, c.want+c.want/16+1)
		}
	}
	if got.Max != time.Millisecond || got.Samples != 1000 || got.Mean != 500500*time.Nanosecond {
		t.Errorf("summary %+v: want max 1ms, 1000 samples, mean 500.5us", got)
	}
	if empty := (&LatencyHistogram{}).Summary(); empty != (LatencySummary{}) {
		t.Errorf("empty histogram: %+v", empty)
	}
	merged := histogramOf(time.Millisecond)
	merged.Merge(histogramOf(3 * time.Millisecond))
	if merged.Count != 2 || merged.Max != 3*time.Millisecond || len(merged.Buckets()) != 2 {
		t.Errorf("merged: %+v", merged.Buckets())
	}
}

func TestSettlePath(t *testing.T) {
	for _, tc := range []struct {
		name   string
		sent   uint64
		counts StreamCounts
		want   PathResult
	}{
		{"all", 1000, StreamCounts{Packets: 1000, Expected: 1000}, PathResult{Sent: 1000, Received: 1000}},
		{"lost at the end", 1000, StreamCounts{Packets: 990, Expected: 990}, PathResult{Sent: 1000, Received: 990, Lost: 10, LossRatio: 0.01}},
		{"duplicates do not hide loss", 100, StreamCounts{Packets: 100, Expected: 100, Duplicates: 5, Reordered: 2},
			PathResult{Sent: 100, Received: 95, Lost: 5, LossRatio: 0.05, Reordered: 2, Duplicates: 5}},
		{"nothing sent", 0, StreamCounts{}, PathResult{}},
		{"more than sent", 5, StreamCounts{Packets: 6, Expected: 6}, PathResult{Sent: 5, Received: 6}},
	} {
		if diff := cmp.Diff(tc.want, SettlePath(tc.sent, tc.counts)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, diff)
		}
	}
	if g := (StreamCounts{Packets: 12, Duplicates: 2, Expected: 15}).Gaps(); g != 5 {
		t.Errorf("gaps %d, want 5", g)
	}
}
