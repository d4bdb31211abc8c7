package agent

import (
	"context"
	"errors"
	"fmt"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/xdpgen/xdpgen/agent/dataplane"
	xdpgenv1alpha1 "github.com/xdpgen/xdpgen/api/v1alpha1"
)

// counters are packet and byte counts per XDP verdict.
type counters [len(dataplane.Actions)]dataplane.Counter

// countersOf reads the per-verdict counts a report already holds: what an earlier incarnation of the agent sent.
func countersOf(st xdpgenv1alpha1.NodeReportStatus) counters {
	var c counters
	for _, ac := range st.Actions {
		for i, a := range dataplane.Actions {
			if a.String() == string(ac.Action) {
				c[i] = dataplane.Counter{Packets: uint64(ac.Packets), Bytes: uint64(ac.Bytes)}
			}
		}
	}
	return c
}

// earlierCounts is what earlier incarnations of the agent counted for a run.
type earlierCounts struct {
	frames counters
	// tcp is what the connections of a tcp run counted; nil for udp.
	tcp *xdpgenv1alpha1.TCPStatus
	// sizes are the frames per size bucket of a run whose sizes vary.
	sizes []xdpgenv1alpha1.SizeCount
	// egressDropped are the frames the egress interface refused.
	egressDropped int64
}

// earlierCountsOf reads what a report already holds: what earlier incarnations of the agent counted.
func earlierCountsOf(st xdpgenv1alpha1.NodeReportStatus) earlierCounts {
	return earlierCounts{frames: countersOf(st), tcp: st.TCP, sizes: st.Sizes, egressDropped: st.EgressDroppedPackets}
}

// sizesWith is the frames per size bucket of this run (cur, one bucket when the size is fixed: then none is
// reported) added to those of earlier incarnations (base), bucket by bucket.
func sizesWith(base []xdpgenv1alpha1.SizeCount, cur []dataplane.SizeCount) []xdpgenv1alpha1.SizeCount {
	if len(cur) <= 1 {
		return base
	}
	sizes := make([]xdpgenv1alpha1.SizeCount, len(cur))
	for i, c := range cur {
		sizes[i] = xdpgenv1alpha1.SizeCount{Min: int32(c.Min), Max: int32(c.Max), Packets: int64(c.Packets)}
		for _, b := range base {
			if b.Min == sizes[i].Min && b.Max == sizes[i].Max {
				sizes[i].Packets += b.Packets
			}
		}
	}
	return sizes
}

// statusWith is st with the counts of this run (cur) added to those of earlier incarnations (base), and the
// rates since the previous snapshot.
func statusWith(st xdpgenv1alpha1.NodeReportStatus, base earlierCounts, cur, prev stats) xdpgenv1alpha1.NodeReportStatus {
	st.Actions = nil
	st.Packets, st.Bytes = 0, 0
	st.PacketsPerSecond, st.BitsPerSecond = 0, 0
	for i, a := range dataplane.Actions {
		total := dataplane.Counter{Packets: base.frames[i].Packets + cur.frames.Actions[a].Packets,
			Bytes: base.frames[i].Bytes + cur.frames.Actions[a].Bytes}
		if total.Packets == 0 {
			continue
		}
		st.Actions = append(st.Actions, xdpgenv1alpha1.ActionCount{Action: xdpgenv1alpha1.XDPAction(a.String()),
			Packets: int64(total.Packets), Bytes: int64(total.Bytes)})
		// XDP_PASS is what an injecting run hands its node's stack.
		if a == dataplane.ActionRedirect || a == dataplane.ActionTX || a == dataplane.ActionPass {
			st.Packets += int64(total.Packets)
			st.Bytes += int64(total.Bytes)
		}
	}
	d := cur.frames.Since(prev.frames)
	for _, a := range []dataplane.Action{dataplane.ActionRedirect, dataplane.ActionTX, dataplane.ActionPass} {
		r := d.Rate(a)
		st.PacketsPerSecond += int64(r.PacketsPerSecond)
		st.BitsPerSecond += int64(r.BitsPerSecond)
	}
	st.TCP = tcpStatusWith(base.tcp, cur.tcp, prev.tcp)
	st.Sizes = sizesWith(base.sizes, cur.frames.Sizes)
	st.EgressDroppedPackets = base.egressDropped + int64(cur.frames.Egress.TxDropped)
	return st
}

// tcpStatusWith is the connections' counts of this run (cur) added to those of earlier incarnations (base), and
// the goodput since the previous snapshot; nil for a run without connections.
func tcpStatusWith(base *xdpgenv1alpha1.TCPStatus, cur, prev *dataplane.TCPStats) *xdpgenv1alpha1.TCPStatus {
	if base == nil && cur == nil {
		return nil
	}
	var t xdpgenv1alpha1.TCPStatus
	if base != nil {
		t = *base
		t.GoodputBitsPerSecond = 0 // the earlier incarnation's rate, not this one's
	}
	if cur != nil {
		t.Add(xdpgenv1alpha1.TCPStatus{BytesAcknowledged: int64(cur.Total.BytesAcked), SegmentsSent: int64(cur.Total.SegmentsSent),
			SegmentsRetransmitted: int64(cur.Total.SegmentsRetransmitted), BytesRetransmitted: int64(cur.Total.BytesRetransmitted)})
		if prev != nil {
			t.GoodputBitsPerSecond = int64(cur.Since(*prev).Goodput())
		}
	}
	return &t
}

// withoutRates is st of a node that no longer sends.
func withoutRates(st xdpgenv1alpha1.NodeReportStatus) xdpgenv1alpha1.NodeReportStatus {
	st.PacketsPerSecond, st.BitsPerSecond = 0, 0
	if st.TCP != nil {
		tcp := *st.TCP
		tcp.GoodputBitsPerSecond = 0
		st.TCP = &tcp
	}
	return st
}

// protocolNote says what the protocol counted besides the frames, for the report's message; empty for udp.
func protocolNote(st xdpgenv1alpha1.NodeReportStatus) string {
	if st.TCP == nil {
		return ""
	}
	return fmt.Sprintf("%d bytes acknowledged by the server, %d segments retransmitted", st.TCP.BytesAcknowledged, st.TCP.SegmentsRetransmitted)
}

// reportWriter writes this node's NodeReport status. Writes are merge patches against the last status the API
// server took, so a write that failed (the API server was away) is carried by the next one.
type reportWriter struct {
	client  client.Client
	report  *xdpgenv1alpha1.NodeReport
	metrics *metrics
	// confirmed, when set, is called after each write the API server took: the run's dead-man switch.
	confirmed func()
}

// writeTimeout bounds one write, so that an unreachable API server never stalls the run.
const writeTimeout = 5 * time.Second

func (w *reportWriter) patch(ctx context.Context, st xdpgenv1alpha1.NodeReportStatus) error {
	ctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	// The heartbeat: the controller loses a node whose report stops moving.
	st.LastUpdateTime = now()
	// A message longer than the API takes would get the whole report rejected.
	st.Message = xdpgenv1alpha1.ShortenMessage(st.Message, xdpgenv1alpha1.MaxMessageLength)
	obj := w.report.DeepCopy()
	obj.Status = st
	if err := w.client.Status().Patch(ctx, obj, client.MergeFrom(w.report)); err != nil {
		return err
	}
	w.report = obj
	if w.confirmed != nil {
		w.confirmed()
	}
	return nil
}

// write reports progress once; a failure is logged and left to the next write.
func (w *reportWriter) write(ctx context.Context, st xdpgenv1alpha1.NodeReportStatus) {
	w.metrics.set(st)
	if err := w.patch(ctx, st); err != nil {
		log.FromContext(ctx).Info("could not write the NodeReport; the next write carries it", "error", err.Error())
	}
}

// writeFinal reports the end of a run, retrying until the API server takes it: the controller decides
// completion from this write. It gives up only when the agent itself is going away.
func (w *reportWriter) writeFinal(ctx context.Context, st xdpgenv1alpha1.NodeReportStatus) {
	w.metrics.set(st)
	for backoff := 500 * time.Millisecond; ; backoff = min(2*backoff, 10*time.Second) {
		err := w.patch(context.WithoutCancel(ctx), st)
		if err == nil {
			return
		}
		log.FromContext(ctx).Info("could not write the final NodeReport; retrying", "error", err.Error(), "in", backoff)
		select {
		case <-ctx.Done():
			// Shutting down: one last try with a deadline of its own.
			last, cancel := context.WithTimeout(context.WithoutCancel(ctx), finalWriteTimeout)
			defer cancel()
			_ = w.patch(last, st)
			return
		case <-time.After(backoff):
		}
	}
}

// stopped reports a run that was stopped from outside. A shutting-down agent reports what it sent, for the next
// agent on the node to finish the run; a run whose generator no longer selects the node ends Failed, saying so.
// Other stops write nothing: after a spec change the next run writes, after a deletion there is no report left
// to write.
func (w *reportWriter) stopped(ctx context.Context, st xdpgenv1alpha1.NodeReportStatus, base earlierCounts, gen engine, podName string) {
	cause := context.Cause(ctx)
	if !errors.Is(cause, errShutdown) && !errors.Is(cause, errUnselected) {
		return
	}
	if gen != nil { // nil for a node that only receives
		if cur, err := gen.Stats(); err == nil {
			st = statusWith(st, base, cur, cur)
		}
	}
	if errors.Is(cause, errShutdown) {
		st.Message = fmt.Sprintf("agent %s stopped after %d packets (pod terminating); the next agent on this node finishes the run", podName, st.Packets)
	} else {
		st.Phase, st.CompletionTime = xdpgenv1alpha1.PhaseFailed, now()
		st.Message = fmt.Sprintf("stopped after %d packets: the node's labels no longer match spec.nodeSelector", st.Packets)
	}
	last, cancel := context.WithTimeout(context.WithoutCancel(ctx), finalWriteTimeout)
	defer cancel()
	w.writeFinal(last, st)
}
