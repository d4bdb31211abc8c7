package app

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/gopacket/layers"

	"github.com/xdpgen/xdpgen/agent/dataplane"
	"github.com/xdpgen/xdpgen/test/pcaptest"
)

// writeUDPCapture writes a pcap of UDP frames to port 9, one of each size (pcaptest.UDPFrames), and returns its
// path.
func writeUDPCapture(t *testing.T, linkType layers.LinkType, sizes ...int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "trace.pcap")
	if err := os.WriteFile(path, pcaptest.Pcap(t, linkType, pcaptest.UDPFrames(t, 9, sizes...), time.Millisecond), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestReplayFlagsNameTheFlag: replay's input errors name the flag or the file, and what would work.
func TestReplayFlagsNameTheFlag(t *testing.T) {
	good := writeUDPCapture(t, layers.LinkTypeEthernet, 100)
	cooked := writeUDPCapture(t, layers.LinkTypeLinuxSLL, 100)
	text := filepath.Join(t.TempDir(), "notes.txt")
	if err := os.WriteFile(text, []byte("not a capture"), 0o644); err != nil {
		t.Fatal(err)
	}
	requireRefused(t, []refusal{
		{[]string{"replay", "eth0"}, "accepts 2 arg(s)"},
		{[]string{"replay", "eth0", "/nonexistent.pcap"}, "<file.pcap> /nonexistent.pcap: cannot open it"},
		{[]string{"replay", "eth0", text}, text + ": not a pcap or pcapng file"},
		{[]string{"replay", "eth0", cooked}, cooked + ": link type Linux SLL: replay sends Ethernet frames"},
		{[]string{"replay", "eth0", good, "-a", "10.0.0"}, "--dst-addr 10.0.0: not an IP address"},
		{[]string{"replay", "eth0", good, "-a", "10.0.0.1,10.0.0.2"}, "--dst-addr 10.0.0.2: a second IPv4 destination: give at most one address per IP family"},
		{[]string{"replay", "eth0", good, "-A", "10.0.0.1"}, "--src-addr 10.0.0.1: rewrites the source of IPv4 frames for the path to an IPv4 destination"},
		{[]string{"replay", "eth0", good, "-m", "zz"}, "--dst-mac zz: not an Ethernet MAC"},
		{[]string{"replay", "eth0", good, "--rate", "1k", "--capture-timing"}, "--rate/--rate-bps/--capture-timing: give one rate"},
		{[]string{"replay", "eth0", good, "--capture-timing"}, "--rate/--rate-bps/--capture-timing capture timing: the capture's frames all have one time: give a rate instead"},
	})
}

// TestCLIReplays replays a capture of three sizes 50 times, rewritten for the rig's path: the summary counts
// every loop and each size, and the peer's counter received every frame (so the rewrite reached it).
func TestCLIReplays(t *testing.T) {
	r := newCLIRig(t)
	path := writeUDPCapture(t, layers.LinkTypeEthernet, 100, 300, 1514)
	out, err := r.command("replay", r.Local.Interface, path, "-a", r.Remote.IPv4.String(), "--loops", "50", "--rate", "10k", "-o", "json").Output()
	if err != nil {
		t.Fatalf("xdpgen: %v\n%s", err, out)
	}
	var last struct {
		Type    string
		Actions map[string]struct{ Packets, Bytes uint64 }
		Sizes   []dataplane.SizeCount
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if err := json.Unmarshal(sc.Bytes(), &last); err != nil {
			t.Fatalf("line %q is not JSON: %v", sc.Text(), err)
		}
	}
	want := []dataplane.SizeCount{{Min: 100, Max: 100, Packets: 50}, {Min: 300, Max: 300, Packets: 50}, {Min: 1514, Max: 1514, Packets: 50}}
	if diff := cmp.Diff(want, last.Sizes); last.Type != "summary" || diff != "" || last.Actions["XDP_REDIRECT"].Packets != 150 {
		t.Fatalf("last record %+v, want a summary of 150 frames, sizes (-want +got):\n%s\n%s", last, diff, out)
	}
	if got, _ := r.rx.Counts(); got.Matched.Packets != 150 || got.Matched.Bytes != 50*(100+300+1514) {
		t.Fatalf("peer counted %+v, want 150 frames of %d bytes", got.Matched, 50*(100+300+1514))
	}
	r.requireNoXDP(t)
}
