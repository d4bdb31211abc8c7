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
#include "workers.h"

char __license[] SEC("license") = "Dual BSD/GPL";

/* The egress interface. */
const volatile __u32 ifindex;

SEC("xdp")
int xdpgen_redirect_notouch(struct xdp_md *ctx)
{
	struct worker_state *w = this_worker();

	if (!w)
		return XDP_ABORTED;
	return redirect_counted(ctx, w->actions, ifindex);
}
