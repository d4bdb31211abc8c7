package agent

import (
	"net"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/utils/ptr"

	"github.com/xdpgen/xdpgen/agent/dataplane"
	xdpgenv1alpha1 "github.com/xdpgen/xdpgen/api/v1alpha1"
)

// TestSpecFrameSizes checks that each form of spec.frameSizes reaches the engine as the same FrameSizes the CLI
// builds from --sizes.
func TestSpecFrameSizes(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   *xdpgenv1alpha1.FrameSizes
		want *dataplane.FrameSizes
	}{
		{"none", nil, nil},
		{"range", &xdpgenv1alpha1.FrameSizes{Min: ptr.To[int32](64), Max: ptr.To[int32](1514)}, &dataplane.FrameSizes{Min: 64, Max: 1514}},
		{"random range", &xdpgenv1alpha1.FrameSizes{Min: ptr.To[int32](64), Max: ptr.To[int32](128), Order: xdpgenv1alpha1.OrderRandom},
			&dataplane.FrameSizes{Min: 64, Max: 128, Random: true}},
		{"profile", &xdpgenv1alpha1.FrameSizes{Profile: "imix-simple"}, &dataplane.FrameSizes{Mix: dataplane.SizeProfiles["imix-simple"]}},
		{"weights", &xdpgenv1alpha1.FrameSizes{Weights: []xdpgenv1alpha1.SizeWeight{{Size: 100, Weight: 3}, {Size: 200, Weight: 1}}},
			&dataplane.FrameSizes{Mix: []dataplane.WeightedSize{{Size: 100, Weight: 3}, {Size: 200, Weight: 1}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := specSizes(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Fatalf("sizes (-want +got):\n%s", diff)
			}
		})
	}
}

// TestSpecFrameSizesErrorNamesTheSpec: what the API server cannot check (the smallest frame of the family) fails on
// the node with the spec's path.
func TestSpecFrameSizesErrorNamesTheSpec(t *testing.T) {
	spec := &xdpgenv1alpha1.TrafficGeneratorSpec{
		Destination: xdpgenv1alpha1.Destination{Address: "fd00::2", Port: 9, PortCount: 1},
		Source:      xdpgenv1alpha1.Source{Port: 9, PortCount: 1},
		FrameSizes:  &xdpgenv1alpha1.FrameSizes{Profile: "imix-simple"},
		Packets:     ptr.To[int64](10),
	}
	cfg, err := udpConfig(spec, progress{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = dataplane.NewUDPGenerator(cfg)
	want := "spec.frameSizes 60: below the smallest IPv6 frame: use sizes of at least 62 bytes"
	if err = userError(err); err == nil || err.Error() != want {
		t.Fatalf("got %v, want %q", err, want)
	}
}

// TestSpecialInRange: the node's check of a destination range finds every special block it touches, as the
// admission policy does.
func TestSpecialInRange(t *testing.T) {
	for in, want := range map[string]string{
		"10.0.0.0/24":                   "",
		"126.0.0.1-128.0.0.1":           "127.0.0.0",
		"169.254.169.250-169.254.170.0": "169.254.169.250",
		"96.0.0.0/3":                    "127.0.0.0",
		"223.255.255.250-224.0.0.2":     "224.0.0.0",
		"10.200.0.1-255.255.255.255":    "127.0.0.0",
		"fd00::/120":                    "",
		"::-::ff":                       "::",
		"ff02::/120":                    "ff02::",
		"":                              "",
	} {
		a, ok := specialInRange(in)
		if got := map[bool]string{true: a.String(), false: ""}[ok]; got != want {
			t.Errorf("specialInRange(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestSpecRanges: the spec's address ranges reach the engine in their order.
func TestSpecRanges(t *testing.T) {
	spec := &xdpgenv1alpha1.TrafficGeneratorSpec{
		Destination: xdpgenv1alpha1.Destination{AddressRange: "192.0.2.0/30", AddressOrder: xdpgenv1alpha1.OrderRandom, Port: 9, PortCount: 1},
		Source:      xdpgenv1alpha1.Source{AddressRange: "198.51.100.1-198.51.100.4", Port: 9, PortCount: 1},
		Packets:     ptr.To[int64](10),
	}
	cfg, err := udpConfig(spec, progress{})
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.DstRange.String() + " " + cfg.SrcRange.String(); got != "192.0.2.1-192.0.2.2 random 198.51.100.1-198.51.100.4" {
		t.Fatalf("ranges %s", got)
	}
	spec.Source.AddressRange = "fd00::/120"
	cfg, err = udpConfig(spec, progress{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = dataplane.NewUDPGenerator(cfg)
	want := "spec.source.addressRange fd00::-fd00::ff: is IPv6 but 192.0.2.1 is IPv4: use one IP family for both"
	if err = userError(err); err == nil || err.Error() != want {
		t.Fatalf("got %v, want %q", err, want)
	}
}

// TestSpecRates: each unit of spec.rate reaches the engine.
func TestSpecRates(t *testing.T) {
	for _, tc := range []struct {
		rate xdpgenv1alpha1.Rate
		want dataplane.UDPConfig
	}{
		{xdpgenv1alpha1.Rate{PacketsPerSecond: ptr.To[int64](5)}, dataplane.UDPConfig{RatePPS: 5}},
		{xdpgenv1alpha1.Rate{BitsPerSecond: ptr.To[int64](6)}, dataplane.UDPConfig{RateBPS: 6}},
		{xdpgenv1alpha1.Rate{L1BitsPerSecond: ptr.To[int64](7)}, dataplane.UDPConfig{RateL1BPS: 7}},
		{xdpgenv1alpha1.Rate{PercentOfLineRate: "2.5"}, dataplane.UDPConfig{RateLinePercent: 2.5}},
	} {
		spec := &xdpgenv1alpha1.TrafficGeneratorSpec{Destination: xdpgenv1alpha1.Destination{Address: "192.0.2.1"}, Rate: &tc.rate, Packets: ptr.To[int64](1)}
		cfg, err := udpConfig(spec, progress{})
		if err != nil {
			t.Fatal(err)
		}
		if cfg.RatePPS != tc.want.RatePPS || cfg.RateBPS != tc.want.RateBPS || cfg.RateL1BPS != tc.want.RateL1BPS || cfg.RateLinePercent != tc.want.RateLinePercent {
			t.Errorf("rate %+v: engine got %d pps, %d bps, %d L1 bps, %g%%", tc.rate, cfg.RatePPS, cfg.RateBPS, cfg.RateL1BPS, cfg.RateLinePercent)
		}
	}
}

// TestSpecInject: mode Inject reaches the engine, which injects into the named interface.
func TestSpecInject(t *testing.T) {
	spec := &xdpgenv1alpha1.TrafficGeneratorSpec{
		Interface:   "eth0",
		Mode:        xdpgenv1alpha1.ModeInject,
		Destination: xdpgenv1alpha1.Destination{Address: "10.96.0.10", Port: 53, PortCount: 1},
		Source:      xdpgenv1alpha1.Source{Address: "10.244.1.7", Port: 9, PortCount: 1},
		Packets:     ptr.To[int64](1),
	}
	cfg, err := udpConfig(spec, progress{})
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Inject || cfg.Interface != "eth0" {
		t.Fatalf("engine config %+v: want injection into eth0", cfg)
	}
}

// TestSizesWith: a resumed run adds its size buckets to the report's; a run of one size reports none.
func TestSizesWith(t *testing.T) {
	base := []xdpgenv1alpha1.SizeCount{{Min: 60, Max: 60, Packets: 70}, {Min: 1514, Max: 1514, Packets: 10}}
	cur := []dataplane.SizeCount{{Min: 60, Max: 60, Packets: 7}, {Min: 1514, Max: 1514, Packets: 1}}
	want := []xdpgenv1alpha1.SizeCount{{Min: 60, Max: 60, Packets: 77}, {Min: 1514, Max: 1514, Packets: 11}}
	if diff := cmp.Diff(want, sizesWith(base, cur)); diff != "" {
		t.Fatalf("sizes (-want +got):\n%s", diff)
	}
	if got := sizesWith(nil, []dataplane.SizeCount{{Min: 64, Max: 64, Packets: 5}}); got != nil {
		t.Fatalf("one size reported as %v", got)
	}
}

// TestReplayConfig: spec.replay reaches the engine with the destination to rewrite every frame to (and nothing
// else), the rate, and the frames an earlier incarnation sent to go on from.
func TestReplayConfig(t *testing.T) {
	capture := &dataplane.Capture{Frames: []dataplane.CapturedFrame{{Data: make([]byte, 60)}}}
	spec := &xdpgenv1alpha1.TrafficGeneratorSpec{
		Interface:   xdpgenv1alpha1.InterfaceAuto,
		Destination: xdpgenv1alpha1.Destination{Address: "10.200.0.2", MAC: "02:00:00:00:00:02", Port: 9, PortCount: 1},
		Source:      xdpgenv1alpha1.Source{Address: "10.200.0.1", Port: 9, PortCount: 1},
		Replay:      &xdpgenv1alpha1.Replay{ConfigMap: "capture", Key: "capture.pcap", Timing: xdpgenv1alpha1.ReplayAtRate},
		Rate:        &xdpgenv1alpha1.Rate{BitsPerSecond: ptr.To[int64](1_000_000)},
		Threads:     2,
		Packets:     ptr.To[int64](100),
	}
	got, err := replayConfig(spec, progress{packets: 30}, capture)
	if err != nil {
		t.Fatal(err)
	}
	want := dataplane.ReplayConfig{
		Capture: capture, DstAddrs: []netip.Addr{netip.MustParseAddr("10.200.0.2")}, SrcAddrs: []netip.Addr{netip.MustParseAddr("10.200.0.1")},
		DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, Threads: 2, Packets: 70, Skip: 30, RateBPS: 1_000_000, OnlyRewritten: true,
	}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Fatalf("replay config (-want +got):\n%s", diff)
	}
	spec.Replay.Timing, spec.Rate = xdpgenv1alpha1.ReplayAtCaptureTiming, nil
	if got, err = replayConfig(spec, progress{}, capture); err != nil || !got.CaptureTiming || got.RateBPS != 0 {
		t.Fatalf("timing Capture: %+v, %v; want the capture's timing and no rate", got, err)
	}
}
