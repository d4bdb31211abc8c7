package agent

import (
	"maps"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/types"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	xdpgenv1alpha1 "github.com/xdpgen/xdpgen/api/v1alpha1"
)

// The agent's Prometheus metrics, served on its metrics endpoint by controller-runtime. A generator's series
// outlive its runs (the last run's totals stay), and go some minutes after the generator does.
var (
	packetsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "xdpgen_agent_packets_total", Help: "Frames given each XDP verdict by the generator on this node.",
	}, []string{"namespace", "generator", "node", "action"})
	bytesTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "xdpgen_agent_bytes_total", Help: "Bytes of frames given each XDP verdict by the generator on this node.",
	}, []string{"namespace", "generator", "node", "action"})

	egressDroppedPacketsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "xdpgen_agent_egress_dropped_packets_total", Help: "Frames the generator's program sent that the egress interface refused (a full transmit ring); the interface's other traffic counts too.",
	}, []string{"namespace", "generator", "node"})

	// The connections' counters of tcp runs.
	tcpAcknowledgedBytesTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "xdpgen_agent_tcp_acknowledged_bytes_total", Help: "Payload bytes the server acknowledged to the generator's connections on this node.",
	}, []string{"namespace", "generator", "node"})
	tcpSentSegmentsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "xdpgen_agent_tcp_sent_segments_total", Help: "Data segments the generator's connections on this node sent, retransmissions included.",
	}, []string{"namespace", "generator", "node"})
	tcpRetransmittedSegmentsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "xdpgen_agent_tcp_retransmitted_segments_total", Help: "Data segments the generator's connections on this node sent again.",
	}, []string{"namespace", "generator", "node"})
	tcpRetransmittedBytesTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "xdpgen_agent_tcp_retransmitted_bytes_total", Help: "Payload bytes of the data segments the generator's connections on this node sent again.",
	}, []string{"namespace", "generator", "node"})

	// What a receiving node counted per path (sender), for generators with receivers.
	receivedPacketsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "xdpgen_agent_received_packets_total", Help: "Frames of the generator that arrived at this receiving node from the sender, each sequence number once.",
	}, []string{"namespace", "generator", "node", "sender"})
	receivedBytesTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "xdpgen_agent_received_bytes_total", Help: "Bytes of the generator's frames that arrived at this receiving node from the sender.",
	}, []string{"namespace", "generator", "node", "sender"})
	lostPackets = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "xdpgen_agent_lost_packets", Help: "Frames of the generator from the sender that did not arrive at this node: the gaps in the sequence numbers until the path settles, then what the sender sent less what arrived.",
	}, []string{"namespace", "generator", "node", "sender"})

	// The achieved mix of a run whose frame sizes vary.
	sizePacketsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "xdpgen_agent_size_packets_total", Help: "Frames the generator on this node sent per size bucket (min_bytes to max_bytes, without FCS), for runs whose frame sizes vary.",
	}, []string{"namespace", "generator", "node", "min_bytes", "max_bytes"})

	// The round trips a sending node timed, for generators with receivers.
	rttSeconds = newRTTHistograms()

	allMetrics = []*prometheus.MetricVec{packetsTotal.MetricVec, bytesTotal.MetricVec, egressDroppedPacketsTotal.MetricVec,
		tcpAcknowledgedBytesTotal.MetricVec, tcpSentSegmentsTotal.MetricVec, tcpRetransmittedSegmentsTotal.MetricVec,
		tcpRetransmittedBytesTotal.MetricVec, receivedPacketsTotal.MetricVec, receivedBytesTotal.MetricVec, lostPackets.MetricVec, sizePacketsTotal.MetricVec}
)

func init() {
	for _, v := range allMetrics {
		ctrlmetrics.Registry.MustRegister(v)
	}
	ctrlmetrics.Registry.MustRegister(rttSeconds)
}

// deleteSeries removes the series of every metric that have the given labels.
func deleteSeries(labels prometheus.Labels) {
	for _, v := range allMetrics {
		v.DeletePartialMatch(labels)
	}
	rttSeconds.deletePartialMatch(labels)
}

// metricsRetention is how long a deleted generator's series stay: long enough for Prometheus to scrape the
// last values.
const metricsRetention = 5 * time.Minute

// generatorMetrics are the metrics of every generator that ran on this node.
type generatorMetrics struct {
	node      string
	retention time.Duration
	mu        sync.Mutex
	of        map[types.NamespacedName]*metrics
}

func newGeneratorMetrics(node string) *generatorMetrics {
	return &generatorMetrics{node: node, retention: metricsRetention, of: map[types.NamespacedName]*metrics{}}
}

// countedVerdicts are the XDP verdicts the generator's programs count: frames sent, and frames they could not
// build.
var countedVerdicts = []xdpgenv1alpha1.XDPAction{xdpgenv1alpha1.XDPRedirect, xdpgenv1alpha1.XDPAborted}

// forGenerator returns the metrics of the generator named key, keeping them if they were to be forgotten.
func (g *generatorMetrics) forGenerator(key types.NamespacedName) *metrics {
	g.mu.Lock()
	defer g.mu.Unlock()
	m := g.of[key]
	if m == nil {
		m = &metrics{labels: prometheus.Labels{"namespace": key.Namespace, "generator": key.Name, "node": g.node},
			last: map[xdpgenv1alpha1.XDPAction]xdpgenv1alpha1.ActionCount{}}
		g.of[key] = m
		// The verdicts the generator's programs count start at 0 before the first report: a series that first
		// shows up with the first report's count would hide that count from increase() and rate().
		for _, action := range countedVerdicts {
			labels := prometheus.Labels{"action": string(action)}
			maps.Copy(labels, m.labels)
			packetsTotal.With(labels).Add(0)
			bytesTotal.With(labels).Add(0)
		}
		egressDroppedPacketsTotal.With(m.labels).Add(0)
	}
	if m.forget != nil {
		m.forget.Stop()
		m.forget = nil
	}
	return m
}

// forgetLater removes the generator's series after the retention, unless it is run again before.
func (g *generatorMetrics) forgetLater(key types.NamespacedName) {
	g.mu.Lock()
	defer g.mu.Unlock()
	m := g.of[key]
	if m == nil || m.forget != nil {
		return
	}
	var t *time.Timer
	t = time.AfterFunc(g.retention, func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		if m.forget != t {
			return // run again in the meantime
		}
		delete(g.of, key)
		deleteSeries(m.labels)
	})
	m.forget = t
}

// metrics follows one generator on one node. Reports carry totals; Prometheus counters take increments.
type metrics struct {
	labels prometheus.Labels
	// forget removes the series once the generator is deleted; guarded by generatorMetrics.mu.
	forget            *time.Timer
	mu                sync.Mutex
	last              map[xdpgenv1alpha1.XDPAction]xdpgenv1alpha1.ActionCount
	lastTCP           xdpgenv1alpha1.TCPStatus
	lastEgressDropped int64
	lastPaths         map[string]xdpgenv1alpha1.PathResult
	lastRTT           map[int64]int64 // bucket's upper bound in ns: count
	lastRTTSum        int64
	lastSizes         map[[2]int32]int64 // bucket's bounds: frames
	generation        int64
}

// set brings the metrics to a report's status. A new generation starts its totals from zero, and its counts
// add to the counters.
func (m *metrics) set(st xdpgenv1alpha1.NodeReportStatus) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if st.Generation != m.generation {
		m.generation = st.Generation
		clear(m.last)
		m.lastTCP = xdpgenv1alpha1.TCPStatus{}
		m.lastEgressDropped = 0
		m.lastPaths = nil
		m.lastRTT, m.lastRTTSum = nil, 0
		m.lastSizes = nil
	}
	for _, ac := range st.Actions {
		prev := m.last[ac.Action]
		labels := prometheus.Labels{"action": string(ac.Action)}
		maps.Copy(labels, m.labels)
		packetsTotal.With(labels).Add(float64(max(ac.Packets-prev.Packets, 0)))
		bytesTotal.With(labels).Add(float64(max(ac.Bytes-prev.Bytes, 0)))
		m.last[ac.Action] = ac
	}
	egressDroppedPacketsTotal.With(m.labels).Add(float64(max(st.EgressDroppedPackets-m.lastEgressDropped, 0)))
	m.lastEgressDropped = st.EgressDroppedPackets
	if tcp := st.TCP; tcp != nil {
		prev := m.lastTCP
		tcpAcknowledgedBytesTotal.With(m.labels).Add(float64(max(tcp.BytesAcknowledged-prev.BytesAcknowledged, 0)))
		tcpSentSegmentsTotal.With(m.labels).Add(float64(max(tcp.SegmentsSent-prev.SegmentsSent, 0)))
		tcpRetransmittedSegmentsTotal.With(m.labels).Add(float64(max(tcp.SegmentsRetransmitted-prev.SegmentsRetransmitted, 0)))
		tcpRetransmittedBytesTotal.With(m.labels).Add(float64(max(tcp.BytesRetransmitted-prev.BytesRetransmitted, 0)))
		m.lastTCP = *tcp
	}
	for _, p := range st.Received {
		if m.lastPaths == nil {
			m.lastPaths = map[string]xdpgenv1alpha1.PathResult{}
		}
		prev := m.lastPaths[p.Sender]
		labels := prometheus.Labels{"sender": p.Sender}
		maps.Copy(labels, m.labels)
		receivedPacketsTotal.With(labels).Add(float64(max(p.ReceivedPackets-prev.ReceivedPackets, 0)))
		receivedBytesTotal.With(labels).Add(float64(max(p.ReceivedBytes-prev.ReceivedBytes, 0)))
		lostPackets.With(labels).Set(float64(p.LostPackets))
		m.lastPaths[p.Sender] = p
	}
	for _, c := range st.Sizes {
		if m.lastSizes == nil {
			m.lastSizes = map[[2]int32]int64{}
		}
		b := [2]int32{c.Min, c.Max}
		labels := prometheus.Labels{"min_bytes": strconv.Itoa(int(c.Min)), "max_bytes": strconv.Itoa(int(c.Max))}
		maps.Copy(labels, m.labels)
		sizePacketsTotal.With(labels).Add(float64(max(c.Packets-m.lastSizes[b], 0)))
		m.lastSizes[b] = c.Packets
	}
	if len(st.RTTHistogram) > 0 {
		if m.lastRTT == nil {
			m.lastRTT = map[int64]int64{}
		}
		for _, b := range st.RTTHistogram {
			rttSeconds.add(m.labels, b.UpperBoundNanoseconds, max(b.Count-m.lastRTT[b.UpperBoundNanoseconds], 0))
			m.lastRTT[b.UpperBoundNanoseconds] = b.Count
		}
		rttSeconds.addSum(m.labels, max(st.RTTSumNanoseconds-m.lastRTTSum, 0))
		m.lastRTTSum = st.RTTSumNanoseconds
	}
}
