package agent

import (
	"context"
	"net/netip"

	"github.com/xdpgen/xdpgen/agent/dataplane"
	xdpgenv1alpha1 "github.com/xdpgen/xdpgen/api/v1alpha1"
)

// engine is what a run needs of the data plane, whatever the protocol.
type engine interface {
	Interface() (name string, ifindex int)
	Flow() string
	Run(context.Context) error
	// Stats reads what the run counted so far. Safe to call while Run is going.
	Stats() (stats, error)
	// PinCounters pins the frame counters at path on a bpffs, for an agent that takes the run over (pins.go).
	PinCounters(path string) error
	Close() error
}

// stats is a snapshot of what a run counted: its frames, whatever the protocol, and what the protocol counts
// besides.
type stats struct {
	frames dataplane.Stats
	// tcp is the snapshot of a tcp run's connections; nil for udp.
	tcp *dataplane.TCPStats
}

// enginePlan is what a run on this node asks of the data plane besides its spec.
type enginePlan struct {
	// done is what an earlier incarnation of the agent already sent.
	done progress
	// cpus are the CPUs the threads are pinned to.
	cpus []int
	// receivers are the nodes to send to, for a generator with receivers; stamp marks the frames for them.
	receivers []receiverNode
	stamp     *dataplane.Stamp
	// capture is what a replay sends (spec.replay's ConfigMap, read by the run).
	capture *dataplane.Capture
}

// newEngine readies the data plane for the spec and plan: resolving, loading, attaching, and for tcp
// connecting.
func newEngine(ctx context.Context, spec *xdpgenv1alpha1.TrafficGeneratorSpec, plan enginePlan) (engine, error) {
	done, cpus := plan.done, plan.cpus
	if spec.Protocol == xdpgenv1alpha1.ProtocolTCP {
		cfg, err := tcpConfig(spec, done)
		if err != nil {
			return nil, err
		}
		cfg.CPUs = cpus
		g, err := dataplane.NewTCPGenerator(ctx, cfg)
		if err != nil {
			return nil, err
		}
		return tcpEngine{g}, nil
	}
	if spec.Replay != nil {
		cfg, err := replayConfig(spec, done, plan.capture)
		if err != nil {
			return nil, err
		}
		cfg.CPUs = cpus
		g, err := dataplane.NewReplayGenerator(cfg)
		if err != nil {
			return nil, err
		}
		return replayEngine{g}, nil
	}
	cfg, err := udpConfig(spec, done)
	if err != nil {
		return nil, err
	}
	cfg.CPUs = cpus
	if spec.Receivers != nil {
		cfg.DstAddr, cfg.Stamp = netip.Addr{}, plan.stamp
		for _, r := range plan.receivers {
			cfg.DstAddrs = append(cfg.DstAddrs, r.addr)
		}
	}
	g, err := dataplane.NewUDPGenerator(cfg)
	if err != nil {
		return nil, err
	}
	return udpEngine{g}, nil
}

type udpEngine struct{ *dataplane.UDPGenerator }

func (e udpEngine) Stats() (stats, error) {
	s, err := e.UDPGenerator.Stats()
	return stats{frames: s}, err
}

type replayEngine struct{ *dataplane.ReplayGenerator }

func (e replayEngine) Stats() (stats, error) {
	s, err := e.ReplayGenerator.Stats()
	return stats{frames: s}, err
}

type tcpEngine struct{ *dataplane.TCPGenerator }

func (e tcpEngine) Stats() (stats, error) {
	s, err := e.TCPGenerator.Stats()
	if err != nil {
		return stats{}, err
	}
	return stats{frames: s.Frames(), tcp: &s}, nil
}
