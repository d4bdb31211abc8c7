package app

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"k8s.io/cli-runtime/pkg/printers"

	xdpgenv1alpha1 "github.com/xdpgen/xdpgen/api/v1alpha1"
)

// The output formats of results.
const (
	formatTable = "table"
	formatWide  = "wide"
	formatJSON  = "json"
)

var formats = []string{formatTable, formatWide, formatJSON}

// render prints res in format (one of formats).
func render(w io.Writer, res *Results, format string) error {
	if format == formatJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	wide := format == formatWide
	// One tab writer per block: kubectl's remembers the widths of the columns it flushed.
	tw := printers.GetNewTabWriter(w)
	renderSummary(tw, res, wide)
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	tw = printers.GetNewTabWriter(w)
	if !res.Receivers {
		renderNodes(tw, res, wide)
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintf(w, "\nTrafficGenerator %s has no receivers: nothing in the cluster counts what arrives, so there is "+
			"no loss or latency to show.\nTo measure them per path, replace spec.destination.address with "+
			"spec.receivers (the nodes that count what arrives), such as\n  receivers:\n    nodeSelector:\n"+
			"      kubernetes.io/hostname: <node>\n", res.Name)
		return nil
	}
	renderPaths(tw, res, wide)
	if err := tw.Flush(); err != nil {
		return err
	}
	if res.Search != nil && len(res.Search.History) > 0 {
		fmt.Fprintln(w)
		tw = printers.GetNewTabWriter(w)
		renderTrials(tw, res.Search)
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	var unsettled, unreported bool
	for _, p := range res.Paths {
		unsettled = unsettled || p.ReceiverReported && !p.Settled
		unreported = unreported || !p.ReceiverReported
	}
	if unsettled || unreported {
		fmt.Fprintln(w)
	}
	if unsettled {
		fmt.Fprintln(w, "SETTLED no: the loss is not final (the sender is still sending, or the receiver's drain time "+
			"has not passed): LOST counts the gaps in the sequence numbers so far.")
	}
	if unreported {
		fmt.Fprintln(w, "SETTLED no report: only the sender reported this path; its receiver has not counted it yet "+
			"(kubectl get nodereports -n "+res.Namespace+" -l "+xdpgenv1alpha1.LabelGenerator+"="+
			xdpgenv1alpha1.LabelValue(res.Name)+" shows every node's report).")
	}
	return nil
}

func renderSummary(w io.Writer, res *Results, wide bool) {
	fmt.Fprintf(w, "Name:\t%s/%s\n", res.Namespace, res.Name)
	phase := fmt.Sprintf("%s (generation %d)", res.Phase, res.Generation)
	if res.StatusGeneration != res.Generation {
		phase = fmt.Sprintf("%s (of generation %d: the controller has not summed up generation %d yet)",
			res.Phase, res.StatusGeneration, res.Generation)
	}
	fmt.Fprintf(w, "Phase:\t%s\n", phase)
	if s := res.Search; s != nil {
		fmt.Fprintf(w, "Search:\t%s: %s\n", s.Phase, s.Message)
		if s.Trial != nil {
			fmt.Fprintf(w, "Trial:\t%d (what follows is this trial's)\n", s.Trial.Number)
		}
	}
	t := res.Totals
	sent := fmt.Sprintf("%d packets", t.SentPackets)
	if wide {
		sent += fmt.Sprintf(", %d bytes", t.SentBytes)
	}
	fmt.Fprintf(w, "Sent:\t%s\n", sent)
	if !res.Receivers {
		return
	}
	fmt.Fprintf(w, "Received:\t%d packets\n", t.ReceivedPackets)
	fmt.Fprintf(w, "Lost:\t%d packets (loss ratio %s)\n", t.LostPackets, t.LossRatio)
	if t.RTT == nil {
		fmt.Fprintf(w, "RTT:\tno samples\n")
		return
	}
	l := t.RTT
	if wide {
		fmt.Fprintf(w, "RTT:\tp50 %s, p90 %s, p99 %s, p99.9 %s, max %s (%d samples)\n", duration(l.P50.Duration),
			duration(l.P90.Duration), duration(l.P99.Duration), duration(l.P999.Duration), duration(l.Max.Duration), l.Samples)
	} else {
		fmt.Fprintf(w, "RTT:\tp50 %s, p99 %s, max %s (%d samples)\n", duration(l.P50.Duration),
			duration(l.P99.Duration), duration(l.Max.Duration), l.Samples)
	}
}

// renderTrials prints a search's finished trials.
func renderTrials(w io.Writer, s *xdpgenv1alpha1.SearchStatus) {
	row(w, "TRIAL", "PHASE", "DURATION", "PPS", "SENT", "RECEIVED", "LOSS")
	for _, h := range s.History {
		number := count(int64(h.Number))
		if h.Repeat {
			number += " (repeat)"
		}
		row(w, number, count(int64(h.Phase)), duration(h.Duration.Duration), count(h.PacketsPerSecond), count(h.SentPackets),
			count(h.ReceivedPackets), h.LossRatio)
	}
}

func renderNodes(w io.Writer, res *Results, wide bool) {
	header := []string{"NODE", "PHASE", "SENT"}
	if wide {
		header = append(header, "SENT-BYTES", "MESSAGE")
	}
	row(w, header...)
	for _, n := range res.Nodes {
		cells := []string{n.Node, n.Phase, count(n.SentPackets)}
		if wide {
			cells = append(cells, count(n.SentBytes), n.Message)
		}
		row(w, cells...)
	}
}

func renderPaths(w io.Writer, res *Results, wide bool) {
	header := []string{"SENDER", "RECEIVER", "SENT", "RECEIVED"}
	if wide {
		header = append(header, "RECEIVED-BYTES")
	}
	header = append(header, "LOST", "LOSS", "OUT-OF-ORDER", "DUPLICATES", "RTT-P50")
	if wide {
		header = append(header, "RTT-P90")
	}
	header = append(header, "RTT-P99")
	if wide {
		header = append(header, "RTT-P99.9")
	}
	row(w, append(header, "RTT-MAX", "SETTLED")...)
	for _, p := range res.Paths {
		cells := []string{p.Sender, p.Receiver, count(p.SentPackets)}
		received := []string{count(p.ReceivedPackets)}
		if wide {
			received = append(received, count(p.ReceivedBytes))
		}
		received = append(received, count(p.LostPackets), p.LossRatio, count(p.OutOfOrder), count(p.Duplicates))
		settled := "no"
		switch {
		case !p.ReceiverReported:
			for i := range received {
				received[i] = "-"
			}
			settled = "no report"
		case p.Settled:
			settled = "yes"
		}
		cells = append(cells, received...)
		rtt := func(pick func(*xdpgenv1alpha1.Latency) time.Duration) string {
			if p.RTT == nil {
				return "-"
			}
			return duration(pick(p.RTT))
		}
		cells = append(cells, rtt(func(l *xdpgenv1alpha1.Latency) time.Duration { return l.P50.Duration }))
		if wide {
			cells = append(cells, rtt(func(l *xdpgenv1alpha1.Latency) time.Duration { return l.P90.Duration }))
		}
		cells = append(cells, rtt(func(l *xdpgenv1alpha1.Latency) time.Duration { return l.P99.Duration }))
		if wide {
			cells = append(cells, rtt(func(l *xdpgenv1alpha1.Latency) time.Duration { return l.P999.Duration }))
		}
		cells = append(cells, rtt(func(l *xdpgenv1alpha1.Latency) time.Duration { return l.Max.Duration }), settled)
		row(w, cells...)
	}
}

func row(w io.Writer, cells ...string) {
	fmt.Fprintln(w, strings.Join(cells, "\t"))
}

func count(n int64) string { return strconv.FormatInt(n, 10) }

// duration prints d rounded to three significant digits, such as 1.05ms: the histogram's bounds are powers of two,
// whose exact values read badly in a table.
func duration(d time.Duration) string {
	unit := time.Duration(1)
	for d/unit >= 1000 {
		unit *= 10
	}
	return d.Round(unit).String()
}
