package dataplane

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	vnl "github.com/vishvananda/netlink"
)

// egress is what was done to an interface so that it transmits redirected frames, undone by close.
type egress struct {
	// features is the interface's XDP feature set once ready; nil when the kernel does not report it.
	features *XDPFeatures
	// needsProgram: the driver transmits redirected frames only while an XDP program is attached.
	needsProgram bool
	// passLink is the pass program attached for the run. A BPF link, so the kernel detaches it when the last
	// file descriptor closes, even if this process dies.
	passLink link.Link
}

// enableRedirectTransmit makes sure l transmits redirected frames (ndo_xdp_xmit). Drivers that want an XDP
// program attached get a pass program; a veth cannot be fixed from this side, because what it needs is on its peer.
func enableRedirectTransmit(l vnl.Link, pass *ebpf.Program) (*egress, error) {
	attrs := l.Attrs()
	have, err := xdpFeatures(attrs.Index)
	if errors.Is(err, errFeaturesUnknown) {
		return &egress{}, nil
	}
	if err != nil {
		return nil, err
	}
	if have&XDPNdoXmit != 0 {
		return &egress{features: &have}, nil
	}
	if l.Type() == "veth" {
		return nil, vethPeerProblem(l)
	}
	if attrs.Xdp != nil && attrs.Xdp.Attached {
		return nil, fmt.Errorf("%s cannot transmit redirected frames (XDP features: %s), not even with the XDP program already attached to it", attrs.Name, have)
	}

	if pass == nil {
		if pass, err = constantProgram(ActionPass); err != nil {
			return nil, err
		}
		defer pass.Close() // the attachment holds its own reference
	}
	lk, err := link.AttachXDP(link.XDPOptions{Program: pass, Interface: attrs.Index})
	if err != nil {
		return nil, privilegeHint(fmt.Errorf("attach xdp pass program to %s: %w", attrs.Name, err))
	}
	have, err = xdpFeatures(attrs.Index)
	if err != nil || have&XDPNdoXmit == 0 {
		lk.Close()
		return nil, fmt.Errorf("%s (%s) cannot transmit redirected frames: its driver has no ndo_xdp_xmit, not even with an XDP program attached (XDP features: %s)",
			attrs.Name, l.Type(), have)
	}
	return &egress{features: &have, needsProgram: true, passLink: lk}, nil
}

func (e *egress) close() error {
	if e == nil || e.passLink == nil {
		return nil
	}
	return e.passLink.Close()
}

// vethPeerProblem explains why a veth refuses redirected frames: the kernel hands them to the peer's NAPI
// instance, which exists only while the peer has an XDP program or GRO turned on.
func vethPeerProblem(l vnl.Link) error {
	peer := "its peer"
	if idx, err := vnl.VethPeerIndex(&vnl.Veth{LinkAttrs: *l.Attrs()}); err == nil {
		peer = fmt.Sprintf("its peer (ifindex %d in the peer's network namespace)", idx)
		// The index means something here only if the link it names points back at l.
		if p, err := vnl.LinkByIndex(idx); err == nil && p.Type() == "veth" && idx != l.Attrs().Index {
			if back, err := vnl.VethPeerIndex(&vnl.Veth{LinkAttrs: *p.Attrs()}); err == nil && back == l.Attrs().Index {
				peer = "its peer " + p.Attrs().Name
			}
		}
	}
	return fmt.Errorf("veth %s cannot transmit redirected frames: %s has no XDP program and GRO off, so the kernel has nowhere to deliver them; "+
		"attach an XDP program to the peer, or run `ethtool -K <peer> gro on` in the peer's namespace", l.Attrs().Name, peer)
}

// constantProgram is an XDP program that returns the same verdict for every frame.
func constantProgram(verdict Action) (*ebpf.Program, error) {
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type:         ebpf.XDP,
		License:      "Dual BSD/GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, int32(verdict)), asm.Return()},
	})
	if err != nil {
		return nil, privilegeHint(fmt.Errorf("load an XDP program: %w", err))
	}
	return prog, nil
}
