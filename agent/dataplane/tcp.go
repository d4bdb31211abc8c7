package dataplane

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"strings"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"

	"github.com/xdpgen/xdpgen/agent/dataplane/netnsthread"
	"github.com/xdpgen/xdpgen/bpf"
)

// TCPConfig describes a TCP run: Flows connections to one server, each a real TCP connection whose data
// segments are live frames. Zero values mean "work it out", as in Config.
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
	// Threads is the number of workers, each pinned to its own CPU. 0 means 1.
	Threads int
	// Segments stops new data after this many data segments in total, split over the flows; the run ends when
	// the peer has acknowledged them all. 0: no limit.
	Segments uint64
	// Duration stops new data after this long; the run ends when what is in flight is acknowledged.
	Duration time.Duration
	// ConnectTimeout bounds each handshake. 0: 3s.
	ConnectTimeout time.Duration
	// StallTimeout fails the run when a flow with data to send gets no acknowledgement for this long. 0: 10s.
	StallTimeout time.Duration
}

// Fields only TCPConfig has.
const (
	FieldFlows          Field = "flows"
	FieldConnectTimeout Field = "connect-timeout"
)

const (
	defaultConnectTimeout = 3 * time.Second
	defaultStallTimeout   = 10 * time.Second
	// tcpInitialWindow is RFC 6928's initial congestion window, in segments.
	tcpInitialWindow = 10
	// tcpMinRTO and tcpMaxRTO bound the retransmission timeout: Linux's floor, and a ceiling that keeps a
	// generator responsive after an outage.
	tcpMinRTO = 200 * time.Millisecond
	tcpMaxRTO = 5 * time.Second
	// tcpMaxCwnd caps the congestion window (segments); the peer's window caps it long before on a LAN.
	tcpMaxCwnd = 1 << 16
	// tcpDrainTimeout bounds how long the end of a run waits for what is in flight to be acknowledged.
	tcpDrainTimeout = 2 * time.Second
	// tcpPollInterval is how often the supervisor reads the flows.
	tcpPollInterval = 10 * time.Millisecond
)

// ErrPeerReset is returned (wrapped, with the flow) when the peer resets a connection during a run.
var ErrPeerReset = errors.New("the peer reset the connection")

func (c TCPConfig) withDefaults() TCPConfig {
	if c.Threads == 0 {
		c.Threads = 1
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

// Validate checks what can be checked without looking at the machine.
func (c TCPConfig) Validate() error {
	c = c.withDefaults()
	var errs []error
	if !c.DstAddr.IsValid() {
		errs = append(errs, fieldError(FieldDstAddr, nil, "required: the IPv4 or IPv6 address of the TCP server"))
	} else if c.DstAddr.Zone() != "" {
		errs = append(errs, fieldError(FieldDstAddr, c.DstAddr, "zoned addresses are not supported: give the interface separately"))
	}
	if c.SrcAddr.IsValid() && c.DstAddr.IsValid() && c.SrcAddr.Is4() != c.DstAddr.Is4() {
		errs = append(errs, fieldError(FieldSrcAddr, c.SrcAddr, "is %s but the destination %s is %s: use the same IP family for both",
			family(c.SrcAddr), c.DstAddr, family(c.DstAddr)))
	}
	if c.DstPort == 0 {
		errs = append(errs, fieldError(FieldDstPort, nil, "required: the port the TCP server listens on"))
	}
	if c.Threads < 1 {
		errs = append(errs, fieldError(FieldThreads, c.Threads, "use at least 1 thread"))
	}
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
	return errors.Join(errs...)
}

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
}

// NewTCPGenerator connects cfg.Flows times to the server, takes the connections over, loads the programs and
// attaches the one that takes the peer's ACKs to the egress interface. It works in the calling thread's network
// namespace; ctx bounds the connecting.
func NewTCPGenerator(ctx context.Context, cfg TCPConfig) (*TCPGenerator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	check := Config{Interface: cfg.Interface, DstAddr: cfg.DstAddr, SrcAddr: cfg.SrcAddr, DstPort: cfg.DstPort,
		FrameSize: cfg.FrameSize, Threads: cfg.Threads}
	if check.FrameSize == 0 {
		check.FrameSize = minFrameSize(cfg.DstAddr.Is6(), 0)
	}
	tgt, err := resolveTarget(check)
	if err != nil {
		return nil, err
	}
	if tgt.Flow.VLAN != 0 {
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

// connect makes the connections and takes them over.
func (g *TCPGenerator) connect(ctx context.Context) error {
	dst := netip.AddrPortFrom(g.cfg.DstAddr, g.cfg.DstPort)
	for range g.cfg.Flows {
		c, err := dialTCP(ctx, g.target.Link.Attrs().Name, g.target.Flow.SrcAddr, dst, g.cfg.ConnectTimeout)
		if err != nil {
			return err
		}
		t, err := takeOver(c)
		if err != nil {
			c.Close()
			return fmt.Errorf("take over the connection to %s: %w", dst, err)
		}
		g.conns = append(g.conns, &tcpConn{conn: c, tcpTakeover: t})
	}
	first := g.conns[0]
	for _, c := range g.conns[1:] {
		if c.timestamps != first.timestamps {
			return fmt.Errorf("connections to %s disagree on timestamps: the server's settings changed between handshakes", dst)
		}
	}
	return nil
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
		SrcMAC: g.target.Flow.SrcMAC, DstMAC: g.target.Flow.DstMAC,
		SrcAddr: g.target.Flow.SrcAddr, DstAddr: g.cfg.DstAddr, DstPort: g.cfg.DstPort,
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
	copy(cfg.SrcAddr[:], g.target.Flow.SrcAddr.AsSlice())
	copy(cfg.DstAddr[:], g.cfg.DstAddr.AsSlice())
	if g.objs, err = bpf.LoadTCP(cfg); err != nil {
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
	return g.host.prepareEgress(nil)
}

// initialFlow is the flow's state at takeover: nothing sent, the handshake's window and RTT.
func (c *tcpConn) initialFlow(now uint64) bpf.TCPFlow {
	f := bpf.TCPFlow{
		State: bpf.TCPFlowRunning, Iss: c.sndNxt, RcvNxt: c.rcvNxt, TsOffset: c.tsOffset,
		PeerWnd: c.window.SndWnd, Cwnd: tcpInitialWindow, Ssthresh: math.MaxUint32, Wscale: c.sndWscale,
		Port: networkOrder(c.local.Port()), ProgressAt: now,
		Rto: uint64(min(max(c.rto, tcpMinRTO), tcpMaxRTO)), Srtt: uint64(c.rtt), Rttvar: uint64(c.rttvar),
	}
	return f
}

// networkOrder is v as its bytes sit in a packet, read back in this (little-endian) machine's order.
func networkOrder(v uint16) uint16 {
	return v>>8 | v<<8
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
		c.local.Addr(), ports, c.remote, g.target.Flow.SrcMAC, g.target.Flow.DstMAC, len(g.conns), g.mss, len(g.template.Frame),
		strings.Join(opts, ", "), len(g.target.CPUs))
}

// Stats reads the counters. Safe to call while Run is going.
func (g *TCPGenerator) Stats() (TCPStats, error) {
	flows, err := g.readFlows()
	if err != nil {
		return TCPStats{}, err
	}
	var workers []bpf.TCPWorker
	if err := g.objs.Workers.Lookup(uint32(0), &workers); err != nil {
		return TCPStats{}, fmt.Errorf("read worker counters: %w", err)
	}
	egress, err := g.host.egressSinceStart()
	if err != nil {
		return TCPStats{}, err
	}
	s := TCPStats{At: time.Now(), Egress: egress}
	for i, f := range flows {
		fs := flowStats(f, uint64(g.mss))
		if g.conns[i].done.Load() && fs.State == "running" {
			fs.State = "closed"
		}
		s.Flows = append(s.Flows, fs)
		s.Total = s.Total.add(fs.TCPCounters)
	}
	for _, w := range workers {
		s.Idle += w.Idle
		for a, c := range w.Actions {
			s.Actions[a] = s.Actions[a].add(Counter{Packets: c.Packets, Bytes: c.Bytes})
		}
	}
	return s, nil
}

func (g *TCPGenerator) readFlows() ([]bpf.TCPFlow, error) {
	flows := make([]bpf.TCPFlow, len(g.conns))
	for i := range flows {
		if err := g.objs.Flows.LookupWithFlags(uint32(i), &flows[i], ebpf.LookupLock); err != nil {
			return nil, fmt.Errorf("read flow %d: %w", i, err)
		}
	}
	return flows, nil
}

// Run sends until the segment count is acknowledged, the duration is up, or ctx is cancelled; then it lets
// what is in flight be acknowledged (for at most a couple of seconds), stops the workers, and closes every
// connection with a FIN. It returns ctx's error when ctx ended the run, and an error naming the flow when the
// peer reset a connection or stopped acknowledging. Run may be called once.
func (g *TCPGenerator) Run(ctx context.Context) error {
	if g.ran {
		return errors.New("a TCP generator runs once: make a new one")
	}
	g.ran = true
	if err := g.initRun(); err != nil {
		return err
	}
	r := &tcpRun{g: g, ctx: ctx}
	workers := startWorkers(g.target.CPUs, liveFrameJob{program: g.objs.Send, frame: g.template.Frame, ns: g.host.ns,
		budget: func(int) (uint64, error) { return maxRepeat, nil }})
	err := supervise(ctx, workers, r.poll)
	err = errors.Join(err, r.err, g.handBackAll())
	if err == nil {
		err = ctx.Err()
	}
	return err
}

// initRun spreads the flows over the workers (flow i to worker i mod threads) and sets where each flow's new
// data ends.
func (g *TCPGenerator) initRun() error {
	threads := len(g.target.CPUs)
	workers := make([]bpf.TCPWorker, ebpf.MustPossibleCPU())
	for i, cpu := range g.target.CPUs {
		workers[cpu] = bpf.TCPWorker{First: uint32(i), Stride: uint32(threads), Count: uint32((len(g.conns) - i + threads - 1) / threads)}
	}
	if err := g.objs.Workers.Put(uint32(0), workers); err != nil {
		return fmt.Errorf("set up the workers: %w", err)
	}
	for i := range g.conns {
		if err := g.setControl(i, bpf.TCPFlowCtl{End: g.flowEnd(i)}); err != nil {
			return err
		}
	}
	return nil
}

// flowEnd is the stream offset flow i's new data stops at: its share of the segments.
func (g *TCPGenerator) flowEnd(i int) uint64 {
	n := g.cfg.Segments
	if n == 0 {
		return math.MaxUint64
	}
	share := n / uint64(len(g.conns))
	if uint64(i) < n%uint64(len(g.conns)) {
		share++
	}
	return share * uint64(g.mss)
}

func (g *TCPGenerator) setControl(i int, ctl bpf.TCPFlowCtl) error {
	if err := g.objs.Control.Update(uint32(i), ctl, ebpf.UpdateExist); err != nil {
		return fmt.Errorf("control flow %d: %w", i, err)
	}
	return nil
}

// tcpRun is the supervisor's view of a run: sending, then draining what is in flight, then done.
type tcpRun struct {
	g   *TCPGenerator
	ctx context.Context
	// draining: no new data; the workers run until what is in flight is acknowledged or drainBy passes.
	draining bool
	drainBy  time.Time
	// firstFrame is when the supervisor first saw a segment sent: a duration counts from it.
	firstFrame time.Time
	lastPoll   time.Time
	// err is why the run failed, returned once the connections are closed.
	err error
}

func keepRunning(*liveFrameWorker) bool { return false }

// poll reads the flows every tcpPollInterval and moves the run along.
func (r *tcpRun) poll() (func(*liveFrameWorker) bool, error) {
	now := time.Now()
	if now.Sub(r.lastPoll) < tcpPollInterval && r.ctx.Err() == nil {
		return keepRunning, nil
	}
	r.lastPoll = now
	flows, err := r.g.readFlows()
	if err != nil {
		return nil, err
	}
	if r.draining {
		if now.After(r.drainBy) || drained(flows) {
			return stopEvery, nil
		}
		return keepRunning, nil
	}

	if r.firstFrame.IsZero() {
		for _, f := range flows {
			if f.SegsSent > 0 {
				r.firstFrame = now
			}
		}
	}
	for i, f := range flows {
		if f.State == bpf.TCPFlowReset {
			r.err = fmt.Errorf("flow %d (%s -> %s): %w after %d bytes were acknowledged", i, r.g.conns[i].local, r.g.conns[i].remote,
				ErrPeerReset, f.SndUna)
			return r.drain(now)
		}
		if err := r.g.stalled(i, f); err != nil {
			// The peer is gone or not reading: waiting for what is in flight would only wait longer.
			r.err = err
			return stopEvery, nil
		}
	}
	switch {
	case r.ctx.Err() != nil:
		return r.drain(now)
	case r.g.cfg.Duration > 0 && !r.firstFrame.IsZero() && now.Sub(r.firstFrame) >= r.g.cfg.Duration:
		return r.drain(now)
	case r.g.cfg.Segments > 0 && r.allSent(flows):
		return stopEvery, nil
	}
	return keepRunning, nil
}

// drain stops new data on every flow; the workers keep running to recover losses until all is acknowledged.
func (r *tcpRun) drain(now time.Time) (func(*liveFrameWorker) bool, error) {
	r.draining, r.drainBy = true, now.Add(tcpDrainTimeout)
	for i := range r.g.conns {
		if err := r.g.setControl(i, bpf.TCPFlowCtl{End: r.g.flowEnd(i), Stop: 1}); err != nil {
			return nil, err
		}
	}
	return keepRunning, nil
}

func drained(flows []bpf.TCPFlow) bool {
	for _, f := range flows {
		if f.State == bpf.TCPFlowRunning && f.SndUna < f.SndMax {
			return false
		}
	}
	return true
}

// allSent: every flow's share is acknowledged.
func (r *tcpRun) allSent(flows []bpf.TCPFlow) bool {
	for i, f := range flows {
		if f.State == bpf.TCPFlowRunning && f.SndUna < r.g.flowEnd(i) {
			return false
		}
	}
	return true
}

// stalled says why flow i makes no progress, when it has had data to send and no acknowledgement for the
// stall timeout.
func (g *TCPGenerator) stalled(i int, f bpf.TCPFlow) error {
	if f.State != bpf.TCPFlowRunning || (f.SndUna >= f.SndMax && f.SndUna >= g.flowEnd(i)) {
		return nil
	}
	idle := time.Duration(monotonicNow() - f.ProgressAt)
	if idle < g.cfg.StallTimeout {
		return nil
	}
	c := g.conns[i]
	if f.SndUna >= f.SndMax && f.PeerWnd < uint32(g.mss) {
		return fmt.Errorf("flow %d (%s -> %s): the peer's receive window stayed closed for %s: its application is not reading",
			i, c.local, c.remote, idle.Round(time.Millisecond))
	}
	return fmt.Errorf("flow %d (%s -> %s): the peer acknowledged nothing for %s (%d retransmission timeouts): it is gone or unreachable",
		i, c.local, c.remote, idle.Round(time.Millisecond), f.Timeouts)
}

// handBackAll gives every connection back to the kernel, which closes it (see handBack), in the generator's
// network namespace. A connection the peer reset is closed without a word; one never sent on just closes.
func (g *TCPGenerator) handBackAll() error {
	if g.objs == nil {
		return g.closeAllUntouched()
	}
	return netnsthread.Do(g.host.ns, func() error {
		var errs []error
		for i, c := range g.conns {
			if c.done.Load() {
				continue
			}
			passing := func() error {
				return g.setControl(i, bpf.TCPFlowCtl{End: g.flowEnd(i), Stop: 1, HandedBack: 1})
			}
			var f bpf.TCPFlow
			if err := g.objs.Flows.LookupWithFlags(uint32(i), &f, ebpf.LookupLock); err != nil {
				errs = append(errs, fmt.Errorf("read flow %d: %w", i, err), c.abandon())
				continue
			}
			switch {
			case f.State == bpf.TCPFlowReset:
				errs = append(errs, c.abandon())
			case f.SndMax == 0 && f.RcvNxt == c.rcvNxt:
				errs = append(errs, passing(), c.closeUntouched())
			default:
				final := tcpFinal{
					sndNxt: f.Iss + uint32(f.SndMax), rcvNxt: f.RcvNxt, acked: f.SndUna >= f.SndMax,
					peerWindow: f.PeerWnd, tsval: tcpClockMs() + f.TsOffset + 1,
				}
				errs = append(errs, c.handBack(g.target.Ifindex, final, passing))
			}
		}
		return errors.Join(errs...)
	})
}

// closeAllUntouched closes connections made before the programs were loaded.
func (g *TCPGenerator) closeAllUntouched() error {
	var errs []error
	for _, c := range g.conns {
		errs = append(errs, c.closeUntouched())
	}
	return errors.Join(errs...)
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
