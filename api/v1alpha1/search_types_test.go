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
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestSenderShare: each sender's share of a trial, in whole frames per second and whole frames, as the agents
// send it and the controller expects it.
func TestSenderShare(t *testing.T) {
	for _, tc := range []struct {
		name              string
		pps               int64
		duration          time.Duration
		senders           int
		wantPPS, wantPkts int64
	}{
		{"as fast as the senders go", 0, time.Second, 3, 0, 0},
		{"one sender: all of it", 50_000, time.Second, 1, 50_000, 50_000},
		{"half each, in whole frames", 40_000, 316227766, 2, 20_000, 6325},
		{"shares round to whole frames per second", 1049, 10 * time.Second, 100, 10, 100},
		{"never below a frame", 10, 100 * time.Millisecond, 100, 1, 1},
		{"no sender known: one", 1_000_000, 10 * time.Second, 0, 1_000_000, 10_000_000},
	} {
		trial := &SearchTrial{PacketsPerSecond: tc.pps, Duration: metav1.Duration{Duration: tc.duration}}
		if pps, pkts := trial.SenderShare(tc.senders); pps != tc.wantPPS || pkts != tc.wantPkts {
			t.Errorf("%s: SenderShare(%d) of %d pps for %s = %d pps, %d frames; want %d pps, %d frames", tc.name, tc.senders, tc.pps,
				tc.duration, pps, pkts, tc.wantPPS, tc.wantPkts)
		}
	}
}
