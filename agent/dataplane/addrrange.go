package dataplane

import (
	"encoding/binary"
	"fmt"
	"math"
	"net/netip"
	"strings"

	"github.com/xdpgen/xdpgen/bpf"
)

// AddrRange is a range of addresses, First to Last, that a run's frames take their source or destination address
// from: in turn, or at random per frame. The send program rewrites the address's last 32 bits (all of an IPv4
// address) and fixes the checksums incrementally, so an IPv6 range varies within one /96.
type AddrRange struct {
	First, Last netip.Addr
	Random      bool
}

// ParseAddrRange reads a range for field f: a prefix (192.0.2.0/24; an IPv4 prefix of /30 or wider leaves out its
// network and broadcast addresses, as hosts do), FIRST-LAST (192.0.2.10-192.0.2.20), or one address.
func ParseAddrRange(f Field, s string) (AddrRange, error) {
	const hint = "give a prefix (192.0.2.0/24, 2001:db8::/120), FIRST-LAST (192.0.2.10-192.0.2.20) or one address"
	if p, err := netip.ParsePrefix(s); err == nil {
		p = p.Masked()
		r := AddrRange{First: p.Addr(), Last: lastOf(p)}
		if p.Addr().Is4() && p.Bits() <= 30 {
			r.First, r.Last = r.First.Next(), r.Last.Prev()
		}
		return r, nil
	}
	first, last, isRange := strings.Cut(s, "-")
	a, err1 := netip.ParseAddr(strings.TrimSpace(first))
	b, err2 := a, error(nil)
	if isRange {
		b, err2 = netip.ParseAddr(strings.TrimSpace(last))
	}
	if err1 != nil || err2 != nil {
		return AddrRange{}, fieldError(f, s, "not an address range: %s", hint)
	}
	return AddrRange{First: a.Unmap(), Last: b.Unmap()}, nil
}

// lastOf is the last address of a prefix.
func lastOf(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := range b {
		if bit := i * 8; bit+8 > p.Bits() {
			host := 8 - max(p.Bits()-bit, 0)
			b[i] |= byte(1<<host - 1)
		}
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// FirstIn is the range's first address in the prefix p, if it has one there.
func (r AddrRange) FirstIn(p netip.Prefix) (netip.Addr, bool) {
	p = p.Masked()
	first, last := p.Addr(), lastOf(p)
	if first.Is4() != r.First.Is4() || r.Last.Less(first) || last.Less(r.First) {
		return netip.Addr{}, false
	}
	if first.Less(r.First) {
		return r.First, true
	}
	return first, true
}

func (r AddrRange) String() string {
	order := ""
	if r.Random {
		order = " random"
	}
	return fmt.Sprintf("%s-%s%s", r.First, r.Last, order)
}

// Count is the number of addresses in the range.
func (r AddrRange) Count() uint64 {
	return uint64(low32(r.Last)) - uint64(low32(r.First)) + 1
}

// low32 is an address's last 32 bits (an IPv4 address's all).
func low32(a netip.Addr) uint32 {
	b := a.As16()
	return binary.BigEndian.Uint32(b[12:])
}

// errors says what is wrong with the range of field f, whose addresses must be of family like (when valid).
func (r AddrRange) errors(f Field, like netip.Addr) []error {
	if r.First.Is4() != r.Last.Is4() {
		return []error{fieldError(f, r, "mixes IPv4 and IPv6: give both ends of one family")}
	}
	if like.IsValid() && r.First.Is4() != like.Is4() {
		return []error{fieldError(f, r, "is %s but %s is %s: use one IP family for both", family(r.First), like, family(like))}
	}
	if r.Last.Less(r.First) {
		return []error{fieldError(f, r, "ends below its start: give FIRST-LAST with FIRST <= LAST")}
	}
	a, b := r.First.As16(), r.Last.As16()
	if [12]byte(a[:12]) != [12]byte(b[:12]) {
		return []error{fieldError(f, r, "an IPv6 range varies the last 32 bits only: keep it within one /96 (such as %s/96)",
			netip.PrefixFrom(r.First, 96).Masked().Addr())}
	}
	if r.Count() > math.MaxUint32 {
		return []error{fieldError(f, r, "%d addresses: at most %d", r.Count(), uint64(math.MaxUint32))}
	}
	if r.First.Zone() != "" || r.First.IsUnspecified() || r.First.IsMulticast() || r.Last.IsMulticast() {
		return []error{fieldError(f, r, "give unicast addresses without a zone")}
	}
	return nil
}

// programAddrRanges fills the send program's address ranges of c, for templates with the UDP header at udpOff.
func (c UDPConfig) programAddrRanges(cfg *bpf.UDPConfig, udpOff int) {
	l3 := udpOff - ipv4HeaderLen
	srcAt, dstAt := l3+12, l3+16
	if c.family6() {
		l3 = udpOff - ipv6HeaderLen
		srcAt, dstAt = l3+8+12, l3+24+12
	}
	if r := c.SrcRange; r != nil {
		cfg.SrcAddrCount, cfg.SrcAddrFirst, cfg.SrcAddrAt = uint32(r.Count()), low32(r.First), uint16(srcAt)
		if r.Random {
			cfg.AddrRandom |= bpf.AddrRandomSrc
		}
	}
	if r := c.DstRange; r != nil {
		cfg.DstAddrCount, cfg.DstAddrFirst, cfg.DstAddrAt = uint32(r.Count()), low32(r.First), uint16(dstAt)
		if r.Random {
			cfg.AddrRandom |= bpf.AddrRandomDst
		}
	}
}

// Flows is the number of distinct flows (address and port 4-tuples) c sends.
func (c UDPConfig) Flows() uint64 {
	n := uint64(max(len(c.DstAddrs), 1)) * uint64(max(c.DstPortCount, 1)) * uint64(max(c.SrcPortCount, 1))
	for _, r := range []*AddrRange{c.DstRange, c.SrcRange} {
		if r != nil {
			n *= r.Count()
		}
	}
	return n
}
