package dataplane

import (
	"fmt"
	"net/netip"
	"time"
)

// Action is an XDP verdict; the programs count packets and bytes per verdict.
type Action int

// The XDP verdicts, in the kernel's order.
const (
	ActionAborted Action = iota
	ActionDrop
	ActionPass
	ActionTX
	ActionRedirect
	numActions
)

// Actions lists every verdict in the kernel's order.
var Actions = [numActions]Action{ActionAborted, ActionDrop, ActionPass, ActionTX, ActionRedirect}

func (a Action) String() string {
	switch a {
	case ActionAborted:
		return "XDP_ABORTED"
	case ActionDrop:
		return "XDP_DROP"
	case ActionPass:
		return "XDP_PASS"
	case ActionTX:
		return "XDP_TX"
	case ActionRedirect:
		return "XDP_REDIRECT"
	}
	return fmt.Sprintf("XDP_%d", int(a))
}

// Counter is a packet and byte count.
type Counter struct {
	Packets uint64 `json:"packets"`
	Bytes   uint64 `json:"bytes"`
}

func (c Counter) add(o Counter) Counter {
	return Counter{Packets: c.Packets + o.Packets, Bytes: c.Bytes + o.Bytes}
}

func (c Counter) sub(o Counter) Counter {
	return Counter{Packets: c.Packets - o.Packets, Bytes: c.Bytes - o.Bytes}
}

// Stats is a snapshot of the generator's counters, summed over every CPU.
type Stats struct {
	At      time.Time
	Actions [numActions]Counter
	// Egress is what the egress interface reports since the generator was made: frames it transmitted
	// (for a veth: handed to its peer) and frames it dropped. Other traffic on the interface counts too.
	Egress InterfaceCounters
	// Destinations are the frames sent to each destination (UDP runs), in the order of the configuration:
	// with stamps, exactly what its receiver should account for (SettlePath).
	Destinations []DestinationSent
	// Sizes are the frames sent per size bucket (UDP runs): one bucket for a fixed size, each size of a mix, or
	// up to 16 equal slices of a range.
	Sizes []SizeCount
}

// DestinationSent is what a run sent to one destination.
type DestinationSent struct {
	Addr netip.Addr `json:"addr"`
	// Last is the end of the range of addresses the frames went to, from Addr (a run with DstRange).
	Last    netip.Addr `json:"last,omitzero"`
	Packets uint64     `json:"packets"`
}

// InterfaceCounters are an interface's own transmit counters.
type InterfaceCounters struct {
	TxPackets uint64 `json:"txPackets"`
	TxBytes   uint64 `json:"txBytes"`
	// TxDropped are frames the driver refused: a full transmit ring, or for a veth its peer's full receive ring.
	TxDropped uint64 `json:"txDropped"`
}

func (c InterfaceCounters) sub(o InterfaceCounters) InterfaceCounters {
	return InterfaceCounters{TxPackets: c.TxPackets - o.TxPackets, TxBytes: c.TxBytes - o.TxBytes, TxDropped: c.TxDropped - o.TxDropped}
}

// Sent is what was handed on: to an interface for transmission (XDP_REDIRECT, XDP_TX), or to the stack by an
// injecting run (XDP_PASS).
func (s Stats) Sent() Counter {
	return s.Actions[ActionRedirect].add(s.Actions[ActionTX]).add(s.Actions[ActionPass])
}

// EgressDrops explains frames the egress interface refused, or is empty when it refused none.
func (s Stats) EgressDrops() string {
	dropped := s.Egress.TxDropped
	if dropped == 0 {
		return ""
	}
	return fmt.Sprintf("the interface dropped %d frames (%.1f%% of those sent): its transmit ring (for a veth, the peer's "+
		"receive ring) is full; use fewer threads, a lower rate, or give a veth peer one RX queue per thread",
		dropped, 100*float64(dropped)/float64(max(s.Sent().Packets, 1)))
}

// Rate is a counter's change per second.
type Rate struct {
	PacketsPerSecond float64 `json:"pps"`
	BitsPerSecond    float64 `json:"bps"`
}

// Delta is what happened between two snapshots.
type Delta struct {
	Period  time.Duration
	Actions [numActions]Counter
	Egress  InterfaceCounters
}

// Since is the change from an earlier snapshot.
func (s Stats) Since(earlier Stats) Delta {
	d := Delta{Period: s.At.Sub(earlier.At), Egress: s.Egress.sub(earlier.Egress)}
	for a := range d.Actions {
		d.Actions[a] = s.Actions[a].sub(earlier.Actions[a])
	}
	return d
}

// Rate is the rate of one verdict over the period.
func (d Delta) Rate(a Action) Rate {
	secs := d.Period.Seconds()
	if secs <= 0 {
		return Rate{}
	}
	c := d.Actions[a]
	return Rate{PacketsPerSecond: float64(c.Packets) / secs, BitsPerSecond: float64(c.Bytes) * 8 / secs}
}
