// SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause)
//go:build ignore

/*
 * Stands at a router's egress towards a receiver (tc) and makes one path's frames arrive out of order: of each
 * stream's stamped frames from src_addr to dst_addr, the two whose sequence numbers are `first` and `first + 1`
 * modulo `every` go to traffic class `classid` (skb->priority, which a prio qdisc takes as the band), where a
 * token bucket lets the first through at once and holds the second while later frames of the path overtake it
 * through the default band. Counts the frames it delayed (the seconds of the pairs): each should arrive after a
 * later one. Everything else passes untouched.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf_helpers.h>

#include "xdpgen.h"
#include "udpframe.h"

char __license[] SEC("license") = "Dual BSD/GPL";

struct stamp_delay_config {
	/* The path: stamped frames from src_addr to dst_addr (IPv4-mapped for IPv4). */
	__u8 src_addr[16];
	__u8 dst_addr[16];
	__u32 every;
	__u32 first;
	__u32 classid;
};

/* stamp_delay_counters keys: the pairs' first frames (sent at once) and second frames (held back). */
enum stamp_delay_key {
	STAMP_DELAY_FIRST = 0,
	STAMP_DELAY_HELD = 1,
	STAMP_DELAY_KEYS,
};

const volatile struct stamp_delay_config delay_config;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STAMP_DELAY_KEYS);
	__type(key, __u32);
	__type(value, struct counter);
} stamp_delay_counters SEC(".maps");

static __always_inline int same_addr(struct udp_frame *f, int dst, const volatile __u8 want[16])
{
	__u32 a[4];

	frame_addr(f, dst, (__u8 *)a);
	for (int i = 0; i < 4; i++) {
		if (a[i] != ((const volatile __u32 *)want)[i])
			return 0;
	}
	return 1;
}

SEC("tc")
int xdpgen_stamp_delay(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct udp_frame f = {};

	if (parse_udp(data, data_end, &f) < 0)
		return TC_ACT_OK;
	struct stamp *s = stamp_of(&f, data_end);

	if (!s || (s->flags & STAMP_REFLECTED) || !same_addr(&f, 0, delay_config.src_addr) ||
	    !same_addr(&f, 1, delay_config.dst_addr) || !delay_config.every)
		return TC_ACT_OK;
	__u32 pos = bpf_ntohl(s->seq) % delay_config.every;

	if (pos != delay_config.first && pos != delay_config.first + 1)
		return TC_ACT_OK;
	__u32 key = pos == delay_config.first ? STAMP_DELAY_FIRST : STAMP_DELAY_HELD;
	struct counter *c = bpf_map_lookup_elem(&stamp_delay_counters, &key);

	if (c)
		counter_add(c, skb->len);
	skb->priority = delay_config.classid;
	return TC_ACT_OK;
}
