/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/* Parsing a received UDP frame and its stamp: the receive program's, and the test programs' that stand between
 * a sender and its receivers (bpf/bpftest). */
#pragma once

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>
#include <bpf_helpers.h>
#include <bpf_endian.h>

#include "xdpgen.h"

struct vlan_hdr {
	__be16 tci;
	__be16 proto;
};

/* A UDP frame's headers, as parse_udp found them. */
struct udp_frame {
	struct ethhdr *eth;
	/* ip6 when v6, else ip. (A flag, not a NULL test: the verifier cannot tell a packet pointer from NULL.) */
	struct iphdr *ip;
	struct ipv6hdr *ip6;
	struct udphdr *udp;
	__u8 v6;
};

/* Finds the headers of a UDP frame over IPv4 or IPv6, optionally 802.1Q-tagged (options are allowed on IPv4,
 * extension headers are not on IPv6). Returns -1 for any other frame. */
static __always_inline int parse_udp(void *data, void *data_end, struct udp_frame *f)
{
	struct ethhdr *eth = data;
	void *l3 = eth + 1;

	f->eth = eth;
	/* The common frame first, in one bounds check and one branch: untagged IPv4 without options. (The Ethernet
	 * header is packed: loaded through it, the type would be two byte loads.) */
	if (l3 + sizeof(struct iphdr) + sizeof(struct udphdr) <= data_end) {
		struct iphdr *ip = l3;

		if (!((*(__be16 *)(data + offsetof(struct ethhdr, h_proto)) ^ bpf_htons(ETH_P_IP)) | (*(__u8 *)ip ^ 0x45) |
		      (ip->protocol ^ IPPROTO_UDP))) {
			f->ip = ip;
			f->udp = (void *)(ip + 1);
			return 0;
		}
	}
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

	struct udphdr *udp;

	if (proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = l3;

		if ((void *)(ip + 1) > data_end || ip->protocol != IPPROTO_UDP || ip->ihl < 5)
			return -1;
		f->ip = ip;
		udp = l3 + ip->ihl * 4;
	} else if (proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = l3;

		if ((void *)(ip6 + 1) > data_end || ip6->nexthdr != IPPROTO_UDP)
			return -1;
		f->ip6 = ip6;
		f->v6 = 1;
		udp = (void *)(ip6 + 1);
	} else {
		return -1;
	}
	/* One register for the pointer checked and the pointer kept: the verifier knows the bounds of the one it
	 * checked only. */
	asm volatile("" : "+r"(udp));
	if ((void *)(udp + 1) > data_end)
		return -1;
	f->udp = udp;
	return 0;
}

/* The frame's stamp, or NULL when it carries none. */
static __always_inline struct stamp *stamp_of(struct udp_frame *f, void *data_end)
{
	struct stamp *s = (void *)(f->udp + 1);

	if ((void *)(s + 1) > data_end || bpf_ntohs(f->udp->len) < sizeof(struct udphdr) + sizeof(*s))
		return NULL;
	if (s->magic != bpf_htons(STAMP_MAGIC) || (s->flags & ~STAMP_FLAGS))
		return NULL;
	return s;
}

/* Copies the frame's source or destination address to addr as IPv6 (IPv4-mapped for IPv4). */
static __always_inline void frame_addr(struct udp_frame *f, int dst, __u8 addr[16])
{
	if (!f->v6) {
		__u32 *a = (__u32 *)addr;

		a[0] = 0;
		a[1] = 0;
		a[2] = bpf_htonl(0xffff);
		a[3] = dst ? f->ip->daddr : f->ip->saddr;
	} else {
		__builtin_memcpy(addr, dst ? &f->ip6->daddr : &f->ip6->saddr, 16);
	}
}

