package app

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	xdpgenv1alpha1 "github.com/xdpgen/xdpgen/api/v1alpha1"
)

func latency(samples int64, p50, p90, p99, p999, max time.Duration) *xdpgenv1alpha1.Latency {
	return &xdpgenv1alpha1.Latency{Samples: samples, P50: metav1.Duration{Duration: p50}, P90: metav1.Duration{Duration: p90},
		P99: metav1.Duration{Duration: p99}, P999: metav1.Duration{Duration: p999}, Max: metav1.Duration{Duration: max}}
}

func report(generator, node string, generation int64, st xdpgenv1alpha1.NodeReportStatus) xdpgenv1alpha1.NodeReport {
	st.Generation = generation
	return xdpgenv1alpha1.NodeReport{
		ObjectMeta: metav1.ObjectMeta{Name: xdpgenv1alpha1.NodeReportName(generator, node)},
		Spec:       xdpgenv1alpha1.NodeReportSpec{Generator: generator, NodeName: node},
		Status:     st,
	}
}

// meshRun is a three-node mesh at generation 2: node-a and node-b settled, node-c still sending to node-a, and
// node-b's row for node-c missing (only node-c's Sent names that path). Generation 1's report must not show.
func meshRun() (*xdpgenv1alpha1.TrafficGenerator, []xdpgenv1alpha1.NodeReport) {
	tg := &xdpgenv1alpha1.TrafficGenerator{
		ObjectMeta: metav1.ObjectMeta{Namespace: "load", Name: "mesh", Generation: 2},
		Spec:       xdpgenv1alpha1.TrafficGeneratorSpec{Receivers: &xdpgenv1alpha1.Receivers{}},
		Status: xdpgenv1alpha1.TrafficGeneratorStatus{
			Phase: xdpgenv1alpha1.PhaseRunning, ObservedGeneration: 2,
			Totals: xdpgenv1alpha1.Totals{Packets: 6000, Bytes: 384000, ReceivedPackets: 4985, LostPackets: 15,
				LossRatio: "0.003"},
			Latency: latency(12, time.Microsecond*1048576/1000, 1900*time.Microsecond, 3*time.Millisecond,
				4*time.Millisecond, 4200*time.Microsecond),
		},
	}
	ms := time.Millisecond
	reports := []xdpgenv1alpha1.NodeReport{
		report("mesh", "node-c", 2, xdpgenv1alpha1.NodeReportStatus{Phase: xdpgenv1alpha1.PhaseRunning,
			Packets: 2000, Bytes: 128000,
			Sent: []xdpgenv1alpha1.SentPath{
				{Receiver: "node-a", Packets: 1000, RTT: latency(2, 2*ms, 2*ms, 2*ms, 2*ms, 2*ms)},
				{Receiver: "node-b", Packets: 1000},
			}}),
		report("mesh", "node-a", 2, xdpgenv1alpha1.NodeReportStatus{Phase: xdpgenv1alpha1.PhaseCompleted,
			Packets: 2000, Bytes: 128000,
			Sent: []xdpgenv1alpha1.SentPath{{Receiver: "node-b", Packets: 1000}, {Receiver: "node-c", Packets: 1000}},
			Received: []xdpgenv1alpha1.PathResult{
				{Sender: "node-c", Receiver: "node-a", SentPackets: 1000, ReceivedPackets: 990, ReceivedBytes: 63360, LostPackets: 5,
					LossRatio: "0.005025", OutOfOrder: 3},
				{Sender: "node-b", Receiver: "node-a", SentPackets: 1000, ReceivedPackets: 1000, ReceivedBytes: 64000,
					LossRatio: "0", Duplicates: 1, Settled: true,
					RTT: latency(1, 1*ms, 1*ms, 1*ms, 1*ms, 1*ms)},
			}}),
		report("mesh", "node-b", 2, xdpgenv1alpha1.NodeReportStatus{Phase: xdpgenv1alpha1.PhaseCompleted,
			Packets: 2000, Bytes: 128000,
			Sent: []xdpgenv1alpha1.SentPath{{Receiver: "node-a", Packets: 1000}, {Receiver: "node-c", Packets: 1000}},
			Received: []xdpgenv1alpha1.PathResult{
				{Sender: "node-a", Receiver: "node-b", SentPackets: 1000, ReceivedPackets: 1000, ReceivedBytes: 64000,
					Settled: true},
			}}),
		// The run before the spec changed: a path that no longer exists.
		report("mesh", "node-d", 1, xdpgenv1alpha1.NodeReportStatus{Phase: xdpgenv1alpha1.PhaseCompleted,
			Packets: 7,
			Received: []xdpgenv1alpha1.PathResult{{Sender: "node-a", Receiver: "node-d", SentPackets: 7,
				ReceivedPackets: 7, Settled: true}}}),
	}
	return tg, reports
}

func TestResultsOf(t *testing.T) {
	tg, reports := meshRun()
	ms := time.Millisecond
	want := &Results{
		Namespace: "load", Name: "mesh", Generation: 2, StatusGeneration: 2, Phase: "Running", Receivers: true,
		Totals: Totals{SentPackets: 6000, SentBytes: 384000, ReceivedPackets: 4985, LostPackets: 15, LossRatio: "0.003",
			RTT: tg.Status.Latency},
		Nodes: []NodeResult{
			{Node: "node-a", Phase: "Completed", SentPackets: 2000, SentBytes: 128000},
			{Node: "node-b", Phase: "Completed", SentPackets: 2000, SentBytes: 128000},
			{Node: "node-c", Phase: "Running", SentPackets: 2000, SentBytes: 128000},
		},
		Paths: []PathResult{
			{Sender: "node-a", Receiver: "node-b", SentPackets: 1000, ReceivedPackets: 1000, ReceivedBytes: 64000,
				LossRatio: "0", Settled: true, ReceiverReported: true},
			{Sender: "node-a", Receiver: "node-c", SentPackets: 1000, LossRatio: "0"},
			{Sender: "node-b", Receiver: "node-a", SentPackets: 1000, ReceivedPackets: 1000, ReceivedBytes: 64000,
				LossRatio: "0", Duplicates: 1, Settled: true, ReceiverReported: true,
				RTT: latency(1, 1*ms, 1*ms, 1*ms, 1*ms, 1*ms)},
			{Sender: "node-b", Receiver: "node-c", SentPackets: 1000, LossRatio: "0"},
			// The receiver's row lacks the sent count and the RTT; the sender's list has them.
			{Sender: "node-c", Receiver: "node-a", SentPackets: 1000, ReceivedPackets: 990, ReceivedBytes: 63360, LostPackets: 5,
				LossRatio: "0.005025", OutOfOrder: 3, ReceiverReported: true,
				RTT: latency(2, 2*ms, 2*ms, 2*ms, 2*ms, 2*ms)},
			{Sender: "node-c", Receiver: "node-b", SentPackets: 1000, LossRatio: "0"},
		},
	}
	if diff := cmp.Diff(want, resultsOf(tg, reports)); diff != "" {
		t.Errorf("resultsOf (-want +got):\n%s", diff)
	}
}

func renderString(t *testing.T, res *Results, format string) string {
	t.Helper()
	var out bytes.Buffer
	if err := render(&out, res, format); err != nil {
		t.Fatalf("render %s: %v", format, err)
	}
	return out.String()
}

func TestRenderTable(t *testing.T) {
	tg, reports := meshRun()
	got := renderString(t, resultsOf(tg, reports), formatTable)
	want := strings.Join([]string{
		"Name:       load/mesh",
		"Phase:      Running (generation 2)",
		"Sent:       6000 packets",
		"Received:   4985 packets",
		"Lost:       15 packets (loss ratio 0.003)",
		"RTT:        p50 1.05ms, p99 3ms, max 4.2ms (12 samples)",
		"",
		"SENDER   RECEIVER   SENT   RECEIVED   LOST   LOSS       OUT-OF-ORDER   DUPLICATES   RTT-P50   RTT-P99   RTT-MAX   SETTLED",
		"node-a   node-b     1000   1000       0      0          0              0            -         -         -         yes",
		"node-a   node-c     1000   -          -      -          -              -            -         -         -         no report",
		"node-b   node-a     1000   1000       0      0          0              1            1ms       1ms       1ms       yes",
		"node-b   node-c     1000   -          -      -          -              -            -         -         -         no report",
		"node-c   node-a     1000   990        5      0.005025   3              0            2ms       2ms       2ms       no",
		"node-c   node-b     1000   -          -      -          -              -            -         -         -         no report",
		"",
		"SETTLED no: the loss is not final (the sender is still sending, or the receiver's drain time has not passed): LOST counts the gaps in the sequence numbers so far.",
		"SETTLED no report: only the sender reported this path; its receiver has not counted it yet (kubectl get nodereports -n load -l xdpgen.io/generator=mesh shows every node's report).",
		"",
	}, "\n")
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("table (-want +got):\n%s", diff)
	}
}

func TestRenderWide(t *testing.T) {
	tg, reports := meshRun()
	tg.Status.ObservedGeneration = 1
	res := resultsOf(tg, reports)
	res.Paths = res.Paths[2:3] // node-b -> node-a: settled, with an RTT
	got := renderString(t, res, formatWide)
	want := strings.Join([]string{
		"Name:       load/mesh",
		"Phase:      Running (of generation 1: the controller has not summed up generation 2 yet)",
		"Sent:       6000 packets, 384000 bytes",
		"Received:   4985 packets",
		"Lost:       15 packets (loss ratio 0.003)",
		"RTT:        p50 1.05ms, p90 1.9ms, p99 3ms, p99.9 4ms, max 4.2ms (12 samples)",
		"",
		"SENDER   RECEIVER   SENT   RECEIVED   RECEIVED-BYTES   LOST   LOSS   OUT-OF-ORDER   DUPLICATES   RTT-P50   RTT-P90   RTT-P99   RTT-P99.9   RTT-MAX   SETTLED",
		"node-b   node-a     1000   1000       64000            0      0      0              1            1ms       1ms       1ms       1ms         1ms       yes",
		"",
	}, "\n")
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("wide (-want +got):\n%s", diff)
	}
}

func TestRenderWithoutReceivers(t *testing.T) {
	tg := &xdpgenv1alpha1.TrafficGenerator{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "out", Generation: 1},
		Status: xdpgenv1alpha1.TrafficGeneratorStatus{Phase: xdpgenv1alpha1.PhaseCompleted, ObservedGeneration: 1,
			Totals: xdpgenv1alpha1.Totals{Packets: 300, Bytes: 19200}},
	}
	reports := []xdpgenv1alpha1.NodeReport{
		report("out", "node-b", 1, xdpgenv1alpha1.NodeReportStatus{Phase: xdpgenv1alpha1.PhaseFailed, Packets: 100,
			Bytes: 6400, Message: "interface eth9 not found"}),
		report("out", "node-a", 1, xdpgenv1alpha1.NodeReportStatus{Phase: xdpgenv1alpha1.PhaseCompleted, Packets: 200,
			Bytes: 12800}),
	}
	res := resultsOf(tg, reports)
	got := renderString(t, res, formatTable)
	want := strings.Join([]string{
		"Name:    default/out",
		"Phase:   Completed (generation 1)",
		"Sent:    300 packets",
		"",
		"NODE     PHASE       SENT",
		"node-a   Completed   200",
		"node-b   Failed      100",
		"",
		"TrafficGenerator out has no receivers: nothing in the cluster counts what arrives, so there is no loss or latency to show.",
		"To measure them per path, replace spec.destination.address with spec.receivers (the nodes that count what arrives), such as",
		"  receivers:",
		"    nodeSelector:",
		"      kubernetes.io/hostname: <node>",
		"",
	}, "\n")
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("table without receivers (-want +got):\n%s", diff)
	}
	wide := renderString(t, res, formatWide)
	if want := "node-b   Failed      100    6400         interface eth9 not found\n"; !strings.Contains(wide, want) {
		t.Errorf("wide without receivers lacks %q:\n%s", want, wide)
	}
}

// TestRenderJSON pins the documented structure: its field names, and counts and nulls present even when zero.
func TestRenderJSON(t *testing.T) {
	tg := &xdpgenv1alpha1.TrafficGenerator{
		ObjectMeta: metav1.ObjectMeta{Namespace: "load", Name: "pair", Generation: 3},
		Spec:       xdpgenv1alpha1.TrafficGeneratorSpec{Receivers: &xdpgenv1alpha1.Receivers{}},
		Status: xdpgenv1alpha1.TrafficGeneratorStatus{ObservedGeneration: 3, Phase: xdpgenv1alpha1.PhaseCompleted,
			Totals:  xdpgenv1alpha1.Totals{Packets: 100, Bytes: 6400, ReceivedPackets: 99, LostPackets: 1, LossRatio: "0.01"},
			Latency: latency(1, 1048576, 1048576, 1048576, 1048576, 1048576)},
	}
	reports := []xdpgenv1alpha1.NodeReport{
		report("pair", "node-a", 3, xdpgenv1alpha1.NodeReportStatus{Phase: xdpgenv1alpha1.PhaseCompleted, Packets: 100,
			Bytes: 6400, Sent: []xdpgenv1alpha1.SentPath{{Receiver: "node-b", Packets: 100}}}),
		report("pair", "node-b", 3, xdpgenv1alpha1.NodeReportStatus{Phase: xdpgenv1alpha1.PhaseCompleted,
			Received: []xdpgenv1alpha1.PathResult{{Sender: "node-a", Receiver: "node-b", SentPackets: 100,
				ReceivedPackets: 99, ReceivedBytes: 6336, LostPackets: 1, LossRatio: "0.01", Settled: true}}}),
	}
	got := renderString(t, resultsOf(tg, reports), formatJSON)
	want := `{
  "namespace": "load",
  "name": "pair",
  "generation": 3,
  "statusGeneration": 3,
  "phase": "Completed",
  "receivers": true,
  "totals": {
    "sentPackets": 100,
    "sentBytes": 6400,
    "receivedPackets": 99,
    "lostPackets": 1,
    "lossRatio": "0.01",
    "rtt": {
      "samples": 1,
      "p50": "1.048576ms",
      "p90": "1.048576ms",
      "p99": "1.048576ms",
      "p999": "1.048576ms",
      "max": "1.048576ms"
    }
  },
  "nodes": [
    {
      "node": "node-a",
      "phase": "Completed",
      "sentPackets": 100,
      "sentBytes": 6400
    },
    {
      "node": "node-b",
      "phase": "Completed",
      "sentPackets": 0,
      "sentBytes": 0
    }
  ],
  "paths": [
    {
      "sender": "node-a",
      "receiver": "node-b",
      "sentPackets": 100,
      "receivedPackets": 99,
      "receivedBytes": 6336,
      "lostPackets": 1,
      "lossRatio": "0.01",
      "outOfOrder": 0,
      "duplicates": 0,
      "settled": true,
      "receiverReported": true,
      "rtt": null
    }
  ]
}
`
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("json (-want +got):\n%s", diff)
	}
	var back Results
	if err := json.Unmarshal([]byte(got), &back); err != nil {
		t.Errorf("the JSON does not read back into Results: %v", err)
	}
}

func TestDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0:                         "0s",
		512:                       "512ns",
		1048576:                   "1.05ms",
		999900 * time.Microsecond: "1s",
		4200 * time.Microsecond:   "4.2ms",
		123456789 * time.Second:   "34166h40m0s",
	} {
		if got := duration(d); got != want {
			t.Errorf("duration(%d) = %q, want %q", int64(d), got, want)
		}
	}
}

// TestRenderSearch: a search shows where it stands and what it found, that the rest is its last trial's, and
// every finished trial.
func TestRenderSearch(t *testing.T) {
	tg := &xdpgenv1alpha1.TrafficGenerator{
		ObjectMeta: metav1.ObjectMeta{Namespace: "load", Name: "ndr", Generation: 1},
		Spec:       xdpgenv1alpha1.TrafficGeneratorSpec{Receivers: &xdpgenv1alpha1.Receivers{}, Search: &xdpgenv1alpha1.Search{}},
		Status: xdpgenv1alpha1.TrafficGeneratorStatus{
			Phase: xdpgenv1alpha1.PhaseCompleted, ObservedGeneration: 1,
			Totals: xdpgenv1alpha1.Totals{Packets: 50000, Bytes: 3200000, ReceivedPackets: 50000, LossRatio: "0"},
			Search: &xdpgenv1alpha1.SearchStatus{Phase: xdpgenv1alpha1.SearchCompleted, Trials: 2,
				Message: "NDR (loss ratio 0) 50 kpps, 25.6 Mbit/s; 2 trials in 14s",
				Trial:   &xdpgenv1alpha1.SearchTrial{Number: 2, PacketsPerSecond: 50000, Duration: metav1.Duration{Duration: time.Second}},
				History: []xdpgenv1alpha1.SearchTrialResult{
					{Number: 1, PacketsPerSecond: 600000, Duration: metav1.Duration{Duration: 100 * time.Millisecond}, SentPackets: 60000,
						ReceivedPackets: 5000, LossRatio: "0.9167"},
					{Number: 2, Phase: 2, PacketsPerSecond: 50000, Duration: metav1.Duration{Duration: time.Second}, SentPackets: 50000,
						ReceivedPackets: 50000, LossRatio: "0", Repeat: true},
				}},
		},
	}
	reports := []xdpgenv1alpha1.NodeReport{
		report("ndr", "node-b", 1, xdpgenv1alpha1.NodeReportStatus{Trial: 2, Phase: xdpgenv1alpha1.PhaseCompleted,
			Received: []xdpgenv1alpha1.PathResult{{Sender: "node-a", Receiver: "node-b", SentPackets: 50000, ReceivedPackets: 50000,
				Settled: true}}}),
		// The first trial's report of another node: not the last trial's.
		report("ndr", "node-c", 1, xdpgenv1alpha1.NodeReportStatus{Trial: 1, Phase: xdpgenv1alpha1.PhaseCompleted,
			Received: []xdpgenv1alpha1.PathResult{{Sender: "node-a", Receiver: "node-c", SentPackets: 7, Settled: true}}}),
	}
	got := renderString(t, resultsOf(tg, reports), formatTable)
	want := strings.Join([]string{
		"Name:       load/ndr",
		"Phase:      Completed (generation 1)",
		"Search:     Completed: NDR (loss ratio 0) 50 kpps, 25.6 Mbit/s; 2 trials in 14s",
		"Trial:      2 (what follows is this trial's)",
		"Sent:       50000 packets",
		"Received:   50000 packets",
		"Lost:       0 packets (loss ratio 0)",
		"RTT:        no samples",
		"",
		"SENDER   RECEIVER   SENT    RECEIVED   LOST   LOSS   OUT-OF-ORDER   DUPLICATES   RTT-P50   RTT-P99   RTT-MAX   SETTLED",
		"node-a   node-b     50000   50000      0      0      0              0            -         -         -         yes",
		"",
		"TRIAL        PHASE   DURATION   PPS      SENT    RECEIVED   LOSS",
		"1            0       100ms      600000   60000   5000       0.9167",
		"2 (repeat)   2       1s         50000    50000   50000      0",
		"",
	}, "\n")
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("table (-want +got):\n%s", diff)
	}
}
