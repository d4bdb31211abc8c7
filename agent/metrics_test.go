package agent

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"k8s.io/apimachinery/pkg/types"

	xdpgenv1alpha1 "github.com/xdpgen/xdpgen/api/v1alpha1"
)

func metricsReport(gen, packets, pps int64) xdpgenv1alpha1.NodeReportStatus {
	return xdpgenv1alpha1.NodeReportStatus{Generation: gen, PacketsPerSecond: pps, BitsPerSecond: pps * 512,
		Actions: []xdpgenv1alpha1.ActionCount{{Action: xdpgenv1alpha1.XDPRedirect, Packets: packets, Bytes: packets * 64}}}
}

// TestMetricsFollowReports: reports carry running totals per generation; the counters only ever add what is new.
func TestMetricsFollowReports(t *testing.T) {
	m := newGeneratorMetrics("node-m").forGenerator(types.NamespacedName{Namespace: "ns-m", Name: "metrics-test"})
	m.set(metricsReport(1, 100, 50))
	m.set(metricsReport(1, 300, 200))
	m.set(metricsReport(2, 40, 40)) // a new generation starts from zero and adds to the counters
	want := `
# HELP xdpgen_agent_packets_total Frames given each XDP verdict by the generator on this node.
# TYPE xdpgen_agent_packets_total counter
xdpgen_agent_packets_total{action="XDP_REDIRECT",generator="metrics-test",namespace="ns-m",node="node-m"} 340
`
	if err := testutil.CollectAndCompare(packetsTotal, strings.NewReader(want), "xdpgen_agent_packets_total"); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(packetsPerSecond.WithLabelValues("ns-m", "metrics-test", "node-m")); got != 40 {
		t.Fatalf("packets per second %v, want the last report's 40", got)
	}
	if got := testutil.ToFloat64(bytesTotal.WithLabelValues("ns-m", "metrics-test", "node-m", "XDP_REDIRECT")); got != 340*64 {
		t.Fatalf("bytes %v, want %d", got, 340*64)
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

// TestMetricsTCP: a tcp run's connection counts add to their counters as the frames' do; its goodput is a gauge.
// A udp run has no tcp series.
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
		{"goodput", testutil.ToFloat64(tcpGoodputBitsPerSecond.WithLabelValues(labels...)), 4000},
	} {
		if c.got != c.want {
			t.Errorf("%s: %v, want %v", c.name, c.got, c.want)
		}
	}

	g.forGenerator(types.NamespacedName{Namespace: "ns-t", Name: "udp"}).set(metricsReport(1, 100, 50))
	if tcpGoodputBitsPerSecond.DeleteLabelValues("ns-t", "udp", "node-t") {
		t.Fatal("a udp run has a goodput series")
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
