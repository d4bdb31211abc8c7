package app

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/xdpgen/xdpgen/agent/dataplane"
)

// flagError is bad command-line input: the flag, the value, and what would work.
type flagError struct {
	flag, value, problem string
}

func (e *flagError) Error() string {
	if e.value == "" {
		return fmt.Sprintf("%s: %s", e.flag, e.problem)
	}
	return fmt.Sprintf("%s %s: %s", e.flag, e.value, e.problem)
}

// flagFor names the command-line flag behind an engine field.
func flagFor(f dataplane.Field) string {
	switch f {
	case dataplane.FieldInterface:
		return "<ifname>"
	case dataplane.FieldRate:
		return "--rate/--rate-bps/--rate-l1-bps/--rate-percent"
	case dataplane.FieldDstPort:
		return "--dst-port/--dyn-ports"
	case dataplane.FieldSrcPort:
		return "--src-port/--src-port-range"
	case dataplane.FieldSizes:
		return "--sizes"
	case dataplane.FieldDstRange:
		return "--dst-range"
	case dataplane.FieldSrcRange:
		return "--src-range"
	}
	return "--" + string(f)
}

// parseRate reads a rate with an optional k, M or G suffix (powers of 1000): "500k", "1.5M", "10G".
func parseRate(flag, s string) (uint64, error) {
	if s == "" {
		return 0, nil
	}
	mult := 1.0
	num := s
	switch s[len(s)-1] {
	case 'k', 'K':
		mult, num = 1e3, s[:len(s)-1]
	case 'm', 'M':
		mult, num = 1e6, s[:len(s)-1]
	case 'g', 'G':
		mult, num = 1e9, s[:len(s)-1]
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || v <= 0 || v*mult > 1e15 {
		return 0, &flagError{flag, s, "not a rate: give a positive number with an optional k, M or G suffix, such as 500k or 1.5M"}
	}
	return uint64(v * mult), nil
}

// parsePercent reads a percentage, with or without a % sign: "10", "2.5%".
func parsePercent(flag, s string) (float64, error) {
	if s == "" {
		return 0, nil
	}
	v, err := strconv.ParseFloat(strings.TrimSuffix(s, "%"), 64)
	if err != nil || v <= 0 || v > 100 {
		return 0, &flagError{flag, s, "not a percentage of the line rate: give a number above 0 and at most 100, such as 10 or 2.5%"}
	}
	return v, nil
}

// parsePortRange reads "LO-HI" into a first port and a count.
func parsePortRange(flag, s string) (port, count uint16, err error) {
	lo, hi, ok := strings.Cut(s, "-")
	first, err1 := strconv.ParseUint(lo, 10, 16)
	last, err2 := strconv.ParseUint(hi, 10, 16)
	if !ok || err1 != nil || err2 != nil || first == 0 || last < first {
		return 0, 0, &flagError{flag, s, "not a port range: give FIRST-LAST with 1 <= FIRST <= LAST <= 65535, such as 1024-2047"}
	}
	return uint16(first), uint16(last - first + 1), nil
}

// parseSizes reads --sizes: MIN-MAX (a range, sent in order's order), a profile name, or SIZE:WEIGHT,... (a mix).
func parseSizes(s, order string) (*dataplane.FrameSizes, error) {
	const hint = "give MIN-MAX (a range such as 64-1518), a profile (%s) or SIZE:WEIGHT,... (a mix such as 60:7,566:4,1514:1)"
	bad := func(what string) error {
		return &flagError{"--sizes", s, what + ": " + fmt.Sprintf(hint, strings.Join(dataplane.SizeProfileNames(), ", "))}
	}
	sizes := &dataplane.FrameSizes{}
	switch order {
	case "stepped":
	case "random":
		sizes.Random = true
	default:
		return nil, &flagError{"--size-order", order, "use stepped or random"}
	}
	switch {
	case strings.Contains(s, ":"):
		for _, part := range strings.Split(s, ",") {
			size, weight, _ := strings.Cut(strings.TrimSpace(part), ":")
			sz, err1 := strconv.Atoi(size)
			w, err2 := strconv.Atoi(weight)
			if err1 != nil || err2 != nil {
				return nil, bad(fmt.Sprintf("%q is not SIZE:WEIGHT", part))
			}
			sizes.Mix = append(sizes.Mix, dataplane.WeightedSize{Size: sz, Weight: w})
		}
	case strings.Contains(s, "-") && s[0] >= '0' && s[0] <= '9':
		lo, hi, _ := strings.Cut(s, "-")
		var err1, err2 error
		sizes.Min, err1 = strconv.Atoi(lo)
		sizes.Max, err2 = strconv.Atoi(hi)
		if err1 != nil || err2 != nil {
			return nil, bad("not a range")
		}
	default:
		mix, err := dataplane.SizeProfile(dataplane.FieldSizes, s)
		if err != nil {
			return nil, dataplane.RenameFields(err, flagFor)
		}
		sizes.Mix = mix
	}
	return sizes, nil
}

// parseInterval reads seconds ("2", "0.5", like xdp-trafficgen) or a Go duration ("500ms").
func parseInterval(flag, s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		secs, ferr := strconv.ParseFloat(s, 64)
		if ferr != nil {
			return 0, &flagError{flag, s, "not an interval: give seconds (2, 0.5) or a duration (500ms)"}
		}
		d = time.Duration(secs * float64(time.Second))
	}
	if d < 10*time.Millisecond {
		return 0, &flagError{flag, s, "too short: use at least 10ms"}
	}
	return d, nil
}

// sendFlags are the flags udp and tcp share: where to send, how much, on how many threads, and how to print.
type sendFlags struct {
	dstAddr, srcAddr string
	numPackets       uint64
	threads          int
	interval         string
	size             int
	duration         time.Duration
	out              outputFlag
}

// sendHelp is the help text of the shared flags whose meaning differs between the commands.
type sendHelp struct {
	dstAddr, numPackets, size, duration string
}

func (f *sendFlags) register(cmd *cobra.Command, help sendHelp) {
	fl := cmd.Flags()
	fl.StringVarP(&f.dstAddr, "dst-addr", "a", "", help.dstAddr)
	fl.StringVarP(&f.srcAddr, "src-addr", "A", "", "source address (default: the route's preferred source)")
	fl.Uint64VarP(&f.numPackets, "num-packets", "n", 0, help.numPackets)
	fl.IntVarP(&f.threads, "threads", "t", 1, "worker threads, each pinned to its own CPU")
	fl.StringVarP(&f.interval, "interval", "I", "1", "statistics interval: seconds or a duration")
	fl.IntVarP(&f.size, "size", "s", 0, help.size+"; alias --pkt-size, as in xdp-trafficgen")
	fl.SetNormalizeFunc(pktSizeIsSize)
	fl.DurationVar(&f.duration, "duration", 0, help.duration)
	f.out.register(cmd)
}

// pktSizeIsSize makes --pkt-size, xdp-trafficgen's name for the frame size, another name for --size, so that its
// command lines work unchanged; the help lists --size alone.
func pktSizeIsSize(_ *pflag.FlagSet, name string) pflag.NormalizedName {
	if name == "pkt-size" {
		name = "size"
	}
	return pflag.NormalizedName(name)
}

// parse checks the shared flags and reads the source address into src and the destination addresses (one, or
// several separated by commas); dstAddrHint says what --dst-addr is when it is missing (empty: it may be, when
// another flag names the destinations), and name maps the engine's fields to this command's flags.
func (f *sendFlags) parse(dstAddrHint string, name func(dataplane.Field) string, src *netip.Addr) (time.Duration, []netip.Addr, error) {
	if err := f.out.check(); err != nil {
		return 0, nil, err
	}
	interval, err := parseInterval("--interval", f.interval)
	if err != nil {
		return 0, nil, err
	}
	if f.dstAddr == "" && dstAddrHint != "" {
		return 0, nil, &flagError{"--dst-addr", "", "required: " + dstAddrHint}
	}
	if f.duration < 0 {
		return 0, nil, &flagError{"--duration", f.duration.String(), "must be positive"}
	}
	var dsts []netip.Addr
	for _, s := range strings.Split(f.dstAddr, ",") {
		if f.dstAddr == "" {
			break
		}
		dst, err := dataplane.ParseAddr(dataplane.FieldDstAddr, strings.TrimSpace(s))
		if err != nil {
			return 0, nil, dataplane.RenameFields(err, name)
		}
		dsts = append(dsts, dst)
	}
	if *src, err = dataplane.ParseAddr(dataplane.FieldSrcAddr, f.srcAddr); err != nil {
		return 0, nil, dataplane.RenameFields(err, name)
	}
	return interval, dsts, nil
}
