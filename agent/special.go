package agent

import (
	"context"
	"fmt"
	"net"
	"net/netip"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/xdpgen/xdpgen/agent/dataplane"
	xdpgenv1alpha1 "github.com/xdpgen/xdpgen/api/v1alpha1"
)

// specialAddress says why the spec aims its frames at more than one unicast host, or at the node itself or its
// metadata service: the first of its destination address (broadcast, multicast, loopback, link-local or
// unspecified: not global unicast), destination MAC and source MAC (group addresses) that is special, by its spec
// path and kind; "" when none is. These are the rules of the ValidatingAdmissionPolicy
// xdpgen-trafficgenerator-policy (config/policy), checked again on the node for a spec that reached the API server
// without them (the policy deleted, admission bypassed).
func specialAddress(spec *xdpgenv1alpha1.TrafficGeneratorSpec) string {
	if dst, err := netip.ParseAddr(spec.Destination.Address); err == nil && !dst.Unmap().IsGlobalUnicast() {
		return fmt.Sprintf("spec.destination.address %s is %s", spec.Destination.Address, addressKind(dst.Unmap()))
	}
	if a, ok := specialInRange(spec.Destination.AddressRange); ok {
		return fmt.Sprintf("spec.destination.addressRange %s holds %s, %s", spec.Destination.AddressRange, a, addressKind(a))
	}
	if groupMAC(spec.Destination.MAC) {
		return fmt.Sprintf("spec.destination.mac %s is a group (broadcast or multicast) MAC address, which every host of the link takes", spec.Destination.MAC)
	}
	if groupMAC(spec.Source.MAC) {
		return fmt.Sprintf("spec.source.mac %s is a group (broadcast or multicast) MAC address, which no host sends from", spec.Source.MAC)
	}
	return ""
}

// specialBlocks are the addresses that are not global unicast.
var specialBlocks = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/32"), netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("169.254.0.0/16"),
	netip.MustParsePrefix("224.0.0.0/3"), // multicast, and 240/4 up to the broadcast address
	netip.MustParsePrefix("::/127"), netip.MustParsePrefix("fe80::/10"), netip.MustParsePrefix("ff00::/8"),
}

// specialInRange is the first address of a destination range (as the engine reads it) that is not global unicast.
func specialInRange(s string) (netip.Addr, bool) {
	if s == "" {
		return netip.Addr{}, false
	}
	r, err := dataplane.ParseAddrRange(dataplane.FieldDstRange, s)
	if err != nil {
		return netip.Addr{}, false // the engine refuses it
	}
	for _, b := range specialBlocks {
		if a, ok := r.FirstIn(b); ok {
			return a, true
		}
	}
	return netip.Addr{}, false
}

// addressKind names what an address that is not global unicast is, as the admission policy does.
func addressKind(a netip.Addr) string {
	switch {
	case a.IsLoopback():
		return "a loopback address, the node itself"
	case a.IsLinkLocalUnicast():
		return "a link-local address (169.254.0.0/16 or fe80::/10, where 169.254.169.254 is the cloud metadata service)"
	case a.IsUnspecified():
		return "the unspecified address"
	case a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return "the broadcast address, every host of the link"
	}
	return "a multicast address, every host of the group"
}

// groupMAC says whether mac is a group address: the low bit of its first
// octet is set. Broadcast ff:ff:ff:ff:ff:ff is one.
func groupMAC(mac string) bool {
	m, err := net.ParseMAC(mac)
	return err == nil && len(m) > 0 && m[0]&1 == 1
}

// refuseSpecialAddresses returns an error naming the special address of the generator's spec, unless there is
// none or the TrafficGeneratorPolicy of the generator's namespace allows special addresses. A namespace without a
// policy, or a policy the agent cannot read, allows none: the run fails on the node instead of sending.
func refuseSpecialAddresses(ctx context.Context, c client.Reader, tg *xdpgenv1alpha1.TrafficGenerator) error {
	why := specialAddress(&tg.Spec)
	if why == "" {
		return nil
	}
	key := client.ObjectKey{Namespace: tg.Namespace, Name: xdpgenv1alpha1.DefaultPolicyName}
	var policy xdpgenv1alpha1.TrafficGeneratorPolicy
	switch err := c.Get(ctx, key, &policy); {
	case err == nil && policy.Spec.AllowSpecialAddresses:
		return nil
	case err == nil:
		return fmt.Errorf("%s: TrafficGeneratorPolicy %s does not allow special addresses, so this node sends nothing; "+
			"send to a unicast address and MAC, or ask an admin to set allowSpecialAddresses: true", why, key)
	case apierrors.IsNotFound(err):
		return fmt.Errorf("%s: namespace %s has no TrafficGeneratorPolicy %s allowing special addresses, so this node "+
			"sends nothing; send to a unicast address and MAC, or ask an admin to create one with allowSpecialAddresses: true",
			why, tg.Namespace, xdpgenv1alpha1.DefaultPolicyName)
	default:
		return fmt.Errorf("%s, and the agent cannot read TrafficGeneratorPolicy %s to see whether it is allowed (%w), so "+
			"this node sends nothing", why, key, err)
	}
}
