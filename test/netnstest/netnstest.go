// Package netnstest builds throwaway test hosts: two network namespaces joined by a veth pair, with IPv4,
// IPv6 and an optional VLAN on top. Everything is removed when the test ends, whether it passed or not.
package netnstest

import (
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/netip"
	"os"
	"runtime"
	"testing"

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
	p.Local = Host{NSName: "xdpgen-" + id + "-l", Interface: "xg" + id[:4] + "l",
		IPv4: netip.MustParseAddr("10.200.0.1"), IPv6: netip.MustParseAddr("fd00:200::1")}
	p.Remote = Host{NSName: "xdpgen-" + id + "-r", Interface: "xg" + id[:4] + "r",
		IPv4: netip.MustParseAddr("10.200.0.2"), IPv6: netip.MustParseAddr("fd00:200::2")}
	for _, h := range []*Host{&p.Local, &p.Remote} {
		ns, err := newNamed(h.NSName)
		if err != nil {
			t.Fatalf("create namespace %s: %v", h.NSName, err)
		}
		h.NS = ns
		name := h.NSName
		t.Cleanup(func() {
			ns.Close()
			if err := netns.DeleteNamed(name); err != nil {
				t.Errorf("delete namespace %s: %v", name, err)
			}
		})
	}

	local := handle(t, p.Local.NS)
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: p.Local.Interface}, PeerName: p.Remote.Interface,
		PeerNamespace: netlink.NsFd(p.Remote.NS)}
	if opts.Queues > 0 {
		veth.NumTxQueues, veth.NumRxQueues = opts.Queues, opts.Queues
		veth.PeerNumTxQueues, veth.PeerNumRxQueues = uint32(opts.Queues), uint32(opts.Queues)
	}
	if err := local.LinkAdd(veth); err != nil {
		t.Fatalf("create veth pair: %v", err)
	}
	for _, h := range []*Host{&p.Local, &p.Remote} {
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

	return p
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
