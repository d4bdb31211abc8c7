// SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause)
//go:build ignore

/*
 * The receiving side of a TCP test: attached to the peer's interface, it passes everything to the stack except
 * one data segment in drop_every (TCP with payload to dst_port), which it drops to make losses the sender must
 * recover from, and counts what it passed and dropped, and every frame of the connections with its length. On a
 * veth it also lets the interface receive redirected frames at all.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <bpf_helpers.h>
#include <bpf_endian.h>

#include "xdpgen.h"

char __license[] SEC("license") = "Dual BSD/GPL";

/* The loss injector's configuration. */
struct tcp_loss_config {
	/* TCP to this port is considered. */
	__u16 dst_port;
	__u16 pad;
	/* Drop one data segment in this many (per CPU); 0 drops none. */
	__u32 drop_every;
};

/* tcp_loss_counters keys: data segments and their payload bytes passed and dropped, and every TCP frame to
 * the port with its length (what arrived on the wire, headers included). */
enum tcp_loss_key {
	TCP_LOSS_PASSED = 0,
	TCP_LOSS_DROPPED = 1,
	TCP_LOSS_FRAMES = 2,
	TCP_LOSS_KEYS,
};

const volatile struct tcp_loss_config loss_config;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, TCP_LOSS_KEYS);
	__type(key, __u32);
	__type(value, struct counter);
} tcp_loss_counters SEC(".maps");

/* Returns the TCP payload length of a segment to loss_config.dst_port (0 for a segment without data), or -1 for
 * any other frame. */
static __always_inline int data_segment(void *data, void *data_end)
{
	struct ethhdr *eth = data;
	struct tcphdr *th;
	int l4_len;

	if ((void *)(eth + 1) > data_end)
		return -1;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);

		if ((void *)(ip + 1) > data_end || ip->protocol != IPPROTO_TCP || ip->ihl < 5)
			return -1;
		th = (void *)ip + ip->ihl * 4;
		l4_len = bpf_ntohs(ip->tot_len) - ip->ihl * 4;
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if ((void *)(ip6 + 1) > data_end || ip6->nexthdr != IPPROTO_TCP)
			return -1;
		th = (void *)(ip6 + 1);
		l4_len = bpf_ntohs(ip6->payload_len);
	} else {
		return -1;
	}
	if ((void *)(th + 1) > data_end || th->dest != bpf_htons(loss_config.dst_port))
		return -1;
	return l4_len - th->doff * 4;
}

SEC("xdp")
int xdpgen_tcp_loss(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	int payload = data_segment(data, data_end);

	if (payload < 0)
		return XDP_PASS;

	__u32 key = TCP_LOSS_FRAMES;
	struct counter *frames = bpf_map_lookup_elem(&tcp_loss_counters, &key);

	if (frames)
		counter_add(frames, data_end - data);
	if (payload == 0)
		return XDP_PASS;

	key = TCP_LOSS_PASSED;
	struct counter *passed = bpf_map_lookup_elem(&tcp_loss_counters, &key);

	key = TCP_LOSS_DROPPED;
	struct counter *dropped = bpf_map_lookup_elem(&tcp_loss_counters, &key);

	if (!passed || !dropped)
		return XDP_PASS;
	if (loss_config.drop_every && (passed->packets + dropped->packets) % loss_config.drop_every == loss_config.drop_every - 1) {
		counter_add(dropped, payload);
		return XDP_DROP;
	}
	counter_add(passed, payload);
	return XDP_PASS;
}
