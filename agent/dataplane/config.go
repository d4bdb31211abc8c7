// Package dataplane generates packets with XDP live frames: it builds the frame template, loads and attaches
// the BPF programs, runs one pinned BPF_PROG_RUN worker per CPU, and reads the counters the programs keep.
// It imports no Kubernetes package: the standalone CLI and the node agent share it.
package dataplane

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"time"

	"github.com/xdpgen/xdpgen/bpf"
)

// UDPConfig describes one UDP run. Zero values mean "work it out": the source MAC and address come from the
// interface and the route, the destination MAC from the neighbour table.
type UDPConfig struct {
	// Interface is the egress interface. Empty: the interface of the route to DstAddr.
	Interface string

	// DstMAC is the next hop's MAC (of every destination, with DstAddrs).
	DstMAC, SrcMAC   net.HardwareAddr
	DstAddr, SrcAddr netip.Addr
	// DstAddrs are several destinations, of one IP family, all reached through one interface: each thread
	// sends its frames to them in turn. Give DstAddr or DstAddrs (at most MaxDestinations), not both.
	DstAddrs []netip.Addr
	// DstRange, when set, takes each frame's destination address from a range instead of DstAddr: every address
	// goes to the next hop of the range's first (its MAC, through its interface). Not with Stamp: receivers
	// account per destination address.
	DstRange *AddrRange
	// SrcRange, when set, takes each frame's source address from a range instead of SrcAddr.
	SrcRange *AddrRange
	// Stamp, when set, writes a stamp after the UDP header of every frame, for receivers to account for
	// (AttachReceiver). It takes StampLen bytes of the payload.
	Stamp *Stamp
	// Ports are ranges: Port, Port+1, ..., Port+PortCount-1. Port 0 means 9 (discard), a count of 0 means 1.
	DstPort, DstPortCount uint16
	SrcPort, SrcPortCount uint16
	// VLAN is the 802.1Q VLAN ID to tag frames with; 0 sends them untagged.
	VLAN uint16
	// FrameSize is the Ethernet frame length without FCS. 0: 64 bytes, or the smallest frame the headers fit;
	// with Sizes, the largest of them.
	FrameSize int
	// Sizes, when set, varies the frame size from frame to frame (a range or a weighted mix) instead of
	// FrameSize. A rate in bits per second is paced by the mean size.
	Sizes *FrameSizes

	// Threads is the number of workers, each pinned to its own CPU. 0 means 1, or len(CPUs).
	Threads int
	// CPUs are the CPUs the workers are pinned to, one each. Empty: the first Threads CPUs this process may run on.
	CPUs []int
	// Packets stops the run after this many frames in total; 0: no limit.
	Packets uint64
	// Duration stops the run after this long; 0: no limit.
	Duration time.Duration
	// RatePPS, RateBPS, RateL1BPS or RateLinePercent caps the whole run's rate; give at most one (none: as fast
	// as the machine goes). RatePPS counts frames per second; RateBPS the frames' bits (layer 2, without FCS);
	// RateL1BPS the bits on the wire (layer 1: each frame with its FCS, preamble, SFD and inter-frame gap,
	// L1Overhead bytes more); RateLinePercent is a percentage of the egress interface's link speed, at layer 1.
	// A rate in bits is paced by the mean frame size (Sizes).
	RatePPS, RateBPS, RateL1BPS uint64
	RateLinePercent             float64
	// Inject, when set, sends nothing: each frame goes up Interface's own receive path instead (XDP_PASS of a
	// live frame), as if it had arrived there, so that the host's own stack (netfilter, routing, NAT, sockets, a
	// CNI's programs at tc) is loaded without a second host. Frames are addressed to the interface's MAC unless
	// DstMAC says otherwise; DstAddr is where they go (a local address, or one the host routes or translates);
	// SrcAddr (or SrcRange), required, is a peer the host accepts frames from, not one of its own addresses. Not
	// with Stamp: receivers count at an interface's XDP hook, which injected frames do not pass.
	Inject bool
	// Burst, with a rate, sends this many frames back to back each time the pacing lets one through, and waits
	// as many frames' intervals: each thread's average rate stays its share of the rate. 0 or 1: no bursts.
	Burst int
}

// MaxDestinations is the most destinations one UDP run sends to.
const MaxDestinations = bpf.UDPMaxDests

// StampLen is the length of the stamp in a stamped frame's payload.
const StampLen = bpf.StampLen

// Stamp identifies a run's frames to its receivers. The ids are the caller's to pick: receivers account per
// (Generator, Sender, thread, destination), and a sender's latency histograms are per (Generator, destination).
type Stamp struct {
	// Generator identifies the run; Sender the sending host.
	Generator, Sender uint32
	// ReflectEvery asks receivers to send back one frame in this many to each destination, for this host's
	// Receiver on the egress interface to time (Receiver.Latency); 0: none.
	ReflectEvery uint32
	// Continue makes the streams carry on from an earlier run of the same generator and sender (one stopped
	// mid-run, by an agent's restart): Continue[stream][i] is what that run's stream (thread) sent to DstAddrs[i]
	// (PinnedStreams), and this run's stream numbers its frames from there, so that receivers account one stream
	// each, with neither duplicates nor a gap. nil: every stream starts at 0.
	Continue [][]uint64
}

// ParseAddr reads an IP address for field f; an empty string is the zero Addr ("work it out").
func ParseAddr(f Field, s string) (netip.Addr, error) {
	if s == "" {
		return netip.Addr{}, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, fieldError(f, s, "not an IP address: give an IPv4 or IPv6 address such as 192.0.2.1 or 2001:db8::1")
	}
	return a.Unmap(), nil
}

// ParseMAC reads an Ethernet MAC for field f; an empty string is nil ("work it out").
func ParseMAC(f Field, s string) (net.HardwareAddr, error) {
	if s == "" {
		return nil, nil
	}
	m, err := net.ParseMAC(s)
	if err != nil || len(m) != 6 {
		return nil, fieldError(f, s, "not an Ethernet MAC: give six bytes such as 02:00:00:00:00:01")
	}
	return m, nil
}

// defaultPort is the discard service: what a receiver ignores by convention.
const defaultPort = 9

// defaultFrameSize is what xdp-trafficgen and most RFC 2544 runs start with.
const defaultFrameSize = 64

// withDefaults returns c with zero values that have a static default filled in.
func (c UDPConfig) withDefaults() UDPConfig {
	if c.DstPort == 0 {
		c.DstPort = defaultPort
	}
	if c.SrcPort == 0 {
		c.SrcPort = defaultPort
	}
	if c.DstPortCount == 0 {
		c.DstPortCount = 1
	}
	if c.SrcPortCount == 0 {
		c.SrcPortCount = 1
	}
	if c.Threads == 0 {
		c.Threads = max(1, len(c.CPUs))
	}
	if c.DstRange != nil {
		c.DstAddr = c.DstRange.First
	}
	if c.SrcRange != nil {
		c.SrcAddr = c.SrcRange.First
	}
	if len(c.DstAddrs) == 0 && c.DstAddr.IsValid() {
		c.DstAddrs = []netip.Addr{c.DstAddr}
	}
	if c.Sizes != nil {
		c.FrameSize = c.Sizes.largest()
	}
	if c.FrameSize == 0 {
		c.FrameSize = max(defaultFrameSize, c.minFrameSize())
	}
	return c
}

// smallestFrame is the size of c's smallest frame.
func (c UDPConfig) smallestFrame() int {
	if c.Sizes != nil {
		return c.Sizes.smallest()
	}
	return c.FrameSize
}

// meanFrame is the mean size of c's frames.
func (c UDPConfig) meanFrame() float64 {
	if c.Sizes != nil {
		return c.Sizes.mean()
	}
	return float64(c.FrameSize)
}

// minFrameSize is the smallest frame that holds c's headers and, when stamped, the stamp.
func (c UDPConfig) minFrameSize() int {
	return udpMinFrameSize(c.family6(), c.VLAN, c.Stamp != nil)
}

// udpMinFrameSize is the smallest UDP frame of a family and VLAN tag, with room for the stamp when stamped.
func udpMinFrameSize(v6 bool, vlan uint16, stamped bool) int {
	if stamped {
		return max(minFrameSize(v6, vlan), headerLen(v6, vlan)+StampLen)
	}
	return minFrameSize(v6, vlan)
}

// family6 reports whether c sends IPv6 (as its first destination says).
func (c UDPConfig) family6() bool {
	if len(c.DstAddrs) > 0 {
		return c.DstAddrs[0].Is6()
	}
	return c.DstAddr.Is6()
}

// validated is c with its defaults filled in, or what is wrong with it as far as can be told without looking at
// the machine: addresses, ranges, sizes, rates. NewUDPGenerator calls it, the one place a UDPConfig is checked;
// what depends on the host (interface, MTU, CPUs, MACs) is checked when it resolves the target.
func (c UDPConfig) validated() (UDPConfig, error) {
	if c.DstAddr.IsValid() && len(c.DstAddrs) > 0 {
		return c, fieldError(FieldDstAddr, c.DstAddr, "give one destination address or a list of them, not both")
	}
	if c.Sizes != nil && c.FrameSize != 0 {
		return c, fieldError(FieldSizes, c.Sizes, "give one frame size or sizes that vary, not both")
	}
	if c.Inject {
		switch {
		case c.Interface == "":
			return c, fieldError(FieldInterface, nil, "injection needs the interface whose receive path takes the frames: name it")
		case !c.SrcAddr.IsValid() && c.SrcRange == nil:
			return c, fieldError(FieldSrcAddr, nil, "injected frames need a source address the host accepts frames from (a peer, not one of its own): give one")
		case c.Stamp != nil:
			return c, fieldError(FieldInterface, c.Interface, "injected frames go up the stack without passing the interface's XDP hook, where receivers count stamps: send unstamped")
		}
	}
	if r := c.DstRange; r != nil {
		switch {
		case c.DstAddr.IsValid() || len(c.DstAddrs) > 0:
			return c, fieldError(FieldDstRange, r, "give a destination address or a range of them, not both")
		case c.Stamp != nil:
			return c, fieldError(FieldDstRange, r, "stamped frames are accounted per destination address: vary the source address or the ports instead, or send unstamped")
		}
		if errs := r.errors(FieldDstRange, netip.Addr{}); errs != nil {
			return c, errors.Join(errs...)
		}
	}
	if r := c.SrcRange; r != nil {
		if c.SrcAddr.IsValid() {
			return c, fieldError(FieldSrcRange, r, "give a source address or a range of them, not both")
		}
		var like netip.Addr
		if c.DstRange != nil {
			like = c.DstRange.First
		} else if len(c.DstAddrs) > 0 {
			like = c.DstAddrs[0]
		} else {
			like = c.DstAddr
		}
		if errs := r.errors(FieldSrcRange, like); errs != nil {
			return c, errors.Join(errs...)
		}
	}
	c = c.withDefaults()
	errs := c.destinationErrors()
	errs = append(errs, macErrors(c.DstMAC, c.SrcMAC)...)
	for _, p := range []struct {
		field       Field
		port, count uint16
	}{{FieldDstPort, c.DstPort, c.DstPortCount}, {FieldSrcPort, c.SrcPort, c.SrcPortCount}} {
		if last := int(p.port) + int(p.count) - 1; last > 65535 {
			errs = append(errs, fieldError(p.field, fmt.Sprintf("%d+%d", p.port, p.count),
				"the range ends at port %d, past 65535: lower the port to at most %d or the count to at most %d",
				last, 65536-int(p.count), 65536-int(p.port)))
		}
	}
	if c.VLAN > 4094 {
		errs = append(errs, fieldError(FieldVLAN, c.VLAN, "VLAN IDs go from 1 to 4094 (0 sends untagged frames)"))
	}
	if c.Sizes != nil {
		what := "frame"
		if len(c.DstAddrs) > 0 {
			what = stampNote(c.Stamp) + family(c.DstAddrs[0]) + vlanNote(c.VLAN)
		}
		errs = append(errs, c.Sizes.errors(c.minFrameSize(), what)...)
	} else if len(c.DstAddrs) > 0 {
		if lo := c.minFrameSize(); c.FrameSize < lo {
			errs = append(errs, fieldError(FieldFrameSize, c.FrameSize, "below the smallest %s%s%s frame: use at least %d bytes",
				stampNote(c.Stamp), family(c.DstAddrs[0]), vlanNote(c.VLAN), lo))
		}
	}
	if c.Sizes == nil && c.FrameSize > MaxLiveFrameSize {
		errs = append(errs, fieldError(FieldFrameSize, c.FrameSize, "live frames hold at most %d bytes (one page): use a smaller size",
			MaxLiveFrameSize))
	}
	errs = append(errs, threadErrors(c.Threads, c.CPUs)...)
	rates := 0
	for _, set := range []bool{c.RatePPS != 0, c.RateBPS != 0, c.RateL1BPS != 0, c.RateLinePercent != 0} {
		if set {
			rates++
		}
	}
	if rates > 1 {
		errs = append(errs, fieldError(FieldRate, nil, "give one rate: in packets/s, in bits/s (layer 2 or layer 1) or in percent of the line rate"))
	}
	mean := c.meanFrame()
	if c.RateBPS != 0 && float64(c.RateBPS) < mean*8 {
		errs = append(errs, fieldError(FieldRate, fmt.Sprintf("%d bit/s", c.RateBPS), "below one %.0f-byte frame per second: use at least %.0f bit/s",
			mean, math.Ceil(mean*8)))
	}
	if l1 := (mean + L1Overhead) * 8; c.RateL1BPS != 0 && float64(c.RateL1BPS) < l1 {
		errs = append(errs, fieldError(FieldRate, fmt.Sprintf("%d bit/s", c.RateL1BPS), "below one %.0f-byte frame (%.0f bytes on the wire) per second: use at least %.0f bit/s",
			mean, mean+L1Overhead, math.Ceil(l1)))
	}
	if c.Burst < 0 || c.Burst > MaxBurst {
		errs = append(errs, fieldError(FieldBurst, c.Burst, "use 1 to %d frames per burst", MaxBurst))
	} else if c.Burst > 1 && !c.paced() {
		errs = append(errs, fieldError(FieldBurst, c.Burst, "bursts are spaced to keep a rate: give a rate too"))
	}
	if p := c.RateLinePercent; p < 0 || p > 100 || math.IsNaN(p) {
		errs = append(errs, fieldError(FieldRate, fmt.Sprintf("%g%%", p), "a percentage of the line rate is above 0 and at most 100"))
	}
	return c, errors.Join(errs...)
}

// destinationErrors checks the destinations: at least one, at most MaxDestinations, each once, of one family
// (the source's too).
func (c UDPConfig) destinationErrors() []error {
	if len(c.DstAddrs) == 0 {
		return addrErrors(netip.Addr{}, c.SrcAddr, "the IPv4 or IPv6 address to send to")
	}
	if len(c.DstAddrs) > MaxDestinations {
		return []error{fieldError(FieldDstAddr, fmt.Sprintf("%d addresses", len(c.DstAddrs)), "at most %d destinations: split them over several runs", MaxDestinations)}
	}
	var errs []error
	if c.Stamp != nil {
		for stream, sent := range c.Stamp.Continue {
			if len(sent) > len(c.DstAddrs) {
				errs = append(errs, fieldError(FieldDstAddr, fmt.Sprintf("%d addresses", len(c.DstAddrs)),
					"the run continued (Stamp.Continue) sent stream %d to %d destinations: continue it to the same destinations", stream, len(sent)))
			}
		}
	}
	seen := map[netip.Addr]bool{}
	for _, d := range c.DstAddrs {
		errs = append(errs, addrErrors(d, c.SrcAddr, "the IPv4 or IPv6 address to send to")...)
		if d.IsValid() && d.Is6() != c.DstAddrs[0].Is6() {
			errs = append(errs, fieldError(FieldDstAddr, d, "is %s but %s is %s: send to one IP family per run", family(d), c.DstAddrs[0], family(c.DstAddrs[0])))
		}
		if seen[d] {
			errs = append(errs, fieldError(FieldDstAddr, d, "given twice: give each destination once"))
		}
		seen[d] = true
	}
	return errs
}

// targetSpec is what resolveTarget needs of c to reach its first destination.
func (c UDPConfig) targetSpec() targetSpec {
	return targetSpec{Inject: c.Inject, Interface: c.Interface, DstMAC: c.DstMAC, SrcMAC: c.SrcMAC, DstAddr: c.DstAddrs[0], SrcAddr: c.SrcAddr,
		VLAN: c.VLAN, FrameSize: c.FrameSize, Threads: c.Threads, CPUs: c.CPUs}
}

// MaxBurst bounds UDPConfig.Burst.
const MaxBurst = 1 << 20

// L1Overhead is what a frame takes on the wire beyond FrameSize: preamble and SFD (8 bytes), FCS (4) and the
// inter-frame gap (12). So 60-byte frames (64 with FCS) at 10 Gbit/s layer 1 are 14.88 Mpps.
const L1Overhead = 24

// ratePPS is the whole run's target rate in frames per second; 0 is unlimited. linkBPS is the egress link's speed
// in bits per second, for RateLinePercent. A rate in bits per second is paced by the mean frame size: exact over
// each cycle of a mix or of stepped sizes, on average for random ones.
func (c UDPConfig) ratePPS(linkBPS float64) float64 {
	switch {
	case c.RateBPS != 0:
		return float64(c.RateBPS) / (c.meanFrame() * 8)
	case c.RateL1BPS != 0:
		return float64(c.RateL1BPS) / ((c.meanFrame() + L1Overhead) * 8)
	case c.RateLinePercent != 0:
		return linkBPS * c.RateLinePercent / 100 / ((c.meanFrame() + L1Overhead) * 8)
	}
	return float64(c.RatePPS)
}

// paced reports whether c caps its rate.
func (c UDPConfig) paced() bool {
	return c.RatePPS != 0 || c.RateBPS != 0 || c.RateL1BPS != 0 || c.RateLinePercent != 0
}

// TCPConfig describes a TCP run: Flows connections to one server, each a real TCP connection whose data
// segments are live frames. Zero values mean "work it out", as in UDPConfig.
type TCPConfig struct {
	// Interface is the egress interface. Empty: the interface of the route to DstAddr.
	Interface string
	DstAddr   netip.Addr
	SrcAddr   netip.Addr
	// DstPort is where the server listens. Required.
	DstPort uint16
	// FrameSize is the Ethernet frame length of a full segment. 0: as large as the connection's MSS allows (at
	// most MaxLiveFrameSize).
	FrameSize int

	// Flows is the number of connections, spread over the workers. 0: one per thread.
	Flows int
	// Threads is the number of workers, each pinned to its own CPU. 0 means 1, or len(CPUs).
	Threads int
	// CPUs are the CPUs the workers are pinned to, one each. Empty: the first Threads CPUs this process may run on.
	CPUs []int
	// Segments stops new data after this many data segments in total, split over the flows; the run ends when
	// the peer has acknowledged them all. 0: no limit.
	Segments uint64
	// Duration stops new data after this long; the run ends when what is in flight is acknowledged.
	Duration time.Duration
	// ConnectTimeout bounds each handshake. 0: 3s.
	ConnectTimeout time.Duration
	// StallTimeout fails the run when a flow with data to send gets no acknowledgement for this long. 0: 10s.
	StallTimeout time.Duration
	// BeforeConnect, when set, is called once the configuration is checked and before the first connection, with
	// the number of connections about to be made and a dial that reaches the server the way they will. The bytes
	// it returns are what every connection sends first, through the kernel: the server has acknowledged them
	// before the takeover, and the stream offsets and byte counters start after them. (An iperf3 client makes its
	// control connection here and returns the cookie the data streams start with.)
	BeforeConnect func(ctx context.Context, dial func(context.Context) (net.Conn, error), flows int) (greeting []byte, err error)
}

const (
	defaultConnectTimeout = 3 * time.Second
	defaultStallTimeout   = 10 * time.Second
)

func (c TCPConfig) withDefaults() TCPConfig {
	if c.Threads == 0 {
		c.Threads = max(1, len(c.CPUs))
	}
	if c.Flows == 0 {
		c.Flows = c.Threads
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = defaultConnectTimeout
	}
	if c.StallTimeout == 0 {
		c.StallTimeout = defaultStallTimeout
	}
	return c
}

// targetSpec is what resolveTarget needs of c. A segment's frame size is settled by the connections' MSS, once
// they are made: until then the smallest frame stands in for it.
func (c TCPConfig) targetSpec() targetSpec {
	size := c.FrameSize
	if size == 0 {
		size = minFrameSize(c.DstAddr.Is6(), 0)
	}
	return targetSpec{Interface: c.Interface, DstAddr: c.DstAddr, SrcAddr: c.SrcAddr, FrameSize: size, Threads: c.Threads, CPUs: c.CPUs}
}

// validated is c with its defaults filled in, or what is wrong with it as far as can be told without looking at
// the machine. NewTCPGenerator calls it, the one place a TCPConfig is checked.
func (c TCPConfig) validated() (TCPConfig, error) {
	c = c.withDefaults()
	errs := addrErrors(c.DstAddr, c.SrcAddr, "the IPv4 or IPv6 address of the TCP server")
	if c.DstPort == 0 {
		errs = append(errs, fieldError(FieldDstPort, nil, "required: the port the TCP server listens on"))
	}
	errs = append(errs, threadErrors(c.Threads, c.CPUs)...)
	switch {
	case c.Flows < 1 || c.Flows > bpf.TCPMaxFlows:
		errs = append(errs, fieldError(FieldFlows, c.Flows, "use 1 to %d connections", bpf.TCPMaxFlows))
	case c.Flows < c.Threads:
		errs = append(errs, fieldError(FieldFlows, c.Flows, "fewer connections than threads (%d) would leave a thread idle: use at least %d flows, or fewer threads",
			c.Threads, c.Threads))
	}
	if c.FrameSize != 0 && c.DstAddr.IsValid() {
		if lo := tcpHeadersLen(c.DstAddr.Is6(), true) + TCPOffsetLen; c.FrameSize < lo {
			errs = append(errs, fieldError(FieldFrameSize, c.FrameSize, "too small for an %s segment with timestamps and its %d-byte stream offset: use at least %d bytes",
				family(c.DstAddr), TCPOffsetLen, lo))
		}
		if c.FrameSize > MaxLiveFrameSize {
			errs = append(errs, fieldError(FieldFrameSize, c.FrameSize, "live frames hold at most %d bytes (one page): use a smaller size", MaxLiveFrameSize))
		}
	}
	if c.ConnectTimeout < 0 {
		errs = append(errs, fieldError(FieldConnectTimeout, c.ConnectTimeout, "must be positive"))
	}
	return c, errors.Join(errs...)
}

// addrErrors checks a run's addresses: dst (what, required) and src (optional) of one IP family.
func addrErrors(dst, src netip.Addr, what string) []error {
	var errs []error
	if !dst.IsValid() {
		errs = append(errs, fieldError(FieldDstAddr, nil, "required: %s", what))
	} else if dst.Zone() != "" {
		errs = append(errs, fieldError(FieldDstAddr, dst, "zoned addresses are not supported: give the interface separately"))
	}
	if src.IsValid() && dst.IsValid() && src.Is4() != dst.Is4() {
		errs = append(errs, fieldError(FieldSrcAddr, src, "is %s but the destination %s is %s: use the same IP family for both",
			family(src), dst, family(dst)))
	}
	return errs
}

// threadErrors checks a run's thread count and, when given, the CPUs its threads are pinned to: one each.
func threadErrors(threads int, cpus []int) []error {
	if threads < 1 {
		return []error{fieldError(FieldThreads, threads, "use at least 1 thread")}
	}
	if len(cpus) == 0 {
		return nil
	}
	if len(cpus) != threads {
		return []error{fieldError(FieldThreads, threads, "%d CPUs were given for the threads: give one CPU per thread", len(cpus))}
	}
	seen := map[int]bool{}
	for _, cpu := range cpus {
		if cpu < 0 || seen[cpu] {
			return []error{fieldError(FieldThreads, cpus, "CPU %d is given twice or is not a CPU: give each thread a CPU of its own", cpu)}
		}
		seen[cpu] = true
	}
	return nil
}

func family(a netip.Addr) string {
	if a.Is4() {
		return "IPv4"
	}
	return "IPv6"
}

func stampNote(s *Stamp) string {
	if s == nil {
		return ""
	}
	return "stamped "
}

func vlanNote(vlan uint16) string {
	if vlan == 0 {
		return ""
	}
	return " VLAN-tagged"
}
