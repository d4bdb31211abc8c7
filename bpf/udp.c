// SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause)
//go:build ignore

/*
 * The UDP live-frame programs. Userspace hands a packet template to BPF_PROG_RUN with BPF_F_TEST_XDP_LIVE_FRAMES
 * and a large repeat; the kernel runs one of these programs on each copy and acts on the verdict.
 */
#include <linux/bpf.h>
#include <linux/ip.h>
#include <bpf_helpers.h>
#include <bpf_endian.h>

#include "xdpgen.h"
#include "workers.h"
#include "pacing.h"

char __license[] SEC("license") = "Dual BSD/GPL";

const volatile struct udp_config config;

/* A random number in [0, n): a multiply and a shift (Lemire), not a division. */
static __always_inline __u32 random_below(__u32 n)
{
	return ((__u64)bpf_get_prandom_u32() * n) >> 32;
}

/*
 * Writes the address first + off as the 32-bit word at `at` (the template holds first there), and adds the
 * change to the UDP checksum's sum (the pseudo-header) and, for IPv4, to the IP header checksum's.
 */
static __always_inline int rewrite_addr(void *data, void *data_end, __u16 at, __u32 first, __u32 off, __u32 *sum,
					__u32 *ip_sum)
{
	__be32 *word = data + at;

	if ((void *)(word + 1) > data_end)
		return -1;
	__be32 old = bpf_htonl(first), new = bpf_htonl(first + off);
	__u32 change = (__u16)~old + (__u16)~(old >> 16) + (new & 0xffff) + (new >> 16);

	*word = new;
	*sum += change;
	if (!config.ipv6)
		*ip_sum += change;
	return 0;
}

/* The UDP checksum's sum for destination d's template, to add each frame's changes to (RFC 1624). */
static __always_inline __u32 template_udp_sum(__u32 d)
{
	return (__u16)~bpf_htons(config.dests[d].udp_check);
}

/* Stores the UDP checksum of sum in the UDP header at udp. */
static __always_inline void store_udp_check(__be16 *udp, __u32 sum)
{
	__u16 check = csum_fold(sum);

	/* 0 means "no checksum" in UDP; its one's complement twin 0xffff says the same sum. */
	udp[3] = check ? check : 0xffff;
}

/*
 * Writes the stamp of destination d's next frame and adds what it changes to the UDP checksum's sum: the
 * template's stamp holds the magic, generator and sender, with every per-frame field zero.
 */
static __always_inline int stamp_frame(struct worker_state *w, __u32 d, struct stamp *stamp, void *data_end,
				       __u32 *sum)
{
	if ((void *)(stamp + 1) > data_end)
		return -1;
	__u32 seq = w->first_seq[d] + (__u32)w->sent[d];
	__u32 flags = 0, now = 0;

	/* Only the frames that come back are timed: reading the clock costs more than the rest of the stamp
	 * (bpf_ktime_get_tai_ns is ~40% of a fixed flow's frame time on a KVM guest). */
	if (config.reflect_every) {
		if (w->reflect_in[d] == 0) {
			flags = STAMP_REFLECT;
			now = bpf_htonl((__u32)bpf_ktime_get_tai_ns());
			w->reflect_in[d] = config.reflect_every;
		}
		w->reflect_in[d]--;
	}
	__be32 head = bpf_htonl(STAMP_MAGIC << 16 | flags << 8 | (__u8)w->stream);
	__be32 seq32 = bpf_htonl(seq);

	/* Every byte of the stamp, the fixed ones too: the page may hold anything. */
	*(__be32 *)stamp = head;
	stamp->generator = config.stamp_generator;
	stamp->sender = config.stamp_sender;
	stamp->seq = seq32;
	stamp->tx_time = now;
	*sum += (head >> 16) + (seq32 & 0xffff) + (seq32 >> 16) + (now & 0xffff) + (now >> 16);
	return 0;
}

/*
 * Writes the stamp and the UDP checksum of a frame in which nothing else changes (one size, no ranges). A path
 * of its own: through finish_frame's, which weighs every kind of change, a stamped frame costs ~3 ns more.
 */
static __always_inline int finish_stamped_frame(struct xdp_md *ctx, struct worker_state *w, __u32 d)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__be16 *udp = data + config.udp_offset;

	if ((void *)(udp + 4) > data_end)
		return -1;
	__u32 sum = template_udp_sum(d);

	if (stamp_frame(w, d, (void *)(udp + 4), data_end, &sum) < 0)
		return -1;
	store_udp_check(udp, sum);
	return 0;
}

/*
 * Writes what changes from frame to frame over the headers restore_headers wrote for destination d: the
 * lengths, when sizes vary (the frame is len bytes, trimmed from the template's; the IPv4 header checksum follows
 * its length), the ports and addresses, when ranges are configured (destination ports advance every frame to d,
 * source ports every time the destination ports wrap, then the destination address, then the source address, so
 * that a run covers every combination; a random range picks its value per frame instead), and the stamp. The
 * checksums are recomputed incrementally from the template's (RFC 1624). A frame whose stamp is all that changes
 * takes finish_stamped_frame instead.
 */
static __always_inline int finish_frame(struct xdp_md *ctx, struct worker_state *w, __u32 d, __u32 len)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__be16 *udp = data + config.udp_offset;
	struct stamp *stamp = (void *)(udp + 4);

	if ((void *)(udp + 4) > data_end)
		return -1;
	__u32 sum = template_udp_sum(d);

	/* The IPv4 header checksum's change (RFC 1624), for the length and the addresses. */
	__u32 ip_sum = 0;
	int port_wrapped = 1;

	if (config.size_mode != SIZES_FIXED) {
		__be16 l4_len = bpf_htons(len - config.udp_offset);

		sum += bpf_htons(config.sizes[len & (SIZES_TABLE - 1)].udp_sum);
		udp[2] = l4_len;
		if (config.ipv6) {
			/* payload_len, 4 bytes into the IPv6 header. */
			__be16 *payload_len = data + config.udp_offset - 36;

			if ((void *)(payload_len + 1) > data_end)
				return -1;
			*payload_len = l4_len;
		} else {
			struct iphdr *ip = data + config.udp_offset - sizeof(*ip);

			if ((void *)(ip + 1) > data_end)
				return -1;
			__be16 tot_len = bpf_htons(len - config.udp_offset + sizeof(*ip));

			ip_sum += (__u16)~ip->tot_len + tot_len;
			ip->tot_len = tot_len;
		}
	}
	if (config.dst_port_count > 1 || config.src_port_count > 1) {
		__be16 dst = bpf_htons(config.dst_port + w->dst_port_offset);
		__be16 src = bpf_htons(config.src_port + w->src_port_offset);

		sum += (__u16)~bpf_htons(config.src_port) + src;
		sum += (__u16)~bpf_htons(config.dst_port) + dst;
		udp[0] = src;
		udp[1] = dst;
		w->dst_port_offset = cycle(w->dst_port_offset, config.dst_port_count);
		port_wrapped = w->dst_port_offset == 0;
		if (port_wrapped && config.src_port_count > 1) {
			w->src_port_offset = cycle(w->src_port_offset, config.src_port_count);
			port_wrapped = w->src_port_offset == 0;
		}
	}
	if (config.dst_addr_count > 1) {
		__u32 off = w->dst_addr_offset;

		if (config.addr_random & ADDR_RANDOM_DST) {
			off = random_below(config.dst_addr_count);
		} else if (port_wrapped) {
			w->dst_addr_offset = cycle(off, config.dst_addr_count);
			port_wrapped = w->dst_addr_offset == 0;
		} else {
			port_wrapped = 0;
		}
		if (rewrite_addr(data, data_end, config.dst_addr_at, config.dst_addr_first, off, &sum, &ip_sum) < 0)
			return -1;
	}
	if (config.src_addr_count > 1) {
		__u32 off = w->src_addr_offset;

		if (config.addr_random & ADDR_RANDOM_SRC)
			off = random_below(config.src_addr_count);
		else if (port_wrapped)
			w->src_addr_offset = cycle(off, config.src_addr_count);
		if (rewrite_addr(data, data_end, config.src_addr_at, config.src_addr_first, off, &sum, &ip_sum) < 0)
			return -1;
	}
	if (!config.ipv6 && (config.size_mode != SIZES_FIXED || config.dst_addr_count > 1 || config.src_addr_count > 1)) {
		struct iphdr *ip = data + config.udp_offset - sizeof(*ip);

		if ((void *)(ip + 1) > data_end)
			return -1;
		ip->check = csum_fold((__u16)~ip->check + ip_sum);
	}
	if (config.stamp && stamp_frame(w, d, stamp, data_end, &sum) < 0)
		return -1;
	store_udp_check(udp, sum);
	return 0;
}

/* The length of this worker's next frame, when sizes vary. */
static __always_inline __u32 next_frame_len(struct worker_state *w)
{
	__u32 pos = w->size_pos;

	switch (config.size_mode) {
	case SIZES_RANDOM:
		return config.size_min + random_below(config.size_count);
	case SIZES_STEPPED:
		w->size_pos = cycle(pos, config.size_count);
		return config.size_min + pos;
	default:
		pos &= MIX_SLOTS - 1;
		w->size_pos = cycle(pos, config.mix_len);
		return config.mix[pos];
	}
}

SEC("xdp")
int xdpgen_udp(struct xdp_md *ctx)
{
	struct worker_state *w = this_worker();

	if (!w)
		return XDP_ABORTED;
	if (w->emitted >= w->limit)
		return XDP_DROP;
	if (config.pace_interval && !frame_due(w, config.clock_base, config.pace_interval, config.burst))
		return XDP_DROP;
	w->emitted++;

	__u32 d = 0;

	if (config.dest_count > 1) {
		d = w->dest & (UDP_MAX_DESTS - 1);
		w->dest = cycle(d, config.dest_count);
	}
	if (restore_headers(ctx, config.dests[d].headers, config.udp_offset + 8, config.frame_len) < 0)
		return count_verdict(ctx, w->actions, XDP_ABORTED);

	__u32 len = config.frame_len;

	if (config.size_mode != SIZES_FIXED) {
		len = next_frame_len(w);
		/* Userspace fills the sizes from the template's length down, never below the headers and stamp. */
		if (len > config.frame_len)
			return count_verdict(ctx, w->actions, XDP_ABORTED);
		if (len < config.frame_len && bpf_xdp_adjust_tail(ctx, (int)len - (int)config.frame_len) < 0)
			return count_verdict(ctx, w->actions, XDP_ABORTED);
	}
	if (config.dst_port_count > 1 || config.src_port_count > 1 || config.size_mode != SIZES_FIXED ||
	    config.dst_addr_count > 1 || config.src_addr_count > 1) {
		if (finish_frame(ctx, w, d, len) < 0)
			return count_verdict(ctx, w->actions, XDP_ABORTED);
	} else if (config.stamp && finish_stamped_frame(ctx, w, d) < 0) {
		return count_verdict(ctx, w->actions, XDP_ABORTED);
	}
	int verdict = config.inject ? count_verdict(ctx, w->actions, XDP_PASS) :
				      redirect_counted(ctx, w->actions, config.ifindex);

	/* Counted only once sent, so that a receiver sees sequence numbers 0 .. sent-1 with no gap of ours. */
	if (verdict == XDP_REDIRECT || verdict == XDP_PASS) {
		w->sent[d]++;
		if (config.size_mode != SIZES_FIXED)
			w->size_frames[config.sizes[len & (SIZES_TABLE - 1)].bucket & (SIZE_BUCKETS - 1)]++;
	}
	return verdict;
}

/* Attached to an egress interface whose driver only accepts redirected frames while an XDP program runs. */
SEC("xdp")
int xdpgen_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}
