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

package e2e

import (
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/xdpgen/xdpgen/agent/dataplane"
	"github.com/xdpgen/xdpgen/test/cluster"
	"github.com/xdpgen/xdpgen/test/netnstest"
)

// farHost is a "remote host" for a node: a network namespace behind a veth pair from the node's namespace (the
// root one for the first node), with an XDP program on its end that counts the generator's frames (and lets the
// veth take redirected frames at all). The far host is on the node's own link: the node reaches it without
// anything routing its frames.
type farHost struct {
	nsName        string
	ns            netns.NsHandle
	node          cluster.Node
	nodeIf, farIf string
	nodeIP, farIP netip.Addr
	counter       *dataplane.Receiver
}

// A far host's namespace and the node's end of its veth are named by these and the far host's number.
const (
	farHostNamespacePrefix = "xdpgen-e2e-far"
	farHostLinkPrefix      = "xge2e"
)

// Teardown of far hosts must also happen when TestMain tears down on a signal or a timeout, when test cleanups do
// not run: each registers its removal here too.
var (
	farHostsMu sync.Mutex
	farHosts   = map[string]func(){}
)

func removeFarHosts() {
	farHostsMu.Lock()
	defer farHostsMu.Unlock()
	for name, remove := range farHosts {
		remove()
		delete(farHosts, name)
	}
}

// removeKilledRunsFarHosts removes the far hosts a killed run left: their namespaces, and the first node's ends of
// their veths (another node's ends go with that node's namespace when the killed run's cluster is torn down).
func removeKilledRunsFarHosts() {
	named, _ := filepath.Glob("/run/netns/" + farHostNamespacePrefix + "*")
	for _, p := range named {
		_ = netns.DeleteNamed(filepath.Base(p))
	}
	links, err := netlink.LinkList()
	if err != nil {
		return
	}
	for _, l := range links {
		if strings.HasPrefix(l.Attrs().Name, farHostLinkPrefix) {
			_ = netlink.LinkDel(l)
		}
	}
}

// newFarHost makes far host number index (1-254) of the first node on 10.251.<index>.0/24, counting UDP to ports
// [firstPort, lastPort].
func newFarHost(t *testing.T, index int, firstPort, lastPort uint16) *farHost {
	t.Helper()
	return newFarHostOf(t, env.cluster.Nodes()[0], index, firstPort, lastPort)
}

// newFarHostOf makes far host number index of a node: the same addresses on every node, each node's its own.
func newFarHostOf(t *testing.T, node cluster.Node, index int, firstPort, lastPort uint16) *farHost {
	t.Helper()
	nsName := fmt.Sprintf("%s%d", farHostNamespacePrefix, index)
	if node.Netns != "" {
		nsName += "-" + node.Name
	}
	h := &farHost{
		nsName: nsName,
		node:   node,
		nodeIf: fmt.Sprintf("%s%d", farHostLinkPrefix, index),
		farIf:  "far0",
		nodeIP: netip.AddrFrom4([4]byte{10, 251, byte(index), 1}),
		farIP:  netip.AddrFrom4([4]byte{10, 251, byte(index), 2}),
	}
	nodeNL, err := nodeNetlink(node)
	if err != nil {
		t.Fatalf("the netlink of node %s: %v", node.Name, err)
	}
	var once sync.Once
	remove := func() {
		once.Do(func() {
			if h.counter != nil {
				h.counter.Close()
			}
			if l, err := nodeNL.LinkByName(h.nodeIf); err == nil {
				_ = nodeNL.LinkDel(l)
			}
			nodeNL.Close()
			if h.ns.IsOpen() {
				h.ns.Close()
			}
			_ = netns.DeleteNamed(h.nsName)
		})
	}
	farHostsMu.Lock()
	farHosts[h.nsName] = remove
	farHostsMu.Unlock()
	t.Cleanup(func() {
		farHostsMu.Lock()
		delete(farHosts, h.nsName)
		farHostsMu.Unlock()
		remove()
	})

	_ = netns.DeleteNamed(h.nsName) // left by a killed run
	if l, err := nodeNL.LinkByName(h.nodeIf); err == nil {
		_ = nodeNL.LinkDel(l)
	}
	if h.ns, err = newNamedNS(h.nsName); err != nil {
		t.Fatalf("create namespace %s: %v", h.nsName, err)
	}
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: h.nodeIf}, PeerName: h.farIf, PeerNamespace: netlink.NsFd(h.ns)}
	if err := nodeNL.LinkAdd(veth); err != nil {
		t.Fatalf("create veth pair %s-%s on node %s: %v", h.nodeIf, h.farIf, node.Name, err)
	}
	nodeLink, err := nodeNL.LinkByName(h.nodeIf)
	if err != nil {
		t.Fatal(err)
	}
	addAddr(t, nodeNL, nodeLink, h.nodeIP)
	if err := nodeNL.LinkSetUp(nodeLink); err != nil {
		t.Fatal(err)
	}
	farNL, err := netlink.NewHandleAt(h.ns)
	if err != nil {
		t.Fatal(err)
	}
	defer farNL.Close()
	farLink, err := farNL.LinkByName(h.farIf)
	if err != nil {
		t.Fatal(err)
	}
	addAddr(t, farNL, farLink, h.farIP)
	if err := farNL.LinkSetUp(farLink); err != nil {
		t.Fatal(err)
	}
	if lo, err := farNL.LinkByName("lo"); err == nil {
		_ = farNL.LinkSetUp(lo)
	}
	if err := netnstest.Do(h.ns, func() (err error) {
		h.counter, err = dataplane.AttachReceiver(h.farIf, dataplane.ReceiverOptions{FirstPort: firstPort, LastPort: lastPort})
		return err
	}); err != nil {
		t.Fatalf("attach the receive counter in %s: %v", h.nsName, err)
	}
	return h
}

// nodeNetlink is a netlink handle in a node's network namespace.
func nodeNetlink(node cluster.Node) (*netlink.Handle, error) {
	if node.Netns == "" {
		return netlink.NewHandle()
	}
	ns, err := netns.GetFromPath(node.Netns)
	if err != nil {
		return nil, err
	}
	defer ns.Close()
	return netlink.NewHandleAt(ns)
}

// counts is what arrived on the far end: frames to the counted ports, and all other frames.
func (h *farHost) counts(t *testing.T) (matched, other dataplane.Counter) {
	t.Helper()
	c, err := h.counter.Counts()
	if err != nil {
		t.Fatalf("read the receive counter: %v", err)
	}
	return c.Matched, c.Other
}

func addAddr(t *testing.T, h *netlink.Handle, l netlink.Link, ip netip.Addr) {
	t.Helper()
	a := &netlink.Addr{IPNet: &net.IPNet{IP: ip.AsSlice(), Mask: net.CIDRMask(24, 32)}}
	if err := h.AddrAdd(l, a); err != nil {
		t.Fatalf("add %s to %s: %v", ip, l.Attrs().Name, err)
	}
}

// newNamedNS makes a named network namespace without moving the calling goroutine's thread into it.
func newNamedNS(name string) (netns.NsHandle, error) {
	type result struct {
		ns  netns.NsHandle
		err error
	}
	c := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // NewNamed moves this thread into the namespace: it dies with the goroutine
		ns, err := netns.NewNamed(name)
		c <- result{ns, err}
	}()
	r := <-c
	return r.ns, r.err
}

// xdpAttached lists the interfaces of the node's (root) namespace that have an XDP program attached.
func xdpAttached(t *testing.T) []string {
	t.Helper()
	links, err := netlink.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range links {
		if x := l.Attrs().Xdp; x != nil && x.Attached {
			out = append(out, fmt.Sprintf("%s (prog id %d)", l.Attrs().Name, x.ProgId))
		}
	}
	return out
}
