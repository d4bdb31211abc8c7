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
	"sync"
	"testing"
	"time"

	"github.com/cilium/ebpf/link"
	vnl "github.com/vishvananda/netlink"

	"github.com/xdpgen/xdpgen/bpf"
	"github.com/xdpgen/xdpgen/test/netnstest"
)

// tcpRig is a veth pair with the loss injector on the remote end (which also lets that veth receive redirected
// frames) and a TCP server in the remote namespace that reads every connection to its end and checks it.
type tcpRig struct {
	*netnstest.Pair
	loss *bpf.TCPLoss
	sink *tcpSink
}

const tcpTestPort = 5201

// newTCPRig drops one data segment in dropEvery (0: none) on the way into the remote namespace.
func newTCPRig(t testing.TB, opts netnstest.Options, dropEvery uint32) *tcpRig {
	t.Helper()
	r := &tcpRig{Pair: netnstest.NewPair(t, opts)}
	var err error
	if r.loss, err = bpf.LoadTCPLoss(bpf.TCPLossConfig{DstPort: tcpTestPort, DropEvery: dropEvery}); err != nil {
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
	return read(bpf.TCPLossPassed), read(bpf.TCPLossDropped)
}

// tcpSink accepts connections and reads each one until EOF, checking every segment against the pattern: the
// segment's stream offset in 8 big-endian bytes, then byte i of the segment is byte(i).
type tcpSink struct {
	ln net.Listener
	// segment is the segment size, known once the generator has connected: readers wait for ready.
	segment int
	ready   chan struct{}
	mu      sync.Mutex
	streams map[uint16]*sinkStream // by the client's port
	wg      sync.WaitGroup
}

type sinkStream struct {
	bytes uint64
	// err is the first thing wrong with the stream; io.EOF never (a FIN ends a stream cleanly).
	err  error
	done chan struct{}
}

// listen starts a sink on addr in the remote namespace; it reads once start says how long segments are.
func (r *tcpRig) listen(t testing.TB, addr netip.Addr) *tcpSink {
	t.Helper()
	s := &tcpSink{ready: make(chan struct{}), streams: map[uint16]*sinkStream{}}
	err := netnstest.Do(r.Remote.NS, func() (err error) {
		s.ln, err = net.Listen("tcp", netip.AddrPortFrom(addr, tcpTestPort).String())
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	go s.accept()
	t.Cleanup(func() {
		s.ln.Close()
		s.start(TCPOffsetLen) // release readers of connections that never sent
		s.wg.Wait()
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

func (s *tcpSink) accept() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		st := &sinkStream{done: make(chan struct{})}
		s.mu.Lock()
		s.streams[uint16(c.RemoteAddr().(*net.TCPAddr).Port)] = st
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer close(st.done)
			defer c.Close()
			<-s.ready
			st.bytes, st.err = readPattern(c, s.segment)
		}()
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

// stream waits (up to timeout) for the connection from port to end, and returns what the server read.
func (s *tcpSink) stream(t testing.TB, port uint16, timeout time.Duration) (uint64, error) {
	t.Helper()
	s.mu.Lock()
	st := s.streams[port]
	s.mu.Unlock()
	if st == nil {
		t.Fatalf("the server never accepted a connection from port %d", port)
	}
	select {
	case <-st.done:
		return st.bytes, st.err
	case <-time.After(timeout):
		t.Fatalf("the connection from port %d did not end (no FIN) within %s", port, timeout)
	}
	return 0, nil
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
		got, err := sink.stream(t, port, 5*time.Second)
		if err != nil {
			t.Errorf("flow %d: the server's stream: %v", i, err)
		}
		if acked := s.Flows[i].BytesAcked; got != acked {
			t.Errorf("flow %d: the server read %d bytes, the generator says %d were acknowledged", i, got, acked)
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
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			if err := g.Run(ctx); err != nil {
				t.Fatalf("Run: %v", err)
			}
			s, err := g.Stats()
			if err != nil {
				t.Fatal(err)
			}
			if want := tc.segments * uint64(g.SegmentSize()); s.Total.BytesAcked != want {
				t.Fatalf("%d bytes acknowledged, want %d", s.Total.BytesAcked, want)
			}
			checkStreams(t, g, sink, s)
			passed, dropped := r.lossCounts(t)
			t.Logf("%s: %d segments sent (%d retransmitted), server got %d data segments, %d idle frames",
				g.Flow(), s.Total.SegmentsSent, s.Total.SegmentsRetransmitted, passed.Packets, s.Idle)
			if dropped.Packets != 0 {
				t.Fatalf("the injector dropped %d segments without being asked to", dropped.Packets)
			}
		})
	}
}

var _ = errors.Is
