package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/xdpgen/xdpgen/agent/dataplane"
	"github.com/xdpgen/xdpgen/agent/dataplane/iperf3"
)

// tcpFlags are the udp command's flags where they make sense for TCP, and the TCP-only ones.
type tcpFlags struct {
	sendFlags
	dstPort        uint16
	flows          int
	connectTimeout time.Duration
	stallTimeout   time.Duration
	iperf3         bool
}

func newTCPCommand() *cobra.Command {
	var f tcpFlags
	cmd := &cobra.Command{
		Use:   "tcp <ifname>",
		Short: "Send TCP data over real connections to a server, with congestion control in XDP",
		Long: "tcp connects to a TCP server (real handshakes, from the kernel), takes the connections over, and sends\n" +
			"their data segments as XDP live frames. An XDP program on <ifname> takes the server's ACKs; congestion\n" +
			"control (slow start, congestion avoidance, fast retransmit, retransmission timeouts) runs in BPF. Each\n" +
			"segment's payload starts with its 8-byte big-endian stream offset, then byte i of a segment is i mod 256,\n" +
			"so the server can check the stream. At the end the connections close with a FIN.\n\n" +
			"With --iperf3 the server is an iperf3 server (iperf3 -s): xdpgen speaks its control protocol (a control\n" +
			"connection, the cookie each data stream starts with, the results exchange at the end), and the summary\n" +
			"shows the bytes the server says it received beside the bytes xdpgen saw acknowledged, which exclude the\n" +
			"cookies.",
		Example: "  xdpgen tcp eth0 -a 192.0.2.10 -p 5201 --iperf3 --duration 10s\n" +
			"  xdpgen tcp eth0 -a 2001:db8::10 -p 5201 --flows 8 -t 2 -n 1000000 --output json",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeInterface,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, interval, err := f.config(args[0])
			if err != nil {
				return err
			}
			return runTCP(cmd.Context(), cmd.OutOrStdout(), cfg, interval, f.out.format, f.iperf3)
		},
	}
	fl := cmd.Flags()
	f.register(cmd, sendHelp{
		dstAddr:    "the TCP server's IPv4 or IPv6 address (required)",
		numPackets: "send this many data segments in total, and stop once they are acknowledged (default: no limit)",
		size:       "Ethernet frame size of a segment in bytes (default: as large as the MSS allows)",
		duration:   "stop sending new data after this long (default: no limit)",
	})
	fl.Uint16VarP(&f.dstPort, "dst-port", "p", 0, "the port the server listens on (required)")
	fl.IntVar(&f.flows, "flows", 0, "connections, spread over the threads (default: one per thread)")
	fl.DurationVar(&f.connectTimeout, "connect-timeout", 3*time.Second, "give up on a handshake after this long")
	fl.DurationVar(&f.stallTimeout, "stall-timeout", 10*time.Second, "fail when a connection gets no acknowledgement for this long")
	fl.BoolVar(&f.iperf3, "iperf3", false, "the server is an iperf3 server (iperf3 -s): run an iperf3 test with it, and report what it received")
	return cmd
}

func (f *tcpFlags) config(ifname string) (dataplane.TCPConfig, time.Duration, error) {
	cfg := dataplane.TCPConfig{
		Interface: ifname, DstPort: f.dstPort, Flows: f.flows, Threads: f.threads, Segments: f.numPackets,
		FrameSize: f.size, Duration: f.duration, ConnectTimeout: f.connectTimeout, StallTimeout: f.stallTimeout,
	}
	interval, dsts, err := f.parse("the TCP server's IPv4 or IPv6 address (-a 192.0.2.10)", tcpFlagFor, &cfg.SrcAddr)
	if err != nil {
		return cfg, 0, err
	}
	if len(dsts) > 1 {
		return cfg, 0, &flagError{"--dst-addr", f.dstAddr, "give one server address: a tcp run connects to one server"}
	}
	cfg.DstAddr = dsts[0]
	if f.dstPort == 0 {
		return cfg, 0, &flagError{"--dst-port", "", "required: the port the TCP server listens on (-p 5201)"}
	}
	for _, d := range []struct {
		flag string
		v    time.Duration
	}{{"--connect-timeout", f.connectTimeout}, {"--stall-timeout", f.stallTimeout}} {
		if d.v < 0 {
			return cfg, 0, &flagError{d.flag, d.v.String(), "must be positive"}
		}
	}
	return cfg, interval, nil
}

// tcpFlagFor is flagFor for the tcp command, which has no --dyn-ports.
func tcpFlagFor(f dataplane.Field) string {
	if f == dataplane.FieldDstPort {
		return "--dst-port"
	}
	return flagFor(f)
}

// iperf3EndTimeout bounds the end of an iperf3 test: the results exchange, after the data is acknowledged.
const iperf3EndTimeout = 10 * time.Second

// runTCP connects, generates until the engine stops (count, duration, a failure) or ctx ends (Ctrl-C, which
// still lets the connections close cleanly), printing the counters every interval and a summary at the end.
// With withIperf3 the run is an iperf3 test, and the summary has the server's report.
func runTCP(ctx context.Context, w io.Writer, cfg dataplane.TCPConfig, interval time.Duration, format string, withIperf3 bool) error {
	var session *iperf3.Session
	if withIperf3 {
		cfg.BeforeConnect = func(ctx context.Context, dial func(context.Context) (net.Conn, error), flows int) ([]byte, error) {
			s, err := iperf3.Start(ctx, dial, iperf3.Params{Streams: flows, Duration: cfg.Duration})
			if err != nil {
				return nil, err
			}
			session = s
			return s.Cookie(), nil
		}
	}
	g, err := dataplane.NewTCPGenerator(ctx, cfg)
	if err != nil {
		if session != nil {
			session.Close()
		}
		return dataplane.RenameFields(err, tcpFlagFor)
	}
	defer g.Close()
	if session != nil {
		if err := session.WaitRunning(ctx); err != nil {
			session.Close()
			return err
		}
	}

	p := &tcpPrinter{printer: newPrinter(w, format)}
	name, index := g.Interface()
	p.start("Transmitting on", name, index, g.Flow())
	var endErr error
	err = runAndReport(ctx, g, interval, func(kind string, from, to dataplane.TCPStats) {
		var server *iperf3Report
		if kind == "summary" && session != nil {
			server, endErr = endIperf3(ctx, session, from, to)
		}
		p.report(kind, to.Since(from), to, server)
	})
	return errors.Join(err, endErr)
}

// endIperf3 ends the test with the flows' acknowledged bytes as what was sent, and pairs the server's count of
// each stream with them. A cancelled ctx (Ctrl-C) still lets the test end properly.
func endIperf3(ctx context.Context, s *iperf3.Session, from, to dataplane.TCPStats) (*iperf3Report, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), iperf3EndTimeout)
	defer cancel()
	sent := make([]iperf3.Sent, len(to.Flows))
	for i, f := range to.Flows {
		sent[i] = iperf3.Sent{Bytes: f.BytesAcked, Segments: f.SegmentsSent, Retransmits: f.SegmentsRetransmitted}
	}
	received, err := s.End(ctx, sent, to.At.Sub(from.At))
	if err != nil {
		return nil, err
	}
	r := &iperf3Report{AckedBytes: to.Total.BytesAcked}
	for i, st := range received {
		r.ReceivedBytes += st.Bytes
		r.Streams = append(r.Streams, iperf3StreamReport{
			ID: st.ID, LocalPort: to.Flows[i].LocalPort, ReceivedBytes: st.Bytes, AckedBytes: to.Flows[i].BytesAcked,
		})
	}
	return r, nil
}

// iperf3Report is the iperf3 server's count of what it received beside the bytes xdpgen saw acknowledged. Both
// exclude the cookie each data stream starts with: they are the bytes after it, which the server reads while
// the test runs.
type iperf3Report struct {
	ReceivedBytes uint64               `json:"receivedBytes"`
	AckedBytes    uint64               `json:"ackedBytes"`
	Streams       []iperf3StreamReport `json:"streams"`
}

// iperf3StreamReport is one data stream's: the server's stream id and xdpgen's flow, in flow order.
type iperf3StreamReport struct {
	ID            int    `json:"id"`
	LocalPort     uint16 `json:"localPort"`
	ReceivedBytes uint64 `json:"receivedBytes"`
	AckedBytes    uint64 `json:"ackedBytes"`
}

type tcpPrinter struct {
	*printer
}

// tcpRecord is one JSON line: the frames by XDP verdict as for udp, and the connections' counters.
type tcpRecord struct {
	jsonRecord
	TCP   *tcpJSON                 `json:"tcp,omitempty"`
	Flows []dataplane.TCPFlowStats `json:"flows,omitempty"`
	// Iperf3 is the iperf3 server's report, in the summary of an --iperf3 run.
	Iperf3 *iperf3Report `json:"iperf3,omitempty"`
}

type tcpJSON struct {
	// Total is the counters over the whole run; the rates are over the record's period.
	Total             dataplane.TCPCounters `json:"total"`
	GoodputBPS        float64               `json:"goodputBps"`
	RetransmittedRate float64               `json:"retransmittedBps"`
	// Idle is frames the send program dropped because no connection could send.
	Idle uint64 `json:"idle"`
	// Workers is the workers' threads' time on and waiting for their CPUs, in the summary.
	Workers *dataplane.SchedTimes `json:"workers,omitempty"`
}

func (p *tcpPrinter) report(kind string, d dataplane.TCPDelta, total dataplane.TCPStats, server *iperf3Report) {
	secs := d.Period.Seconds()
	retransRate := 0.0
	if secs > 0 {
		retransRate = float64(d.Total.BytesRetransmitted) * 8 / secs
	}
	if p.json != nil {
		rec := tcpRecord{
			jsonRecord: jsonRecord{Type: kind, Time: total.At, Seconds: secs, Actions: map[string]jsonAction{}, Egress: &total.Egress},
			TCP:        &tcpJSON{Total: total.Total, GoodputBPS: d.Goodput(), RetransmittedRate: retransRate, Idle: total.Idle},
		}
		for _, a := range dataplane.Actions {
			if total.Actions[a].Packets > 0 || a == dataplane.ActionRedirect {
				rec.Actions[a.String()] = jsonAction{Counter: total.Actions[a], Rate: d.Rate(a)}
			}
		}
		if kind == "summary" {
			rec.Flows, rec.Iperf3, rec.TCP.Workers = total.Flows, server, &total.Workers
		}
		_ = p.json.Encode(rec)
		return
	}
	heading := fmt.Sprintf("Period of %.6fs ending at %.6f", secs, float64(total.At.UnixMicro())/1e6)
	if kind == "summary" {
		heading = fmt.Sprintf("Summary: %.3fs", secs)
	}
	// The frame lines are udp's.
	p.printer.report(kind, heading, dataplane.Delta{Period: d.Period, Actions: d.Actions, Egress: d.Egress},
		dataplane.Stats{At: total.At, Actions: total.Actions, Egress: total.Egress})
	t := total.Total
	fmt.Fprintf(p.w, "%-13s %12d KiB acked (goodput %6.0f Mbits/s), %d segments sent, %d retransmitted (%.2f%%), %d fast retransmits, %d timeouts\n",
		"TCP", t.BytesAcked/1024, d.Goodput()/1e6, t.SegmentsSent, t.SegmentsRetransmitted,
		100*float64(t.SegmentsRetransmitted)/float64(max(t.SegmentsSent, 1)), t.FastRetransmits, t.Timeouts)
	if kind == "summary" {
		for i, f := range total.Flows {
			var notes []string
			if f.PeerClosed {
				notes = append(notes, "the peer closed its side")
			}
			fmt.Fprintf(p.w, "  flow %-3d port %-5d %12d KiB acked, %d segments sent, %d retransmitted, cwnd %d, srtt %s, %s%s\n",
				i, f.LocalPort, f.BytesAcked/1024, f.SegmentsSent, f.SegmentsRetransmitted, f.CongestionWindow,
				f.SRTT.Round(time.Microsecond), f.State, strings.Join(append([]string{""}, notes...), ", "))
		}
		if w := total.Workers; w.OnCPU > 0 {
			waited := float64(w.Waiting) / float64(w.OnCPU+w.Waiting)
			note := ""
			if waited > 0.1 {
				note = ": other threads share their CPUs, and a worker sends only while it has its CPU"
			}
			fmt.Fprintf(p.w, "%-13s on their CPUs %.3fs, waiting for them %.3fs (%.0f%%)%s\n", "workers",
				w.OnCPU.Seconds(), w.Waiting.Seconds(), 100*waited, note)
		}
	}
	if server != nil {
		fmt.Fprintf(p.w, "%-13s %d bytes received by the server, %d acknowledged to xdpgen (after the cookies)\n",
			"iperf3", server.ReceivedBytes, server.AckedBytes)
		for _, s := range server.Streams {
			fmt.Fprintf(p.w, "  stream %-3d port %-5d %d bytes received, %d acknowledged\n", s.ID, s.LocalPort, s.ReceivedBytes, s.AckedBytes)
		}
	}
}
