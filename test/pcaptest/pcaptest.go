// Package pcaptest writes the pcap files that replay tests give xdpgen, with gopacket.
package pcaptest

import (
	"bytes"
	"net"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

// start is every capture's first timestamp, so that captures of the same frames are the same bytes.
var start = time.Unix(1700000000, 0)

// Pcap is frames as a pcap file of link type linkType, gap apart.
func Pcap(t testing.TB, linkType layers.LinkType, frames [][]byte, gap time.Duration) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := pcapgo.NewWriter(&buf)
	if err := w.WriteFileHeader(65536, linkType); err != nil {
		t.Fatal(err)
	}
	for i, f := range frames {
		ci := gopacket.CaptureInfo{Timestamp: start.Add(time.Duration(i) * gap), CaptureLength: len(f), Length: len(f)}
		if err := w.WritePacket(ci, f); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

// UDPFrames are Ethernet, IPv4 and UDP frames from port 4000 to port, one of each size (at least 42, the
// headers), between documentation addresses and locally administered MACs of nobody's.
func UDPFrames(t testing.TB, port uint16, sizes ...int) [][]byte {
	t.Helper()
	var frames [][]byte
	for _, size := range sizes {
		ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: net.IP{192, 0, 2, 1}, DstIP: net.IP{198, 51, 100, 1}}
		udp := &layers.UDP{SrcPort: 4000, DstPort: layers.UDPPort(port)}
		_ = udp.SetNetworkLayerForChecksum(ip)
		frame := gopacket.NewSerializeBuffer()
		err := gopacket.SerializeLayers(frame, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
			&layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4},
			ip, udp, gopacket.Payload(make([]byte, size-42)))
		if err != nil {
			t.Fatal(err)
		}
		frames = append(frames, frame.Bytes())
	}
	return frames
}

// UDP is UDPFrames as an Ethernet capture, a millisecond apart.
func UDP(t testing.TB, port uint16, sizes ...int) []byte {
	t.Helper()
	return Pcap(t, layers.LinkTypeEthernet, UDPFrames(t, port, sizes...), time.Millisecond)
}
