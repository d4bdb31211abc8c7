package bpftest

import (
	"fmt"

	"github.com/cilium/ebpf"
)

// TCPLossConfig is the loss injector's configuration (struct tcp_loss_config).
type TCPLossConfig = tcplossTcpLossConfig

// Keys of the loss injector's counters (enum tcp_loss_key): data segments (payload bytes) passed and dropped,
// and every TCP frame to the port (frame bytes). The values are bpf.Counter.
const (
	TCPLossPassed  uint32 = 0
	TCPLossDropped uint32 = 1
	TCPLossFrames  uint32 = 2
)

// TCPLoss drops one TCP data segment in N where it arrives, and counts what it passed and dropped.
type TCPLoss struct {
	Program *ebpf.Program
	// Counters is a per-CPU array of bpf.Counter keyed by TCPLossPassed, TCPLossDropped and TCPLossFrames.
	Counters *ebpf.Map
}

// LoadTCPLoss loads the loss injector with cfg baked in.
func LoadTCPLoss(cfg TCPLossConfig) (*TCPLoss, error) {
	spec, err := loadTcploss()
	if err != nil {
		return nil, fmt.Errorf("load tcp loss spec: %w", err)
	}
	if err := spec.Variables["loss_config"].Set(cfg); err != nil {
		return nil, fmt.Errorf("set tcp loss config: %w", err)
	}
	var objs tcplossObjects
	if err := spec.LoadAndAssign(&objs, nil); err != nil {
		return nil, fmt.Errorf("load tcp loss program: %w", err)
	}
	return &TCPLoss{Program: objs.XdpgenTcpLoss, Counters: objs.TcpLossCounters}, nil
}

// Close releases the program and the map.
func (l *TCPLoss) Close() error {
	return _TcplossClose(l.Program, l.Counters)
}

// LoadTCPFullChecksum loads the benchmark's comparison program: it computes an IPv4 segment's TCP checksum
// from scratch, as the send program would have to if it did not update it incrementally.
func LoadTCPFullChecksum() (*ebpf.Program, error) {
	var objs tcpcsumObjects
	if err := loadTcpcsumObjects(&objs, nil); err != nil {
		return nil, fmt.Errorf("load tcp checksum program: %w", err)
	}
	return objs.XdpgenTcpCsumFull, nil
}

// LoadRedirectNoTouch loads the no-touch ceiling: it redirects every frame to ifindex untouched and counts it
// in workers, a UDP generator's worker map (bpf.UDP.Workers), where the generator's statistics read it.
func LoadRedirectNoTouch(ifindex uint32, workers *ebpf.Map) (*ebpf.Program, error) {
	spec, err := loadNotouch()
	if err != nil {
		return nil, fmt.Errorf("load no-touch spec: %w", err)
	}
	if err := spec.Variables["ifindex"].Set(ifindex); err != nil {
		return nil, fmt.Errorf("set no-touch ifindex: %w", err)
	}
	var objs notouchPrograms
	opts := &ebpf.CollectionOptions{MapReplacements: map[string]*ebpf.Map{"workers": workers}}
	if err := spec.LoadAndAssign(&objs, opts); err != nil {
		return nil, fmt.Errorf("load no-touch program: %w", err)
	}
	return objs.XdpgenRedirectNotouch, nil
}

// StampDropConfig is the stamped-frame dropper's configuration (struct stamp_drop_config).
type StampDropConfig = stampdropStampDropConfig

// Keys of the dropper's counters (enum stamp_drop_key); the values are bpf.Counter.
const (
	StampDropPassed  uint32 = 0
	StampDropDropped uint32 = 1
)

// StampDelayConfig is the stamped-frame delayer's configuration (struct stamp_delay_config).
type StampDelayConfig = stampdelayStampDelayConfig

// Keys of the delayer's counters (enum stamp_delay_key): the first frames of the pairs it classified (let
// through at once) and the second ones (held back). The values are bpf.Counter.
const (
	StampDelayFirst uint32 = 0
	StampDelayHeld  uint32 = 1
)

// StampDelay puts two frames in every so many of a path's streams in a traffic class of their own (tc egress),
// where a token bucket holds the second of them back: see stampdelay.c.
type StampDelay struct {
	Program *ebpf.Program
	// Counters is a per-CPU array of bpf.Counter keyed by StampDelayFirst and StampDelayHeld.
	Counters *ebpf.Map
}

// LoadStampDelay loads the delayer with cfg baked in.
func LoadStampDelay(cfg StampDelayConfig) (*StampDelay, error) {
	spec, err := loadStampdelay()
	if err != nil {
		return nil, fmt.Errorf("load stamp delay spec: %w", err)
	}
	if err := spec.Variables["delay_config"].Set(cfg); err != nil {
		return nil, fmt.Errorf("set stamp delay config: %w", err)
	}
	var objs stampdelayObjects
	if err := spec.LoadAndAssign(&objs, nil); err != nil {
		return nil, fmt.Errorf("load stamp delay program: %w", err)
	}
	return &StampDelay{Program: objs.XdpgenStampDelay, Counters: objs.StampDelayCounters}, nil
}

// Close releases the program and the map.
func (d *StampDelay) Close() error {
	return _StampdelayClose(d.Program, d.Counters)
}

// StampDrop drops a random share of the stamped frames to one destination, where it is attached, and passes
// everything else.
type StampDrop struct {
	Program *ebpf.Program
	// Counters is a per-CPU array of bpf.Counter keyed by StampDropPassed and StampDropDropped.
	Counters *ebpf.Map
}

// LoadStampDrop loads the dropper with cfg baked in.
func LoadStampDrop(cfg StampDropConfig) (*StampDrop, error) {
	spec, err := loadStampdrop()
	if err != nil {
		return nil, fmt.Errorf("load stamp drop spec: %w", err)
	}
	if err := spec.Variables["drop_config"].Set(cfg); err != nil {
		return nil, fmt.Errorf("set stamp drop config: %w", err)
	}
	var objs stampdropObjects
	if err := spec.LoadAndAssign(&objs, nil); err != nil {
		return nil, fmt.Errorf("load stamp drop program: %w", err)
	}
	return &StampDrop{Program: objs.XdpgenStampDrop, Counters: objs.StampDropCounters}, nil
}

// Close releases the program and the map.
func (d *StampDrop) Close() error {
	return _StampdropClose(d.Program, d.Counters)
}

// DropCount holds the receive benchmark's baselines. Program counts every frame in Counter and drops it.
// StreamProgram finds each frame's stamp as the receive program does and counts the stamped ones in
// StreamCounters, at the stamp's stream number (no lookup of the stream). LeastReceiver accounts each stamped
// IPv4 frame in its stream's row of LeastRows (its key compared, its sequence followed): the least a receiver
// accounting per stream does.
type DropCount struct {
	Program       *ebpf.Program
	StreamProgram *ebpf.Program
	LeastReceiver *ebpf.Program
	// Counter is a per-CPU array with one bpf.Counter.
	Counter *ebpf.Map
	// StreamCounters is a per-CPU array of 256 bpf.Counter, one per stream number.
	StreamCounters *ebpf.Map
	// LeastRows is a per-CPU array of 256 LeastRow.
	LeastRows *ebpf.Map
}

// LeastRow is a stream's row in DropCount.LeastRows.
type LeastRow = dropcountLeastRow

// LoadDropCount loads the drop-only counters.
func LoadDropCount() (*DropCount, error) {
	var objs dropcountObjects
	if err := loadDropcountObjects(&objs, nil); err != nil {
		return nil, fmt.Errorf("load drop counter: %w", err)
	}
	return &DropCount{Program: objs.XdpgenDropCount, StreamProgram: objs.XdpgenStreamCount,
		LeastReceiver: objs.XdpgenLeastReceiver, Counter: objs.DropCounter, StreamCounters: objs.StreamCounters,
		LeastRows: objs.LeastRows}, nil
}

// Close releases the programs and the maps.
func (d *DropCount) Close() error {
	return _DropcountClose(d.Program, d.StreamProgram, d.LeastReceiver, d.Counter, d.StreamCounters, d.LeastRows)
}
