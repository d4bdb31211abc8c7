// SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause)
//go:build ignore

/*
 * Stands between a sender and its receivers (attached to a router's interface facing the sender): it drops a
 * random share of the stamped frames to one destination, to make losses a receiver must account for, counts
 * what it passed and dropped, and passes everything else (reflected latency samples included) to the stack (which
 * forwards it).
 */
#include <linux/bpf.h>
#include <bpf_helpers.h>

#include "xdpgen.h"
#include "udpframe.h"

char __license[] SEC("license") = "Dual BSD/GPL";

struct stamp_drop_config {
	/* Stamped frames to this address (IPv4-mapped for IPv4) are considered. */
	__u8 dst_addr[16];
	/* Drop each with this probability, in millionths. */
	__u32 drop_ppm;
};

/* stamp_drop_counters keys: the considered frames passed and dropped. */
enum stamp_drop_key {
	STAMP_DROP_PASSED = 0,
	STAMP_DROP_DROPPED = 1,
	STAMP_DROP_KEYS,
};

const volatile struct stamp_drop_config drop_config;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STAMP_DROP_KEYS);
	__type(key, __u32);
	__type(value, struct counter);
} stamp_drop_counters SEC(".maps");

SEC("xdp")
int xdpgen_stamp_drop(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct udp_frame f = {};
	__u32 dst[4];

	if (parse_udp(data, data_end, &f) < 0)
		return XDP_PASS;
	struct stamp *s = stamp_of(&f, data_end);

	/* A frame a receiver sends back to its sender is the sender's latency sample, not a frame of the path. */
	if (!s || (s->flags & STAMP_REFLECTED))
		return XDP_PASS;
	frame_addr(&f, 1, (__u8 *)dst);
	for (int i = 0; i < 4; i++) {
		if (dst[i] != ((const volatile __u32 *)drop_config.dst_addr)[i])
			return XDP_PASS;
	}

	__u32 key = bpf_get_prandom_u32() % 1000000 < drop_config.drop_ppm ? STAMP_DROP_DROPPED : STAMP_DROP_PASSED;
	struct counter *c = bpf_map_lookup_elem(&stamp_drop_counters, &key);

	if (c)
		counter_add(c, data_end - data);
	return key == STAMP_DROP_DROPPED ? XDP_DROP : XDP_PASS;
}
