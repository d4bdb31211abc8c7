package dataplane

import (
	"errors"
	"runtime"
	"unsafe"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// progTestRunAttr is the BPF_PROG_TEST_RUN part of union bpf_attr (include/uapi/linux/bpf.h).
type progTestRunAttr struct {
	progFD      uint32
	retval      uint32
	dataSizeIn  uint32
	dataSizeOut uint32
	dataIn      unsafe.Pointer
	dataOut     unsafe.Pointer
	repeat      uint32
	duration    uint32
	ctxSizeIn   uint32
	ctxSizeOut  uint32
	ctxIn       unsafe.Pointer
	ctxOut      unsafe.Pointer
	flags       uint32
	cpu         uint32
	batchSize   uint32
	_           uint32
}

// errInterrupted: a signal ended a live-frame run early. What it sent is in the BPF counters.
var errInterrupted = errors.New("live-frame run interrupted")

// xdpMD is struct xdp_md (include/uapi/linux/bpf.h): BPF_PROG_RUN's context, of which a live-frame run reads the
// ingress interface (the device XDP_PASS hands frames to), and the frame's bounds.
type xdpMD struct {
	data, dataEnd, dataMeta, ingressIfindex, rxQueueIndex, egressIfindex uint32
}

// runLiveFrames runs prog over frame up to repeat times in live-frame mode, on the calling thread's CPU. A non-zero
// ingress is the interface whose receive path takes the frames the program passes (XDP_PASS); 0: loopback's.
//
// ebpf.Program.Run would do, except that it restarts an interrupted run from the beginning; here a signal is
// how a run is stopped (every BPF_PROG_RUN call costs two RCU grace periods, ~25 ms here, to add the program
// to the XDP dispatcher and remove it again, so calls must be long; ~20 µs instead when the program is attached
// to an interface, where the dispatcher holds it already), so the interruption is returned instead.
func runLiveFrames(prog *ebpf.Program, frame []byte, repeat uint32, ingress int) error {
	attr := progTestRunAttr{
		progFD:     uint32(prog.FD()),
		dataSizeIn: uint32(len(frame)),
		dataIn:     unsafe.Pointer(&frame[0]),
		repeat:     repeat,
		flags:      unix.BPF_F_TEST_XDP_LIVE_FRAMES,
	}
	md := xdpMD{dataEnd: uint32(len(frame)), ingressIfindex: uint32(ingress)}
	if ingress != 0 {
		attr.ctxIn, attr.ctxSizeIn = unsafe.Pointer(&md), uint32(unsafe.Sizeof(md))
	}
	_, _, errno := unix.Syscall(unix.SYS_BPF, unix.BPF_PROG_TEST_RUN, uintptr(unsafe.Pointer(&attr)), unsafe.Sizeof(attr))
	runtime.KeepAlive(prog)
	runtime.KeepAlive(frame)
	runtime.KeepAlive(&md)
	switch errno {
	case 0:
		return nil
	case unix.EINTR:
		return errInterrupted
	}
	return errno
}

// monotonicNow is CLOCK_MONOTONIC in ns, the clock bpf_ktime_get_ns reads.
func monotonicNow() uint64 {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return uint64(ts.Nano())
}
