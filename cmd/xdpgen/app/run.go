package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"time"

	"github.com/xdpgen/xdpgen/agent/dataplane"
)

// runUDP generates until the engine stops (count, duration) or ctx ends (Ctrl-C), printing the counters every
// interval and a summary at the end, and with reflected frames asked for, the round-trip times. The generator
// is closed, and its XDP programs detached, on every path.
func runUDP(ctx context.Context, w io.Writer, cfg dataplane.UDPConfig, interval time.Duration, format string) error {
	var rx *dataplane.Receiver
	if cfg.Stamp != nil && cfg.Stamp.ReflectEvery > 0 {
		// First: the interface carries one XDP program, and the generator's egress may need one too.
		var err error
		if rx, err = dataplane.AttachReceiver(cfg.Interface, dataplane.ReceiverOptions{}); err != nil {
			return fmt.Errorf("--latency times the frames that come back with a receive program on %s: %w", cfg.Interface, err)
		}
		defer rx.Close()
		// Only this run's frames: the host's other UDP traffic passes, whatever its first bytes.
		if err := rx.Serve(cfg.Stamp.Generator); err != nil {
			return err
		}
	}
	g, err := dataplane.NewUDPGenerator(cfg)
	if err != nil {
		return dataplane.RenameFields(err, flagFor)
	}
	defer g.Close()

	p := newPrinter(w, format)
	name, index := g.Interface()
	verb := "Transmitting on"
	if cfg.Inject {
		verb = "Injecting into"
	}
	p.start(verb, name, index, g.Flow())
	err = runAndReport(ctx, g, interval, func(kind string, from, to dataplane.Stats) {
		if kind == "summary" {
			p.summary(to.Since(from), to)
		} else {
			p.period(to.Since(from), to)
		}
	})
	if err != nil || rx == nil {
		return err
	}
	time.Sleep(reflectedDrain)
	lat, err := rx.Latency(cfg.Stamp.Generator)
	if err != nil {
		return err
	}
	p.latency(g.Destinations(), lat)
	return nil
}

// reflectedDrain is how long a run waits after its last frame for the reflected ones still on their way back.
const reflectedDrain = 200 * time.Millisecond

// generator is a UDP or TCP generator as the commands drive it; S is its snapshot.
type generator[S any] interface {
	Run(context.Context) error
	Stats() (S, error)
	Close() error
}

// runAndReport runs g until it stops by itself or ctx ends (Ctrl-C, a normal end), handing report each
// interval's pair of snapshots as a "period" and, at the end, the first and the last as the "summary".
func runAndReport[S any](ctx context.Context, g generator[S], interval time.Duration, report func(kind string, from, to S)) error {
	first, err := g.Stats()
	if err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()

	tick := time.NewTicker(interval)
	defer tick.Stop()
	prev := first
	for {
		select {
		case runErr := <-done:
			last, err := g.Stats()
			if err != nil {
				return err
			}
			report("summary", first, last)
			if runErr != nil && !errors.Is(runErr, context.Canceled) {
				return runErr
			}
			return g.Close()
		case <-tick.C:
			cur, err := g.Stats()
			if err != nil {
				return err
			}
			report("period", prev, cur)
			prev = cur
		}
	}
}

// printer writes what xdp-trafficgen users expect to read, or one JSON object per line.
type printer struct {
	w    io.Writer
	json *json.Encoder
}

func jsonLine(w io.Writer, v any) error {
	return json.NewEncoder(w).Encode(v)
}

func newPrinter(w io.Writer, format string) *printer {
	p := &printer{w: w}
	if format == "json" {
		p.json = json.NewEncoder(w)
	}
	return p
}

type jsonAction struct {
	dataplane.Counter
	dataplane.Rate
}

type jsonRecord struct {
	Type      string                `json:"type"`
	Time      time.Time             `json:"time"`
	Interface string                `json:"interface,omitempty"`
	Ifindex   int                   `json:"ifindex,omitempty"`
	Flow      string                `json:"flow,omitempty"`
	Seconds   float64               `json:"seconds,omitempty"`
	Actions   map[string]jsonAction `json:"actions,omitempty"`
	// Egress is what the interface itself counted over the whole run.
	Egress *dataplane.InterfaceCounters `json:"egress,omitempty"`
	// Destinations are the frames sent to each destination over the whole run (summary of a UDP run).
	Destinations []dataplane.DestinationSent `json:"destinations,omitempty"`
	// Sizes are the frames sent per size bucket over the whole run (summary of a UDP run).
	Sizes []dataplane.SizeCount `json:"sizes,omitempty"`
	// Latency is the round-trip times per destination (a UDP run with --latency).
	Latency []latencyRecord `json:"latency,omitempty"`
}

type latencyRecord struct {
	Addr string `json:"addr"`
	dataplane.LatencySummary
}

// start says where the run sends (verb: "Transmitting on", or "Injecting into") and what.
func (p *printer) start(verb, name string, index int, flow string) {
	if p.json != nil {
		_ = p.json.Encode(jsonRecord{Type: "start", Time: time.Now(), Interface: name, Ifindex: index, Flow: flow})
		return
	}
	fmt.Fprintf(p.w, "%s %s (ifindex %d)\n%s\n", verb, name, index, flow)
}

func (p *printer) period(d dataplane.Delta, total dataplane.Stats) {
	p.report("period", fmt.Sprintf("Period of %.6fs ending at %.6f", d.Period.Seconds(), float64(total.At.UnixMicro())/1e6), d, total)
}

func (p *printer) summary(d dataplane.Delta, total dataplane.Stats) {
	p.report("summary", fmt.Sprintf("Summary: %.3fs", d.Period.Seconds()), d, total)
}

// report prints, per XDP verdict, the running totals and the rate over the period. Verdicts that never
// happened are left out, except XDP_REDIRECT, the one that sends.
func (p *printer) report(kind, heading string, d dataplane.Delta, total dataplane.Stats) {
	if p.json != nil {
		rec := jsonRecord{Type: kind, Time: total.At, Seconds: d.Period.Seconds(), Actions: map[string]jsonAction{}, Egress: &total.Egress}
		if kind == "summary" {
			rec.Destinations = total.Destinations
			rec.Sizes = total.Sizes
		}
		for _, a := range dataplane.Actions {
			if total.Actions[a].Packets > 0 || a == dataplane.ActionRedirect {
				rec.Actions[a.String()] = jsonAction{Counter: total.Actions[a], Rate: d.Rate(a)}
			}
		}
		_ = p.json.Encode(rec)
		return
	}
	fmt.Fprintln(p.w, heading)
	for _, a := range dataplane.Actions {
		c := total.Actions[a]
		if c.Packets == 0 && a != dataplane.ActionRedirect {
			continue
		}
		r := d.Rate(a)
		fmt.Fprintf(p.w, "%-13s %12d pkts (%10.0f pps) %12d KiB (%6.0f Mbits/s)\n",
			a, c.Packets, r.PacketsPerSecond, c.Bytes/1024, r.BitsPerSecond/1e6)
	}
	if note := total.EgressDrops(); note != "" {
		fmt.Fprintf(p.w, "%-13s %s\n", "egress", note)
	}
	if kind == "summary" {
		for _, dst := range total.Destinations {
			to := dst.Addr.String()
			if dst.Last.IsValid() {
				to += "-" + dst.Last.String()
			}
			fmt.Fprintf(p.w, "%-13s %12d pkts to %s\n", "sent", dst.Packets, to)
		}
		if len(total.Sizes) > 1 {
			sent := max(total.Actions[dataplane.ActionRedirect].Packets, 1)
			for _, b := range total.Sizes {
				fmt.Fprintf(p.w, "%-13s %12d pkts of %s (%.1f%%)\n", "size", b.Packets, b, 100*float64(b.Packets)/float64(sent))
			}
		}
	}
}

// latency prints the round-trip times to each destination.
func (p *printer) latency(dsts []netip.Addr, lat map[netip.Addr]*dataplane.LatencyHistogram) {
	var recs []latencyRecord
	for _, d := range dsts {
		var s dataplane.LatencySummary
		if h := lat[d]; h != nil {
			s = h.Summary()
		}
		recs = append(recs, latencyRecord{Addr: d.String(), LatencySummary: s})
	}
	if p.json != nil {
		_ = p.json.Encode(jsonRecord{Type: "latency", Time: time.Now(), Latency: recs})
		return
	}
	for _, r := range recs {
		if r.Samples == 0 {
			fmt.Fprintf(p.w, "RTT to %s: no reflected frame came back (is `xdpgen receive` running there?)\n", r.Addr)
			continue
		}
		fmt.Fprintf(p.w, "RTT to %s: %d samples, p50 %s, p90 %s, p99 %s, p99.9 %s, max %s (mean %s)\n", r.Addr, r.Samples,
			r.P50, r.P90, r.P99, r.P999, r.Max, r.Mean)
	}
}
