package dataplane

import (
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xdpgen/xdpgen/test/netnstest"
)

// iptablesCounter counts, with an iptables (or ip6tables) rule in h's INPUT chain, the UDP datagrams to port that
// the host's stack takes in, and returns a function that reads the count.
func iptablesCounter(t *testing.T, h netnstest.Host, v6 bool, port uint16) func() uint64 {
	t.Helper()
	cmd := "iptables"
	if v6 {
		cmd = "ip6tables"
	}
	netnstest.RequireCommand(t, cmd)
	comment := "xdpgen-inject-test"
	h.Exec(t, cmd, "-w", "-A", "INPUT", "-p", "udp", "--dport", strconv.Itoa(int(port)), "-m", "comment", "--comment", comment, "-j", "ACCEPT")
	re := regexp.MustCompile(`(?m)^\s*(\d+)\s+\d+\s+ACCEPT.*` + comment)
	return func() uint64 {
		m := re.FindStringSubmatch(h.Exec(t, cmd, "-w", "-nvxL", "INPUT"))
		if m == nil {
			t.Fatalf("no counter of the %s rule", cmd)
		}
		n, _ := strconv.ParseUint(m[1], 10, 64)
		return n
	}
}

// TestInjectIntoTheLocalStack injects frames into a host's own interface, which sends nothing: a socket on the
// same host receives every one (the kernel validated the checksums of each, sizes and addresses varying), an
// iptables rule of its INPUT chain counts them, and nothing left through the interface.
func TestInjectIntoTheLocalStack(t *testing.T) {
	for _, tc := range []struct {
		name  string
		v6    bool
		shape func(c *UDPConfig)
	}{
		{"ipv4 imix from 8 sources", false, func(c *UDPConfig) {
			c.Sizes = &FrameSizes{Mix: SizeProfiles["imix-simple"]}
			c.SrcAddr, c.SrcRange = netip.Addr{}, &AddrRange{First: netip.MustParseAddr("10.200.0.50"), Last: netip.MustParseAddr("10.200.0.57")}
		}},
		{"ipv6", true, func(*UDPConfig) {}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const count, dport = 1200, 7777
			p := netnstest.NewPair(t, netnstest.Options{})
			r := &rig{Pair: p}
			local, peer := p.Local.IPv4, p.Remote.IPv4
			if tc.v6 {
				local, peer = p.Local.IPv6, p.Remote.IPv6
			}
			conn := netnstest.ListenUDP(t, p.Local.NS, local, dport, "")
			counted := iptablesCounter(t, p.Local, tc.v6, dport)
			before := netnstest.ReadUDPStats(t, p.Local.NS)
			peerBefore := netnstest.ReadUDPStats(t, p.Remote.NS)

			cfg := UDPConfig{Inject: true, Interface: p.Local.Interface, DstAddr: local, SrcAddr: peer, DstPort: dport,
				Packets: count, RatePPS: 20000}
			tc.shape(&cfg)
			g := r.generator(t, cfg)
			if !strings.Contains(g.Flow(), "injected into "+p.Local.Interface+"'s receive path") {
				t.Errorf("flow %q does not say where frames are injected", g.Flow())
			}
			done := make(chan error, 1)
			go func() { done <- g.Run(t.Context()) }()
			buf := make([]byte, 4096)
			for i := range count {
				_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
				if _, err := conn.Read(buf); err != nil {
					t.Fatalf("datagram %d of %d: %v (udp stats %+v)", i+1, count, err, netnstest.ReadUDPStats(t, p.Local.NS))
				}
			}
			if err := <-done; err != nil {
				t.Fatalf("Run: %v", err)
			}
			s, err := g.Stats()
			if err != nil {
				t.Fatal(err)
			}
			if pass := s.Actions[ActionPass].Packets; pass != count || s.Sent().Packets != count || s.Actions[ActionRedirect].Packets != 0 {
				t.Fatalf("engine counted %d passed, %d sent, %d redirected; want %d passed", pass, s.Sent().Packets, s.Actions[ActionRedirect].Packets, count)
			}
			if n := counted(); n != count {
				t.Fatalf("iptables counted %d datagrams, want %d", n, count)
			}
			after := netnstest.ReadUDPStats(t, p.Local.NS)
			if after.InCsumErrors != before.InCsumErrors || after.InErrors != before.InErrors || after.InDatagrams-before.InDatagrams != count {
				t.Fatalf("udp stats before %+v after %+v, want %d more datagrams and no errors", before, after, count)
			}
			if peerAfter := netnstest.ReadUDPStats(t, p.Remote.NS); peerAfter != peerBefore {
				t.Fatalf("the peer saw udp traffic (before %+v after %+v): injected frames left the host", peerBefore, peerAfter)
			}
			t.Logf("%d frames injected, received by the socket and counted by iptables", count)
		})
	}
}

func TestInjectValidation(t *testing.T) {
	dst, src := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	for _, tc := range []struct {
		cfg  UDPConfig
		want string
	}{
		{UDPConfig{Inject: true, DstAddr: dst, SrcAddr: src}, "interface: injection needs the interface whose receive path takes the frames: name it"},
		{UDPConfig{Inject: true, Interface: "eth0", DstAddr: dst}, "src-addr: injected frames need a source address the host accepts frames from"},
		{UDPConfig{Inject: true, Interface: "eth0", DstAddr: dst, SrcAddr: src, Stamp: &Stamp{}}, "interface eth0: injected frames go up the stack without passing the interface's XDP hook"},
	} {
		if _, err := tc.cfg.validated(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("got %v, want an error containing %q", err, tc.want)
		}
	}
}
