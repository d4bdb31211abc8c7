package dataplane

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"

	"github.com/xdpgen/xdpgen/bpf"
)

// TCPGenerator sends TCP data over real connections as XDP live frames. Make one with NewTCPGenerator (which
// connects), Run it once, and Close it (which closes the connections and detaches the programs).
type TCPGenerator struct {
	cfg      TCPConfig
	target   target
	conns    []*tcpConn
	mss      int
	template tcpTemplate
	objs     *bpf.TCP
	ackLink  link.Link
	// host is the namespace (workers enter it, the connections are handed back to the kernel in it), netlink
	// sockets and egress interface state the generator holds.
	host *sendingHost
	ran  bool
	// workersSched is the workers' threads' time on and waiting for their CPUs, added up once Run returns.
	workersSched atomic.Pointer[SchedTimes]
}

const (
	// tcpInitialWindow is RFC 6928's initial congestion window, in segments.
	tcpInitialWindow = 10
	// tcpMinRTO and tcpMaxRTO bound the retransmission timeout: Linux's floor, and a ceiling that keeps a
	// generator responsive after an outage.
	tcpMinRTO = 200 * time.Millisecond
	tcpMaxRTO = 5 * time.Second
	// tcpMaxCwnd caps the congestion window (segments); the peer's window caps it long before on a LAN.
	tcpMaxCwnd = 1 << 16
)

// NewTCPGenerator connects cfg.Flows times to the server, takes the connections over, loads the programs and
// attaches the one that takes the peer's ACKs to the egress interface. It works in the calling thread's network
// namespace; ctx bounds the connecting.
func NewTCPGenerator(ctx context.Context, cfg TCPConfig) (*TCPGenerator, error) {
	cfg, tgt, err := checkedTarget(cfg)
	if err != nil {
		return nil, err
	}
	if tgt.VLAN != 0 {
		return nil, fieldError(FieldInterface, tgt.Link.Attrs().Name, "is a VLAN device; TCP mode does not send tagged frames yet: use an untagged interface")
	}
	if err := probeLiveFrames(); err != nil {
		return nil, err
	}
	_ = rlimit.RemoveMemlock()

	g := &TCPGenerator{cfg: cfg, target: tgt}
	if g.host, err = openSendingHost(tgt); err != nil {
		return nil, err
	}
	if err := g.connect(ctx); err != nil {
		g.Close()
		return nil, err
	}
	if err := g.load(); err != nil {
		g.Close()
		return nil, err
	}
	return g, nil
}

// load builds the segment template, loads the programs with the flows' state, and attaches the ack program.
func (g *TCPGenerator) load() error {
	first := g.conns[0]
	v6 := g.cfg.DstAddr.Is6()
	headers := tcpHeadersLen(v6, first.timestamps)
	mss, window := math.MaxInt, uint32(math.MaxUint32)
	for _, c := range g.conns {
		mss = min(mss, int(c.mss))
		window = min(window, c.window.RcvWnd>>c.rcvWscale)
	}
	g.mss = min(mss, MaxLiveFrameSize-headers)
	if g.cfg.FrameSize != 0 {
		want := g.cfg.FrameSize - headers
		if want > mss {
			return fieldError(FieldFrameSize, g.cfg.FrameSize, "larger than the connection's MSS (%d bytes) allows: use at most %d bytes", mss, mss+headers)
		}
		g.mss = want
	}
	if g.mss < TCPOffsetLen {
		return fmt.Errorf("the connection's MSS (%d bytes) is too small for segments that carry their %d-byte stream offset", mss, TCPOffsetLen)
	}
	tmpl, err := buildTCPTemplate(tcpFrame{
		SrcMAC: g.target.SrcMAC, DstMAC: g.target.DstMAC,
		SrcAddr: g.target.SrcAddr, DstAddr: g.cfg.DstAddr, DstPort: g.cfg.DstPort,
		Window: uint16(min(window, math.MaxUint16)), Timestamps: first.timestamps, Payload: g.mss,
	})
	if err != nil {
		return err
	}
	g.template = tmpl

	cfg := bpf.TCPConfig{
		Ifindex: uint32(g.target.Ifindex), TcpOffset: uint16(tmpl.TCPOffset), TcpCheck: tmpl.TCPCheck,
		Mss: uint16(g.mss), DstPort: g.cfg.DstPort, RcvWnd: first.window.RcvWnd, MaxCwnd: tcpMaxCwnd,
		MinRto: uint64(tcpMinRTO), MaxRto: uint64(tcpMaxRTO),
	}
	if v6 {
		cfg.Ipv6 = 1
	}
	if first.timestamps {
		cfg.Timestamps = 1
	}
	copy(cfg.SrcAddr[:], g.target.SrcAddr.AsSlice())
	copy(cfg.DstAddr[:], g.cfg.DstAddr.AsSlice())
	if g.objs, err = bpf.LoadTCP(cfg, tmpl.Frame); err != nil {
		return privilegeHint(err)
	}
	now := monotonicNow()
	for i, c := range g.conns {
		if err := g.objs.Flows.Update(uint32(i), c.initialFlow(now), ebpf.UpdateAny); err != nil {
			return fmt.Errorf("initialise flow %d: %w", i, err)
		}
		if err := g.objs.Control.Update(uint32(i), bpf.TCPFlowCtl{End: math.MaxUint64}, ebpf.UpdateAny); err != nil {
			return fmt.Errorf("initialise flow %d: %w", i, err)
		}
		if err := g.objs.Ports.Update(networkOrder(c.local.Port()), uint32(i), ebpf.UpdateAny); err != nil {
			return fmt.Errorf("register flow %d: %w", i, err)
		}
	}

	name := g.target.Link.Attrs().Name
	if g.ackLink, err = link.AttachXDP(link.XDPOptions{Program: g.objs.Ack, Interface: g.target.Ifindex}); err != nil {
		if errors.Is(err, unix.EBUSY) || errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("attach the ACK program to %s: another XDP program is attached there; TCP mode needs its own to take the peer's ACKs: detach the other one (%w)", name, err)
		}
		return privilegeHint(fmt.Errorf("attach the ACK program to %s: %w", name, err))
	}
	// With the ACK program attached, a driver that transmits redirected frames only while an XDP program
	// runs is ready; look at the interface again.
	return g.host.readyEgress(nil)
}

// Interface is the egress interface's name and index.
func (g *TCPGenerator) Interface() (string, int) {
	return g.target.Link.Attrs().Name, g.target.Ifindex
}

// SegmentSize is the payload of every data segment, in bytes.
func (g *TCPGenerator) SegmentSize() int {
	return g.mss
}

// LocalPorts are the flows' local ports, in flow order.
func (g *TCPGenerator) LocalPorts() []uint16 {
	ports := make([]uint16, len(g.conns))
	for i, c := range g.conns {
		ports[i] = c.local.Port()
	}
	return ports
}

// Flow describes what is sent, for a human.
func (g *TCPGenerator) Flow() string {
	c := g.conns[0]
	var opts []string
	if c.timestamps {
		opts = append(opts, "timestamps")
	}
	if c.sack {
		opts = append(opts, "sack")
	}
	opts = append(opts, fmt.Sprintf("wscale %d/%d", c.sndWscale, c.rcvWscale))
	ports := fmt.Sprint(c.local.Port())
	if len(g.conns) > 1 {
		ports = fmt.Sprintf("{%d ports}", len(g.conns))
	}
	return fmt.Sprintf("tcp %s:%s -> %s (%s -> %s), %d flow(s), %d-byte segments in %d-byte frames (%s), %d thread(s)",
		c.local.Addr(), ports, c.remote, g.target.SrcMAC, g.target.DstMAC, len(g.conns), g.mss, len(g.template.Frame),
		strings.Join(opts, ", "), len(g.target.CPUs))
}

// Close closes the connections that are still open (with a FIN: see Run), detaches the ACK program and
// releases everything. Safe to call more than once.
func (g *TCPGenerator) Close() error {
	var errs []error
	if g.host != nil && g.host.ns.IsOpen() {
		errs = append(errs, g.handBackAll())
	} else {
		errs = append(errs, g.closeAllUntouched())
	}
	if g.ackLink != nil {
		errs = append(errs, g.ackLink.Close())
		g.ackLink = nil
	}
	if g.objs != nil {
		errs = append(errs, g.objs.Close())
		g.objs = nil
	}
	errs = append(errs, g.host.close())
	return errors.Join(errs...)
}
