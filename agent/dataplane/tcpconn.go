package dataplane

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/xdpgen/xdpgen/agent/dataplane/netnsthread"
	"github.com/xdpgen/xdpgen/bpf"
)

// A TCP flow's connection lives in three stages. The kernel makes it: a real socket, a real three-way handshake.
// Then xdpgen takes it over: the socket goes into repair mode (TCP_REPAIR, made for checkpoint/restore), which
// lets userspace read the sequence numbers, windows and timestamp clock, and keeps the socket silent, even when
// it is closed; the BPF programs own the sequence space from here. At the end xdpgen hands it back: a fresh
// socket, built in repair mode at the sequence numbers the programs reached, leaves repair mode and closes with
// an ordinary FIN, so the kernel does the closing handshake (retransmitting the FIN, answering the peer's).

// Repair-mode constants absent from x/sys (include/uapi/linux/tcp.h).
const (
	tcpRecvQueue = 1
	tcpSendQueue = 2

	tcpiOptTimestamps = 1
	tcpiOptSACK       = 2
	tcpiOptWscale     = 4
	tcpiOptUsecTS     = 64
)

// tcpRepairWindow is struct tcp_repair_window.
type tcpRepairWindow struct {
	SndWl1, SndWnd, MaxWindow, RcvWnd, RcvWup uint32
}

// tcpTakeover is what a connection's socket said when it was taken over.
type tcpTakeover struct {
	local, remote netip.AddrPort
	// sndNxt is the sequence number of the first byte we send; rcvNxt what we acknowledge.
	sndNxt, rcvNxt uint32
	window         tcpRepairWindow
	// timestamps: negotiated; tsOffset turns the kernel's millisecond clock into this connection's TSval.
	timestamps bool
	tsOffset   uint32
	sack       bool
	// sndWscale scales the windows the peer advertises, rcvWscale ours.
	sndWscale, rcvWscale uint8
	// mss is the payload a segment may carry (the kernel's mss_cache, options already taken off).
	mss uint32
	// rtt and rto as the handshake measured them.
	rtt, rttvar, rto time.Duration
}

// tcpConn is one flow's connection.
type tcpConn struct {
	conn *net.TCPConn
	tcpTakeover
	// done: handed back (or abandoned); the socket is closed.
	done atomic.Bool
}

// dialTCP connects to dst from src through ifname, in the calling thread's network namespace. The errors say
// what happened in a user's words: nothing listening, no answer, no route.
func dialTCP(ctx context.Context, ifname string, src netip.Addr, dst netip.AddrPort, timeout time.Duration) (*net.TCPConn, error) {
	d := net.Dialer{
		Timeout:   timeout,
		LocalAddr: &net.TCPAddr{IP: src.AsSlice()},
		Control: func(_, _ string, c syscall.RawConn) error {
			var err error
			if cerr := c.Control(func(fd uintptr) { err = unix.BindToDevice(int(fd), ifname) }); cerr != nil {
				return cerr
			}
			return err
		},
	}
	c, err := d.DialContext(ctx, "tcp", dst.String())
	if err == nil {
		return c.(*net.TCPConn), nil
	}
	var errno syscall.Errno
	switch {
	case errors.As(err, &errno) && errno == unix.ECONNREFUSED:
		return nil, fieldError(FieldDstPort, dst.Port(), "%s refused the connection (RST): nothing listens on port %d there; start a server, or give the port one listens on",
			dst.Addr(), dst.Port())
	case errors.As(err, &errno) && errno == unix.ETIMEDOUT, isTimeout(err):
		return nil, fieldError(FieldDstAddr, dst, "no answer to the TCP handshake in %s: check that a server listens there and that no firewall drops SYNs (or raise the connect timeout)",
			timeout)
	case errors.As(err, &errno) && (errno == unix.EHOSTUNREACH || errno == unix.ENETUNREACH):
		return nil, fieldError(FieldDstAddr, dst.Addr(), "unreachable from %s (%v)", ifname, errno)
	case errors.Is(err, context.Canceled):
		return nil, err
	}
	return nil, fmt.Errorf("connect to %s: %w", dst, err)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// greet sends b through the kernel and waits until the peer has acknowledged all of it: a taken-over socket
// never retransmits, so whatever it still held unacknowledged would be lost.
func greet(ctx context.Context, c *net.TCPConn, b []byte, timeout time.Duration) error {
	if len(b) == 0 {
		return nil
	}
	if _, err := c.Write(b); err != nil {
		return fmt.Errorf("send its first %d bytes: %w", len(b), err)
	}
	raw, err := c.SyscallConn()
	if err != nil {
		return err
	}
	deadline := time.Now().Add(timeout)
	for {
		var unacked int
		var ierr error
		if err := raw.Control(func(fd uintptr) { unacked, ierr = unix.IoctlGetInt(int(fd), unix.SIOCOUTQ) }); err != nil {
			return err
		}
		switch {
		case ierr != nil:
			return fmt.Errorf("SIOCOUTQ: %w", ierr)
		case unacked == 0:
			return nil
		case time.Now().After(deadline):
			return fmt.Errorf("the server did not acknowledge its first %d bytes in %s", len(b), timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
}

// takeOver puts the connection's socket into repair mode and reads its state. From here the socket neither
// sends nor answers: what the peer sends to it must be taken by the ack program, and closing it is silent.
func takeOver(c *net.TCPConn) (tcpTakeover, error) {
	t := tcpTakeover{
		local:  c.LocalAddr().(*net.TCPAddr).AddrPort(),
		remote: c.RemoteAddr().(*net.TCPAddr).AddrPort(),
	}
	t.local = netip.AddrPortFrom(t.local.Addr().Unmap(), t.local.Port())
	t.remote = netip.AddrPortFrom(t.remote.Addr().Unmap(), t.remote.Port())
	raw, err := c.SyscallConn()
	if err != nil {
		return t, err
	}
	var serr error
	err = raw.Control(func(fdp uintptr) {
		fd := int(fdp)
		info, err := tcpInfo(fd)
		if err != nil {
			serr = fmt.Errorf("TCP_INFO: %w", err)
			return
		}
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_REPAIR, unix.TCP_REPAIR_ON); err != nil {
			serr = privilegeHint(fmt.Errorf("TCP_REPAIR: %w", err))
			return
		}
		before := tcpClockMs()
		ts, err := unix.GetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_TIMESTAMP)
		if err != nil {
			serr = fmt.Errorf("TCP_TIMESTAMP: %w", err)
			return
		}
		// The socket's clock read no earlier than before, so this offset never puts a TSval behind one the
		// kernel already sent (PAWS would drop the segment).
		t.tsOffset = uint32(ts) - before
		if t.sndNxt, err = queueSeq(fd, tcpSendQueue); err != nil {
			serr = err
			return
		}
		if t.rcvNxt, err = queueSeq(fd, tcpRecvQueue); err != nil {
			serr = err
			return
		}
		if t.window, err = repairWindow(fd); err != nil {
			serr = err
			return
		}
		t.timestamps = info.options&tcpiOptTimestamps != 0
		t.sack = info.options&tcpiOptSACK != 0
		if info.options&tcpiOptWscale != 0 {
			t.sndWscale, t.rcvWscale = info.sndWscale, info.rcvWscale
		}
		if info.options&tcpiOptUsecTS != 0 {
			serr = errors.New("the connection negotiated microsecond timestamps (TCP_USEC_TS), which xdpgen does not stamp: turn the route's tcp_usec_ts feature off")
			return
		}
		t.mss = info.sndMSS
		t.rtt, t.rttvar, t.rto = info.rtt, info.rttvar, info.rto
	})
	if err != nil {
		return t, err
	}
	return t, serr
}

// tcpInfoFields are the parts of struct tcp_info xdpgen reads. (x/sys's TCPInfo hides the byte that holds the
// window scales behind padding.)
type tcpInfoFields struct {
	options              uint8
	sndWscale, rcvWscale uint8
	sndMSS               uint32
	rtt, rttvar, rto     time.Duration
}

func tcpInfo(fd int) (tcpInfoFields, error) {
	var b [232]byte
	n := uint32(len(b))
	if _, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.IPPROTO_TCP, unix.TCP_INFO,
		uintptr(unsafe.Pointer(&b[0])), uintptr(unsafe.Pointer(&n)), 0); e != 0 {
		return tcpInfoFields{}, e
	}
	u32 := func(off int) uint32 { return *(*uint32)(unsafe.Pointer(&b[off])) }
	us := func(off int) time.Duration { return time.Duration(u32(off)) * time.Microsecond }
	return tcpInfoFields{
		options:   b[5],
		sndWscale: b[6] & 0x0f,
		rcvWscale: b[6] >> 4,
		rto:       us(8),
		sndMSS:    u32(16),
		rtt:       us(68),
		rttvar:    us(72),
	}, nil
}

func queueSeq(fd, queue int) (uint32, error) {
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_REPAIR_QUEUE, queue); err != nil {
		return 0, fmt.Errorf("TCP_REPAIR_QUEUE: %w", err)
	}
	v, err := unix.GetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_QUEUE_SEQ)
	if err != nil {
		return 0, fmt.Errorf("TCP_QUEUE_SEQ: %w", err)
	}
	return uint32(v), nil
}

func setQueueSeq(fd, queue int, seq uint32) error {
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_REPAIR_QUEUE, queue); err != nil {
		return fmt.Errorf("TCP_REPAIR_QUEUE: %w", err)
	}
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_QUEUE_SEQ, int(int32(seq))); err != nil {
		return fmt.Errorf("TCP_QUEUE_SEQ: %w", err)
	}
	return nil
}

func repairWindow(fd int) (tcpRepairWindow, error) {
	var w tcpRepairWindow
	n := uint32(unsafe.Sizeof(w))
	if _, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.IPPROTO_TCP, unix.TCP_REPAIR_WINDOW,
		uintptr(unsafe.Pointer(&w)), uintptr(unsafe.Pointer(&n)), 0); e != 0 {
		return w, fmt.Errorf("TCP_REPAIR_WINDOW: %w", e)
	}
	return w, nil
}

func setRepairWindow(fd int, w tcpRepairWindow) error {
	if _, _, e := unix.Syscall6(unix.SYS_SETSOCKOPT, uintptr(fd), unix.IPPROTO_TCP, unix.TCP_REPAIR_WINDOW,
		uintptr(unsafe.Pointer(&w)), unsafe.Sizeof(w), 0); e != 0 {
		return fmt.Errorf("set TCP_REPAIR_WINDOW: %w", e)
	}
	return nil
}

// tcpClockMs is the kernel's TCP timestamp clock (tcp_clock_ms: CLOCK_MONOTONIC in milliseconds), truncated
// to 32 bits as TSvals are.
func tcpClockMs() uint32 {
	return uint32(monotonicNow() / uint64(time.Millisecond))
}

// tcpFinal is where the programs left a flow: what the handed-back socket continues from.
type tcpFinal struct {
	// sndNxt is the sequence number after the last byte sent; acked says the peer acknowledged all of it.
	sndNxt, rcvNxt uint32
	acked          bool
	peerWindow     uint32
	// tsval is the TSval the programs would stamp now.
	tsval uint32
}

// handBack replaces the taken-over socket with one the kernel runs from where the programs stopped, then
// closes it: with a FIN when the peer has acknowledged everything, so that the kernel completes an orderly
// close; otherwise with a RST, since the kernel cannot retransmit data it never held. markPassing is called
// once the new socket exists and before it speaks, to let the peer's segments through to it. Runs in the
// network namespace of the connection.
func (c *tcpConn) handBack(ifindex int, f tcpFinal, markPassing func() error) error {
	if c.done.Swap(true) {
		return nil
	}
	// In repair mode the old socket closes without a word, and frees the port for the new one.
	if err := c.conn.Close(); err != nil {
		return fmt.Errorf("close the taken-over socket: %w", err)
	}
	fd, err := c.rebuild(ifindex, f)
	if err != nil {
		return fmt.Errorf("hand connection %s -> %s back to the kernel: %w", c.local, c.remote, err)
	}
	defer unix.Close(fd)
	if err := markPassing(); err != nil {
		return err
	}
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_REPAIR, unix.TCP_REPAIR_OFF); err != nil {
		return fmt.Errorf("leave TCP_REPAIR: %w", err)
	}
	if !f.acked {
		// An abortive close: the RST is at the end of what was sent, where the peer's window accepts it.
		return unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
	}
	if err := unix.Shutdown(fd, unix.SHUT_WR); err != nil {
		return fmt.Errorf("send FIN: %w", err)
	}
	return nil
}

// rebuild makes a socket in repair mode that is the connection as the programs left it.
func (c *tcpConn) rebuild(ifindex int, f tcpFinal) (int, error) {
	family := unix.AF_INET
	if c.local.Addr().Is6() {
		family = unix.AF_INET6
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP)
	if err != nil {
		return -1, err
	}
	steps := []struct {
		what string
		do   func() error
	}{
		{"TCP_REPAIR", func() error { return unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_REPAIR, unix.TCP_REPAIR_ON) }},
		{"SO_REUSEADDR", func() error { return unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1) }},
		{"SO_BINDTOIFINDEX", func() error { return unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_BINDTOIFINDEX, ifindex) }},
		{"bind", func() error { return unix.Bind(fd, sockaddr(c.local)) }},
		{"send sequence", func() error { return setQueueSeq(fd, tcpSendQueue, f.sndNxt) }},
		{"receive sequence", func() error { return setQueueSeq(fd, tcpRecvQueue, f.rcvNxt) }},
		{"connect", func() error { return unix.Connect(fd, sockaddr(c.remote)) }},
		{"TCP_REPAIR_OPTIONS", func() error {
			return unix.SetsockoptTCPRepairOpt(fd, unix.IPPROTO_TCP, unix.TCP_REPAIR_OPTIONS, c.repairOptions())
		}},
		{"TCP_TIMESTAMP", func() error {
			if !c.timestamps {
				return nil
			}
			return unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_TIMESTAMP, int(int32(f.tsval)))
		}},
		{"TCP_REPAIR_WINDOW", func() error {
			return setRepairWindow(fd, tcpRepairWindow{
				SndWl1: f.rcvNxt, SndWnd: f.peerWindow, MaxWindow: max(f.peerWindow, c.window.MaxWindow),
				RcvWnd: c.window.RcvWnd, RcvWup: f.rcvNxt,
			})
		}},
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			unix.Close(fd)
			return -1, fmt.Errorf("%s: %w", s.what, err)
		}
	}
	return fd, nil
}

// repairOptions are what the handshake negotiated, for TCP_REPAIR_OPTIONS.
func (c *tcpConn) repairOptions() []unix.TCPRepairOpt {
	mss := c.mss
	if c.timestamps {
		mss += tsOptionLen // the clamp is the MSS without options
	}
	opts := []unix.TCPRepairOpt{
		{Code: unix.TCPOPT_MAXSEG, Val: mss},
		{Code: unix.TCPOPT_WINDOW, Val: uint32(c.sndWscale) | uint32(c.rcvWscale)<<16},
	}
	if c.sack {
		opts = append(opts, unix.TCPRepairOpt{Code: unix.TCPOPT_SACK_PERMITTED})
	}
	if c.timestamps {
		opts = append(opts, unix.TCPRepairOpt{Code: unix.TCPOPT_TIMESTAMP})
	}
	return opts
}

// closeUntouched closes a connection the programs never sent on: its socket is still right about everything,
// so it only leaves repair mode and closes with its own FIN.
func (c *tcpConn) closeUntouched() error {
	if c.done.Swap(true) {
		return nil
	}
	raw, err := c.conn.SyscallConn()
	if err != nil {
		return errors.Join(err, c.conn.Close())
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_REPAIR, unix.TCP_REPAIR_OFF_NO_WP)
	}); err != nil {
		serr = err
	}
	if serr != nil {
		return errors.Join(fmt.Errorf("leave TCP_REPAIR: %w", serr), c.conn.Close())
	}
	return c.conn.Close()
}

// abandon closes the taken-over socket without a word: for a connection the peer reset.
func (c *tcpConn) abandon() error {
	if c.done.Swap(true) {
		return nil
	}
	return c.conn.Close()
}

func sockaddr(ap netip.AddrPort) unix.Sockaddr {
	if ap.Addr().Is4() {
		return &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}
	}
	return &unix.SockaddrInet6{Port: int(ap.Port()), Addr: ap.Addr().As16()}
}

// connect makes the connections, sends each its greeting (see TCPConfig.BeforeConnect), and takes them over.
func (g *TCPGenerator) connect(ctx context.Context) error {
	dst := netip.AddrPortFrom(g.cfg.DstAddr, g.cfg.DstPort)
	dial := func(ctx context.Context) (*net.TCPConn, error) {
		return dialTCP(ctx, g.target.Link.Attrs().Name, g.target.SrcAddr, dst, g.cfg.ConnectTimeout)
	}
	var greeting []byte
	if g.cfg.BeforeConnect != nil {
		var err error
		greeting, err = g.cfg.BeforeConnect(ctx, func(ctx context.Context) (net.Conn, error) { return dial(ctx) }, g.cfg.Flows)
		if err != nil {
			return err
		}
	}
	for range g.cfg.Flows {
		c, err := dial(ctx)
		if err != nil {
			return err
		}
		if err := greet(ctx, c, greeting, g.cfg.ConnectTimeout); err != nil {
			c.Close()
			return fmt.Errorf("connection to %s: %w", dst, err)
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
