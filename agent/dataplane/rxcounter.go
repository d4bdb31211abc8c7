package dataplane

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf/link"
	vnl "github.com/vishvananda/netlink"

	"github.com/xdpgen/xdpgen/bpf"
)

// RxCounter counts a generator's frames where they arrive: UDP to a destination port range, on one interface.
// Attached to a veth, it also lets that veth receive redirected frames at all.
type RxCounter struct {
	objs *bpf.RxCounter
	link link.Link
}

// AttachRxCounter attaches a counter for UDP frames to ports [firstPort, lastPort] to ifname, in the calling
// thread's network namespace. With pass, counted frames go on to the stack; otherwise they are dropped.
func AttachRxCounter(ifname string, firstPort, lastPort uint16, pass bool) (*RxCounter, error) {
	l, err := vnl.LinkByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("rx counter interface %s: %w", ifname, err)
	}
	cfg := bpf.RxConfig{DstPortFirst: firstPort, DstPortLast: lastPort}
	if pass {
		cfg.Pass = 1
	}
	objs, err := bpf.LoadRxCounter(cfg)
	if err != nil {
		return nil, privilegeHint(err)
	}
	lk, err := link.AttachXDP(link.XDPOptions{Program: objs.Program, Interface: l.Attrs().Index})
	if err != nil {
		objs.Close()
		return nil, privilegeHint(fmt.Errorf("attach rx counter to %s: %w", ifname, err))
	}
	return &RxCounter{objs: objs, link: lk}, nil
}

// Counts returns the frames that matched the filter and all other frames seen, summed over CPUs.
func (r *RxCounter) Counts() (matched, other Counter, err error) {
	read := func(key uint32) (Counter, error) {
		var perCPU []bpf.Counter
		if err := r.objs.Counters.Lookup(key, &perCPU); err != nil {
			return Counter{}, fmt.Errorf("read rx counter: %w", err)
		}
		var sum Counter
		for _, c := range perCPU {
			sum = sum.add(Counter{Packets: c.Packets, Bytes: c.Bytes})
		}
		return sum, nil
	}
	if matched, err = read(bpf.RxMatched); err != nil {
		return
	}
	other, err = read(bpf.RxOther)
	return
}

// Close detaches the counter.
func (r *RxCounter) Close() error {
	return errors.Join(r.link.Close(), r.objs.Close())
}
