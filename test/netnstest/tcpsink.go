package netnstest

import (
	"context"
	"io"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netns"
)

// TCPSink is the far end of a TCP test: a server in a namespace that accepts every connection and hands each to
// its reader, keeping what each delivered by the client's port.
type TCPSink struct {
	ln   net.Listener
	read TCPReader
	// ctx ends when the test does, so a reader that waits (for a start signal, or forever) lets go.
	ctx context.Context
	wg  sync.WaitGroup

	mu      sync.Mutex
	streams map[uint16]*TCPStream
	// ended holds the streams that ended and Next has not returned yet, in the order they ended; endedOne is
	// closed (and replaced) whenever one ends.
	ended    []*TCPStream
	endedOne chan struct{}
}

// TCPReader reads one accepted connection and says how many bytes it read, and the first thing wrong with the
// stream (nil when it ended cleanly). ctx ends when the test does. The sink closes the connection afterwards.
type TCPReader func(ctx context.Context, c *net.TCPConn) (uint64, error)

// ReadToEOF reads a connection to its end and counts the bytes: a FIN ends the stream cleanly, anything else
// (a reset) is the stream's error.
func ReadToEOF(_ context.Context, c *net.TCPConn) (uint64, error) {
	n, err := io.Copy(io.Discard, c)
	return uint64(n), err
}

// TCPStream is what one connection delivered.
type TCPStream struct {
	// Port is the client's port.
	Port  uint16
	Bytes uint64
	Err   error
	done  chan struct{}
}

// ListenTCP starts a TCPSink on addr in ns whose connections read reads (ReadToEOF when nil). When the test ends
// the sink stops accepting, closes the connections and waits for their readers.
func ListenTCP(t testing.TB, ns netns.NsHandle, addr netip.AddrPort, read TCPReader) *TCPSink {
	t.Helper()
	if read == nil {
		read = ReadToEOF
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &TCPSink{read: read, ctx: ctx, streams: map[uint16]*TCPStream{}, endedOne: make(chan struct{})}
	err := Do(ns, func() (err error) {
		s.ln, err = net.Listen("tcp", addr.String())
		return err
	})
	if err != nil {
		cancel()
		t.Fatalf("listen tcp %s: %v", addr, err)
	}
	s.wg.Add(1)
	go s.accept()
	t.Cleanup(func() {
		s.ln.Close()
		cancel()
		s.wg.Wait()
	})
	return s
}

func (s *TCPSink) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		conn := c.(*net.TCPConn)
		st := &TCPStream{Port: uint16(conn.RemoteAddr().(*net.TCPAddr).Port), done: make(chan struct{})}
		s.mu.Lock()
		s.streams[st.Port] = st
		s.mu.Unlock()
		s.wg.Add(2)
		go func() {
			defer s.wg.Done()
			st.Bytes, st.Err = s.read(s.ctx, conn)
			conn.Close()
			s.mu.Lock()
			s.ended = append(s.ended, st)
			close(s.endedOne)
			s.endedOne = make(chan struct{})
			s.mu.Unlock()
			close(st.done)
		}()
		// A reader that does not read (a peer that stops reading) only returns once the connection is closed.
		go func() {
			defer s.wg.Done()
			select {
			case <-s.ctx.Done():
				conn.Close()
			case <-st.done:
			}
		}()
	}
}

// Stream waits (up to timeout) for the connection from the client's port to end, and returns what it delivered.
// It fails the test when the sink never accepted that connection or it did not end.
func (s *TCPSink) Stream(t testing.TB, port uint16, timeout time.Duration) TCPStream {
	t.Helper()
	s.mu.Lock()
	st := s.streams[port]
	s.mu.Unlock()
	if st == nil {
		t.Fatalf("the server never accepted a connection from port %d", port)
	}
	select {
	case <-st.done:
		return *st
	case <-time.After(timeout):
		t.Fatalf("the connection from port %d did not end (no FIN) within %s", port, timeout)
	}
	return TCPStream{}
}

// Next waits (up to timeout) for the next connection to end, in the order they ended, and returns what it
// delivered. It fails the test when none ends in time.
func (s *TCPSink) Next(t testing.TB, timeout time.Duration) TCPStream {
	t.Helper()
	expired := time.After(timeout)
	for {
		s.mu.Lock()
		if len(s.ended) > 0 {
			st := s.ended[0]
			s.ended = s.ended[1:]
			s.mu.Unlock()
			return *st
		}
		endedOne := s.endedOne
		s.mu.Unlock()
		select {
		case <-endedOne:
		case <-expired:
			t.Fatalf("no connection ended within %s", timeout)
			return TCPStream{}
		}
	}
}

// Bytes is what the connections that ended delivered, added up.
func (s *TCPSink) Bytes() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var sum uint64
	for _, st := range s.streams {
		select {
		case <-st.done:
			sum += st.Bytes
		default:
		}
	}
	return sum
}
