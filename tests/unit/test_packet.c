/* test_packet.c — whole-frame parse into struct packet, embedded datagrams
 * of ICMP errors, L4 checksum verification/skip/completion, frame builders.
 * Frames are laid out by hand here from the RFC layouts; checksums are
 * computed by an independent byte-wise implementation. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "net/packet.h"

static const uint8_t MAC_A[6] = {0x00, 0x16, 0x3e, 0x5e, 0x6c, 0x00};
static const uint8_t MAC_FW[6] = {0xfe, 0xff, 0xff, 0xff, 0xff, 0xff};
static const uint8_t S4[4] = {10, 137, 0, 5};
static const uint8_t D4[4] = {93, 184, 216, 34};
static const uint8_t S6[16] = {0xfd, 0x09, 0x24, 0xef, 0x4c, 0x75, [15] = 5};
static const uint8_t D6[16] = {0x20, 0x01, 0x0d, 0xb8, [15] = 0x34};

/* ---- independent helpers -------------------------------------------- */

static uint32_t ref_add(uint32_t s, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		s += (i & 1) ? p[i] : (uint32_t)p[i] << 8;
	return s;
}

static uint16_t ref_fold(uint32_t s)
{
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/* Sum over the pseudo-header + l4 as it stands (0 when correct). */
static uint16_t ref_l4_sum(bool v6, uint8_t proto, const uint8_t *src, const uint8_t *dst,
			   const uint8_t *l4, size_t n)
{
	uint8_t ph[40] = {0};
	size_t phl;
	if (proto == IP_PROTO_ICMP) {
		phl = 0;
	} else if (v6) {
		memcpy(ph, src, 16);
		memcpy(ph + 16, dst, 16);
		ph[34] = (uint8_t)(n >> 8);
		ph[35] = (uint8_t)n;
		ph[39] = proto;
		phl = 40;
	} else {
		memcpy(ph, src, 4);
		memcpy(ph + 4, dst, 4);
		ph[9] = proto;
		put16(ph + 10, (uint16_t)n);
		phl = 12;
	}
	uint32_t s = ref_add(0, ph, phl);
	return ref_fold(ref_add(s, l4, n));
}

static void ref_set_l4(bool v6, uint8_t proto, const uint8_t *src, const uint8_t *dst,
		       uint8_t *l4, size_t n, size_t csum_at)
{
	put16(l4 + csum_at, 0);
	uint16_t c = ref_l4_sum(v6, proto, src, dst, l4, n);
	if (proto == IP_PROTO_UDP && c == 0)
		c = 0xffff;
	put16(l4 + csum_at, c);
}

static size_t eth_hdr(uint8_t *f, uint16_t type, bool vlan)
{
	memcpy(f, MAC_FW, 6);
	memcpy(f + 6, MAC_A, 6);
	if (vlan) {
		put16(f + 12, 0x8100);
		put16(f + 14, 42);
		put16(f + 16, type);
		return 18;
	}
	put16(f + 12, type);
	return 14;
}

/* Ethernet + IPv4 (no options, DF) around l4; returns the frame length. */
static size_t frame4(uint8_t *f, bool vlan, uint8_t proto, const uint8_t *l4, size_t n)
{
	size_t e = eth_hdr(f, 0x0800, vlan);
	uint8_t *h = f + e;
	memset(h, 0, 20);
	h[0] = 0x45;
	put16(h + 2, (uint16_t)(20 + n));
	put16(h + 4, 0x1c46);
	h[6] = 0x40;
	h[8] = 64;
	h[9] = proto;
	memcpy(h + 12, S4, 4);
	memcpy(h + 16, D4, 4);
	put16(h + 10, ref_fold(ref_add(0, h, 20)));
	memcpy(h + 20, l4, n);
	return e + 20 + n;
}

/* Ethernet + IPv6 + (optional raw extension bytes) around l4. */
static size_t frame6(uint8_t *f, uint8_t first_nh, const uint8_t *ext, size_t ext_len,
		     const uint8_t *l4, size_t n, uint8_t hop_limit)
{
	size_t e = eth_hdr(f, 0x86dd, false);
	uint8_t *h = f + e;
	memset(h, 0, 40);
	h[0] = 0x60;
	put16(h + 4, (uint16_t)(ext_len + n));
	h[6] = first_nh;
	h[7] = hop_limit;
	memcpy(h + 8, S6, 16);
	memcpy(h + 24, D6, 16);
	if (ext_len)
		memcpy(h + 40, ext, ext_len);
	memcpy(h + 40 + ext_len, l4, n);
	return e + 40 + ext_len + n;
}

static size_t udp_msg(uint8_t *u, bool v6, uint16_t sp, uint16_t dp, size_t data_len)
{
	put16(u, sp);
	put16(u + 2, dp);
	put16(u + 4, (uint16_t)(8 + data_len));
	for (size_t i = 0; i < data_len; i++)
		u[8 + i] = (uint8_t)(i * 7 + 1);
	ref_set_l4(v6, IP_PROTO_UDP, v6 ? S6 : S4, v6 ? D6 : D4, u, 8 + data_len, 6);
	return 8 + data_len;
}

static size_t tcp_syn(uint8_t *t, bool v6)
{
	memset(t, 0, 24);
	put16(t, 40000);
	put16(t + 2, 443);
	t[4] = 0xde;
	t[5] = 0xad;
	t[12] = 0x60;
	t[13] = TCP_SYN;
	put16(t + 14, 65535);
	t[20] = 2;
	t[21] = 4;
	put16(t + 22, 1460);
	ref_set_l4(v6, IP_PROTO_TCP, v6 ? S6 : S4, v6 ? D6 : D4, t, 24, 16);
	return 24;
}

static enum pkt_result parse_copy(const uint8_t *f, size_t n, uint32_t flags, struct packet *p)
{
	uint8_t *c = malloc(n ? n : 1);
	memcpy(c, f, n);
	enum pkt_result r = packet_parse_flags(c, n, flags, p);
	free(c);
	return r;
}

/* Every prefix of a valid frame is refused, read within bounds (ASan). */
static void all_truncations_fail(const uint8_t *f, size_t n)
{
	struct packet p;
	for (size_t i = 0; i < n; i++)
		assert_int_not_equal(parse_copy(f, i, 0, &p), PKT_OK);
}

/* ---- tests ----------------------------------------------------------- */

static void test_ipv4_udp(void **state)
{
	(void)state;
	uint8_t u[64], f[128];
	size_t un = udp_msg(u, false, 5353, 53, 11);
	size_t n = frame4(f, false, IP_PROTO_UDP, u, un);
	struct packet p;
	assert_int_equal(packet_parse(f, n, &p), PKT_OK);
	assert_int_equal(p.family, PACKET_IPV4);
	assert_int_equal(p.ethertype, ETHERTYPE_IPV4);
	assert_int_equal(p.l3_off, 14);
	assert_int_equal(p.l3_len, 20 + un);
	assert_int_equal(p.l3_hdr_len, 20);
	assert_true(ip_is_v4(&p.src));
	assert_memory_equal(ip_v4_bytes(&p.src), S4, 4);
	assert_memory_equal(ip_v4_bytes(&p.dst), D4, 4);
	assert_memory_equal(f + p.src_off, S4, 4);
	assert_memory_equal(f + p.dst_off, D4, 4);
	assert_int_equal(p.protocol, IP_PROTO_UDP);
	assert_int_equal(f[p.proto_off], IP_PROTO_UDP);
	assert_int_equal(p.ttl, 64);
	assert_int_equal(f[p.ttl_off], 64);
	assert_int_equal(p.ip_csum_off, 14 + 10);
	assert_true(p.dont_fragment);
	assert_false(p.is_fragment);
	assert_true(p.has_l4);
	assert_int_equal(p.l4_off, 34);
	assert_int_equal(p.l4_len, un);
	assert_int_equal(p.l4_csum_off, 34 + 6);
	assert_int_equal(p.src_port, 5353);
	assert_int_equal(p.dst_port, 53);
	all_truncations_fail(f, n);

	/* Ethernet padding after the datagram. */
	uint8_t padded[128] = {0};
	memcpy(padded, f, n);
	assert_int_equal(parse_copy(padded, n + 20, 0, &p), PKT_OK);
	assert_int_equal(p.l3_len, 20 + un);
	assert_int_equal(p.l4_len, un);

	/* Bad L4 checksum: refused, unless skipped (csum_blank). */
	f[n - 1] ^= 0x10;
	assert_int_equal(parse_copy(f, n, 0, &p), PKT_BAD_L4_CHECKSUM);
	assert_int_equal(parse_copy(f, n, PACKET_SKIP_L4_CSUM, &p), PKT_OK);
	/* Completing it gives the independently computed value. */
	assert_true(packet_fill_l4_checksum(f, n, &p));
	assert_int_equal(ref_l4_sum(false, IP_PROTO_UDP, S4, D4, f + 34, un), 0);
	assert_int_equal(packet_parse(f, n, &p), PKT_OK);

	/* Zero checksum means none over IPv4. */
	put16(f + 34 + 6, 0);
	assert_int_equal(packet_parse(f, n, &p), PKT_OK);
}

static void test_ipv4_header_errors(void **state)
{
	(void)state;
	uint8_t u[64], f[128];
	size_t un = udp_msg(u, false, 1, 2, 4);
	size_t n = frame4(f, false, IP_PROTO_UDP, u, un);
	struct packet p;
	uint8_t g[128];

	memcpy(g, f, n);
	g[14] = 0x65;
	assert_int_equal(parse_copy(g, n, 0, &p), PKT_BAD_VERSION);
	memcpy(g, f, n);
	g[14] = 0x44;
	assert_int_equal(parse_copy(g, n, 0, &p), PKT_BAD_IHL);
	memcpy(g, f, n);
	g[14 + 8] = 63; /* TTL changed, checksum stale */
	assert_int_equal(parse_copy(g, n, 0, &p), PKT_BAD_CHECKSUM);
	/* Total length lies (checksum fixed): longer than the frame. */
	memcpy(g, f, n);
	put16(g + 16, (uint16_t)(n - 14 + 1));
	put16(g + 24, 0);
	put16(g + 24, ref_fold(ref_add(0, g + 14, 20)));
	assert_int_equal(parse_copy(g, n, 0, &p), PKT_TRUNCATED);
	/* Shorter than the UDP length says. */
	put16(g + 16, (uint16_t)(n - 14 - 1));
	put16(g + 24, 0);
	put16(g + 24, ref_fold(ref_add(0, g + 14, 20)));
	assert_int_equal(parse_copy(g, n, 0, &p), PKT_BAD_L4_LENGTH);
	/* UDP length shorter than the IP payload: the rest is not UDP. */
	memcpy(g, f, n);
	put16(g + 34 + 4, 8);
	ref_set_l4(false, IP_PROTO_UDP, S4, D4, g + 34, 8, 6);
	assert_int_equal(parse_copy(g, n, 0, &p), PKT_OK);
	assert_int_equal(p.l4_len, 8);
}

static void test_ipv4_tcp_vlan(void **state)
{
	(void)state;
	uint8_t t[64], f[128];
	size_t tn = tcp_syn(t, false);
	size_t n = frame4(f, true, IP_PROTO_TCP, t, tn);
	struct packet p;
	assert_int_equal(packet_parse(f, n, &p), PKT_OK);
	assert_true(p.has_vlan);
	assert_int_equal(p.vlan_tci, 42);
	assert_int_equal(p.l3_off, 18);
	assert_int_equal(p.protocol, IP_PROTO_TCP);
	assert_int_equal(p.tcp_flags, TCP_SYN);
	assert_int_equal(p.tcp_seq, 0xdead0000);
	assert_int_equal(p.l4_hdr_len, 24);
	assert_int_equal(p.src_port, 40000);
	assert_int_equal(p.dst_port, 443);
	assert_int_equal(p.l4_csum_off, 18 + 20 + 16);
	all_truncations_fail(f, n);

	/* Data offset past the segment. */
	f[18 + 20 + 12] = 0x70;
	assert_int_equal(parse_copy(f, n, PACKET_SKIP_L4_CSUM, &p), PKT_BAD_TCP_OFFSET);
	f[18 + 20 + 12] = 0x40;
	assert_int_equal(parse_copy(f, n, PACKET_SKIP_L4_CSUM, &p), PKT_BAD_TCP_OFFSET);
	f[18 + 20 + 12] = 0x60;

	/* csum_blank as Linux netfront sends it: the field holds the folded
	 * pseudo-header sum only. */
	uint8_t ph[12];
	memcpy(ph, S4, 4);
	memcpy(ph + 4, D4, 4);
	ph[8] = 0;
	ph[9] = IP_PROTO_TCP;
	put16(ph + 10, (uint16_t)tn);
	put16(f + 18 + 20 + 16, (uint16_t)~ref_fold(ref_add(0, ph, 12)));
	assert_int_equal(parse_copy(f, n, 0, &p), PKT_BAD_L4_CHECKSUM);
	assert_int_equal(packet_parse_flags(f, n, PACKET_SKIP_L4_CSUM, &p), PKT_OK);
	assert_true(packet_fill_l4_checksum(f, n, &p));
	assert_int_equal(packet_parse(f, n, &p), PKT_OK);
	assert_int_equal(ref_l4_sum(false, IP_PROTO_TCP, S4, D4, f + 38, tn), 0);
}

static void test_ipv6_udp_and_addresses(void **state)
{
	(void)state;
	uint8_t u[64], f[160];
	size_t un = udp_msg(u, true, 546, 547, 9);
	size_t n = frame6(f, IP_PROTO_UDP, NULL, 0, u, un, 64);
	struct packet p;
	assert_int_equal(packet_parse(f, n, &p), PKT_OK);
	assert_int_equal(p.family, PACKET_IPV6);
	assert_false(ip_is_v4(&p.src));
	assert_memory_equal(p.src.b, S6, 16);
	assert_memory_equal(p.dst.b, D6, 16);
	assert_int_equal(p.ttl_off, 14 + 7);
	assert_int_equal(p.ip_csum_off, 0);
	assert_int_equal(p.l4_off, 54);
	assert_int_equal(p.src_port, 546);
	all_truncations_fail(f, n);

	/* A zero UDP checksum is invalid over IPv6. */
	put16(f + 54 + 6, 0);
	assert_int_equal(parse_copy(f, n, 0, &p), PKT_BAD_L4_CHECKSUM);
	assert_int_equal(parse_copy(f, n, PACKET_SKIP_L4_CSUM, &p), PKT_OK);
	assert_true(packet_fill_l4_checksum(f, n, &p));
	assert_int_equal(ref_l4_sum(true, IP_PROTO_UDP, S6, D6, f + 54, un), 0);
	assert_int_equal(packet_parse(f, n, &p), PKT_OK);

	/* IPv4-mapped addresses inside IPv6 would alias IPv4 ones. */
	static const uint8_t mapped[12] = {[10] = 0xff, [11] = 0xff};
	memcpy(f + 14 + 8, mapped, 12);
	assert_int_equal(parse_copy(f, n, PACKET_SKIP_L4_CSUM, &p), PKT_BAD_ADDRESS);
}

static void test_ipv6_ext_tcp(void **state)
{
	(void)state;
	/* Hop-by-hop (PadN) then destination options, then TCP. */
	uint8_t ext[16] = {IP_PROTO_DSTOPTS, 0, 1, 4, 0, 0, 0, 0, IP_PROTO_TCP, 0, 1, 4, 0, 0, 0, 0};
	uint8_t t[64], f[200];
	size_t tn = tcp_syn(t, true);
	size_t n = frame6(f, IP_PROTO_HOPOPTS, ext, sizeof(ext), t, tn, 64);
	struct packet p;
	assert_int_equal(packet_parse(f, n, &p), PKT_OK);
	assert_int_equal(p.protocol, IP_PROTO_TCP);
	assert_int_equal(p.ext_count, 2);
	assert_int_equal(p.l3_hdr_len, 56);
	assert_int_equal(p.l4_off, 14 + 56);
	assert_int_equal(p.proto_off, 14 + 48);
	assert_int_equal(p.dst_port, 443);
	all_truncations_fail(f, n);
}

static void test_fragments(void **state)
{
	(void)state;
	uint8_t u[64], f[160];
	struct packet p;
	/* IPv4 first fragment: 16 bytes of a longer UDP datagram. */
	size_t un = udp_msg(u, false, 7, 9, 40);
	size_t n = frame4(f, false, IP_PROTO_UDP, u, 16);
	f[14 + 6] = 0x20;
	put16(f + 24, 0);
	put16(f + 24, ref_fold(ref_add(0, f + 14, 20)));
	assert_int_equal(packet_parse(f, n, &p), PKT_OK);
	assert_true(p.is_fragment);
	assert_true(p.first_fragment);
	assert_true(p.more_fragments);
	assert_int_equal(p.frag_id, 0x1c46);
	assert_true(p.has_l4);
	assert_int_equal(p.src_port, 7);
	assert_false(packet_fill_l4_checksum(f, n, &p));
	/* Second fragment: no L4 view, whatever its bytes look like. */
	n = frame4(f, false, IP_PROTO_UDP, u + 16, un - 16);
	put16(f + 14 + 6, 2);
	put16(f + 24, 0);
	put16(f + 24, ref_fold(ref_add(0, f + 14, 20)));
	assert_int_equal(packet_parse(f, n, &p), PKT_OK);
	assert_true(p.is_fragment);
	assert_false(p.first_fragment);
	assert_false(p.has_l4);
	assert_int_equal(p.frag_offset, 16);
	assert_int_equal(p.l4_off, 34);
	assert_int_equal(p.l4_len, un - 16);
	assert_int_equal(p.src_port, 0);

	/* IPv6 non-first fragment. */
	uint8_t fh[8] = {IP_PROTO_UDP, 0, 0, 16 | 1, 0, 0, 0x12, 0x34};
	n = frame6(f, IP_PROTO_FRAGMENT, fh, 8, u, 16, 64);
	assert_int_equal(packet_parse(f, n, &p), PKT_OK);
	assert_true(p.is_fragment);
	assert_false(p.first_fragment);
	assert_true(p.more_fragments);
	assert_int_equal(p.frag_offset, 16);
	assert_int_equal(p.frag_id, 0x1234);
	assert_int_equal(p.frag_hdr_off, 54);
	assert_false(p.has_l4);
	assert_int_equal(p.l4_off, 62);
}

static void test_icmp_echo_reply_in_place(void **state)
{
	(void)state;
	uint8_t m[8 + 32] = {ICMP_ECHO_REQUEST, 0, 0, 0, 0x4d, 0x2a, 0, 3};
	for (int i = 0; i < 32; i++)
		m[8 + i] = (uint8_t)i;
	ref_set_l4(false, IP_PROTO_ICMP, NULL, NULL, m, sizeof(m), 2);
	uint8_t f[128];
	size_t n = frame4(f, false, IP_PROTO_ICMP, m, sizeof(m));
	struct packet p, r;
	assert_int_equal(packet_parse(f, n, &p), PKT_OK);
	assert_true(p.icmp_is_query);
	assert_int_equal(p.icmp_type, ICMP_ECHO_REQUEST);
	assert_int_equal(p.icmp_id, 0x4d2a);
	assert_int_equal(p.icmp_seq, 3);
	all_truncations_fail(f, n);

	size_t rn = packet_build_echo_reply(f, sizeof(f), f, &p, MAC_FW);
	assert_int_equal(rn, n);
	assert_int_equal(packet_parse(f, rn, &r), PKT_OK);
	assert_int_equal(r.icmp_type, ICMP_ECHO_REPLY);
	assert_int_equal(r.icmp_id, 0x4d2a);
	assert_memory_equal(f, MAC_A, 6);
	assert_memory_equal(f + 6, MAC_FW, 6);
	assert_memory_equal(ip_v4_bytes(&r.src), D4, 4);
	assert_memory_equal(ip_v4_bytes(&r.dst), S4, 4);
	assert_memory_equal(f + r.l4_off + 8, m + 8, 32);
	assert_int_equal(ref_fold(ref_add(0, f + 14, 20)), 0);
	assert_int_equal(ref_l4_sum(false, IP_PROTO_ICMP, NULL, NULL, f + 34, rn - 34), 0);
	/* A reply is not answered. */
	assert_int_equal(packet_build_echo_reply(f, sizeof(f), f, &r, MAC_FW), 0);

	/* ICMPv6 echo, into another buffer. */
	uint8_t m6[12] = {ICMP6_ECHO_REQUEST, 0, 0, 0, 0, 1, 0, 2, 'a', 'b', 'c', 'd'};
	ref_set_l4(true, IP_PROTO_ICMPV6, S6, D6, m6, sizeof(m6), 2);
	n = frame6(f, IP_PROTO_ICMPV6, NULL, 0, m6, sizeof(m6), 64);
	assert_int_equal(packet_parse(f, n, &p), PKT_OK);
	uint8_t out[128];
	assert_int_equal(packet_build_echo_reply(out, n - 1, f, &p, MAC_FW), 0);
	rn = packet_build_echo_reply(out, sizeof(out), f, &p, MAC_FW);
	assert_int_equal(rn, n);
	assert_int_equal(packet_parse(out, rn, &r), PKT_OK);
	assert_int_equal(r.icmp_type, ICMP6_ECHO_REPLY);
	assert_memory_equal(r.src.b, D6, 16);
	assert_int_equal(ref_l4_sum(true, IP_PROTO_ICMPV6, D6, S6, out + 54, rn - 54), 0);
}

static void test_icmp4_error_embedded(void **state)
{
	(void)state;
	/* The offending datagram: S4 -> D4 UDP 5353 -> 53 with 100 bytes. */
	uint8_t u[128], orig[200];
	size_t un = udp_msg(u, false, 5353, 53, 100);
	size_t on = frame4(orig, false, IP_PROTO_UDP, u, un);
	struct packet_addrs a;
	memcpy(a.eth_dst, MAC_A, 6);
	memcpy(a.eth_src, MAC_FW, 6);
	const uint8_t gw[4] = {10, 137, 0, 1};
	a.src = ip_from_v4(gw);
	a.dst = ip_from_v4(S4);
	uint8_t f[200];
	size_t n = packet_build_icmp_error(f, sizeof(f), &a, ICMP_DEST_UNREACH,
					   ICMP_CODE_ADMIN_PROHIBITED, 0, orig + 14, on - 14);
	assert_int_equal(n, 14 + 20 + 8 + 28);
	assert_int_equal(ref_fold(ref_add(0, f + 14, 20)), 0);
	assert_int_equal(ref_l4_sum(false, IP_PROTO_ICMP, NULL, NULL, f + 34, n - 34), 0);
	struct packet p, in;
	assert_int_equal(packet_parse(f, n, &p), PKT_OK);
	assert_true(p.icmp_is_error);
	assert_int_equal(p.icmp_code, ICMP_CODE_ADMIN_PROHIBITED);
	assert_int_equal(p.icmp_inner_off, 42);
	assert_int_equal(p.icmp_inner_len, 28);
	assert_int_equal(p.ttl, PACKET_TTL);
	all_truncations_fail(f, n);

	assert_int_equal(packet_parse_embedded(f, n, &p, &in), PKT_OK);
	assert_int_equal(in.family, PACKET_IPV4);
	assert_int_equal(in.l3_off, 42);
	assert_int_equal(in.l3_len, 28);
	assert_memory_equal(ip_v4_bytes(&in.src), S4, 4);
	assert_memory_equal(ip_v4_bytes(&in.dst), D4, 4);
	assert_int_equal(in.protocol, IP_PROTO_UDP);
	assert_true(in.has_l4);
	assert_int_equal(in.src_port, 5353);
	assert_int_equal(in.dst_port, 53);
	assert_int_equal(in.l4_off, 62);
	assert_int_equal(in.l4_len, 8);
	assert_int_equal(in.l4_csum_off, 62 + 6);
	assert_int_equal(in.ip_csum_off, 42 + 10);
	assert_memory_equal(f + in.src_off, S4, 4);

	/* Frame padding after the ICMP message is not part of the quote. */
	uint8_t padded[200] = {0};
	memcpy(padded, f, n);
	assert_int_equal(packet_parse(padded, n + 30, &p), PKT_OK);
	assert_int_equal(packet_parse_embedded(padded, n + 30, &p, &in), PKT_OK);
	assert_int_equal(in.l4_len, 8);

	/* An inner header with a bad IHL. */
	f[42] = 0x43;
	ref_set_l4(false, IP_PROTO_ICMP, NULL, NULL, f + 34, n - 34, 2);
	assert_int_equal(packet_parse(f, n, &p), PKT_OK);
	assert_int_equal(packet_parse_embedded(f, n, &p, &in), PKT_BAD_IHL);
	/* An inner header with options that leave no 8 bytes of L4. */
	f[42] = 0x46;
	memset(f + 62, 1, 4); /* NOP options */
	ref_set_l4(false, IP_PROTO_ICMP, NULL, NULL, f + 34, n - 34, 2);
	assert_int_equal(packet_parse(f, n, &p), PKT_OK);
	assert_int_equal(packet_parse_embedded(f, n, &p, &in), PKT_BAD_ICMP);
	/* Not an error at all. */
	p.icmp_is_error = false;
	assert_int_equal(packet_parse_embedded(f, n, &p, &in), PKT_BAD_ICMP);

	/* Time exceeded about an echo request: the inner id is exposed. */
	uint8_t echo[16] = {ICMP_ECHO_REQUEST, 0, 0, 0, 0x33, 0x44, 0, 1};
	ref_set_l4(false, IP_PROTO_ICMP, NULL, NULL, echo, 16, 2);
	on = frame4(orig, false, IP_PROTO_ICMP, echo, 16);
	n = packet_build_icmp_error(f, sizeof(f), &a, ICMP_TIME_EXCEEDED, 0, 0, orig + 14,
				    on - 14);
	assert_int_equal(packet_parse(f, n, &p), PKT_OK);
	assert_int_equal(packet_parse_embedded(f, n, &p, &in), PKT_OK);
	assert_int_equal(in.protocol, IP_PROTO_ICMP);
	assert_true(in.icmp_is_query);
	assert_int_equal(in.icmp_id, 0x3344);
	assert_int_equal(in.l4_csum_off, in.l4_off + 2);

	/* Frag needed carries the MTU. */
	n = packet_build_icmp_error(f, sizeof(f), &a, ICMP_DEST_UNREACH, ICMP_CODE_FRAG_NEEDED,
				    1400, orig + 14, on - 14);
	assert_int_equal(packet_parse(f, n, &p), PKT_OK);
	assert_int_equal(p.icmp_rest, 1400);
	/* Too small a buffer. */
	assert_int_equal(packet_build_icmp_error(f, 14 + 20 + 8 + 27, &a, 3, 4, 0, orig + 14,
						 on - 14), 0);
}

static void test_icmp6_error_embedded(void **state)
{
	(void)state;
	/* Packet too big quoting IPv6 + destination options + TCP, laid out by
	 * hand (RFC 4443 §3.2). */
	uint8_t inner[40 + 8 + 24];
	memset(inner, 0, sizeof(inner));
	inner[0] = 0x60;
	put16(inner + 4, 1400); /* the original was longer than the quote */
	inner[6] = IP_PROTO_DSTOPTS;
	inner[7] = 63;
	memcpy(inner + 8, S6, 16);
	memcpy(inner + 24, D6, 16);
	inner[40] = IP_PROTO_TCP;
	tcp_syn(inner + 48, true);
	uint8_t m[8 + sizeof(inner)] = {ICMP6_PACKET_TOO_BIG, 0, 0, 0, 0, 0, 0x05, 0x00};
	memcpy(m + 8, inner, sizeof(inner));
	/* The error travels D6 -> S6 here: swap for the checksum. */
	uint8_t f[256];
	size_t n = frame6(f, IP_PROTO_ICMPV6, NULL, 0, m, sizeof(m), 64);
	ref_set_l4(true, IP_PROTO_ICMPV6, S6, D6, f + 54, sizeof(m), 2);
	struct packet p, in;
	assert_int_equal(packet_parse(f, n, &p), PKT_OK);
	assert_true(p.icmp_is_error);
	assert_int_equal(p.icmp_rest, 1280);
	assert_int_equal(packet_parse_embedded(f, n, &p, &in), PKT_OK);
	assert_int_equal(in.family, PACKET_IPV6);
	assert_int_equal(in.protocol, IP_PROTO_TCP);
	assert_int_equal(in.l4_off, 62 + 48);
	assert_int_equal(in.src_port, 40000);
	assert_int_equal(in.dst_port, 443);
	assert_int_equal(in.l4_csum_off, in.l4_off + 16);
	assert_int_equal(in.l3_len, sizeof(inner));
	all_truncations_fail(f, n);

	/* Builder: quote capped at the minimum MTU, cross-checked. */
	static uint8_t big[1600], out[1600];
	uint8_t u[8 + 1400];
	size_t un = udp_msg(u, true, 1, 2, 1400);
	size_t bn = frame6(big, IP_PROTO_UDP, NULL, 0, u, un, 64);
	struct packet_addrs a;
	memcpy(a.eth_dst, MAC_A, 6);
	memcpy(a.eth_src, MAC_FW, 6);
	a.src = ip_from_v6(D6);
	a.dst = ip_from_v6(S6);
	n = packet_build_icmp_error(out, sizeof(out), &a, ICMP6_DEST_UNREACH,
				    ICMP6_CODE_ADMIN_PROHIBITED, 0, big + 14, bn - 14);
	assert_int_equal(n, 14 + 1280);
	assert_int_equal(ref_l4_sum(true, IP_PROTO_ICMPV6, D6, S6, out + 54, n - 54), 0);
	assert_int_equal(packet_parse(out, n, &p), PKT_OK);
	assert_int_equal(packet_parse_embedded(out, n, &p, &in), PKT_OK);
	assert_int_equal(in.protocol, IP_PROTO_UDP);
	assert_int_equal(in.src_port, 1);
	assert_int_equal(in.l3_len, 1232);
	/* Mixed families are refused. */
	a.dst = ip_from_v4(S4);
	assert_int_equal(packet_build_icmp_error(out, sizeof(out), &a, 1, 1, 0, big + 14, 100), 0);
}

static void test_neighbour_discovery(void **state)
{
	(void)state;
	uint8_t ns[32] = {ICMP6_NEIGHBOR_SOLICIT};
	memcpy(ns + 8, D6, 16);
	ns[24] = ND_OPT_SOURCE_LLADDR;
	ns[25] = 1;
	memcpy(ns + 26, MAC_A, 6);
	ref_set_l4(true, IP_PROTO_ICMPV6, S6, D6, ns, sizeof(ns), 2);
	uint8_t f[128];
	size_t n = frame6(f, IP_PROTO_ICMPV6, NULL, 0, ns, sizeof(ns), 255);
	struct packet p;
	assert_int_equal(packet_parse(f, n, &p), PKT_OK);
	assert_true(p.icmp_is_nd);
	assert_int_equal(p.icmp_type, ICMP6_NEIGHBOR_SOLICIT);
	assert_memory_equal(f + p.nd_target_off, D6, 16);
	assert_memory_equal(f + p.nd_lladdr_off, MAC_A, 6);
	assert_false(packet_may_send_icmp_error(f, &p));
	all_truncations_fail(f, n);
	/* Hop limit other than 255: it crossed a router, refuse. */
	f[14 + 7] = 254;
	assert_int_equal(parse_copy(f, n, 0, &p), PKT_BAD_ICMP);

	/* The NA we would answer with, in a frame, parses back. */
	uint8_t na[32];
	assert_int_equal(icmp6_build_na(na, sizeof(na), D6, S6, D6,
					ND_NA_SOLICITED | ND_NA_OVERRIDE, MAC_FW), 32);
	n = frame6(f, IP_PROTO_ICMPV6, NULL, 0, na, sizeof(na), 255);
	memcpy(f + 14 + 8, D6, 16);
	memcpy(f + 14 + 24, S6, 16);
	assert_int_equal(packet_parse(f, n, &p), PKT_OK);
	assert_int_equal(p.icmp_type, ICMP6_NEIGHBOR_ADVERT);
	assert_int_equal(p.nd_flags, ND_NA_SOLICITED | ND_NA_OVERRIDE);
	assert_memory_equal(f + p.nd_lladdr_off, MAC_FW, 6);
}

static void test_arp_and_other_ethertypes(void **state)
{
	(void)state;
	uint8_t f[60] = {0};
	size_t e = eth_hdr(f, 0x0806, false);
	assert_int_equal(arp_build(f + e, 28, ARP_OP_REQUEST, MAC_A, S4,
				   (uint8_t[6]){0}, (uint8_t[4]){10, 137, 0, 1}), 28);
	struct packet p;
	assert_int_equal(packet_parse(f, sizeof(f), &p), PKT_OK);
	assert_int_equal(p.family, PACKET_ARP);
	assert_int_equal(p.arp.op, ARP_OP_REQUEST);
	assert_memory_equal(p.arp.spa, S4, 4);
	assert_false(packet_may_send_icmp_error(f, &p));
	all_truncations_fail(f, e + 28);

	put16(f + 12, 0x88cc); /* LLDP */
	assert_int_equal(packet_parse(f, sizeof(f), &p), PKT_UNSUPPORTED);
	/* IPv4 ethertype carrying an IPv6 header. */
	put16(f + 12, 0x0800);
	f[14] = 0x60;
	assert_int_equal(packet_parse(f, sizeof(f), &p), PKT_BAD_VERSION);
}

static void test_other_protocols(void **state)
{
	(void)state;
	uint8_t gre[8] = {0, 0, 0x08, 0x00, 1, 2, 3, 4};
	uint8_t f[128];
	size_t n = frame4(f, false, 47, gre, sizeof(gre));
	struct packet p;
	assert_int_equal(packet_parse(f, n, &p), PKT_OK);
	assert_int_equal(p.protocol, 47);
	assert_false(p.has_l4);
	assert_int_equal(p.l4_len, 8);
	assert_int_equal(p.l4_csum_off, 0);
	assert_false(packet_fill_l4_checksum(f, n, &p));
	assert_int_equal(packet_l4_checksum(&p.src, &p.dst, 47, gre, 8), 0);
	/* ICMPv4 inside IPv6 is opaque, not an ICMP message. */
	n = frame6(f, IP_PROTO_ICMP, NULL, 0, gre, sizeof(gre), 64);
	assert_int_equal(packet_parse(f, n, &p), PKT_OK);
	assert_false(p.has_l4);
}

static void test_may_send_icmp_error(void **state)
{
	(void)state;
	uint8_t u[64], f[128];
	size_t un = udp_msg(u, false, 1, 2, 4);
	size_t n = frame4(f, false, IP_PROTO_UDP, u, un);
	struct packet p;
	assert_int_equal(packet_parse(f, n, &p), PKT_OK);
	assert_true(packet_may_send_icmp_error(f, &p));
	f[0] = 0xff; /* link broadcast */
	assert_false(packet_may_send_icmp_error(f, &p));
	f[0] = MAC_FW[0];
	p.dst.b[12] = 224;
	assert_false(packet_may_send_icmp_error(f, &p));
	p.dst.b[12] = D4[0];
	p.is_fragment = true;
	p.first_fragment = false;
	assert_false(packet_may_send_icmp_error(f, &p));
	p.is_fragment = false;
	p.icmp_is_error = true;
	assert_false(packet_may_send_icmp_error(f, &p));

	n = frame6(f, IP_PROTO_UDP, NULL, 0, u, udp_msg(u, true, 1, 2, 4), 64);
	assert_int_equal(packet_parse(f, n, &p), PKT_OK);
	assert_true(packet_may_send_icmp_error(f, &p));
	p.dst.b[0] = 0xff;
	assert_false(packet_may_send_icmp_error(f, &p));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ipv4_udp),
		cmocka_unit_test(test_ipv4_header_errors),
		cmocka_unit_test(test_ipv4_tcp_vlan),
		cmocka_unit_test(test_ipv6_udp_and_addresses),
		cmocka_unit_test(test_ipv6_ext_tcp),
		cmocka_unit_test(test_fragments),
		cmocka_unit_test(test_icmp_echo_reply_in_place),
		cmocka_unit_test(test_icmp4_error_embedded),
		cmocka_unit_test(test_icmp6_error_embedded),
		cmocka_unit_test(test_neighbour_discovery),
		cmocka_unit_test(test_arp_and_other_ethertypes),
		cmocka_unit_test(test_other_protocols),
		cmocka_unit_test(test_may_send_icmp_error),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
