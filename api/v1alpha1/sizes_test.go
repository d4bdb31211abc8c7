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
	"slices"
	"testing"
)

func TestMergeSizeCounts(t *testing.T) {
	a := []SizeCount{{Min: 100, Max: 199, Packets: 5}, {Min: 0, Max: 99, Packets: 1}}
	b := []SizeCount{{Min: 0, Max: 99, Packets: 2}, {Min: 200, Max: 299, Packets: 3}}
	want := []SizeCount{{Min: 0, Max: 99, Packets: 3}, {Min: 100, Max: 199, Packets: 5}, {Min: 200, Max: 299, Packets: 3}}
	if got := MergeSizeCounts(a, b); !slices.Equal(want, got) {
		t.Errorf("merged %v, want %v", got, want)
	}
	var many []SizeCount
	for i := range 20 {
		many = append(many, SizeCount{Min: int32(i), Max: int32(i), Packets: 1})
	}
	if got := MergeSizeCounts(many); len(got) != MaxSizeBuckets || got[MaxSizeBuckets-1].Min != MaxSizeBuckets-1 {
		t.Errorf("20 buckets merged to %v, want the %d smallest", got, MaxSizeBuckets)
	}
}
