package app

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/xdpgen/xdpgen/agent/dataplane"
)

// newReceiveCommand is the far side of a test: it accounts for what arrives, where the generator's frames land.
func newReceiveCommand() *cobra.Command {
	var (
		port, ports uint16
		pass        bool
		generators  []uint
		interval    string
		duration    time.Duration
		control     string
		out         outputFlag
	)
	cmd := &cobra.Command{
		Use:     "receive <ifname>",
		Aliases: []string{"count"},
		Short:   "Account for the frames arriving on an interface with an XDP program (the receiving end of a test)",
		Long: "receive attaches an XDP program to the interface and prints what arrived until Ctrl-C or --duration.\n" +
			"Stamped frames (xdpgen udp --stamp) are accounted per sender path: received, reordered, duplicates, and\n" +
			"gaps in the sequence numbers, the loss as far as a receiver can tell (frames lost after the last one\n" +
			"received do not show: the sender's count settles the loss). Frames whose sender asks for them are sent\n" +
			"back to it to be timed (xdpgen udp --latency). Unstamped UDP to the given destination ports (IPv4 or\n" +
			"IPv6, 802.1Q-tagged or not) is counted as a whole. Counted frames are dropped unless --pass is given.\n" +
			"On a veth the program also makes the interface able to receive redirected frames. Every generator's\n" +
			"stamped frames are taken unless --generator-id names those to take: on a host with other UDP traffic,\n" +
			"name them, so that a datagram that happens to start like a stamp reaches its socket. With --control the\n" +
			"receiver serves its per-path counts over HTTP (JSON), for `xdpgen search` on the sending host to settle\n" +
			"each trial with. `count` is another name for this command.",
		Example: "  xdpgen receive eth0\n" +
			"  xdpgen receive eth0 --control 192.0.2.10:7357 -o json",
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
			for _, g := range generators {
				if g > math.MaxUint32 {
					return &flagError{"--generator-id", fmt.Sprint(g), "generator ids are 32-bit: at most 4294967295"}
				}
			}
			rx, err := dataplane.AttachReceiver(args[0], dataplane.ReceiverOptions{FirstPort: port, LastPort: port + max(ports, 1) - 1,
				Pass: pass, AnyGenerator: len(generators) == 0})
			if err != nil {
				return err
			}
			defer rx.Close()
			for _, g := range generators {
				if err := rx.Serve(uint32(g)); err != nil {
					return err
				}
			}
			ctx := cmd.Context()
			if duration > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, duration)
				defer cancel()
			}
			var served <-chan error
			if control != "" {
				serving, stop := context.WithCancel(ctx)
				defer stop()
				addr, done, err := serveControl(serving, control, rx)
				if err != nil {
					return err
				}
				if out.format != "json" {
					fmt.Fprintf(cmd.OutOrStdout(), "Serving the counts for `xdpgen search` on %s\n", addr)
				}
				served = done
			}
			return receiveUntilDone(ctx, cmd.OutOrStdout(), rx, args[0], every, out.format == "json", served)
		},
	}
	fl := cmd.Flags()
	fl.Uint16VarP(&port, "dst-port", "p", 9, "first destination port to count unstamped frames to")
	fl.Uint16VarP(&ports, "dyn-ports", "d", 1, "count unstamped frames to N ports from --dst-port")
	fl.BoolVar(&pass, "pass", false, "let counted frames on to the stack (XDP_PASS) instead of dropping them")
	fl.UintSliceVar(&generators, "generator-id", nil, "take only these generators' stamped frames (xdpgen udp --generator-id); default: any")
	fl.StringVarP(&interval, "interval", "I", "1", "statistics interval: seconds or a duration")
	fl.DurationVar(&duration, "duration", 0, "stop after this long (default: until Ctrl-C)")
	fl.StringVar(&control, "control", "", "serve the per-path counts over HTTP on ADDRESS:PORT (or :PORT) for `xdpgen search`")
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
	// Paths are the stamped frames, per sender path.
	Paths []rxPath `json:"paths,omitempty"`
	// Stamped counts every stamped frame accounted since the receiver started, also of the paths forgotten
	// since (a search's settled trials).
	Stamped dataplane.Counter `json:"stamped"`
	// Reflected frames went back to their senders to be timed; StreamsFull were stamped frames not accounted.
	Reflected   uint64 `json:"reflected,omitempty"`
	StreamsFull uint64 `json:"streamsFull,omitempty"`
}

// rxPath is one sender path: a generator's frames from one sender to one of this host's addresses.
type rxPath struct {
	dataplane.PathKey
	Src     string `json:"src"`
	Streams int    `json:"streams"`
	dataplane.StreamCounts
	Received uint64 `json:"received"`
	// Gaps are the frames missing below the highest sequence number: the loss as far as the receiver can tell.
	Gaps uint64 `json:"gaps"`
}

// rxPaths sums the streams by path, in a stable order.
func rxPaths(streams []dataplane.Stream) []rxPath {
	byPath := map[dataplane.PathKey]*rxPath{}
	var order []dataplane.PathKey
	for _, s := range streams {
		k := dataplane.PathKey{Generator: s.Generator, Sender: s.Sender, Dst: s.Dst}
		p := byPath[k]
		if p == nil {
			p = &rxPath{PathKey: k, Src: s.Src.String()}
			byPath[k] = p
			order = append(order, k)
		}
		p.Streams++
	}
	counts := dataplane.Paths(streams)
	slices.SortFunc(order, func(a, b dataplane.PathKey) int {
		return cmp.Or(cmp.Compare(a.Generator, b.Generator), cmp.Compare(a.Sender, b.Sender), a.Dst.Compare(b.Dst))
	})
	out := make([]rxPath, len(order))
	for i, k := range order {
		p := byPath[k]
		p.StreamCounts = counts[k]
		p.Received, p.Gaps = p.Unique(), p.StreamCounts.Gaps()
		out[i] = *p
	}
	return out
}

// receiveUntilDone prints the counts every interval until ctx ends, or the control channel (served, if not nil)
// fails.
func receiveUntilDone(ctx context.Context, w io.Writer, rx *dataplane.Receiver, ifname string, every time.Duration, asJSON bool, served <-chan error) error {
	tick := time.NewTicker(every)
	defer tick.Stop()
	var prev uint64
	start := time.Now()
	prevAt := start
	if !asJSON {
		fmt.Fprintf(w, "Receiving on %s. Loss of stamped frames is estimated from sequence gaps (highest+1 - received): "+
			"frames lost after the last one received do not show; the sender's count settles it.\n", ifname)
	}
	report := func(kind string) error {
		c, err := rx.Counts()
		if err != nil {
			return err
		}
		streams, err := rx.Streams()
		if err != nil {
			return err
		}
		now := time.Now()
		all := c.Matched.Packets + c.Stamped.Packets
		pps := float64(all-prev) / now.Sub(prevAt).Seconds()
		if kind == "total" {
			pps = float64(all) / now.Sub(start).Seconds() // the average over the whole count
		}
		prev, prevAt = all, now
		paths := rxPaths(streams)
		if asJSON {
			return jsonLine(w, rxRecord{Type: kind, Time: now, Interface: ifname, Matched: c.Matched, Other: c.Other, PPS: pps, Paths: paths,
				Stamped: c.Stamped, Reflected: c.Reflected.Packets, StreamsFull: c.StreamsFull.Packets})
		}
		fmt.Fprintf(w, "%-8s %s: %12d pkts (%10.0f pps) %12d KiB matched, %d stamped, %d other frames\n",
			kind, ifname, c.Matched.Packets, pps, c.Matched.Bytes/1024, c.Stamped.Packets, c.Other.Packets)
		for _, p := range paths {
			fmt.Fprintf(w, "  generator %d sender %d %s -> %s (%d streams): received %d, gaps %d (loss estimate %.4f%%), reordered %d, duplicates %d\n",
				p.Generator, p.Sender, p.Src, p.Dst, p.Streams, p.Received, p.Gaps, 100*float64(p.Gaps)/float64(max(p.Expected, 1)),
				p.Reordered, p.Duplicates)
		}
		if c.StreamsFull.Packets > 0 {
			fmt.Fprintf(w, "  %d stamped frames not accounted: the stream table was full\n", c.StreamsFull.Packets)
		}
		return nil
	}
	for {
		select {
		case <-ctx.Done():
			return report("total")
		case err := <-served:
			if err == nil { // closed because ctx ended
				return report("total")
			}
			return errors.Join(fmt.Errorf("control channel: %w", err), report("total"))
		case <-tick.C:
			if err := report("period"); err != nil {
				return err
			}
		}
	}
}
