// SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause)
//go:build ignore

/*
 * The ceiling a generator is measured against: redirect the template untouched, count it, nothing else. It
 * counts in the generator's own worker map (the loader replaces this one with it), so that the generator's
 * statistics read what it did.
 */
#include <linux/bpf.h>
#include <bpf_helpers.h>

#include "xdpgen.h"

char __license[] SEC("license") = "Dual BSD/GPL";

/* The egress interface. */
const volatile __u32 ifindex;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct worker_state);
} workers SEC(".maps");

SEC("xdp")
int xdpgen_redirect_notouch(struct xdp_md *ctx)
{
	__u32 zero = 0;
	struct worker_state *w = bpf_map_lookup_elem(&workers, &zero);

	if (!w)
		return XDP_ABORTED;
	return redirect_counted(ctx, w->actions, ifindex);
}
