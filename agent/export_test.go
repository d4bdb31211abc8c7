package agent

import (
	"errors"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// errKilled stands in for SIGKILL: a run stopped with it neither reports nor removes its pins.
var errKilled = errors.New("the agent was killed")

// Kill stops every run as SIGKILL stops the agent's process: no last report, the pins left where they are.
func (a *Agent) Kill() { a.stopAll(errKilled) }

// RTTHistogramOf is the xdpgen_agent_rtt_seconds histogram of a generator on a node (empty when there is none).
func RTTHistogramOf(t *testing.T, namespace, generator, node string) *dto.Histogram {
	t.Helper()
	ch := make(chan prometheus.Metric, 100)
	go func() { rttSeconds.Collect(ch); close(ch) }()
	found := &dto.Histogram{}
	for m := range ch {
		var d dto.Metric
		if err := m.Write(&d); err != nil {
			t.Fatal(err)
		}
		labels := map[string]string{}
		for _, l := range d.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		if labels["namespace"] == namespace && labels["generator"] == generator && labels["node"] == node {
			found = d.GetHistogram()
		}
	}
	return found
}
