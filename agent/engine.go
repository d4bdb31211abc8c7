package agent

import (
	"context"
	"fmt"

	"github.com/xdpgen/xdpgen/agent/dataplane"
	xdpgenv1alpha1 "github.com/xdpgen/xdpgen/api/v1alpha1"
)

// engine is what a run needs of the data plane, whatever the protocol.
type engine interface {
	Interface() (name string, ifindex int)
	Flow() string
	Run(context.Context) error
	Stats() (dataplane.Stats, error)
	// Progress says what the protocol adds to the frame counters, for the report's message; may be empty.
	Progress() string
	// PinCounters pins the frame counters at path on a bpffs, for an agent that takes the run over (pins.go).
	PinCounters(path string) error
	Close() error
}

// newEngine readies the data plane for the spec, its threads pinned to cpus: resolving, loading, attaching,
// and for tcp connecting.
func newEngine(ctx context.Context, spec *xdpgenv1alpha1.TrafficGeneratorSpec, done progress, cpus []int) (engine, error) {
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
	cfg, err := udpConfig(spec, done)
	if err != nil {
		return nil, err
	}
	cfg.CPUs = cpus
	g, err := dataplane.NewUDPGenerator(cfg)
	if err != nil {
		return nil, err
	}
	return udpEngine{g}, nil
}

type udpEngine struct{ *dataplane.UDPGenerator }

func (udpEngine) Progress() string { return "" }

type tcpEngine struct{ *dataplane.TCPGenerator }

func (e tcpEngine) Stats() (dataplane.Stats, error) {
	s, err := e.TCPGenerator.Stats()
	return s.Frames(), err
}

func (e tcpEngine) Progress() string {
	s, err := e.TCPGenerator.Stats()
	if err != nil {
		return ""
	}
	return fmt.Sprintf("%d bytes acknowledged by the server, %d segments retransmitted", s.Total.BytesAcked, s.Total.SegmentsRetransmitted)
}
