/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/* Structs shared by the BPF programs and Go: bpf2go turns each one named with -type into a Go struct. */
#pragma once

#include <linux/types.h>

/* XDP_ABORTED .. XDP_REDIRECT: counters are indexed by the verdict. */
#define XDPGEN_ACTIONS 5

struct counter {
	__u64 packets;
	__u64 bytes;
};

/*
 * One live-frame worker's state, in a per-CPU map because each worker is pinned to one CPU and BPF_PROG_RUN runs
 * on the caller's CPU. Userspace writes `limit` once before the workers start and never again (a per-CPU map
 * write replaces every CPU's value); from then on only the program writes here.
 */
struct worker_state {
	/* Frames this CPU may emit in the whole run; further frames are dropped uncounted. The kernel may re-run
	 * an interrupted BPF_PROG_RUN from the start, so this, not `repeat`, is what makes a packet count exact. */
	__u64 limit;
	__u64 emitted;
	/* Position in the port ranges: derived state, because a recycled page holds the template or any earlier
	 * rewrite, never a value we can trust. */
	__u32 dst_port_offset;
	__u32 src_port_offset;
	/* When the next frame is due: ns since config.clock_base, shifted by PACE_SHIFT; 0 before the first. */
	__u64 next_due;
	struct counter actions[XDPGEN_ACTIONS];
};

/* Pacing keeps time in 1/256 ns, so that any rate's interval is exact enough over a long run. */
#define PACE_SHIFT 8

/* The UDP generator's configuration: fixed at load time as a const volatile so the verifier prunes what a
 * run does not use (a fixed flow never touches the packet). Every field is in host byte order. */
struct udp_config {
	__u32 ifindex;
	/* Offset of the UDP header in the frame (Ethernet, optional 802.1Q tag, IPv4 or IPv6). */
	__u16 udp_offset;
	/* The template's UDP checksum: the value the dynamic-port checksums are derived from. */
	__u16 udp_check;
	__u16 dst_port;
	__u16 dst_port_count;
	__u16 src_port;
	__u16 src_port_count;
	/* Time between two frames of one worker, in 1/256 ns; 0: as fast as possible. A frame that is not due yet
	 * is dropped uncounted: the worker spins, as hardware generators do, so that pacing has no sleep jitter. */
	__u64 pace_interval;
	/* Boot time (ns) at load: pacing clocks count from here, so PACE_SHIFT cannot overflow them. */
	__u64 clock_base;
};

/* The receive counter's filter: UDP to destination ports [dst_port_first, dst_port_last]. */
struct rx_config {
	__u16 dst_port_first;
	__u16 dst_port_last;
	/* Non-zero: matched frames go on to the stack (XDP_PASS); zero: they are dropped after counting. */
	__u8 pass;
	__u8 pad[3];
};

/* rx_counters keys. */
enum rx_counter_key {
	RX_MATCHED = 0,
	RX_OTHER = 1,
	RX_KEYS,
};
