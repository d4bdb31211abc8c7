// Package netnstest builds throwaway test hosts: two network namespaces joined by a veth pair, with IPv4,
// IPv6 and an optional VLAN on top. Everything is removed when the test ends, whether it passed or not.
package netnstest

import (
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"github.com/xdpgen/xdpgen/agent/dataplane/netnsthread"
	"golang.org/x/sys/unix"
)

// RequirePrivileges skips the test when it cannot create namespaces and load BPF, unless
// XDPGEN_REQUIRE_PRIVILEGED=1 is set (as in CI), which turns the skip into a failure.
func RequirePrivileges(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("XDPGEN_REQUIRE_PRIVILEGED") == "1" {
		t.Fatal("XDPGEN_REQUIRE_PRIVILEGED=1 but not running as root: run the tests as root")
	}
	t.Skip("needs root for network namespaces and BPF (set XDPGEN_REQUIRE_PRIVILEGED=1 to make this a failure)")
}

// Host is one end: a network namespace and its veth.
type Host struct {
	NS        netns.NsHandle
	NSName    string
	Interface string
	MAC       net.HardwareAddr
	IPv4      netip.Addr
	IPv6      netip.Addr
}

// Pair is two hosts joined by a veth pair.
type Pair struct {
	Local, Remote Host
}

// Options shape a Pair.
type Options struct {
	// Queues sets both veths' RX and TX queue counts: a veth hands redirected frames to the peer queue
	// picked by the sending CPU, so one queue means every sender shares one ring.
	Queues int
}

// NewPair makes the two namespaces and the veth pair, and registers their removal with t.Cleanup.
func NewPair(t testing.TB, opts Options) *Pair {
	t.Helper()
	RequirePrivileges(t)
	id := randomID()
	p := &Pair{}
	p.Local = newHost(t, "xdpgen-"+id+"-l", "xg"+id[:4]+"l", "10.200.0.1", "fd00:200::1")
	p.Remote = newHost(t, "xdpgen-"+id+"-r", "xg"+id[:4]+"r", "10.200.0.2", "fd00:200::2")
	join(t, &p.Local, &p.Remote, opts)
	return p
}

// newHost makes a named namespace for a host whose veth will be ifname with addresses v4/24 and v6/64, and
// registers the namespace's removal.
func newHost(t testing.TB, nsName, ifname, v4, v6 string) Host {
	t.Helper()
	h := Host{NSName: nsName, Interface: ifname, IPv4: netip.MustParseAddr(v4), IPv6: netip.MustParseAddr(v6)}
	ns, err := newNamed(nsName)
	if err != nil {
		t.Fatalf("create namespace %s: %v", nsName, err)
	}
	h.NS = ns
	t.Cleanup(func() {
		ns.Close()
		if err := netns.DeleteNamed(nsName); err != nil {
			t.Errorf("delete namespace %s: %v", nsName, err)
		}
	})
	return h
}

// join makes the veth pair between a and b (each end named and addressed as its host says, in its host's
// namespace), brings both ends and each namespace's loopback up, and notes the ends' MACs.
func join(t testing.TB, a, b *Host, opts Options) {
	t.Helper()
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: a.Interface}, PeerName: b.Interface,
		PeerNamespace: netlink.NsFd(b.NS)}
	if opts.Queues > 0 {
		veth.NumTxQueues, veth.NumRxQueues = opts.Queues, opts.Queues
		veth.PeerNumTxQueues, veth.PeerNumRxQueues = uint32(opts.Queues), uint32(opts.Queues)
	}
	if err := handle(t, a.NS).LinkAdd(veth); err != nil {
		t.Fatalf("create veth pair %s-%s: %v", a.Interface, b.Interface, err)
	}
	for _, h := range []*Host{a, b} {
		nh := handle(t, h.NS)
		link, err := nh.LinkByName(h.Interface)
		if err != nil {
			t.Fatalf("find %s: %v", h.Interface, err)
		}
		h.MAC = link.Attrs().HardwareAddr
		addAddrs(t, nh, link, h.IPv4, h.IPv6)
		up(t, nh, link)
		if lo, err := nh.LinkByName("lo"); err == nil {
			up(t, nh, lo)
		}
	}
	for _, h := range []*Host{a, b} {
		waitIPv6Local(t, handle(t, h.NS), *h)
	}
}

// waitIPv6Local waits until the host routes its own IPv6 address locally. The kernel brings the address up
// from a work queue once the link has a carrier, even without duplicate address detection, and later still
// while namespaces are being torn down; until then the host's own connections to it go out the veth (a
// neighbour solicitation for its own address) and fail with "no route to host".
func waitIPv6Local(t testing.TB, nh *netlink.Handle, h Host) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		routes, err := nh.RouteGet(h.IPv6.AsSlice())
		if err == nil && len(routes) > 0 && routes[0].Type == unix.RTN_LOCAL {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s is not routed locally in %s after 5s: %v %v", h.IPv6, h.NSName, routes, err)
		}
	}
}

// Do runs fn on a thread that is in ns, and waits for it.
func Do(ns netns.NsHandle, fn func() error) error {
	return netnsthread.Do(ns, fn)
}

func newNamed(name string) (netns.NsHandle, error) {
	var ns netns.NsHandle
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // NewNamed moves the thread into the new namespace: let it die
		var err error
		ns, err = netns.NewNamed(name)
		errc <- err
	}()
	return ns, <-errc
}

func handle(t testing.TB, ns netns.NsHandle) *netlink.Handle {
	t.Helper()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatalf("netlink handle: %v", err)
	}
	t.Cleanup(h.Close)
	return h
}

func addAddrs(t testing.TB, h *netlink.Handle, link netlink.Link, v4, v6 netip.Addr) {
	t.Helper()
	for _, a := range []struct {
		ip   netip.Addr
		bits int
	}{{v4, 24}, {v6, 64}} {
		prefix := netip.PrefixFrom(a.ip, a.bits)
		addr := &netlink.Addr{IPNet: &net.IPNet{IP: a.ip.AsSlice(), Mask: net.CIDRMask(a.bits, a.ip.BitLen())}}
		if a.ip.Is6() {
			addr.Flags = unix.IFA_F_NODAD // usable at once, no duplicate-address detection delay
		}
		if err := h.AddrAdd(link, addr); err != nil {
			t.Fatalf("add %s to %s: %v", prefix, link.Attrs().Name, err)
		}
	}
}

func up(t testing.TB, h *netlink.Handle, link netlink.Link) {
	t.Helper()
	if err := h.LinkSetUp(link); err != nil {
		t.Fatalf("set %s up: %v", link.Attrs().Name, err)
	}
}

func randomID() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// RequireCommand skips the test when a command it drives (a real peer such as iperf3) is not installed, unless
// XDPGEN_REQUIRE_PRIVILEGED=1 is set (as in CI, which installs them), which turns the skip into a failure.
func RequireCommand(t testing.TB, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err == nil {
		return
	}
	if os.Getenv("XDPGEN_REQUIRE_PRIVILEGED") == "1" {
		t.Fatalf("XDPGEN_REQUIRE_PRIVILEGED=1 but %s is not installed: install it (.ci/run does)", name)
	}
	t.Skipf("needs %s (set XDPGEN_REQUIRE_PRIVILEGED=1 to make this a failure)", name)
}
