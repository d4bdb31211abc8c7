package dataplane

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	vnl "github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/xdpgen/xdpgen/bpf"
	"github.com/xdpgen/xdpgen/bpf/bpftest"
	"github.com/xdpgen/xdpgen/test/netnstest"
)

// tcpRig is a veth pair with the loss injector on the remote end (which also lets that veth receive redirected
// frames) and a TCP server in the remote namespace that reads every connection to its end and checks it.
type tcpRig struct {
	*netnstest.Pair
	loss *bpftest.TCPLoss
	sink *tcpSink
}

const tcpTestPort = 5201

// newTCPRig drops one data segment in dropEvery (0: none) on the way into the remote namespace.
func newTCPRig(t testing.TB, opts netnstest.Options, dropEvery uint32) *tcpRig {
	t.Helper()
	r := &tcpRig{Pair: netnstest.NewPair(t, opts)}
	netnstest.KnowEachOther(t, r.Local, r.Remote)
	var err error
	if r.loss, err = bpftest.LoadTCPLoss(bpftest.TCPLossConfig{DstPort: tcpTestPort, DropEvery: dropEvery}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.loss.Close() })
	var lk link.Link
	err = netnstest.Do(r.Remote.NS, func() error {
		l, err := vnl.LinkByName(r.Remote.Interface)
		if err != nil {
			return err
		}
		lk, err = link.AttachXDP(link.XDPOptions{Program: r.loss.Program, Interface: l.Attrs().Index})
		return err
	})
	if err != nil {
		t.Fatalf("attach the loss injector: %v", err)
	}
	t.Cleanup(func() { lk.Close() })
	return r
}

// newGROTCPRig is a veth pair whose remote end has no XDP program but GRO on, as a receiver whose driver merges
// segments: the kernel coalesces them in place, in the pages the live frames came in.
func newGROTCPRig(t testing.TB, opts netnstest.Options) *tcpRig {
	t.Helper()
	r := &tcpRig{Pair: netnstest.NewPair(t, opts)}
	netnstest.KnowEachOther(t, r.Local, r.Remote)
	r.Remote.SetGRO(t, true)
	return r
}

// lossCounts is what the injector passed and dropped: data segments and their payload bytes.
func (r *tcpRig) lossCounts(t testing.TB) (passed, dropped Counter) {
	t.Helper()
	read := func(key uint32) Counter {
		var perCPU []bpf.Counter
		if err := r.loss.Counters.Lookup(key, &perCPU); err != nil {
			t.Fatal(err)
		}
		var sum Counter
		for _, c := range perCPU {
			sum = sum.add(Counter{Packets: c.Packets, Bytes: c.Bytes})
		}
		return sum
	}
	return read(bpftest.TCPLossPassed), read(bpftest.TCPLossDropped)
}

// tcpSink is the server of the remote namespace: it reads each connection until EOF, checking every segment
// against the pattern: the segment's stream offset in 8 big-endian bytes, then byte i of the segment is byte(i).
type tcpSink struct {
	*netnstest.TCPSink
	// segment is the segment size, known once the generator has connected: readers wait for ready.
	segment int
	ready   chan struct{}
}

// listen starts a sink on addr in the remote namespace; it reads once start says how long segments are.
func (r *tcpRig) listen(t testing.TB, addr netip.Addr) *tcpSink {
	t.Helper()
	s := &tcpSink{ready: make(chan struct{})}
	s.TCPSink = netnstest.ListenTCP(t, r.Remote.NS, netip.AddrPortFrom(addr, tcpTestPort),
		func(ctx context.Context, c *net.TCPConn) (uint64, error) {
			select {
			case <-s.ready:
				return readPattern(c, s.segment)
			case <-ctx.Done(): // the test ended before it started the readers
				return 0, nil
			}
		})
	r.sink = s
	return s
}

// start lets the readers go, for segments of n bytes.
func (s *tcpSink) start(n int) {
	select {
	case <-s.ready:
	default:
		s.segment = n
		close(s.ready)
	}
}

// readPattern reads r to EOF in segment-sized pieces and checks each against the pattern.
func readPattern(r io.Reader, segment int) (uint64, error) {
	br := bufio.NewReaderSize(r, 1<<20)
	want := make([]byte, segment)
	for i := range want {
		want[i] = byte(i)
	}
	got := make([]byte, segment)
	var off uint64
	for {
		n, err := io.ReadFull(br, got)
		if err == io.EOF {
			return off, nil
		}
		if err != nil {
			return off + uint64(n), fmt.Errorf("at offset %d: %v (a partial segment of %d bytes)", off, err, n)
		}
		if o := binary.BigEndian.Uint64(got); o != off {
			return off, fmt.Errorf("the segment at stream offset %d says it is at %d", off, o)
		}
		if !bytes.Equal(got[TCPOffsetLen:], want[TCPOffsetLen:]) {
			return off, fmt.Errorf("the segment at stream offset %d has a corrupted payload", off)
		}
		off += uint64(segment)
	}
}

// tcpGenerator makes a TCPGenerator in the local namespace, and checks when the test ends that it left no
// XDP program attached.
func (r *tcpRig) tcpGenerator(t testing.TB, cfg TCPConfig) *TCPGenerator {
	t.Helper()
	g, err := r.tryTCPGenerator(cfg)
	if err != nil {
		t.Fatalf("NewTCPGenerator: %v", err)
	}
	t.Cleanup(func() {
		if err := g.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
		if r.Local.XDPAttached(t) {
			t.Errorf("an XDP program is still attached to %s", r.Local.Interface)
		}
	})
	return g
}

func (r *tcpRig) tryTCPGenerator(cfg TCPConfig) (g *TCPGenerator, err error) {
	err = netnstest.Do(r.Local.NS, func() error {
		g, err = NewTCPGenerator(context.Background(), cfg)
		return err
	})
	return g, err
}

func (r *tcpRig) addrs(v6 bool) (local, remote netip.Addr) {
	if v6 {
		return r.Local.IPv6, r.Remote.IPv6
	}
	return r.Local.IPv4, r.Remote.IPv4
}

// checkStreams checks that every flow's server read exactly what the generator says the peer acknowledged,
// in order and uncorrupted, ended by a FIN.
func checkStreams(t *testing.T, g *TCPGenerator, sink *tcpSink, s TCPStats) {
	t.Helper()
	for i, port := range g.LocalPorts() {
		got := sink.Stream(t, port, 5*time.Second)
		if got.Err != nil {
			t.Errorf("flow %d: the server's stream: %v", i, got.Err)
		}
		if acked := s.Flows[i].BytesAcked; got.Bytes != acked {
			t.Errorf("flow %d: the server read %d bytes, the generator says %d were acknowledged", i, got.Bytes, acked)
		}
	}
}

// TestTCPStreamArrivesIntact sends a fixed number of segments over one and several connections, IPv4 and
// IPv6, to a Go server that reads them: each server stream is exactly what the generator says was
// acknowledged, with every segment at its offset and uncorrupted, and ends with a FIN.
func TestTCPStreamArrivesIntact(t *testing.T) {
	for _, tc := range []struct {
		name           string
		v6             bool
		flows, threads int
		segments       uint64
	}{
		{"ipv4 one flow", false, 1, 1, 20_000},
		{"ipv6 one flow", true, 1, 1, 20_000},
		{"ipv4 5 flows 2 threads", false, 5, 2, 40_001},
		{"ipv6 5 flows 2 threads", true, 5, 2, 40_001},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newTCPRig(t, netnstest.Options{Queues: tc.threads}, 0)
			_, dst := r.addrs(tc.v6)
			sink := r.listen(t, dst)
			g := r.tcpGenerator(t, TCPConfig{DstAddr: dst, DstPort: tcpTestPort, Flows: tc.flows, Threads: tc.threads, Segments: tc.segments})
			sink.start(g.SegmentSize())
			localBefore, remoteBefore := readTCPStats(t, r.Local.NS), readTCPStats(t, r.Remote.NS)
			s, _ := sendAll(t, g, sink, tc.segments)
			passed, dropped := r.lossCounts(t)
			t.Logf("%s: %d segments sent (%d retransmitted), server got %d data segments, %d idle frames",
				g.Flow(), s.Total.SegmentsSent, s.Total.SegmentsRetransmitted, passed.Packets, s.Idle)
			if dropped.Packets != 0 {
				t.Fatalf("the injector dropped %d segments without being asked to", dropped.Packets)
			}
			// The taken-over sockets stayed silent: the local stack retransmitted and reset nothing (the FINs
			// of the hand-back are its only segments), and the server's stack found no bad segment.
			local, remote := readTCPStats(t, r.Local.NS), readTCPStats(t, r.Remote.NS)
			if local["RetransSegs"] != localBefore["RetransSegs"] || local["OutRsts"] != localBefore["OutRsts"] {
				t.Errorf("the local stack sent segments of its own: before %v, after %v", localBefore, local)
			}
			if remote["InErrs"] != remoteBefore["InErrs"] || remote["InCsumErrors"] != remoteBefore["InCsumErrors"] {
				t.Errorf("the server's stack rejected segments: before %v, after %v", remoteBefore, remote)
			}
		})
	}
}

// TestTCPThroughGRO sends to a receiver whose veth merges segments with GRO (no XDP program there): GRO writes
// the merged length, flags and checksums into the first segment's page, and live frames recycle that page for
// later segments. Every stream still arrives intact, with few retransmissions, and with goodput comparable to
// that of a receiver whose XDP program keeps its veth from merging.
func TestTCPThroughGRO(t *testing.T) {
	for _, tc := range tcpPathCases {
		t.Run(tc.name, func(t *testing.T) {
			gro := runTCPStream(t, newGROTCPRig(t, netnstest.Options{}), tc.v6, tc.flows, tcpPathSegments)
			xdp := runTCPStream(t, newTCPRig(t, netnstest.Options{}, 0), tc.v6, tc.flows, tcpPathSegments)
			t.Logf("goodput: %.0f Mbit/s into GRO, %.0f Mbit/s into an XDP receiver", gro/1e6, xdp/1e6)
			if gro < xdp/4 {
				t.Fatalf("goodput into GRO is %.0f Mbit/s, under a quarter of the %.0f Mbit/s into an XDP receiver", gro/1e6, xdp/1e6)
			}
		})
	}
}

// tcpPathCases are the runs a path between sender and receiver is tried with: IPv4 and IPv6, one flow and
// several, each tcpPathSegments long.
var tcpPathCases = []struct {
	name  string
	v6    bool
	flows int
}{
	{"ipv4 one flow", false, 1},
	{"ipv6 one flow", true, 1},
	{"ipv4 4 flows", false, 4},
	{"ipv6 4 flows", true, 4},
}

const tcpPathSegments = 20_000

// sendAll runs g until the segments it was asked for are acknowledged (20 s at most), checks that every stream
// arrived whole at sink, and returns the counters and how long the run took.
func sendAll(t *testing.T, g *TCPGenerator, sink *tcpSink, segments uint64) (TCPStats, time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	began := time.Now()
	if err := g.Run(ctx); err != nil {
		t.Fatalf("Run: %v", err)
	}
	took := time.Since(began)
	s, err := g.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if want := segments * uint64(g.SegmentSize()); s.Total.BytesAcked != want {
		t.Fatalf("%d bytes acknowledged, want %d: %+v", s.Total.BytesAcked, want, s.Total)
	}
	// The workers' threads are accounted: some time on their CPUs, and on and waiting for them no more than
	// the run's length each.
	if _, err := os.Stat("/proc/thread-self/schedstat"); err == nil {
		threads := time.Duration(len(g.target.CPUs))
		if w := s.Workers; w.OnCPU <= 0 || w.Waiting < 0 || w.OnCPU+w.Waiting > threads*took {
			t.Errorf("%d workers' threads over a run of %s: %+v", threads, took, w)
		}
	}
	checkStreams(t, g, sink, s)
	return s, took
}

// runTCPStream sends segments over flows connections through r to its sink and checks that every stream
// arrived whole and in order, with less than 1% of the segments sent twice; it returns the goodput, in bit/s.
func runTCPStream(t *testing.T, r *tcpRig, v6 bool, flows int, segments uint64) float64 {
	t.Helper()
	_, dst := r.addrs(v6)
	sink := r.listen(t, dst)
	g := r.tcpGenerator(t, TCPConfig{DstAddr: dst, DstPort: tcpTestPort, Flows: flows, Segments: segments})
	sink.start(g.SegmentSize())
	remoteBefore := readTCPStats(t, r.Remote.NS)
	s, took := sendAll(t, g, sink, segments)
	if s.Total.SegmentsRetransmitted*100 > segments {
		t.Errorf("%d of %d segments retransmitted on a path that loses none: %+v", s.Total.SegmentsRetransmitted, segments, s.Total)
	}
	if remote := readTCPStats(t, r.Remote.NS); remote["InErrs"] != remoteBefore["InErrs"] || remote["InCsumErrors"] != remoteBefore["InCsumErrors"] {
		t.Errorf("the server's stack rejected segments: before %v, after %v", remoteBefore, remote)
	}
	return float64(s.Total.BytesAcked) * 8 / took.Seconds()
}

// readTCPStats reads the Tcp line of /proc/net/snmp (IPv4 and IPv6 alike) as seen from ns.
func readTCPStats(t testing.TB, ns netns.NsHandle) map[string]uint64 {
	t.Helper()
	return readNetStats(t, ns, "snmp", "Tcp:")
}

// readNetStats reads one line of counters (proto: "Tcp:", "TcpExt:", ...) of /proc/net/<file> as seen from ns.
func readNetStats(t testing.TB, ns netns.NsHandle, file, proto string) map[string]uint64 {
	t.Helper()
	out := map[string]uint64{}
	err := netnstest.Do(ns, func() error {
		b, err := os.ReadFile("/proc/thread-self/net/" + file)
		if err != nil {
			return err
		}
		var header []string
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if len(f) == 0 || f[0] != proto {
				continue
			}
			if header == nil {
				header = f
				continue
			}
			for i := 1; i < len(f) && i < len(header); i++ {
				out[header[i]], _ = strconv.ParseUint(f[i], 10, 64)
			}
		}
		return nil
	})
	if err != nil || len(out) == 0 {
		t.Fatalf("read %s counters from /proc/net/%s: %v", proto, file, err)
	}
	return out
}

// TestTCPRecoversFromLoss drops one data segment in a hundred on the way in: every stream still arrives whole
// and in order, the losses are recovered (counted as retransmissions, mostly fast retransmits), and little
// more than what was lost is sent again.
func TestTCPRecoversFromLoss(t *testing.T) {
	for _, tc := range []struct {
		name  string
		v6    bool
		flows int
	}{
		{"ipv4 one flow", false, 1},
		{"ipv6 3 flows", true, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const segments, dropEvery = 20_000, 100
			r := newTCPRig(t, netnstest.Options{}, dropEvery)
			_, dst := r.addrs(tc.v6)
			sink := r.listen(t, dst)
			g := r.tcpGenerator(t, TCPConfig{DstAddr: dst, DstPort: tcpTestPort, Flows: tc.flows, Segments: segments})
			sink.start(g.SegmentSize())
			s, _ := sendAll(t, g, sink, segments)
			_, dropped := r.lossCounts(t)
			tot := s.Total
			t.Logf("%d segments sent, %d dropped on the way, %d retransmitted (%d fast retransmits, %d timeouts)",
				tot.SegmentsSent, dropped.Packets, tot.SegmentsRetransmitted, tot.FastRetransmits, tot.Timeouts)
			if dropped.Packets < segments/dropEvery {
				t.Fatalf("the injector dropped only %d segments", dropped.Packets)
			}
			if tot.SegmentsRetransmitted < dropped.Packets || tot.FastRetransmits == 0 {
				t.Fatalf("%d segments dropped but %d retransmitted (%d fast retransmits)", dropped.Packets, tot.SegmentsRetransmitted, tot.FastRetransmits)
			}
			if tot.SegmentsSent != segments+tot.SegmentsRetransmitted {
				t.Fatalf("%d segments sent, want the %d new ones and the %d retransmitted", tot.SegmentsSent, segments, tot.SegmentsRetransmitted)
			}
			if waste := float64(tot.SegmentsRetransmitted) / float64(segments); waste > 0.1 {
				t.Fatalf("%.1f%% of the stream was sent twice for 1%% loss", 100*waste)
			}
			// One loss in a hundred, never two in a window: duplicate ACKs recover each (early retransmit
			// at the stream's end, where three never come), none waits out the 200 ms timeout.
			if tot.Timeouts != 0 {
				t.Fatalf("%d timeouts for single losses (%d fast retransmits)", tot.Timeouts, tot.FastRetransmits)
			}
		})
	}
}

// TestTCPStopsOnTime runs for a duration, and cancels an unlimited run: both stop within the time plus the
// drain bound, and the streams the server read are exactly what was acknowledged, closed with a FIN.
func TestTCPStopsOnTime(t *testing.T) {
	r := newTCPRig(t, netnstest.Options{}, 0)
	_, dst := r.addrs(false)
	sink := r.listen(t, dst)
	for _, tc := range []struct {
		name     string
		duration time.Duration
		cancel   time.Duration
	}{
		{"duration", 300 * time.Millisecond, 0},
		{"cancel", 0, 300 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := r.tcpGenerator(t, TCPConfig{DstAddr: dst, DstPort: tcpTestPort, Flows: 2, Duration: tc.duration})
			sink.start(g.SegmentSize())
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			if tc.cancel > 0 {
				time.AfterFunc(tc.cancel, cancel)
			}
			began := time.Now()
			err := g.Run(ctx)
			took := time.Since(began)
			if tc.cancel > 0 && !errors.Is(err, context.Canceled) {
				t.Fatalf("Run after cancel = %v, want context.Canceled", err)
			} else if tc.cancel == 0 && err != nil {
				t.Fatalf("Run: %v", err)
			}
			s, err := g.Stats()
			if err != nil {
				t.Fatal(err)
			}
			// The end waits for what is in flight (at most tcpDrainTimeout), and the workers' calls take an RCU
			// grace period to end, which a receiver's softirq backlog on two cores can stretch.
			if limit := 300*time.Millisecond + tcpDrainTimeout + 500*time.Millisecond; took < 300*time.Millisecond || took > limit {
				t.Fatalf("a 300ms run took %s, want at most %s: %+v", took, limit, s.Total)
			}
			if s.Total.BytesAcked == 0 {
				t.Fatal("nothing was acknowledged")
			}
			checkStreams(t, g, sink, s)
			t.Logf("%.0f Mbit/s of goodput over %s; %+v", float64(s.Total.BytesAcked)*8/took.Seconds()/1e6, took, s.Total)
		})
	}
}

// TestTCPLeavesNothingBehind runs three generators back to back on one veth pair, as repeated `xdpgen tcp` runs
// do: once each is closed, its BPF programs and maps are gone (no reference to them is left anywhere), no XDP
// program is attached, and its connections are closed on both sides, the local end in TIME-WAIT, the state the
// kernel's own TCP leaves after an active close. So nothing of one run is left to slow the next.
func TestTCPLeavesNothingBehind(t *testing.T) {
	r := newTCPRig(t, netnstest.Options{}, 0)
	_, dst := r.addrs(true)
	sink := r.listen(t, dst)
	const segments = 5_000
	for run := range 3 {
		g, err := r.tryTCPGenerator(TCPConfig{DstAddr: dst, DstPort: tcpTestPort, Flows: 2, Segments: segments})
		if err != nil {
			t.Fatalf("run %d: NewTCPGenerator: %v", run, err)
		}
		closed := false
		t.Cleanup(func() {
			if !closed {
				g.Close()
			}
		})
		sink.start(g.SegmentSize())
		sendAll(t, g, sink, segments)
		var progs []ebpf.ProgramID
		var maps []ebpf.MapID
		for _, p := range []*ebpf.Program{g.objs.Send, g.objs.Ack} {
			info, err := p.Info()
			if err != nil {
				t.Fatal(err)
			}
			id, _ := info.ID()
			progs = append(progs, id)
		}
		for _, m := range []*ebpf.Map{g.objs.Flows, g.objs.Control, g.objs.Ports, g.objs.Workers} {
			info, err := m.Info()
			if err != nil {
				t.Fatal(err)
			}
			id, _ := info.ID()
			maps = append(maps, id)
		}
		closed = true
		if err := g.Close(); err != nil {
			t.Fatalf("run %d: close: %v", run, err)
		}
		if r.Local.XDPAttached(t) {
			t.Fatalf("run %d: an XDP program is still attached to %s", run, r.Local.Interface)
		}
		// The kernel frees a program or map once its last reference is gone, after an RCU grace period.
		waitFor(t, 5*time.Second, func() string {
			for _, id := range progs {
				if p, err := ebpf.NewProgramFromID(id); err == nil {
					p.Close()
					return fmt.Sprintf("run %d: program %d still exists", run, id)
				}
			}
			for _, id := range maps {
				if m, err := ebpf.NewMapFromID(id); err == nil {
					m.Close()
					return fmt.Sprintf("run %d: map %d still exists", run, id)
				}
			}
			return ""
		})
		waitFor(t, 5*time.Second, func() string {
			for _, s := range tcpSocketStates(t, r.Local.NS) {
				if s != tcpTimeWait {
					return fmt.Sprintf("run %d: a local socket in state %#x, want only TIME-WAIT (%#x)", run, s, tcpTimeWait)
				}
			}
			return ""
		})
	}
}

// tcpTimeWait is TCP_TIME_WAIT in include/net/tcp_states.h, as /proc/net/tcp shows a socket's state.
const tcpTimeWait = 0x06

// tcpSocketStates is the state of every TCP socket (IPv4 and IPv6) in ns.
func tcpSocketStates(t testing.TB, ns netns.NsHandle) []uint64 {
	t.Helper()
	var states []uint64
	err := netnstest.Do(ns, func() error {
		for _, file := range []string{"/proc/thread-self/net/tcp", "/proc/thread-self/net/tcp6"} {
			b, err := os.ReadFile(file)
			if err != nil {
				return err
			}
			for _, line := range strings.Split(string(b), "\n")[1:] {
				if f := strings.Fields(line); len(f) > 3 {
					st, err := strconv.ParseUint(f[3], 16, 8)
					if err != nil {
						return fmt.Errorf("%s: state %q: %w", file, f[3], err)
					}
					states = append(states, st)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return states
}

// waitFor polls check until it returns "" and fails the test with its last answer after timeout.
func waitFor(t testing.TB, timeout time.Duration, check func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		msg := check()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(msg)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestTCPClosesUnusedConnections: a generator closed without running closes its connections with a FIN too.
func TestTCPClosesUnusedConnections(t *testing.T) {
	r := newTCPRig(t, netnstest.Options{}, 0)
	sink := r.listen(t, r.Remote.IPv4)
	g, err := r.tryTCPGenerator(TCPConfig{DstAddr: r.Remote.IPv4, DstPort: tcpTestPort, Flows: 3})
	if err != nil {
		t.Fatal(err)
	}
	sink.start(g.SegmentSize())
	if err := g.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for _, port := range g.LocalPorts() {
		if got := sink.Stream(t, port, 5*time.Second); got.Bytes != 0 || got.Err != nil {
			t.Fatalf("the connection from port %d: %d bytes, %v; want an empty stream ended by a FIN", port, got.Bytes, got.Err)
		}
	}
	if r.Local.XDPAttached(t) {
		t.Fatal("an XDP program was left attached")
	}
}

// TestTCPBadPeers: a port nothing listens on, a server that never answers the handshake, one that resets the
// connection mid-run, one that stops acknowledging, and one whose application stops reading. Each gives a
// clear error, promptly, and leaves no XDP program behind.
func TestTCPBadPeers(t *testing.T) {
	t.Run("refused", func(t *testing.T) {
		r := newTCPRig(t, netnstest.Options{}, 0)
		_, err := r.tryTCPGenerator(TCPConfig{DstAddr: r.Remote.IPv4, DstPort: tcpTestPort})
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Field != FieldDstPort || !strings.Contains(err.Error(), "refused the connection (RST): nothing listens on port 5201") {
			t.Fatalf("NewTCPGenerator = %v, want a refusal naming the port", err)
		}
		if r.Local.XDPAttached(t) {
			t.Fatal("an XDP program was left attached")
		}
	})
	t.Run("handshake times out", func(t *testing.T) {
		r := newTCPRig(t, netnstest.Options{}, 0)
		r.fullListener(t, r.Remote.IPv6)
		began := time.Now()
		_, err := r.tryTCPGenerator(TCPConfig{DstAddr: r.Remote.IPv6, DstPort: tcpTestPort, ConnectTimeout: 300 * time.Millisecond})
		if !strings.Contains(fmt.Sprint(err), "no answer to the TCP handshake in 300ms") {
			t.Fatalf("NewTCPGenerator = %v, want a handshake timeout", err)
		}
		if took := time.Since(began); took > 3*time.Second {
			t.Fatalf("took %s to give up", took)
		}
		if r.Local.XDPAttached(t) {
			t.Fatal("an XDP program was left attached")
		}
	})
	t.Run("reset mid-run", func(t *testing.T) {
		r := newTCPRig(t, netnstest.Options{}, 0)
		resetAfter := r.resettingListener(t, r.Remote.IPv4, 1<<20)
		g := r.tcpGenerator(t, TCPConfig{DstAddr: r.Remote.IPv4, DstPort: tcpTestPort})
		err := runBounded(t, g, 5*time.Second)
		if !errors.Is(err, ErrPeerReset) || !strings.Contains(err.Error(), fmt.Sprintf("flow 0 (10.200.0.1:%d -> 10.200.0.2:5201)", g.LocalPorts()[0])) {
			t.Fatalf("Run = %v, want the peer's reset of flow 0", err)
		}
		if got := resetAfter.Next(t, 5*time.Second).Bytes; got < 1<<20 {
			t.Fatalf("the server reset after reading %d bytes", got)
		}
	})
	t.Run("peer stops acknowledging", func(t *testing.T) {
		r := newTCPRig(t, netnstest.Options{}, 1) // every data segment is dropped
		r.listen(t, r.Remote.IPv4)
		g := r.tcpGenerator(t, TCPConfig{DstAddr: r.Remote.IPv4, DstPort: tcpTestPort, StallTimeout: time.Second})
		err := runBounded(t, g, 5*time.Second)
		if err == nil || !strings.Contains(err.Error(), "the peer acknowledged nothing for") {
			t.Fatalf("Run = %v, want the stall explained", err)
		}
		if s, _ := g.Stats(); s.Total.Timeouts == 0 {
			t.Fatalf("no retransmission timeouts counted: %+v", s.Total)
		}
	})
	t.Run("peer stops reading", func(t *testing.T) {
		r := newTCPRig(t, netnstest.Options{}, 0)
		r.idleListener(t, r.Remote.IPv4)
		g := r.tcpGenerator(t, TCPConfig{DstAddr: r.Remote.IPv4, DstPort: tcpTestPort, StallTimeout: time.Second})
		err := runBounded(t, g, 5*time.Second)
		if err == nil || !strings.Contains(err.Error(), "the peer's receive window stayed closed") {
			t.Fatalf("Run = %v, want the closed window explained", err)
		}
	})
}

// runBounded runs g and fails the test if Run does not return within limit.
func runBounded(t *testing.T, g *TCPGenerator, limit time.Duration) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- g.Run(t.Context()) }()
	select {
	case err := <-done:
		return err
	case <-time.After(limit):
		t.Fatalf("Run did not return within %s", limit)
	}
	return nil
}

// fullListener listens with a backlog of one and never accepts, then fills the queue: the kernel drops
// further SYNs, so a handshake gets no answer.
func (r *tcpRig) fullListener(t *testing.T, addr netip.Addr) {
	t.Helper()
	err := netnstest.Do(r.Remote.NS, func() error {
		fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		t.Cleanup(func() { unix.Close(fd) })
		if err := unix.Bind(fd, &unix.SockaddrInet6{Port: tcpTestPort, Addr: addr.As16()}); err != nil {
			return err
		}
		if err := unix.Listen(fd, 0); err != nil {
			return err
		}
		// From inside the namespace, fill the accept queue (a backlog of 0 holds one connection).
		c, err := net.Dial("tcp", netip.AddrPortFrom(addr, tcpTestPort).String())
		if err != nil {
			return err
		}
		t.Cleanup(func() { c.Close() })
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// resettingListener reads n bytes of each connection and resets it (SO_LINGER 0); Next says how much it read.
func (r *tcpRig) resettingListener(t *testing.T, addr netip.Addr, n int64) *netnstest.TCPSink {
	t.Helper()
	return netnstest.ListenTCP(t, r.Remote.NS, netip.AddrPortFrom(addr, tcpTestPort),
		func(_ context.Context, c *net.TCPConn) (uint64, error) {
			got, _ := io.CopyN(io.Discard, c, n)
			_ = c.SetLinger(0)
			return uint64(got), nil
		})
}

// idleListener accepts connections and never reads them.
func (r *tcpRig) idleListener(t *testing.T, addr netip.Addr) {
	t.Helper()
	netnstest.ListenTCP(t, r.Remote.NS, netip.AddrPortFrom(addr, tcpTestPort),
		func(ctx context.Context, _ *net.TCPConn) (uint64, error) {
			<-ctx.Done()
			return 0, nil
		})
}
