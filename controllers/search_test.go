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

package controllers

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	xdpgenv1alpha1 "github.com/xdpgen/xdpgen/api/v1alpha1"
)

// pathCapacity is a path of the fake network below: it forwards at most pps frames per second, and drops the
// rest of a trial's frames.
type pathCapacity struct {
	sender, receiver string
	pps              float64
}

// fakeTrial is what the agents report once every node finished tg's current trial on a network of paths:
// each sender sends its share of the trial's rate (senderMax per sender for a trial as fast as it goes), spread
// evenly over its paths, and each receiver receives at most its path's capacity.
func fakeTrial(tg *xdpgenv1alpha1.TrafficGenerator, paths []pathCapacity, senderMax float64, frameSize int64) []xdpgenv1alpha1.NodeReport {
	trial := tg.Status.Search.Trial
	perSender := map[string][]pathCapacity{}
	var senders []string
	for _, p := range paths {
		if perSender[p.sender] == nil {
			senders = append(senders, p.sender)
		}
		perSender[p.sender] = append(perSender[p.sender], p)
	}
	byNode := map[string]*xdpgenv1alpha1.NodeReport{}
	reportOf := func(node string) *xdpgenv1alpha1.NodeReport {
		if byNode[node] == nil {
			byNode[node] = &xdpgenv1alpha1.NodeReport{
				ObjectMeta: metav1.ObjectMeta{Name: xdpgenv1alpha1.NodeReportName(tg.Name, node)},
				Spec:       xdpgenv1alpha1.NodeReportSpec{Generator: tg.Name, NodeName: node},
				Status: xdpgenv1alpha1.NodeReportStatus{Generation: tg.Generation, Trial: trial.Number, Phase: xdpgenv1alpha1.PhaseCompleted,
					StartTime: &trial.StartTime, CompletionTime: &trial.StartTime},
			}
		}
		return byNode[node]
	}
	seconds := trial.Duration.Seconds()
	for _, s := range senders {
		rate := senderMax
		if trial.PacketsPerSecond > 0 {
			rate = float64(trial.PacketsPerSecond) / float64(len(senders))
		}
		for _, p := range perSender[s] {
			sent := int64(math.Round(rate / float64(len(perSender[s])) * seconds))
			received := min(sent, int64(p.pps*seconds))
			snd, rcv := reportOf(p.sender), reportOf(p.receiver)
			snd.Status.Packets += sent
			snd.Status.Bytes += sent * frameSize
			snd.Status.Sent = append(snd.Status.Sent, xdpgenv1alpha1.SentPath{Receiver: p.receiver, Packets: sent})
			rcv.Status.Received = append(rcv.Status.Received, xdpgenv1alpha1.PathResult{Sender: p.sender, Receiver: p.receiver,
				SentPackets: sent, ReceivedPackets: received, LostPackets: sent - received, Settled: true})
		}
	}
	var out []xdpgenv1alpha1.NodeReport
	for _, r := range byNode {
		out = append(out, *r)
	}
	return out
}

func searchGenerator(search xdpgenv1alpha1.Search) *xdpgenv1alpha1.TrafficGenerator {
	tg := testGenerator()
	tg.Generation = 1
	tg.Spec.Duration = nil
	tg.Spec.Receivers = &xdpgenv1alpha1.Receivers{}
	tg.Spec.Search = &search
	return tg
}

// runFakeSearch drives tg's search through statusFor on the fake network until it is over (or maxSteps
// status computations), each step from the status alone: a new reconcile, as after a manager restart.
func runFakeSearch(t *testing.T, tg *xdpgenv1alpha1.TrafficGenerator, expected map[string]bool, paths []pathCapacity, senderMax float64) {
	t.Helper()
	now := metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	st, _ := statusFor(tg, expected, nil, now, time.Minute)
	if st.Search == nil || st.Search.Trial == nil || st.Search.Trial.Number != 1 || st.Phase != xdpgenv1alpha1.PhasePending {
		t.Fatalf("the first status: phase %s, search %+v; want the first trial, Pending", st.Phase, st.Search)
	}
	tg.Status = st
	for step := 0; !tg.Status.Search.Phase.Over(); step++ {
		if step > xdpgenv1alpha1.MaxSearchTrials {
			t.Fatalf("no end after %d trials: %+v", step, tg.Status.Search)
		}
		trial := tg.Status.Search.Trial.Number
		// Before the nodes finish the trial nothing moves on.
		if st, _ := statusFor(tg, expected, nil, now, time.Minute); st.Search.Trial.Number != trial || st.Phase.Terminal() {
			t.Fatalf("trial %d moved on before its nodes reported: %+v", trial, st.Search)
		}
		now = metav1.NewTime(now.Add(time.Second))
		st, recheck := statusFor(tg, expected, fakeTrial(tg, paths, senderMax, 64), now, time.Minute)
		tg.Status = *st.DeepCopy()
		if s := tg.Status.Search; !s.Phase.Over() {
			if s.Trial.Number != trial+1 || tg.Status.Phase != xdpgenv1alpha1.PhaseRunning || recheck.IsZero() {
				t.Fatalf("after trial %d: phase %s, trial %+v, recheck %v: want the next trial, Running, a time to look for lost nodes",
					trial, tg.Status.Phase, s.Trial, recheck)
			}
		}
	}
}

// TestSearchFindsTheFakeBottleneck: two senders to one receiver, one path cut at 20 kpps: the generator's NDR is
// twice that (each path carries half), within the precision; PDR (0.5%) at or above it; the cut path is the one
// that lost first; the history holds every trial, whose numbers count up; the search ends Completed with an
// event-ready message.
func TestSearchFindsTheFakeBottleneck(t *testing.T) {
	tg := searchGenerator(xdpgenv1alpha1.Search{TrialDuration: &metav1.Duration{Duration: 10 * time.Second}, NDRLossRatio: "0",
		PDRLossRatio: "0.005", Precision: "0.01", MaxTrials: 60})
	paths := []pathCapacity{{"s1", "r1", 1e9}, {"s2", "r1", 20_000}}
	runFakeSearch(t, tg, map[string]bool{"s1": true, "s2": true, "r1": true}, paths, 1e6)
	s := tg.Status.Search
	t.Logf("%s", s.Message)
	if tg.Status.Phase != xdpgenv1alpha1.PhaseCompleted || s.Phase != xdpgenv1alpha1.SearchCompleted || s.CompletionTime == nil {
		t.Fatalf("phase %s, search %s: want Completed", tg.Status.Phase, s.Phase)
	}
	if s.MaxPacketsPerSecond != 2e6 || s.MeanFrameSize != 64 {
		t.Fatalf("maximum %d pps, mean frame %d bytes: want the senders' 2 Mpps of 64-byte frames", s.MaxPacketsPerSecond, s.MeanFrameSize)
	}
	if ndr := float64(s.NDR.PacketsPerSecond); ndr < 40_000*0.99 || ndr > 40_000 {
		t.Fatalf("NDR %+v: want within 1%% below 40 kpps", s.NDR)
	}
	if s.NDR.BitsPerSecond != s.NDR.PacketsPerSecond*64*8 || s.NDR.LossRatio != "0" {
		t.Fatalf("NDR %+v: want its bit rate at 64 bytes a frame, loss ratio 0", s.NDR)
	}
	if s.PDR == nil || s.PDR.PacketsPerSecond < s.NDR.PacketsPerSecond || s.PDR.LossRatio != "0.005" {
		t.Fatalf("PDR %+v, NDR %+v: want PDR (0.005) at or above NDR", s.PDR, s.NDR)
	}
	if int(s.Trials) != len(s.History) || s.Trials > 30 || s.Trial.Number != s.Trials {
		t.Fatalf("%d trials, %d in the history, last trial %d: want them equal and at most 30", s.Trials, len(s.History), s.Trial.Number)
	}
	for i, h := range s.History {
		if h.Number != int32(i+1) || h.SentPackets == 0 || h.ReceivedPackets > h.SentPackets ||
			h.LossRatio != xdpgenv1alpha1.LossRatio(h.SentPackets-h.ReceivedPackets, h.SentPackets) {
			t.Fatalf("history[%d] = %+v", i, h)
		}
	}
	if len(s.Paths) != 2 || s.Paths[0].Sender != "s2" || s.Paths[0].FirstLossPacketsPerSecond < s.NDR.PacketsPerSecond ||
		s.Paths[0].FirstLossPacketsPerSecond > s.NDR.UpperPacketsPerSecond || s.Paths[0].LosslessPacketsPerSecond > 20_000 ||
		s.Paths[0].LosslessPacketsPerSecond < 19_800 || s.Paths[1].FirstLossPacketsPerSecond != 0 {
		t.Fatalf("paths %+v: want s2>r1 first, losing first above the NDR and lossless up to about 20 kpps, then s1>r1 without loss", s.Paths)
	}
	if !strings.Contains(s.Message, "NDR (loss ratio 0)") || !strings.Contains(s.Message, "trials") {
		t.Fatalf("message %q", s.Message)
	}
	// Over is over: nothing the nodes do changes it.
	if st, _ := statusFor(tg, map[string]bool{"s1": true}, nil, metav1.Now(), time.Minute); st.Search.Phase != s.Phase ||
		st.Search.NDR.PacketsPerSecond != s.NDR.PacketsPerSecond || st.Phase != xdpgenv1alpha1.PhaseCompleted {
		t.Fatalf("after the end: phase %s, search %+v", st.Phase, st.Search)
	}
}

// TestSearchWithoutBottleneckFake: no path drops anything: the NDR is the maximum rate, reached by the first
// trial, with maxPacketsPerSecond as the first trial's rate.
func TestSearchWithoutBottleneckFake(t *testing.T) {
	tg := searchGenerator(xdpgenv1alpha1.Search{TrialDuration: &metav1.Duration{Duration: time.Second}, MaxPacketsPerSecond: ptr.To[int64](100_000)})
	runFakeSearch(t, tg, map[string]bool{"s1": true, "r1": true}, []pathCapacity{{"s1", "r1", 1e9}}, 1e6)
	s := tg.Status.Search
	if s.NDR.PacketsPerSecond != 100_000 || s.History[0].PacketsPerSecond != 100_000 || s.PDR != nil || s.Phase != xdpgenv1alpha1.SearchCompleted {
		t.Fatalf("search %+v: want NDR at the maximum 100 kpps, no PDR", s)
	}
}

// TestSearchStopsAtMaxTrials: a search cut short ends Incomplete, with the bounds it found.
func TestSearchStopsAtMaxTrials(t *testing.T) {
	tg := searchGenerator(xdpgenv1alpha1.Search{TrialDuration: &metav1.Duration{Duration: time.Second}, MaxTrials: 3})
	runFakeSearch(t, tg, map[string]bool{"s1": true, "r1": true}, []pathCapacity{{"s1", "r1", 12_345}}, 1e6)
	s := tg.Status.Search
	if s.Phase != xdpgenv1alpha1.SearchIncomplete || s.Trials != 3 || tg.Status.Phase != xdpgenv1alpha1.PhaseCompleted ||
		!strings.Contains(s.Message, "spec.search.maxTrials") {
		t.Fatalf("search %+v: want Incomplete after 3 trials", s)
	}
}

// TestSearchRunsShortTrialsAgain: a trial whose senders sent less than its frames was not at its rate: it runs
// again under the next number, and only the run that sent them all enters the history; a trial short three
// times fails the search, saying what to do.
func TestSearchRunsShortTrialsAgain(t *testing.T) {
	tg := searchGenerator(xdpgenv1alpha1.Search{TrialDuration: &metav1.Duration{Duration: time.Second}, MaxPacketsPerSecond: ptr.To[int64](10_000)})
	now := metav1.Now()
	expected := map[string]bool{"s1": true, "r1": true}
	paths := []pathCapacity{{"s1", "r1", 1e9}}
	short := func() []xdpgenv1alpha1.NodeReport {
		reports := fakeTrial(tg, paths, 1e6, 64)
		for i := range reports {
			for j := range reports[i].Status.Received {
				p := &reports[i].Status.Received[j]
				p.SentPackets, p.ReceivedPackets = p.SentPackets/2, p.ReceivedPackets/2
			}
		}
		return reports
	}
	tg.Status, _ = statusFor(tg, expected, nil, now, time.Minute)
	for attempt := int32(2); attempt <= 3; attempt++ {
		tg.Status, _ = statusFor(tg, expected, short(), now, time.Minute)
		s := tg.Status.Search
		if s.Phase != xdpgenv1alpha1.SearchSearching || s.Trial.Number != attempt || s.Trial.Attempt != attempt || s.ShortTrials != attempt-1 ||
			len(s.History) != 0 || s.Trial.PacketsPerSecond != 10_000 || !strings.Contains(s.Message, "running it again as trial") {
			t.Fatalf("after %d short runs: %+v, trial %+v; want the trial again as trial %d", attempt-1, s, s.Trial, attempt)
		}
	}
	good := *tg.DeepCopy()
	good.Status, _ = statusFor(&good, expected, fakeTrial(&good, paths, 1e6, 64), now, time.Minute)
	if h := good.Status.Search.History; len(h) != 1 || h[0].Number != 3 || h[0].SentPackets != 1000 || good.Status.Search.Trial.Number != 4 ||
		good.Status.Search.Trial.Attempt != 1 {
		t.Fatalf("history %+v, trial %+v: want the third run as the first trial of the history, then trial 4", h, good.Status.Search.Trial)
	}
	tg.Status, _ = statusFor(tg, expected, short(), now, time.Minute)
	if s := tg.Status.Search; s.Phase != xdpgenv1alpha1.SearchFailed || tg.Status.Phase != xdpgenv1alpha1.PhaseFailed ||
		!strings.Contains(s.Message, "the senders sent 500 of the 1000 frames of trial 3 (10000 pps for 100ms), 3 times") ||
		!strings.Contains(s.Message, "lower spec.search.maxPacketsPerSecond") {
		t.Fatalf("after three short runs: phase %s, search %+v; want Failed saying what to do", tg.Status.Phase, s)
	}
}

// TestSearchFailsWithItsTrial: a node that fails a trial fails the search, saying which trial and why; a
// history that does not lead to the trial in the status (edited by hand) fails it too.
func TestSearchFailsWithItsTrial(t *testing.T) {
	tg := searchGenerator(xdpgenv1alpha1.Search{TrialDuration: &metav1.Duration{Duration: time.Second}})
	now := metav1.Now()
	expected := map[string]bool{"s1": true, "r1": true}
	tg.Status, _ = statusFor(tg, expected, nil, now, time.Minute)
	reports := fakeTrial(tg, []pathCapacity{{"s1", "r1", 1e9}}, 1e6, 64)
	for i := range reports {
		if reports[i].Spec.NodeName == "s1" {
			reports[i].Status.Phase, reports[i].Status.Message = xdpgenv1alpha1.PhaseFailed, "spec.interface nope0: no such interface here"
		}
	}
	st, _ := statusFor(tg, expected, reports, now, time.Minute)
	if st.Phase != xdpgenv1alpha1.PhaseFailed || st.Search.Phase != xdpgenv1alpha1.SearchFailed ||
		!strings.Contains(st.Search.Message, "trial 1 failed: s1: spec.interface nope0") {
		t.Fatalf("phase %s, search %+v: want Failed naming trial 1 and the node's reason", st.Phase, st.Search)
	}

	tg = searchGenerator(xdpgenv1alpha1.Search{TrialDuration: &metav1.Duration{Duration: time.Second}})
	tg.Status, _ = statusFor(tg, expected, nil, now, time.Minute)
	tg.Status, _ = statusFor(tg, expected, fakeTrial(tg, []pathCapacity{{"s1", "r1", 1e9}}, 1e6, 64), now, time.Minute)
	tg.Status.Search.Trial.PacketsPerSecond++ // not what the history leads to
	st, _ = statusFor(tg, expected, nil, now, time.Minute)
	if st.Search.Phase != xdpgenv1alpha1.SearchFailed || !strings.Contains(st.Search.Message, "cannot resume the search from status.search.history") {
		t.Fatalf("search %+v: want Failed, the history not leading to the trial", st.Search)
	}
}

// TestSearchAgainstAPIServer drives a search through the controller against a real API server, the test
// writing the NodeReports of each trial the controller asks for, as the agents would (a mesh of two nodes, one
// path cut at 10 kpps). Mid-search the manager restarts: the next one resumes from the status alone. The search
// ends Completed with the NDR of the cut path's share, its history holds exactly what the reports said, and a
// SearchCompleted event says what it found.
func TestSearchAgainstAPIServer(t *testing.T) {
	requireEnvtest(t)
	g := NewWithT(t)
	ctx := context.Background()
	ns := testNamespace(t, "search")
	a, b := ns+"-a", ns+"-b"
	createNodes(t, ns, a, b)
	_, stop := startStoppableManager(t, cfg, ns, 50*time.Millisecond, 0, nil)

	tg := generatorOnTestNodes(ns, "search", func(s *xdpgenv1alpha1.TrafficGeneratorSpec) {
		s.Destination.Address = ""
		s.Receivers = &xdpgenv1alpha1.Receivers{NodeSelector: testNodeSelector(ns)}
		s.Search = &xdpgenv1alpha1.Search{TrialDuration: &metav1.Duration{Duration: time.Second}, PDRLossRatio: "0.005", Precision: "0.02"}
	})
	g.Expect(k8sClient.Create(ctx, tg)).To(Succeed())
	paths := []pathCapacity{{a, b, 10_000}, {b, a, 1e9}}
	received := map[int32]int64{}
	for number := int32(1); ; number++ {
		cur := &xdpgenv1alpha1.TrafficGenerator{}
		g.Eventually(func(g Gomega) {
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(tg), cur)).To(Succeed())
			g.Expect(cur.Status.Search).NotTo(BeNil())
			g.Expect(cur.Status.Search.Trial).NotTo(BeNil())
			g.Expect(cur.Status.Search.Phase.Over() || cur.Status.Search.Trial.Number == number).To(BeTrue(),
				"waiting for trial %d, search %+v", number, cur.Status.Search)
		}).WithTimeout(eventually).WithPolling(poll).Should(Succeed())
		if cur.Status.Search.Phase.Over() {
			break
		}
		g.Expect(number).To(BeNumerically("<=", 40), "a search of at most 40 trials")
		if number == 5 {
			t.Log("the manager restarts mid-search")
			stop()
			_, stop = startStoppableManager(t, cfg, ns, 50*time.Millisecond, 0, nil)
		}
		for _, rep := range fakeTrial(cur, paths, 500_000, 64) {
			for _, p := range rep.Status.Received {
				received[number] += p.ReceivedPackets
			}
			writeReport(t, cur, rep)
		}
	}

	cur := &xdpgenv1alpha1.TrafficGenerator{}
	g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(tg), cur)).To(Succeed())
	s := cur.Status.Search
	t.Logf("%s", s.Message)
	g.Expect(cur.Status.Phase).To(Equal(xdpgenv1alpha1.PhaseCompleted))
	g.Expect(s.Phase).To(Equal(xdpgenv1alpha1.SearchCompleted))
	g.Expect(s.NDR.PacketsPerSecond).To(BeNumerically("~", 20_000, 20_000*0.02), "twice the cut path's 10 kpps")
	g.Expect(s.PDR.PacketsPerSecond).To(BeNumerically(">=", s.NDR.PacketsPerSecond))
	g.Expect(s.History).To(HaveLen(len(received)))
	for _, h := range s.History {
		g.Expect(h.ReceivedPackets).To(Equal(received[h.Number]), "trial %d", h.Number)
	}
	g.Expect(s.Paths).NotTo(BeEmpty())
	g.Expect(s.Paths[0].Sender).To(Equal(a), "the cut path lost first")
	g.Expect(condition(cur, xdpgenv1alpha1.ConditionComplete).Status).To(Equal(metav1.ConditionTrue))
	g.Expect(condition(cur, xdpgenv1alpha1.ConditionComplete).Message).To(HavePrefix("search completed: NDR (loss ratio 0)"))

	g.Eventually(func(g Gomega) {
		var events eventsv1.EventList
		g.Expect(k8sClient.List(ctx, &events, client.InNamespace(ns))).To(Succeed())
		var notes []string
		for _, e := range events.Items {
			if e.Regarding.Name == "search" && e.Reason == xdpgenv1alpha1.ReasonSearchCompleted {
				notes = append(notes, e.Note)
			}
		}
		g.Expect(notes).To(ConsistOf(ContainSubstring("search completed: NDR (loss ratio 0)")))
	}).WithTimeout(eventually).WithPolling(poll).Should(Succeed())
}

// writeReport creates or updates a node's report of tg as its agent would.
func writeReport(t *testing.T, tg *xdpgenv1alpha1.TrafficGenerator, rep xdpgenv1alpha1.NodeReport) {
	t.Helper()
	ctx := context.Background()
	have := &xdpgenv1alpha1.NodeReport{}
	key := client.ObjectKey{Namespace: tg.Namespace, Name: rep.Name}
	if err := k8sClient.Get(ctx, key, have); apierrors.IsNotFound(err) {
		have = &xdpgenv1alpha1.NodeReport{
			ObjectMeta: metav1.ObjectMeta{Namespace: tg.Namespace, Name: rep.Name, Labels: map[string]string{
				xdpgenv1alpha1.LabelGenerator: tg.Name, xdpgenv1alpha1.LabelNode: xdpgenv1alpha1.LabelValue(rep.Spec.NodeName)}},
			Spec: rep.Spec,
		}
		if err := k8sClient.Create(ctx, have); err != nil {
			t.Fatal(err)
		}
	} else if err != nil {
		t.Fatal(err)
	}
	have.Status = rep.Status
	now := metav1.Now()
	have.Status.LastUpdateTime = &now
	if err := k8sClient.Status().Update(ctx, have); err != nil {
		t.Fatal(err)
	}
}
