package agent

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	xdpgenv1alpha1 "github.com/xdpgen/xdpgen/api/v1alpha1"
)

// TestMetricsFollowReports: reports carry running totals per generation; the counters only ever add what is new.
func TestMetricsFollowReports(t *testing.T) {
	m := newMetrics("metrics-test", "node-m")
	report := func(gen, packets, pps int64) xdpgenv1alpha1.NodeReportStatus {
		return xdpgenv1alpha1.NodeReportStatus{Generation: gen, PacketsPerSecond: pps, BitsPerSecond: pps * 512,
			Actions: []xdpgenv1alpha1.ActionCount{{Action: xdpgenv1alpha1.XDPRedirect, Packets: packets, Bytes: packets * 64}}}
	}
	m.set(report(1, 100, 50))
	m.set(report(1, 300, 200))
	m.set(report(2, 40, 40)) // a new generation starts from zero and adds to the counters
	want := `
# HELP xdpgen_agent_packets_total Frames given each XDP verdict by the generator on this node.
# TYPE xdpgen_agent_packets_total counter
xdpgen_agent_packets_total{action="XDP_REDIRECT",generator="metrics-test",node="node-m"} 340
`
	if err := testutil.CollectAndCompare(packetsTotal, strings.NewReader(want), "xdpgen_agent_packets_total"); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(packetsPerSecond.WithLabelValues("metrics-test", "node-m")); got != 40 {
		t.Fatalf("packets per second %v, want the last report's 40", got)
	}
	if got := testutil.ToFloat64(bytesTotal.WithLabelValues("metrics-test", "node-m", "XDP_REDIRECT")); got != 340*64 {
		t.Fatalf("bytes %v, want %d", got, 340*64)
	}
}
