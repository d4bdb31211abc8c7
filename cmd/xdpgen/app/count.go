package app

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/xdpgen/xdpgen/agent/dataplane"
)

// newCountCommand is the far side of a test: it counts what arrives, where the generator's frames land.
func newCountCommand() *cobra.Command {
	var (
		port, ports uint16
		pass        bool
		interval    string
		duration    time.Duration
		out         outputFlag
	)
	cmd := &cobra.Command{
		Use:   "count <ifname>",
		Short: "Count UDP frames arriving on an interface with an XDP program (the receiving end of a test)",
		Long: "count attaches an XDP program that counts UDP frames to the given destination ports (IPv4 or IPv6,\n" +
			"802.1Q-tagged or not) and prints what arrived until Ctrl-C or --duration. On a veth it also makes\n" +
			"the interface able to receive redirected frames. Counted frames are dropped unless --pass is given.",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeInterface,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := out.check(); err != nil {
				return err
			}
			every, err := parseInterval("--interval", interval)
			if err != nil {
				return err
			}
			if int(port)+int(max(ports, 1))-1 > 65535 {
				return &flagError{"--dst-port/--dyn-ports", fmt.Sprintf("%d+%d", port, ports), "the range ends past 65535"}
			}
			rx, err := dataplane.AttachRxCounter(args[0], port, port+max(ports, 1)-1, pass)
			if err != nil {
				return err
			}
			defer rx.Close()
			ctx := cmd.Context()
			if duration > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, duration)
				defer cancel()
			}
			return countUntilDone(ctx, cmd.OutOrStdout(), rx, args[0], every, out.format == "json")
		},
	}
	fl := cmd.Flags()
	fl.Uint16VarP(&port, "dst-port", "p", 9, "first destination port to count")
	fl.Uint16VarP(&ports, "dyn-ports", "d", 1, "count N ports from --dst-port")
	fl.BoolVar(&pass, "pass", false, "let counted frames on to the stack (XDP_PASS) instead of dropping them")
	fl.StringVarP(&interval, "interval", "I", "1", "statistics interval: seconds or a duration")
	fl.DurationVar(&duration, "duration", 0, "stop after this long (default: until Ctrl-C)")
	out.register(cmd)
	return cmd
}

type rxRecord struct {
	Type      string            `json:"type"`
	Time      time.Time         `json:"time"`
	Interface string            `json:"interface"`
	Matched   dataplane.Counter `json:"matched"`
	Other     dataplane.Counter `json:"other"`
	PPS       float64           `json:"pps"`
}

func countUntilDone(ctx context.Context, w io.Writer, rx *dataplane.RxCounter, ifname string, every time.Duration, asJSON bool) error {
	tick := time.NewTicker(every)
	defer tick.Stop()
	var prev dataplane.Counter
	start := time.Now()
	prevAt := start
	report := func(kind string) error {
		matched, other, err := rx.Counts()
		if err != nil {
			return err
		}
		now := time.Now()
		pps := float64(matched.Packets-prev.Packets) / now.Sub(prevAt).Seconds()
		if kind == "total" {
			pps = float64(matched.Packets) / now.Sub(start).Seconds() // the average over the whole count
		}
		prev, prevAt = matched, now
		if asJSON {
			return jsonLine(w, rxRecord{Type: kind, Time: now, Interface: ifname, Matched: matched, Other: other, PPS: pps})
		}
		_, err = fmt.Fprintf(w, "%-8s %s: %12d pkts (%10.0f pps) %12d KiB matched, %d other frames\n",
			kind, ifname, matched.Packets, pps, matched.Bytes/1024, other.Packets)
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return report("total")
		case <-tick.C:
			if err := report("period"); err != nil {
				return err
			}
		}
	}
}
