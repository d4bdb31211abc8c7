// SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause)
//go:build ignore

/*
 * TCP mode: data segments of real connections, sent as live frames, with congestion control.
 *
 * xdpgen_tcp_send runs in BPF_PROG_RUN's live-frame loop on a pinned worker's CPU. For each frame it picks one of
 * the worker's flows, decides under the flow's lock whether that flow may send (the congestion window and the
 * peer's receive window, the retransmission timer, what is pending after a loss), and stamps the segment: port,
 * sequence and acknowledgement numbers, timestamps, the stream offset at the start of the payload, and the
 * checksum, incrementally from the template. When no flow may send it drops the frame, and the loop spins.
 *
 * xdpgen_tcp_ack is attached to the sending interface. It recognises the peer's segments on a flow, updates the
 * flow (cumulative ACK, window, duplicate ACKs, RTT, the peer's timestamp, RST and FIN) and drops them, so the
 * kernel socket that made the handshake never sees them. Everything else passes untouched.
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

const volatile struct tcp_config tcp_config;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, TCP_MAX_FLOWS);
	__type(key, __u32);
	__type(value, struct tcp_flow);
} tcp_flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, TCP_MAX_FLOWS);
	__type(key, __u32);
	__type(value, struct tcp_flow_ctl);
} tcp_ctl SEC(".maps");

/* Local port (network byte order) -> flow index. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, TCP_MAX_FLOWS);
	__type(key, __u16);
	__type(value, __u32);
} tcp_ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tcp_worker);
} tcp_workers SEC(".maps");

#define NSEC_PER_MSEC 1000000ULL
/* Segments a flow sends in a row before the worker moves to its next flow. */
#define TCP_BURST 16
/* The clock granularity RFC 6298 adds to 4 * rttvar at least. */
#define RTO_GRANULARITY (1 * NSEC_PER_MSEC)
/* The least a retransmission in recovery waits for its ACK before it counts as lost. */
#define RTX_LOST_MIN (1 * NSEC_PER_MSEC)
/* Length of NOP, NOP, TS (RFC 7323 appendix A layout). */
#define TS_OPTION_LEN 12

static __always_inline __u32 min_u32(__u32 a, __u32 b)
{
	return a < b ? a : b;
}

static __always_inline __u32 max_u32(__u32 a, __u32 b)
{
	return a > b ? a : b;
}

/* What one segment carries, decided under the flow's lock and stamped after it is released. */
struct segment {
	__u64 off;
	__u32 seq;
	__u32 ack;
	__u32 tsecr;
	__u32 ts_offset;
	__u16 port;
};

/* How long a retransmission in recovery waits for its ACK before it counts as lost: two round trips and the
 * variation, the retransmission timeout without its 200 ms floor. */
static __always_inline __u64 rtx_wait(struct tcp_flow *f)
{
	__u64 wait = 2 * f->srtt + 4 * f->rttvar;

	return wait > RTX_LOST_MIN ? wait : RTX_LOST_MIN;
}

/* Flight size in segments. */
static __always_inline __u32 flight_segments(struct tcp_flow *f)
{
	return (__u32)((f->snd_max - f->snd_una) / tcp_config.mss);
}

/*
 * The slow-start threshold after a loss, in segments, never below two: CUBIC's factor (RFC 9438, Linux's
 * default) of 0.7 instead of Reno's 0.5, which holds more goodput through random loss (0.72 of the kernel's
 * against 0.50 when it came in). Of the congestion window, as Linux's CUBIC takes it, not of the flight size:
 * RFC 9438 allows the window where it grows only while it is what limits the flow (new_ack's cwnd_limited).
 * The flight size cuts deeper here than the window was: the worker sends between the ACK program's bursts, so
 * the ACKs before a loss have shrunk the flight, and the worker not yet refilled it, when the loss is detected
 * (1% drops, one flow: the window's median 12 segments, 14 with this).
 */
static __always_inline __u32 reduced_window(struct tcp_flow *f)
{
	return max_u32(f->cwnd * 7 / 10, 2);
}

/*
 * Decides whether flow f sends now, and what: 1 with *seg filled in, 0 when it may not. The caller holds f's
 * lock. A timeout goes back to snd_una with a window of one segment (go-back-N). In recovery, the segments
 * presumed lost are retransmitted first; otherwise the next segment goes out if the congestion window (less
 * what duplicate ACKs and SACK blocks show to have left the network) and the peer's window have room, and the
 * stream has not reached its end.
 */
static __always_inline int next_segment(struct tcp_flow *f, struct tcp_flow_ctl *ctl, __u64 now, struct segment *seg,
					int *retransmit)
{
	__u32 mss = tcp_config.mss;
	__u64 off;

	if (f->state != TCP_FLOW_RUNNING)
		return 0;

	/* The timer measures the peer's silence since the segment at snd_una last went out: a retransmission that
	 * an ACK asked for but the worker has not sent yet (it was off its CPU, the timer's deadline passed
	 * meanwhile) goes out first, as the fast retransmit it is, and restarts the timer. */
	int rtx_due = f->in_recovery && f->rtx_pending && f->peer_wnd >= mss;

	if (f->rto_at && now >= f->rto_at && !rtx_due) {
		f->ssthresh = reduced_window(f);
		f->cwnd = 1;
		f->cwnd_acked = 0;
		f->snd_nxt = f->snd_una;
		f->recover = f->snd_max;
		f->in_recovery = 0;
		f->rtx_pending = 0;
		f->rtx_lost_at = 0;
		f->sack_high = f->snd_una;
		f->hole_end = 0;
		f->dupacks = 0;
		f->rtt_start = 0;
		f->rto = f->rto * 2 > tcp_config.max_rto ? tcp_config.max_rto : f->rto * 2;
		f->rto_at = now + f->rto;
		f->timeouts++;
	}

	/* In recovery, what is presumed lost goes first: the segment at snd_una (after the third duplicate ACK, a
	 * partial ACK) and the rest of the hole up to the peer's first SACK block; rtx_nxt says how far this
	 * recovery has retransmitted. The segment at snd_una goes again when its retransmission is not
	 * acknowledged two round trips later: that was lost too (the window was reduced once for this recovery). */
	int lost_again = f->in_recovery && f->rtx_lost_at && now >= f->rtx_lost_at;
	__u64 lost_end = f->hole_end;

	if (f->rtx_nxt < f->snd_una)
		f->rtx_nxt = f->snd_una;
	if (f->rtx_pending && f->rtx_nxt > f->snd_una)
		f->rtx_pending = 0; /* already retransmitted in this recovery, and in flight */
	if (f->rtx_pending && lost_end < f->snd_una + mss)
		lost_end = f->snd_una + mss;

	if (lost_again || (f->in_recovery && f->rtx_nxt < lost_end && f->rtx_nxt < f->snd_max)) {
		off = lost_again ? f->snd_una : f->rtx_nxt;
		if (off + mss - f->snd_una > f->peer_wnd)
			return 0;
		if (lost_again)
			f->lost_retrans++;
		else
			f->rtx_nxt += mss;
		*retransmit = 1;
		if (off == f->snd_una) {
			/* Only a hole's first retransmission restarts the timer: one sent again because it was lost
			 * too leaves it running, so a peer that answers nothing still meets the timeout and its
			 * backoff. */
			if (f->rtx_pending)
				f->rto_at = now + f->rto;
			f->rtx_pending = 0;
			f->rtx_lost_at = now + rtx_wait(f);
		}
	} else {
		__u64 end = ctl->stop ? f->snd_max : ctl->end;
		__u64 pipe = f->snd_nxt - f->snd_una;
		/* What duplicate ACKs or SACK blocks show to have left the network is not in flight (RFC 6675's
		 * pipe, roughly; in recovery it is RFC 5681's window inflation, before it RFC 3042's limited
		 * transmit, which keeps a small window's ACKs coming until a loss is detected). */
		__u64 left = (__u64)f->dupacks * mss;

		if (f->sack_high > f->snd_una + mss && f->sack_high - f->snd_una - mss > left)
			left = f->sack_high - f->snd_una - mss;
		pipe = pipe > left ? pipe - left : 0;
		if (f->snd_nxt >= f->snd_max && f->snd_nxt + mss > end)
			return 0;
		if (pipe + mss > (__u64)f->cwnd * mss || f->snd_nxt + mss - f->snd_una > f->peer_wnd)
			return 0;
		off = f->snd_nxt;
		f->snd_nxt += mss;
		*retransmit = off < f->snd_max;
		if (!*retransmit)
			f->snd_max = f->snd_nxt;
	}

	if (!f->rto_at)
		f->rto_at = now + f->rto;
	if (*retransmit)
		f->segs_retrans++;
	else if (!f->rtt_start) {
		f->rtt_start = now;
		f->rtt_off = off;
	}
	f->segs_sent++;

	seg->off = off;
	seg->seq = f->iss + (__u32)off;
	seg->ack = f->rcv_nxt;
	seg->tsecr = f->ts_recent;
	seg->ts_offset = f->ts_offset;
	seg->port = f->port;
	return 1;
}

/* Notes that flow f has nothing to send until an ACK arrives or its earliest timer is due. The caller holds f's
 * lock. */
static __always_inline void note_idle(struct tcp_flow *f)
{
	__u64 until = f->rto_at ? f->rto_at : ~0ULL;

	if (f->in_recovery && f->rtx_lost_at && f->rtx_lost_at < until)
		until = f->rtx_lost_at;
	f->idle_until = until;
	f->idle_acks = f->acks_seen + 1;
}

static __always_inline __u32 add_words32(__u32 v)
{
	return (__u32)(__u16)v + (v >> 16);
}

/*
 * Writes the segment into the frame: the template's headers first (restore_headers), then the segment's fields.
 * Every stamped field is zero in the template, so the checksum is the template's plus the one's complement sum
 * of the stamped 16-bit words (RFC 1624), whatever the recycled page held before.
 */
static __always_inline int stamp_segment(struct xdp_md *ctx, struct segment *seg, __u64 now)
{
	__u32 hdr_len = tcp_config.timestamps ? sizeof(struct tcphdr) + TS_OPTION_LEN : sizeof(struct tcphdr);

	if (restore_headers(ctx, tcp_config.headers, tcp_config.tcp_offset + hdr_len, tcp_config.frame_len) < 0)
		return -1;

	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u16 *th = data + tcp_config.tcp_offset;
	__u16 *payload = (void *)th + hdr_len;
	__u32 sum = (__u16)~bpf_htons(tcp_config.tcp_check);

	if ((void *)(payload + 4) > data_end)
		return -1;

	__be32 seq = bpf_htonl(seg->seq);
	__be32 ack = bpf_htonl(seg->ack);
	__be64 off = bpf_cpu_to_be64(seg->off);

	th[0] = seg->port;
	__builtin_memcpy(&th[2], &seq, 4);
	__builtin_memcpy(&th[4], &ack, 4);
	sum += seg->port + add_words32(seq) + add_words32(ack);

	if (tcp_config.timestamps) {
		__be32 tsval = bpf_htonl((__u32)(now / NSEC_PER_MSEC) + seg->ts_offset);
		__be32 tsecr = bpf_htonl(seg->tsecr);

		__builtin_memcpy(&th[12], &tsval, 4);
		__builtin_memcpy(&th[14], &tsecr, 4);
		sum += add_words32(tsval) + add_words32(tsecr);
	}

	__builtin_memcpy(payload, &off, 8);
	sum += add_words32((__u32)off) + add_words32((__u32)(off >> 32));

	th[8] = csum_fold(sum);
	return 0;
}

SEC("xdp")
int xdpgen_tcp_send(struct xdp_md *ctx)
{
	__u32 zero = 0;
	struct tcp_worker *w = bpf_map_lookup_elem(&tcp_workers, &zero);

	if (!w)
		return XDP_ABORTED;
	if (!w->count) {
		w->idle++;
		return XDP_DROP;
	}

	__u32 index = w->first + w->next * w->stride;
	struct tcp_flow *f = bpf_map_lookup_elem(&tcp_flows, &index);
	struct tcp_flow_ctl *ctl = bpf_map_lookup_elem(&tcp_ctl, &index);

	if (!f || !ctl)
		return count_verdict(ctx, w->actions, XDP_ABORTED);

	__u64 now = 0;
	struct segment seg = {};
	int retransmit = 0;
	int send = 0;

	/* What a flow may send changes only with an ACK or when one of its timers is due; until then a flow that
	 * found nothing to send skips its lock and the precise clock, the dearest parts of an idle iteration (half
	 * of the worker's time with the small windows of a lossy path). The coarse clock it checks the timers
	 * against lags by up to a tick (4 ms at HZ=250): a timer may act that much late. */
	if (f->idle_acks != f->acks_seen + 1 || bpf_ktime_get_coarse_ns() >= f->idle_until) {
		now = bpf_ktime_get_ns();
		bpf_spin_lock(&f->lock);
		send = next_segment(f, ctl, now, &seg, &retransmit);
		if (!send)
			note_idle(f);
		bpf_spin_unlock(&f->lock);
	}

	/* A flow sends up to TCP_BURST segments in a row: the receiver's GRO merges them, where segments of
	 * different flows interleaved one by one would each go up its stack alone. */
	if (!send || ++w->burst >= TCP_BURST) {
		w->burst = 0;
		w->next = cycle(w->next, w->count);
	}
	if (!send) {
		w->idle++;
		return XDP_DROP;
	}
	if (stamp_segment(ctx, &seg, now) < 0)
		return count_verdict(ctx, w->actions, XDP_ABORTED);
	return redirect_counted(ctx, w->actions, tcp_config.ifindex);
}

#define MAX_SACK_BLOCKS 4

/* What the ack program reads from one of the peer's segments. */
struct peer_segment {
	__u32 seq;
	__u32 ack;
	__u32 window;
	__u32 payload;
	__u32 tsval;
	/* The SACK blocks' edges. */
	__u32 sack_left[MAX_SACK_BLOCKS];
	__u32 sack_right[MAX_SACK_BLOCKS];
	__u8 sack_blocks;
	__u8 has_ts;
	__u8 flags;
};

#define FLAG_FIN 0x01
#define FLAG_SYN 0x02
#define FLAG_RST 0x04
#define FLAG_ACK 0x10

/* TCP options are at most 40 bytes; the buffer is a power of two, so that masked offsets stay inside it. */
#define MAX_OPTION_BYTES 40
#define OPTION_BUF 64
#define OPT(w, i) ((w)->opt[(i) & (OPTION_BUF - 1)])

struct option_walk {
	__u8 opt[OPTION_BUF];
	__u32 len;
	__u32 pos;
	struct peer_segment *p;
};

/* One option per call (bpf_loop): the verifier checks the body once instead of every path through a loop. */
static long walk_option(__u32 i, void *data)
{
	struct option_walk *w = data;
	__u32 pos = w->pos;

	if (pos >= w->len || pos >= MAX_OPTION_BYTES)
		return 1;
	__u8 kind = OPT(w, pos);

	if (kind == 0)
		return 1;
	if (kind == 1) {
		w->pos = pos + 1;
		return 0;
	}
	if (pos + 1 >= MAX_OPTION_BYTES)
		return 1;
	__u8 len = OPT(w, pos + 1);

	if (len < 2 || pos + len > w->len)
		return 1;
	if (kind == 8 && len == 10 && pos + 10 <= MAX_OPTION_BYTES) {
		w->p->tsval = (__u32)OPT(w, pos + 2) << 24 | (__u32)OPT(w, pos + 3) << 16 | (__u32)OPT(w, pos + 4) << 8 |
			      OPT(w, pos + 5);
		w->p->has_ts = 1;
	} else if (kind == 5) {
		for (int k = 0; k < MAX_SACK_BLOCKS; k++) {
			__u32 right = pos + 2 + 8 * k + 4;

			if (2 + 8 * k + 8 > len)
				break;
			w->p->sack_left[k] = (__u32)OPT(w, right - 4) << 24 | (__u32)OPT(w, right - 3) << 16 |
					     (__u32)OPT(w, right - 2) << 8 | OPT(w, right - 1);
			w->p->sack_right[k] = (__u32)OPT(w, right) << 24 | (__u32)OPT(w, right + 1) << 16 |
					      (__u32)OPT(w, right + 2) << 8 | OPT(w, right + 3);
			w->p->sack_blocks = k + 1;
		}
	}
	w->pos = pos + len;
	return 0;
}

/* Reads the timestamp and the SACK blocks from the options at offset off, len bytes. */
static __always_inline void parse_options(struct xdp_md *ctx, __u32 off, __u32 len, struct peer_segment *p)
{
	struct option_walk w = { .p = p };

	if (len == 0 || len > MAX_OPTION_BYTES)
		return;
	if (bpf_xdp_load_bytes(ctx, off, w.opt, len) < 0)
		return;
	w.len = len;
	bpf_loop(MAX_OPTION_BYTES, walk_option, &w, 0);
}

static __always_inline int addr_equal(const volatile __u8 *want, void *got, int len)
{
	__u8 *g = got;

	for (int i = 0; i < len; i++)
		if (want[i] != g[i])
			return 0;
	return 1;
}

/*
 * Finds the flow a frame belongs to: TCP from the peer's address and port to our address and one of the flows'
 * ports. Fills *p and returns the flow index, or -1 for anything else (which the stack gets).
 */
static __always_inline int peer_flow(struct xdp_md *ctx, struct peer_segment *p)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct tcphdr *th;
	__u32 l4_len;

	if ((void *)(eth + 1) > data_end)
		return -1;
	if (tcp_config.ipv6) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if (eth->h_proto != bpf_htons(ETH_P_IPV6) || (void *)(ip6 + 1) > data_end || ip6->nexthdr != IPPROTO_TCP)
			return -1;
		if (!addr_equal(tcp_config.dst_addr, &ip6->saddr, 16) || !addr_equal(tcp_config.src_addr, &ip6->daddr, 16))
			return -1;
		th = (void *)(ip6 + 1);
		l4_len = bpf_ntohs(ip6->payload_len);
	} else {
		struct iphdr *ip = (void *)(eth + 1);

		if (eth->h_proto != bpf_htons(ETH_P_IP) || (void *)(ip + 1) > data_end || ip->protocol != IPPROTO_TCP ||
		    ip->ihl < 5 || (ip->frag_off & bpf_htons(0x3fff)))
			return -1;
		if (!addr_equal(tcp_config.dst_addr, &ip->saddr, 4) || !addr_equal(tcp_config.src_addr, &ip->daddr, 4))
			return -1;
		th = (void *)ip + ip->ihl * 4;
		l4_len = bpf_ntohs(ip->tot_len) - ip->ihl * 4;
	}
	if ((void *)(th + 1) > data_end || th->source != bpf_htons(tcp_config.dst_port))
		return -1;

	__u16 port = th->dest;
	__u32 *index = bpf_map_lookup_elem(&tcp_ports, &port);

	if (!index)
		return -1;

	__u32 doff = th->doff * 4;

	if (doff < sizeof(*th) || l4_len < doff)
		return -1;
	p->seq = bpf_ntohl(th->seq);
	p->ack = bpf_ntohl(th->ack_seq);
	p->window = bpf_ntohs(th->window);
	p->payload = l4_len - doff;
	p->flags = ((__u8 *)th)[13];
	parse_options(ctx, (void *)(th + 1) - data, doff - sizeof(*th), p);
	return *index;
}

/* RFC 6298 section 2 with a new sample r (ns); the caller has cleared the backoff. */
static __always_inline void rtt_sample(struct tcp_flow *f, __u64 r)
{
	if (!f->srtt) {
		f->srtt = r;
		f->rttvar = r / 2;
	} else {
		__u64 diff = f->srtt > r ? f->srtt - r : r - f->srtt;

		f->rttvar = (3 * f->rttvar + diff) / 4;
		f->srtt = (7 * f->srtt + r) / 8;
	}
}

static __always_inline __u64 rto_from_rtt(struct tcp_flow *f)
{
	__u64 var = 4 * f->rttvar > RTO_GRANULARITY ? 4 * f->rttvar : RTO_GRANULARITY;
	__u64 rto = f->srtt + var;

	if (rto < tcp_config.min_rto)
		return tcp_config.min_rto;
	if (rto > tcp_config.max_rto)
		return tcp_config.max_rto;
	return rto;
}

/* Takes a cumulative ACK that covers acked more bytes (RFC 5681 and, for recovery, RFC 6582). */
static __always_inline void new_ack(struct tcp_flow *f, __u64 acked, __u64 now)
{
	__u32 segs = (__u32)(acked / tcp_config.mss);
	/* The window grows only while it is what limits the flow (RFC 7661; Linux's test): with at least half of
	 * it in flight. A window the peer's window or the application kept from filling proves nothing, and
	 * would let the next loss find a window far larger than anything the path carried. */
	int cwnd_limited = 2 * (f->snd_nxt - f->snd_una) >= (__u64)f->cwnd * tcp_config.mss;

	f->snd_una += acked;
	if (f->snd_nxt < f->snd_una)
		f->snd_nxt = f->snd_una;
	if (f->sack_high < f->snd_una)
		f->sack_high = f->snd_una;
	if (f->rtt_start && f->snd_una > f->rtt_off) {
		rtt_sample(f, now - f->rtt_start);
		f->rtt_start = 0;
	}
	f->rto = rto_from_rtt(f);
	f->rtx_lost_at = 0;
	f->progress_at = now;

	if (f->in_recovery) {
		if (f->snd_una >= f->recover) {
			f->in_recovery = 0;
			f->rtx_pending = 0;
			f->cwnd = f->ssthresh;
			f->cwnd_acked = 0;
		} else if (f->rtx_nxt > f->snd_una) {
			/* A partial ACK, and the segment at snd_una was retransmitted already: give it its time. */
			f->rtx_lost_at = now + rtx_wait(f);
		} else {
			/* A partial ACK: the next hole starts at snd_una. */
			f->rtx_pending = 1;
		}
		f->dupacks = 0;
	} else if (cwnd_limited) {
		f->dupacks = 0;
		if (f->cwnd < f->ssthresh) {
			f->cwnd = min_u32(f->cwnd + segs, f->ssthresh);
		} else {
			f->cwnd_acked += segs;
			if (f->cwnd_acked >= f->cwnd) {
				f->cwnd_acked -= f->cwnd;
				f->cwnd++;
			}
		}
		if (f->cwnd > tcp_config.max_cwnd)
			f->cwnd = tcp_config.max_cwnd;
	} else {
		f->dupacks = 0;
	}
	f->rto_at = f->snd_una >= f->snd_max ? 0 : now + f->rto;
}

/* Takes the ACK's SACK blocks: sack_high moves up to the highest right edge, hole_end is the lowest left edge
 * above snd_una (where the data the peer lacks ends, if there is one hole). */
static __always_inline void sacked(struct tcp_flow *f, struct peer_segment *p)
{
	__u32 una = f->iss + (__u32)f->snd_una;
	__u64 hole_end = 0;

	for (int k = 0; k < MAX_SACK_BLOCKS; k++) {
		if (k >= p->sack_blocks)
			break;
		__s32 right = (__s32)(p->sack_right[k] - una);
		__s32 left = (__s32)(p->sack_left[k] - una);

		if (left <= 0 || right <= left || f->snd_una + right > f->snd_max)
			continue; /* below snd_una (a D-SACK), or nonsense */
		if (f->snd_una + right > f->sack_high)
			f->sack_high = f->snd_una + right;
		if (!hole_end || f->snd_una + left < hole_end)
			hole_end = f->snd_una + left;
	}
	f->hole_end = hole_end;
}

/*
 * Starts a fast retransmit when the peer's ACKs show the segment at snd_una lost: three duplicate ACKs, or SACK
 * blocks that show three segments delivered above it (RFC 6675's DupThresh in bytes: the receiver's GRO merges
 * segments, and sends one ACK for many, often one that also moves snd_una), unless a recovery (or a timeout's)
 * is not over yet. At the end of the stream, with fewer than four segments outstanding and no new data to
 * follow them, three can never come: one less than what is outstanding will do (RFC 5827's early
 * retransmit), or a loss among the last three segments waits out the retransmission timeout.
 */
static __always_inline void detect_loss(struct tcp_flow *f, struct tcp_flow_ctl *ctl, __u64 now)
{
	__u32 mss = tcp_config.mss;
	__u32 dupthresh = 3;
	__u64 end = ctl->stop ? f->snd_max : ctl->end;
	__u32 outstanding = flight_segments(f);

	if (f->in_recovery || f->snd_una < f->recover || f->snd_una >= f->snd_max)
		return;
	if (f->snd_max + mss > end && outstanding < 4)
		dupthresh = outstanding > 1 ? outstanding - 1 : 1;
	if (f->dupacks < dupthresh && f->sack_high < f->snd_una + (dupthresh + 1) * mss)
		return;
	f->ssthresh = reduced_window(f);
	f->cwnd = f->ssthresh;
	f->cwnd_acked = 0;
	f->in_recovery = 1;
	f->recover = f->snd_max;
	f->rtx_pending = 1;
	f->rtx_nxt = f->snd_una;
	f->rtt_start = 0;
	f->fast_retrans++;
	f->rto_at = now + f->rto;
}

/* A duplicate ACK: it counts towards the fast retransmit. */
static __always_inline void dup_ack(struct tcp_flow *f, struct tcp_flow_ctl *ctl, __u64 now)
{
	f->dupacks++;
	f->dupacks_seen++;
	detect_loss(f, ctl, now);
}

static __always_inline void peer_segment_arrived(struct tcp_flow *f, struct tcp_flow_ctl *ctl, struct peer_segment *p,
						 __u64 now)
{
	if (f->state != TCP_FLOW_RUNNING)
		return;
	if (p->flags & FLAG_RST) {
		/* RFC 5961 would answer an in-window RST that is not exactly rcv_nxt with a challenge ACK; a
		 * generator has no way to send one, so it accepts the window. */
		if (p->seq - f->rcv_nxt < tcp_config.rcv_wnd)
			f->state = TCP_FLOW_RESET;
		return;
	}
	if (!(p->flags & FLAG_ACK) || (p->flags & FLAG_SYN))
		return;
	f->acks_seen++;
	if (p->has_ts && (__s32)(p->tsval - f->ts_recent) >= 0)
		f->ts_recent = p->tsval;
	if ((p->flags & FLAG_FIN) && p->seq + p->payload == f->rcv_nxt) {
		f->rcv_nxt++;
		f->peer_fin = 1;
	}

	__s32 delta = (__s32)(p->ack - (f->iss + (__u32)f->snd_una));
	__u32 window = p->window << f->wscale;

	if (delta < 0 || (__u64)delta > f->snd_max - f->snd_una)
		return; /* an old ACK, or one for data never sent */
	if (delta > 0) {
		new_ack(f, (__u64)delta, now);
		sacked(f, p);
		if (p->sack_blocks)
			detect_loss(f, ctl, now);
	} else if (f->snd_max > f->snd_una && !p->payload && !(p->flags & FLAG_FIN) &&
		   (p->sack_blocks || window == f->peer_wnd)) {
		sacked(f, p);
		dup_ack(f, ctl, now);
	}
	f->peer_wnd = window;
}

SEC("xdp")
int xdpgen_tcp_ack(struct xdp_md *ctx)
{
	struct peer_segment p = {};
	int index = peer_flow(ctx, &p);

	if (index < 0)
		return XDP_PASS;

	__u32 key = index;
	struct tcp_flow *f = bpf_map_lookup_elem(&tcp_flows, &key);
	struct tcp_flow_ctl *ctl = bpf_map_lookup_elem(&tcp_ctl, &key);

	if (!f || !ctl || ctl->handed_back)
		return XDP_PASS;

	__u64 now = bpf_ktime_get_ns();

	bpf_spin_lock(&f->lock);
	peer_segment_arrived(f, ctl, &p, now);
	bpf_spin_unlock(&f->lock);
	return XDP_DROP;
}
