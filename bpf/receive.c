// SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause)
//go:build ignore

/*
 * The receive program: one per interface, serving every generator whose frames arrive there.
 * - Stamped frames (struct stamp after the UDP header) are accounted per sender stream: packets, bytes, highest
 *   sequence number, reordered and duplicated frames, each CPU apart. Those flagged STAMP_REFLECT are sent back
 *   (XDP_TX) to be timed by their sender; the others are dropped (or passed, with rx_config.pass).
 * - Stamped frames flagged STAMP_REFLECTED came back to the sender that sent them: their round-trip time goes
 *   into a histogram per (generator, destination), and they are dropped.
 * - Unstamped UDP to the configured ports is counted (and dropped unless rx_config.pass); everything else is
 *   counted apart and passes untouched.
 * On a veth it also makes the interface able to receive redirected and reflected frames at all (the kernel
 * needs NAPI there).
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf_helpers.h>
#include <bpf_endian.h>

#include "xdpgen.h"
#include "udpframe.h"

char __license[] SEC("license") = "Dual BSD/GPL";

const volatile struct rx_config rx_config;

/* This CPU's counters and recent streams (struct rx_cpu), found once per frame. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct rx_cpu);
} rx_cpus SEC(".maps");

/* The stream table (struct rx_slot): which stream each slot holds. max_entries, a power of two, is set at load
 * (the loader's slots), and rx_slot_mask with it. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct rx_slot);
} rx_slots SEC(".maps");

/* Set at load: the number of slots less one, and how many streams the table takes (half the slots). */
const volatile __u32 rx_slot_mask = 4095;
const volatile __u32 rx_max_streams = 2048;

/* How many streams the table holds (rx_max_streams at most). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct rx_stream_count);
} rx_table_count SEC(".maps");

/* Bumped by userspace each time it forgets streams (after freeing their slots), so that no CPU's recent streams
 * (rx_cpu.recent) send a frame to a slot that may have changed hands since. From 1: a CPU's zeroed entry, at
 * epoch 0, is never taken for a stream. */
volatile __u32 rx_epoch = 1;

/* Each slot's stream's counters, one row per CPU; as many entries as rx_slots. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct rx_stream);
} rx_streams SEC(".maps");

/* Shared by the CPUs, updated with atomic adds: only the sampled frames come back, and a per-CPU copy of 3.7 KB per
 * path on every CPU of a large node would be megabytes. Entries are allocated as paths appear. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct latency_key);
	__type(value, struct latency_hist);
} rx_latency SEC(".maps");

/* The generators whose stamped frames are this program's to account, reflect and time (unless
 * rx_config.any_generator): userspace registers a run's generator before it receives or sends. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, RX_MAX_GENERATORS);
	__type(key, __u32);
	__type(value, __u8);
} rx_generators SEC(".maps");

/* An empty histogram, too large for the stack, to create rx_latency entries from. Never written. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct latency_hist);
} latency_zero SEC(".maps");

static __always_inline void count(struct rx_cpu *cpu, enum rx_counter_key key, __u64 bytes)
{
	counter_add(&cpu->counters[key], bytes);
}

/*
 * Extends a 32-bit sequence number to the 64-bit one nearest to high, the highest seen so far: sequence numbers
 * wrap every 2^32 frames, and a frame is never 2^31 frames early or late.
 */
static __always_inline __u64 extend_seq(__u64 high, __u32 seq32)
{
	__u64 seq = (high & ~0xffffffffULL) | seq32;

	if (seq > high + 0x80000000ULL && seq >= (1ULL << 32))
		seq -= 1ULL << 32;
	else if (seq + 0x80000000ULL < high)
		seq += 1ULL << 32;
	return seq;
}

/* Whether the receive program takes generator's stamped frames. */
static __always_inline int served(__u32 generator)
{
	return rx_config.any_generator || bpf_map_lookup_elem(&rx_generators, &generator);
}

enum account_result {
	ACCOUNTED = 0,
	/* The stream is new and the stream table has no room for it. */
	STREAMS_FULL = 1,
	/* The stream is new and its generator not served: the frame is not ours. */
	NOT_SERVED = 2,
};

/* The slot a stream's probes start from. */
static __always_inline __u32 slot_hash(const struct rx_stream_key *k)
{
	const __u32 *w = (const __u32 *)k;
	__u32 h = 0;

#pragma unroll
	for (int i = 0; i < sizeof(*k) / 4; i++)
		h = (h ^ w[i]) * 0x9e3779b1;
	/* MurmurHash3's finaliser: every bit of the key moves the low bits, which pick the slot. */
	h ^= h >> 16;
	h *= 0x85ebca6b;
	h ^= h >> 13;
	h *= 0xc2b2ae35;
	return h ^ (h >> 16);
}

static __always_inline int same_key(const struct rx_stream_key *a, const struct rx_stream_key *b)
{
	const __u32 *x = (const __u32 *)a, *y = (const __u32 *)b;
	__u32 diff = 0;

#pragma unroll
	for (int i = 0; i < sizeof(*a) / 4; i++)
		diff |= x[i] ^ y[i];
	return !diff;
}

enum claim_result {
	CLAIM_MINE = 0,
	/* Another stream took the slot meanwhile. */
	CLAIM_TAKEN = 1,
	/* The table holds rx_max_streams streams. */
	CLAIM_FULL = 2,
};

/* Adds n to the table's count of streams; when growing, only while it is below rx_max_streams. */
static __always_inline int count_streams(struct rx_stream_count *c, int n)
{
	int ok;

	bpf_spin_lock(&c->lock);
	ok = n < 0 || c->streams < rx_max_streams;
	if (ok)
		c->streams += n;
	bpf_spin_unlock(&c->lock);
	return ok;
}

/* Claims slot i for a new stream, under the slot's lock: the slot is the stream's, by this claim or another
 * CPU's, or another stream's. */
static __always_inline enum claim_result claim(__u32 i, const struct rx_stream_key *key)
{
	__u32 zero = 0;
	struct rx_stream_count *c = bpf_map_lookup_elem(&rx_table_count, &zero);
	struct rx_slot *sl = bpf_map_lookup_elem(&rx_slots, &i);
	int wrote = 0, mine;

	if (!c || !sl || !count_streams(c, 1))
		return CLAIM_FULL;
	bpf_spin_lock(&sl->lock);
	if (sl->state != RX_SLOT_USED) {
		sl->key = *key;
		/* The state after the key, and the lookups, which take no lock, read it before the key. Where stores
		 * may be seen out of order, a lookup that sees the state before the key claims another slot for the
		 * stream, which userspace sums with this one. */
		asm volatile("" ::: "memory");
		sl->state = RX_SLOT_USED;
		wrote = mine = 1;
	} else {
		mine = same_key(&sl->key, key);
	}
	bpf_spin_unlock(&sl->lock);
	if (!wrote)
		count_streams(c, -1);
	return mine ? CLAIM_MINE : CLAIM_TAKEN;
}

enum slot_result {
	SLOT_FOUND = 0,
	/* The stream is new, and the slot this frame claimed for it is its own. */
	SLOT_CLAIMED = 1,
	SLOT_FULL = 2,
	SLOT_NOT_SERVED = 3,
};

/* Finds the slot of the frame's stream, claiming one when the stream is new. Only a new stream checks that its
 * generator is served: Forget removes a generator's streams after its registration, so a stream in the table is
 * a served one. */
static __always_inline enum slot_result stream_slot(const struct rx_stream_key *key, __u32 *slot)
{
	__u32 h = slot_hash(key);

	/* Twice: a new stream whose free slot another new stream took meanwhile looks again. */
	for (int attempt = 0; attempt < 2; attempt++) {
		__u32 free = RX_PROBES;

		for (__u32 p = 0; p < RX_PROBES; p++) {
			__u32 i = (h + p) & rx_slot_mask;
			struct rx_slot *sl = bpf_map_lookup_elem(&rx_slots, &i);

			if (!sl)
				return SLOT_FULL;
			__u32 state = *(volatile __u32 *)&sl->state;

			if (state == RX_SLOT_USED) {
				if (same_key(&sl->key, key)) {
					*slot = i;
					return SLOT_FOUND;
				}
				continue;
			}
			if (free == RX_PROBES)
				free = p;
			if (state == RX_SLOT_FREE)
				break; /* the stream would be here or before */
		}
		if (!attempt && !served(key->generator))
			return SLOT_NOT_SERVED;
		if (free == RX_PROBES)
			return SLOT_FULL;
		enum claim_result claimed = claim((h + free) & rx_slot_mask, key);

		if (claimed == CLAIM_FULL)
			return SLOT_FULL;
		if (claimed == CLAIM_MINE) {
			*slot = (h + free) & rx_slot_mask;
			return SLOT_CLAIMED;
		}
	}
	return SLOT_FULL;
}

/* The entry of this CPU's recent streams that the frame's stream would be in: a fold of the stamp's ids and the
 * destination address's last word (dst3), every byte of each into the entry's bits, in a few instructions (a
 * stream that misses costs the table's hash anyway). */
static __always_inline struct rx_recent *recent_entry(struct rx_cpu *cpu, struct stamp *s, __be32 dst3)
{
	__u32 x = s->generator ^ s->sender ^ dst3 ^ s->stream;

	x ^= x >> 16;
	x ^= x >> 8;
	return &cpu->recent[x & (RX_RECENT - 1)];
}

/* Whether the frame belongs to the stream remembered in r, as it stands at epoch. */
static __always_inline int recent(struct rx_recent *r, struct udp_frame *f, struct stamp *s, __be32 dst3, __u32 tag,
				  __u32 epoch)
{
	__u32 diff = (r->tag ^ tag) | (r->generator ^ s->generator) | (r->sender ^ s->sender) | (r->dst[3] ^ dst3) |
		     (r->epoch ^ epoch);

	if (f->v6)
		diff |= (r->dst[0] ^ f->ip6->daddr.in6_u.u6_addr32[0]) | (r->dst[1] ^ f->ip6->daddr.in6_u.u6_addr32[1]) |
			(r->dst[2] ^ f->ip6->daddr.in6_u.u6_addr32[2]);
	return !diff;
}

/* Finds the slot of a frame's stream that r does not remember in the stream table (claiming one when the stream
 * is new), and remembers the stream in r, with its slot. dst is the frame's destination address
 * (frame_addr). Out of line, and handed no pointer to the frame's struct udp_frame: most frames never come here,
 * and the probes would crowd their registers, or push the frame's headers' pointers out to the stack. */
static __noinline enum slot_result table_slot(struct rx_recent *r, const __u8 dst[16], struct stamp *s, __u32 tag,
					      __u32 epoch)
{
	struct rx_stream_key key = {
		.generator = bpf_ntohl(s->generator),
		.sender = bpf_ntohl(s->sender),
		.stream = s->stream,
	};
	__u32 slot = 0;

	__builtin_memcpy(key.dst_addr, dst, sizeof(key.dst_addr));
	enum slot_result found = stream_slot(&key, &slot);

	if (found == SLOT_FOUND || found == SLOT_CLAIMED) {
		r->tag = tag;
		r->generator = s->generator;
		r->sender = s->sender;
		__builtin_memcpy(r->dst, dst, sizeof(r->dst));
		r->slot = slot;
		r->epoch = epoch;
	}
	return found;
}

/* Accounts a frame that is not the next of its stream (next: the highest sequence number seen plus one, 0 for
 * none): a new highest after a gap, or one below the highest (reordered, duplicated or late). Out of line, as
 * table_slot. */
static __noinline void account_unordered(struct rx_stream *st, __u64 next, __u32 seq32)
{
	__u64 seq = next ? extend_seq(next - 1, seq32) : seq32;

	if (seq >= next) {
		/* A new highest: the window's words between the old highest and this one hold no frame yet. */
		if (next) {
			__u64 old = (next - 1) >> 6, now = seq >> 6;

#pragma unroll
			for (__u32 i = 1; i <= RX_WINDOW_WORDS; i++) {
				if (old + i > now)
					break;
				st->window[(old + i) & (RX_WINDOW_WORDS - 1)] = 0;
			}
		}
		st->window[(seq >> 6) & (RX_WINDOW_WORDS - 1)] |= 1ULL << (seq & 63);
		st->next_seq = seq + 1;
	} else if (((next - 1) >> 6) - (seq >> 6) >= RX_WINDOW_WORDS) {
		st->late++;
		st->reordered++;
	} else {
		__u64 *word = &st->window[(seq >> 6) & (RX_WINDOW_WORDS - 1)];
		__u64 bit = 1ULL << (seq & 63);

		if (*word & bit) {
			st->duplicates++;
		} else {
			*word |= bit;
			st->reordered++;
		}
	}
}

/* Accounts a stamped frame in its stream, on this CPU's row. */
static __always_inline enum account_result account(struct rx_cpu *cpu, struct udp_frame *f, struct stamp *s,
						   __u64 bytes)
{
	__be32 dst3 = f->v6 ? f->ip6->daddr.in6_u.u6_addr32[3] : f->ip->daddr;
	struct rx_recent *r = recent_entry(cpu, s, dst3);
	__u32 tag = s->stream | (__u32)f->v6 << 8;
	__u32 epoch = rx_epoch;
	enum slot_result found = SLOT_FOUND;

	if (!recent(r, f, s, dst3, tag, epoch)) {
		__u8 dst[16];

		frame_addr(f, 1, dst);
		found = table_slot(r, dst, s, tag, epoch);
		if (found == SLOT_NOT_SERVED)
			return NOT_SERVED;
		if (found == SLOT_FULL)
			return STREAMS_FULL;
	}
	__u32 slot = r->slot;
	struct rx_stream *st = bpf_map_lookup_elem(&rx_streams, &slot);

	if (!st)
		return STREAMS_FULL;
	if (found == SLOT_CLAIMED)
		frame_addr(f, 0, st->src_addr); /* this CPU's row of a new stream, zero until now */
	__u32 seq32 = bpf_ntohl(s->seq);
	__u64 next = st->next_seq;

	st->packets++;
	st->bytes += bytes;
	if (next && (__u32)next == seq32) {
		/* In order, the common case: the next bit of the window, in a fresh word at a word's start. */
		__u64 *word = &st->window[(next >> 6) & (RX_WINDOW_WORDS - 1)];
		__u64 bit = 1ULL << (next & 63);

		*word = (next & 63) ? *word | bit : bit;
		st->next_seq = next + 1;
	} else {
		account_unordered(st, next, seq32);
	}
	return ACCOUNTED;
}

/*
 * Sends the frame back to where it came from, flagged STAMP_REFLECTED: MACs, addresses and ports swap places.
 * Swapping changes neither the IPv4 header checksum nor the UDP checksum (their sums do not depend on the
 * order); only the flags change, and the UDP checksum with them (RFC 1624).
 */
static __always_inline int reflect(struct udp_frame *f, struct stamp *s)
{
	__u8 mac[ETH_ALEN];

	__builtin_memcpy(mac, f->eth->h_dest, ETH_ALEN);
	__builtin_memcpy(f->eth->h_dest, f->eth->h_source, ETH_ALEN);
	__builtin_memcpy(f->eth->h_source, mac, ETH_ALEN);
	if (!f->v6) {
		__be32 a = f->ip->saddr;

		f->ip->saddr = f->ip->daddr;
		f->ip->daddr = a;
	} else {
		struct in6_addr a = f->ip6->saddr;

		f->ip6->saddr = f->ip6->daddr;
		f->ip6->daddr = a;
	}
	__be16 port = f->udp->source;

	f->udp->source = f->udp->dest;
	f->udp->dest = port;

	__be16 *flags_stream = (__be16 *)&s->flags;
	__be16 old = *flags_stream;

	s->flags = (s->flags & ~STAMP_REFLECT) | STAMP_REFLECTED;
	if (f->udp->check) {
		__u32 sum = (__u16)~f->udp->check + (__u16)~old + *flags_stream;
		__u16 check = csum_fold(sum);

		f->udp->check = check ? check : 0xffff;
	}
	return XDP_TX;
}

/* The bucket of a round-trip time in ns (LATENCY_BUCKETS). */
static __always_inline __u32 latency_bucket(__u32 v)
{
	if (v < (1 << LATENCY_SUB_BITS))
		return v;
	__u32 e = 0, x = v;

	if (x >> 16) {
		x >>= 16;
		e += 16;
	}
	if (x >> 8) {
		x >>= 8;
		e += 8;
	}
	if (x >> 4) {
		x >>= 4;
		e += 4;
	}
	if (x >> 2) {
		x >>= 2;
		e += 2;
	}
	if (x >> 1)
		e += 1;
	/* e = floor(log2(v)), at least LATENCY_SUB_BITS. */
	return ((e - LATENCY_SUB_BITS + 1) << LATENCY_SUB_BITS) |
	       ((v >> (e - LATENCY_SUB_BITS)) & ((1 << LATENCY_SUB_BITS) - 1));
}

/* Adds now - the frame's transmit time to the histogram of its generator, of kind, and of its source address:
 * for a frame that came back reflected, the round trip to the destination it was sent to; for a sampled frame
 * arriving, the one-way delay from its sender (by the two hosts' TAI clocks). */
static __always_inline void time_frame(struct rx_cpu *cpu, struct udp_frame *f, struct stamp *s, __u32 kind, __u64 bytes)
{
	__u32 rtt = (__u32)bpf_ktime_get_tai_ns() - bpf_ntohl(s->tx_time);
	struct latency_key key = { .generator = bpf_ntohl(s->generator), .kind = kind };

	frame_addr(f, 0, key.addr);
	struct latency_hist *h = bpf_map_lookup_elem(&rx_latency, &key);

	if (!h) {
		__u32 zero = 0;
		struct latency_hist *empty = bpf_map_lookup_elem(&latency_zero, &zero);

		if (empty)
			bpf_map_update_elem(&rx_latency, &key, empty, BPF_NOEXIST);
		h = bpf_map_lookup_elem(&rx_latency, &key);
		if (!h) {
			count(cpu, RX_LATENCY_FULL, bytes);
			return;
		}
	}
	__sync_fetch_and_add(&h->count, 1);
	__sync_fetch_and_add(&h->sum_ns, rtt);
	for (int try = 0; try < 4; try++) {
		__u64 max = h->max_ns;

		if (rtt <= max || __sync_val_compare_and_swap(&h->max_ns, max, rtt) == max)
			break;
	}
	__u32 b = latency_bucket(rtt);

	/* Keeps the compiler from folding the bound check into latency_bucket's branches, where the verifier
	 * loses it. */
	asm volatile("" : "+r"(b));
	if (b < LATENCY_BUCKETS)
		__sync_fetch_and_add(&h->buckets[b], 1);
	if (kind == LATENCY_ROUND_TRIP)
		count(cpu, RX_TIMED, bytes);
}

SEC("xdp")
int xdpgen_receive(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u64 bytes = data_end - data;
	struct udp_frame f = {};
	__u32 zero = 0;
	struct rx_cpu *cpu = bpf_map_lookup_elem(&rx_cpus, &zero);

	if (!cpu)
		return XDP_PASS;

	if (parse_udp(data, data_end, &f) < 0) {
		count(cpu, RX_OTHER, bytes);
		return XDP_PASS;
	}
	struct stamp *s = stamp_of(&f, data_end);

	/* A stamped frame of a generator not served is not a run of ours: a frame like any other. */
	if (s && (s->flags & STAMP_REFLECTED) && served(bpf_ntohl(s->generator))) {
		time_frame(cpu, &f, s, LATENCY_ROUND_TRIP, bytes);
		return XDP_DROP;
	}
	if (s && !(s->flags & STAMP_REFLECTED)) {
		enum account_result res = account(cpu, &f, s, bytes);

		if (res == STREAMS_FULL) {
			count(cpu, RX_STREAMS_FULL, bytes);
			return rx_config.pass ? XDP_PASS : XDP_DROP;
		}
		if (res == ACCOUNTED) {
			count(cpu, RX_STAMPED, bytes);
			if (s->flags & STAMP_REFLECT) {
				/* Only the sampled frames carry their transmit time. */
				time_frame(cpu, &f, s, LATENCY_ONE_WAY, bytes);
				count(cpu, RX_REFLECTED, bytes);
				return reflect(&f, s);
			}
			return rx_config.pass ? XDP_PASS : XDP_DROP;
		}
	}
	__u16 port = bpf_ntohs(f.udp->dest);

	if (port < rx_config.dst_port_first || port > rx_config.dst_port_last) {
		count(cpu, RX_OTHER, bytes);
		return XDP_PASS;
	}
	count(cpu, RX_MATCHED, bytes);
	return rx_config.pass ? XDP_PASS : XDP_DROP;
}
