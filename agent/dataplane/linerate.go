package dataplane

import (
	"fmt"
	"math"

	"github.com/mdlayher/ethtool"
	"github.com/vishvananda/netlink"
)

// lineRate is the link's speed in bits per second, as its driver reports it through ethtool, for a rate given as
// a percentage of it. It works in the calling thread's network namespace.
func lineRate(link netlink.Link) (float64, error) {
	name := link.Attrs().Name
	if link.Type() == "veth" {
		// Every veth reports 10000 Mb/s: a constant of the driver, not what the pair can carry.
		return 0, fieldError(FieldRate, nil, "a percentage of the line rate needs the link speed, and %s is a veth, whose speed is a nominal constant of the driver: give the rate in packets/s or bits/s", name)
	}
	c, err := ethtool.New()
	if err != nil {
		return 0, fmt.Errorf("ethtool for the line rate of %s: %w", name, err)
	}
	defer c.Close()
	mode, err := c.LinkMode(ethtool.Interface{Index: link.Attrs().Index})
	if err != nil {
		return 0, fieldError(FieldRate, nil, "a percentage of the line rate needs the link speed, and %s reports none (%v): give the rate in packets/s or bits/s", name, err)
	}
	// SPEED_UNKNOWN is (u32)-1: drivers of virtual interfaces, and links that are down, report it.
	if mode.SpeedMegabits <= 0 || mode.SpeedMegabits >= math.MaxUint32 {
		return 0, fieldError(FieldRate, nil, "a percentage of the line rate needs the link speed, and %s reports none (its driver does not know it, or the link is down): give the rate in packets/s or bits/s", name)
	}
	return float64(mode.SpeedMegabits) * 1e6, nil
}
