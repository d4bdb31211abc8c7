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
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	xdpgenv1alpha1 "github.com/xdpgen/xdpgen/api/v1alpha1"
)

// Scale test parameters: a thousand nodes, each reporting every three seconds, as the agents do.
const (
	scaleNodes          = 1000
	scaleReportInterval = 3 * time.Second
	scaleRounds         = 5 // running reports per node, then one final report
	scaleWorkers        = 128
	scaleStatusInterval = 2 * time.Second
	// scaleLostTimeout keeps nodes from being lost when a loaded test machine writes their reports late: these
	// tests are about the status, TestNodeLost about lost nodes.
	scaleLostTimeout = 10 * time.Minute
)

// statusWriteLog records when the controller wrote a TrafficGenerator's status.
type statusWriteLog struct {
	mu    sync.Mutex
	times []time.Time
}

// wrap returns c, recording its successful TrafficGenerator status updates.
func (l *statusWriteLog) wrap(c client.Client) client.Client {
	return countingClient{Client: c, log: l}
}

type countingClient struct {
	client.Client
	log *statusWriteLog
}

func (c countingClient) Status() client.SubResourceWriter {
	return countingStatusWriter{SubResourceWriter: c.Client.Status(), log: c.log}
}

type countingStatusWriter struct {
	client.SubResourceWriter
	log *statusWriteLog
}

func (w countingStatusWriter) Update(ctx context.Context, obj client.Object, opts ...client.SubResourceUpdateOption) error {
	err := w.SubResourceWriter.Update(ctx, obj, opts...)
	if _, ok := obj.(*xdpgenv1alpha1.TrafficGenerator); ok && err == nil {
		w.log.mu.Lock()
		w.log.times = append(w.log.times, time.Now())
		w.log.mu.Unlock()
	}
	return err
}

func (l *statusWriteLog) between(from, to time.Time) []time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []time.Time
	for _, t := range l.times {
		if !t.Before(from) && !t.After(to) {
			out = append(out, t)
		}
	}
	return out
}

// TestScaleThousandNodes writes the NodeReports of a thousand simulated nodes against the real API server at the
// agents' cadence, spread evenly over each interval, with the controller running. The status must end up equal to
// the sum of the reports, and the controller must write it at most once per status interval.
func TestScaleThousandNodes(t *testing.T) {
	requireEnvtest(t)
	if testing.Short() {
		t.Skip("scale test skipped in -short mode")
	}
	g := NewWithT(t)
	ctx := context.Background()
	ns := testNamespace(t, "scale")
	writes := &statusWriteLog{}
	startManagerAs(t, cfg, ns, scaleStatusInterval, scaleLostTimeout, writes.wrap)

	tg := generatorOnTestNodes(ns, "scale", func(s *xdpgenv1alpha1.TrafficGeneratorSpec) { s.Duration = &metav1.Duration{Duration: time.Minute} })
	createNodes(t, ns, scaleNodeNames(scaleNodes)...)
	g.Expect(k8sClient.Create(ctx, tg)).To(Succeed())
	agents := agentsClient(t)

	type node struct {
		name    string
		offset  time.Duration // when in each interval this node reports
		pps     int64
		packets int64
		report  *xdpgenv1alpha1.NodeReport
	}
	nodes := make([]*node, scaleNodes)
	for i := range nodes {
		nodes[i] = &node{
			name:   scaleNodeNames(scaleNodes)[i],
			offset: time.Duration(i) * scaleReportInterval / scaleNodes,
			pps:    1000 + int64(i),
		}
	}

	var (
		reportWrites atomic.Int64
		maxLag       atomic.Int64
		failures     atomic.Int64
		firstErr     atomic.Value
	)
	// round runs one reporting round: each node writes at start+offset, by a bounded number of workers.
	round := func(start time.Time, write func(n *node) error) {
		var wg sync.WaitGroup
		for w := range scaleWorkers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; i < len(nodes); i += scaleWorkers {
					n := nodes[i]
					due := start.Add(n.offset)
					time.Sleep(time.Until(due))
					if lag := time.Since(due); lag > time.Duration(maxLag.Load()) {
						maxLag.Store(int64(lag))
					}
					if err := write(n); err != nil {
						failures.Add(1)
						firstErr.CompareAndSwap(nil, fmt.Sprintf("%s: %v", n.name, err))
						continue
					}
					reportWrites.Add(1)
				}
			}()
		}
		wg.Wait()
	}
	writeStatus := func(n *node, phase xdpgenv1alpha1.Phase, pps int64) error {
		now := metav1.Now()
		st := xdpgenv1alpha1.NodeReportStatus{
			Generation: tg.Generation, Phase: phase, StartTime: n.report.Status.StartTime, LastUpdateTime: &now,
			Packets: n.packets, Bytes: n.packets * 64, PacketsPerSecond: pps, BitsPerSecond: pps * 64 * 8,
			Actions: []xdpgenv1alpha1.ActionCount{{Action: xdpgenv1alpha1.XDPRedirect, Packets: n.packets, Bytes: n.packets * 64}},
		}
		if st.StartTime == nil {
			st.StartTime = &now
		}
		if phase.Terminal() {
			st.CompletionTime = &now
		}
		n.report.Status = st
		return agents.Status().Update(ctx, n.report)
	}

	begin := time.Now()
	t.Logf("%d nodes create their reports over %s", scaleNodes, scaleReportInterval)
	round(time.Now(), func(n *node) error {
		n.report = newReport(tg, n.name)
		if err := agents.Create(ctx, n.report); err != nil {
			return err
		}
		return writeStatus(n, xdpgenv1alpha1.PhaseRunning, 0)
	})
	cadenceStart := time.Now()
	t.Logf("%d nodes report every %s for %d rounds", scaleNodes, scaleReportInterval, scaleRounds)
	for k := range scaleRounds {
		round(cadenceStart.Add(time.Duration(k)*scaleReportInterval), func(n *node) error {
			n.packets += n.pps * int64(scaleReportInterval/time.Second)
			return writeStatus(n, xdpgenv1alpha1.PhaseRunning, n.pps)
		})
	}
	if f := failures.Load(); f > 0 {
		t.Fatalf("%d report writes failed, first: %v", f, firstErr.Load())
	}

	var runningPackets, runningPPS int64
	for _, n := range nodes {
		runningPackets += n.packets
		runningPPS += n.pps
	}
	g.Eventually(func(g Gomega) {
		cur := &xdpgenv1alpha1.TrafficGenerator{}
		g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(tg), cur)).To(Succeed())
		g.Expect(cur.Status.Phase).To(Equal(xdpgenv1alpha1.PhaseRunning))
		g.Expect(cur.Status.NodesSummary).To(Equal(fmt.Sprintf("%d/%d", scaleNodes, scaleNodes)))
		g.Expect(cur.Status.Totals).To(Equal(xdpgenv1alpha1.Totals{
			Packets: runningPackets, Bytes: runningPackets * 64, PacketsPerSecond: runningPPS, BitsPerSecond: runningPPS * 64 * 8,
		}))
	}).WithTimeout(eventually).WithPolling(100 * time.Millisecond).Should(Succeed())

	t.Logf("%d nodes report completion", scaleNodes)
	round(time.Now(), func(n *node) error {
		n.packets += n.pps
		return writeStatus(n, xdpgenv1alpha1.PhaseCompleted, 0)
	})
	if f := failures.Load(); f > 0 {
		t.Fatalf("%d report writes failed, first: %v", f, firstErr.Load())
	}
	reportsDone := time.Now()

	var wantPackets int64
	for _, n := range nodes {
		wantPackets += n.packets
	}
	final := &xdpgenv1alpha1.TrafficGenerator{}
	g.Eventually(func(g Gomega) {
		g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(tg), final)).To(Succeed())
		g.Expect(final.Status.Phase).To(Equal(xdpgenv1alpha1.PhaseCompleted))
		// No current rate once over; the average over the run instead.
		g.Expect(final.Status.Totals).To(And(HaveField("Packets", wantPackets), HaveField("Bytes", wantPackets*64),
			HaveField("PacketsPerSecond", int64(0)), HaveField("AveragePacketsPerSecond", BeNumerically(">", 0))))
		g.Expect(final.Status.NodesTotal).To(Equal(int32(scaleNodes)))
		g.Expect(final.Status.NodesCompleted).To(Equal(int32(scaleNodes)))
		g.Expect(final.Status.NodesOfInterest).To(BeEmpty())
	}).WithTimeout(eventually).WithPolling(100 * time.Millisecond).Should(Succeed())
	settled := time.Now()

	// The controller's writes to the parent, from the first report to the final status.
	ws := writes.between(begin, settled)
	elapsed := settled.Sub(begin)
	var minGap time.Duration
	for i := 1; i < len(ws); i++ {
		if gap := ws[i].Sub(ws[i-1]); i == 1 || gap < minGap {
			minGap = gap
		}
	}
	reportRate := float64(reportWrites.Load()) / reportsDone.Sub(begin).Seconds()
	writeRate := float64(len(ws)) / elapsed.Seconds()
	t.Logf("%d NodeReport writes in %s (%.0f/s, at most %s behind schedule); "+
		"the controller wrote the TrafficGenerator status %d times in %s (%.2f/s, status interval %s, closest two writes %s apart); "+
		"final status %d bytes of JSON for %d nodes, settled %s after the last report",
		reportWrites.Load(), reportsDone.Sub(begin).Round(time.Millisecond), reportRate, time.Duration(maxLag.Load()).Round(time.Millisecond),
		len(ws), elapsed.Round(time.Millisecond), writeRate, scaleStatusInterval, minGap.Round(time.Millisecond),
		jsonSize(t, final.Status), scaleNodes, settled.Sub(reportsDone).Round(time.Millisecond))

	if maxWrites := int(elapsed/scaleStatusInterval) + 2; len(ws) > maxWrites {
		t.Errorf("the controller wrote the status %d times in %s; want at most %d (one per %s, plus slack)", len(ws), elapsed, maxWrites, scaleStatusInterval)
	}
	// Writes are spaced by the status interval, less the time between the throttle's clock readings.
	if len(ws) > 1 && minGap < scaleStatusInterval-100*time.Millisecond {
		t.Errorf("two status writes only %s apart; want at least the status interval %s", minGap, scaleStatusInterval)
	}
}

func jsonSize(t *testing.T, v any) int {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return len(b)
}

// scaleNodeNames are the names of n simulated nodes.
func scaleNodeNames(n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("node-%04d", i)
	}
	return names
}

// agentsClient is the simulated agents' client: many nodes share it, so it must not throttle them.
func agentsClient(t *testing.T) client.Client {
	t.Helper()
	agentCfg := rest.CopyConfig(cfg)
	agentCfg.QPS, agentCfg.Burst = 5000, 5000
	agents, err := client.New(agentCfg, client.Options{Scheme: testScheme})
	if err != nil {
		t.Fatal(err)
	}
	return agents
}

// Status size test parameters: the TrafficGenerator must stay well within what the API server and kubectl handle
// however many nodes send.
const (
	sizeNodes       = 5000
	sizeFailEvery   = 50 // one node in sizeFailEvery fails, with a message as long as a NodeReport takes
	maxGeneratorLen = 256 << 10
)

// TestScaleStatusSize runs a TrafficGenerator on five thousand simulated Nodes, a hundred of which fail with the
// longest message a NodeReport takes: the TrafficGenerator's JSON stays under 256 KiB while they run and when the
// run has failed, and its counts are right.
func TestScaleStatusSize(t *testing.T) {
	requireEnvtest(t)
	if testing.Short() {
		t.Skip("scale test skipped in -short mode")
	}
	g := NewWithT(t)
	ctx := context.Background()
	ns := testNamespace(t, "size")
	startManagerAs(t, cfg, ns, scaleStatusInterval, scaleLostTimeout, nil)
	names := scaleNodeNames(sizeNodes)
	createNodes(t, ns, names...)
	tg := generatorOnTestNodes(ns, "size", func(s *xdpgenv1alpha1.TrafficGeneratorSpec) { s.Packets = ptr.To[int64](1000) })
	g.Expect(k8sClient.Create(ctx, tg)).To(Succeed())
	agents := agentsClient(t)
	long := xdpgenv1alpha1.ShortenMessage("attach XDP: "+strings.Repeat("driver said no; ", 100), xdpgenv1alpha1.MaxMessageLength)

	reports := make([]*xdpgenv1alpha1.NodeReport, sizeNodes)
	forEachNode := func(write func(i int) error) {
		t.Helper()
		var wg sync.WaitGroup
		var firstErr atomic.Value
		for w := range scaleWorkers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; i < sizeNodes; i += scaleWorkers {
					if err := write(i); err != nil {
						firstErr.CompareAndSwap(nil, fmt.Errorf("%s: %w", names[i], err))
						return
					}
				}
			}()
		}
		wg.Wait()
		if err := firstErr.Load(); err != nil {
			t.Fatal(err)
		}
	}
	size := func(g Gomega) *xdpgenv1alpha1.TrafficGenerator {
		cur := &xdpgenv1alpha1.TrafficGenerator{}
		g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(tg), cur)).To(Succeed())
		g.Expect(jsonSize(t, cur)).To(BeNumerically("<", maxGeneratorLen))
		g.Expect(len(cur.Status.NodesOfInterest)).To(BeNumerically("<=", xdpgenv1alpha1.MaxNodesOfInterest))
		return cur
	}

	t.Logf("%d nodes report running", sizeNodes)
	forEachNode(func(i int) error {
		reports[i] = newReport(tg, names[i])
		if err := agents.Create(ctx, reports[i]); err != nil {
			return err
		}
		reports[i].Status = nodeStatus(1, xdpgenv1alpha1.PhaseRunning, int64(i), 100, "sending on eth0")
		return agents.Status().Update(ctx, reports[i])
	})
	g.Eventually(func(g Gomega) {
		cur := size(g)
		g.Expect(cur.Status.NodesSummary).To(Equal(fmt.Sprintf("%d/%d", sizeNodes, sizeNodes)))
		g.Expect(cur.Status.NodesOfInterest).To(HaveLen(xdpgenv1alpha1.MaxNodesOfInterest))
		g.Expect(cur.Status.NodesOfInterest[0].Node).To(Equal(names[0]), "the slowest running node first")
	}).WithTimeout(2 * eventually).WithPolling(200 * time.Millisecond).Should(Succeed())

	t.Logf("%d nodes finish, %d of them failing", sizeNodes, sizeNodes/sizeFailEvery)
	forEachNode(func(i int) error {
		st := nodeStatus(1, xdpgenv1alpha1.PhaseCompleted, 1000, 0, "sent 1000 packets")
		if i%sizeFailEvery == 0 {
			st = nodeStatus(1, xdpgenv1alpha1.PhaseFailed, 0, 0, long)
		}
		reports[i].Status = st
		return agents.Status().Update(ctx, reports[i])
	})
	var final *xdpgenv1alpha1.TrafficGenerator
	g.Eventually(func(g Gomega) {
		final = size(g)
		g.Expect(final.Status.Phase).To(Equal(xdpgenv1alpha1.PhaseFailed))
		g.Expect(final.Status.NodesFailed).To(Equal(int32(sizeNodes / sizeFailEvery)))
		g.Expect(final.Status.NodesCompleted).To(Equal(int32(sizeNodes - sizeNodes/sizeFailEvery)))
	}).WithTimeout(2 * eventually).WithPolling(200 * time.Millisecond).Should(Succeed())
	t.Logf("final TrafficGenerator: %d bytes of JSON for %d nodes", jsonSize(t, final), sizeNodes)
}
