/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/* The UDP workers' map: udp.c keeps each worker's state in it, and the no-touch ceiling (bpf/bpftest) counts into
 * the generator's own copy, handed to it at load. */
#pragma once

#include "xdpgen.h"

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct worker_state);
} workers SEC(".maps");

static __always_inline struct worker_state *this_worker(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&workers, &zero);
}
