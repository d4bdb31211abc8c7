package agent_test

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"k8s.io/utils/ptr"

	xdpgenv1alpha1 "github.com/xdpgen/xdpgen/api/v1alpha1"
	"github.com/xdpgen/xdpgen/test/netnstest"
	"github.com/xdpgen/xdpgen/test/poll"
)

// TestTCPRun: a tcp TrafficGenerator connects to a real server on the far end, sends its segments over two
// connections, and completes once the server has acknowledged them; the server read what the report says.
func TestTCPRun(t *testing.T) {
	f := newFixture(t)
	sink := netnstest.ListenTCP(t, f.pair.Remote.NS, netip.AddrPortFrom(f.pair.Remote.IPv4, 5201), nil)

	const segments = 20000
	tg := f.generator("tcp", func(s *xdpgenv1alpha1.TrafficGeneratorSpec) {
		s.Protocol = xdpgenv1alpha1.ProtocolTCP
		s.Destination.Port = 5201
		s.Packets = ptr.To[int64](segments)
		s.TCP = &xdpgenv1alpha1.TCPOptions{Flows: ptr.To[int32](2)}
	})
	f.startAgent("node-a", nil)
	done := f.report(tg, "node-a", 30*time.Second, "Completed", phase(xdpgenv1alpha1.PhaseCompleted))
	if done.Status.Packets < segments || !strings.Contains(done.Status.Message, "bytes acknowledged by the server") || done.Status.TCP == nil {
		t.Fatalf("completed report %+v, want at least %d segments and the acknowledged bytes", done.Status, segments)
	}
	acked := uint64(done.Status.TCP.BytesAcknowledged)
	poll.Until(t, 5*time.Second, 50*time.Millisecond, "the server's streams", func() error {
		if got := sink.Bytes(); got < segments*1000 || got != acked {
			return fmt.Errorf("the server read %d bytes for %d segments; the report says %d were acknowledged", got, segments, acked)
		}
		return nil
	})
	t.Logf("report: %s", done.Status.Message)
	f.requireNoXDP()
}
