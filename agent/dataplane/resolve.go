package dataplane

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// targetSpec is what resolveTarget needs of a run's configuration, UDP or TCP. Zero values mean "work it out".
type targetSpec struct {
	Interface        string
	DstMAC, SrcMAC   net.HardwareAddr
	DstAddr, SrcAddr netip.Addr
	VLAN             uint16
	// FrameSize is checked against the interface's MTU and the smallest frame its VLAN allows.
	FrameSize int
	Threads   int
	// CPUs are the CPUs asked for, one per thread; empty: any.
	CPUs []int
	// Inject: the frames go up the interface's own receive path, so they are addressed to its MAC.
	Inject bool
}

// target is a targetSpec made concrete on this host: the egress link, both MACs, the source address, the VLAN
// tag and the CPUs.
type target struct {
	Link           netlink.Link
	Ifindex        int
	SrcMAC, DstMAC net.HardwareAddr
	SrcAddr        netip.Addr
	// VLAN is the tag frames carry (0: none): the spec's, or the VLAN device's when the interface is one.
	VLAN uint16
	// CPUs the workers are pinned to, one each.
	CPUs []int
}

// neighbourTimeout bounds how long a missing neighbour entry may take to resolve.
const neighbourTimeout = 3 * time.Second

// sendConfig is a generator's configuration: checked and defaulted once, and naming where it sends.
type sendConfig[C any] interface {
	validated() (C, error)
	targetSpec() targetSpec
}

// checkedTarget checks and defaults cfg, then resolves its target on this host: what every generator does first.
func checkedTarget[C sendConfig[C]](cfg C) (C, target, error) {
	cfg, err := cfg.validated()
	if err != nil {
		return cfg, target{}, err
	}
	tgt, err := resolveTarget(cfg.targetSpec())
	return cfg, tgt, err
}

// resolveTarget fills in what c leaves to the host: interface, MACs, source address, CPUs; and checks the frame
// against the interface's MTU.
func resolveTarget(c targetSpec) (target, error) {
	routes, err := netlink.RouteGet(c.DstAddr.AsSlice())
	if err != nil || len(routes) == 0 {
		if c.Interface == "" || c.DstMAC == nil || !c.SrcAddr.IsValid() {
			return target{}, fieldError(FieldDstAddr, c.DstAddr, "no route to it (%v): add a route, or give the interface, source address and destination MAC", err)
		}
		routes = []netlink.Route{{}}
	}
	route := routes[0]

	link, err := egressLink(c.Interface, route.LinkIndex)
	if err != nil {
		return target{}, err
	}
	vlan := c.VLAN
	if v, ok := link.(*netlink.Vlan); ok {
		// XDP cannot transmit through a VLAN device: send tagged frames on the device under it instead.
		if vlan != 0 && vlan != uint16(v.VlanId) {
			return target{}, fieldError(FieldVLAN, vlan, "%s is already VLAN %d: give its parent interface, or drop the VLAN", v.Name, v.VlanId)
		}
		vlan = uint16(v.VlanId)
		if link, err = netlink.LinkByIndex(v.ParentIndex); err != nil {
			return target{}, fmt.Errorf("parent of %s: %w", v.Name, err)
		}
	}
	attrs := link.Attrs()

	src := c.SrcMAC
	if src == nil {
		if len(attrs.HardwareAddr) != 6 {
			return target{}, fieldError(FieldInterface, attrs.Name, "has no Ethernet address: use an Ethernet interface, or give the source MAC")
		}
		src = attrs.HardwareAddr
	}

	srcAddr := c.SrcAddr
	if !srcAddr.IsValid() {
		if srcAddr, err = sourceAddress(route, link, c.DstAddr); err != nil {
			return target{}, err
		}
	}

	dst := c.DstMAC
	if dst == nil && c.Inject {
		dst = attrs.HardwareAddr
	}
	if dst == nil {
		if dst, err = resolveNeighbour(route, link, c.DstAddr); err != nil {
			return target{}, err
		}
	}

	if limit := attrs.MTU + ethernetHeaderLen + vlanLen(vlan); c.FrameSize > limit {
		return target{}, fieldError(FieldFrameSize, c.FrameSize, "larger than %s's MTU %d allows: use at most %d bytes, or raise the MTU",
			attrs.Name, attrs.MTU, limit)
	}
	if lo := minFrameSize(c.DstAddr.Is6(), vlan); c.FrameSize < lo {
		return target{}, fieldError(FieldFrameSize, c.FrameSize, "below the smallest VLAN-tagged %s frame: use at least %d bytes", family(c.DstAddr), lo)
	}

	cpus, err := workerCPUs(c.Threads, c.CPUs)
	if err != nil {
		return target{}, err
	}
	return target{Link: link, Ifindex: attrs.Index, SrcMAC: src, DstMAC: dst, SrcAddr: srcAddr, VLAN: vlan, CPUs: cpus}, nil
}

func vlanLen(vlan uint16) int {
	if vlan == 0 {
		return 0
	}
	return vlanTagLen
}

func egressLink(name string, routeIndex int) (netlink.Link, error) {
	if name == "" {
		link, err := netlink.LinkByIndex(routeIndex)
		if err != nil {
			return nil, fieldError(FieldInterface, nil, "the route to the destination names no usable interface (%v): give one", err)
		}
		return link, nil
	}
	link, err := netlink.LinkByName(name)
	if err != nil {
		return nil, fieldError(FieldInterface, name, "no such interface here; these exist: %s", strings.Join(linkNames(), ", "))
	}
	return link, nil
}

func linkNames() []string {
	links, _ := netlink.LinkList()
	names := make([]string, 0, len(links))
	for _, l := range links {
		names = append(names, l.Attrs().Name)
	}
	return names
}

// sourceAddress is the route's preferred source when the route leaves through link (or a VLAN on it), else the
// first global address of the destination's family on link.
func sourceAddress(route netlink.Route, link netlink.Link, dst netip.Addr) (netip.Addr, error) {
	if a, ok := netip.AddrFromSlice(route.Src); ok && sameOrChild(route.LinkIndex, link) {
		return a.Unmap(), nil
	}
	fam := unix.AF_INET
	if dst.Is6() {
		fam = unix.AF_INET6
	}
	addrs, err := netlink.AddrList(link, fam)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("addresses of %s: %w", link.Attrs().Name, err)
	}
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP); ok && ip.IsGlobalUnicast() {
			return ip.Unmap(), nil
		}
	}
	return netip.Addr{}, fieldError(FieldSrcAddr, nil, "%s has no %s address to send from: give a source address", link.Attrs().Name, family(dst))
}

// sameOrChild reports whether the link with index is link itself or a VLAN device on top of it.
func sameOrChild(index int, link netlink.Link) bool {
	if index == link.Attrs().Index {
		return true
	}
	l, err := netlink.LinkByIndex(index)
	if err != nil {
		return false
	}
	v, ok := l.(*netlink.Vlan)
	return ok && v.ParentIndex == link.Attrs().Index
}

const usableNeighbour = netlink.NUD_REACHABLE | netlink.NUD_STALE | netlink.NUD_DELAY | netlink.NUD_PROBE |

	netlink.NUD_PERMANENT | netlink.NUD_NOARP

// resolveNeighbour finds the MAC of the next hop to dst (the route's gateway, or dst itself when on-link) in the
// kernel's neighbour table, asking the kernel to resolve it when the entry is missing or stale.
func resolveNeighbour(route netlink.Route, link netlink.Link, dst netip.Addr) (net.HardwareAddr, error) {
	nextHop, onLink := dst, true
	if gw, ok := netip.AddrFromSlice(route.Gw); ok && sameOrChild(route.LinkIndex, link) {
		nextHop, onLink = gw.Unmap(), false
	}
	index := link.Attrs().Index
	if sameOrChild(route.LinkIndex, link) && route.LinkIndex != 0 {
		index = route.LinkIndex // the neighbour lives on the VLAN device when the route goes through one
	}
	fam := unix.AF_INET
	if nextHop.Is6() {
		fam = unix.AF_INET6
	}

	deadline := time.Now().Add(neighbourTimeout)
	for asked := false; ; asked = true {
		if mac := lookupNeighbour(index, fam, nextHop); mac != nil {
			return mac, nil
		}
		if !asked {
			// NTF_USE makes the kernel start ARP/ND for the entry, as if a packet were waiting for it.
			_ = netlink.NeighSet(&netlink.Neigh{LinkIndex: index, Family: fam, IP: nextHop.AsSlice(),
				State: netlink.NUD_NONE, Flags: netlink.NTF_USE})
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	what := "the destination"
	if !onLink {
		what = "the gateway " + nextHop.String()
	}
	return nil, fieldError(FieldDstMAC, nil, "cannot resolve the MAC of %s on %s: ARP/ND got no answer in %s; check that it is up, or give the destination MAC",
		what, link.Attrs().Name, neighbourTimeout)
}

func lookupNeighbour(index, fam int, ip netip.Addr) net.HardwareAddr {
	neighs, err := netlink.NeighList(index, fam)
	if err != nil {
		return nil
	}
	for _, n := range neighs {
		if a, ok := netip.AddrFromSlice(n.IP); ok && a.Unmap() == ip && n.State&usableNeighbour != 0 && len(n.HardwareAddr) == 6 {
			return n.HardwareAddr
		}
	}
	return nil
}

// AllowedCPUs are the CPUs this process may run on, in order: where workers can be pinned.
func AllowedCPUs() ([]int, error) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return nil, fmt.Errorf("cpu affinity: %w", err)
	}
	var cpus []int
	for cpu := 0; cpu < len(set)*64; cpu++ {
		if set.IsSet(cpu) {
			cpus = append(cpus, cpu)
		}
	}
	return cpus, nil
}

// workerCPUs checks that this process may run on the CPUs asked for, or picks the first n it may run on.
func workerCPUs(n int, asked []int) ([]int, error) {
	allowed, err := AllowedCPUs()
	if err != nil {
		return nil, err
	}
	for _, cpu := range asked {
		if !slices.Contains(allowed, cpu) {
			return nil, fieldError(FieldThreads, asked, "CPU %d is not one this process may run on", cpu)
		}
	}
	if len(asked) > 0 {
		return asked, nil
	}
	if len(allowed) < n {
		return nil, fieldError(FieldThreads, n, "only %d CPUs are available to this process: use at most %d threads", len(allowed), len(allowed))
	}
	return allowed[:n], nil
}
