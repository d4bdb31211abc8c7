package app

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// TestBadFlagsNameTheFlag checks input that is wrong whatever the host: each is refused before anything is
// loaded, with the flag and what would work.
func TestBadFlagsNameTheFlag(t *testing.T) {
	requireRefused(t, []refusal{
		{[]string{"udp", "eth0"}, "--dst-addr: required"},
		{[]string{"udp", "eth0", "-a", "10.0.0"}, "--dst-addr 10.0.0: not an IP address"},
		{[]string{"udp", "eth0", "-a", "10.0.0.1", "-A", "fd00::1"}, "--src-addr fd00::1: is IPv6 but the destination 10.0.0.1 is IPv4"},
		{[]string{"udp", "eth0", "-a", "10.0.0.1", "-m", "zz"}, "--dst-mac zz: not an Ethernet MAC"},
		{[]string{"udp", "eth0", "-a", "10.0.0.1", "-p", "65500", "-d", "100"}, "--dst-port/--dyn-ports 65500+100: the range ends at port 65599"},
		{[]string{"udp", "eth0", "-a", "10.0.0.1", "--src-port-range", "2000-1000"}, "--src-port-range 2000-1000: not a port range"},
		{[]string{"udp", "eth0", "-a", "10.0.0.1", "-P", "5", "--src-port-range", "1000-2000"}, "not both"},
		{[]string{"udp", "eth0", "-a", "10.0.0.1", "-s", "20"}, "--size 20: below the smallest IPv4 frame: use at least 60 bytes"},
		{[]string{"udp", "eth0", "-a", "10.0.0.1", "-s", "9000"}, "--size 9000: live frames hold at most 3520 bytes"},
		{[]string{"udp", "eth0", "-a", "10.0.0.1", "--sizes", "imix-fancy"}, "--sizes imix-fancy: not a size profile: use one of imix-simple"},
		{[]string{"udp", "eth0", "-a", "10.0.0.1", "--sizes", "64:x"}, `--sizes 64:x: "64:x" is not SIZE:WEIGHT: give MIN-MAX`},
		{[]string{"udp", "eth0", "-a", "10.0.0.1", "--sizes", "64-30000"}, "--sizes 30000: live frames hold at most 3520 bytes"},
		{[]string{"udp", "eth0", "-a", "10.0.0.1", "--sizes", "64-128", "-s", "100"}, "--sizes 64-128 stepped: give one frame size or sizes that vary, not both"},
		{[]string{"udp", "eth0", "-a", "10.0.0.1", "--sizes", "64-128", "--size-order", "shuffled"}, "--size-order shuffled: use stepped or random"},
		{[]string{"udp", "eth0", "-a", "10.0.0.1", "--size-order", "random"}, "--size-order random: orders a range of --sizes: give --sizes MIN-MAX too"},
		{[]string{"udp", "eth0", "-a", "10.0.0.1", "--sizes", "imix-simple", "--size-order", "random"}, "a mix is sent interleaved: random order applies to a range"},
		{[]string{"udp", "eth0", "-a", "fd00::1", "--sizes", "imix-simple"}, "--sizes 60: below the smallest IPv6 frame: use sizes of at least 62 bytes"},
		{[]string{"udp", "eth0", "--dst-range", "10.0.0.0/33"}, "--dst-range 10.0.0.0/33: not an address range: give a prefix"},
		{[]string{"udp", "eth0", "-a", "10.0.0.1", "--dst-range", "10.0.0.0/24"}, "--dst-range 10.0.0.1-10.0.0.254: give a destination address or a range of them, not both"},
		{[]string{"udp", "eth0", "--dst-range", "10.0.0.0/24", "--stamp"}, "--dst-range 10.0.0.1-10.0.0.254: stamped frames are accounted per destination address"},
		{[]string{"udp", "eth0", "--dst-range", "10.0.0.9-10.0.0.1"}, "--dst-range 10.0.0.9-10.0.0.1: ends below its start"},
		{[]string{"udp", "eth0", "--dst-range", "fd00::/64"}, "--dst-range fd00::-fd00::ffff:ffff:ffff:ffff: an IPv6 range varies the last 32 bits only: keep it within one /96"},
		{[]string{"udp", "eth0", "-a", "10.0.0.1", "--src-range", "fd00::/120"}, "--src-range fd00::-fd00::ff: is IPv6 but 10.0.0.1 is IPv4"},
		{[]string{"udp", "eth0", "-a", "10.0.0.1", "-A", "10.0.0.2", "--src-range", "10.0.0.0/24"}, "--src-range 10.0.0.1-10.0.0.254: give a source address or a range of them, not both"},
		{[]string{"udp", "eth0", "-a", "10.0.0.1", "--src-range", "10.0.0.0/24", "--addr-order", "shuffled"}, "--addr-order shuffled: use stepped or random"},
		{[]string{"udp", "eth0", "-a", "10.0.0.1", "--rate", "fast"}, "--rate fast: not a rate"},
		{[]string{"udp", "eth0", "-a", "10.0.0.1", "--rate", "1k", "--rate-bps", "1M"}, "--rate/--rate-bps/--rate-l1-bps/--rate-percent: give one rate"},
		{[]string{"udp", "eth0", "-a", "10.0.0.1", "--rate-l1-bps", "1G", "--rate-percent", "10"}, "--rate/--rate-bps/--rate-l1-bps/--rate-percent: give one rate"},
		{[]string{"udp", "eth0", "-a", "10.0.0.1", "--inject"}, "--src-addr: injected frames need a source address the host accepts frames from (a peer, not one of its own): give one"},
		{[]string{"udp", "eth0", "-a", "10.0.0.1", "-A", "10.0.0.2", "--inject", "--stamp"}, "<ifname> eth0: injected frames go up the stack without passing the interface's XDP hook"},
		{[]string{"udp", "eth0", "-a", "10.0.0.1", "--burst", "32"}, "--burst 32: bursts are spaced to keep a rate: give a rate too"},
		{[]string{"udp", "eth0", "-a", "10.0.0.1", "--rate", "1k", "--burst", "-1"}, "--burst -1: use 1 to 1048576 frames per burst"},
		{[]string{"udp", "eth0", "-a", "10.0.0.1", "--rate-percent", "120"}, "--rate-percent 120: not a percentage of the line rate"},
		{[]string{"udp", "eth0", "-a", "10.0.0.1", "--rate-l1-bps", "100"}, "--rate/--rate-bps/--rate-l1-bps/--rate-percent 100 bit/s: below one 64-byte frame (88 bytes on the wire) per second"},
		{[]string{"udp", "eth0", "-a", "10.0.0.1", "--vlan", "4095"}, "--vlan 4095: VLAN IDs go from 1 to 4094"},
		{[]string{"udp", "eth0", "-a", "10.0.0.1", "-I", "0"}, "--interval 0: too short"},
		{[]string{"udp", "eth0", "-a", "10.0.0.1", "-o", "yaml"}, "--output yaml: use text or json"},
		{[]string{"udp", "eth0", "-a", "10.0.0.1", "--bogus"}, "unknown flag: --bogus"},
		{[]string{"udp"}, "accepts 1 arg(s)"},
	})
}

// refusal is a command line that must fail, and what its error must say.
type refusal struct {
	args []string
	want string
}

// requireRefused runs each command line and checks that it fails with its message.
func requireRefused(t *testing.T, cases []refusal) {
	t.Helper()
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := Main(tc.args, &stdout, &stderr); code == 0 {
				t.Fatalf("exit code 0, want failure; stdout %q", stdout.String())
			}
			if !strings.Contains(stderr.String(), tc.want) {
				t.Fatalf("stderr %q, want %q", stderr.String(), tc.want)
			}
		})
	}
}

func TestParseRate(t *testing.T) {
	for in, want := range map[string]uint64{"1000": 1000, "1k": 1000, "2.5M": 2_500_000, "10G": 10_000_000_000, "0.5k": 500} {
		if got, err := parseRate("--rate", in); err != nil || got != want {
			t.Errorf("parseRate(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
}

func TestVersion(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := Main([]string{"--version"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit code %d; stderr %q", code, stderr.String())
	}
	if want := "xdpgen dev (commit unknown, built unknown)\n"; stdout.String() != want {
		t.Fatalf("--version printed %q, want %q", stdout.String(), want)
	}
}

// TestPktSizeIsSize checks that xdp-trafficgen's --pkt-size sets the frame size of udp and tcp, and that the help
// names it once, in --size's line.
func TestPktSizeIsSize(t *testing.T) {
	for _, newCommand := range []func() *cobra.Command{newUDPCommand, newTCPCommand} {
		cmd := newCommand()
		t.Run(cmd.Name(), func(t *testing.T) {
			if err := cmd.ParseFlags([]string{"--pkt-size", "128"}); err != nil {
				t.Fatal(err)
			}
			if size, err := cmd.Flags().GetInt("size"); err != nil || size != 128 {
				t.Fatalf("--pkt-size 128 set the size to %d (%v), want 128", size, err)
			}
			var stdout, stderr bytes.Buffer
			if code := Main([]string{cmd.Name(), "--help"}, &stdout, &stderr); code != 0 {
				t.Fatalf("--help: exit code %d; stderr %q", code, stderr.String())
			}
			sizeLine := regexp.MustCompile(`(?m)^ *-s, --size .*alias --pkt-size`)
			if n := strings.Count(stdout.String(), "pkt-size"); n != 1 || !sizeLine.MatchString(stdout.String()) {
				t.Fatalf("help names pkt-size %d times, want once in --size's line:\n%s", n, stdout.String())
			}
		})
	}
	requireRefused(t, []refusal{
		{[]string{"udp", "eth0", "-a", "10.0.0.1", "--pkt-size", "20"}, "--size 20: below the smallest IPv4 frame"},
	})
}

// TestCompleteInterface asks for completions as the shells do (the hidden __complete command): the <ifname> of
// each command completes to the host's interfaces, and nothing completes to files.
func TestCompleteInterface(t *testing.T) {
	// __complete prints one candidate a line, then the directive as ":N".
	noFiles := fmt.Sprintf(":%d\n", cobra.ShellCompDirectiveNoFileComp)
	for _, command := range []string{"udp", "tcp", "probe", "receive", "count"} {
		t.Run(command, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := Main([]string{"__complete", command, "l"}, &stdout, &stderr); code != 0 {
				t.Fatalf("exit code %d; stderr %q", code, stderr.String())
			}
			if got := stdout.String(); !strings.HasPrefix(got, "lo\n") || !strings.Contains(got, "\n"+noFiles) {
				t.Fatalf("completing %q gave %q, want lo among the interfaces and no files (%q)", command+" l", got, noFiles)
			}
			stdout.Reset()
			if code := Main([]string{"__complete", command, "lo", ""}, &stdout, &stderr); code != 0 {
				t.Fatalf("exit code %d; stderr %q", code, stderr.String())
			}
			if !strings.HasPrefix(stdout.String(), noFiles) {
				t.Fatalf("completing after <ifname> gave %q, want nothing and no files", stdout.String())
			}
		})
	}
}
