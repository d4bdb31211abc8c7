// SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause)
//go:build ignore

/*
 * The receive benchmark's baselines: xdpgen_drop_count counts every frame per CPU and drops it, the least a
 * receiver can do; xdpgen_stream_count finds the frame's stamp as the receive program does (parse_udp, stamp_of)
 * and counts each stamped frame in a counter of its stream, indexed by the stamp's stream number with no lookup
 * of the stream (no generator, sender or destination told apart, no sequence numbers): the least a receiver that
 * counts per stream can do. xdpgen_least_receiver does the least of what the receive program must do per frame:
 * it tells the stream by its whole key and follows its sequence numbers, in a row of its own on this CPU, with
 * nothing else (no shared table, no reordering window, no counters beside the row's): what any receiver that
 * accounts per stream costs, for the receive program's cost to be read against.
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

/* xdpgen_least_receiver's row of a stream on this CPU: its key as the frames carry it (network byte order), the
 * first frame's, and what it counted. */
struct least_row {
	__u64 packets;
	__u64 bytes;
	/* The sequence number the row expects next, and the frames that carried another. */
	__u64 next_seq;
	__u64 unexpected;
	__be32 generator;
	__be32 sender;
	__be32 dst;
	__u32 stream;
};

/* xdpgen_least_receiver's rows, each at a fold of its stream's key. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, struct least_row);
} least_rows SEC(".maps");

/* IPv4 frames only (the benchmark's); a frame whose row another stream holds passes uncounted. */
SEC("xdp")
int xdpgen_least_receiver(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct udp_frame f = {};
	struct stamp *s;

	if (parse_udp(data, data_end, &f) < 0 || !(s = stamp_of(&f, data_end)) || f.v6)
		return XDP_PASS;
	__be32 dst = f.ip->daddr;
	__u32 x = s->generator ^ s->sender ^ dst ^ s->stream;

	x ^= x >> 16;
	x ^= x >> 8;
	__u32 i = x & 255;
	struct least_row *r = bpf_map_lookup_elem(&least_rows, &i);

	if (!r)
		return XDP_PASS;
	if ((r->generator ^ s->generator) | (r->sender ^ s->sender) | (r->dst ^ dst) | (r->stream ^ s->stream)) {
		if (r->packets)
			return XDP_PASS;
		r->generator = s->generator;
		r->sender = s->sender;
		r->dst = dst;
		r->stream = s->stream;
	}
	__u32 seq = bpf_ntohl(s->seq);

	if ((__u32)r->next_seq != seq)
		r->unexpected++;
	r->next_seq = seq + 1;
	r->packets++;
	r->bytes += data_end - data;
	return XDP_DROP;
}
