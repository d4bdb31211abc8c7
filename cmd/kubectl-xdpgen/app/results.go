package app

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	xdpgenv1alpha1 "github.com/xdpgen/xdpgen/api/v1alpha1"
)

// Results is what `kubectl xdpgen results -o json` prints: one TrafficGenerator's run of its current generation.
// The structure is stable: fields may be added, none is renamed or removed. Counts are numbers (0 when nothing was
// counted), durations are Go duration strings such as "1.048576ms", a ratio is a decimal string such as "0.0012".
type Results struct {
	// Namespace and Name are the TrafficGenerator's.
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Generation is the TrafficGenerator's metadata.generation: Nodes and Paths come from the NodeReports of this
	// generation only.
	Generation int64 `json:"generation"`
	// StatusGeneration is the generation Phase and Totals describe (status.observedGeneration); it lags behind
	// Generation until the controller has seen the new spec.
	StatusGeneration int64 `json:"statusGeneration"`
	// Phase is status.phase: Pending, Running, Completed or Failed.
	Phase string `json:"phase"`
	// Receivers is true when the generator has spec.receivers, so that Paths say what arrived.
	Receivers bool `json:"receivers"`
	// Totals is the controller's sum over the run (status.totals and status.latency).
	Totals Totals `json:"totals"`
	// Nodes are the nodes that reported for Generation (senders, and receivers that count but do not send),
	// sorted by name.
	Nodes []NodeResult `json:"nodes"`
	// Paths is the sender x receiver matrix, one entry per path, sorted by sender then receiver; empty without
	// receivers.
	Paths []PathResult `json:"paths"`
	// Search is status.search, for a generator with spec.search: then Totals, Nodes and Paths are of its
	// current (or last) trial.
	Search *xdpgenv1alpha1.SearchStatus `json:"search,omitempty"`
}

// Totals sums the run, as the controller computed it.
type Totals struct {
	SentPackets     int64  `json:"sentPackets"`
	SentBytes       int64  `json:"sentBytes"`
	ReceivedPackets int64  `json:"receivedPackets"`
	LostPackets     int64  `json:"lostPackets"`
	LossRatio       string `json:"lossRatio"`
	// RTT is the round-trip time of all the run's latency samples; null when none was timed.
	RTT *xdpgenv1alpha1.Latency `json:"rtt"`
}

// NodeResult is what one node sent, from its NodeReport.
type NodeResult struct {
	Node        string `json:"node"`
	Phase       string `json:"phase"`
	SentPackets int64  `json:"sentPackets"`
	SentBytes   int64  `json:"sentBytes"`
	// Message is the node's status message (why it failed, when it did).
	Message string `json:"message,omitempty"`
}

// PathResult is one path of the matrix: what Sender sent to Receiver and what Receiver counted of it.
type PathResult struct {
	Sender   string `json:"sender"`
	Receiver string `json:"receiver"`
	// SentPackets is the sender's count for the path.
	SentPackets     int64 `json:"sentPackets"`
	ReceivedPackets int64 `json:"receivedPackets"`
	ReceivedBytes   int64 `json:"receivedBytes"`
	// LostPackets is SentPackets - ReceivedPackets once Settled; before, the gaps in the sequence numbers so far.
	LostPackets int64  `json:"lostPackets"`
	LossRatio   string `json:"lossRatio"`
	OutOfOrder  int64  `json:"outOfOrder"`
	Duplicates  int64  `json:"duplicates"`
	// Settled is true once the loss is final: the sender finished and the receivers' drain time passed.
	Settled bool `json:"settled"`
	// ReceiverReported is false for a path only its sender reported: the receiver has not counted it (yet), and
	// the received and lost counts are unknown (0).
	ReceiverReported bool `json:"receiverReported"`
	// RTT is the round-trip time of the path's latency samples; null when none was timed.
	RTT *xdpgenv1alpha1.Latency `json:"rtt"`
}

// resultsOf is the run of tg's current generation, from the reports of any generation (the others are left out).
func resultsOf(tg *xdpgenv1alpha1.TrafficGenerator, reports []xdpgenv1alpha1.NodeReport) *Results {
	st := tg.Status
	res := &Results{
		Namespace:        tg.Namespace,
		Name:             tg.Name,
		Generation:       tg.Generation,
		StatusGeneration: st.ObservedGeneration,
		Phase:            string(st.Phase),
		Receivers:        tg.Spec.Receivers != nil,
		Totals: Totals{
			SentPackets:     st.Totals.Packets,
			SentBytes:       st.Totals.Bytes,
			ReceivedPackets: st.Totals.ReceivedPackets,
			LostPackets:     st.Totals.LostPackets,
			LossRatio:       cmp.Or(st.Totals.LossRatio, "0"),
			RTT:             st.Latency,
		},
		Nodes:  []NodeResult{},
		Paths:  []PathResult{},
		Search: st.Search.DeepCopy(),
	}
	if res.Phase == "" {
		res.Phase = string(xdpgenv1alpha1.PhasePending)
	}
	type key struct{ sender, receiver string }
	paths := map[key]*PathResult{}
	// The receivers' rows first: they hold the counts. The senders' lists add the paths no receiver reported yet,
	// the RTT a receiver's row lacks, and the sent count of a path not settled yet (the receiver copies it from
	// the sender's report, so the sender's own is as new or newer).
	current := tg.CurrentReports(reports)
	for _, r := range current {
		for _, p := range r.Status.Received {
			paths[key{p.Sender, p.Receiver}] = &PathResult{
				Sender: p.Sender, Receiver: p.Receiver, SentPackets: p.SentPackets,
				ReceivedPackets: p.ReceivedPackets, ReceivedBytes: p.ReceivedBytes,
				LostPackets: p.LostPackets, LossRatio: cmp.Or(p.LossRatio, "0"),
				OutOfOrder: p.OutOfOrder, Duplicates: p.Duplicates, Settled: p.Settled,
				ReceiverReported: true, RTT: p.RTT,
			}
		}
	}
	for _, r := range current {
		res.Nodes = append(res.Nodes, NodeResult{
			Node: r.Spec.NodeName, Phase: string(r.Status.Phase),
			SentPackets: r.Status.Packets, SentBytes: r.Status.Bytes, Message: r.Status.Message,
		})
		for _, s := range r.Status.Sent {
			k := key{r.Spec.NodeName, s.Receiver}
			p, ok := paths[k]
			if !ok {
				p = &PathResult{Sender: k.sender, Receiver: k.receiver, SentPackets: s.Packets, LossRatio: "0"}
				paths[k] = p
			}
			if p.RTT == nil {
				p.RTT = s.RTT
			}
			if !p.Settled {
				p.SentPackets = max(p.SentPackets, s.Packets)
			}
		}
	}
	for _, p := range paths {
		res.Paths = append(res.Paths, *p)
	}
	slices.SortFunc(res.Paths, func(a, b PathResult) int {
		return cmp.Or(cmp.Compare(a.Sender, b.Sender), cmp.Compare(a.Receiver, b.Receiver))
	})
	return res
}

// fetchResults reads the TrafficGenerator namespace/name and its NodeReports. Its errors say what to do about them.
func fetchResults(ctx context.Context, c client.Reader, namespace, name string) (*Results, error) {
	ref := fmt.Sprintf("TrafficGenerator %q in namespace %q", name, namespace)
	var tg xdpgenv1alpha1.TrafficGenerator
	if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, &tg); err != nil {
		return nil, readError(ref, "get trafficgenerators", namespace, err)
	}
	var reports xdpgenv1alpha1.NodeReportList
	if err := c.List(ctx, &reports, client.InNamespace(namespace),
		client.MatchingLabels{xdpgenv1alpha1.LabelGenerator: xdpgenv1alpha1.LabelValue(name)}); err != nil {
		return nil, readError("the NodeReports of "+ref, "list nodereports", namespace, err)
	}
	res := resultsOf(&tg, reports.Items)
	if len(res.Nodes) == 0 && len(res.Paths) == 0 {
		return nil, fmt.Errorf("%s (phase %s) has no NodeReports of its generation %d yet: the agents of its nodes "+
			"write them once they start; if none does, check that the xdpgen agent runs on the nodes its "+
			"nodeSelector picks (kubectl get pods -A -l app.kubernetes.io/name=xdpgen-agent -o wide) and see kubectl describe "+
			"trafficgenerator %s -n %s", ref, res.Phase, tg.Generation, name, namespace)
	}
	return res, nil
}

// readError says what went wrong reading what (verb on the resource) and what to do about it.
func readError(what, verb, namespace string, err error) error {
	switch {
	case apierrors.IsNotFound(err):
		return fmt.Errorf("%s not found: kubectl get trafficgenerators -n %s lists the namespace's generators "+
			"(use -n to pick another namespace)", what, namespace)
	case apierrors.IsForbidden(err):
		return fmt.Errorf("reading %s is forbidden: you may not %s in namespace %s. xdpgen's "+
			"xdpgen-trafficgenerator-viewer ClusterRole (aggregated into the built-in view role) allows it: ask "+
			"for a RoleBinding to either, such as kubectl create rolebinding xdpgen-viewer "+
			"--clusterrole=xdpgen-trafficgenerator-viewer --user=<you> -n %s: %w", what, verb, namespace, namespace, err)
	case meta.IsNoMatchError(err):
		return fmt.Errorf("reading %s: this cluster does not know TrafficGenerators (xdpgen.io/v1alpha1): install "+
			"xdpgen (README: Install on a cluster), or pick the cluster with --context or --kubeconfig: %w", what, err)
	default:
		return fmt.Errorf("reading %s: %w", what, err)
	}
}
