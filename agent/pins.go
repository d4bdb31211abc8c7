package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/xdpgen/xdpgen/agent/dataplane"
	xdpgenv1alpha1 "github.com/xdpgen/xdpgen/api/v1alpha1"
)

// DefaultPinDir is where runs pin their counters: a directory on the node's bpffs, which outlives the agent's
// process (and its container).
const DefaultPinDir = "/sys/fs/bpf/xdpgen"

// runPins is where one run (one generation of one TrafficGenerator on this node) pins its counters: a directory
// holding one pinned map per incarnation of the agent that sent for it. Their sum is what the node sent, to the
// frame, even when an agent was killed before it could report; a report can be up to an interval behind.
type runPins struct {
	// dir is empty when the agent pins nothing.
	dir string
}

func (a *Agent) pinsOf(tg *xdpgenv1alpha1.TrafficGenerator) runPins {
	if a.opts.PinDir == "" {
		return runPins{}
	}
	return runPins{dir: filepath.Join(a.opts.PinDir, pinDirName(tg.UID, tg.Generation))}
}

func pinDirName(uid types.UID, generation int64) string {
	return fmt.Sprintf("%s-%d", uid, generation)
}

// counters sums what the run's earlier incarnations pinned; found is false when none did.
func (p runPins) counters() (c counters, found bool, err error) {
	if p.dir == "" {
		return c, false, nil
	}
	entries, err := os.ReadDir(p.dir)
	if errors.Is(err, os.ErrNotExist) {
		return c, false, nil
	}
	if err != nil {
		return c, false, err
	}
	for _, e := range entries {
		s, err := dataplane.PinnedCounters(filepath.Join(p.dir, e.Name()))
		if err != nil {
			return c, false, err
		}
		for i, a := range dataplane.Actions {
			c[i].Packets += s.Actions[a].Packets
			c[i].Bytes += s.Actions[a].Bytes
		}
	}
	return c, len(entries) > 0, nil
}

// streams sums what each stream (thread) of the run's earlier incarnations sent to each destination, by the
// destinations' index in their runs (UDP runs; nil for TCP).
func (p runPins) streams() ([][]uint64, error) {
	entries, err := os.ReadDir(p.dir)
	if err != nil {
		return nil, err
	}
	var sum [][]uint64
	for _, e := range entries {
		streams, err := dataplane.PinnedStreams(filepath.Join(p.dir, e.Name()))
		if err != nil {
			return nil, err
		}
		for i, sent := range streams {
			if i == len(sum) {
				sum = append(sum, nil)
			}
			for len(sum[i]) < len(sent) {
				sum[i] = append(sum[i], 0)
			}
			for d, n := range sent {
				sum[i][d] += n
			}
		}
	}
	return sum, nil
}

// pin pins this incarnation's counters next to those of the earlier ones.
func (p runPins) pin(gen engine) error {
	if p.dir == "" {
		return nil
	}
	if err := os.MkdirAll(p.dir, 0o700); err != nil {
		return err
	}
	entries, err := os.ReadDir(p.dir)
	if err != nil {
		return err
	}
	return gen.PinCounters(filepath.Join(p.dir, fmt.Sprintf("counters-%d", len(entries))))
}

// remove unpins the run's counters: the run is over, and no agent will take it up again.
func (p runPins) remove(ctx context.Context) {
	if p.dir == "" {
		return
	}
	if err := os.RemoveAll(p.dir); err != nil {
		log.FromContext(ctx).Error(err, "cannot remove the run's pinned counters", "dir", p.dir)
	}
}

// removeStalePins removes the pins of runs that are over: of generators deleted, or changed to a new generation,
// while no agent ran on the node.
func (a *Agent) removeStalePins(ctx context.Context) error {
	if a.opts.PinDir == "" {
		return nil
	}
	entries, err := os.ReadDir(a.opts.PinDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var tgs xdpgenv1alpha1.TrafficGeneratorList
	if err := a.client.List(ctx, &tgs); err != nil {
		return err
	}
	current := map[string]bool{}
	for _, tg := range tgs.Items {
		current[pinDirName(tg.UID, tg.Generation)] = true
	}
	for _, e := range entries {
		if e.IsDir() && !current[e.Name()] {
			runPins{dir: filepath.Join(a.opts.PinDir, e.Name())}.remove(ctx)
		}
	}
	return nil
}
