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
	"slices"
)

// MaxSizeBuckets bounds the size buckets a report or a status lists.
const MaxSizeBuckets = 16

// MergeSizeCounts adds lists of frames per size bucket, bucket by bucket (the same bounds), sorted by size and
// bounded to the MaxSizeBuckets smallest buckets (nodes of one generation count in the same buckets).
func MergeSizeCounts(lists ...[]SizeCount) []SizeCount {
	type bounds struct{ lo, hi int32 }
	sum := map[bounds]int64{}
	for _, l := range lists {
		for _, c := range l {
			sum[bounds{c.Min, c.Max}] += c.Packets
		}
	}
	out := make([]SizeCount, 0, len(sum))
	for b, n := range sum {
		out = append(out, SizeCount{Min: b.lo, Max: b.hi, Packets: n})
	}
	slices.SortFunc(out, func(a, b SizeCount) int { return cmp.Or(cmp.Compare(a.Min, b.Min), cmp.Compare(a.Max, b.Max)) })
	return out[:min(len(out), MaxSizeBuckets)]
}
