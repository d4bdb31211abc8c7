package agent

import (
	"cmp"
	"context"
	"fmt"
	"hash/fnv"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/xdpgen/xdpgen/agent/dataplane"
	xdpgenv1alpha1 "github.com/xdpgen/xdpgen/api/v1alpha1"
)

// Frames sent to receivers carry two ids (see dataplane's stamp): the generator's and the sending node's. A
// receiver serves every generator that sends to its node at once, and tells them, and their senders, apart by
// these ids alone.

// generatorID is the id a run stamps into its frames: the generator's UID and generation (and search trial),
// hashed, so that two generators, two generations of one, and two trials of a search never share sequence
// numbers at a receiver.
func generatorID(tg *xdpgenv1alpha1.TrafficGenerator) uint32 {
	id := string(tg.UID) + "/" + strconv.FormatInt(tg.Generation, 10)
	if trial := tg.TrialNumber(); trial > 0 {
		id += "/trial/" + strconv.FormatInt(int64(trial), 10)
	}
	return hash32(id)
}

// nodeID is the id a sending node stamps into its frames.
func nodeID(node string) uint32 { return hash32(node) }

func hash32(s string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(s))
	return h.Sum32()
}

// sender is one sending node of a run, as its receivers see it: its report of the current generation, if any.
type sender struct {
	node   string
	report *xdpgenv1alpha1.NodeReport
}

// settling says when a receiver's paths are final.
type settling struct {
	// drain is how long after a sender finished its frames may still arrive.
	drain time.Duration
	// silentAfter is how long a sender may go without writing its report before the receiver takes it for gone
	// (the controller's node-lost timeout, by default).
	silentAfter time.Duration
	// since is when the receiver started: a sender that never reported is gone silentAfter after it.
	since time.Time
}

// finishedAt is when a sender stopped sending, and whether it has: when its report says it finished, or when it
// last wrote a report that has gone silent for too long.
func (s settling) finishedAt(snd sender, now time.Time) (time.Time, bool) {
	if snd.report == nil {
		return s.since, now.Sub(s.since) >= s.silentAfter
	}
	st := snd.report.Status
	if st.SendCompletionTime != nil { // it may still be receiving: the frames it sent are all out
		return st.SendCompletionTime.Time, true
	}
	if st.Phase.Terminal() {
		if st.CompletionTime != nil {
			return st.CompletionTime.Time, true
		}
		return now, true
	}
	last := s.since
	if st.LastUpdateTime != nil {
		last = st.LastUpdateTime.Time
	}
	return last, now.Sub(last) >= s.silentAfter
}

// pathRows is a receiver's row of the run's path matrix: for every sender but itself, what it sent here (from the
// sender's report), what arrived, and the loss. A path is settled, its loss final, once its sender finished and
// the drain time passed; until then its loss is the gaps in the sequence numbers. settled says whether every path
// is.
func pathRows(receiver string, senders []sender, got map[string]dataplane.StreamCounts, oneWay map[string]*xdpgenv1alpha1.Latency,
	s settling, now time.Time) (rows []xdpgenv1alpha1.PathResult, settled bool) {
	settled = true
	for _, snd := range senders {
		if snd.node == receiver {
			continue // a node never sends to itself
		}
		counts := got[snd.node]
		row := xdpgenv1alpha1.PathResult{
			Sender: snd.node, Receiver: receiver,
			ReceivedPackets: int64(counts.Unique()), ReceivedBytes: int64(counts.Bytes),
			OutOfOrder: int64(counts.Reordered), Duplicates: int64(counts.Duplicates), OneWay: oneWay[snd.node].DeepCopy(),
		}
		if snd.report != nil {
			for _, p := range snd.report.Status.Sent {
				if p.Receiver == receiver {
					row.SentPackets, row.RTT = p.Packets, p.RTT.DeepCopy()
				}
			}
		}
		finished, done := s.finishedAt(snd, now)
		row.Settled = done && now.Sub(finished) >= s.drain
		row.LostPackets = int64(counts.Gaps())
		if row.Settled {
			row.LostPackets = int64(dataplane.SettlePath(uint64(row.SentPackets), counts).Lost)
		}
		row.LossRatio = xdpgenv1alpha1.LossRatio(row.LostPackets, max(row.SentPackets, row.ReceivedPackets+row.LostPackets))
		settled = settled && row.Settled
		rows = append(rows, row)
	}
	slices.SortFunc(rows, func(a, b xdpgenv1alpha1.PathResult) int { return cmp.Compare(a.Sender, b.Sender) })
	return rows, settled
}

// rxEngine is what runs need of an interface's receive program: dataplane.Receiver, or a fake in unit tests.
type rxEngine interface {
	Streams() ([]dataplane.Stream, error)
	Latency(generator uint32) (map[netip.Addr]*dataplane.LatencyHistogram, error)
	OneWay(generator uint32) (map[netip.Addr]*dataplane.LatencyHistogram, error)
	Serve(generator uint32) error
	Forget(generator uint32) error
	Close() error
}

// receiverSet shares an interface's receive program among the runs that use it: an interface carries one XDP
// program, and a node may receive for several generators, and time its own frames, on one interface at once.
type receiverSet struct {
	// attach attaches the receive program to an interface (in the engine's network namespace).
	attach func(ifname string) (rxEngine, error)

	mu          sync.Mutex
	byInterface map[string]*sharedReceiver
}

type sharedReceiver struct {
	rxEngine
	users int
}

// acquire returns the receive program of ifname, attaching it for the first user; release gives it back, and
// the last user's release detaches it.
func (s *receiverSet) acquire(ifname string) (rx rxEngine, release func(), err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	shared := s.byInterface[ifname]
	if shared == nil {
		e, err := s.attach(ifname)
		if err != nil {
			return nil, nil, err
		}
		shared = &sharedReceiver{rxEngine: e}
		s.byInterface[ifname] = shared
	}
	shared.users++
	return shared.rxEngine, sync.OnceFunc(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if shared.users--; shared.users == 0 {
			delete(s.byInterface, ifname)
			_ = shared.Close()
		}
	}), nil
}

// receiverNode is a receiving node of a run, as its senders see it.
type receiverNode struct {
	node string
	addr netip.Addr
}

// internalIP is a Node's InternalIP address of the family, if it has one.
func internalIP(n *corev1.Node, family xdpgenv1alpha1.IPFamily) (netip.Addr, bool) {
	for _, a := range n.Status.Addresses {
		if a.Type != corev1.NodeInternalIP {
			continue
		}
		if ip, err := netip.ParseAddr(a.Address); err == nil && ip.Unmap().Is6() == (family == xdpgenv1alpha1.IPv6) {
			return ip.Unmap(), true
		}
	}
	return netip.Addr{}, false
}

// receiversOf lists the receivers a sender sends to, by node name: every Node the receiver selector picks but
// the sender itself, at its InternalIP of the generator's family. Nodes without one are named in missing.
func receiversOf(nodes []corev1.Node, self string, family xdpgenv1alpha1.IPFamily) (receivers []receiverNode, missing []string) {
	for i := range nodes {
		n := &nodes[i]
		if n.Name == self {
			continue
		}
		if addr, ok := internalIP(n, family); ok {
			receivers = append(receivers, receiverNode{node: n.Name, addr: addr})
		} else {
			missing = append(missing, n.Name)
		}
	}
	slices.SortFunc(receivers, func(a, b receiverNode) int { return cmp.Compare(a.node, b.node) })
	slices.Sort(missing)
	return receivers, missing
}

// sentPaths is what a sender reports of its paths: the frames it sent to each receiver and their round-trip
// times, and its histogram of every path's round trips together.
func sentPaths(receivers []receiverNode, sent []dataplane.DestinationSent, rtt map[netip.Addr]*dataplane.LatencyHistogram) ([]xdpgenv1alpha1.SentPath, *dataplane.LatencyHistogram) {
	packets := map[netip.Addr]uint64{}
	for _, d := range sent {
		packets[d.Addr] += d.Packets
	}
	var all dataplane.LatencyHistogram
	paths := make([]xdpgenv1alpha1.SentPath, 0, len(receivers))
	for _, r := range receivers {
		p := xdpgenv1alpha1.SentPath{Receiver: r.node, Address: r.addr.String(), Packets: int64(packets[r.addr])}
		if h := rtt[r.addr]; h != nil {
			p.RTT = xdpgenv1alpha1.LatencyOf(apiBuckets(h), h.Max)
			all.Merge(h)
		}
		paths = append(paths, p)
	}
	return paths, &all
}

// apiBuckets is a histogram as reports hold it.
func apiBuckets(h *dataplane.LatencyHistogram) []xdpgenv1alpha1.LatencyBucket {
	var out []xdpgenv1alpha1.LatencyBucket
	for _, b := range h.Buckets() {
		out = append(out, xdpgenv1alpha1.LatencyBucket{UpperBoundNanoseconds: int64(b.UpperBound), Count: int64(b.Count)})
	}
	return out
}

// oneWayFrom is the one-way delay of each sender's latency samples, by the source address its streams came
// from.
func oneWayFrom(streams []dataplane.Stream, generator uint32, names map[uint32]string, delays map[netip.Addr]*dataplane.LatencyHistogram) map[string]*xdpgenv1alpha1.Latency {
	out := map[string]*xdpgenv1alpha1.Latency{}
	for _, st := range streams {
		node, ok := names[st.Sender]
		if h := delays[st.Src]; ok && h != nil && st.Generator == generator && out[node] == nil {
			out[node] = xdpgenv1alpha1.LatencyOf(apiBuckets(h), h.Max)
		}
	}
	return out
}

// arrivedFrom sums what a receiver counted of one generator by sending node, over the senders' streams and the
// receiver's addresses; names maps the senders' ids to their nodes (frames of other ids are not this run's).
func arrivedFrom(streams []dataplane.Stream, generator uint32, names map[uint32]string) map[string]dataplane.StreamCounts {
	got := map[string]dataplane.StreamCounts{}
	for key, counts := range dataplane.Paths(streams) {
		if node, ok := names[key.Sender]; ok && key.Generator == generator {
			got[node] = got[node].Add(counts)
		}
	}
	return got
}

// senderSilentAfter is how long a receiver waits for a sender whose report stopped moving before it settles
// that sender's path with what it has: the controller's default node-lost timeout.
const senderSilentAfter = 60 * time.Second

// sendersRefresh is how often a receiver lists the generator's senders again (Nodes come and go).
const sendersRefresh = 30 * time.Second

// receiving is the receiving side of a run on this node: the receive program on the interface that holds the
// node's address, and what the receiver needs to settle its paths.
type receiving struct {
	agent     *Agent
	tg        *xdpgenv1alpha1.TrafficGenerator
	generator uint32
	ifname    string
	addr      netip.Addr
	rx        rxEngine
	release   func()
	settle    settling
	senders   []string
	sendersAt time.Time
}

// startReceiving attaches (or shares) the receive program where the senders' frames arrive: the interface that
// holds this node's InternalIP of the generator's family, or spec.receivers.interface.
func (a *Agent) startReceiving(ctx context.Context, tg *xdpgenv1alpha1.TrafficGenerator) (*receiving, error) {
	var node corev1.Node
	if err := a.client.Get(ctx, client.ObjectKey{Name: a.opts.NodeName}, &node); err != nil {
		return nil, fmt.Errorf("read this node: %w", err)
	}
	spec := tg.Spec.Receivers
	family := familyOf(spec)
	addr, ok := internalIP(&node, family)
	if !ok {
		return nil, fmt.Errorf("this node has no %s InternalIP address for the senders to send to: give the Node one, "+
			"set spec.receivers.ipFamily to a family it has, or leave it out of spec.receivers.nodeSelector", family)
	}
	ifname := spec.Interface
	if ifname == "" || ifname == xdpgenv1alpha1.InterfaceAuto {
		if err := a.inEngineNetNS(func() (err error) {
			ifname, err = dataplane.InterfaceWithAddr(addr)
			return err
		}); err != nil {
			return nil, fmt.Errorf("spec.receivers.interface auto: %w", err)
		}
	}
	rx, release, err := a.receivers.acquire(ifname)
	if err != nil {
		return nil, fmt.Errorf("spec.receivers.interface %s: %w", ifname, err)
	}
	if err := rx.Serve(generatorID(tg)); err != nil {
		release()
		return nil, err
	}
	return &receiving{agent: a, tg: tg, generator: generatorID(tg), ifname: ifname, addr: addr, rx: rx, release: release,
		settle: settling{drain: spec.DrainTimeOrDefault(), silentAfter: senderSilentAfter, since: time.Now()}}, nil
}

func familyOf(r *xdpgenv1alpha1.Receivers) xdpgenv1alpha1.IPFamily {
	if r.IPFamily == "" {
		return xdpgenv1alpha1.IPv4
	}
	return r.IPFamily
}

// stop forgets the run's counts in the receive program and gives the program back.
func (r *receiving) stop() {
	_ = r.rx.Forget(r.generator)
	r.release()
}

// rows is the receiver's row of the path matrix now, and whether every path has settled.
func (r *receiving) rows(ctx context.Context, now time.Time) ([]xdpgenv1alpha1.PathResult, bool) {
	logger := log.FromContext(ctx)
	if r.senders == nil || now.Sub(r.sendersAt) >= sendersRefresh {
		list := &metav1.PartialObjectMetadataList{}
		list.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("NodeList"))
		if err := r.agent.nodes.List(ctx, list, client.MatchingLabelsSelector{Selector: r.tg.Spec.SenderSelector()}); err != nil {
			logger.Info("cannot list the generator's senders; keeping the last list", "error", err.Error())
		} else {
			r.senders, r.sendersAt = make([]string, 0, len(list.Items)), now
			for _, n := range list.Items {
				r.senders = append(r.senders, n.Name)
			}
		}
	}
	var reports xdpgenv1alpha1.NodeReportList
	if err := r.agent.client.List(ctx, &reports, client.InNamespace(r.tg.Namespace),
		client.MatchingLabels{xdpgenv1alpha1.LabelGenerator: xdpgenv1alpha1.LabelValue(r.tg.Name)}); err != nil {
		logger.Info("cannot read the senders' reports; the paths settle later", "error", err.Error())
		return nil, false
	}
	byNode := map[string]*xdpgenv1alpha1.NodeReport{}
	for i := range reports.Items {
		rep := &reports.Items[i]
		if ownedBy(rep, r.tg) {
			byNode[rep.Spec.NodeName] = rep
		}
	}
	streams, err := r.rx.Streams()
	if err != nil {
		logger.Info("cannot read the receive program's counts", "error", err.Error())
		return nil, false
	}
	senders := make([]sender, 0, len(r.senders))
	names := make(map[uint32]string, len(r.senders))
	for _, n := range r.senders {
		senders = append(senders, sender{node: n, report: byNode[n]})
		names[nodeID(n)] = n
	}
	delays, err := r.rx.OneWay(r.generator)
	if err != nil {
		logger.Info("cannot read the one-way delays", "error", err.Error())
	}
	return pathRows(r.agent.opts.NodeName, senders, arrivedFrom(streams, r.generator, names),
		oneWayFrom(streams, r.generator, names, delays), r.settle, now)
}

// ownedBy says whether a report is of this generator's current run: its generation and search trial.
func ownedBy(rep *xdpgenv1alpha1.NodeReport, tg *xdpgenv1alpha1.TrafficGenerator) bool {
	if rep.Status.Generation != tg.Generation || rep.Status.Trial != tg.TrialNumber() {
		return false
	}
	for _, o := range rep.OwnerReferences {
		if o.UID == tg.UID {
			return true
		}
	}
	return false
}

// receivingNote says what the receiver does until its paths settle.
func (r *receiving) receivingNote() string {
	return fmt.Sprintf("receiving on %s (%s): counting what arrives until every sender finished and %s passed",
		r.ifname, r.addr, r.settle.drain)
}

// receivedNote sums up the receiver's settled paths.
func receivedNote(rows []xdpgenv1alpha1.PathResult) string {
	var received, lost, sent int64
	for _, p := range rows {
		received += p.ReceivedPackets
		lost += p.LostPackets
		sent += max(p.SentPackets, p.ReceivedPackets+p.LostPackets)
	}
	senders := "senders"
	if len(rows) == 1 {
		senders = "sender"
	}
	return fmt.Sprintf("received %d packets from %d %s, %d lost (loss ratio %s)", received, len(rows), senders, lost,
		xdpgenv1alpha1.LossRatio(lost, sent))
}

// receiveUntilSettled reports the receiver's paths every interval until they settle, then ends the run;
// before is what the message said so far (what this node sent, if it sends).
func (a *Agent) receiveUntilSettled(ctx context.Context, w *reportWriter, st xdpgenv1alpha1.NodeReportStatus, rcv *receiving, before string) {
	tick := time.NewTicker(a.opts.ReportInterval)
	defer tick.Stop()
	for {
		rows, settled := rcv.rows(ctx, time.Now())
		if rows != nil {
			st.Received = rows
		}
		if settled {
			st = withoutRates(st)
			st.Phase, st.CompletionTime = xdpgenv1alpha1.PhaseCompleted, now()
			st.Message = joinNonEmpty(before, receivedNote(rows))
			w.writeFinal(ctx, st)
			log.FromContext(ctx).Info("run completed", "received", st.Received)
			return
		}
		w.write(ctx, st)
		select {
		case <-ctx.Done():
			w.stopped(ctx, st, earlierCounts{}, nil, a.opts.PodName)
			return
		case <-tick.C:
		}
	}
}

// sendingPaths is the sending side of a run with receivers: where to send, how to stamp the frames, and the
// receive program on the egress interface that times the round trips.
type sendingPaths struct {
	receivers []receiverNode
	// missing are receiving nodes without an address of the family, unready those whose receiver was not ready
	// in time: not sent to.
	missing   []string
	unready   []string
	family    xdpgenv1alpha1.IPFamily
	generator uint32
	stamp     *dataplane.Stamp
	// earlier is what earlier incarnations of the agent sent to each receiver, when this one continues their run.
	earlier []uint64
	rtt     rxEngine
	release func()
}

// sentAddrs are the receivers' addresses of a report's paths, in order; nil when it has none (or one does not
// parse: then the order is unknown).
func sentAddrs(paths []xdpgenv1alpha1.SentPath) []netip.Addr {
	var addrs []netip.Addr
	for _, p := range paths {
		a, err := netip.ParseAddr(p.Address)
		if err != nil {
			return nil
		}
		addrs = append(addrs, a)
	}
	return addrs
}

// continueFrom makes the run continue the streams of earlier incarnations of the agent: pinned is what each of
// their streams sent to each of their destinations, by index; before are those destinations' addresses, in
// order (their last report's paths), or nil when they never reported any (then they were this run's receivers).
// Each stream numbers its frames on from there (Stamp.Continue), so that the receivers account one stream with
// neither duplicates nor a gap, and each path's sent count holds the earlier frames too.
func (p *sendingPaths) continueFrom(pinned [][]uint64, before []netip.Addr) {
	if before == nil {
		for _, r := range p.receivers {
			before = append(before, r.addr)
		}
	}
	p.earlier = make([]uint64, len(p.receivers))
	p.stamp.Continue = make([][]uint64, len(pinned))
	for stream, sent := range pinned {
		p.stamp.Continue[stream] = make([]uint64, len(p.receivers))
		for i, n := range sent {
			if i >= len(before) {
				break
			}
			if j := slices.IndexFunc(p.receivers, func(r receiverNode) bool { return r.addr == before[i] }); j >= 0 {
				p.stamp.Continue[stream][j] = n
				p.earlier[j] += n
			}
		}
	}
}

// planPaths finds the receivers to send to and, for latency samples, attaches (or shares) the receive program
// on the interface the frames leave through, which catches them when they come back.
func (a *Agent) planPaths(ctx context.Context, tg *xdpgenv1alpha1.TrafficGenerator) (*sendingPaths, error) {
	var nodes corev1.NodeList
	if err := a.nodes.List(ctx, &nodes, client.MatchingLabelsSelector{Selector: tg.Spec.ReceiverSelector()}); err != nil {
		return nil, fmt.Errorf("list the receiving nodes: %w", err)
	}
	p := &sendingPaths{family: familyOf(tg.Spec.Receivers), generator: generatorID(tg)}
	p.receivers, p.missing = receiversOf(nodes.Items, a.opts.NodeName, p.family)
	p.stamp = &dataplane.Stamp{Generator: p.generator, Sender: nodeID(a.opts.NodeName)}
	if every := tg.Spec.Receivers.LatencySampleEvery; every != nil {
		p.stamp.ReflectEvery = uint32(*every)
	} else {
		p.stamp.ReflectEvery = defaultLatencySampleEvery
	}
	if p.stamp.ReflectEvery == 0 || len(p.receivers) == 0 {
		return p, nil
	}
	ifname := specInterface(&tg.Spec)
	if ifname == "" {
		if err := a.inEngineNetNS(func() (err error) {
			ifname, err = dataplane.EgressInterface(p.receivers[0].addr)
			return err
		}); err != nil {
			return nil, userError(err)
		}
	}
	var err error
	if p.rtt, p.release, err = a.receivers.acquire(ifname); err != nil {
		return nil, fmt.Errorf("timing round trips needs the receive program on %s, the interface the frames leave "+
			"through: %w (or set spec.receivers.latencySampleEvery: 0 to send without latency samples)", ifname, err)
	}
	if err := p.rtt.Serve(p.generator); err != nil {
		p.release()
		return nil, err
	}
	return p, nil
}

// receiversReadyTimeout bounds how long a sender waits for its receivers' programs before it sends without
// those not ready (the controller's default node-lost timeout: such a receiver is lost by then).
const receiversReadyTimeout = 60 * time.Second

// waitForReceivers waits until every receiver reports its receive program ready (ReceiveStartTime), so that
// every frame sent to it is counted; a receiver not ready within receiversReadyTimeout is not sent to (and named
// in the message). It returns false when the run was stopped meanwhile.
func (p *sendingPaths) waitForReceivers(ctx context.Context, a *Agent, tg *xdpgenv1alpha1.TrafficGenerator) bool {
	deadline := time.Now().Add(receiversReadyTimeout)
	for {
		ready := map[string]bool{}
		var reports xdpgenv1alpha1.NodeReportList
		if err := a.client.List(ctx, &reports, client.InNamespace(tg.Namespace),
			client.MatchingLabels{xdpgenv1alpha1.LabelGenerator: xdpgenv1alpha1.LabelValue(tg.Name)}); err == nil {
			for i := range reports.Items {
				if rep := &reports.Items[i]; ownedBy(rep, tg) && rep.Status.ReceiveStartTime != nil {
					ready[rep.Spec.NodeName] = true
				}
			}
		}
		var waiting []receiverNode
		for _, r := range p.receivers {
			if !ready[r.node] {
				waiting = append(waiting, r)
			}
		}
		if len(waiting) == 0 {
			return true
		}
		if time.Now().After(deadline) {
			p.receivers = slices.DeleteFunc(p.receivers, func(r receiverNode) bool { return !ready[r.node] })
			for _, r := range waiting {
				p.unready = append(p.unready, r.node)
			}
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// defaultLatencySampleEvery is spec.receivers.latencySampleEvery when left out (the API server defaults it).
const defaultLatencySampleEvery = 1000

// stop gives the round-trip timer back.
func (p *sendingPaths) stop() {
	if p != nil && p.rtt != nil {
		_ = p.rtt.Forget(p.generator)
		p.release()
	}
}

// withPaths is st with what the sender sent to each receiver and the round trips it timed.
func (p *sendingPaths) withPaths(st xdpgenv1alpha1.NodeReportStatus, cur stats) xdpgenv1alpha1.NodeReportStatus {
	if p == nil {
		return st
	}
	var rtt map[netip.Addr]*dataplane.LatencyHistogram
	if p.rtt != nil {
		rtt, _ = p.rtt.Latency(p.generator)
	}
	sent := slices.Clone(cur.frames.Destinations)
	for i := range sent {
		if i < len(p.earlier) {
			sent[i].Packets += p.earlier[i]
		}
	}
	var all *dataplane.LatencyHistogram
	st.Sent, all = sentPaths(p.receivers, sent, rtt)
	st.RTTHistogram, st.RTTSumNanoseconds = apiBuckets(all), int64(all.Sum)
	return st
}

// missingNote names the receivers not sent to, and why.
func (p *sendingPaths) missingNote() string {
	if p == nil {
		return ""
	}
	var notes []string
	if len(p.missing) > 0 {
		notes = append(notes, fmt.Sprintf("not sending to %s: no %s InternalIP address", strings.Join(p.missing, ", "), p.family))
	}
	if len(p.unready) > 0 {
		notes = append(notes, fmt.Sprintf("not sending to %s: no receiver ready there within %s", strings.Join(p.unready, ", "), receiversReadyTimeout))
	}
	return joinNonEmpty(notes...)
}

// nothingToSendNote says why a sender has no receiver.
func (p *sendingPaths) nothingToSendNote() string {
	return joinNonEmpty("no receiver to send to but this node itself", p.missingNote())
}
