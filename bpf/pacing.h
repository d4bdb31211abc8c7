/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/* Pacing a live-frame worker: the UDP generator's (udp.c) and the capture replay's (replay.c). */
#pragma once

#include <bpf_helpers.h>

#include "xdpgen.h"

/* A worker's schedule starts at its first frame (the kernel takes tens of milliseconds to start each worker's
 * run, and userspace times the run's duration from that frame too); a worker that fell more than MAX_BACKLOG
 * behind (descheduled for long) restarts its schedule rather than bursting. */
#define MAX_BACKLOG_NS (1000 * 1000 * 1000ULL)

/* Whether this worker's next frame is due; advances the schedule when it is. With bursts, each due time lets
 * burst frames through back to back, and the schedule advances by interval (a burst's, in 1/256 ns). clock_base
 * is the boot time (ns) the program was loaded at. The callers pass load-time constants. */
static __always_inline int frame_due(struct worker_state *w, __u64 clock_base, __u64 interval, __u32 burst)
{
	if (w->burst_left) {
		w->burst_left--;
		return 1;
	}
	__u64 now = (bpf_ktime_get_ns() - clock_base) << PACE_SHIFT;

	if (now < w->next_due)
		return 0;
	if (w->next_due == 0 || now - w->next_due > (MAX_BACKLOG_NS << PACE_SHIFT))
		w->next_due = now;
	w->next_due += interval;
	if (burst > 1)
		w->burst_left = burst - 1;
	return 1;
}
