package app

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/xdpgen/xdpgen/agent/dataplane"
	"github.com/xdpgen/xdpgen/test/netnstest"
)

func TestTCPBadFlagsNameTheFlag(t *testing.T) {
	requireRefused(t, []refusal{
		{[]string{"tcp", "eth0", "-p", "5201"}, "--dst-addr: required"},
		{[]string{"tcp", "eth0", "-a", "10.0.0.1"}, "--dst-port: required"},
		{[]string{"tcp", "eth0", "-a", "10.0.0", "-p", "5201"}, "--dst-addr 10.0.0: not an IP address"},
		{[]string{"tcp", "eth0", "-a", "10.0.0.1", "-A", "fd00::1", "-p", "5201"}, "--src-addr fd00::1: is IPv6 but the destination 10.0.0.1 is IPv4"},
		{[]string{"tcp", "eth0", "-a", "10.0.0.1", "-p", "5201", "-t", "2", "--flows", "1"}, "--flows 1: fewer connections than threads (2)"},
		{[]string{"tcp", "eth0", "-a", "10.0.0.1", "-p", "5201", "--flows", "300"}, "--flows 300: use 1 to 256 connections"},
		{[]string{"tcp", "eth0", "-a", "10.0.0.1", "-p", "5201", "-s", "60"}, "--size 60: too small for an IPv4 segment"},
		{[]string{"tcp", "eth0", "-a", "10.0.0.1", "-p", "5201", "-s", "9000"}, "--size 9000: live frames hold at most 3520 bytes"},
		{[]string{"tcp", "eth0", "-a", "10.0.0.1", "-p", "5201", "--connect-timeout", "-1s"}, "--connect-timeout -1s: must be positive"},
		{[]string{"tcp", "eth0", "-a", "10.0.0.1", "-p", "5201", "-o", "yaml"}, "--output yaml: use text or json"},
		{[]string{"tcp", "eth0", "-a", "10.0.0.1", "-p", "5201", "--rate", "1k"}, "unknown flag: --rate"},
	})
}

// TestCLITCPSendsACount sends a count over two connections and reads the JSON: the summary's acknowledged
// bytes are what the server read, per flow, and both connections ended with a FIN.
func TestCLITCPSendsACount(t *testing.T) {
	r := newCLIRig(t)
	srv := netnstest.ListenTCP(t, r.Remote.NS, netip.AddrPortFrom(r.Remote.IPv4, 5201), nil)
	out, err := r.command("tcp", r.Local.Interface, "-a", r.Remote.IPv4.String(), "-p", "5201", "--flows", "2", "-n", "3001",
		"-o", "json", "-I", "100ms").Output()
	if err != nil {
		t.Fatalf("xdpgen: %v\n%s", err, out)
	}
	var last struct {
		Type    string
		Actions map[string]struct{ Packets uint64 }
		TCP     struct {
			Total   dataplane.TCPCounters
			Workers *dataplane.SchedTimes
		}
		Flows []dataplane.TCPFlowStats
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if err := json.Unmarshal(sc.Bytes(), &last); err != nil {
			t.Fatalf("line %q is not JSON: %v", sc.Text(), err)
		}
	}
	if last.Type != "summary" || len(last.Flows) != 2 || last.TCP.Total.SegmentsSent < 3001 || last.Actions["XDP_REDIRECT"].Packets != last.TCP.Total.SegmentsSent {
		t.Fatalf("last record %+v, want a summary of 2 flows and at least 3001 segments\n%s", last, out)
	}
	if _, err := os.Stat("/proc/thread-self/schedstat"); err == nil && (last.TCP.Workers == nil || last.TCP.Workers.OnCPU <= 0) {
		t.Fatalf("the summary's workers: %+v, want their time on their CPUs\n%s", last.TCP.Workers, out)
	}
	for range 2 {
		srv.Next(t, 5*time.Second)
	}
	var total uint64
	for _, f := range last.Flows {
		got := srv.Stream(t, f.LocalPort, 5*time.Second).Bytes
		if got != f.BytesAcked || f.State != "closed" {
			t.Fatalf("flow from port %d: server read %d bytes, xdpgen says %d were acknowledged (state %s)", f.LocalPort, got, f.BytesAcked, f.State)
		}
		total += f.BytesAcked
	}
	if total != last.TCP.Total.BytesAcked || total%3001 != 0 {
		t.Fatalf("flows acknowledged %d bytes in all, the total says %d, for 3001 segments", total, last.TCP.Total.BytesAcked)
	}
	r.requireNoXDP(t)
}

// TestCLITCPStopsCleanlyOnCtrlC interrupts an unlimited run: xdpgen prints its summary, closes the connection
// with a FIN, exits 0 and leaves no XDP program attached.
func TestCLITCPStopsCleanlyOnCtrlC(t *testing.T) {
	r := newCLIRig(t)
	srv := netnstest.ListenTCP(t, r.Remote.NS, netip.AddrPortFrom(r.Remote.IPv4, 5201), nil)
	out := r.interruptAfter(t, 1500*time.Millisecond, 5*time.Second, "tcp", r.Local.Interface, "-a", r.Remote.IPv4.String(), "-p", "5201")
	for _, want := range []string{"Transmitting on " + r.Local.Interface, "Period of", "XDP_REDIRECT", "TCP", "goodput", "Summary:", "flow 0", "closed"} {
		if !strings.Contains(out, want) {
			t.Fatalf("output lacks %q:\n%s", want, out)
		}
	}
	srv.Next(t, 5*time.Second)

	r.requireNoXDP(t)
}

// TestCLITCPRefused: nothing listens on the port; xdpgen says so and exits 1.
func TestCLITCPRefused(t *testing.T) {
	r := newCLIRig(t)
	out, err := r.command("tcp", r.Local.Interface, "-a", r.Remote.IPv4.String(), "-p", "5202").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "xdpgen: --dst-port 5202: 10.200.0.2 refused the connection (RST): nothing listens on port 5202 there") {
		t.Fatalf("xdpgen: %v\n%s", err, out)
	}
	r.requireNoXDP(t)
}
