/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/* Structs shared by the BPF programs and Go (bpf2go turns each one named with -type into a Go struct), and the
 * helpers the programs share. */
#pragma once

#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf_helpers.h>

/* XDP_ABORTED .. XDP_REDIRECT: counters are indexed by the verdict. */
#define XDPGEN_ACTIONS 5

struct counter {
	__u64 packets;
	__u64 bytes;
};

static __always_inline void counter_add(struct counter *c, __u64 bytes)
{
	c->packets++;
	c->bytes += bytes;
}

/* Counts a verdict in a worker's per-verdict counters and returns it. Callers pass constants, so the index
 * needs no bounds check the verifier could lose. */
static __always_inline int count_verdict(struct xdp_md *ctx, struct counter actions[XDPGEN_ACTIONS],
					 enum xdp_action action)
{
	counter_add(&actions[action], ctx->data_end - ctx->data);
	return action;
}

/* Redirects the frame to ifindex and counts the verdict: XDP_REDIRECT, or XDP_ABORTED when bpf_redirect
 * refuses. */
static __always_inline int redirect_counted(struct xdp_md *ctx, struct counter actions[XDPGEN_ACTIONS], __u32 ifindex)
{
	if (bpf_redirect(ifindex, 0) != XDP_REDIRECT)
		return count_verdict(ctx, actions, XDP_ABORTED);
	return count_verdict(ctx, actions, XDP_REDIRECT);
}

/* Folds a 32-bit one's complement sum to 16 bits and complements it: the checksum field's value. */
static __always_inline __u16 csum_fold(__u32 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

/* The most header bytes a template has: Ethernet, an 802.1Q tag, IPv6, TCP with the timestamp option (90),
 * rounded up to whole 8-byte words. */
#define HEADERS_MAX 96

/*
 * Writes the template's first len bytes over the frame. A live frame's page is recycled with whatever the
 * stack that received it wrote into it: a router's MACs and TTL, GRO's merged IP length, checksums and TCP
 * flags. So every header byte comes from the template on every frame, before the per-frame fields are stamped.
 * len and frame_len are load-time constants: the verifier keeps only the copies this configuration makes.
 * Returns -1, and writes nothing, when the frame is not the template's length.
 */
static __always_inline int restore_headers(struct xdp_md *ctx, const volatile __u8 *template, __u32 len,
					   __u32 frame_len)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;

	if (ctx->data_end - ctx->data != frame_len || len > HEADERS_MAX || data + len > data_end)
		return -1;
#pragma unroll
	for (__u32 i = 0; i < HEADERS_MAX; i += 8) {
		if (i + 8 > len)
			break;
		*(__u64 *)(data + i) = *(const volatile __u64 *)(template + i);
	}
	/* Headers are a whole number of 16-bit words: what is left is 2, 4 or 6 bytes. */
	__u32 done = len & ~7;

	if (len & 4) {
		*(__u32 *)(data + done) = *(const volatile __u32 *)(template + done);
		done += 4;
	}
	if (len & 2)
		*(__u16 *)(data + done) = *(const volatile __u16 *)(template + done);
	return 0;
}

/* Next value of a position that cycles over [0, count). */
static __always_inline __u32 cycle(__u32 position, __u32 count)
{
	return position + 1 >= count ? 0 : position + 1;
}

/* The most destinations one UDP run sends to, round-robin (a power of two: indexes are masked with it). */
#define UDP_MAX_DESTS 64

/* How a UDP run's frame sizes vary (udp_config.size_mode). */
enum size_mode {
	/* Every frame is the template's length. */
	SIZES_FIXED = 0,
	/* size_min, size_min + 1, ..., size_min + size_count - 1, in turn. */
	SIZES_STEPPED = 1,
	/* Uniformly random over the same range. */
	SIZES_RANDOM = 2,
	/* mix[0], mix[1], ..., mix[mix_len - 1], in turn: a weighted mix, interleaved by userspace. */
	SIZES_MIX = 3,
};

/* udp_config.addr_random bits. */
#define ADDR_RANDOM_SRC 0x01
#define ADDR_RANDOM_DST 0x02

/* The most size buckets a run reports (a power of two), and the most slots of a mix (a power of two). */
#define SIZE_BUCKETS 16
#define MIX_SLOTS 1024
/* Frame lengths index udp_config.sizes: a power of two above the largest live frame (4096 - 256 - 320). */
#define SIZES_TABLE 4096

/*
 * One live-frame worker's state, in a per-CPU map because each worker is pinned to one CPU and BPF_PROG_RUN runs
 * on the caller's CPU. Userspace writes `limit`, `stream` and `first_seq` once before the workers start and never
 * again (a per-CPU map write replaces every CPU's value); from then on only the program writes here.
 */
struct worker_state {
	/* Frames this CPU may emit in the whole run; further frames are dropped uncounted. The kernel may re-run
	 * an interrupted BPF_PROG_RUN from the start, so this, not `repeat`, is what makes a packet count exact. */
	__u64 limit;
	__u64 emitted;
	/* Position in the port ranges: derived state, because a recycled page holds the template or any earlier
	 * rewrite, never a value we can trust. */
	__u32 dst_port_offset;
	__u32 src_port_offset;
	/* When the next frame is due: ns since config.clock_base, shifted by PACE_SHIFT; 0 before the first. */
	__u64 next_due;
	struct counter actions[XDPGEN_ACTIONS];
	/* This worker's index among the run's workers: the stream its stamps name. */
	__u32 stream;
	/* The destination the next frame goes to. */
	__u32 dest;
	/* Frames redirected to each destination: what its receiver should see of this stream, and the sequence
	 * number of the next frame stamped for it. */
	__u64 sent[UDP_MAX_DESTS];
	/* The sequence number of this stream's first frame to each destination: 0, or what the same stream sent
	 * there in an earlier run it continues (an agent restarted mid-run), so that its receivers see one stream. */
	__u32 first_seq[UDP_MAX_DESTS];
	/* Frames to each destination until the next one asks to be reflected. */
	__u32 reflect_in[UDP_MAX_DESTS];
	/* Position in the sizes (SIZES_STEPPED) or in the mix (SIZES_MIX): derived state, as the port offsets. */
	__u32 size_pos;
	/* Position in the address ranges (sequential order): the source advances each time the destination wraps. */
	__u32 dst_addr_offset;
	__u32 src_addr_offset;
	/* Frames of the current burst still to send back to back. */
	__u32 burst_left;
	/* Frames redirected per size bucket (udp_config.sizes[len].bucket, or replay_frame.bucket), when sizes vary. */
	__u64 size_frames[SIZE_BUCKETS];
	/* Replay (replay.c): the capture's frame this worker sends next, and, with the capture's timing, when the
	 * capture's current loop started for this worker (ns since replay_config.clock_base; 0 before its first
	 * frame). Derived state, as the port offsets. */
	__u32 replay_pos;
	__u32 pad;
	__u64 replay_loop_start;
};

/* Pacing keeps time in 1/256 ns, so that any rate's interval is exact enough over a long run. */
#define PACE_SHIFT 8

/*
 * The stamp a UDP run writes right after the UDP header of every frame when asked to, so that a receiver can
 * account for each sender's streams (receive.c). Network byte order on the wire. 20 bytes: it fits a 64-byte
 * IPv4 frame.
 */
#define STAMP_MAGIC 0x5847 /* "XG" */
/* The receiver sends the frame back (XDP_TX), flagged STAMP_REFLECTED, for its sender to time. */
#define STAMP_REFLECT 0x01
/* A frame a receiver sent back: its sender times it (now - tx_time) and drops it. */
#define STAMP_REFLECTED 0x02
#define STAMP_FLAGS (STAMP_REFLECT | STAMP_REFLECTED)

struct stamp {
	__be16 magic;
	__u8 flags;
	/* The sending worker's index. */
	__u8 stream;
	/* Ids the caller gives: the run, and the sending node. */
	__be32 generator;
	__be32 sender;
	/* Per stream and destination, from 0; the receiver extends it to 64 bits. */
	__be32 seq;
	/* The low 32 bits of bpf_ktime_get_tai_ns when the frame was sent, on frames flagged STAMP_REFLECT (0 on
	 * the others: the clock is the dearest part of a stamp). */
	__be32 tx_time;
};

/* What a frame length changes, against the template's. */
struct frame_size {
	/* The UDP checksum's change, as a 16-bit one's complement sum to add: the payload the trim removed and the
	 * two length fields (the UDP header's and the pseudo-header's). Host byte order, as udp_dest.udp_check. */
	__u16 udp_sum;
	/* The bucket frames of this length are counted in (worker_state.size_frames). */
	__u8 bucket;
	__u8 pad;
};

/* One destination of a UDP run: its template's headers and UDP checksum. */
struct udp_dest {
	/* The template's UDP checksum: the value the per-frame checksums are derived from. */
	__u16 udp_check;
	__u8 pad[6];
	__u8 headers[HEADERS_MAX];
};

/* The UDP generator's configuration: fixed at load time as a const volatile so the verifier prunes what a
 * run does not use (a fixed flow only restores the headers). Every field is in host byte order. */
struct udp_config {
	__u32 ifindex;
	/* Offset of the UDP header in the frame (Ethernet, optional 802.1Q tag, IPv4 or IPv6). */
	__u16 udp_offset;
	/* Destinations in dests, each frame going to the next (1 to UDP_MAX_DESTS). */
	__u16 dest_count;
	__u16 dst_port;
	__u16 dst_port_count;
	__u16 src_port;
	__u16 src_port_count;
	/* Time between two frames (or two bursts) of one worker, in 1/256 ns; 0: as fast as possible. A frame that
	 * is not due yet is dropped uncounted: the worker spins, as hardware generators do, so that pacing has no
	 * sleep jitter. */
	__u64 pace_interval;
	/* With pacing: frames sent back to back each time one is due (0 or 1: one). */
	__u32 burst;
	/* Non-zero: frames are not sent but passed to the stack of the interface the run names as its ingress
	 * (XDP_PASS of a live frame: netif_receive_skb), to load the host's own receive path. */
	__u8 inject;
	__u8 pad4[3];
	/* Boot time (ns) at load: pacing clocks count from here, so PACE_SHIFT cannot overflow them. */
	__u64 clock_base;
	/* The template's length. */
	__u16 frame_len;
	/* Non-zero: frames carry a struct stamp after the UDP header. The templates hold it with magic, generator
	 * and sender set and the rest zero, and their checksums count it so. */
	__u8 stamp;
	__u8 pad;
	/* With stamp: one frame in this many to each destination asks to be reflected (and carries its send
	 * time); 0: none. */
	__u32 reflect_every;
	/* The stamp's generator and sender, in network byte order. */
	__be32 stamp_generator;
	__be32 stamp_sender;
	/* Non-zero: IPv6 (the IP header is the 40 bytes before the UDP header), else IPv4 without options. */
	__u8 ipv6;
	/* enum size_mode. With any but SIZES_FIXED the template is the largest size and each frame is trimmed to
	 * its own (never below the stamp). */
	__u8 size_mode;
	__u16 size_min;
	__u16 size_count;
	__u16 mix_len;
	/* Address ranges: the addresses' last 32 bits (all of an IPv4 address) go from the template's over
	 * *_addr_count values: in turn (the destination fastest, after the ports) or, with ADDR_RANDOM_*, at random.
	 * *_addr_at is where the 32-bit word sits in the frame; *_addr_first is the template's, host byte order. A
	 * count of 0 or 1: the template's address. */
	__u8 addr_random;
	__u8 pad2;
	__u16 src_addr_at;
	__u16 dst_addr_at;
	__u16 pad3;
	__u32 src_addr_count;
	__u32 dst_addr_count;
	__u32 src_addr_first;
	__u32 dst_addr_first;
	/* Each destination's headers, up to the end of the UDP header (udp_offset + 8 bytes). */
	struct udp_dest dests[UDP_MAX_DESTS];
	/* SIZES_MIX: the frame length of each slot. */
	__u16 mix[MIX_SLOTS];
	/* Indexed by frame length; only the lengths a run sends are filled. */
	struct frame_size sizes[SIZES_TABLE];
};

/* The receive program's configuration (receive.c). */
struct rx_config {
	/* Unstamped UDP to destination ports [dst_port_first, dst_port_last] is counted (RX_MATCHED); first > last:
	 * none is, and every unstamped frame passes untouched. */
	__u16 dst_port_first;
	__u16 dst_port_last;
	/* Non-zero: counted frames (stamped, and unstamped ones in the range) go on to the stack (XDP_PASS); zero:
	 * they are dropped after counting. */
	__u8 pass;
	/* Non-zero: every frame that looks stamped is taken as one; zero: only those of the generators in
	 * rx_generators (a DNS query whose ID happens to be the magic is another host's traffic, and passes). */
	__u8 any_generator;
	__u8 pad[2];
};

/* The most generators one receive program serves at once when it serves only those registered. */
#define RX_MAX_GENERATORS 1024

/* Keys of the receive program's counters (rx_cpu.counters). */
enum rx_counter_key {
	/* Unstamped UDP to the configured ports. */
	RX_MATCHED = 0,
	/* Everything else that was not ours. */
	RX_OTHER = 1,
	/* Stamped frames accounted in a stream. */
	RX_STAMPED = 2,
	/* Stamped frames of a new stream the stream table had no room for. */
	RX_STREAMS_FULL = 3,
	/* Frames sent back to their sender (XDP_TX) for timing. */
	RX_REFLECTED = 4,
	/* Frames that came back reflected and were timed. */
	RX_TIMED = 5,
	/* Reflected frames of a new (generator, destination) the latency table had no room for. */
	RX_LATENCY_FULL = 6,
	RX_KEYS,
};

/* How many streams a CPU remembers (a power of two). */
#define RX_RECENT 16

/* One of a CPU's recent streams and its slot: a stream is one sending thread, whose frames arrive on one CPU, so
 * most frames skip the hash and the probes of the stream table (the bulk of the program's cost on a veth). A
 * stream is remembered at the entry a fold of its key picks (recent_entry), so that streams whose frames
 * interleave on one CPU (several senders behind one RX queue) keep an entry each unless they fold alike. */
struct rx_recent {
	/* The stream as its frames carry it: the stamp's stream and the IP version (stream | v6 << 8), generator
	 * and sender, and the destination address (an IPv4 one in dst[3]), in network byte order. */
	__u32 tag;
	__be32 generator;
	__be32 sender;
	__be32 dst[4];
	__u32 slot;
	/* The receive program's rx_epoch when the slot was found: the entry holds while they are equal. */
	__u32 epoch;
};

/* What the receive program keeps per CPU (rx_cpus), found once per frame: its counters, and its recent streams. */
struct rx_cpu {
	struct counter counters[RX_KEYS];
	struct rx_recent recent[RX_RECENT];
};

/* A sender's stream as a receiver sees it: one sending worker of one generator on one node, to one of this
 * receiver's addresses (IPv4 as IPv4-mapped IPv6). */
struct rx_stream_key {
	__u32 generator;
	__u32 sender;
	__u8 dst_addr[16];
	__u8 stream;
	__u8 pad[3];
};

/*
 * A slot of the receive program's stream table (rx_slots), which says which stream the slot's per-CPU counters
 * (rx_streams, same index) belong to. The table is open-addressed: a stream lives in the first of the RX_PROBES
 * slots from the hash of its key that is free when its first frame arrives. That frame claims the slot under its
 * lock; from then on the slot is only read, so every CPU finds the stream at the same index, without a lock and
 * with no hash table's lookup (the bulk of the program's cost on a veth). Userspace forgets a stream by zeroing
 * its rows and leaving a tombstone, which lookups step over and claims reuse.
 */
struct rx_slot {
	struct bpf_spin_lock lock;
	/* RX_SLOT_FREE, RX_SLOT_USED once key is written, RX_SLOT_FORGOTTEN. */
	__u32 state;
	struct rx_stream_key key;
};

enum rx_slot_state {
	RX_SLOT_FREE = 0,
	RX_SLOT_USED = 1,
	RX_SLOT_FORGOTTEN = 2,
};

/* How many slots from its hash a new stream may take. The table has twice as many slots as it takes streams
 * (rx_max_streams), so that a new stream finds one of them free with all but certainty. */
#define RX_PROBES 16

/* How many streams the table holds, under its lock (a new stream is refused once rx_max_streams are there). */
struct rx_stream_count {
	struct bpf_spin_lock lock;
	__u32 streams;
};

/* Words in a stream's window of recent sequence numbers (a power of two): duplicates are recognised up to
 * (RX_WINDOW_WORDS - 1) * 64 below the highest sequence number seen (RFC 6479's bitmap). */
#define RX_WINDOW_WORDS 16

/* One CPU's row of a stream (rx_streams is per CPU: a stream is one sending thread, whose frames arrive on one
 * CPU, so its counters need no lock; userspace sums the rows). */
struct rx_stream {
	__u64 packets;
	__u64 bytes;
	/* The highest sequence number seen plus one (0: none yet), extended to 64 bits. */
	__u64 next_seq;
	/* Frames that arrived below the highest sequence number and were not duplicates. */
	__u64 reordered;
	/* Frames whose sequence number was already seen. */
	__u64 duplicates;
	/* Frames too far below the highest to tell whether they were duplicates (counted as reordered too). */
	__u64 late;
	__u64 window[RX_WINDOW_WORDS];
	/* The source address of the stream's first frame (IPv4-mapped for IPv4), in the row of the CPU that saw
	 * the stream first (zero in the others'). */
	__u8 src_addr[16];
};

/* Round-trip times in ns, log-linear: values below 16 have a bucket each; above, each power of two is split
 * into 16 buckets (at most 6.25% wide). Up to 2^32 ns, what the 32-bit timestamps can tell. */
#define LATENCY_SUB_BITS 4
#define LATENCY_BUCKETS ((32 - LATENCY_SUB_BITS + 1) << LATENCY_SUB_BITS)

/* What a latency histogram times (latency_key.kind). */
enum latency_kind {
	/* Round trips a sender times, per destination: addr is the reflected frame's source. */
	LATENCY_ROUND_TRIP = 0,
	/* One-way delays a receiver times on the sampled frames, per sender: addr is the frame's source. Sender and
	 * receiver read their own TAI clocks: meaningful only where the clocks are synchronised. */
	LATENCY_ONE_WAY = 1,
};

/* A path timed: its generator, the kind of delay, and the address at the other end. */
struct latency_key {
	__u32 generator;
	__u32 kind;
	__u8 addr[16];
};

struct latency_hist {
	__u64 count;
	__u64 sum_ns;
	__u64 max_ns;
	__u64 buckets[LATENCY_BUCKETS];
};

/*
 * TCP mode. Userspace opens each connection with a real handshake and hands its sequence space to these
 * programs: the send program (a live-frame worker) stamps data segments, the ack program (attached to the
 * sending interface) reads the peer's ACKs. They share one struct tcp_flow per connection, under its lock.
 * Positions in the byte stream are 64-bit offsets from the first data byte; only the wire uses 32-bit sequence
 * numbers (seq = iss + offset), so comparisons never wrap.
 */
#define TCP_MAX_FLOWS 256

enum tcp_flow_state {
	TCP_FLOW_UNUSED = 0,
	TCP_FLOW_RUNNING = 1,
	/* The peer reset the connection: nothing more is sent, userspace reports it. */
	TCP_FLOW_RESET = 2,
};

struct tcp_flow {
	struct bpf_spin_lock lock;
	__u32 state;
	/* Sequence number of stream offset 0 (the ISN + 1). */
	__u32 iss;
	/* What the segments acknowledge: the peer sends no data, so this moves only past a FIN. */
	__u32 rcv_nxt;
	/* Our TSval is the kernel's millisecond clock plus this connection's offset; ts_recent is the peer's
	 * latest TSval, echoed as TSecr. */
	__u32 ts_offset;
	__u32 ts_recent;
	/* The peer's receive window in bytes (already scaled by wscale). */
	__u32 peer_wnd;
	/* Congestion window and slow-start threshold, in segments; cwnd_acked counts segments towards the next
	 * increase in congestion avoidance. */
	__u32 cwnd;
	__u32 ssthresh;
	__u32 cwnd_acked;
	__u32 dupacks;
	__u8 wscale;
	/* In fast recovery until snd_una reaches recover (NewReno). */
	__u8 in_recovery;
	/* The segment at snd_una is lost, and to be retransmitted (fast retransmit, a partial ACK in recovery). */
	__u8 rtx_pending;
	__u8 peer_fin;
	/* Local port, network byte order. */
	__u16 port;
	__u16 pad;
	/* Stream offsets: acknowledged, next to send, highest sent; recover ends fast recovery; sack_high is the
	 * highest the peer's SACK blocks reached. */
	__u64 snd_una;
	__u64 snd_nxt;
	__u64 snd_max;
	__u64 recover;
	__u64 sack_high;
	/* In recovery: the next segment to retransmit, and where the hole the peer's SACK blocks show ends. */
	__u64 rtx_nxt;
	__u64 hole_end;
	/* Retransmission timer (RFC 6298), in ns: rto_at is the deadline, 0 when nothing is in flight. */
	__u64 rto;
	__u64 rto_at;
	__u64 srtt;
	__u64 rttvar;
	/* One segment at a time is timed (Karn: never a retransmitted one); rtt_start is 0 when none is. */
	__u64 rtt_off;
	__u64 rtt_start;
	/* When the segment retransmitted in recovery counts as lost too, if snd_una has not moved by then (ns; 0:
	 * no retransmission outstanding). Without it a lost retransmission waits for the retransmission timeout. */
	__u64 rtx_lost_at;
	/* When snd_una last moved (ns, bpf_ktime_get_ns). */
	__u64 progress_at;
	/* Counters, in segments. */
	__u64 segs_sent;
	__u64 segs_retrans;
	__u64 fast_retrans;
	__u64 timeouts;
	__u64 lost_retrans;
	__u64 dupacks_seen;
	__u64 acks_seen;
	/* The send program found nothing to send, and notes until when that holds: while acks_seen + 1 is
	 * idle_acks (no ACK taken since; 0: no note) and the clock is before idle_until (its earliest timer). */
	__u64 idle_acks;
	__u64 idle_until;
};

/* Per flow, written only by userspace: where new data ends, and the run's phases. */
struct tcp_flow_ctl {
	/* Stream offset new data stops at (a whole number of segments). */
	__u64 end;
	/* Non-zero: send no new data, only what recovers what is in flight. */
	__u32 stop;
	/* Non-zero: the connection is back in a kernel socket; its packets pass to the stack. */
	__u32 handed_back;
};

/* One TCP live-frame worker (per CPU): which flows it sends, and what it did. */
struct tcp_worker {
	/* Flows first, first + stride, ..., count of them. */
	__u32 first;
	__u32 count;
	__u32 stride;
	/* The flow being sent (a position among this worker's flows), and how many segments it sent in a row. */
	__u32 next;
	__u32 burst;
	__u32 pad;
	/* Frames dropped because no flow could send (windows full, or nothing left to send). */
	__u64 idle;
	struct counter actions[XDPGEN_ACTIONS];
};

/* The TCP programs' configuration; host byte order unless named otherwise. */
struct tcp_config {
	__u32 ifindex;
	/* Offset of the TCP header in the frame. */
	__u16 tcp_offset;
	/* The template's TCP checksum; every stamped field is zero in the template, so a segment's checksum is
	 * this plus the stamped words. */
	__u16 tcp_check;
	/* Payload bytes per segment. */
	__u16 mss;
	/* The peer's port. */
	__u16 dst_port;
	__u8 ipv6;
	/* Timestamps were negotiated: segments carry NOP, NOP, TS right after the fixed header. */
	__u8 timestamps;
	__u8 pad[2];
	/* The connection's addresses (IPv4 in the first 4 bytes), network byte order. */
	__u8 src_addr[16];
	__u8 dst_addr[16];
	/* The receive window we advertise, in bytes: bounds the sequence numbers of a RST we accept. */
	__u32 rcv_wnd;
	__u32 max_cwnd;
	__u64 min_rto;
	__u64 max_rto;
	/* The template's length, and its headers up to the end of the TCP header and its options. */
	__u16 frame_len;
	__u8 pad2[6];
	__u8 headers[HEADERS_MAX];
};

/* Capture replay (replay.c): the capture's frames are cut into chunks of REPLAY_CHUNK bytes in replay_chunks, each
 * frame's first chunk and length in replay_frames. A frame is at most REPLAY_MAX_CHUNKS chunks (a live frame's
 * largest, 3520 bytes). Each chunk costs one bpf_xdp_store_bytes call, the dearest part of a replayed frame: with
 * 256-byte chunks 1514-byte frames replayed at 0.37 of the UDP generator's rate, with 2048-byte ones at 0.83
 * (BENCHMARKS.md), so a frame up to 2048 bytes is one call, for at most 2 KiB of kernel memory per small frame. */
#define REPLAY_CHUNK 2048
#define REPLAY_MAX_CHUNKS 2

struct replay_chunk {
	__u8 bytes[REPLAY_CHUNK];
};

struct replay_frame {
	__u32 first_chunk;
	/* The frame's length, at most replay_config.frame_len. */
	__u16 len;
	/* The size bucket it is counted in (worker_state.size_frames). */
	__u8 bucket;
	__u8 pad;
	/* With the capture's timing: when it is due, ns after the capture's first frame. */
	__u64 at;
};

/* The replay program's configuration, fixed at load time. Host byte order. */
struct replay_config {
	__u32 ifindex;
	/* Frames in the capture (entries of replay_frames). */
	__u32 frame_count;
	/* Workers: worker k sends the capture's frames k, k + stride, k + 2 * stride, ... (modulo frame_count). */
	__u32 stride;
	/* The largest frame: the length of the buffer BPF_PROG_RUN is handed, that each frame is trimmed from. */
	__u16 frame_len;
	__u8 pad;
	/* Non-zero: each frame is due at its capture time (replay_frame.at) after its loop's start, instead of paced
	 * by pace_interval. */
	__u8 capture_timing;
	/* As udp_config's: time between two frames of one worker in 1/256 ns (0: unpaced), and the load time. */
	__u64 pace_interval;
	__u64 clock_base;
	/* With the capture's timing: one loop's length in ns (the last frame's time plus the mean gap). */
	__u64 loop_ns;
};
