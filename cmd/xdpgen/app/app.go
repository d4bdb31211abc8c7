// Package app is the xdpgen command line: flags in, a dataplane.UDPConfig or TCPConfig out, and the engine's counters
// printed while it runs.
package app

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/xdpgen/xdpgen/agent/dataplane"
	"github.com/xdpgen/xdpgen/cmd/internal/cli"
)

// Main runs the command line and returns the process exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	return cli.Main(NewRootCommand(), args, stdout, stderr)
}

// NewRootCommand is xdpgen with its commands.
func NewRootCommand() *cobra.Command {
	root := cli.Root("xdpgen", "Generate packets at millions per second with XDP live frames",
		"xdpgen sends packets built in userspace through the kernel's XDP live-frame mode (BPF_PROG_RUN with\n"+
			"BPF_F_TEST_XDP_LIVE_FRAMES): no DPDK, no NIC unbinding, no hugepages. Needs root (or CAP_BPF,\n"+
			"CAP_NET_ADMIN and CAP_PERFMON) and Linux 5.18 or newer.")
	root.AddCommand(newUDPCommand(), newTCPCommand(), newProbeCommand(), newReceiveCommand(), newSearchCommand(), newReplayCommand())
	return root
}

// completeInterface offers the host's interface names for the <ifname> argument, and never files.
func completeInterface(_ *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	ifaces, err := net.Interfaces()
	if err != nil {
		return nil, cobra.ShellCompDirectiveError
	}
	var names []cobra.Completion
	for _, iface := range ifaces {
		if strings.HasPrefix(iface.Name, toComplete) {
			names = append(names, iface.Name)
		}
	}
	return names, cobra.ShellCompDirectiveNoFileComp
}

type outputFlag struct{ format string }

func (o *outputFlag) register(cmd *cobra.Command) {
	cmd.Flags().StringVarP(&o.format, "output", "o", "text", "output format: text or json (one JSON object per line)")
}

func (o *outputFlag) check() error {
	if o.format != "text" && o.format != "json" {
		return &flagError{"--output", o.format, "use text or json"}
	}
	return nil
}

func newProbeCommand() *cobra.Command {
	var out outputFlag
	cmd := &cobra.Command{
		Use:               "probe <ifname>",
		Short:             "Say whether this kernel and an interface can generate live frames",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeInterface,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := out.check(); err != nil {
				return err
			}
			res, err := dataplane.Probe(args[0])
			if err != nil {
				return dataplane.RenameFields(err, flagFor)
			}
			if out.format == "json" {
				if err := json.NewEncoder(cmd.OutOrStdout()).Encode(res); err != nil {
					return err
				}
			} else {
				fmt.Fprintln(cmd.OutOrStdout(), res.Summary())
			}
			if res.Problem != "" {
				return errors.New("probe found a problem (see above)")
			}
			return nil
		},
	}
	out.register(cmd)
	return cmd
}

// udpFlags are xdp-trafficgen's flags where they overlap, and a few more.
type udpFlags struct {
	sendFlags
	dstMAC, srcMAC   string
	dstPort, srcPort uint16
	dynPorts         uint16
	srcPortRange     string
	sizes, sizeOrder string
	dstRange         string
	srcRange         string
	addrOrder        string
	rate, rateBPS    string
	rateL1BPS        string
	ratePercent      string
	burst            int
	inject           bool
	vlan             uint16
	stamp            bool
	generatorID      uint32
	senderID         uint32
	latency          uint32
}

func newUDPCommand() *cobra.Command {
	var f udpFlags
	cmd := &cobra.Command{
		Use:   "udp <ifname>",
		Short: "Send UDP on an interface, optionally spraying destination and source ports",
		Long: "udp sends UDP frames from pinned threads, to one destination or to several in turn (-a A,B,C).\n" +
			"With --stamp each frame carries a stamp (generator, sender, thread, sequence number) after\n" +
			"the UDP header, for `xdpgen receive` at the far end to count loss, reordering and duplicates per path;\n" +
			"the summary lists what was sent to each destination, which settles the receiver's loss. --latency N\n" +
			"asks the receivers to send back one frame in N: xdpgen attaches its receive program to <ifname> to time\n" +
			"them and prints the round-trip time percentiles per destination at the end. --sizes varies the frame\n" +
			"size per frame (a range, or a weighted mix such as IMIX), trimmed in BPF from the largest; the summary\n" +
			"counts the frames per size. A --rate-bps is paced by the mean frame size. --dst-range and --src-range\n" +
			"vary the addresses per frame (after the ports, or at random), so that the far end's RSS spreads the flows\n" +
			"over its queues; the first line says how many distinct flows are sent. --inject sends nothing: each frame\n" +
			"goes up <ifname>'s receive path as if it had arrived there (XDP_PASS), to load this host's own stack\n" +
			"(netfilter, routing, NAT, sockets) without a second machine; the summary counts them as XDP_PASS.",
		Example: "  xdpgen udp eth0 -a 192.0.2.10 -d 100 -t 2 --duration 10s\n" +
			"  xdpgen udp eth0 -a 2001:db8::10 --rate 1M -n 5000000 --output json\n" +
			"  xdpgen udp eth0 -a 192.0.2.10,192.0.2.11 --rate 100k --duration 10s --latency 100\n" +
			"  xdpgen udp eth0 -a 192.0.2.10 --sizes imix-simple --rate-bps 1G --duration 10s\n" +
			"  xdpgen udp eth0 -a 192.0.2.10 -s 60 --rate-percent 50 --duration 10s    # 7.44 Mpps on a 10G link\n" +
			"  xdpgen udp eth0 -a 192.0.2.10 --sizes 64-1514 --size-order random -n 1000000\n" +
			"  xdpgen udp eth0 --dst-range 192.0.2.0/24 --src-range 198.51.100.10-198.51.100.73 -d 16 --duration 10s\n" +
			"  xdpgen udp eth0 --inject -a 10.0.0.5 -A 10.0.0.1 -p 53 --rate 100k --duration 10s   # into this host's stack",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeInterface,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, interval, err := f.config(args[0], cmd)
			if err != nil {
				return err
			}
			return runUDP(cmd.Context(), cmd.OutOrStdout(), cfg, interval, f.out.format)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.dstMAC, "dst-mac", "m", "", "destination MAC (default: resolved from the neighbour table)")
	fl.StringVarP(&f.srcMAC, "src-mac", "M", "", "source MAC (default: the interface's)")
	f.register(cmd, sendHelp{
		dstAddr:    "destination IPv4 or IPv6 address (required)",
		numPackets: "stop after this many packets in total (default: no limit)",
		size:       "Ethernet frame size in bytes without FCS (default 64)",
		duration:   "stop after this long (default: no limit)",
	})
	fl.StringVar(&f.sizes, "sizes", "", "vary the frame size (instead of --size): MIN-MAX, a mix SIZE:WEIGHT,... or a profile: "+
		strings.Join(dataplane.SizeProfileNames(), ", ")+" (64, 570 and 1518 bytes with FCS, 7:4:1)")
	fl.StringVar(&f.sizeOrder, "size-order", "stepped", "order of a --sizes range: stepped (MIN, MIN+1, ..., MAX) or random")
	fl.StringVar(&f.dstRange, "dst-range", "", "vary the destination address (instead of --dst-addr): a prefix or FIRST-LAST; every address goes to the first's next hop")
	fl.StringVar(&f.srcRange, "src-range", "", "vary the source address (instead of --src-addr): a prefix or FIRST-LAST")
	fl.StringVar(&f.addrOrder, "addr-order", "stepped", "order of the address ranges: stepped (after the ports: every combination in turn) or random")
	fl.Uint16VarP(&f.dstPort, "dst-port", "p", 9, "destination port (the first of the range with --dyn-ports)")
	fl.Uint16VarP(&f.srcPort, "src-port", "P", 9, "source port")
	fl.Uint16VarP(&f.dynPorts, "dyn-ports", "d", 0, "spray destination ports over N ports from --dst-port")
	fl.StringVar(&f.srcPortRange, "src-port-range", "", "spray source ports over FIRST-LAST (instead of --src-port)")
	fl.StringVar(&f.rate, "rate", "", "packets per second for the whole run, with k/M/G suffixes (default: as fast as possible)")
	fl.StringVar(&f.rateBPS, "rate-bps", "", "bits per second of Ethernet frames (layer 2, without FCS) for the whole run, with k/M/G suffixes")
	fl.StringVar(&f.rateL1BPS, "rate-l1-bps", "", "bits per second on the wire (layer 1: each frame with FCS, preamble, SFD and inter-frame gap, 24 bytes more) for the whole run")
	fl.StringVar(&f.ratePercent, "rate-percent", "", "percent of the interface's line rate (its link speed, at layer 1) for the whole run")
	fl.BoolVar(&f.inject, "inject", false, "send nothing: hand each frame to <ifname>'s own receive path (XDP_PASS), to load this host's stack; needs --src-addr")
	fl.IntVar(&f.burst, "burst", 0, "with a rate: send N frames back to back per thread, then wait N frames' time (the average rate holds)")
	fl.Uint16Var(&f.vlan, "vlan", 0, "tag frames with this 802.1Q VLAN ID")
	fl.BoolVar(&f.stamp, "stamp", false, "stamp every frame for `xdpgen receive` to account for (implied by the three flags below)")
	fl.Uint32Var(&f.generatorID, "generator-id", 0, "the run's id in the stamps (default: random)")
	fl.Uint32Var(&f.senderID, "sender-id", 0, "this host's id in the stamps (default: from the host name)")
	fl.Uint32Var(&f.latency, "latency", 0, "ask receivers to send back one frame in N to each destination, and print round-trip times")
	return cmd
}

// config turns the flags into an engine configuration, refusing what the flags alone show to be wrong (the
// engine checks the configuration before it touches the host).
func (f *udpFlags) config(ifname string, cmd *cobra.Command) (dataplane.UDPConfig, time.Duration, error) {
	cfg := dataplane.UDPConfig{
		Interface: ifname, DstPort: f.dstPort, DstPortCount: f.dynPorts, SrcPort: f.srcPort, VLAN: f.vlan,
		FrameSize: f.size, Threads: f.threads, Packets: f.numPackets, Duration: f.duration, Burst: f.burst,
		Inject: f.inject,
	}
	hint := "the IPv4 or IPv6 address to send to, or several separated by commas (-a 192.0.2.10), or --dst-range"
	if f.dstRange != "" {
		hint = "" // the range names the destinations
	}
	interval, dsts, err := f.parse(hint, flagFor, &cfg.SrcAddr)
	if err != nil {
		return cfg, 0, err
	}
	if cfg.DstRange, cfg.SrcRange, err = f.addrRanges(); err != nil {
		return cfg, 0, err
	}
	if len(dsts) == 1 {
		cfg.DstAddr = dsts[0]
	} else {
		cfg.DstAddrs = dsts
	}
	fl := cmd.Flags()
	if f.stamp || fl.Changed("generator-id") || fl.Changed("sender-id") || f.latency > 0 {
		cfg.Stamp = &dataplane.Stamp{Generator: f.generatorID, Sender: f.senderID, ReflectEvery: f.latency}
		if !fl.Changed("generator-id") {
			cfg.Stamp.Generator = randomID()
		}
		if !fl.Changed("sender-id") {
			cfg.Stamp.Sender = hostID()
		}
	}
	if cfg.DstMAC, err = dataplane.ParseMAC(dataplane.FieldDstMAC, f.dstMAC); err != nil {
		return cfg, 0, dataplane.RenameFields(err, flagFor)
	}
	if cfg.SrcMAC, err = dataplane.ParseMAC(dataplane.FieldSrcMAC, f.srcMAC); err != nil {
		return cfg, 0, dataplane.RenameFields(err, flagFor)
	}
	if f.srcPortRange != "" {
		if cmd.Flags().Changed("src-port") {
			return cfg, 0, &flagError{"--src-port-range", f.srcPortRange, "give either --src-port or --src-port-range, not both"}
		}
		if cfg.SrcPort, cfg.SrcPortCount, err = parsePortRange("--src-port-range", f.srcPortRange); err != nil {
			return cfg, 0, err
		}
	}
	if f.sizes != "" {
		if cfg.Sizes, err = parseSizes(f.sizes, f.sizeOrder); err != nil {
			return cfg, 0, err
		}
	} else if fl.Changed("size-order") {
		return cfg, 0, &flagError{"--size-order", f.sizeOrder, "orders a range of --sizes: give --sizes MIN-MAX too"}
	}
	if cfg.RatePPS, err = parseRate("--rate", f.rate); err != nil {
		return cfg, 0, err
	}
	if cfg.RateBPS, err = parseRate("--rate-bps", f.rateBPS); err != nil {
		return cfg, 0, err
	}
	if cfg.RateL1BPS, err = parseRate("--rate-l1-bps", f.rateL1BPS); err != nil {
		return cfg, 0, err
	}
	if cfg.RateLinePercent, err = parsePercent("--rate-percent", f.ratePercent); err != nil {
		return cfg, 0, err
	}
	return cfg, interval, nil
}

// addrRanges reads --dst-range and --src-range, in --addr-order.
func (f *udpFlags) addrRanges() (dst, src *dataplane.AddrRange, err error) {
	if f.addrOrder != "stepped" && f.addrOrder != "random" {
		return nil, nil, &flagError{"--addr-order", f.addrOrder, "use stepped or random"}
	}
	parse := func(field dataplane.Field, s string) (*dataplane.AddrRange, error) {
		if s == "" {
			return nil, nil
		}
		r, err := dataplane.ParseAddrRange(field, s)
		if err != nil {
			return nil, dataplane.RenameFields(err, flagFor)
		}
		r.Random = f.addrOrder == "random"
		return &r, nil
	}
	if dst, err = parse(dataplane.FieldDstRange, f.dstRange); err != nil {
		return nil, nil, err
	}
	if src, err = parse(dataplane.FieldSrcRange, f.srcRange); err != nil {
		return nil, nil, err
	}
	return dst, src, nil
}

// randomID is a run's default generator id: runs that share a receiver do not mix.
func randomID() uint32 {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return binary.BigEndian.Uint32(b[:])
}

// hostID is a host's default sender id: FNV-1a of its name, the same for every run from it.
func hostID() uint32 {
	name, _ := os.Hostname()
	h := fnv.New32a()
	h.Write([]byte(name))
	return h.Sum32()
}
