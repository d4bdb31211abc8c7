package dataplane

import (
	"net"
	"net/netip"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/xdpgen/xdpgen/test/netnstest"
)

func TestUDPTemplate(t *testing.T) {
	for _, tc := range []struct {
		name     string
		src, dst netip.Addr
		vlan     uint16
		size     int
	}{
		{"ipv4 min", netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2"), 0, 60},
		{"ipv4 vlan 1518", netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2"), 100, 1518},
		{"ipv6 min", netip.MustParseAddr("fd00::1"), netip.MustParseAddr("fd00::2"), 0, 62},
		{"ipv6 vlan odd size", netip.MustParseAddr("fd00::1"), netip.MustParseAddr("fd00::2"), 7, 999},
	} {
		t.Run(tc.name, func(t *testing.T) {
			size := max(tc.size, minFrameSize(tc.dst.Is6(), tc.vlan))
			tmpl, err := buildUDPTemplate(udpFlow{
				SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2},
				SrcAddr: tc.src, DstAddr: tc.dst, SrcPort: 1234, DstPort: 5678, VLAN: tc.vlan, FrameSize: size,
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(tmpl.Frame) != size {
				t.Fatalf("frame is %d bytes, want %d", len(tmpl.Frame), size)
			}
			pkt := gopacket.NewPacket(tmpl.Frame, layers.LayerTypeEthernet, gopacket.Default)
			udp, _ := pkt.Layer(layers.LayerTypeUDP).(*layers.UDP)
			if udp == nil || udp.SrcPort != 1234 || udp.DstPort != 5678 {
				t.Fatalf("no UDP 1234->5678 in %v", pkt)
			}
			if got := len(tmpl.Frame) - tmpl.UDPOffset; int(udp.Length) != got {
				t.Fatalf("UDP length %d, want %d", udp.Length, got)
			}
			if !netnstest.UDPChecksumOK(tc.src, tc.dst, tmpl.Frame[tmpl.UDPOffset:]) {
				t.Fatal("bad UDP checksum")
			}
			if tc.dst.Is4() && !netnstest.IPv4HeaderChecksumOK(tmpl.Frame[tmpl.UDPOffset-ipv4HeaderLen:]) {
				t.Fatal("bad IPv4 header checksum")
			}
			if dot1q, _ := pkt.Layer(layers.LayerTypeDot1Q).(*layers.Dot1Q); (dot1q != nil) != (tc.vlan != 0) ||
				(dot1q != nil && dot1q.VLANIdentifier != tc.vlan) {
				t.Fatalf("VLAN tag %v, want %d", dot1q, tc.vlan)
			}
		})
	}
}
