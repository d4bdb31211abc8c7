// SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause)
//go:build ignore

/*
 * The UDP live-frame programs. Userspace hands a packet template to BPF_PROG_RUN with BPF_F_TEST_XDP_LIVE_FRAMES
 * and a large repeat; the kernel runs one of these programs on each copy and acts on the verdict.
 */
#include <linux/bpf.h>
#include <bpf_helpers.h>
#include <bpf_endian.h>

#include "xdpgen.h"
#include "workers.h"

char __license[] SEC("license") = "Dual BSD/GPL";

const volatile struct udp_config config;

/*
 * Writes this packet's ports and recomputes the UDP checksum incrementally from the template's (RFC 1624), over
 * the headers restore_headers wrote. Destination ports advance every packet,
 * source ports every time the destination range wraps, so a run covers every combination.
 */
static __always_inline int stamp_ports(struct xdp_md *ctx, struct worker_state *w)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__be16 *udp = data + config.udp_offset;

	if ((void *)(udp + 4) > data_end)
		return -1;

	__be16 dst = bpf_htons(config.dst_port + w->dst_port_offset);
	__be16 src = bpf_htons(config.src_port + w->src_port_offset);
	__u32 sum = (__u16)~bpf_htons(config.udp_check);

	sum += (__u16)~bpf_htons(config.src_port) + src;
	sum += (__u16)~bpf_htons(config.dst_port) + dst;
	__u16 check = csum_fold(sum);

	udp[0] = src;
	udp[1] = dst;
	/* 0 means "no checksum" in UDP; its one's complement twin 0xffff says the same sum. */
	udp[3] = check ? check : 0xffff;

	w->dst_port_offset = cycle(w->dst_port_offset, config.dst_port_count);
	if (w->dst_port_offset == 0 && config.src_port_count > 1)
		w->src_port_offset = cycle(w->src_port_offset, config.src_port_count);
	return 0;
}

/* Whether this worker's next frame is due; advances the schedule when it is. A worker's schedule starts at its
 * first frame (the kernel takes tens of milliseconds to start each worker's run, and userspace times the
 * run's duration from that frame too); a worker that fell more than MAX_BACKLOG behind (descheduled for long)
 * restarts its schedule rather than bursting. */
#define MAX_BACKLOG_NS (1000 * 1000 * 1000ULL)

static __always_inline int frame_due(struct worker_state *w)
{
	__u64 now = (bpf_ktime_get_ns() - config.clock_base) << PACE_SHIFT;

	if (now < w->next_due)
		return 0;
	if (w->next_due == 0 || now - w->next_due > (MAX_BACKLOG_NS << PACE_SHIFT))
		w->next_due = now;
	w->next_due += config.pace_interval;
	return 1;
}

SEC("xdp")
int xdpgen_udp(struct xdp_md *ctx)
{
	struct worker_state *w = this_worker();

	if (!w)
		return XDP_ABORTED;
	if (w->emitted >= w->limit)
		return XDP_DROP;
	if (config.pace_interval && !frame_due(w))
		return XDP_DROP;
	w->emitted++;

	if (restore_headers(ctx, config.headers, config.udp_offset + 8, config.frame_len) < 0)
		return count_verdict(ctx, w->actions, XDP_ABORTED);
	if (config.dst_port_count > 1 || config.src_port_count > 1) {
		if (stamp_ports(ctx, w) < 0)
			return count_verdict(ctx, w->actions, XDP_ABORTED);
	}
	return redirect_counted(ctx, w->actions, config.ifindex);
}

/* Attached to an egress interface whose driver only accepts redirected frames while an XDP program runs. */
SEC("xdp")
int xdpgen_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}
