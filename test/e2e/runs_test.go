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
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"sigs.k8s.io/controller-runtime/pkg/client"

	xdpgenv1alpha1 "github.com/xdpgen/xdpgen/api/v1alpha1"
	"github.com/xdpgen/xdpgen/test/manifest"
	"github.com/xdpgen/xdpgen/test/poll"
)

// TestConcurrentRuns: three TrafficGenerators in two namespaces, applied together, all on the first node, run at
// the same time on its one agent, each on CPUs of its own while there are enough; each one's status counts
// exactly what its own far host received.
func TestConcurrentRuns(t *testing.T) {
	e := requireCluster(t)
	const (
		packets = 300_000 // 15 s at 20 kpps: long enough for the three runs to overlap whatever the start order
		rate    = 20_000
		port    = 9
	)
	pod := e.waitAgentRunning(t, e.cluster.NodeName(), 60*time.Second)
	runs := []struct {
		key client.ObjectKey
		far *farHost
	}{
		{key: client.ObjectKey{Namespace: namespace, Name: "e2e-concurrent-a"}},
		{key: client.ObjectKey{Namespace: namespace, Name: "e2e-concurrent-b"}},
		{key: client.ObjectKey{Namespace: otherNamespace, Name: "e2e-concurrent-c"}},
	}
	var docs []string
	for i := range runs {
		runs[i].far = newFarHost(t, 40+i, port, port)
		docs = append(docs, trafficGeneratorManifest(runs[i].key.Namespace, runs[i].key.Name,
			udpSpec(runs[i].far.farIP.String(), port, 1, rate, packets, e.onFirstNode())))
	}
	e.applyManifest(t, strings.Join(docs, "---\n"))
	for _, r := range runs {
		e.deleteAfterTest(t, r.key)
	}

	var (
		reports []*xdpgenv1alpha1.NodeReport
		shared  int
		own     []string // the CPUs of the runs that did not share theirs
	)
	for _, r := range runs {
		tg := e.waitPhaseAt(t, r.key, xdpgenv1alpha1.PhaseCompleted, 120*time.Second)
		matched, _ := r.far.counts(t)
		nr := e.nodeReportAt(t, r.key, e.cluster.NodeName())
		reports = append(reports, nr)
		t.Logf("%s: status %d packets, its far host %d; running %s to %s on CPUs %q (shared %v)", r.key,
			tg.Status.Totals.Packets, matched.Packets, nr.Status.StartTime, nr.Status.CompletionTime, nr.Status.CPUs,
			nr.Status.CPUsShared)
		if tg.Status.Totals.Packets != packets || int64(matched.Packets) != packets {
			t.Errorf("%s: status totals %d packets, its far host %d, spec %d: all three must be equal", r.key,
				tg.Status.Totals.Packets, matched.Packets, packets)
		}
		if nr.Status.StartTime == nil || nr.Status.CompletionTime == nil {
			t.Fatalf("%s: NodeReport start and completion times %v, %v", r.key, nr.Status.StartTime, nr.Status.CompletionTime)
		}
		if nr.Status.CPUsShared {
			shared++
		} else {
			own = append(own, nr.Status.CPUs)
		}
	}

	// The three ran at once: the last to start started before the first to finish finished.
	lastStart := slices.MaxFunc(reports, func(a, b *xdpgenv1alpha1.NodeReport) int {
		return a.Status.StartTime.Compare(b.Status.StartTime.Time)
	}).Status.StartTime
	firstEnd := slices.MinFunc(reports, func(a, b *xdpgenv1alpha1.NodeReport) int {
		return a.Status.CompletionTime.Compare(b.Status.CompletionTime.Time)
	}).Status.CompletionTime
	if !lastStart.Before(firstEnd) {
		t.Errorf("the runs did not overlap: the last started at %s, the first finished at %s", lastStart, firstEnd)
	}

	// This machine has 2 CPUs, and each run one thread: two runs get a CPU each, apart, and the third, with no CPU
	// left free of other runs, shares one (cpusShared). On a node with more CPUs none would share.
	if cpus := allowedCPUs(t, agentPID(t, pod)); cpus != 2 {
		t.Fatalf("the agent may use %d CPUs; this test expects the 2 of the machine it was written on", cpus)
	}
	if shared != 1 || len(own) != 2 || own[0] == own[1] {
		t.Errorf("%d runs shared their CPUs, the others ran on %q: want exactly one shared and two on different CPUs", shared, own)
	}
	for _, r := range runs {
		e.checkRunCleanedUp(t, e.trafficGeneratorAt(t, r.key), pod)
	}
}

// allowedCPUs counts the CPUs a process may run on: the union over its threads, since the agent's pinned workers
// narrow their own thread's affinity for good (and the main thread's, when Go ran a worker on it).
func allowedCPUs(t *testing.T, pid int) int {
	t.Helper()
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		t.Fatalf("the threads of process %d: %v", pid, err)
	}
	var union unix.CPUSet
	for _, task := range tasks {
		tid, err := strconv.Atoi(task.Name())
		if err != nil {
			continue
		}
		var set unix.CPUSet
		if err := unix.SchedGetaffinity(tid, &set); err != nil {
			continue // the thread has exited
		}
		for i := range union {
			union[i] |= set[i]
		}
	}
	return union.Count()
}

// TestAgentKilledMidRun: the agent's process is killed (SIGKILL) while it sends; the kubelet restarts its container
// in the same pod, and the new process finishes the run from the counters its predecessor pinned: the status
// equals the far end's count exactly, with nothing sent twice and nothing lost.
func TestAgentKilledMidRun(t *testing.T) {
	e := requireCluster(t)
	const (
		name    = "e2e-agent-killed"
		packets = 200_000
	)
	far := newFarHost(t, 43, 9, 9)
	e.applyTrafficGenerator(t, name, udpSpec(far.farIP.String(), 9, 1, 20_000, packets, e.onFirstNode()))
	pod := e.waitAgentRunning(t, e.cluster.NodeName(), 60*time.Second)
	restarts := pod.Status.ContainerStatuses[0].RestartCount
	e.waitPackets(t, name, 40_000, 60*time.Second)

	pid := agentPID(t, pod)
	if err := unix.Kill(pid, unix.SIGKILL); err != nil {
		t.Fatalf("kill -9 %d: %v", pid, err)
	}
	atKill, _ := far.counts(t)
	t.Logf("killed the agent process %d of pod %s after %d packets had arrived", pid, pod.Name, atKill.Packets)
	if atKill.Packets >= packets {
		t.Fatalf("the run was over (%d packets) before the agent was killed: slow the rate down", atKill.Packets)
	}
	poll.Until(t, 60*time.Second, pollInterval, "the kubelet to restart the agent's container", func() error {
		now := e.waitAgentRunning(t, e.cluster.NodeName(), 10*time.Second)
		if now.UID != pod.UID {
			t.Fatalf("the agent pod is %s now: the kubelet was to restart the container in %s", now.Name, pod.Name)
		}
		if n := now.Status.ContainerStatuses[0].RestartCount; n <= restarts {
			return fmt.Errorf("restart count %d", n)
		}
		return nil
	})

	tg := e.waitPhase(t, name, xdpgenv1alpha1.PhaseCompleted, 90*time.Second)
	matched, _ := far.counts(t)
	nr := e.nodeReport(t, name)
	t.Logf("far end %d packets, status %d, spec %d; NodeReport restarts %d, message %q", matched.Packets,
		tg.Status.Totals.Packets, packets, nr.Status.Restarts, nr.Status.Message)
	if int64(matched.Packets) != packets || tg.Status.Totals.Packets != packets {
		t.Errorf("after kill -9 of the agent: far end %d packets, status %d, spec %d: all three must be equal",
			matched.Packets, tg.Status.Totals.Packets, packets)
	}
	if nr.Status.Restarts < 1 {
		t.Errorf("the NodeReport says %d restarts after the agent was killed mid-run", nr.Status.Restarts)
	}
	e.checkRunCleanedUp(t, tg, pod)
}

// TestStartLatency: with the agents running, the time from creating a TrafficGenerator to its first frame at the far
// end (a median of five runs) is at most 0.3 s. The far end's receive counter is read every millisecond.
func TestStartLatency(t *testing.T) {
	e := requireCluster(t)
	const (
		runs     = 5
		budget   = 300 * time.Millisecond
		packets  = 20_000
		firstTry = 10 * time.Second
	)
	e.waitAgentRunning(t, e.cluster.NodeName(), 60*time.Second)
	far := newFarHost(t, 44, 9, 9)
	ctx := context.Background()
	var latencies []time.Duration
	for i := range runs {
		name := fmt.Sprintf("e2e-latency-%d", i)
		obj := manifest.Decode(t, trafficGeneratorManifest(namespace, name,
			udpSpec(far.farIP.String(), 9, 1, 20_000, packets, e.onFirstNode())))[0]
		before, _ := far.counts(t)
		created := time.Now()
		if err := e.client.Create(ctx, obj); err != nil {
			t.Fatalf("create TrafficGenerator %s: %v", name, err)
		}
		var latency time.Duration
		for latency == 0 {
			if now, _ := far.counts(t); now.Packets > before.Packets {
				latency = time.Since(created)
			} else if time.Since(created) > firstTry {
				t.Fatalf("%s: no frame at the far end %s after the TrafficGenerator was created", name, firstTry)
			}
			time.Sleep(time.Millisecond)
		}
		latencies = append(latencies, latency)
		t.Logf("run %d: first frame at the far end %.0f ms after the TrafficGenerator was created", i+1,
			float64(latency.Microseconds())/1000)
		key := client.ObjectKeyFromObject(obj)
		e.deleteAfterTest(t, key)
		tg := e.waitPhaseAt(t, key, xdpgenv1alpha1.PhaseCompleted, 60*time.Second)
		if err := e.client.Delete(ctx, tg); err != nil {
			t.Fatalf("delete TrafficGenerator %s: %v", name, err)
		}
		e.waitPinsGone(t, tg, 30*time.Second)
	}
	slices.Sort(latencies)
	median := latencies[len(latencies)/2]
	t.Logf("from create to the first frame: median %.0f ms of %v", float64(median.Microseconds())/1000, latencies)
	if median > budget {
		t.Errorf("the median time from create to the first frame is %s, want at most %s", median, budget)
	}
}
