package dataplane

import (
	"bufio"
	"fmt"
	"math"
	"net"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/xdpgen/xdpgen/bpf"
	"github.com/xdpgen/xdpgen/bpf/bpftest"
	"github.com/xdpgen/xdpgen/test/netnstest"
	"github.com/xdpgen/xdpgen/test/selfexec"
)

// BenchmarkTCP measures xdpgen's TCP beside the kernel's own TCP (a Go net.Conn writer) on one veth pair, in
// interleaved rounds: goodput is what the server (countingServer, a process of its own) read per second (from its
// first byte to its last), efficiency is what it read over the bytes the sender put on the wire: every frame,
// headers and retransmissions included (for xdpgen the frames its program redirected; for the kernel its payload
// bytes sent, from TCP_INFO, plus 66 bytes of Ethernet, IPv4 and TCP headers with timestamps per data segment). The
// XDP program on the server's veth, there for both senders (a veth receives redirected frames only with one), also
// turns GSO off on the sending side, so both put MTU-sized frames on the wire; it counts what arrived too. One and
// four connections, on a clean path and with the server's XDP program dropping one data segment in a hundred; b.N is
// ignored.
//
// The kernel's congestion control is named per variant, not left to the namespace's default (which a new
// namespace copies from the host's: BBR on some machines, CUBIC on most): CUBIC is loss-based like xdpgen's
// and the kernel's built-in default; BBR, a model of the path's rate and round trip, does not back off for
// random loss at all and keeps a window 20-50 times larger through 1% drops.
func BenchmarkTCP(b *testing.B) {
	for _, drops := range []struct {
		name  string
		every uint32
	}{{"none", 0}, {"1%", 100}} {
		b.Run("peer-drops="+drops.name, func(b *testing.B) {
			r := newTCPRig(b, netnstest.Options{Queues: 2}, drops.every)
			srv := newCountingServer(b, r, r.Remote.IPv4)
			benchTCP(b, r, srv, []tcpBenchVariant{
				{name: "xdp-1flow", flows: 1, threads: 1},
				{name: "kernel-cubic-1conn", flows: 1, congestion: "cubic"},
				{name: "kernel-bbr-1conn", flows: 1, congestion: "bbr"},
				{name: "xdp-4flows", flows: 4, threads: 1},
				{name: "kernel-cubic-4conns", flows: 4, congestion: "cubic"},
				{name: "xdp-4flows-2threads", flows: 4, threads: 2},
			}, [][2]string{{"xdp-1flow", "kernel-cubic-1conn"}, {"xdp-1flow", "kernel-bbr-1conn"},
				{"xdp-4flows", "kernel-cubic-4conns"}, {"xdp-4flows-2threads", "kernel-cubic-4conns"}})
		})
	}
}

// BenchmarkTCPBackToBack runs xdpgen three times in a row after each kernel run, on one veth pair: a run that
// left state behind to slow the next (BPF objects or attachments, sockets, neighbour or route entries) would
// show as goodput falling from the first xdpgen run of a round to the third, against the kernel's run before
// them. b.N is ignored.
func BenchmarkTCPBackToBack(b *testing.B) {
	r := newTCPRig(b, netnstest.Options{}, 0)
	srv := newCountingServer(b, r, r.Remote.IPv4)
	benchTCP(b, r, srv, []tcpBenchVariant{
		{name: "kernel-cubic-1conn", flows: 1, congestion: "cubic"},
		{name: "xdp-1st", flows: 1, threads: 1},
		{name: "xdp-2nd", flows: 1, threads: 1},
		{name: "xdp-3rd", flows: 1, threads: 1},
	}, [][2]string{{"xdp-1st", "kernel-cubic-1conn"}, {"xdp-2nd", "kernel-cubic-1conn"}, {"xdp-3rd", "kernel-cubic-1conn"}, {"xdp-3rd", "xdp-1st"}})
}

// benchTCP runs the variants in interleaved rounds, then reports each one's goodput and efficiency, and the
// goodput ratio of each pair (first over second).
func benchTCP(b *testing.B, r *tcpRig, srv *countingServer, variants []tcpBenchVariant, pairs [][2]string) {
	results := map[string]*tcpBenchResult{}
	for range benchRounds {
		for _, v := range variants {
			res := results[v.name]
			if res == nil {
				res = &tcpBenchResult{}
				results[v.name] = res
			}
			v.run(b, r, srv, res)
		}
	}
	for _, v := range variants {
		res := results[v.name]
		b.ReportMetric(res.goodput()/1e9, "Gbit/s-"+v.name)
		b.ReportMetric(res.efficiency(), "efficiency-"+v.name)
		b.Logf("%-20s goodput %5.2f Gbit/s, efficiency %.3f (of the payload sent %.3f, of what arrived %.3f), %.3f%% of segments retransmitted",
			v.name, res.goodput()/1e9, res.efficiency(), float64(res.received)/float64(max(res.payloadSent, 1)),
			float64(res.received)/float64(max(res.arrived, 1)), 100*float64(res.retransmitted)/float64(max(res.segments, 1)))
		b.Logf("%-20s the server took %d segments: %.1f%% queued behind its reading thread, %.1f%% out of order", "",
			res.serverSegments, 100*float64(res.serverBacklogged)/float64(max(res.serverSegments, 1)),
			100*float64(res.serverOutOfOrder)/float64(max(res.serverSegments, 1)))
		if v.congestion == "" {
			b.Logf("%-20s %d fast retransmits, %d retransmissions lost and sent again, %d timeouts; workers on their CPUs %.2f s, "+
				"waiting for them %.2f s", "", res.fastRetransmits, res.lostRetransmits, res.timeouts, res.workers.OnCPU.Seconds(),
				res.workers.Waiting.Seconds())
		}
	}
	for _, pair := range pairs {
		q := results[pair[0]].goodput() / results[pair[1]].goodput()
		b.ReportMetric(q, pair[0]+"/"+pair[1])
		b.Logf("goodput %s / %s = %.3f", pair[0], pair[1], q)
	}
}

type tcpBenchVariant struct {
	name           string
	flows, threads int
	// congestion, when set, runs a Go net.Conn writer per connection instead of xdpgen, with this kernel
	// congestion control (TCP_CONGESTION).
	congestion string
}

type tcpBenchResult struct {
	// received is what the server read; seconds from its first byte to its last, summed over rounds.
	received uint64
	seconds  float64
	// wire is what the sender put on the wire, arrived what reached the server's veth (frames, headers
	// included); payloadSent the TCP payload sent. All count retransmissions.
	wire, arrived, payloadSent uint64
	segments, retransmitted    uint64
	// xdpgen's recovery: fast retransmits, retransmissions presumed lost and sent again, timeouts.
	fastRetransmits, lostRetransmits, timeouts uint64
	// xdpgen's workers' time on their CPUs and waiting for them.
	workers SchedTimes
	// The server's kernel: data segments it took in, those it had to queue behind its reading thread (the
	// socket was held by the application: TcpExt TCPBacklogCoalesce, a lower bound), and those it queued out
	// of order.
	serverSegments, serverBacklogged, serverOutOfOrder uint64
}

func (t *tcpBenchResult) goodput() float64    { return float64(t.received) * 8 / t.seconds }
func (t *tcpBenchResult) efficiency() float64 { return float64(t.received) / float64(max(t.wire, 1)) }

func (v tcpBenchVariant) run(b *testing.B, r *tcpRig, srv *countingServer, res *tcpBenchResult) {
	b.Helper()
	arrivedBefore := r.arrivedBytes(b)
	tcpBefore, extBefore := readTCPStats(b, r.Remote.NS), readNetStats(b, r.Remote.NS, "netstat", "TcpExt:")
	defer func() {
		tcpAfter, extAfter := readTCPStats(b, r.Remote.NS), readNetStats(b, r.Remote.NS, "netstat", "TcpExt:")
		res.serverSegments += tcpAfter["InSegs"] - tcpBefore["InSegs"]
		res.serverBacklogged += extAfter["TCPBacklogCoalesce"] - extBefore["TCPBacklogCoalesce"]
		res.serverOutOfOrder += extAfter["TCPOFOQueue"] - extBefore["TCPOFOQueue"]
	}()
	if v.congestion != "" {
		finish := v.runKernel(b, r)
		received, seconds := srv.wait(b, v.flows)
		res.received += received
		res.seconds += seconds
		finish(res)
	} else {
		v.runXDP(b, r, res)
		received, seconds := srv.wait(b, v.flows)
		res.received += received
		res.seconds += seconds
	}
	res.arrived += r.arrivedBytes(b) - arrivedBefore
}

func (v tcpBenchVariant) runXDP(b testing.TB, r *tcpRig, res *tcpBenchResult) {
	g, err := r.tryTCPGenerator(TCPConfig{DstAddr: r.Remote.IPv4, DstPort: tcpTestPort, Flows: v.flows, Threads: v.threads, Duration: benchPeriod})
	if err != nil {
		b.Fatal(err)
	}
	defer g.Close()
	if err := g.Run(b.Context()); err != nil {
		b.Fatal(err)
	}
	s, err := g.Stats()
	if err != nil {
		b.Fatal(err)
	}
	res.wire += s.Sent().Bytes
	res.payloadSent += s.Total.BytesSent
	res.segments += s.Total.SegmentsSent
	res.retransmitted += s.Total.SegmentsRetransmitted
	res.fastRetransmits += s.Total.FastRetransmits
	res.lostRetransmits += s.Total.LostRetransmits
	res.timeouts += s.Total.Timeouts
	res.workers = res.workers.add(s.Workers)
}

// runKernel writes to each connection for the bench period, then shuts its sending side (what is still in the
// send buffer goes out, then a FIN). finish, called once the server has read everything, reads what TCP_INFO
// says was sent and closes the connections.
func (v tcpBenchVariant) runKernel(b testing.TB, r *tcpRig) (finish func(*tcpBenchResult)) {
	conns := make([]*net.TCPConn, v.flows)
	d := net.Dialer{Control: func(_, _ string, raw syscall.RawConn) error {
		var err error
		if cerr := raw.Control(func(fd uintptr) {
			err = unix.SetsockoptString(int(fd), unix.IPPROTO_TCP, unix.TCP_CONGESTION, v.congestion)
		}); cerr != nil {
			return cerr
		}
		if err != nil {
			return fmt.Errorf("congestion control %q: %w", v.congestion, err)
		}
		return nil
	}}
	err := netnstest.Do(r.Local.NS, func() error {
		for i := range conns {
			c, err := d.Dial("tcp", netip.AddrPortFrom(r.Remote.IPv4, tcpTestPort).String())
			if err != nil {
				return err
			}
			conns[i] = c.(*net.TCPConn)
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	deadline := time.Now().Add(benchPeriod)
	buf := make([]byte, 1<<20)
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = c.SetWriteDeadline(deadline)
			for {
				if _, err := c.Write(buf); err != nil {
					break
				}
			}
			_ = c.CloseWrite()
		}()
	}
	wg.Wait()
	return func(res *tcpBenchResult) {
		for _, c := range conns {
			info := kernelTCPInfo(c)
			res.wire += info.Bytes_sent + uint64(info.Data_segs_out)*kernelHeaderBytes
			res.payloadSent += info.Bytes_sent
			res.segments += uint64(info.Data_segs_out)
			res.retransmitted += uint64(info.Total_retrans)
			c.Close()
		}
	}
}

// kernelHeaderBytes is Ethernet, IPv4 and TCP with the timestamp option: what each of the kernel's data
// segments adds to its payload on the wire.
const kernelHeaderBytes = ethernetHeaderLen + ipv4HeaderLen + tcpHeaderLen + tsOptionLen

func kernelTCPInfo(c *net.TCPConn) *unix.TCPInfo {
	raw, err := c.SyscallConn()
	if err != nil {
		return &unix.TCPInfo{}
	}
	info := &unix.TCPInfo{}
	_ = raw.Control(func(fd uintptr) {
		if i, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO); err == nil {
			info = i
		}
	})
	return info
}

// arrivedBytes is every TCP frame to the server's port that arrived on its veth, in bytes.
func (r *tcpRig) arrivedBytes(b *testing.B) uint64 {
	var perCPU []bpf.Counter
	if err := r.loss.Counters.Lookup(bpftest.TCPLossFrames, &perCPU); err != nil {
		b.Fatal(err)
	}
	var sum uint64
	for _, c := range perCPU {
		sum += c.Bytes
	}
	return sum
}

// countingServer is the benchmarks' TCP server: a process of its own (this test binary again, running
// serveCounting) with a thread per connection blocked in read(2), as a plain C server such as socat reads, that
// reports each connection's bytes, and when its first and last arrived. With 1% drops and 4 flows on 2 workers
// (whose live-frame loops hold both CPUs whether or not their flows may send), the server's design decided the
// result: its reader goroutines in the benchmark's own process gave 0.26-0.29 of the kernel's goodput (and
// the kernel's writers, sharing the Go runtime with them, 7.7-8.4 Gbit/s), the same goroutines in a process of
// their own 0.40-0.43 (the kernel 6.2-6.5), threads blocked in read(2) 1.05-1.21 (the kernel 6.0-7.0), socat
// about 1. A goroutine's wakeup passes through the Go runtime's network poller and more threads, each needing a
// CPU the workers hold; the kernel wakes a thread blocked in read(2) itself.
type countingServer struct {
	ended chan connCount
}

// connCount is what the server read from one connection, and when its first and last bytes arrived (Unix ns).
type connCount struct {
	bytes       uint64
	first, last int64
}

// serveCounting is the counting server's process: it listens on the address it is given, and for every
// connection that ends writes a line "<bytes> <first> <last>" to its standard output.
func serveCounting() {
	ln, err := net.Listen("tcp", os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println("listening")
	var mu sync.Mutex
	for {
		c, err := ln.Accept()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		go func() {
			defer c.Close()
			f, err := c.(*net.TCPConn).File()
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
			defer f.Close()
			_ = unix.SetNonblock(int(f.Fd()), false)
			runtime.LockOSThread()
			buf := make([]byte, 1<<20)
			var got connCount
			for {
				n, err := unix.Read(int(f.Fd()), buf)
				if err == unix.EINTR {
					continue
				}
				if n == 0 && err == nil {
					break
				}
				if n > 0 {
					now := time.Now().UnixNano()
					if got.first == 0 {
						got.first = now
					}
					got.last = now
					got.bytes += uint64(n)
				}
				if err != nil {
					break
				}
			}
			mu.Lock()
			defer mu.Unlock()
			fmt.Println(got.bytes, got.first, got.last)
		}()
	}
}

// newCountingServer starts the counting server in r's remote namespace, listening on addr, and stops it when
// the benchmark ends.
func newCountingServer(b testing.TB, r *tcpRig, addr netip.Addr) *countingServer {
	b.Helper()
	cmd, out := selfexec.Command(netip.AddrPortFrom(addr, tcpTestPort).String())
	cmd.Stdout = nil
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	// Started from a thread in the namespace, the process is in it.
	if err := netnstest.Do(r.Remote.NS, cmd.Start); err != nil {
		b.Fatalf("start the counting server: %v", err)
	}
	b.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	lines := bufio.NewScanner(stdout)
	if !lines.Scan() || lines.Text() != "listening" {
		b.Fatalf("the counting server did not start: %q %s", lines.Text(), out)
	}
	s := &countingServer{ended: make(chan connCount, 64)}
	go func() {
		for lines.Scan() {
			var c connCount
			if _, err := fmt.Sscan(lines.Text(), &c.bytes, &c.first, &c.last); err == nil {
				s.ended <- c
			}
		}
	}()
	return s
}

// wait waits for n connections to end, and returns what they delivered and over how long (from the first
// byte of any of them to the last).
func (s *countingServer) wait(b testing.TB, n int) (uint64, float64) {
	var bytes uint64
	var first, last int64
	for i := range n {
		select {
		case c := <-s.ended:
			bytes += c.bytes
			if first == 0 || c.first < first {
				first = c.first
			}
			last = max(last, c.last)
		case <-time.After(10 * time.Second):
			b.Fatalf("the counting server saw %d of %d connections end, then none for 10s", i, n)
		}
	}
	return bytes, float64(last-first) / 1e9
}

// TestMain lets the test binary double as the counting server.
func TestMain(m *testing.M) { selfexec.Main(m, serveCounting) }

// BenchmarkTCPChecksum compares, per frame, the whole send program (which updates the checksum from the
// template's for the 13 words it stamps) with computing one segment's checksum from scratch, as a program that
// rewrote the payload would have to (prog.Run, not live: the CPU cost of the program alone).
func BenchmarkTCPChecksum(b *testing.B) {
	netnstest.RequirePrivileges(b)
	const repeat = 50_000
	tmpl, err := buildTCPTemplate(tcpFrame{
		SrcMAC: []byte{2, 0, 0, 0, 0, 1}, DstMAC: []byte{2, 0, 0, 0, 0, 2},
		SrcAddr: netip.MustParseAddr("10.0.0.1"), DstAddr: netip.MustParseAddr("10.0.0.2"), DstPort: tcpTestPort,
		Window: 1000, Timestamps: true, Payload: 1448,
	})
	if err != nil {
		b.Fatal(err)
	}
	objs, err := bpf.LoadTCP(bpf.TCPConfig{TcpOffset: uint16(tmpl.TCPOffset), TcpCheck: tmpl.TCPCheck, Mss: 1448, DstPort: tcpTestPort,
		Timestamps: 1, MaxCwnd: tcpMaxCwnd, MinRto: uint64(time.Hour), MaxRto: uint64(time.Hour)}, tmpl.Frame)
	if err != nil {
		b.Fatal(err)
	}
	defer objs.Close()
	full, err := bpftest.LoadTCPFullChecksum()
	if err != nil {
		b.Fatal(err)
	}
	defer full.Close()

	workers := make([]bpf.TCPWorker, ebpf.MustPossibleCPU())
	for i := range workers {
		workers[i] = bpf.TCPWorker{Count: 1, Stride: 1}
	}
	perFrame := func(prog *ebpf.Program, verdicts []Action, setup func()) time.Duration {
		var total time.Duration
		for range benchRounds {
			setup()
			ret, d, err := prog.Benchmark(tmpl.Frame, repeat, nil)
			if err != nil || !slices.Contains(verdicts, Action(ret)) {
				b.Fatalf("run: verdict %d, want one of %v, %v", ret, verdicts, err)
			}
			total += d
		}
		return total / benchRounds
	}
	setFlow := func(flow bpf.TCPFlow) func() {
		return func() {
			if err := objs.Flows.Update(uint32(0), flow, ebpf.UpdateAny); err != nil {
				b.Fatal(err)
			}
			if err := objs.Control.Update(uint32(0), bpf.TCPFlowCtl{End: 1 << 62}, ebpf.UpdateAny); err != nil {
				b.Fatal(err)
			}
			if err := objs.Workers.Put(uint32(0), workers); err != nil {
				b.Fatal(err)
			}
		}
	}
	sent := []Action{ActionRedirect, ActionTX}
	incremental := perFrame(objs.Send, sent, setFlow(bpf.TCPFlow{State: bpf.TCPFlowRunning, Cwnd: tcpMaxCwnd,
		Ssthresh: tcpMaxCwnd, PeerWnd: 1 << 31, Rto: uint64(time.Hour)}))
	// A flow whose window is full, waiting for an ACK: what the worker spends on each frame it cannot send.
	idle := perFrame(objs.Send, []Action{ActionDrop}, setFlow(bpf.TCPFlow{State: bpf.TCPFlowRunning, Cwnd: 10, Ssthresh: 10,
		PeerWnd: 1 << 31, SndNxt: 10 * 1448, SndMax: 10 * 1448, Rto: uint64(time.Hour), RtoAt: math.MaxUint64}))
	computed := perFrame(full, sent, func() {})
	b.ReportMetric(float64(incremental.Nanoseconds()), "ns/frame-send-program")
	b.ReportMetric(float64(idle.Nanoseconds()), "ns/frame-idle")
	b.ReportMetric(float64(computed.Nanoseconds()), "ns/frame-full-checksum")
	b.Logf("the whole send program (lock, congestion control, stamping, incremental checksum): %s per frame; "+
		"a frame no flow may send: %s; a full checksum of a %d-byte segment alone: %s per frame", incremental, idle, 1448, computed)
}
