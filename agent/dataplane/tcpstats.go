package dataplane

import (
	"fmt"
	"time"

	"github.com/cilium/ebpf"

	"github.com/xdpgen/xdpgen/bpf"
)

// TCPCounters are a TCP flow's counters (or their sum over flows). Bytes are payload bytes.
type TCPCounters struct {
	SegmentsSent          uint64 `json:"segmentsSent"`
	BytesSent             uint64 `json:"bytesSent"`
	SegmentsRetransmitted uint64 `json:"segmentsRetransmitted"`
	BytesRetransmitted    uint64 `json:"bytesRetransmitted"`
	// BytesAcked is what the peer acknowledged: the goodput's numerator.
	BytesAcked      uint64 `json:"bytesAcked"`
	FastRetransmits uint64 `json:"fastRetransmits"`
	// LostRetransmits are retransmissions in recovery that were not acknowledged within two round trips,
	// and were sent again.
	LostRetransmits uint64 `json:"lostRetransmits"`
	Timeouts        uint64 `json:"timeouts"`
	DupACKs         uint64 `json:"dupAcks"`
}

func (c TCPCounters) add(o TCPCounters) TCPCounters {
	return TCPCounters{
		SegmentsSent: c.SegmentsSent + o.SegmentsSent, BytesSent: c.BytesSent + o.BytesSent,
		SegmentsRetransmitted: c.SegmentsRetransmitted + o.SegmentsRetransmitted, BytesRetransmitted: c.BytesRetransmitted + o.BytesRetransmitted,
		BytesAcked: c.BytesAcked + o.BytesAcked, FastRetransmits: c.FastRetransmits + o.FastRetransmits,
		LostRetransmits: c.LostRetransmits + o.LostRetransmits, Timeouts: c.Timeouts + o.Timeouts, DupACKs: c.DupACKs + o.DupACKs,
	}
}

func (c TCPCounters) sub(o TCPCounters) TCPCounters {
	return TCPCounters{
		SegmentsSent: c.SegmentsSent - o.SegmentsSent, BytesSent: c.BytesSent - o.BytesSent,
		SegmentsRetransmitted: c.SegmentsRetransmitted - o.SegmentsRetransmitted, BytesRetransmitted: c.BytesRetransmitted - o.BytesRetransmitted,
		BytesAcked: c.BytesAcked - o.BytesAcked, FastRetransmits: c.FastRetransmits - o.FastRetransmits,
		LostRetransmits: c.LostRetransmits - o.LostRetransmits, Timeouts: c.Timeouts - o.Timeouts, DupACKs: c.DupACKs - o.DupACKs,
	}
}

// TCPFlowStats is one connection's counters and congestion state.
type TCPFlowStats struct {
	TCPCounters
	LocalPort uint16 `json:"localPort"`
	// State is "running", "reset" (by the peer), or "closed" (handed back to the kernel and closed).
	State string `json:"state"`
	// PeerClosed: the peer sent a FIN (it will send nothing more; it may still receive).
	PeerClosed bool `json:"peerClosed,omitempty"`
	// CongestionWindow and SlowStartThreshold are in segments; PeerWindow and InFlight in bytes.
	CongestionWindow   uint32        `json:"cwnd"`
	SlowStartThreshold uint32        `json:"ssthresh"`
	PeerWindow         uint32        `json:"peerWindow"`
	InFlight           uint64        `json:"inFlight"`
	SRTT               time.Duration `json:"srttNs"`
	RTO                time.Duration `json:"rtoNs"`
}

// TCPStats is a snapshot of a TCP run.
type TCPStats struct {
	At    time.Time      `json:"time"`
	Flows []TCPFlowStats `json:"flows"`
	// Total is the flows' counters added up.
	Total TCPCounters `json:"total"`
	// Actions counts frames by verdict, as for UDP: XDP_REDIRECT is every segment put on the wire.
	Actions [numActions]Counter `json:"-"`
	// Idle is frames the send program dropped because no flow could send: the workers' spare capacity.
	Idle   uint64            `json:"idle"`
	Egress InterfaceCounters `json:"egress"`
	// Workers is the workers' threads' time on their CPUs and waiting for them, added up; known once Run
	// has returned (zero before). A worker that waited much of the run sent that much less: its CPU was
	// shared with other threads.
	Workers SchedTimes `json:"workers"`
}

// Sent is what was handed to the interface.
func (s TCPStats) Sent() Counter {
	return s.Actions[ActionRedirect].add(s.Actions[ActionTX])
}

// Frames is the snapshot as frame counters, as a UDP run reports them.
func (s TCPStats) Frames() Stats {
	return Stats{At: s.At, Actions: s.Actions, Egress: s.Egress}
}

// TCPDelta is what happened between two snapshots.
type TCPDelta struct {
	Period  time.Duration
	Total   TCPCounters
	Actions [numActions]Counter
	Egress  InterfaceCounters
}

// Since is the change from an earlier snapshot.
func (s TCPStats) Since(earlier TCPStats) TCPDelta {
	d := TCPDelta{Period: s.At.Sub(earlier.At), Total: s.Total.sub(earlier.Total), Egress: s.Egress.sub(earlier.Egress)}
	for a := range d.Actions {
		d.Actions[a] = s.Actions[a].sub(earlier.Actions[a])
	}
	return d
}

// Goodput is the bytes the peer acknowledged, in bits per second.
func (d TCPDelta) Goodput() float64 {
	if d.Period <= 0 {
		return 0
	}
	return float64(d.Total.BytesAcked) * 8 / d.Period.Seconds()
}

// Rate is the rate of one verdict over the period.
func (d TCPDelta) Rate(a Action) Rate {
	return Delta{Period: d.Period, Actions: d.Actions}.Rate(a)
}

func flowStats(f bpf.TCPFlow, mss uint64) TCPFlowStats {
	s := TCPFlowStats{
		TCPCounters: TCPCounters{
			SegmentsSent: f.SegsSent, BytesSent: f.SegsSent * mss,
			SegmentsRetransmitted: f.SegsRetrans, BytesRetransmitted: f.SegsRetrans * mss,
			BytesAcked: f.SndUna, FastRetransmits: f.FastRetrans, LostRetransmits: f.LostRetrans, Timeouts: f.Timeouts,
			DupACKs: f.DupacksSeen,
		},
		LocalPort:          f.Port>>8 | f.Port<<8,
		State:              "running",
		PeerClosed:         f.PeerFin != 0,
		CongestionWindow:   f.Cwnd,
		SlowStartThreshold: f.Ssthresh,
		PeerWindow:         f.PeerWnd,
		InFlight:           f.SndNxt - f.SndUna,
		SRTT:               time.Duration(f.Srtt),
		RTO:                time.Duration(f.Rto),
	}
	if f.State == bpf.TCPFlowReset {
		s.State = "reset"
	}
	return s
}

// Stats reads the counters. Safe to call while Run is going.
func (g *TCPGenerator) Stats() (TCPStats, error) {
	flows, err := g.readFlows()
	if err != nil {
		return TCPStats{}, err
	}
	var workers []bpf.TCPWorker
	if err := g.objs.Workers.Lookup(uint32(0), &workers); err != nil {
		return TCPStats{}, fmt.Errorf("read worker counters: %w", err)
	}
	egress, err := g.host.egressSinceStart()
	if err != nil {
		return TCPStats{}, err
	}
	s := TCPStats{At: time.Now(), Egress: egress}
	if sched := g.workersSched.Load(); sched != nil {
		s.Workers = *sched
	}
	for i, f := range flows {
		fs := flowStats(f, uint64(g.mss))
		if g.conns[i].done.Load() && fs.State == "running" {
			fs.State = "closed"
		}
		s.Flows = append(s.Flows, fs)
		s.Total = s.Total.add(fs.TCPCounters)
	}
	for _, w := range workers {
		s.Idle += w.Idle
		for a, c := range w.Actions {
			s.Actions[a] = s.Actions[a].add(Counter{Packets: c.Packets, Bytes: c.Bytes})
		}
	}
	return s, nil
}

func (g *TCPGenerator) readFlows() ([]bpf.TCPFlow, error) {
	flows := make([]bpf.TCPFlow, len(g.conns))
	for i := range flows {
		if err := g.objs.Flows.LookupWithFlags(uint32(i), &flows[i], ebpf.LookupLock); err != nil {
			return nil, fmt.Errorf("read flow %d: %w", i, err)
		}
	}
	return flows, nil
}
