package agent

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	xdpgenv1alpha1 "github.com/xdpgen/xdpgen/api/v1alpha1"
)

// The agent's Prometheus metrics, served on its metrics endpoint by controller-runtime.
var (
	packetsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "xdpgen_agent_packets_total", Help: "Frames given each XDP verdict by the generator on this node.",
	}, []string{"generator", "node", "action"})
	bytesTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "xdpgen_agent_bytes_total", Help: "Bytes of frames given each XDP verdict by the generator on this node.",
	}, []string{"generator", "node", "action"})
	packetsPerSecond = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "xdpgen_agent_packets_per_second", Help: "Frames sent per second over the last reporting interval.",
	}, []string{"generator", "node"})
	bitsPerSecond = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "xdpgen_agent_bits_per_second", Help: "Bits of frames sent per second over the last reporting interval.",
	}, []string{"generator", "node"})
)

func init() {
	ctrlmetrics.Registry.MustRegister(packetsTotal, bytesTotal, packetsPerSecond, bitsPerSecond)
}

// metrics follows one generator on one node. Reports carry totals; Prometheus counters take increments.
type metrics struct {
	generator, node string
	mu              sync.Mutex
	last            map[xdpgenv1alpha1.XDPAction]xdpgenv1alpha1.ActionCount
	generation      int64
}

func newMetrics(generator, node string) *metrics {
	return &metrics{generator: generator, node: node, last: map[xdpgenv1alpha1.XDPAction]xdpgenv1alpha1.ActionCount{}}
}

// set brings the metrics to a report's status. A new generation starts its totals from zero, and its counts
// add to the counters.
func (m *metrics) set(st xdpgenv1alpha1.NodeReportStatus) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if st.Generation != m.generation {
		m.generation = st.Generation
		clear(m.last)
	}
	for _, ac := range st.Actions {
		prev := m.last[ac.Action]
		labels := prometheus.Labels{"generator": m.generator, "node": m.node, "action": string(ac.Action)}
		packetsTotal.With(labels).Add(float64(max(ac.Packets-prev.Packets, 0)))
		bytesTotal.With(labels).Add(float64(max(ac.Bytes-prev.Bytes, 0)))
		m.last[ac.Action] = ac
	}
	packetsPerSecond.WithLabelValues(m.generator, m.node).Set(float64(st.PacketsPerSecond))
	bitsPerSecond.WithLabelValues(m.generator, m.node).Set(float64(st.BitsPerSecond))
}
