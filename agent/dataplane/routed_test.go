package dataplane

import (
	"testing"

	"github.com/cilium/ebpf/link"
	vnl "github.com/vishvananda/netlink"

	"github.com/xdpgen/xdpgen/test/netnstest"
)

// routedEnds builds sender - router - receiver and returns the sender and the receiver as a Pair. The router's
// ingress veth gets a pass program, so that it receives redirected frames and hands them to its stack, which
// forwards them: it writes the next hop's MACs and the decremented TTL (hop limit) into the frame's own page.
func routedEnds(t *testing.T, opts netnstest.Options) *netnstest.Pair {
	t.Helper()
	rt := netnstest.NewRouted(t, opts)
	pass, err := constantProgram(ActionPass)
	if err != nil {
		t.Fatal(err)
	}
	defer pass.Close() // the attachment holds its own reference
	var lk link.Link
	err = netnstest.Do(rt.RouterIn.NS, func() error {
		l, err := vnl.LinkByName(rt.RouterIn.Interface)
		if err != nil {
			return err
		}
		lk, err = link.AttachXDP(link.XDPOptions{Program: pass, Interface: l.Attrs().Index})
		return err
	})
	if err != nil {
		t.Fatalf("attach a pass program to the router's %s: %v", rt.RouterIn.Interface, err)
	}
	t.Cleanup(func() { lk.Close() })
	return &netnstest.Pair{Local: rt.Sender, Remote: rt.Receiver}
}

// TestUDPThroughARouter: every frame a router forwards arrives at the host behind it. The router rewrites the
// MACs and the TTL in the page each frame came in, and live frames recycle those pages: a frame sent again with
// the router's rewrite on it would carry the receiver's MAC and be dropped by the router as not its own.
func TestUDPThroughARouter(t *testing.T) {
	for _, tc := range []struct {
		name string
		v6   bool
	}{{"ipv4", false}, {"ipv6", true}} {
		t.Run(tc.name, func(t *testing.T) {
			// Paced, so that the router's and the receiver's backlogs never overflow.
			const count, dport = 5000, 7777
			r := countOn(t, routedEnds(t, netnstest.Options{}), dport, dport, false)
			dst := r.Remote.IPv4
			if tc.v6 {
				dst = r.Remote.IPv6
			}
			g := r.generator(t, UDPConfig{DstAddr: dst, DstPort: dport, Packets: count, RatePPS: 50_000})
			s := run(t, g)
			if sent := s.Actions[ActionRedirect].Packets; sent != count {
				t.Fatalf("the engine sent %d frames, want %d", sent, count)
			}
			if got := r.receivedAll(t, count).Packets; got != count {
				t.Fatalf("the receiver got %d of %d frames", got, count)
			}
		})
	}
}

// TestTCPThroughARouter: TCP streams through a router arrive intact, IPv4 and IPv6, one flow and several.
func TestTCPThroughARouter(t *testing.T) {
	for _, tc := range tcpPathCases {
		t.Run(tc.name, func(t *testing.T) {
			goodput := runTCPStream(t, &tcpRig{Pair: routedEnds(t, netnstest.Options{})}, tc.v6, tc.flows, tcpPathSegments)
			t.Logf("goodput through the router: %.0f Mbit/s", goodput/1e6)
		})
	}
}
