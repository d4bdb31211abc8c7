package dataplane

import (
	"errors"
	"fmt"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/netlink"
	vnl "github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// XDPFeatures is an interface's XDP feature set as the kernel reports it (enum netdev_xdp_act, Linux 6.3+).
type XDPFeatures uint64

// The XDP features xdpgen looks at.
const (
	XDPBasic     XDPFeatures = 1 << 0
	XDPRedirect  XDPFeatures = 1 << 1
	XDPNdoXmit   XDPFeatures = 1 << 2
	XDPNdoXmitSG XDPFeatures = 1 << 6
	featureNames             = "basic redirect ndo-xmit xsk-zerocopy hw-offload rx-sg ndo-xmit-sg"
)

func (f XDPFeatures) String() string {
	var on []string
	for i, name := range strings.Fields(featureNames) {
		if f&(1<<i) != 0 {
			on = append(on, name)
		}
	}
	if len(on) == 0 {
		return "none"
	}
	return strings.Join(on, ",")
}

// The netdev generic netlink family (include/uapi/linux/netdev.h), absent from older system headers.
const (
	netdevCmdDevGet         = 1
	netdevAttrDevIfindex    = 1
	netdevAttrDevXDPFeature = 3
)

// errFeaturesUnknown means the kernel predates the netdev family (Linux < 6.3): nothing can be said up front.
var errFeaturesUnknown = errors.New("the kernel does not report XDP features (Linux 6.3+)")

// xdpFeatures asks the kernel which XDP features an interface has right now.
func xdpFeatures(ifindex int) (XDPFeatures, error) {
	conn, err := genetlink.Dial(nil)
	if err != nil {
		return 0, fmt.Errorf("generic netlink: %w", err)
	}
	defer conn.Close()
	family, err := conn.GetFamily("netdev")
	if err != nil {
		return 0, errFeaturesUnknown
	}
	enc := netlink.NewAttributeEncoder()
	enc.Uint32(netdevAttrDevIfindex, uint32(ifindex))
	body, err := enc.Encode()
	if err != nil {
		return 0, err
	}
	msgs, err := conn.Execute(genetlink.Message{Header: genetlink.Header{Command: netdevCmdDevGet, Version: family.Version}, Data: body},
		family.ID, netlink.Request)
	if err != nil {
		return 0, fmt.Errorf("netdev dev-get ifindex %d: %w", ifindex, err)
	}
	for _, m := range msgs {
		ad, err := netlink.NewAttributeDecoder(m.Data)
		if err != nil {
			return 0, err
		}
		for ad.Next() {
			if ad.Type() == netdevAttrDevXDPFeature {
				return XDPFeatures(ad.Uint64()), nil
			}
		}
	}
	return 0, nil
}

// ProbeResult says whether this kernel and an interface can generate live frames.
type ProbeResult struct {
	Interface string `json:"interface"`
	Ifindex   int    `json:"ifindex"`
	// Kind is the link type ("veth", "device", "vlan", ...).
	Kind string `json:"kind"`
	// LiveFrames: the kernel runs BPF_PROG_RUN with BPF_F_TEST_XDP_LIVE_FRAMES.
	LiveFrames bool `json:"liveFrames"`
	// Features is the interface's XDP feature set; empty when the kernel does not report it.
	Features string `json:"xdpFeatures,omitempty"`
	// CanTransmit: the interface accepts redirected frames now, or will once xdpgen attaches its pass program.
	CanTransmit bool `json:"canTransmit"`
	// NeedsXDPProgram: the driver accepts redirected frames only while an XDP program is attached; xdpgen
	// attaches one for the duration of a run.
	NeedsXDPProgram bool `json:"needsXdpProgram"`
	// Problem explains what stops generation, and what would fix it; empty when nothing does.
	Problem string `json:"problem,omitempty"`
}

// Summary is the one-line human answer.
func (p ProbeResult) Summary() string {
	if p.Problem != "" {
		return fmt.Sprintf("%s: no: %s", p.Interface, p.Problem)
	}
	note := ""
	if p.NeedsXDPProgram {
		note = " (its driver needs an XDP program attached: xdpgen attaches a pass program while it runs)"
	}
	return fmt.Sprintf("%s: yes: this kernel runs XDP live frames and %s (%s) transmits redirected frames%s", p.Interface, p.Interface, p.Kind, note)
}

// Probe checks the kernel's live-frame support and whether the interface can transmit redirected frames.
// It changes nothing it does not undo: a pass program it attaches to test the driver is detached again.
func Probe(ifname string) (ProbeResult, error) {
	link, err := vnl.LinkByName(ifname)
	if err != nil {
		return ProbeResult{}, fieldError(FieldInterface, ifname, "no such interface here; these exist: %s", strings.Join(linkNames(), ", "))
	}
	res := ProbeResult{Interface: ifname, Ifindex: link.Attrs().Index, Kind: link.Type()}
	if err := probeLiveFrames(); err != nil {
		res.Problem = err.Error()
		return res, nil
	}
	res.LiveFrames = true

	eg, err := enableRedirectTransmit(link, nil)
	if err != nil {
		res.Problem = err.Error()
		return res, nil
	}
	res.CanTransmit, res.NeedsXDPProgram = true, eg.needsProgram
	if eg.features != nil {
		res.Features = eg.features.String()
	}
	return res, nil
}

// probeLiveFrames runs a program that drops its one frame in live-frame mode: old kernels refuse the flag.
func probeLiveFrames() error {
	prog, err := constantProgram(ActionDrop)
	if err != nil {
		return err
	}
	defer prog.Close()
	_, err = prog.Run(&ebpf.RunOptions{Data: make([]byte, MinFrameSize), Repeat: 1, Flags: unix.BPF_F_TEST_XDP_LIVE_FRAMES})
	switch {
	case errors.Is(err, unix.EINVAL), errors.Is(err, ebpf.ErrNotSupported):
		return errNoLiveFrames
	case err != nil:
		return privilegeHint(fmt.Errorf("run an XDP program in live-frame mode: %w", err))
	}
	return nil
}
