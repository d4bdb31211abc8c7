// SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause)
//go:build ignore

/*
 * Counts the generator's frames where they arrive: attached to the receiving interface, it counts UDP frames to
 * the configured destination ports (IPv4 or IPv6, optionally 802.1Q-tagged) and everything else separately.
 * On a veth it also makes the peer able to receive redirected frames at all (the kernel needs NAPI there).
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>
#include <bpf_helpers.h>
#include <bpf_endian.h>

#include "xdpgen.h"

char __license[] SEC("license") = "Dual BSD/GPL";

const volatile struct rx_config rx_config;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, RX_KEYS);
	__type(key, __u32);
	__type(value, struct counter);
} rx_counters SEC(".maps");

struct vlan_hdr {
	__be16 tci;
	__be16 proto;
};

/* Returns the UDP destination port of a frame, or -1 when it is not UDP over IPv4/IPv6 (options are allowed on
 * IPv4, extension headers are not on IPv6). */
static __always_inline int udp_dst_port(void *data, void *data_end)
{
	struct ethhdr *eth = data;
	void *l3 = eth + 1;
	struct udphdr *udp;

	if (l3 > data_end)
		return -1;
	__be16 proto = eth->h_proto;

	if (proto == bpf_htons(ETH_P_8021Q)) {
		struct vlan_hdr *vlan = l3;

		if ((void *)(vlan + 1) > data_end)
			return -1;
		proto = vlan->proto;
		l3 = vlan + 1;
	}

	if (proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = l3;

		if ((void *)(ip + 1) > data_end || ip->protocol != IPPROTO_UDP || ip->ihl < 5)
			return -1;
		udp = l3 + ip->ihl * 4;
	} else if (proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = l3;

		if ((void *)(ip6 + 1) > data_end || ip6->nexthdr != IPPROTO_UDP)
			return -1;
		udp = (void *)(ip6 + 1);
	} else {
		return -1;
	}
	if ((void *)(udp + 1) > data_end)
		return -1;
	return bpf_ntohs(udp->dest);
}

SEC("xdp")
int xdpgen_rx_count(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	int port = udp_dst_port(data, data_end);
	__u32 key = RX_OTHER;

	if (port >= rx_config.dst_port_first && port <= rx_config.dst_port_last)
		key = RX_MATCHED;

	struct counter *c = bpf_map_lookup_elem(&rx_counters, &key);

	if (c)
		counter_add(c, data_end - data);
	if (key == RX_MATCHED && !rx_config.pass)
		return XDP_DROP;
	return XDP_PASS;
}
