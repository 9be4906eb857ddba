/* reasm.h — IPv4 and IPv6 fragment reassembly with bounded memory.
 *
 * One instance per interface, in caller-provided storage sized by
 * reasm_memory_needed(). The caller parses the IP header (and for IPv6 the
 * extension headers up to the Fragment header) and hands a validated
 * description of each fragment to reasm_add(); this module never parses
 * headers beyond the few fields it rewrites, and never allocates, grows, or
 * keeps a pointer into the caller's packet after returning.
 *
 * Bounds (all fixed at init): fragment payload bytes held (the budget,
 * counted in REASM_BLOCK_SIZE blocks), concurrent datagrams, fragments per
 * datagram (REASM_MAX_FRAGS), datagram age (timeout, from the first
 * fragment, never refreshed). When the budget or the datagram table is full
 * the oldest incomplete datagram is evicted.
 *
 * Policy (qubes-protocols.md §7.10; RFC 791, RFC 8200 §4.5, RFC 5722,
 * RFC 1858, RFC 6946):
 *   - key: (src, dst, protocol, id) for IPv4, (src, dst, id) for IPv6;
 *   - overlapping or inconsistent fragments drop the whole datagram, and its
 *     key is remembered for dead_ns so later fragments of it are dropped too;
 *     an exact duplicate (same range, same bytes) is dropped on its own;
 *   - the first fragment must hold the whole transport header (20 bytes for
 *     TCP, 8 for everything else); a later fragment that starts inside that
 *     header (RFC 1858 tiny-fragment attack) drops the whole datagram;
 *   - a fragment with MF set must carry a multiple of 8 bytes, and the
 *     reassembled datagram may not exceed 65535 bytes (IPv4 total length,
 *     IPv6 payload length);
 *   - an IPv6 "atomic fragment" (offset 0, M clear) and an IPv4 datagram
 *     with offset 0 and MF clear complete on their own, without touching any
 *     queue (RFC 6946). */
#ifndef NET_REASM_H
#define NET_REASM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/addr.h"

/* Payload is stored in blocks of this many bytes, indexed by datagram
 * offset; the budget is counted in whole blocks. */
#define REASM_BLOCK_SIZE 512u
/* Fragments one datagram may consist of (a 64 KiB datagram at the IPv6
 * minimum MTU of 1280 takes 54). */
#define REASM_MAX_FRAGS 64u
/* Longest unfragmentable part kept from the first fragment: the IPv4 header
 * (at most 60) or the IPv6 header plus extension headers before the
 * Fragment header. A longer one drops the datagram. */
#define REASM_HDR_MAX 256u
/* Largest reassembled datagram handed out: IPv6 header + 65535. */
#define REASM_OUT_MAX (40u + 65535u)

/* Defaults (reasm_config_default). */
#define REASM_DEFAULT_BUDGET ((size_t)256u * 1024u)
#define REASM_DEFAULT_MAX_DATAGRAMS 64u
#define REASM_DEFAULT_TIMEOUT_NS (30ull * 1000000000ull)
#define REASM_DEFAULT_DEAD_NS (5ull * 1000000000ull)
/* Limits on the configuration itself. */
#define REASM_MAX_BUDGET ((size_t)65535u * REASM_BLOCK_SIZE)
#define REASM_MAX_DATAGRAMS_LIMIT 4096u

struct reasm_config {
	size_t budget_bytes;    /* payload memory; rounded down to blocks */
	uint32_t max_datagrams; /* concurrent incomplete datagrams (>= 1) */
	uint64_t timeout_ns;    /* age at which an incomplete datagram is dropped */
	uint64_t dead_ns;       /* how long the key of a dropped datagram is remembered */
};

/* One fragment, already validated by the caller's header parser. */
struct reasm_frag {
	uint8_t family;  /* 4 or 6 */
	uint8_t proto;   /* IPv4 Protocol; IPv6 Next Header of the Fragment header */
	bool more;       /* MF (IPv4) / M (IPv6) */
	uint32_t id;     /* IPv4 Identification (16 bits) or IPv6 Identification */
	uint32_t offset; /* in bytes: the Fragment Offset field times 8 */
	struct ip_addr src;
	struct ip_addr dst;
	/* The fragment's payload: bytes after the IPv4 header / after the
	 * IPv6 Fragment header, link padding already trimmed. */
	const uint8_t *data;
	size_t data_len;
	/* Only read when offset == 0. IPv4: the whole header as received,
	 * options included (hdr_len == IHL * 4). IPv6: the fixed header plus
	 * every extension header before the Fragment header. */
	const uint8_t *hdr;
	size_t hdr_len;
	/* IPv6 only, offset == 0: where in hdr the Next Header byte holding 44
	 * (Fragment) is: 6 when the Fragment header follows the fixed header. */
	size_t hdr_nh_off;
};

enum reasm_status {
	REASM_NEED_MORE = 0, /* kept; the datagram is not complete yet */
	REASM_COMPLETE,      /* out->datagram is the whole datagram */
	REASM_DROPPED,       /* the fragment was dropped: out->reason says why */
};

enum reasm_drop {
	REASM_DROP_NONE = 0,
	REASM_DROP_BAD_FRAGMENT,   /* family, id width, offset or MF length not a multiple
				    * of 8, empty fragment */
	REASM_DROP_BAD_HEADER,     /* first fragment's header unusable or too long */
	REASM_DROP_TOO_LARGE,      /* datagram would exceed 65535 */
	REASM_DROP_TINY,           /* transport header split or overlapped (RFC 1858) */
	REASM_DROP_OVERLAP,        /* overlaps another fragment with different data */
	REASM_DROP_INCONSISTENT,   /* conflicting end of datagram */
	REASM_DROP_TOO_MANY_FRAGS, /* more than REASM_MAX_FRAGS */
	REASM_DROP_DUPLICATE,      /* exact copy of a fragment already held */
	REASM_DROP_DEAD,           /* its datagram was dropped recently */
	REASM_DROP_NO_MEMORY,      /* does not fit even with everything else evicted */
	REASM_DROP_COUNT
};

struct reasm_result {
	enum reasm_status status;
	enum reasm_drop reason; /* REASM_DROPPED only */
	/* REASM_COMPLETE only: the datagram with its header rebuilt (IPv4:
	 * total length, MF/offset cleared, DF kept, checksum; IPv6: payload
	 * length, Fragment header removed, Next Header fixed). Owned by the
	 * reasm instance, valid until the next call on it. */
	const uint8_t *datagram;
	size_t len;
	size_t hdr_len; /* header bytes before the transport header */
	uint8_t proto;  /* transport protocol / next header after hdr_len */
};

struct reasm_stats {
	uint64_t completed;  /* datagrams reassembled (atomic ones included) */
	uint64_t evicted;    /* incomplete datagrams thrown out for room */
	uint64_t timed_out;  /* incomplete datagrams dropped for age */
	uint64_t poisoned;   /* datagrams dropped whole for a bad fragment */
	uint64_t dropped[REASM_DROP_COUNT]; /* fragments, by reason */
};

/* Expired datagram report (reasm_expire). When the offset-0 fragment had
 * arrived, hdr/data give its header and its first data bytes (at least
 * the transport header, at most REASM_BLOCK_SIZE), enough for an ICMP
 * time-exceeded (code 1) quote; otherwise hdr is NULL and no ICMP is due. */
struct reasm_expired {
	uint8_t family;
	struct ip_addr src;
	struct ip_addr dst;
	const uint8_t *hdr;
	size_t hdr_len;
	const uint8_t *data;
	size_t data_len;
};

typedef void (*reasm_expired_fn)(void *ctx, const struct reasm_expired *e);

struct reasm_dgram;
struct reasm_dead;

/* The instance. Fields are private to reasm.c; read stats directly. */
struct reasm {
	struct reasm_config cfg;
	struct reasm_dgram *dgrams;  /* cfg.max_datagrams slots */
	struct reasm_dead *dead;     /* cfg.max_datagrams remembered keys */
	uint8_t *blocks;             /* nblocks * REASM_BLOCK_SIZE */
	uint16_t *block_next;        /* free list links */
	uint8_t *out;                /* REASM_OUT_MAX */
	uint32_t nblocks;
	uint32_t free_blocks;
	uint16_t free_head;
	uint32_t in_progress;
	uint32_t dead_next;
	uint64_t seq;
	struct reasm_stats stats;
};

void reasm_config_default(struct reasm_config *cfg);

/* Bytes of storage reasm_init needs for this budget and datagram count
 * (0 when they are out of range). */
size_t reasm_memory_needed(size_t budget_bytes, uint32_t max_datagrams);

/* Sets r up over mem (any alignment). False when the configuration is out of
 * range (budget below one block or above REASM_MAX_BUDGET, max_datagrams 0 or
 * above REASM_MAX_DATAGRAMS_LIMIT, zero timeout) or mem_len is too small. */
bool reasm_init(struct reasm *r, const struct reasm_config *cfg, void *mem, size_t mem_len);

/* Offers one fragment. Always consumes it (copies what it keeps); returns
 * the status also stored in out->status. Work is bounded by max_datagrams
 * and REASM_MAX_FRAGS. */
enum reasm_status reasm_add(struct reasm *r, const struct reasm_frag *f, uint64_t now_ns,
			    struct reasm_result *out);

/* Drops every incomplete datagram older than the timeout, reporting each to
 * cb when cb is not NULL (the report is valid during the call only), and
 * forgets expired dead keys. Bounded by max_datagrams. Returns how many
 * datagrams expired. */
size_t reasm_expire(struct reasm *r, uint64_t now_ns, reasm_expired_fn cb, void *ctx);

/* Incomplete datagrams held, and payload bytes (in whole blocks) in use. */
uint32_t reasm_in_progress(const struct reasm *r);
size_t reasm_bytes_in_use(const struct reasm *r);

/* "overlap", "tiny", ... for logs. */
const char *reasm_drop_str(enum reasm_drop reason);

#endif
