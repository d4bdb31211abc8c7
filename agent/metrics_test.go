package agent

import (
	"bytes"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"
	"k8s.io/apimachinery/pkg/types"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	xdpgenv1alpha1 "github.com/xdpgen/xdpgen/api/v1alpha1"
	"github.com/xdpgen/xdpgen/test/monitoring"
	"github.com/xdpgen/xdpgen/test/netnstest"
)

func metricsReport(gen, packets, pps int64) xdpgenv1alpha1.NodeReportStatus {
	return xdpgenv1alpha1.NodeReportStatus{Generation: gen, PacketsPerSecond: pps, BitsPerSecond: pps * 512,
		Actions: []xdpgenv1alpha1.ActionCount{{Action: xdpgenv1alpha1.XDPRedirect, Packets: packets, Bytes: packets * 64}}}
}

// TestMetricsFollowReports: the counters of the verdicts the programs count are there at 0 before the first
// report (so that rate() and increase() see it); reports carry running totals per generation; the counters only
// ever add what is new.
func TestMetricsFollowReports(t *testing.T) {
	m := newGeneratorMetrics("node-m").forGenerator(types.NamespacedName{Namespace: "ns-m", Name: "metrics-test"})
	before := `
# HELP xdpgen_agent_packets_total Frames given each XDP verdict by the generator on this node.
# TYPE xdpgen_agent_packets_total counter
xdpgen_agent_packets_total{action="XDP_ABORTED",generator="metrics-test",namespace="ns-m",node="node-m"} 0
xdpgen_agent_packets_total{action="XDP_REDIRECT",generator="metrics-test",namespace="ns-m",node="node-m"} 0
`
	if err := testutil.CollectAndCompare(packetsTotal, strings.NewReader(before), "xdpgen_agent_packets_total"); err != nil {
		t.Fatal(err)
	}
	m.set(metricsReport(1, 100, 50))
	m.set(metricsReport(1, 300, 200))
	m.set(metricsReport(2, 40, 40)) // a new generation starts from zero and adds to the counters
	want := `
# HELP xdpgen_agent_packets_total Frames given each XDP verdict by the generator on this node.
# TYPE xdpgen_agent_packets_total counter
xdpgen_agent_packets_total{action="XDP_ABORTED",generator="metrics-test",namespace="ns-m",node="node-m"} 0
xdpgen_agent_packets_total{action="XDP_REDIRECT",generator="metrics-test",namespace="ns-m",node="node-m"} 340
`
	if err := testutil.CollectAndCompare(packetsTotal, strings.NewReader(want), "xdpgen_agent_packets_total"); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(bytesTotal.WithLabelValues("ns-m", "metrics-test", "node-m", "XDP_REDIRECT")); got != 340*64 {
		t.Fatalf("bytes %v, want %d", got, 340*64)
	}
}

// TestMetricsEgressDrops: the egress drop counter is there at 0 before the first report, and adds what each
// report's count adds, generation by generation.
func TestMetricsEgressDrops(t *testing.T) {
	before := testutil.CollectAndCount(egressDroppedPacketsTotal)
	m := newGeneratorMetrics("node-d").forGenerator(types.NamespacedName{Namespace: "ns-d", Name: "drops"})
	if n := testutil.CollectAndCount(egressDroppedPacketsTotal); n != before+1 {
		t.Fatalf("%d egress drop series after making a generator's metrics, want %d", n, before+1)
	}
	dropped := egressDroppedPacketsTotal.WithLabelValues("ns-d", "drops", "node-d")
	if got := testutil.ToFloat64(dropped); got != 0 {
		t.Fatalf("egress drops %v before the first report, want 0", got)
	}
	for _, r := range []struct{ gen, dropped int64 }{{1, 5}, {1, 12}, {2, 3}} {
		st := metricsReport(r.gen, 1000, 0)
		st.EgressDroppedPackets = r.dropped
		m.set(st)
	}
	if got := testutil.ToFloat64(dropped); got != 15 {
		t.Fatalf("egress drops %v after reports of 5 and 12 (generation 1) and 3 (generation 2), want 15", got)
	}
}

// TestMetricsSizes: a run whose sizes vary counts its frames per size bucket; a new generation adds to them.
func TestMetricsSizes(t *testing.T) {
	m := newGeneratorMetrics("node-s").forGenerator(types.NamespacedName{Namespace: "ns-s", Name: "sizes-test"})
	report := func(gen, small, large int64) xdpgenv1alpha1.NodeReportStatus {
		return xdpgenv1alpha1.NodeReportStatus{Generation: gen, Sizes: []xdpgenv1alpha1.SizeCount{{Min: 60, Max: 60, Packets: small}, {Min: 1514, Max: 1514, Packets: large}}}
	}
	m.set(report(1, 70, 10))
	m.set(report(1, 700, 100))
	m.set(report(2, 7, 1))
	want := `
# HELP xdpgen_agent_size_packets_total Frames the generator on this node sent per size bucket (min_bytes to max_bytes, without FCS), for runs whose frame sizes vary.
# TYPE xdpgen_agent_size_packets_total counter
xdpgen_agent_size_packets_total{generator="sizes-test",max_bytes="1514",min_bytes="1514",namespace="ns-s",node="node-s"} 101
xdpgen_agent_size_packets_total{generator="sizes-test",max_bytes="60",min_bytes="60",namespace="ns-s",node="node-s"} 707
`
	if err := testutil.CollectAndCompare(sizePacketsTotal, strings.NewReader(want)); err != nil {
		t.Fatal(err)
	}
}

// TestMetricsOutliveRuns: a generator's series stay after its run; they go a retention after the generator is
// deleted, unless it runs again first.
func TestMetricsOutliveRuns(t *testing.T) {
	g := newGeneratorMetrics("node-r")
	g.retention = 50 * time.Millisecond
	gone := types.NamespacedName{Namespace: "ns-r", Name: "gone"}
	back := types.NamespacedName{Namespace: "ns-r", Name: "back"}
	g.forGenerator(gone).set(metricsReport(1, 10, 0))
	g.forGenerator(back).set(metricsReport(1, 20, 0))
	g.forgetLater(gone)
	g.forgetLater(back)
	g.forGenerator(back) // made again and run before the retention passed
	if got := testutil.ToFloat64(packetsTotal.WithLabelValues("ns-r", "gone", "node-r", "XDP_REDIRECT")); got != 10 {
		t.Fatalf("the deleted generator's counter is %v before the retention passed, want its last 10", got)
	}
	time.Sleep(200 * time.Millisecond)
	if packetsTotal.DeleteLabelValues("ns-r", "gone", "node-r", "XDP_REDIRECT") {
		t.Fatal("the deleted generator's series are still there after the retention")
	}
	if !packetsTotal.DeleteLabelValues("ns-r", "back", "node-r", "XDP_REDIRECT") {
		t.Fatal("the series of the generator made again are gone")
	}
}

// TestMetricsTCP: a tcp run's connection counts add to their counters as the frames' do (its goodput is
// rate(xdpgen_agent_tcp_acknowledged_bytes_total)). A udp run has no tcp series.
func TestMetricsTCP(t *testing.T) {
	t.Cleanup(func() { // the series are global: a test run again starts without them
		for _, v := range allMetrics {
			v.DeletePartialMatch(prometheus.Labels{"node": "node-t"})
		}
	})
	g := newGeneratorMetrics("node-t")
	m := g.forGenerator(types.NamespacedName{Namespace: "ns-t", Name: "tcp"})
	report := func(gen, acked, retransmitted, goodput int64) xdpgenv1alpha1.NodeReportStatus {
		st := metricsReport(gen, acked/10, 0)
		st.TCP = &xdpgenv1alpha1.TCPStatus{BytesAcknowledged: acked, SegmentsSent: acked/10 + retransmitted,
			SegmentsRetransmitted: retransmitted, BytesRetransmitted: retransmitted * 10, GoodputBitsPerSecond: goodput}
		return st
	}
	m.set(report(1, 1000, 5, 8000))
	m.set(report(1, 3000, 7, 16000))
	m.set(report(2, 500, 1, 4000)) // a new generation starts from zero and adds to the counters
	labels := []string{"ns-t", "tcp", "node-t"}
	for _, c := range []struct {
		name string
		got  float64
		want float64
	}{
		{"acknowledged bytes", testutil.ToFloat64(tcpAcknowledgedBytesTotal.WithLabelValues(labels...)), 3500},
		{"sent segments", testutil.ToFloat64(tcpSentSegmentsTotal.WithLabelValues(labels...)), 307 + 51},
		{"retransmitted segments", testutil.ToFloat64(tcpRetransmittedSegmentsTotal.WithLabelValues(labels...)), 8},
		{"retransmitted bytes", testutil.ToFloat64(tcpRetransmittedBytesTotal.WithLabelValues(labels...)), 80},
	} {
		if c.got != c.want {
			t.Errorf("%s: %v, want %v", c.name, c.got, c.want)
		}
	}

	g.forGenerator(types.NamespacedName{Namespace: "ns-t", Name: "udp"}).set(metricsReport(1, 100, 50))
	if tcpAcknowledgedBytesTotal.DeleteLabelValues("ns-t", "udp", "node-t") {
		t.Fatal("a udp run has tcp series")
	}
}

// TestMetricsPaths: a receiver's paths add what arrived to per-sender counters; the loss is a gauge, since gaps
// close when late frames arrive.
func TestMetricsPaths(t *testing.T) {
	t.Cleanup(func() {
		for _, v := range allMetrics {
			v.DeletePartialMatch(prometheus.Labels{"node": "node-p"})
		}
	})
	m := newGeneratorMetrics("node-p").forGenerator(types.NamespacedName{Namespace: "ns-p", Name: "mesh"})
	report := func(gen int64, received, lost int64) xdpgenv1alpha1.NodeReportStatus {
		return xdpgenv1alpha1.NodeReportStatus{Generation: gen, Received: []xdpgenv1alpha1.PathResult{
			{Sender: "a", Receiver: "node-p", ReceivedPackets: received, ReceivedBytes: received * 64, LostPackets: lost},
			{Sender: "b", Receiver: "node-p", ReceivedPackets: 2 * received},
		}}
	}
	m.set(report(1, 100, 5))
	m.set(report(1, 250, 2))
	m.set(report(2, 10, 1)) // a new generation starts from zero and adds to the counters
	for _, c := range []struct {
		name string
		got  float64
		want float64
	}{
		{"received from a", testutil.ToFloat64(receivedPacketsTotal.WithLabelValues("ns-p", "mesh", "node-p", "a")), 260},
		{"received from b", testutil.ToFloat64(receivedPacketsTotal.WithLabelValues("ns-p", "mesh", "node-p", "b")), 520},
		{"bytes from a", testutil.ToFloat64(receivedBytesTotal.WithLabelValues("ns-p", "mesh", "node-p", "a")), 260 * 64},
		{"lost from a", testutil.ToFloat64(lostPackets.WithLabelValues("ns-p", "mesh", "node-p", "a")), 1},
	} {
		if c.got != c.want {
			t.Errorf("%s: %v, want %v", c.name, c.got, c.want)
		}
	}
}

// TestMetricsRTTHistogram: a sender's round trips become a Prometheus histogram whose buckets are sums of the
// data plane's (exactly: its buckets never straddle a power of two), whose _sum is the reports' sum of round-trip
// times, and which, as a counter, only ever adds: a new generation's histogram adds to the last one's.
func TestMetricsRTTHistogram(t *testing.T) {
	t.Cleanup(func() { deleteSeries(prometheus.Labels{"node": "node-h"}) })
	m := newGeneratorMetrics("node-h").forGenerator(types.NamespacedName{Namespace: "ns-h", Name: "mesh"})
	report := func(gen int64, sumNs int64, buckets ...xdpgenv1alpha1.LatencyBucket) xdpgenv1alpha1.NodeReportStatus {
		return xdpgenv1alpha1.NodeReportStatus{Generation: gen, RTTHistogram: buckets, RTTSumNanoseconds: sumNs}
	}
	b := func(upperNs, count int64) xdpgenv1alpha1.LatencyBucket {
		return xdpgenv1alpha1.LatencyBucket{UpperBoundNanoseconds: upperNs, Count: count}
	}
	// Data plane buckets (log-linear, 16 per power of two): [1920, 2048) lies below 2^11 ns; [2048, 2176) and
	// [3968, 4096) below 2^12; [16384, 17408) below 2^15; one above 2^31 ns (2.15 s) counts in +Inf only.
	m.set(report(1, 50_000, b(2048, 3), b(2176, 1)))
	m.set(report(1, 120_000, b(2048, 5), b(2176, 2), b(4096, 4), b(17408, 1)))
	m.set(report(2, 3_000_000_000, b(2048, 1), b(1<<31+1<<27, 1))) // a new generation adds
	want := `
# HELP xdpgen_agent_rtt_seconds Round-trip times of the generator's latency samples this sending node timed, over all its paths to the receivers.
# TYPE xdpgen_agent_rtt_seconds histogram
`
	cumulative := map[int]int{11: 6, 12: 12, 13: 12, 14: 12}
	for p := 11; p <= 31; p++ {
		n, ok := cumulative[p]
		if !ok {
			n = 13
		}
		want += fmt.Sprintf("xdpgen_agent_rtt_seconds_bucket{generator=\"mesh\",namespace=\"ns-h\",node=\"node-h\",le=\"%g\"} %d\n", float64(int64(1)<<p)/1e9, n)
	}
	want += `xdpgen_agent_rtt_seconds_bucket{generator="mesh",namespace="ns-h",node="node-h",le="+Inf"} 14
xdpgen_agent_rtt_seconds_sum{generator="mesh",namespace="ns-h",node="node-h"} 3.00012
xdpgen_agent_rtt_seconds_count{generator="mesh",namespace="ns-h",node="node-h"} 14
`
	if err := testutil.CollectAndCompare(rttSeconds, strings.NewReader(want)); err != nil {
		t.Fatal(err)
	}
	deleteSeries(prometheus.Labels{"namespace": "ns-h", "generator": "mesh", "node": "node-h"})
	if n := testutil.CollectAndCount(rttSeconds); n != 0 {
		t.Fatalf("%d rtt series left after the generator's series were deleted", n)
	}
}

// TestMetricsExposition: the agent's exposition, with every metric set, holds every xdpgen_agent_ metric the
// chart's dashboard and alerts use, no precomputed rate, and passes `promtool check metrics` (the Prometheus
// naming and unit conventions).
func TestMetricsExposition(t *testing.T) {
	t.Cleanup(func() { deleteSeries(prometheus.Labels{"node": "node-e"}) })
	setEveryMetric("node-e")
	families, err := ctrlmetrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var text bytes.Buffer
	for _, f := range families {
		if !strings.HasPrefix(f.GetName(), "xdpgen_") {
			continue
		}
		if strings.Contains(f.GetName(), "per_second") {
			t.Errorf("%s is a rate: Prometheus computes rates from the counters (rate())", f.GetName())
		}
		if _, err := expfmt.MetricFamilyToText(&text, f); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("the agent's metrics:\n%s", text.String())
	// The chart's dashboard and alerts use only metrics of the exposition.
	if monitoring.CheckExported(t, "xdpgen_agent_", families) == 0 {
		t.Error("the dashboard and the alerts use no xdpgen_agent_ metric")
	}
	netnstest.RequireCommand(t, "promtool") // Debian's prometheus package; CI installs it
	cmd := exec.Command("promtool", "check", "metrics")
	cmd.Stdin = &text
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

// setEveryMetric sets every metric of the agent for a generator on node.
func setEveryMetric(node string) {
	st := metricsReport(1, 100, 10)
	st.Actions = append(st.Actions, xdpgenv1alpha1.ActionCount{Action: xdpgenv1alpha1.XDPDrop, Packets: 1, Bytes: 64})
	st.TCP = &xdpgenv1alpha1.TCPStatus{BytesAcknowledged: 1000, SegmentsSent: 11, SegmentsRetransmitted: 1, BytesRetransmitted: 100}
	st.Received = []xdpgenv1alpha1.PathResult{{Sender: "a", Receiver: node, ReceivedPackets: 99, ReceivedBytes: 99 * 64, LostPackets: 1}}
	st.RTTHistogram = []xdpgenv1alpha1.LatencyBucket{{UpperBoundNanoseconds: 17408, Count: 10}}
	st.RTTSumNanoseconds = 170_000
	newGeneratorMetrics(node).forGenerator(types.NamespacedName{Namespace: "ns-e", Name: "every"}).set(st)
}
