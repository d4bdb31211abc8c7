package netnstest

import (
	"bufio"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/vishvananda/netns"
)

// XDPAttached reports whether any XDP program is attached to the host's veth.
func (h Host) XDPAttached(t testing.TB) bool {
	t.Helper()
	nh := handle(t, h.NS)
	link, err := nh.LinkByName(h.Interface)
	if err != nil {
		t.Fatalf("find %s: %v", h.Interface, err)
	}
	return link.Attrs().Xdp != nil && link.Attrs().Xdp.Attached
}

// ListenUDP opens a UDP socket in ns on addr:port, bound to device when it is not empty (so that only frames
// arriving through that device count). It is closed when the test ends.
func ListenUDP(t testing.TB, ns netns.NsHandle, addr netip.Addr, port uint16, device string) *net.UDPConn {
	t.Helper()
	var conn *net.UDPConn
	err := Do(ns, func() error {
		lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
			var serr error
			err := c.Control(func(fd uintptr) {
				if device != "" {
					serr = syscall.BindToDevice(int(fd), device)
				}
				if serr == nil {
					serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 8<<20)
				}
			})
			if err != nil {
				return err
			}
			return serr
		}}
		pc, err := lc.ListenPacket(t.Context(), "udp", netip.AddrPortFrom(addr, port).String())
		if err != nil {
			return err
		}
		conn = pc.(*net.UDPConn)
		return nil
	})
	if err != nil {
		t.Fatalf("listen udp %s port %d: %v", addr, port, err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// UDPStats are the kernel's UDP counters of a namespace, IPv4 and IPv6 added up.
type UDPStats struct {
	InDatagrams, NoPorts, InErrors, RcvbufErrors, InCsumErrors uint64
}

// ReadUDPStats reads /proc/net/snmp and /proc/net/snmp6 as seen from ns.
func ReadUDPStats(t testing.TB, ns netns.NsHandle) UDPStats {
	t.Helper()
	var s UDPStats
	err := Do(ns, func() error {
		v4, err := snmp("/proc/thread-self/net/snmp", "Udp:")
		if err != nil {
			return err
		}
		v6, err := snmp("/proc/thread-self/net/snmp6", "Udp6")
		if err != nil {
			return err
		}
		s = UDPStats{
			InDatagrams:  v4["InDatagrams"] + v6["Udp6InDatagrams"],
			NoPorts:      v4["NoPorts"] + v6["Udp6NoPorts"],
			InErrors:     v4["InErrors"] + v6["Udp6InErrors"],
			RcvbufErrors: v4["RcvbufErrors"] + v6["Udp6RcvbufErrors"],
			InCsumErrors: v4["InCsumErrors"] + v6["Udp6InCsumErrors"],
		}
		return nil
	})
	if err != nil {
		t.Fatalf("read udp stats: %v", err)
	}
	return s
}

// snmp parses /proc/net/snmp (a header line and a value line per protocol, both starting with prefix) or
// /proc/net/snmp6 (one "name value" line per counter, names starting with prefix).
func snmp(path, prefix string) (map[string]uint64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]uint64{}
	var header []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 || !strings.HasPrefix(fields[0], prefix) {
			continue
		}
		if len(fields) == 2 && fields[0] != prefix {
			v, _ := strconv.ParseUint(fields[1], 10, 64)
			out[fields[0]] = v
			continue
		}
		if header == nil {
			header = fields
			continue
		}
		for i := 1; i < len(fields) && i < len(header); i++ {
			v, _ := strconv.ParseUint(fields[i], 10, 64)
			out[header[i]] = v
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no %s counters", path, prefix)
	}
	return out, sc.Err()
}
