// Package agent is the node side of xdpgen: it reads the TrafficGenerator that names this node, drives the
// data plane engine, and writes this node's NodeReport. It never writes the TrafficGenerator.
package agent

import (
	"errors"
	"fmt"
	"time"

	"github.com/xdpgen/xdpgen/agent/dataplane"
	xdpgenv1alpha1 "github.com/xdpgen/xdpgen/api/v1alpha1"
)

// specPath names the spec field behind an engine field, so that a node's error points at what to edit.
func specPath(f dataplane.Field) string {
	switch f {
	case dataplane.FieldInterface:
		return "spec.interface"
	case dataplane.FieldDstAddr:
		return "spec.destination.address"
	case dataplane.FieldDstMAC:
		return "spec.destination.mac"
	case dataplane.FieldDstPort:
		return "spec.destination.port/portCount"
	case dataplane.FieldSrcAddr:
		return "spec.source.address"
	case dataplane.FieldSrcMAC:
		return "spec.source.mac"
	case dataplane.FieldSrcPort:
		return "spec.source.port/portCount"
	case dataplane.FieldVLAN:
		return "spec.vlan"
	case dataplane.FieldFrameSize:
		return "spec.frameSize"
	case dataplane.FieldThreads:
		return "spec.threads"
	case dataplane.FieldRate:
		return "spec.rate"
	}
	return string(f)
}

// userError rewrites the engine's field errors with spec paths.
func userError(err error) error {
	var errs []error
	for _, e := range splitJoined(err) {
		var ce *dataplane.ConfigError
		if errors.As(e, &ce) {
			if ce.Value != "" {
				e = fmt.Errorf("%s %s: %s", specPath(ce.Field), ce.Value, ce.Problem)
			} else {
				e = fmt.Errorf("%s: %s", specPath(ce.Field), ce.Problem)
			}
		}
		errs = append(errs, e)
	}
	return errors.Join(errs...)
}

func splitJoined(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// progress is what this node already did for a generation before the agent (re)started.
type progress struct {
	packets uint64
	// running is how long the node has been sending since its run started.
	running time.Duration
}

// engineConfig is what this node runs for a TrafficGenerator: its spec, less what an earlier incarnation of
// the agent already sent (a restarted agent finishes the run, it does not start over).
func engineConfig(spec *xdpgenv1alpha1.TrafficGeneratorSpec, done progress) (dataplane.Config, error) {
	cfg := dataplane.Config{
		DstPort:      uint16(spec.Destination.Port),
		DstPortCount: uint16(spec.Destination.PortCount),
		SrcPort:      uint16(spec.Source.Port),
		SrcPortCount: uint16(spec.Source.PortCount),
		FrameSize:    int(spec.FrameSize),
		Threads:      int(spec.Threads),
	}
	if spec.Interface != xdpgenv1alpha1.InterfaceAuto {
		cfg.Interface = spec.Interface
	}
	if spec.Protocol != "" && spec.Protocol != xdpgenv1alpha1.ProtocolUDP {
		return cfg, fmt.Errorf("spec.protocol %s: this agent sends udp only so far", spec.Protocol)
	}
	var err error
	if cfg.DstAddr, err = dataplane.ParseAddr(dataplane.FieldDstAddr, spec.Destination.Address); err != nil {
		return cfg, userError(err)
	}
	if cfg.SrcAddr, err = dataplane.ParseAddr(dataplane.FieldSrcAddr, spec.Source.Address); err != nil {
		return cfg, userError(err)
	}
	if cfg.DstMAC, err = dataplane.ParseMAC(dataplane.FieldDstMAC, spec.Destination.MAC); err != nil {
		return cfg, userError(err)
	}
	if cfg.SrcMAC, err = dataplane.ParseMAC(dataplane.FieldSrcMAC, spec.Source.MAC); err != nil {
		return cfg, userError(err)
	}
	if spec.VLAN != nil {
		cfg.VLAN = uint16(*spec.VLAN)
	}
	if r := spec.Rate; r != nil {
		if r.PacketsPerSecond != nil {
			cfg.RatePPS = uint64(*r.PacketsPerSecond)
		}
		if r.BitsPerSecond != nil {
			cfg.RateBPS = uint64(*r.BitsPerSecond)
		}
	}
	if spec.Packets != nil {
		cfg.Packets = uint64(*spec.Packets) - min(done.packets, uint64(*spec.Packets))
		if cfg.Packets == 0 {
			return cfg, errNothingLeft
		}
	}
	if spec.Duration != nil {
		cfg.Duration = spec.Duration.Duration - done.running
		if cfg.Duration <= 0 {
			return cfg, errNothingLeft
		}
	}
	return cfg, userError(cfg.Validate())
}

// errNothingLeft: an earlier incarnation of the agent already did the whole run.
var errNothingLeft = errors.New("the run was already complete")
