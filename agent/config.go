// Package agent is the node side of xdpgen: it reads the TrafficGenerator that names this node, drives the
// data plane engine, and writes this node's NodeReport. It never writes the TrafficGenerator.
package agent

import (
	"errors"
	"net/netip"
	"strconv"
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
	case dataplane.FieldSizes:
		return "spec.frameSizes"
	case dataplane.FieldDstRange:
		return "spec.destination.addressRange"
	case dataplane.FieldSrcRange:
		return "spec.source.addressRange"
	case dataplane.FieldThreads:
		return "spec.threads"
	case dataplane.FieldRate:
		return "spec.rate"
	case dataplane.FieldBurst:
		return "spec.rate.burst"
	case dataplane.FieldCapture:
		return "spec.replay (the ConfigMap's capture)"
	}
	return string(f)
}

// userError names the engine's fields by their spec paths.
func userError(err error) error {
	return dataplane.RenameFields(err, specPath)
}

// progress is what this node already did for a generation before the agent (re)started.
type progress struct {
	packets uint64
	// running is how long the node has been sending since its run started.
	running time.Duration
}

// udpConfig is what this node runs for a udp TrafficGenerator: its spec, less what an earlier incarnation of
// the agent already sent (a restarted agent finishes the run, it does not start over). The engine checks it.
func udpConfig(spec *xdpgenv1alpha1.TrafficGeneratorSpec, done progress) (dataplane.UDPConfig, error) {
	cfg := dataplane.UDPConfig{
		DstPort:      uint16(spec.Destination.Port),
		DstPortCount: uint16(spec.Destination.PortCount),
		SrcPort:      uint16(spec.Source.Port),
		SrcPortCount: uint16(spec.Source.PortCount),
		FrameSize:    int(spec.FrameSize),
		Threads:      int(spec.Threads),
		Interface:    specInterface(spec),
		Inject:       spec.Mode == xdpgenv1alpha1.ModeInject,
	}
	var err error
	if cfg.DstAddr, cfg.SrcAddr, err = specAddrs(spec); err != nil {
		return cfg, err
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
	if cfg.Sizes, err = specSizes(spec.FrameSizes); err != nil {
		return cfg, err
	}
	if cfg.DstRange, err = specRange(dataplane.FieldDstRange, spec.Destination.AddressRange, spec.Destination.AddressOrder); err != nil {
		return cfg, err
	}
	if cfg.SrcRange, err = specRange(dataplane.FieldSrcRange, spec.Source.AddressRange, spec.Source.AddressOrder); err != nil {
		return cfg, err
	}
	if r := spec.Rate; r != nil {
		if r.PacketsPerSecond != nil {
			cfg.RatePPS = uint64(*r.PacketsPerSecond)
		}
		if r.BitsPerSecond != nil {
			cfg.RateBPS = uint64(*r.BitsPerSecond)
		}
		if r.L1BitsPerSecond != nil {
			cfg.RateL1BPS = uint64(*r.L1BitsPerSecond)
		}
		if r.Burst != nil {
			cfg.Burst = int(*r.Burst)
		}
		if r.PercentOfLineRate != "" {
			// The API server has checked it is a number in (0, 100].
			if cfg.RateLinePercent, err = strconv.ParseFloat(r.PercentOfLineRate, 64); err != nil {
				return cfg, userError(&dataplane.ConfigError{Field: dataplane.FieldRate, Value: r.PercentOfLineRate, Problem: "not a number"})
			}
		}
	}
	if cfg.Packets, cfg.Duration, err = remaining(spec, done); err != nil {
		return cfg, err
	}
	return cfg, nil
}

// specSizes is the engine's FrameSizes for spec.frameSizes (nil for none); the API server has checked its shape.
func specSizes(fs *xdpgenv1alpha1.FrameSizes) (*dataplane.FrameSizes, error) {
	if fs == nil {
		return nil, nil
	}
	sizes := &dataplane.FrameSizes{Random: fs.Order == xdpgenv1alpha1.OrderRandom}
	switch {
	case fs.Profile != "":
		mix, err := dataplane.SizeProfile(dataplane.FieldSizes, fs.Profile)
		if err != nil {
			return nil, userError(err)
		}
		sizes.Mix = mix
	case len(fs.Weights) > 0:
		for _, w := range fs.Weights {
			sizes.Mix = append(sizes.Mix, dataplane.WeightedSize{Size: int(w.Size), Weight: int(w.Weight)})
		}
	case fs.Min != nil && fs.Max != nil:
		sizes.Min, sizes.Max = int(*fs.Min), int(*fs.Max)
	}
	return sizes, nil
}

// specRange is the engine's AddrRange for an addressRange of the spec (nil for none).
func specRange(f dataplane.Field, s string, order xdpgenv1alpha1.Order) (*dataplane.AddrRange, error) {
	if s == "" {
		return nil, nil
	}
	r, err := dataplane.ParseAddrRange(f, s)
	if err != nil {
		return nil, userError(err)
	}
	r.Random = order == xdpgenv1alpha1.OrderRandom
	return &r, nil
}

// replayConfig is udpConfig for a udp TrafficGenerator that replays capture (read from spec.replay's ConfigMap):
// it goes on from the frame after the last one an earlier incarnation sent, and sends only frames rewritten to
// destination.address, which the admission policy has checked.
func replayConfig(spec *xdpgenv1alpha1.TrafficGeneratorSpec, done progress, capture *dataplane.Capture) (dataplane.ReplayConfig, error) {
	cfg := dataplane.ReplayConfig{
		Interface:     specInterface(spec),
		Capture:       capture,
		Threads:       int(spec.Threads),
		CaptureTiming: spec.Replay.Timing == xdpgenv1alpha1.ReplayAtCaptureTiming,
		Skip:          done.packets,
		OnlyRewritten: true,
	}
	dst, src, err := specAddrs(spec)
	if err != nil {
		return cfg, err
	}
	if dst.IsValid() {
		cfg.DstAddrs = []netip.Addr{dst}
	}
	if src.IsValid() {
		cfg.SrcAddrs = []netip.Addr{src}
	}
	if cfg.DstMAC, err = dataplane.ParseMAC(dataplane.FieldDstMAC, spec.Destination.MAC); err != nil {
		return cfg, userError(err)
	}
	if cfg.SrcMAC, err = dataplane.ParseMAC(dataplane.FieldSrcMAC, spec.Source.MAC); err != nil {
		return cfg, userError(err)
	}
	// The API server allows a replay these two rates only.
	if r := spec.Rate; r != nil {
		if r.PacketsPerSecond != nil {
			cfg.RatePPS = uint64(*r.PacketsPerSecond)
		}
		if r.BitsPerSecond != nil {
			cfg.RateBPS = uint64(*r.BitsPerSecond)
		}
	}
	if cfg.Packets, cfg.Duration, err = remaining(spec, done); err != nil {
		return cfg, err
	}
	return cfg, nil
}

// tcpConfig is udpConfig for a tcp TrafficGenerator: packets count data segments.
func tcpConfig(spec *xdpgenv1alpha1.TrafficGeneratorSpec, done progress) (dataplane.TCPConfig, error) {
	cfg := dataplane.TCPConfig{
		Interface: specInterface(spec),
		DstPort:   uint16(spec.Destination.Port),
		FrameSize: int(spec.FrameSize),
		Threads:   int(spec.Threads),
	}
	if spec.TCP != nil && spec.TCP.Flows != nil {
		cfg.Flows = int(*spec.TCP.Flows)
	}
	var err error
	if cfg.DstAddr, cfg.SrcAddr, err = specAddrs(spec); err != nil {
		return cfg, err
	}
	if cfg.Segments, cfg.Duration, err = remaining(spec, done); err != nil {
		return cfg, err
	}
	return cfg, nil
}

func specInterface(spec *xdpgenv1alpha1.TrafficGeneratorSpec) string {
	if spec.Interface == xdpgenv1alpha1.InterfaceAuto {
		return ""
	}
	return spec.Interface
}

func specAddrs(spec *xdpgenv1alpha1.TrafficGeneratorSpec) (dst, src netip.Addr, err error) {
	if dst, err = dataplane.ParseAddr(dataplane.FieldDstAddr, spec.Destination.Address); err != nil {
		return dst, src, userError(err)
	}
	if src, err = dataplane.ParseAddr(dataplane.FieldSrcAddr, spec.Source.Address); err != nil {
		return dst, src, userError(err)
	}
	return dst, src, nil
}

// remaining is the packet count and duration left of the run after what an earlier incarnation did.
func remaining(spec *xdpgenv1alpha1.TrafficGeneratorSpec, done progress) (packets uint64, d time.Duration, err error) {
	if spec.Packets != nil {
		packets = uint64(*spec.Packets) - min(done.packets, uint64(*spec.Packets))
		if packets == 0 {
			return 0, 0, errNothingLeft
		}
	}
	if spec.Duration != nil {
		d = spec.Duration.Duration - done.running
		if d <= 0 {
			return 0, 0, errNothingLeft
		}
	}
	return packets, d, nil
}

// errNothingLeft: an earlier incarnation of the agent already did the whole run.
var errNothingLeft = errors.New("the run was already complete")
