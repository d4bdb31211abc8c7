// SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause)
//go:build ignore

/*
 * For the TCP benchmark only: the road not taken. Computes a segment's TCP checksum from scratch (pseudo-header,
 * header and payload, with bpf_csum_diff in 256-byte pieces), which is what xdpgen_tcp_send would have to do
 * instead of its incremental update if it rewrote the payload. IPv4 without options, a TCP segment whose
 * length is a multiple of 4; anything else is XDP_ABORTED.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <bpf_helpers.h>
#include <bpf_endian.h>

char __license[] SEC("license") = "Dual BSD/GPL";

/* bpf_csum_diff takes up to 512 bytes; 256 leaves the tail buffer room on the stack. */
#define CSUM_PIECE 256
#define MAX_PIECES 14

static __always_inline __u16 csum_fold(__u64 sum)
{
	sum = (sum & 0xffffffff) + (sum >> 32);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

SEC("xdp")
int xdpgen_tcp_csum_full(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct iphdr *ip = data + sizeof(struct ethhdr);
	struct tcphdr *th = (void *)(ip + 1);

	if ((void *)(th + 1) > data_end || ip->ihl != 5)
		return XDP_ABORTED;
	__u32 len = bpf_ntohs(ip->tot_len) - sizeof(*ip);

	if (len & 3 || (void *)th + len > data_end)
		return XDP_ABORTED;

	__u64 sum = ip->saddr;

	sum += ip->daddr;
	sum += bpf_htonl((IPPROTO_TCP << 16) | len);
	th->check = 0;

	__u32 off = 0;

	/* Whole pieces straight from the packet, then the tail through a stack buffer (the verifier cannot bound a
	 * variable-length read of the packet itself). */
	for (int i = 0; i < MAX_PIECES; i++) {
		void *p = (void *)th + off;

		if (off + CSUM_PIECE > len || p + CSUM_PIECE > data_end)
			break;
		sum += (__u32)bpf_csum_diff(0, 0, p, CSUM_PIECE, 0);
		off += CSUM_PIECE;
	}
	/* 64-bit, so that the bound checked is the bound of the register passed. */
	__u64 tail = (__u64)len - (__u64)off;
	__u8 buf[CSUM_PIECE];

	if (tail > CSUM_PIECE)
		return XDP_ABORTED;
	if (tail) {
		if (bpf_xdp_load_bytes(ctx, (void *)th - data + off, buf, tail) < 0)
			return XDP_ABORTED;
		sum += (__u32)bpf_csum_diff(0, 0, (void *)buf, tail, 0);
	}
	th->check = csum_fold(sum);
	return XDP_TX;
}
