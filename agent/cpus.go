package agent

import (
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/xdpgen/xdpgen/agent/dataplane"
)

// cpuAllocator hands each run the CPUs its threads are pinned to: CPUs no other run uses while the node has
// enough, else the least used ones, shared.
type cpuAllocator struct {
	mu sync.Mutex
	// allowed are the CPUs the agent may pin threads to; users counts the active runs on each.
	allowed []int
	users   map[int]int
}

func newCPUAllocator(allowed []int) *cpuAllocator {
	return &cpuAllocator{allowed: slices.Sorted(slices.Values(allowed)), users: map[int]int{}}
}

// take gives a run n distinct CPUs, the least used first (the lowest numbered among equals), and says whether
// another run uses any of them. Give them back with release.
func (c *cpuAllocator) take(n int) (cpus []int, shared bool, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n > len(c.allowed) {
		return nil, false, userError(&dataplane.ConfigError{Field: dataplane.FieldThreads, Value: fmt.Sprint(n),
			Problem: fmt.Sprintf("this node's agent may use %d CPUs (%s): use at most %d threads", len(c.allowed), cpuList(c.allowed), len(c.allowed))})
	}
	byUse := slices.Clone(c.allowed)
	slices.SortStableFunc(byUse, func(a, b int) int { return c.users[a] - c.users[b] })
	cpus = slices.Sorted(slices.Values(byUse[:n]))
	for _, cpu := range cpus {
		shared = shared || c.users[cpu] > 0
		c.users[cpu]++
	}
	return cpus, shared, nil
}

func (c *cpuAllocator) release(cpus []int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, cpu := range cpus {
		if c.users[cpu]--; c.users[cpu] <= 0 {
			delete(c.users, cpu)
		}
	}
}

// cpuList writes sorted CPUs as the kernel does (cpuset, /proc/self/status): "0-3,6".
func cpuList(cpus []int) string {
	var parts []string
	for i := 0; i < len(cpus); {
		j := i
		for j+1 < len(cpus) && cpus[j+1] == cpus[j]+1 {
			j++
		}
		if j == i {
			parts = append(parts, fmt.Sprint(cpus[i]))
		} else {
			parts = append(parts, fmt.Sprintf("%d-%d", cpus[i], cpus[j]))
		}
		i = j + 1
	}
	return strings.Join(parts, ",")
}

// sharedCPUsNote says that a run shares its CPUs with other runs, if it does.
func sharedCPUsNote(cpus []int, shared bool) string {
	if !shared {
		return ""
	}
	return fmt.Sprintf("sharing CPUs %s with other TrafficGenerators on this node, which has too few free CPUs: "+
		"each run gets less of them", cpuList(cpus))
}
