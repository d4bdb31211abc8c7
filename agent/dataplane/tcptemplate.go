package dataplane

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

const (
	tcpHeaderLen = 20
	// tsOptionLen is NOP, NOP, TS(10): the layout RFC 7323 appendix A recommends and Linux sends.
	tsOptionLen = 12
	// TCPOffsetLen is the stream offset each segment's payload starts with, big-endian.
	TCPOffsetLen = 8
)

// tcpFrame is everything that goes into a TCP segment template.
type tcpFrame struct {
	SrcMAC, DstMAC   net.HardwareAddr
	SrcAddr, DstAddr netip.Addr
	DstPort          uint16
	// Window is the window field we advertise (already scaled down).
	Window     uint16
	Timestamps bool
	Payload    int
}

// tcpTemplate is a data segment with every per-segment field zero: source port, sequence and acknowledgement
// numbers, TSval and TSecr, and the stream offset at the start of the payload. The send program stamps them
// and adds them to TCPCheck.
type tcpTemplate struct {
	Frame     []byte
	TCPOffset int
	// TCPCheck is the template's checksum, read big-endian.
	TCPCheck uint16
}

// tcpHeadersLen is the length of every header in front of a segment's payload.
func tcpHeadersLen(v6, timestamps bool) int {
	n := ethernetHeaderLen + tcpHeaderLen
	if timestamps {
		n += tsOptionLen
	}
	if v6 {
		return n + ipv6HeaderLen
	}
	return n + ipv4HeaderLen
}

func buildTCPTemplate(f tcpFrame) (tcpTemplate, error) {
	if f.Payload < TCPOffsetLen {
		return tcpTemplate{}, fmt.Errorf("a segment needs at least %d payload bytes, not %d", TCPOffsetLen, f.Payload)
	}
	v6 := f.DstAddr.Is6()
	eth := &layers.Ethernet{SrcMAC: f.SrcMAC, DstMAC: f.DstMAC, EthernetType: layers.EthernetTypeIPv4}
	tcp := &layers.TCP{DstPort: layers.TCPPort(f.DstPort), ACK: true, Window: f.Window}
	if f.Timestamps {
		tcp.Options = []layers.TCPOption{
			{OptionType: layers.TCPOptionKindNop},
			{OptionType: layers.TCPOptionKindNop},
			{OptionType: layers.TCPOptionKindTimestamps, OptionLength: 10, OptionData: make([]byte, 8)},
		}
	}
	var ip gopacket.SerializableLayer
	if v6 {
		eth.EthernetType = layers.EthernetTypeIPv6
		ip6 := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolTCP, SrcIP: f.SrcAddr.AsSlice(), DstIP: f.DstAddr.AsSlice()}
		if err := tcp.SetNetworkLayerForChecksum(ip6); err != nil {
			return tcpTemplate{}, err
		}
		ip = ip6
	} else {
		ip4 := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Flags: layers.IPv4DontFragment, Protocol: layers.IPProtocolTCP,
			SrcIP: f.SrcAddr.AsSlice(), DstIP: f.DstAddr.AsSlice()}
		if err := tcp.SetNetworkLayerForChecksum(ip4); err != nil {
			return tcpTemplate{}, err
		}
		ip = ip4
	}
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(buf, opts, eth, ip, tcp, gopacket.Payload(tcpPayloadTemplate(f.Payload))); err != nil {
		return tcpTemplate{}, fmt.Errorf("serialise tcp template: %w", err)
	}
	frame := buf.Bytes()
	off := ethernetHeaderLen + ipv4HeaderLen
	if v6 {
		off = ethernetHeaderLen + ipv6HeaderLen
	}
	if want := tcpHeadersLen(v6, f.Timestamps) + f.Payload; len(frame) != want {
		return tcpTemplate{}, fmt.Errorf("tcp template is %d bytes, want %d", len(frame), want)
	}
	return tcpTemplate{Frame: frame, TCPOffset: off, TCPCheck: binary.BigEndian.Uint16(frame[off+16:])}, nil
}

// tcpPayloadTemplate is a segment's payload with a zero stream offset: the offset's 8 bytes, then byte i of
// the segment is byte(i).
func tcpPayloadTemplate(n int) []byte {
	p := payload(n)
	clear(p[:TCPOffsetLen])
	return p
}

// TCPSegmentPayload is what a receiver should read for the segment that starts at stream offset off: off as
// 8 big-endian bytes, then byte i of the segment is byte(i). Every segment of a flow has the same length, so a
// gap, a duplicate or a reordering in the stream shows as a wrong offset.
func TCPSegmentPayload(off uint64, n int) []byte {
	p := tcpPayloadTemplate(n)
	binary.BigEndian.PutUint64(p, off)
	return p
}
