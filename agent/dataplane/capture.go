package dataplane

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/netip"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"github.com/xdpgen/xdpgen/bpf"
)

// Capture is a packet capture's frames, read for replay: Ethernet frames of at most MaxLiveFrameSize bytes, in the
// order and with the times they were captured.
type Capture struct {
	Frames []CapturedFrame
}

// CapturedFrame is one frame of a capture and when it was captured, after the capture's first frame.
type CapturedFrame struct {
	Data []byte
	At   time.Duration
}

// MaxCaptureFrames and MaxCaptureBytes bound a capture a run replays: its frames live in BPF maps (each frame in
// whole chunks of bpf.ReplayChunk bytes), in the kernel's memory for the whole run.
const (
	MaxCaptureFrames = 1 << 16
	MaxCaptureBytes  = 64 << 20
)

// ReadCapture reads a pcap or pcapng stream of Ethernet frames (field names the input in errors). It refuses
// other link types, frames the capture truncated (a snap length below the frame), frames too large for a live
// frame, and captures beyond MaxCaptureFrames or MaxCaptureBytes.
func ReadCapture(f Field, r io.Reader) (*Capture, error) {
	br := bufio.NewReader(r)
	magic, err := br.Peek(4)
	if err != nil {
		return nil, fieldError(f, nil, "not a pcap or pcapng file (%v): give a capture such as tcpdump -w writes", err)
	}
	var src interface {
		ReadPacketData() ([]byte, gopacket.CaptureInfo, error)
		LinkType() layers.LinkType
	}
	if string(magic) == "\x0a\x0d\x0d\x0a" {
		src, err = pcapgo.NewNgReader(br, pcapgo.DefaultNgReaderOptions)
	} else {
		src, err = pcapgo.NewReader(br)
	}
	if err != nil {
		return nil, fieldError(f, nil, "not a pcap or pcapng file (%v): give a capture such as tcpdump -w writes", err)
	}
	if lt := src.LinkType(); lt != layers.LinkTypeEthernet {
		return nil, fieldError(f, nil, "link type %s: replay sends Ethernet frames; capture on an Ethernet interface (not \"any\", whose frames are Linux cooked headers)", lt)
	}
	c := &Capture{}
	var first time.Time
	chunks := 0
	for i := 0; ; i++ {
		data, ci, err := src.ReadPacketData()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fieldError(f, nil, "frame %d: %v: give a whole capture", i+1, err)
		}
		switch {
		case ci.CaptureLength < ci.Length:
			return nil, fieldError(f, nil, "frame %d: the capture kept %d of its %d bytes: capture with a snap length that keeps whole frames (tcpdump -s 0)",
				i+1, ci.CaptureLength, ci.Length)
		case len(data) < ethernetHeaderLen:
			return nil, fieldError(f, nil, "frame %d: %d bytes, shorter than an Ethernet header: remove it (editcap -d or a filter)", i+1, len(data))
		case len(data) > MaxLiveFrameSize:
			return nil, fieldError(f, nil, "frame %d: %d bytes; live frames hold at most %d (one page): leave out larger frames (editcap -s does not fix checksums; filter with tshark \"frame.len <= %d\")",
				i+1, len(data), MaxLiveFrameSize, MaxLiveFrameSize)
		case i >= MaxCaptureFrames:
			return nil, fieldError(f, nil, "more than %d frames: replay at most %d (loops repeat them); cut it with editcap -r FILE OUT 1-%d",
				MaxCaptureFrames, MaxCaptureFrames, MaxCaptureFrames)
		}
		if chunks += (len(data) + bpf.ReplayChunk - 1) / bpf.ReplayChunk; chunks*bpf.ReplayChunk > MaxCaptureBytes {
			return nil, fieldError(f, nil, "frame %d: the frames take more than %d MiB of kernel memory (each in whole %d-byte chunks): cut the capture (editcap -r FILE OUT 1-%d)",
				i+1, MaxCaptureBytes>>20, bpf.ReplayChunk, i)
		}
		if i == 0 {
			first = ci.Timestamp
		}
		at := ci.Timestamp.Sub(first)
		if at < 0 || (i > 0 && at < c.Frames[i-1].At) {
			at = c.Frames[i-1].At // out of order: sent right after the previous frame, in the file's order
		}
		c.Frames = append(c.Frames, CapturedFrame{Data: append([]byte(nil), data...), At: at})
	}
	if len(c.Frames) == 0 {
		return nil, fieldError(f, nil, "the capture holds no frame: give one that does")
	}
	return c, nil
}

// meanFrame is the mean length of the capture's frames.
func (c *Capture) meanFrame() float64 {
	total := 0
	for _, f := range c.Frames {
		total += len(f.Data)
	}
	return float64(total) / float64(len(c.Frames))
}

// loopTime is how long one loop of the capture lasts at its own timing: to the last frame, and the mean gap
// between frames after it. 0 when the capture has no duration.
func (c *Capture) loopTime() time.Duration {
	n := len(c.Frames)
	last := c.Frames[n-1].At
	if n < 2 || last == 0 {
		return 0
	}
	return last + last/time.Duration(n-1)
}

// frameRewrite is what replay changes in every frame: the MACs (nil: as captured), and the addresses of each
// IP family (an invalid Addr: as captured). Every IP frame's checksums are computed anew.
type frameRewrite struct {
	srcMAC, dstMAC net.HardwareAddr
	// src and dst are indexed by family: 0 IPv4, 1 IPv6.
	src, dst [2]netip.Addr
}

// rewriteAddrs sets a family's (0 IPv4, 1 IPv6) source and destination addresses to r's, where r changes them.
func (r frameRewrite) rewriteAddrs(family int, src, dst *net.IP) {
	if a := r.src[family]; a.IsValid() {
		*src = a.AsSlice()
	}
	if a := r.dst[family]; a.IsValid() {
		*dst = a.AsSlice()
	}
}

// rewrite returns frame i with r's changes and correct IPv4, TCP, UDP, ICMP and ICMPv6 checksums; other bytes
// are as captured (an IP frame's Ethernet padding becomes zeros). It refuses an IP fragment or an IPv6 frame
// with extension headers whose addresses change, since its transport checksum cannot be recomputed from it.
func (r frameRewrite) rewrite(f Field, i int, frame []byte) ([]byte, error) {
	var (
		eth    layers.Ethernet
		dot1q  layers.Dot1Q
		ip4    layers.IPv4
		ip6    layers.IPv6
		tcp    layers.TCP
		udp    layers.UDP
		icmp4  layers.ICMPv4
		icmp6  layers.ICMPv6
		parsed []gopacket.LayerType
	)
	parser := gopacket.NewDecodingLayerParser(layers.LayerTypeEthernet, &eth, &dot1q, &ip4, &ip6, &tcp, &udp, &icmp4, &icmp6)
	parser.IgnoreUnsupported = true
	if err := parser.DecodeLayers(frame, &parsed); err != nil {
		return nil, fieldError(f, nil, "frame %d: %v: remove malformed frames from the capture", i+1, err)
	}
	var stack []gopacket.SerializableLayer
	var last gopacket.Layer
	var network gopacket.NetworkLayer
	family, transport := -1, false
	for _, lt := range parsed {
		switch lt {
		case layers.LayerTypeEthernet:
			if r.srcMAC != nil {
				eth.SrcMAC = r.srcMAC
			}
			if r.dstMAC != nil {
				eth.DstMAC = r.dstMAC
			}
			stack, last = append(stack, &eth), &eth
		case layers.LayerTypeDot1Q:
			stack, last = append(stack, &dot1q), &dot1q
		case layers.LayerTypeIPv4:
			family, network = 0, &ip4
			r.rewriteAddrs(family, &ip4.SrcIP, &ip4.DstIP)
			stack, last = append(stack, &ip4), &ip4
		case layers.LayerTypeIPv6:
			family, network = 1, &ip6
			r.rewriteAddrs(family, &ip6.SrcIP, &ip6.DstIP)
			stack, last = append(stack, &ip6), &ip6
		case layers.LayerTypeTCP:
			_ = tcp.SetNetworkLayerForChecksum(network)
			stack, last, transport = append(stack, &tcp), &tcp, true
		case layers.LayerTypeUDP:
			_ = udp.SetNetworkLayerForChecksum(network)
			stack, last, transport = append(stack, &udp), &udp, true
		case layers.LayerTypeICMPv4:
			stack, last, transport = append(stack, &icmp4), &icmp4, true
		case layers.LayerTypeICMPv6:
			_ = icmp6.SetNetworkLayerForChecksum(network)
			stack, last, transport = append(stack, &icmp6), &icmp6, true
		}
	}
	if family < 0 {
		// Not IP: only the MACs change.
		out := append([]byte(nil), frame...)
		if r.dstMAC != nil {
			copy(out[0:6], r.dstMAC)
		}
		if r.srcMAC != nil {
			copy(out[6:12], r.srcMAC)
		}
		return out, nil
	}
	if !transport && (r.src[family].IsValid() || r.dst[family].IsValid()) && pseudoHeaderChecksummed(network) {
		return nil, fieldError(f, nil, "frame %d is an IP fragment or has IPv6 extension headers: its transport checksum cannot be recomputed for new addresses; replay it without rewriting addresses, or leave it out", i+1)
	}
	stack = append(stack, gopacket.Payload(last.LayerPayload()))
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{ComputeChecksums: true}, stack...); err != nil {
		return nil, fieldError(f, nil, "frame %d: %v: remove it from the capture", i+1, err)
	}
	return buf.Bytes(), nil
}

// pseudoHeaderChecksummed reports whether the transport above network (not decoded) checksums the IP addresses.
func pseudoHeaderChecksummed(network gopacket.NetworkLayer) bool {
	switch ip := network.(type) {
	case *layers.IPv4:
		return ip.Protocol == layers.IPProtocolTCP || ip.Protocol == layers.IPProtocolUDP
	case *layers.IPv6:
		return true // extension headers (or a fragment) hide what follows
	}
	return false
}

// rewritesDestination returns an error naming frame i unless r gives it a new destination address.
func (r frameRewrite) rewritesDestination(f Field, i int, frame []byte) error {
	p := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.DecodeOptions{Lazy: true, NoCopy: true})
	kind := "not an IP frame"
	switch p.NetworkLayer().(type) {
	case *layers.IPv4:
		if r.dst[0].IsValid() {
			return nil
		}
		kind = "IPv4, and no IPv4 destination address is given"
	case *layers.IPv6:
		if r.dst[1].IsValid() {
			return nil
		}
		kind = "IPv6, and no IPv6 destination address is given"
	}
	return fieldError(f, nil, "frame %d is %s: every frame must go to the destination address; remove other frames from the capture", i+1, kind)
}
