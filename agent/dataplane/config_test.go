package dataplane

import (
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
)

func TestValidateNamesTheField(t *testing.T) {
	v4, v6 := netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("fd00::2")
	for _, tc := range []struct {
		name  string
		cfg   UDPConfig
		field Field
		hint  string
	}{
		{"no destination", UDPConfig{}, FieldDstAddr, "required"},
		{"family mix", UDPConfig{DstAddr: v4, SrcAddr: netip.MustParseAddr("fd00::1")}, FieldSrcAddr, "same IP family"},
		{"dst port range past 65535", UDPConfig{DstAddr: v4, DstPort: 65500, DstPortCount: 100}, FieldDstPort, "at most 65436"},
		{"src port range past 65535", UDPConfig{DstAddr: v4, SrcPort: 2, SrcPortCount: 65535}, FieldSrcPort, "past 65535"},
		{"vlan", UDPConfig{DstAddr: v4, VLAN: 4095}, FieldVLAN, "1 to 4094"},
		{"frame too small v4", UDPConfig{DstAddr: v4, FrameSize: 59}, FieldFrameSize, "at least 60"},
		{"frame too small v6 vlan", UDPConfig{DstAddr: v6, VLAN: 5, FrameSize: 64}, FieldFrameSize, "at least 66"},
		{"frame over a page", UDPConfig{DstAddr: v4, FrameSize: 9000}, FieldFrameSize, "at most 3520"},
		{"both rates", UDPConfig{DstAddr: v4, RatePPS: 1, RateBPS: 1000}, FieldRate, "give one rate"},
		{"bps below a frame", UDPConfig{DstAddr: v4, RateBPS: 8}, FieldRate, "at least 512"},
		{"bad mac", UDPConfig{DstAddr: v4, DstMAC: net.HardwareAddr{1, 2}}, FieldDstMAC, "six bytes"},
		{"negative threads", UDPConfig{DstAddr: v4, Threads: -1}, FieldThreads, "at least 1"},
		{"a CPU per thread", UDPConfig{DstAddr: v4, Threads: 2, CPUs: []int{3}}, FieldThreads, "one CPU per thread"},
		{"a CPU twice", UDPConfig{DstAddr: v4, CPUs: []int{3, 3}}, FieldThreads, "CPU 3 is given twice"},
		{"stamped v6 at 64 bytes", UDPConfig{DstAddr: v6, FrameSize: 64, Stamp: &Stamp{}}, FieldFrameSize, "stamped IPv6 frame: use at least 82"},
		{"stamped v4 vlan at 64 bytes", UDPConfig{DstAddr: v4, VLAN: 2, FrameSize: 64, Stamp: &Stamp{}}, FieldFrameSize, "at least 66"},
		{"one destination and a list", UDPConfig{DstAddr: v4, DstAddrs: []netip.Addr{v4}}, FieldDstAddr, "not both"},
		{"a destination twice", UDPConfig{DstAddrs: []netip.Addr{v4, v4}}, FieldDstAddr, "given twice"},
		{"destinations of two families", UDPConfig{DstAddrs: []netip.Addr{v4, v6}}, FieldDstAddr, "one IP family per run"},
		{"too many destinations", UDPConfig{DstAddrs: make([]netip.Addr, 65)}, FieldDstAddr, "at most 64"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.cfg.validated()
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("validated() = %v, want a ConfigError", err)
			}
			if ce.Field != tc.field || !strings.Contains(err.Error(), tc.hint) {
				t.Fatalf("validated() = %q (field %s), want field %s and %q", err, ce.Field, tc.field, tc.hint)
			}
		})
	}
}

func TestValidateAcceptsGoodConfigs(t *testing.T) {
	for _, cfg := range []UDPConfig{
		{DstAddr: netip.MustParseAddr("10.0.0.2")},
		{DstAddr: netip.MustParseAddr("fd00::2"), VLAN: 4094},
		{DstAddr: netip.MustParseAddr("10.0.0.2"), CPUs: []int{2, 5}},
		{DstAddr: netip.MustParseAddr("10.0.0.2"), DstPort: 65436, DstPortCount: 100, FrameSize: MaxLiveFrameSize, RateBPS: 1e9},
		{DstAddr: netip.MustParseAddr("fd00::2"), Stamp: &Stamp{Generator: 1}},
		{DstAddrs: []netip.Addr{netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("10.0.1.2")}, Stamp: &Stamp{ReflectEvery: 10}},
	} {
		if _, err := cfg.validated(); err != nil {
			t.Errorf("validated(%+v) = %v", cfg, err)
		}
	}
}

// TestStampedDefaultFrameSize: a stamped IPv6 run without a frame size gets the smallest frame its stamp fits.
func TestStampedDefaultFrameSize(t *testing.T) {
	c, err := UDPConfig{DstAddr: netip.MustParseAddr("fd00::2"), Stamp: &Stamp{}}.validated()
	if err != nil || c.FrameSize != 82 {
		t.Fatalf("frame size %d (%v), want 82", c.FrameSize, err)
	}
}
