package dataplane

import (
	"fmt"
	"math"

	"github.com/cilium/ebpf"

	"github.com/xdpgen/xdpgen/bpf"
)

// PinCounters pins the workers' map, which holds the run's frame counters, at path on a bpffs: there it outlives
// the process, so that a process that takes the run over after a crash reads exactly what was sent
// (PinnedCounters). Whoever pins removes the pin when the run is over.
func (g *UDPGenerator) PinCounters(path string) error { return pinMap(g.objs.Workers, path) }

// PinCounters is UDPGenerator.PinCounters for a TCP run.
func (g *TCPGenerator) PinCounters(path string) error { return pinMap(g.objs.Workers, path) }

func pinMap(m *ebpf.Map, path string) error {
	if err := m.Pin(path); err != nil {
		return fmt.Errorf("pin the counters at %s: %w", path, err)
	}
	return nil
}

// PinnedCounters reads the frame counters a UDP or TCP generator pinned at path, summed over CPUs. For a UDP
// run, Destinations holds what was sent to each destination in the order of its configuration, up to the last
// one that was sent anything; their Addr is the zero Addr (the pin does not hold them: the caller's
// configuration does).
func PinnedCounters(path string) (Stats, error) {
	m, err := ebpf.LoadPinnedMap(path, &ebpf.LoadPinOptions{ReadOnly: true})
	if err != nil {
		return Stats{}, fmt.Errorf("open the pinned counters %s: %w", path, err)
	}
	defer m.Close()
	info, err := m.Info()
	if err != nil {
		return Stats{}, fmt.Errorf("pinned counters %s: %w", path, err)
	}
	// The map's name tells a UDP run's from a TCP run's.
	var (
		perCPU [][numActions]bpf.Counter
		s      Stats
	)
	switch info.Name {
	case "workers":
		var states []bpf.WorkerState
		err = m.Lookup(uint32(0), &states)
		var sent [bpf.UDPMaxDests]uint64
		last := -1
		for _, st := range states {
			perCPU = append(perCPU, st.Actions)
			for i, n := range st.Sent {
				if sent[i] += n; n > 0 {
					last = max(last, i)
				}
			}
		}
		for i := range last + 1 {
			s.Destinations = append(s.Destinations, DestinationSent{Packets: sent[i]})
		}
	case "tcp_workers":
		var workers []bpf.TCPWorker
		err = m.Lookup(uint32(0), &workers)
		for _, w := range workers {
			var actions [numActions]bpf.Counter
			for a, c := range w.Actions {
				actions[a] = bpf.Counter(c)
			}
			perCPU = append(perCPU, actions)
		}
	default:
		return Stats{}, fmt.Errorf("%s holds map %q, not a generator's counters", path, info.Name)
	}
	if err != nil {
		return Stats{}, fmt.Errorf("read the pinned counters %s: %w", path, err)
	}
	for _, actions := range perCPU {
		for a, c := range actions {
			s.Actions[a] = s.Actions[a].add(Counter{Packets: c.Packets, Bytes: c.Bytes})
		}
	}
	return s, nil
}

// PinnedStreams reads what each stream (thread) of the UDP generator that pinned its counters at path sent to
// each destination, in the order of its configuration: what Stamp.Continue takes to continue its streams.
func PinnedStreams(path string) ([][]uint64, error) {
	m, err := ebpf.LoadPinnedMap(path, &ebpf.LoadPinOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("open the pinned counters %s: %w", path, err)
	}
	defer m.Close()
	if info, err := m.Info(); err != nil {
		return nil, fmt.Errorf("pinned counters %s: %w", path, err)
	} else if info.Name != "workers" {
		return nil, nil // a TCP run's: no stamped streams
	}
	var states []bpf.WorkerState
	if err := m.Lookup(uint32(0), &states); err != nil {
		return nil, fmt.Errorf("read the pinned counters %s: %w", path, err)
	}
	var streams [][]uint64
	for _, st := range states {
		last := -1
		for i, n := range st.Sent {
			if n > 0 {
				last = i
			}
		}
		if last < 0 {
			continue // a CPU without a worker, or a worker that sent nothing
		}
		if st.Stream > math.MaxUint8 {
			return nil, fmt.Errorf("pinned counters %s: stream %d, beyond the stamp's 8 bits", path, st.Stream)
		}
		for int(st.Stream) >= len(streams) {
			streams = append(streams, nil)
		}
		s := streams[st.Stream]
		for len(s) <= last {
			s = append(s, 0)
		}
		for i := range last + 1 {
			s[i] += st.Sent[i]
		}
		streams[st.Stream] = s
	}
	return streams, nil
}
