// SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause)
//go:build ignore

/*
 * The receive benchmark's baselines: xdpgen_drop_count counts every frame per CPU and drops it, the least a
 * receiver can do; xdpgen_stamp_count first finds the frame's stamp as the receive program does (parse_udp,
 * stamp_of) and counts only stamped frames, which is what the receive program costs before it accounts for a
 * frame in its stream; xdpgen_stream_count also counts each stamped frame in a counter of its stream, indexed by
 * the stamp's stream number with no lookup of the stream (no generator, sender or destination told apart, no
 * sequence numbers): the least a receiver that counts per stream can do.
 */
#include <linux/bpf.h>
#include <bpf_helpers.h>

#include "xdpgen.h"
#include "udpframe.h"

char __license[] SEC("license") = "Dual BSD/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct counter);
} drop_counter SEC(".maps");

/* xdpgen_stream_count's counters, indexed by the stamp's stream. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, struct counter);
} stream_counters SEC(".maps");

SEC("xdp")
int xdpgen_drop_count(struct xdp_md *ctx)
{
	__u32 zero = 0;
	struct counter *c = bpf_map_lookup_elem(&drop_counter, &zero);

	if (c)
		counter_add(c, ctx->data_end - ctx->data);
	return XDP_DROP;
}

SEC("xdp")
int xdpgen_stamp_count(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct udp_frame f = {};
	__u32 zero = 0;

	if (parse_udp(data, data_end, &f) < 0 || !stamp_of(&f, data_end))
		return XDP_PASS;
	struct counter *c = bpf_map_lookup_elem(&drop_counter, &zero);

	if (c)
		counter_add(c, data_end - data);
	return XDP_DROP;
}

SEC("xdp")
int xdpgen_stream_count(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct udp_frame f = {};
	struct stamp *s;

	if (parse_udp(data, data_end, &f) < 0 || !(s = stamp_of(&f, data_end)))
		return XDP_PASS;
	__u32 stream = s->stream;
	struct counter *c = bpf_map_lookup_elem(&stream_counters, &stream);

	if (c)
		counter_add(c, data_end - data);
	return XDP_DROP;
}
