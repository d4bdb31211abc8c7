package dataplane

import (
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
)

// EgressInterface names the interface that frames to dst leave through when a run names none: the route's, or
// the device under the route's VLAN device (where the generator sends tagged frames). A Receiver that times a
// run's round trips goes there. It looks in the calling thread's network namespace.
func EgressInterface(dst netip.Addr) (string, error) {
	routes, err := netlink.RouteGet(dst.AsSlice())
	if err != nil || len(routes) == 0 {
		return "", fieldError(FieldDstAddr, dst, "no route to it (%v): add a route, or give the interface", err)
	}
	link, err := egressLink("", routes[0].LinkIndex)
	if err != nil {
		return "", err
	}
	if v, ok := link.(*netlink.Vlan); ok {
		if link, err = netlink.LinkByIndex(v.ParentIndex); err != nil {
			return "", fmt.Errorf("parent of %s: %w", v.Name, err)
		}
	}
	return link.Attrs().Name, nil
}

// InterfaceWithAddr names the interface that holds addr, in the calling thread's network namespace: where a
// receiver of frames sent to addr attaches.
func InterfaceWithAddr(addr netip.Addr) (string, error) {
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return "", fmt.Errorf("list addresses: %w", err)
	}
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP); ok && ip.Unmap() == addr {
			link, err := netlink.LinkByIndex(a.LinkIndex)
			if err != nil {
				return "", fmt.Errorf("interface of %s: %w", addr, err)
			}
			return link.Attrs().Name, nil
		}
	}
	return "", fieldError(FieldInterface, addr, "no interface here holds this address: give the interface to receive on")
}
