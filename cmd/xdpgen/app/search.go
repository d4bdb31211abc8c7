package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/xdpgen/xdpgen/agent/dataplane"
	"github.com/xdpgen/xdpgen/internal/search"
)

// searchFlags are what `xdpgen search` sends (a subset of udp's flags) and how it searches.
type searchFlags struct {
	dstAddr, srcAddr, dstMAC string
	dstPort, srcPort         uint16
	vlan                     uint16
	size, threads            int
	senderID                 uint32
	control                  string
	maxRate, minRate         string
	precision                string
	ndrLoss, pdrLoss         string
	duration, initial        time.Duration
	phases, maxTrials        int
	out                      outputFlag
}

// defaultControlPort is where `xdpgen search` looks for the receiver's control channel when --control gives no
// port.
const defaultControlPort = 7357

func newSearchCommand() *cobra.Command {
	var f searchFlags
	cmd := &cobra.Command{
		Use:   "search <ifname>",
		Short: "Find the highest rate a path carries without loss (NDR) and with little loss (PDR), trial by trial",
		Long: "search runs trials of stamped UDP to one destination, each at one rate for a while, and settles each\n" +
			"against what `xdpgen receive --control` at the far end accounted: the Non-Drop Rate (NDR) is the\n" +
			"highest rate whose trial lost no frame (or at most --ndr-loss), the Partial-Drop Rate (PDR) the highest\n" +
			"whose trial lost at most --pdr-loss (0.5% by default), as RFC 2544's throughput test and FD.io's\n" +
			"MLRsearch (RFC 9971) measure them. The first trial runs at --max-rate (default: as fast as this host\n" +
			"sends), the next at the rate the path forwarded in it; then bisection narrows each rate to --precision,\n" +
			"in --phases of growing trial duration up to --duration: only the final trials decide the result. A\n" +
			"trial that contradicts another of its phase is repeated once. Each trial is printed as it ends, then\n" +
			"the NDR and PDR in frames and bits per second (of Ethernet frames without FCS).",
		Example: "  # on the receiving host\n" +
			"  xdpgen receive eth0 --control 192.0.2.10:7357\n" +
			"  # on the sending host\n" +
			"  xdpgen search eth0 -a 192.0.2.10 --duration 10s\n" +
			"  xdpgen search eth0 -a 192.0.2.10 --max-rate 2M --precision 0.5% --pdr-loss 0.1% -o json",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeInterface,
		RunE: func(cmd *cobra.Command, args []string) error {
			udp, cfg, control, err := f.config(args[0], cmd)
			if err != nil {
				return err
			}
			return runSearch(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), udp, cfg, control, f.out.format)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.dstAddr, "dst-addr", "a", "", "the receiver's IPv4 or IPv6 address (required)")
	fl.StringVarP(&f.srcAddr, "src-addr", "A", "", "source address (default: the route's preferred source)")
	fl.StringVarP(&f.dstMAC, "dst-mac", "m", "", "destination MAC (default: resolved from the neighbour table)")
	fl.Uint16VarP(&f.dstPort, "dst-port", "p", 9, "destination port")
	fl.Uint16VarP(&f.srcPort, "src-port", "P", 9, "source port")
	fl.Uint16Var(&f.vlan, "vlan", 0, "tag frames with this 802.1Q VLAN ID")
	fl.IntVarP(&f.size, "size", "s", 0, "Ethernet frame size in bytes without FCS (default: 64, or the smallest stamped frame)")
	fl.IntVarP(&f.threads, "threads", "t", 1, "worker threads, each pinned to its own CPU")
	fl.Uint32Var(&f.senderID, "sender-id", 0, "this host's id in the stamps (default: from the host name)")
	fl.StringVar(&f.control, "control", strconv.Itoa(defaultControlPort), "the receiver's control channel: ADDRESS:PORT, or PORT on the --dst-addr host")
	fl.StringVar(&f.maxRate, "max-rate", "", "the first and highest rate, packets per second with k/M/G suffixes (default: as fast as this host sends)")
	fl.StringVar(&f.minRate, "min-rate", "", "the lowest rate tried (default: a thousandth of the maximum)")
	fl.StringVar(&f.precision, "precision", "1%", "stop when each rate is known within this share of it")
	fl.StringVar(&f.ndrLoss, "ndr-loss", "0", "the loss ratio that still counts as no drop (NDR), as 0.001 or 0.1%")
	fl.StringVar(&f.pdrLoss, "pdr-loss", "0.5%", "the loss ratio of the partial-drop rate (PDR); off: search for NDR alone")
	fl.DurationVar(&f.duration, "duration", search.DefaultFinalDuration, "the duration of the final trials, which decide the result")
	fl.DurationVar(&f.initial, "initial-duration", 0, "the duration of the first phase's trials (default: a tenth of --duration)")
	fl.IntVar(&f.phases, "phases", search.DefaultPhases, "phases from --initial-duration to --duration, each halving the width it stops at")
	fl.IntVar(&f.maxTrials, "max-trials", search.DefaultMaxTrials, "stop with what is known after this many trials")
	f.out.register(cmd)
	return cmd
}

// config turns the flags into the trials' UDP configuration (without rate, duration and stamp ids, which each
// trial sets), the search's configuration, and the control channel's address.
func (f *searchFlags) config(ifname string, cmd *cobra.Command) (dataplane.UDPConfig, search.Config, netip.AddrPort, error) {
	var (
		udp     dataplane.UDPConfig
		cfg     search.Config
		control netip.AddrPort
		err     error
	)
	if err := f.out.check(); err != nil {
		return udp, cfg, control, err
	}
	if f.dstAddr == "" {
		return udp, cfg, control, &flagError{"--dst-addr", "", "required: the IPv4 or IPv6 address of the host running `xdpgen receive --control`"}
	}
	udp = dataplane.UDPConfig{Interface: ifname, DstPort: f.dstPort, SrcPort: f.srcPort, VLAN: f.vlan, FrameSize: f.size, Threads: f.threads,
		Stamp: &dataplane.Stamp{Sender: f.senderID}}
	if !cmd.Flags().Changed("sender-id") {
		udp.Stamp.Sender = hostID()
	}
	if udp.DstAddr, err = dataplane.ParseAddr(dataplane.FieldDstAddr, f.dstAddr); err != nil {
		return udp, cfg, control, dataplane.RenameFields(err, flagFor)
	}
	if udp.SrcAddr, err = dataplane.ParseAddr(dataplane.FieldSrcAddr, f.srcAddr); err != nil {
		return udp, cfg, control, dataplane.RenameFields(err, flagFor)
	}
	if udp.DstMAC, err = dataplane.ParseMAC(dataplane.FieldDstMAC, f.dstMAC); err != nil {
		return udp, cfg, control, dataplane.RenameFields(err, flagFor)
	}
	if control, err = parseControl(f.control, udp.DstAddr); err != nil {
		return udp, cfg, control, err
	}
	maxRate, err := parseRate("--max-rate", f.maxRate)
	if err != nil {
		return udp, cfg, control, err
	}
	minRate, err := parseRate("--min-rate", f.minRate)
	if err != nil {
		return udp, cfg, control, err
	}
	cfg = search.Config{MaxRate: float64(maxRate), MinRate: float64(minRate), FinalDuration: f.duration, InitialDuration: f.initial,
		Phases: f.phases, MaxTrials: f.maxTrials}
	if cfg.Precision, err = parseRatio("--precision", f.precision); err != nil {
		return udp, cfg, control, err
	}
	ndr, err := parseRatio("--ndr-loss", f.ndrLoss)
	if err != nil {
		return udp, cfg, control, err
	}
	cfg.Goals = []search.Goal{{Name: "NDR", LossRatio: ndr}}
	if f.pdrLoss != "off" {
		pdr, err := parseRatio("--pdr-loss", f.pdrLoss)
		if err != nil {
			return udp, cfg, control, err
		}
		if pdr <= ndr {
			return udp, cfg, control, &flagError{"--pdr-loss", f.pdrLoss, fmt.Sprintf("the PDR's loss ratio must be above the NDR's (%g), or off", ndr)}
		}
		cfg.Goals = append(cfg.Goals, search.Goal{Name: "PDR", LossRatio: pdr})
	}
	cfg, err = cfg.Validated()
	return udp, cfg, control, renameSearchFields(err)
}

// searchFlag names the flag behind a search.Config field.
var searchFlag = map[search.Field]string{
	search.FieldGoals: "--ndr-loss/--pdr-loss", search.FieldMaxRate: "--max-rate", search.FieldMinRate: "--min-rate",
	search.FieldPrecision: "--precision", search.FieldFinalDuration: "--duration", search.FieldInitialDuration: "--initial-duration",
	search.FieldPhases: "--phases", search.FieldMaxTrials: "--max-trials",
}

// renameSearchFields turns the search's configuration errors into flag errors.
func renameSearchFields(err error) error {
	if err == nil {
		return nil
	}
	errs := []error{err}
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		errs = joined.Unwrap()
	}
	for i, e := range errs {
		var ce *search.ConfigError
		if errors.As(e, &ce) {
			errs[i] = errors.New(ce.Message(searchFlag[ce.Field]))
		}
	}
	return errors.Join(errs...)
}

// parseRatio reads a share as a fraction (0.005) or a percentage (0.5%).
func parseRatio(flag, s string) (float64, error) {
	num, pct := strings.CutSuffix(s, "%")
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || v < 0 || math.IsInf(v, 0) {
		return 0, &flagError{flag, s, "not a ratio: give a fraction such as 0.005 or a percentage such as 0.5%"}
	}
	if pct {
		v /= 100
	}
	return v, nil
}

// parseControl reads the control channel's address: ADDRESS:PORT, or a PORT on dst.
func parseControl(s string, dst netip.Addr) (netip.AddrPort, error) {
	if port, err := strconv.ParseUint(s, 10, 16); err == nil && port > 0 {
		return netip.AddrPortFrom(dst, uint16(port)), nil
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		host, port, splitErr := net.SplitHostPort(s)
		if splitErr != nil || host != "" {
			return ap, &flagError{"--control", s, "give ADDRESS:PORT (192.0.2.10:7357, [2001:db8::10]:7357) or a PORT on the --dst-addr host"}
		}
		return parseControl(port, dst)
	}
	return ap, nil
}

// runSearch searches the path to udp's destination, each trial a new stamped run settled against the
// receiver's counts, and prints each trial as it ends and the result.
func runSearch(ctx context.Context, w, warnings io.Writer, udp dataplane.UDPConfig, cfg search.Config, control netip.AddrPort, format string) error {
	// A generator made once up front checks the configuration against this host before the first trial, and
	// says what the trials will send (their generator ids count up from the one it shows).
	firstGenerator := randomID()
	udp.Stamp.Generator = firstGenerator
	g, err := dataplane.NewUDPGenerator(udp)
	if err != nil {
		return dataplane.RenameFields(err, flagFor)
	}
	name, index := g.Interface()
	flow, frameSize := g.Flow(), g.FrameSize()
	if err := g.Close(); err != nil {
		return err
	}
	p := newSearchPrinter(w, format, frameSize)
	p.start(name, index, flow, control, cfg)
	tr := &trialRunner{udp: udp, warnings: warnings, control: newControlClient(control), firstGenerator: firstGenerator}
	started := time.Now()
	res, err := search.Run(ctx, cfg, tr.run, p.trial)
	p.result(res, time.Since(started))
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("interrupted after %d trials: the rates above are the bounds found so far", len(res.Trials))
	}
	if err != nil {
		return dataplane.RenameFields(err, flagFor)
	}
	if !res.Complete {
		return fmt.Errorf("the search did not converge in %d trials (--max-trials): the rates above are the bounds found so far", cfg.MaxTrials)
	}
	return nil
}

// trialRunner runs a search's trials: each a UDP run with a generator id of its own, so that the receiver
// accounts each trial apart, settled once the frames in flight have arrived.
type trialRunner struct {
	udp            dataplane.UDPConfig
	warnings       io.Writer
	control        *controlClient
	firstGenerator uint32
	trials         uint32
}

// Settling a trial: what arrives after the sender stopped is in flight (queued on the path); once the count
// has not moved for settleQuiet, the rest is lost. settleTimeout bounds the wait on a path that keeps trickling.
const (
	// trialGuard x the trial's duration is how long a trial may take to send its frames.
	trialGuard    = 3
	settleQuiet   = 200 * time.Millisecond
	settlePoll    = 20 * time.Millisecond
	settleTimeout = 5 * time.Second
)

// shortAttempts is how many times a trial is run when the sender falls short of its frames (its CPU taken by
// something else) before the search gives up.
const shortAttempts = 3

func (r *trialRunner) run(ctx context.Context, rate float64, d time.Duration) (search.Counts, error) {
	for attempt := 1; ; attempt++ {
		c, want, err := r.attempt(ctx, rate, d)
		if err != nil || c.Sent >= want {
			return c, err
		}
		short := fmt.Sprintf("sent %d of %d frames in %s: this host could not send %.0f pps", c.Sent, want, trialGuard*d, rate)
		if attempt == shortAttempts {
			return c, fmt.Errorf("%s, %d times: it is too busy, or the rate is beyond it (lower --max-rate)", short, shortAttempts)
		}
		fmt.Fprintf(r.warnings, "xdpgen: %s (busy?): running the trial again\n", short)
	}
}

// attempt runs one trial and settles it: what was sent and received, and how many frames should have been sent
// (0: as many as the sender could).
func (r *trialRunner) attempt(ctx context.Context, rate float64, d time.Duration) (search.Counts, uint64, error) {
	cfg := r.udp
	stamp := *cfg.Stamp
	stamp.Generator = r.firstGenerator + r.trials
	r.trials++
	cfg.Stamp, cfg.Duration = &stamp, d
	if rate > 0 {
		// Exactly rate x duration frames, paced: a sender starved of its CPU for a moment catches up rather
		// than falling short, and the trial is what it says it is. The duration only guards against a sender
		// that cannot keep up at all.
		cfg.RatePPS, cfg.Packets, cfg.Duration = uint64(math.Round(rate)), uint64(math.Round(rate*d.Seconds())), trialGuard*d
	}
	g, err := dataplane.NewUDPGenerator(cfg)
	if err != nil {
		return search.Counts{}, 0, err
	}
	defer g.Close()
	if err := g.Run(ctx); err != nil {
		return search.Counts{}, 0, err
	}
	stats, err := g.Stats()
	if err != nil {
		return search.Counts{}, 0, err
	}
	c := search.Counts{Sent: stats.Destinations[0].Packets}
	last, quietSince := uint64(math.MaxUint64), time.Now()
	for deadline := time.Now().Add(settleTimeout); ; {
		n, err := r.control.received(ctx, stamp.Generator, stamp.Sender, cfg.DstAddr)
		if err != nil {
			return c, 0, err
		}
		c.Received = n
		if n >= c.Sent || time.Now().After(deadline) {
			break
		}
		if n != last {
			last, quietSince = n, time.Now()
		} else if time.Since(quietSince) >= settleQuiet {
			break
		}
		select {
		case <-ctx.Done():
			return c, 0, ctx.Err()
		case <-time.After(settlePoll):
		}
	}
	return c, cfg.Packets, r.control.forget(ctx, stamp.Generator)
}

// searchPrinter prints a search's trials and result as text or one JSON object per line.
type searchPrinter struct {
	*printer
	frameBits float64
	trials    int
}

func newSearchPrinter(w io.Writer, format string, frameSize int) *searchPrinter {
	return &searchPrinter{printer: newPrinter(w, format), frameBits: float64(frameSize * 8)}
}

type searchStartRecord struct {
	Type      string        `json:"type"`
	Time      time.Time     `json:"time"`
	Interface string        `json:"interface"`
	Ifindex   int           `json:"ifindex"`
	Flow      string        `json:"flow"`
	Control   string        `json:"control"`
	Goals     []search.Goal `json:"goals"`
	Precision float64       `json:"precision"`
	Seconds   float64       `json:"finalTrialSeconds"`
}

type searchTrialRecord struct {
	Type  string    `json:"type"`
	Time  time.Time `json:"time"`
	Trial int       `json:"trial"`
	Phase int       `json:"phase"`
	// Seconds is the trial's duration.
	Seconds float64 `json:"seconds"`
	// PPS is the rate offered.
	PPS       float64 `json:"pps"`
	Sent      uint64  `json:"sent"`
	Received  uint64  `json:"received"`
	LossRatio float64 `json:"lossRatio"`
	Repeat    bool    `json:"repeat,omitempty"`
}

type searchGoalRecord struct {
	Name      string  `json:"name"`
	LossRatio float64 `json:"lossRatio"`
	// PPS and BPS are the rate found (0: even the minimum rate lost more); UpperPPS the lowest rate that lost
	// more (0: none did, PPS is the maximum).
	PPS      float64 `json:"pps"`
	BPS      float64 `json:"bps"`
	UpperPPS float64 `json:"upperPps,omitempty"`
}

type searchResultRecord struct {
	Type     string             `json:"type"`
	Time     time.Time          `json:"time"`
	Goals    []searchGoalRecord `json:"goals"`
	MaxPPS   float64            `json:"maxPps"`
	Trials   int                `json:"trials"`
	Complete bool               `json:"complete"`
	Seconds  float64            `json:"seconds"`
}

func (p *searchPrinter) start(name string, index int, flow string, control netip.AddrPort, cfg search.Config) {
	if p.json != nil {
		_ = p.json.Encode(searchStartRecord{Type: "start", Time: time.Now(), Interface: name, Ifindex: index, Flow: flow,
			Control: control.String(), Goals: cfg.Goals, Precision: cfg.Precision, Seconds: cfg.FinalDuration.Seconds()})
		return
	}
	var goals []string
	for _, g := range cfg.Goals {
		goals = append(goals, fmt.Sprintf("%s (loss at most %s)", g.Name, percent(g.LossRatio)))
	}
	fmt.Fprintf(p.w, "Searching on %s (ifindex %d), the receiver's counts from %s\n%s\n", name, index, control, flow)
	fmt.Fprintf(p.w, "Goals: %s; precision %s; %d phases of trials from %s to %s\n", strings.Join(goals, ", "), percent(cfg.Precision),
		cfg.Phases, cfg.InitialDuration, cfg.FinalDuration)
}

func (p *searchPrinter) trial(t search.Trial) {
	p.trials++
	if p.json != nil {
		_ = p.json.Encode(searchTrialRecord{Type: "trial", Time: time.Now(), Trial: p.trials, Phase: t.Phase, Seconds: t.Duration.Seconds(),
			PPS: t.Rate, Sent: t.Sent, Received: t.Received, LossRatio: t.LossRatio, Repeat: t.Repeat})
		return
	}
	repeat := ""
	if t.Repeat {
		repeat = "  (repeated: contradicted another trial)"
	}
	fmt.Fprintf(p.w, "trial %2d  phase %d  %8s  %12.0f pps  sent %12d  received %12d  loss %s%s\n",
		p.trials, t.Phase, t.Duration.Round(time.Millisecond), t.Rate, t.Sent, t.Received, percent(t.LossRatio), repeat)
}

func (p *searchPrinter) result(res search.Result, took time.Duration) {
	rec := searchResultRecord{Type: "result", Time: time.Now(), MaxPPS: res.MaxRate, Trials: len(res.Trials), Complete: res.Complete, Seconds: took.Seconds()}
	for _, g := range res.Goals {
		rec.Goals = append(rec.Goals, searchGoalRecord{Name: g.Name, LossRatio: g.LossRatio, PPS: g.Rate, BPS: g.Rate * p.frameBits, UpperPPS: g.Upper})
	}
	if p.json != nil {
		_ = p.json.Encode(rec)
		return
	}
	for _, g := range rec.Goals {
		switch {
		case g.PPS == 0 && g.UpperPPS == 0:
			fmt.Fprintf(p.w, "%s: not found\n", g.Name)
		case g.PPS == 0:
			fmt.Fprintf(p.w, "%s (loss at most %s): none: even %.0f pps lost more\n", g.Name, percent(g.LossRatio), g.UpperPPS)
		case g.UpperPPS == 0:
			fmt.Fprintf(p.w, "%s (loss at most %s): %.0f pps (%s), the maximum rate tried\n", g.Name, percent(g.LossRatio), g.PPS, bitRate(g.BPS))
		default:
			fmt.Fprintf(p.w, "%s (loss at most %s): %.0f pps (%s); %.0f pps lost more\n", g.Name, percent(g.LossRatio), g.PPS, bitRate(g.BPS), g.UpperPPS)
		}
	}
	complete := ""
	if !res.Complete {
		complete = ", incomplete"
	}
	fmt.Fprintf(p.w, "%d trials in %s%s\n", rec.Trials, took.Round(100*time.Millisecond), complete)
}

// percent prints a ratio as a percentage, to four significant digits.
func percent(r float64) string {
	return fmt.Sprintf("%.4g%%", 100*r)
}

// bitRate prints bits per second with an SI prefix.
func bitRate(bps float64) string {
	switch {
	case bps >= 1e9:
		return fmt.Sprintf("%.2f Gbit/s", bps/1e9)
	case bps >= 1e6:
		return fmt.Sprintf("%.2f Mbit/s", bps/1e6)
	default:
		return fmt.Sprintf("%.0f kbit/s", bps/1e3)
	}
}
