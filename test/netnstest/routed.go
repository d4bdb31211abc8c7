package netnstest

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Routed is three hosts in a line, Sender - Router - Receiver, each link a veth pair: the router forwards IPv4
// and IPv6 between its two veths, and the sender and the receiver route the other's subnet through it.
type Routed struct {
	Sender, Receiver Host
	// RouterIn faces the sender, RouterOut the receiver; both are in the router's namespace.
	RouterIn, RouterOut Host
}

// NewRouted makes the three namespaces, the two veth pairs, the routes and the router's forwarding, and
// registers their removal with t.Cleanup. Every host knows its neighbours' MACs (permanent entries), so no
// address resolution delays the first frames.
func NewRouted(t testing.TB, opts Options) *Routed {
	t.Helper()
	RequirePrivileges(t)
	id := randomID()
	r := &Routed{}
	r.Sender = newHost(t, "xdpgen-"+id+"-s", "xg"+id[:4]+"s", "10.201.0.1", "fd00:201::1")
	r.RouterIn = newHost(t, "xdpgen-"+id+"-f", "xg"+id[:4]+"a", "10.201.0.2", "fd00:201::2")
	r.RouterOut = r.RouterIn
	r.RouterOut.Interface, r.RouterOut.IPv4, r.RouterOut.IPv6 = "xg"+id[:4]+"b", netip.MustParseAddr("10.202.0.1"), netip.MustParseAddr("fd00:202::1")
	r.Receiver = newHost(t, "xdpgen-"+id+"-r", "xg"+id[:4]+"r", "10.202.0.2", "fd00:202::2")
	join(t, &r.Sender, &r.RouterIn, opts)
	join(t, &r.RouterOut, &r.Receiver, opts)
	KnowEachOther(t, r.Sender, r.RouterIn)
	KnowEachOther(t, r.RouterOut, r.Receiver)
	route(t, r.Sender, r.Receiver, r.RouterIn)
	route(t, r.Receiver, r.Sender, r.RouterOut)
	forward(t, r.RouterIn)
	return r
}

// route sends from's traffic to to's subnets (/24 and /64) through the gateway via.
func route(t testing.TB, from, to, via Host) {
	t.Helper()
	nh := handle(t, from.NS)
	link, err := nh.LinkByName(from.Interface)
	if err != nil {
		t.Fatalf("find %s: %v", from.Interface, err)
	}
	for _, r := range []struct {
		dst, gw netip.Addr
		bits    int
	}{{to.IPv4, via.IPv4, 24}, {to.IPv6, via.IPv6, 64}} {
		dst := netip.PrefixFrom(r.dst, r.bits).Masked()
		rt := &netlink.Route{LinkIndex: link.Attrs().Index, Gw: r.gw.AsSlice(),
			Dst: &net.IPNet{IP: dst.Addr().AsSlice(), Mask: net.CIDRMask(r.bits, r.dst.BitLen())}}
		if err := nh.RouteAdd(rt); err != nil {
			t.Fatalf("route %s via %s in %s: %v", dst, r.gw, from.NSName, err)
		}
	}
}

// KnowEachOther gives each of two hosts on one link a permanent neighbour entry for the other's addresses:
// IPv6 neighbour discovery waits for the link-local address's duplicate address detection (about two
// seconds), which has nothing to do with what the tests look at.
func KnowEachOther(t testing.TB, a, b Host) {
	t.Helper()
	for _, ends := range [][2]Host{{a, b}, {b, a}} {
		here, there := ends[0], ends[1]
		nh := handle(t, here.NS)
		link, err := nh.LinkByName(here.Interface)
		if err != nil {
			t.Fatalf("find %s: %v", here.Interface, err)
		}
		for _, addr := range []netip.Addr{there.IPv4, there.IPv6} {
			fam := unix.AF_INET
			if addr.Is6() {
				fam = unix.AF_INET6
			}
			if err := nh.NeighSet(&netlink.Neigh{LinkIndex: link.Attrs().Index, Family: fam, State: netlink.NUD_PERMANENT,
				IP: addr.AsSlice(), HardwareAddr: there.MAC}); err != nil {
				t.Fatalf("neighbour %s in %s: %v", addr, here.NSName, err)
			}
		}
	}
}

// SetGRO turns GRO on the host's veth on or off (with ethtool, which netlink does not replace here). A veth
// with GRO on receives redirected frames without an XDP program, and coalesces TCP segments in place.
func (h Host) SetGRO(t testing.TB, on bool) {
	t.Helper()
	state := "off"
	if on {
		state = "on"
	}
	out, err := exec.Command("ip", "netns", "exec", h.NSName, "ethtool", "-K", h.Interface, "gro", state).CombinedOutput()
	if err != nil {
		t.Fatalf("ethtool -K %s gro %s in %s: %v: %s", h.Interface, state, h.NSName, err, out)
	}
}

// Fanout is a sender behind a router with several receivers behind it, each on its own link: Sender -
// Router - Receivers[i]. The router forwards IPv4 and IPv6; the sender routes every receiver's subnet through
// it, each receiver the sender's.
type Fanout struct {
	Sender Host
	// RouterIn faces the sender, RouterOut[i] receiver i; all are in the router's namespace.
	RouterIn  Host
	RouterOut []Host
	Receivers []Host
}

// NewFanout makes the namespaces, veth pairs, routes and forwarding for n receivers (at most 9), and registers
// their removal with t.Cleanup. As in NewRouted, neighbours know each other's MACs.
func NewFanout(t testing.TB, n int, opts Options) *Fanout {
	t.Helper()
	RequirePrivileges(t)
	id := randomID()
	f := &Fanout{}
	f.Sender = newHost(t, "xdpgen-"+id+"-s", "xg"+id[:4]+"s", "10.201.0.1", "fd00:201::1")
	f.RouterIn = newHost(t, "xdpgen-"+id+"-f", "xg"+id[:4]+"a", "10.201.0.2", "fd00:201::2")
	join(t, &f.Sender, &f.RouterIn, opts)
	KnowEachOther(t, f.Sender, f.RouterIn)
	for i := range n {
		out, rcv := routerLink(t, f.RouterIn, id, "r", 210+i, i, opts)
		route(t, f.Sender, rcv, f.RouterIn)
		route(t, rcv, f.Sender, out)
		f.RouterOut = append(f.RouterOut, out)
		f.Receivers = append(f.Receivers, rcv)
	}
	forward(t, f.RouterIn)
	return f
}

// routerLink makes host i (kind, "r" for a receiver or "h" for a host, goes into its names) in a namespace of its
// own and a veth from the router's namespace (the router's port p<i>) to it on subnet 10.<subnet>.0.0/24 and fd00:<subnet>::/64, the router's end
// .1 and the host's .2, neighbours knowing each other's MACs. It returns the router's end and the host.
func routerLink(t testing.TB, router Host, id, kind string, subnet, i int, opts Options) (Host, Host) {
	t.Helper()
	end := router
	end.Interface = fmt.Sprintf("xg%sp%d", id[:4], i)
	end.IPv4 = netip.MustParseAddr(fmt.Sprintf("10.%d.0.1", subnet))
	end.IPv6 = netip.MustParseAddr(fmt.Sprintf("fd00:%d::1", subnet))
	host := newHost(t, fmt.Sprintf("xdpgen-%s-%s%d", id, kind, i), fmt.Sprintf("xg%s%s%d", id[:4], kind, i),
		fmt.Sprintf("10.%d.0.2", subnet), fmt.Sprintf("fd00:%d::2", subnet))
	join(t, &end, &host, opts)
	KnowEachOther(t, end, host)
	return end, host
}

// forward turns on IPv4 and IPv6 forwarding in the router's namespace.
func forward(t testing.TB, router Host) {
	t.Helper()
	err := Do(router.NS, func() error {
		for _, knob := range []string{"/proc/sys/net/ipv4/ip_forward", "/proc/sys/net/ipv6/conf/all/forwarding"} {
			if err := os.WriteFile(knob, []byte("1"), 0); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("turn on forwarding in %s: %v", router.NSName, err)
	}
}

// Star is hosts that all reach each other through one router, each on its own link: Hosts[i] - Router -
// Hosts[j]. It stands for the nodes of a cluster on one network: each host routes every other host's subnet
// through the router, which forwards IPv4 and IPv6.
type Star struct {
	Hosts []Host
	// Ports[i] is the router's end of host i's link, in the router's namespace.
	Ports []Host
}

// NewStar makes the namespaces, veth pairs, routes and forwarding for n hosts (at most 9), and registers their
// removal with t.Cleanup. As in NewRouted, neighbours know each other's MACs.
func NewStar(t testing.TB, n int, opts Options) *Star {
	t.Helper()
	RequirePrivileges(t)
	id := randomID()
	s := &Star{}
	router := newHost(t, "xdpgen-"+id+"-x", "", "10.219.0.1", "fd00:219::1") // addresses only on its ports
	for i := range n {
		port, host := routerLink(t, router, id, "h", 220+i, i, opts)
		s.Ports = append(s.Ports, port)
		s.Hosts = append(s.Hosts, host)
	}
	for i, from := range s.Hosts {
		for j, to := range s.Hosts {
			if i != j {
				route(t, from, to, s.Ports[i])
			}
		}
	}
	forward(t, router)
	return s
}
