package dataplane

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	vnl "github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// sendingHost is what a generator, UDP or TCP, holds of the host it sends from, and gives back when it closes.
type sendingHost struct {
	ifindex int
	ifname  string
	// ns is the network namespace the generator was made in: live frames redirect to an ifindex of the calling
	// thread's namespace, so every worker enters it.
	ns netns.NsHandle
	// links reads the egress interface's counters in ns, from any thread: its sockets were made in ns.
	links *vnl.Handle
	// egress is what was done to the interface so that it transmits redirected frames.
	egress *egress
	// egressAtStart is the interface's counters once it was ready.
	egressAtStart InterfaceCounters
}

// openSendingHost notes the calling thread's network namespace, the one the generator works in, and opens
// netlink sockets there. It calls no setns: that needs CAP_SYS_ADMIN, which agents do not have.
func openSendingHost(t target) (*sendingHost, error) {
	h := &sendingHost{ifindex: t.Ifindex, ifname: t.Link.Attrs().Name, ns: netns.None()}
	var err error
	if h.ns, err = netns.Get(); err != nil {
		return nil, fmt.Errorf("current network namespace: %w", err)
	}
	if h.links, err = vnl.NewHandle(); err != nil {
		h.close()
		return nil, fmt.Errorf("netlink: %w", err)
	}
	return h, nil
}

// readyEgress makes the interface transmit redirected frames (enableRedirectTransmit), attaching pass when the
// driver needs a program, and notes its counters: what the run's egress statistics count from.
func (h *sendingHost) readyEgress(pass *ebpf.Program) error {
	l, err := h.links.LinkByIndex(h.ifindex)
	if err != nil {
		return fmt.Errorf("%s: %w", h.ifname, err)
	}
	if h.egress, err = enableRedirectTransmit(l, pass); err != nil {
		return err
	}
	h.egressAtStart, err = h.egressCounters()
	return err
}

// egressSinceStart is what the interface counted since it was ready.
func (h *sendingHost) egressSinceStart() (InterfaceCounters, error) {
	c, err := h.egressCounters()
	return c.sub(h.egressAtStart), err
}

func (h *sendingHost) egressCounters() (InterfaceCounters, error) {
	l, err := h.links.LinkByIndex(h.ifindex)
	if err != nil {
		return InterfaceCounters{}, fmt.Errorf("read %s counters: %w", h.ifname, err)
	}
	st := l.Attrs().Statistics
	if st == nil {
		return InterfaceCounters{}, nil
	}
	return InterfaceCounters{TxPackets: st.TxPackets, TxBytes: st.TxBytes, TxDropped: st.TxDropped}, nil
}

// closeGenerator is a generator's Close: it releases the generator's BPF objects once (setting *objs to nil) and
// what its host holds.
func closeGenerator[T any, P interface {
	*T
	Close() error
}](objs *P, h *sendingHost) error {
	var errs []error
	if *objs != nil {
		errs = append(errs, (*objs).Close())
		*objs = nil
	}
	return errors.Join(append(errs, h.close())...)
}

// close undoes what was done to the interface and releases the sockets and the namespace. Safe on nil and twice.
func (h *sendingHost) close() error {
	if h == nil {
		return nil
	}
	var errs []error
	if h.egress != nil {
		errs = append(errs, h.egress.close())
		h.egress = nil
	}
	if h.links != nil {
		h.links.Close()
		h.links = nil
	}
	if h.ns.IsOpen() {
		errs = append(errs, h.ns.Close())
		h.ns = netns.None()
	}
	return errors.Join(errs...)
}
