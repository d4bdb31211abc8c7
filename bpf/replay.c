// SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause)
//go:build ignore

/*
 * Capture replay with live frames. BPF_PROG_RUN is handed a buffer of the capture's largest frame; a live frame's
 * page is recycled holding whatever the stack that received the previous frame wrote into it, so every byte of
 * every frame comes from the maps: the program picks this worker's next frame of the capture, trims the buffer to
 * its length and writes it whole. Userspace has rewritten the frames (MACs, addresses) and their checksums.
 */
#include <linux/bpf.h>
#include <bpf_helpers.h>

#include "xdpgen.h"
#include "workers.h"
#include "pacing.h"

char __license[] SEC("license") = "Dual BSD/GPL";

const volatile struct replay_config replay_config;

/* max_entries are set at load to the capture's frames and chunks. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct replay_frame);
} replay_frames SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct replay_chunk);
} replay_chunks SEC(".maps");

/* Whether frame f, the worker's next, is due at its capture time: the worker's loop started at
 * replay_loop_start (its first frame starts the first loop). */
static __always_inline int capture_due(struct worker_state *w, const struct replay_frame *f)
{
	__u64 now = bpf_ktime_get_ns() - replay_config.clock_base;

	if (w->replay_loop_start == 0)
		w->replay_loop_start = now;
	return now >= w->replay_loop_start + f->at;
}

/* Writes frame f over the packet, which has f->len bytes. */
static __always_inline int write_frame(struct xdp_md *ctx, const struct replay_frame *f)
{
	__u32 len = f->len;

#pragma unroll
	for (__u32 i = 0; i < REPLAY_MAX_CHUNKS; i++) {
		__u32 off = i * REPLAY_CHUNK;

		if (off >= len)
			break;
		__u32 key = f->first_chunk + i;
		struct replay_chunk *c = bpf_map_lookup_elem(&replay_chunks, &key);

		if (!c)
			return -1;
		/* 1 .. REPLAY_CHUNK in a form the verifier can bound. */
		__u32 n = REPLAY_CHUNK;

		if (len - off < REPLAY_CHUNK)
			n = ((len - off - 1) & (REPLAY_CHUNK - 1)) + 1;
		if (bpf_xdp_store_bytes(ctx, off, c->bytes, n) < 0)
			return -1;
	}
	return 0;
}

SEC("xdp")
int xdpgen_replay(struct xdp_md *ctx)
{
	struct worker_state *w = this_worker();

	if (!w)
		return XDP_ABORTED;
	if (w->emitted >= w->limit)
		return XDP_DROP;

	__u32 pos = w->replay_pos;
	struct replay_frame *f = bpf_map_lookup_elem(&replay_frames, &pos);

	if (!f)
		return count_verdict(ctx, w->actions, XDP_ABORTED);
	if (replay_config.capture_timing) {
		if (!capture_due(w, f))
			return XDP_DROP;
	} else if (replay_config.pace_interval &&
		   !frame_due(w, replay_config.clock_base, replay_config.pace_interval, 1)) {
		return XDP_DROP;
	}
	w->emitted++;

	/* The next frame of this worker's, and the next loop when the capture wraps. */
	__u32 next = pos + replay_config.stride;

	if (next >= replay_config.frame_count) {
		__u32 loops = next / replay_config.frame_count;

		next -= loops * replay_config.frame_count;
		w->replay_loop_start += loops * replay_config.loop_ns;
	}
	w->replay_pos = next;

	__u32 len = f->len;

	if (len > replay_config.frame_len || len == 0)
		return count_verdict(ctx, w->actions, XDP_ABORTED);
	if (len < replay_config.frame_len && bpf_xdp_adjust_tail(ctx, (int)len - (int)replay_config.frame_len) < 0)
		return count_verdict(ctx, w->actions, XDP_ABORTED);
	if (write_frame(ctx, f) < 0)
		return count_verdict(ctx, w->actions, XDP_ABORTED);

	int verdict = redirect_counted(ctx, w->actions, replay_config.ifindex);

	if (verdict == XDP_REDIRECT)
		w->size_frames[f->bucket & (SIZE_BUCKETS - 1)]++;
	return verdict;
}

/* Attached to an egress interface whose driver only accepts redirected frames while an XDP program runs. */
SEC("xdp")
int xdpgen_replay_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}
