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

package e2e

import (
	"math"
	"strconv"
	"testing"
	"time"

	xdpgenv1alpha1 "github.com/xdpgen/xdpgen/api/v1alpha1"
)

// TestSearchMesh: a search between the two nodes (each sends to the other and receives), capped at a rate the
// paths carry without loss, driven by the installed manager through the agents' pods: every trial at the maximum
// is lossless, so the search ends Completed after one trial per phase with NDR and PDR at the maximum; each
// trial sent exactly its rate x duration, and the last trial's receivers counted what its history entry says.
func TestSearchMesh(t *testing.T) {
	e := requireCluster(t)
	const (
		name    = "e2e-search"
		maxRate = 40_000 // both senders together
	)
	e.applyTrafficGenerator(t, name, `  destination:
    port: 9
  receivers:
    latencySampleEvery: 0
    drainTime: 500ms
  search:
    trialDuration: 1s
    maxPacketsPerSecond: `+strconv.Itoa(maxRate)+`
    pdrLossRatio: "0.005"
    precision: "0.05"
    maxTrials: 10
`)
	tg := e.waitPhase(t, name, xdpgenv1alpha1.PhaseCompleted, 180*time.Second)
	s := tg.Status.Search
	for _, h := range s.History {
		t.Logf("trial %d phase %d %s %d pps: sent %d, received %d, loss %s", h.Number, h.Phase, h.Duration.Duration, h.PacketsPerSecond,
			h.SentPackets, h.ReceivedPackets, h.LossRatio)
	}
	t.Logf("%s: %s", s.Phase, s.Message)
	if s.Phase != xdpgenv1alpha1.SearchCompleted || s.Trials != 3 || s.NDR == nil || s.NDR.PacketsPerSecond != maxRate ||
		s.PDR == nil || s.PDR.PacketsPerSecond != maxRate || s.NDR.BitsPerSecond != maxRate*64*8 {
		t.Fatalf("search %s after %d trials, NDR %+v, PDR %+v: want Completed after 3 lossless trials at %d pps of 64-byte frames",
			s.Phase, s.Trials, s.NDR, s.PDR, maxRate)
	}
	for _, h := range s.History {
		// Each of the two senders sends its half, rounded to a frame.
		if want := float64(maxRate) * h.Duration.Seconds(); math.Abs(float64(h.SentPackets)-want) > 2 || h.ReceivedPackets != h.SentPackets {
			t.Errorf("trial %d: sent %d, received %d; want %.0f sent (rate x duration), all received", h.Number, h.SentPackets, h.ReceivedPackets, want)
		}
	}
	last := s.History[len(s.History)-1]
	var received int64
	for _, n := range e.cluster.Nodes() {
		rep := e.nodeReportOf(t, name, n.Name)
		if rep.Status.Trial != last.Number || len(rep.Status.Received) != 1 {
			t.Fatalf("node %s: report of trial %d with paths %+v; want the last trial's (%d), one path from the other node", n.Name,
				rep.Status.Trial, rep.Status.Received, last.Number)
		}
		received += rep.Status.Received[0].ReceivedPackets
	}
	if received != last.ReceivedPackets {
		t.Errorf("the receivers counted %d frames in the last trial, its history entry %d", received, last.ReceivedPackets)
	}
	e.kubectlShows(t, name, []string{"Completed", strconv.Itoa(maxRate)}, []string{"Search:", "Ndr:"})
}
