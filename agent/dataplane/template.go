package dataplane

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/xdpgen/xdpgen/bpf"
)

const (
	ethernetHeaderLen = 14
	vlanTagLen        = 4
	ipv4HeaderLen     = 20
	ipv6HeaderLen     = 40
	udpHeaderLen      = 8

	// MinFrameSize is the smallest Ethernet frame (without FCS) the generator builds: what a NIC pads to anyway.
	MinFrameSize = 60
	// MaxLiveFrameSize is the largest frame BPF_PROG_RUN accepts in live-frame mode: one page less the XDP
	// headroom and the skb_shared_info tailroom the kernel reserves.
	MaxLiveFrameSize = 4096 - 256 - 320
)

// udpFlow is everything that goes into a UDP frame template.
type udpFlow struct {
	SrcMAC, DstMAC   net.HardwareAddr
	SrcAddr, DstAddr netip.Addr
	SrcPort, DstPort uint16
	VLAN             uint16 // 0: untagged
	FrameSize        int
	// Stamp, when set, starts the payload: magic, generator and sender as given, the per-frame fields zero
	// (what the send program's checksum arithmetic starts from).
	Stamp *Stamp
}

// udpTemplate is a ready-to-send frame and what the BPF program needs to rewrite its ports.
type udpTemplate struct {
	Frame     []byte
	UDPOffset int
	// UDPCheck is the checksum field exactly as it sits in Frame (network byte order, read big-endian).
	UDPCheck uint16
}

// headerLen is the length of every header in front of the UDP payload.
func headerLen(v6 bool, vlan uint16) int {
	n := ethernetHeaderLen + udpHeaderLen
	if vlan != 0 {
		n += vlanTagLen
	}
	if v6 {
		return n + ipv6HeaderLen
	}
	return n + ipv4HeaderLen
}

// minFrameSize is the smallest frame that holds the headers of a flow.
func minFrameSize(v6 bool, vlan uint16) int {
	return max(MinFrameSize, headerLen(v6, vlan))
}

// buildUDPTemplate serialises one frame with valid IP and UDP checksums and a payload that fills it to FrameSize.
func buildUDPTemplate(f udpFlow) (udpTemplate, error) {
	v6 := f.DstAddr.Is6()
	hdr := headerLen(v6, f.VLAN)
	if f.FrameSize < minFrameSize(v6, f.VLAN) {
		return udpTemplate{}, fmt.Errorf("frame size %d is below the minimum %d", f.FrameSize, minFrameSize(v6, f.VLAN))
	}

	eth := &layers.Ethernet{SrcMAC: f.SrcMAC, DstMAC: f.DstMAC}
	stack := []gopacket.SerializableLayer{eth}
	l3Type := layers.EthernetTypeIPv4
	if v6 {
		l3Type = layers.EthernetTypeIPv6
	}
	if f.VLAN != 0 {
		eth.EthernetType = layers.EthernetTypeDot1Q
		stack = append(stack, &layers.Dot1Q{VLANIdentifier: f.VLAN, Type: l3Type})
	} else {
		eth.EthernetType = l3Type
	}

	udp := &layers.UDP{SrcPort: layers.UDPPort(f.SrcPort), DstPort: layers.UDPPort(f.DstPort)}
	if v6 {
		ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolUDP,
			SrcIP: f.SrcAddr.AsSlice(), DstIP: f.DstAddr.AsSlice()}
		if err := udp.SetNetworkLayerForChecksum(ip); err != nil {
			return udpTemplate{}, err
		}
		stack = append(stack, ip)
	} else {
		ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Flags: layers.IPv4DontFragment, Protocol: layers.IPProtocolUDP,
			SrcIP: f.SrcAddr.AsSlice(), DstIP: f.DstAddr.AsSlice()}
		if err := udp.SetNetworkLayerForChecksum(ip); err != nil {
			return udpTemplate{}, err
		}
		stack = append(stack, ip)
	}
	body := payload(f.FrameSize - hdr)
	if f.Stamp != nil {
		if len(body) < StampLen {
			return udpTemplate{}, fmt.Errorf("frame size %d leaves no room for the %d-byte stamp", f.FrameSize, StampLen)
		}
		templateStamp(body, *f.Stamp)
	}
	stack = append(stack, udp, gopacket.Payload(body))

	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(buf, opts, stack...); err != nil {
		return udpTemplate{}, fmt.Errorf("serialise udp template: %w", err)
	}
	frame := buf.Bytes()
	off := hdr - udpHeaderLen
	return udpTemplate{
		Frame:     frame,
		UDPOffset: off,
		UDPCheck:  uint16(frame[off+6])<<8 | uint16(frame[off+7]),
	}, nil
}

// templateStamp writes a template's stamp (struct stamp) over the start of payload: the fixed fields, and zero
// for flags, stream, sequence number and timestamp, which the send program writes on each frame.
func templateStamp(payload []byte, s Stamp) {
	clear(payload[:StampLen])
	binary.BigEndian.PutUint16(payload[0:], bpf.StampMagic)
	binary.BigEndian.PutUint32(payload[4:], s.Generator)
	binary.BigEndian.PutUint32(payload[8:], s.Sender)
}

// payload is a recognisable, position-dependent byte pattern, so a corrupted or misaligned frame shows.
func payload(n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i)
	}
	return p
}
