// SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause)
//go:build ignore

/* The receive benchmark's baseline: counts every frame per CPU and drops it, the least a receiver can do. */
#include <linux/bpf.h>
#include <bpf_helpers.h>

#include "xdpgen.h"

char __license[] SEC("license") = "Dual BSD/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct counter);
} drop_counter SEC(".maps");

SEC("xdp")
int xdpgen_drop_count(struct xdp_md *ctx)
{
	__u32 zero = 0;
	struct counter *c = bpf_map_lookup_elem(&drop_counter, &zero);

	if (c)
		counter_add(c, ctx->data_end - ctx->data);
	return XDP_DROP;
}
