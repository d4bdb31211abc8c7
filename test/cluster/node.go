/*
Copyright 2026 The xdpgen Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package cluster

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// devicePluginsDir is where every kubelet puts its device-plugin registration socket, whatever its root dir.
const devicePluginsDir = "/var/lib/kubelet/device-plugins"

// Node is one node of the cluster: a kubelet and its containerd. The first node runs in the host's namespaces;
// the second in a network namespace of its own joined to the host by a veth (no default route: nothing it sends
// leaves the machine), a private mount namespace and a cgroup of its own (/<name> in every hierarchy), and reaches
// the API server through a loopback proxy on its own 127.0.0.1.
type Node struct {
	Name string `json:"name"`
	// Netns is the path of the node's network namespace; "" for the first node. It is a file of the run folder,
	// not of /run/netns: `ip netns add` bind-mounts /run/netns over itself, which would hide a namespace mounted
	// there before and leave it busy at teardown.
	Netns string `json:"netns,omitempty"`
	// IP is the node's InternalIP, where its kubelet serves; "" on a single-node cluster (the kubelet picks one
	// and serves on 127.0.0.1).
	IP string `json:"ip,omitempty"`
	// HostLink and HostIP are the host's side of the node's veth (the node's side is eth0); "" for the first node.
	HostLink string `json:"hostLink,omitempty"`
	HostIP   string `json:"hostIP,omitempty"`
	// PodCIDR is the /24 of the node's CNI bridge.
	PodCIDR string `json:"podCIDR"`
}

// nodes lays out the cluster's nodes from its options.
func nodes(o Options) ([]Node, error) {
	if o.Nodes < 1 || o.Nodes > 2 {
		return nil, fmt.Errorf("%d nodes: the local cluster has one or two", o.Nodes)
	}
	first := Node{Name: o.NodeName, PodCIDR: o.PodCIDR}
	if o.Nodes == 1 {
		return []Node{first}, nil
	}
	second, err := nextSubnet(o.PodCIDR)
	if err != nil {
		return nil, err
	}
	first.IP = nodeLinkHostIP
	return []Node{first, {
		Name:     secondNodeName,
		Netns:    paths{o.Dir}.join("nodes", secondNodeName, "netns"),
		IP:       nodeLinkNodeIP,
		HostLink: "xdpgen-" + secondNodeName,
		HostIP:   nodeLinkHostIP,
		PodCIDR:  second,
	}}, nil
}

// nextSubnet is the prefix of the same length right after cidr's (10.244.1.0/24 after 10.244.0.0/24).
func nextSubnet(cidr string) (string, error) {
	p, err := netip.ParsePrefix(cidr)
	if err != nil || !p.Addr().Is4() {
		return "", fmt.Errorf("pod CIDR %q: want an IPv4 prefix", cidr)
	}
	a := p.Masked().Addr().As4()
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	v += 1 << (32 - p.Bits())
	next := netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
	return netip.PrefixFrom(next, p.Bits()).String(), nil
}

// Nodes are the cluster's nodes, the first one first.
func (c *Cluster) Nodes() []Node { return c.st.Nodes }

// nodePaths are a node's own files: the first node's are the run folder's, the others' in nodes/<name>.
func (c *Cluster) nodePaths(n Node) paths {
	if n.Netns == "" {
		return c.paths
	}
	return paths{c.paths.join("nodes", n.Name)}
}

// nodeComponent is the name under which a node's component is recorded and logged: the component's own for the
// first node (kubelet), prefixed with the node's name for the others (node2-kubelet).
func nodeComponent(n Node, component string) string {
	if n.Netns == "" {
		return component
	}
	return n.Name + "-" + component
}

// nodeCert is the name of a node's certificate (and kubeconfig): as nodeComponent.
func nodeCert(n Node, name string) string { return nodeComponent(n, name) }

// node finds a node by name.
func (c *Cluster) node(name string) (Node, error) {
	for _, n := range c.st.Nodes {
		if n.Name == name {
			return n, nil
		}
	}
	return Node{}, fmt.Errorf("no node %q in this cluster", name)
}

// setUpNodeHost makes what a node after the first needs on the host before its containerd starts: its network
// namespace and veth, its cgroup in every hierarchy, the device-plugins folder its mount namespace covers.
// Leftovers of a harness killed before it recorded anything are removed first.
func (c *Cluster) setUpNodeHost(n Node) error {
	if err := removeNodeHost(n); err != nil {
		return err
	}
	if err := os.MkdirAll(devicePluginsDir, 0o755); err != nil {
		return err
	}
	if err := os.MkdirAll(c.nodePaths(n).devicePlugins(), 0o755); err != nil {
		return err
	}
	if err := makeNodeCgroups(n.Name); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(n.Netns), 0o755); err != nil {
		return err
	}
	// unshare keeps the namespace by bind-mounting it on the file; a new thread of ours would do the same with more code.
	if err := os.WriteFile(n.Netns, nil, 0o444); err != nil {
		return err
	}
	if out, err := exec.Command("unshare", "--net="+n.Netns, "true").CombinedOutput(); err != nil {
		return fmt.Errorf("create network namespace %s: %w: %s", n.Netns, err, strings.TrimSpace(string(out)))
	}
	ns, err := netns.GetFromPath(n.Netns)
	if err != nil {
		return err
	}
	defer ns.Close()
	if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: n.HostLink}, PeerName: "eth0",
		PeerNamespace: netlink.NsFd(ns)}); err != nil {
		return fmt.Errorf("create veth %s: %w", n.HostLink, err)
	}
	host, err := netlink.LinkByName(n.HostLink)
	if err != nil {
		return err
	}
	if err := linkUpWithAddr(nil, host, n.HostIP); err != nil {
		return err
	}
	// The agent's redirected frames arrive as GRO packets: a veth without GRO (or an XDP program) drops them.
	if out, err := exec.Command("ethtool", "-K", n.HostLink, "gro", "on").CombinedOutput(); err != nil {
		return fmt.Errorf("ethtool -K %s gro on: %w: %s", n.HostLink, err, strings.TrimSpace(string(out)))
	}
	nh, err := netlink.NewHandleAt(ns)
	if err != nil {
		return err
	}
	defer nh.Close()
	eth0, err := nh.LinkByName("eth0")
	if err != nil {
		return err
	}
	if err := linkUpWithAddr(nh, eth0, n.IP); err != nil {
		return err
	}
	lo, err := nh.LinkByName("lo")
	if err != nil {
		return err
	}
	return nh.LinkSetUp(lo)
}

// linkUpWithAddr gives a link ip on the node link's /24 and sets it up; h nil means the host's namespace.
func linkUpWithAddr(h *netlink.Handle, l netlink.Link, ip string) error {
	if h == nil {
		h = &netlink.Handle{}
	}
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: net.ParseIP(ip), Mask: net.CIDRMask(nodeLinkPrefix, 32)}}
	if err := h.AddrAdd(l, addr); err != nil {
		return fmt.Errorf("add %s to %s: %w", ip, l.Attrs().Name, err)
	}
	if err := h.LinkSetUp(l); err != nil {
		return fmt.Errorf("set %s up: %w", l.Attrs().Name, err)
	}
	return nil
}

// makeNodeCgroups creates /<name> in every cgroup v1 hierarchy, which the kubelet requires of its cgroupRoot;
// cpuset's needs its cpus and mems before any task may join it.
func makeNodeCgroups(name string) error {
	mounts, err := cgroupMounts()
	if err != nil {
		return err
	}
	for _, m := range mounts {
		if _, err := os.Stat(filepath.Join(m, "cgroup.controllers")); err == nil {
			continue // the cgroup v2 hierarchy: the kubelet uses v1 here
		}
		dir := filepath.Join(m, name)
		if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return err
		}
		for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
			b, err := os.ReadFile(filepath.Join(m, f))
			if err != nil {
				continue // not the cpuset hierarchy
			}
			if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
				return fmt.Errorf("%s: %w", filepath.Join(dir, f), err)
			}
		}
	}
	return nil
}

// removeNodeHost removes a node's network namespace (its end of the veth goes with it) and the host's end of the
// veth. Its cgroups and folders go with the others' (hostState). Nothing there is no error.
func removeNodeHost(n Node) error {
	errs := []error{removeLink(n.HostLink)}
	if err := unix.Unmount(n.Netns, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		errs = append(errs, fmt.Errorf("unmount %s: %w", n.Netns, err))
	}
	if err := os.Remove(n.Netns); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
