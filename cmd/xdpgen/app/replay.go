package app

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/xdpgen/xdpgen/agent/dataplane"
)

// replayFlags are the replay command's flags: the rewrite, how often and how fast.
type replayFlags struct {
	dstAddrs, srcAddrs string
	dstMAC, srcMAC     string
	loops              uint64
	duration           time.Duration
	rate, rateBPS      string
	captureTiming      bool
	threads            int
	interval           string
	out                outputFlag
}

func newReplayCommand() *cobra.Command {
	var f replayFlags
	cmd := &cobra.Command{
		Use:   "replay <ifname> <file.pcap>",
		Short: "Replay a capture's frames, in order, looped, at a rate or at the capture's timing",
		Long: "replay sends the Ethernet frames of a pcap or pcapng file as live frames: each frame is written whole\n" +
			"by BPF from a copy in the kernel, so a replay costs no userspace work per frame. The capture is sent\n" +
			"--loops times (0: until --duration or Ctrl-C), as fast as possible, at --rate/--rate-bps, or with\n" +
			"--capture-timing at the capture's own timing. -a rewrites the destination of its IP frames (one\n" +
			"address per IP family) and then sends every frame on this host's path to it: the interface's MAC\n" +
			"and address as the source, the next hop's MAC as the destination. Every IP frame's IPv4, TCP, UDP,\n" +
			"ICMP and ICMPv6 checksums are computed anew (captures taken where checksums were offloaded hold\n" +
			"wrong ones). With more than one thread, thread k sends frames k, k+threads, ...: the order holds\n" +
			"per thread only. The summary counts the frames per size.",
		Example: "  xdpgen replay eth0 trace.pcap --loops 10 --rate 100k\n" +
			"  xdpgen replay eth0 trace.pcap -a 192.0.2.10,2001:db8::10 --capture-timing --duration 60s\n" +
			"  xdpgen replay eth0 trace.pcapng -m 02:00:00:00:00:02 --loops 0 --duration 10s -t 2",
		Args: cobra.ExactArgs(2),
		ValidArgsFunction: func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
			if len(args) == 1 {
				return []cobra.Completion{"pcap", "pcapng", "cap"}, cobra.ShellCompDirectiveFilterFileExt
			}
			return completeInterface(cmd, args, toComplete)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, interval, err := f.config(args[0], args[1])
			if err != nil {
				return err
			}
			return runReplay(cmd.Context(), cmd.OutOrStdout(), cfg, replayFlagFor(args[1]), interval, f.out.format)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.dstAddrs, "dst-addr", "a", "", "rewrite the destination of IP frames, one address per family (A or A,B), and send on the path to the first")
	fl.StringVarP(&f.srcAddrs, "src-addr", "A", "", "the source for the families of --dst-addr (default: the interface's address on the path)")
	fl.StringVarP(&f.dstMAC, "dst-mac", "m", "", "rewrite every frame's destination MAC (default: as captured, or with -a the next hop's)")
	fl.StringVarP(&f.srcMAC, "src-mac", "M", "", "rewrite every frame's source MAC (default: as captured, or with -a the interface's)")
	fl.Uint64Var(&f.loops, "loops", 1, "send the capture this many times (0: until --duration or Ctrl-C)")
	fl.DurationVar(&f.duration, "duration", 0, "stop after this long (default: no limit)")
	fl.StringVar(&f.rate, "rate", "", "packets per second for the whole run, with k/M/G suffixes (default: as fast as possible)")
	fl.StringVar(&f.rateBPS, "rate-bps", "", "bits per second of Ethernet frames (without FCS), paced by the capture's mean frame size")
	fl.BoolVar(&f.captureTiming, "capture-timing", false, "send each frame at its time in the capture (instead of a rate)")
	fl.IntVarP(&f.threads, "threads", "t", 1, "worker threads, each pinned to its own CPU")
	fl.StringVarP(&f.interval, "interval", "I", "1", "statistics interval: seconds or a duration")
	f.out.register(cmd)
	return cmd
}

// config turns the flags and the capture file into an engine configuration.
func (f *replayFlags) config(ifname, file string) (dataplane.ReplayConfig, time.Duration, error) {
	cfg := dataplane.ReplayConfig{Interface: ifname, Duration: f.duration, CaptureTiming: f.captureTiming, Threads: f.threads}
	if err := f.out.check(); err != nil {
		return cfg, 0, err
	}
	interval, err := parseInterval("--interval", f.interval)
	if err != nil {
		return cfg, 0, err
	}
	if f.duration < 0 {
		return cfg, 0, &flagError{"--duration", f.duration.String(), "must be positive"}
	}
	if cfg.DstAddrs, err = parseAddrList(dataplane.FieldDstAddr, f.dstAddrs); err != nil {
		return cfg, 0, err
	}
	if cfg.SrcAddrs, err = parseAddrList(dataplane.FieldSrcAddr, f.srcAddrs); err != nil {
		return cfg, 0, err
	}
	if cfg.DstMAC, err = dataplane.ParseMAC(dataplane.FieldDstMAC, f.dstMAC); err != nil {
		return cfg, 0, dataplane.RenameFields(err, flagFor)
	}
	if cfg.SrcMAC, err = dataplane.ParseMAC(dataplane.FieldSrcMAC, f.srcMAC); err != nil {
		return cfg, 0, dataplane.RenameFields(err, flagFor)
	}
	if cfg.RatePPS, err = parseRate("--rate", f.rate); err != nil {
		return cfg, 0, err
	}
	if cfg.RateBPS, err = parseRate("--rate-bps", f.rateBPS); err != nil {
		return cfg, 0, err
	}
	in, err := os.Open(file)
	if err != nil {
		return cfg, 0, &flagError{"<file.pcap>", file, fmt.Sprintf("cannot open it (%v): give a pcap or pcapng file", err)}
	}
	defer in.Close()
	if cfg.Capture, err = dataplane.ReadCapture(dataplane.FieldCapture, in); err != nil {
		return cfg, 0, dataplane.RenameFields(err, replayFlagFor(file))
	}
	cfg.Packets = f.loops * uint64(len(cfg.Capture.Frames))
	return cfg, interval, nil
}

// parseAddrList reads addresses separated by commas for field.
func parseAddrList(field dataplane.Field, s string) ([]netip.Addr, error) {
	var addrs []netip.Addr
	for _, part := range strings.Split(s, ",") {
		if s == "" {
			break
		}
		a, err := dataplane.ParseAddr(field, strings.TrimSpace(part))
		if err != nil {
			return nil, dataplane.RenameFields(err, flagFor)
		}
		addrs = append(addrs, a)
	}
	return addrs, nil
}

// replayFlagFor names the replay command's flag (or the capture file) behind an engine field.
func replayFlagFor(file string) func(dataplane.Field) string {
	return func(f dataplane.Field) string {
		switch f {
		case dataplane.FieldRate:
			return "--rate/--rate-bps/--capture-timing"
		case dataplane.FieldCapture:
			return file
		}
		return flagFor(f)
	}
}

// runReplay replays until the loops are sent, the duration is up or ctx ends (Ctrl-C), printing the counters every
// interval and a summary at the end. The generator is closed, and its XDP programs detached, on every path.
// name maps the engine's fields to the flags.
func runReplay(ctx context.Context, w io.Writer, cfg dataplane.ReplayConfig, name func(dataplane.Field) string, interval time.Duration, format string) error {
	g, err := dataplane.NewReplayGenerator(cfg)
	if err != nil {
		return dataplane.RenameFields(err, name)
	}
	defer g.Close()
	p := newPrinter(w, format)
	ifname, index := g.Interface()
	p.start("Transmitting on", ifname, index, g.Flow())
	return runAndReport(ctx, g, interval, func(kind string, from, to dataplane.Stats) {
		if kind == "summary" {
			p.summary(to.Since(from), to)
		} else {
			p.period(to.Since(from), to)
		}
	})
}
