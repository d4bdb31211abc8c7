package agent_test

import (
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/utils/ptr"

	xdpgenv1alpha1 "github.com/xdpgen/xdpgen/api/v1alpha1"
	"github.com/xdpgen/xdpgen/test/netnstest"
)

// TestTCPRun: a tcp TrafficGenerator connects to a real server on the far end, sends its segments over two
// connections, and completes once the server has acknowledged them; the server read what the report says.
func TestTCPRun(t *testing.T) {
	f := newFixture(t)
	var received atomic.Int64
	var ln net.Listener
	if err := netnstest.Do(f.pair.Remote.NS, func() (err error) {
		ln, err = net.Listen("tcp", net.JoinHostPort(f.pair.Remote.IPv4.String(), "5201"))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				n, _ := io.Copy(io.Discard, c)
				received.Add(n)
			}()
		}
	}()

	const segments = 20000
	tg := f.generator("tcp", func(s *xdpgenv1alpha1.TrafficGeneratorSpec) {
		s.Protocol = xdpgenv1alpha1.ProtocolTCP
		s.Destination.Port = 5201
		s.Packets = ptr.To[int64](segments)
		s.TCP = &xdpgenv1alpha1.TCPOptions{Flows: ptr.To[int32](2)}
	})
	f.startAgent("node-a", nil)
	done := f.report(tg, "node-a", 30*time.Second, "Completed", phase(xdpgenv1alpha1.PhaseCompleted))
	if done.Status.Packets < segments || !strings.Contains(done.Status.Message, "bytes acknowledged by the server") {
		t.Fatalf("completed report %+v, want at least %d segments and the acknowledged bytes", done.Status, segments)
	}
	deadline := time.Now().Add(5 * time.Second)
	for received.Load() < int64(segments)*1000 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if got := received.Load(); got < int64(segments)*1000 {
		t.Fatalf("the server read %d bytes for %d segments", got, segments)
	}
	t.Logf("report: %s", done.Status.Message)
	f.requireNoXDP()
}
