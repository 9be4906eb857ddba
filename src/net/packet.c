/* packet.c — whole-frame parse to one view, embedded-datagram parse, L4
 * checksums and the frames the firewall originates (ICMP errors, echo
 * replies). Pure functions: never reads past len, never writes past cap,
 * never allocates. */
#include "net/packet.h"

#include "base/byteorder.h"
#include "base/checksum.h"
#include "base/libc.h"

static uint32_t l4_csum_field(uint8_t proto)
{
	switch (proto) {
	case IP_PROTO_TCP:
		return TCP_OFF_CSUM;
	case IP_PROTO_UDP:
		return UDP_OFF_CSUM;
	case IP_PROTO_ICMP:
	case IP_PROTO_ICMPV6:
		return ICMP_OFF_CSUM;
	default:
		return 0;
	}
}

static bool is_v4_family(const struct packet *p)
{
	return p->family == PACKET_IPV4;
}

static uint16_t l4_checksum(bool v4, const struct ip_addr *src, const struct ip_addr *dst,
			    uint8_t proto, const uint8_t *l4, size_t len)
{
	uint32_t field = l4_csum_field(proto);
	if (field == 0 || len < field + 2)
		return 0;
	uint32_t sum;
	if (v4) {
		if (proto == IP_PROTO_ICMPV6 || len > 65535)
			return 0;
		sum = proto == IP_PROTO_ICMP ? 0 :
			csum_pseudo_ipv4(ip_v4_bytes(src), ip_v4_bytes(dst), proto, (uint16_t)len);
	} else {
		if (proto == IP_PROTO_ICMP)
			return 0;
		sum = csum_pseudo_ipv6(src->b, dst->b, proto, (uint32_t)len);
	}
	sum = csum_partial(l4, field, sum);
	sum = csum_partial(l4 + field + 2, len - field - 2, sum);
	uint16_t csum = csum_fold(sum);
	if (proto == IP_PROTO_UDP && csum == 0)
		csum = 0xffff; /* RFC 768: 0 means "no checksum" */
	return csum;
}

uint16_t packet_l4_checksum(const struct ip_addr *src, const struct ip_addr *dst, uint8_t proto,
			    const uint8_t *l4, size_t len)
{
	return l4_checksum(ip_is_v4(src), src, dst, proto, l4, len);
}

/* True when the L4 bytes, checksum field included, sum to zero. */
static bool l4_csum_ok(const struct packet *p, const uint8_t *l4, size_t len)
{
	uint32_t sum = 0;
	if (p->protocol != IP_PROTO_ICMP) {
		if (is_v4_family(p))
			sum = csum_pseudo_ipv4(ip_v4_bytes(&p->src), ip_v4_bytes(&p->dst),
					       p->protocol, (uint16_t)len);
		else
			sum = csum_pseudo_ipv6(p->src.b, p->dst.b, p->protocol, (uint32_t)len);
	}
	return csum_fold(csum_partial(l4, len, sum)) == 0;
}

static void copy_icmp(struct packet *out, const struct icmp_view *v)
{
	out->icmp_type = v->type;
	out->icmp_code = v->code;
	out->icmp_is_query = v->is_query;
	out->icmp_is_error = v->is_error;
	out->icmp_is_nd = v->is_nd;
	out->icmp_id = v->id;
	out->icmp_seq = v->seq;
	out->icmp_rest = v->rest;
	out->icmp_inner_off = v->is_error ? out->l4_off + v->inner_off : 0;
	out->icmp_inner_len = v->inner_len;
	out->nd_target_off = v->nd_target_off ? out->l4_off + v->nd_target_off : 0;
	out->nd_lladdr_off = v->nd_lladdr_off ? out->l4_off + v->nd_lladdr_off : 0;
	out->nd_flags = v->nd_flags;
}

/* The upper-layer header of a whole datagram: lengths and (unless skipped)
 * checksums are checked. */
static enum pkt_result parse_l4(const uint8_t *frame, uint32_t flags, struct packet *out)
{
	const uint8_t *l4 = frame + out->l4_off;
	size_t len = out->l4_len;
	bool verify = !(flags & PACKET_SKIP_L4_CSUM);
	enum pkt_result r;

	switch (out->protocol) {
	case IP_PROTO_TCP: {
		struct tcp_view t;
		r = tcp_parse(l4, len, &t);
		if (r != PKT_OK)
			return r;
		if (verify && !l4_csum_ok(out, l4, len))
			return PKT_BAD_L4_CHECKSUM;
		out->src_port = t.sport;
		out->dst_port = t.dport;
		out->tcp_flags = t.flags;
		out->tcp_seq = t.seq;
		out->tcp_ack = t.ack;
		out->l4_hdr_len = t.hdr_len;
		break;
	}
	case IP_PROTO_UDP: {
		struct udp_view u;
		r = udp_parse(l4, len, &u);
		if (r != PKT_OK)
			return r;
		out->l4_len = u.len;
		if (verify) {
			/* RFC 768: 0 = none, IPv4 only; RFC 8200 §8.1: mandatory. */
			if (u.csum == 0) {
				if (!is_v4_family(out))
					return PKT_BAD_L4_CHECKSUM;
			} else if (!l4_csum_ok(out, l4, u.len)) {
				return PKT_BAD_L4_CHECKSUM;
			}
		}
		out->src_port = u.sport;
		out->dst_port = u.dport;
		out->l4_hdr_len = UDP_HDR_LEN;
		break;
	}
	case IP_PROTO_ICMP:
	case IP_PROTO_ICMPV6: {
		struct icmp_view v;
		bool v4 = is_v4_family(out);
		if (v4 != (out->protocol == IP_PROTO_ICMP))
			return PKT_OK; /* ICMP over IPv6 or ICMPv6 over IPv4: opaque */
		if (v4)
			r = icmp4_parse(l4, len, verify, &v);
		else
			r = icmp6_parse(l4, len, out->src.b, out->dst.b, verify, &v);
		if (r != PKT_OK)
			return r;
		/* RFC 4861 §6.1, §7.1: ND that crossed a router is forged. */
		if (v.is_nd && out->ttl != 255)
			return PKT_BAD_ICMP;
		copy_icmp(out, &v);
		out->l4_hdr_len = ICMP_HDR_LEN;
		break;
	}
	default:
		return PKT_OK;
	}
	out->has_l4 = true;
	out->l4_csum_off = out->l4_off + l4_csum_field(out->protocol);
	return PKT_OK;
}

/* A first fragment: the header is read when it fits, nothing is checked
 * that needs the whole datagram, and a header that does not fit is no
 * error (reassembly will tell). */
static void parse_l4_partial(const uint8_t *frame, struct packet *out)
{
	const uint8_t *l4 = frame + out->l4_off;
	size_t len = out->l4_len;

	switch (out->protocol) {
	case IP_PROTO_TCP: {
		struct tcp_view t;
		if (tcp_parse(l4, len, &t) != PKT_OK)
			return;
		out->src_port = t.sport;
		out->dst_port = t.dport;
		out->tcp_flags = t.flags;
		out->tcp_seq = t.seq;
		out->tcp_ack = t.ack;
		out->l4_hdr_len = t.hdr_len;
		break;
	}
	case IP_PROTO_UDP:
		if (len < UDP_HDR_LEN)
			return;
		out->src_port = load_be16(l4);
		out->dst_port = load_be16(l4 + 2);
		out->l4_hdr_len = UDP_HDR_LEN;
		break;
	case IP_PROTO_ICMP:
	case IP_PROTO_ICMPV6: {
		struct icmp_view v;
		bool v4 = is_v4_family(out);
		if (v4 != (out->protocol == IP_PROTO_ICMP))
			return;
		enum pkt_result r = v4 ? icmp4_parse(l4, len, false, &v) :
			icmp6_parse(l4, len, out->src.b, out->dst.b, false, &v);
		if (r != PKT_OK)
			return;
		copy_icmp(out, &v);
		out->l4_hdr_len = ICMP_HDR_LEN;
		break;
	}
	default:
		return;
	}
	out->has_l4 = true;
	uint32_t field = l4_csum_field(out->protocol);
	if (field + 2 <= len)
		out->l4_csum_off = out->l4_off + field;
}

static void fill_ipv4(const uint8_t *frame, const struct ipv4_view *v, struct packet *out)
{
	uint32_t l3 = out->l3_off;
	out->family = PACKET_IPV4;
	out->l3_hdr_len = v->hdr_len;
	out->src = ip_from_v4(frame + l3 + IPV4_OFF_SRC);
	out->dst = ip_from_v4(frame + l3 + IPV4_OFF_DST);
	out->src_off = l3 + IPV4_OFF_SRC;
	out->dst_off = l3 + IPV4_OFF_DST;
	out->protocol = v->proto;
	out->proto_off = l3 + IPV4_OFF_PROTO;
	out->tos = v->tos;
	out->ttl = v->ttl;
	out->ttl_off = l3 + IPV4_OFF_TTL;
	out->ip_csum_off = l3 + IPV4_OFF_CSUM;
	out->is_fragment = v->mf || v->frag_off != 0;
	out->first_fragment = out->is_fragment && v->frag_off == 0;
	out->more_fragments = v->mf;
	out->dont_fragment = v->df;
	out->frag_offset = v->frag_off;
	out->frag_id = v->id;
	out->l4_off = l3 + v->hdr_len;
}

static void fill_ipv6(const uint8_t *frame, const struct ipv6_view *v, struct packet *out)
{
	uint32_t l3 = out->l3_off;
	out->family = PACKET_IPV6;
	out->l3_hdr_len = v->l4_off;
	out->src = ip_from_v6(frame + l3 + IPV6_OFF_SRC);
	out->dst = ip_from_v6(frame + l3 + IPV6_OFF_DST);
	out->src_off = l3 + IPV6_OFF_SRC;
	out->dst_off = l3 + IPV6_OFF_DST;
	out->protocol = v->proto;
	out->proto_off = l3 + v->proto_nh_off;
	out->tos = v->traffic_class;
	out->ttl = v->hop_limit;
	out->ttl_off = l3 + IPV6_OFF_HOP_LIMIT;
	out->ip_csum_off = 0;
	out->ext_count = v->ext_count;
	out->is_fragment = v->has_frag_hdr && (v->mf || v->frag_off != 0);
	out->first_fragment = out->is_fragment && v->frag_off == 0;
	out->more_fragments = v->mf;
	out->frag_offset = v->frag_off;
	out->frag_id = v->frag_id;
	out->frag_hdr_off = v->has_frag_hdr ? l3 + v->frag_hdr_off : 0;
	out->l4_off = l3 + v->l4_off;
}

enum pkt_result packet_parse_flags(const uint8_t *frame, size_t len, uint32_t flags,
				   struct packet *out)
{
	memset(out, 0, sizeof(*out));
	struct eth_view eth;
	enum pkt_result r = eth_parse(frame, len, &eth);
	out->ethertype = eth.ethertype;
	out->has_vlan = eth.has_vlan;
	out->vlan_tci = eth.vlan_tci;
	out->l3_off = eth.l3_off;
	if (r != PKT_OK)
		return r;
	const uint8_t *l3 = frame + eth.l3_off;
	size_t l3_avail = len - eth.l3_off;

	switch (eth.ethertype) {
	case ETHERTYPE_ARP:
		out->family = PACKET_ARP;
		return arp_parse(l3, l3_avail, &out->arp);
	case ETHERTYPE_IPV4: {
		struct ipv4_view v;
		r = ipv4_parse(l3, l3_avail, &v);
		if (r != PKT_OK)
			return r;
		out->l3_len = v.total_len;
		fill_ipv4(frame, &v, out);
		break;
	}
	case ETHERTYPE_IPV6: {
		struct ipv6_view v;
		r = ipv6_parse(l3, l3_avail, &v);
		if (r != PKT_OK)
			return r;
		out->l3_len = IPV6_HDR_LEN + v.payload_len;
		fill_ipv6(frame, &v, out);
		if (ip_is_v4(&out->src) || ip_is_v4(&out->dst))
			return PKT_BAD_ADDRESS;
		break;
	}
	default:
		return PKT_UNSUPPORTED;
	}
	out->l4_len = out->l3_off + out->l3_len - out->l4_off;
	if (out->is_fragment) {
		if (out->first_fragment)
			parse_l4_partial(frame, out);
		return PKT_OK;
	}
	return parse_l4(frame, flags, out);
}

enum pkt_result packet_parse(const uint8_t *frame, size_t len, struct packet *out)
{
	return packet_parse_flags(frame, len, 0, out);
}

enum pkt_result packet_parse_embedded(const uint8_t *frame, size_t len,
				      const struct packet *outer, struct packet *inner)
{
	memset(inner, 0, sizeof(*inner));
	if (!outer->icmp_is_error || !outer->has_l4)
		return PKT_BAD_ICMP;
	/* The quote ends with the ICMP message, not with the frame (padding). */
	size_t end = (size_t)outer->l4_off + outer->l4_len;
	size_t start = outer->icmp_inner_off;
	if (end > len || start > end)
		return PKT_BAD_ICMP;
	const uint8_t *q = frame + start;
	size_t avail = end - start;
	enum pkt_result r;

	inner->ethertype = outer->ethertype;
	inner->l3_off = (uint32_t)start;
	if (outer->family == PACKET_IPV4) {
		struct ipv4_view v;
		r = ipv4_parse_quoted(q, avail, &v);
		if (r != PKT_OK)
			return r;
		inner->l3_len = (uint32_t)MIN((size_t)v.total_len, avail);
		fill_ipv4(frame, &v, inner);
	} else if (outer->family == PACKET_IPV6) {
		struct ipv6_view v;
		r = ipv6_parse_quoted(q, avail, &v);
		if (r != PKT_OK)
			return r;
		inner->l3_len = (uint32_t)MIN((size_t)IPV6_HDR_LEN + v.payload_len, avail);
		fill_ipv6(frame, &v, inner);
		if (ip_is_v4(&inner->src) || ip_is_v4(&inner->dst))
			return PKT_BAD_ADDRESS;
	} else {
		return PKT_BAD_ICMP;
	}
	if (inner->l4_off > start + inner->l3_len)
		return PKT_BAD_ICMP;
	inner->l4_len = (uint32_t)(start + inner->l3_len - inner->l4_off);
	if (inner->is_fragment && !inner->first_fragment)
		return PKT_OK;
	/* RFC 792 / RFC 4443: at least the first 8 bytes of the upper layer. */
	if (inner->l4_len < 8)
		return PKT_BAD_ICMP;
	const uint8_t *l4 = frame + inner->l4_off;
	uint32_t field = l4_csum_field(inner->protocol);
	switch (inner->protocol) {
	case IP_PROTO_TCP:
	case IP_PROTO_UDP:
		inner->src_port = load_be16(l4);
		inner->dst_port = load_be16(l4 + 2);
		if (inner->protocol == IP_PROTO_TCP && inner->l4_len >= 14)
			inner->tcp_flags = l4[13];
		inner->tcp_seq = inner->protocol == IP_PROTO_TCP ? load_be32(l4 + 4) : 0;
		break;
	case IP_PROTO_ICMP:
	case IP_PROTO_ICMPV6:
		if ((inner->protocol == IP_PROTO_ICMP) != is_v4_family(inner))
			return PKT_OK;
		inner->icmp_type = l4[0];
		inner->icmp_code = l4[1];
		inner->icmp_id = load_be16(l4 + 4);
		inner->icmp_seq = load_be16(l4 + 6);
		inner->icmp_rest = load_be32(l4 + 4);
		if (is_v4_family(inner))
			inner->icmp_is_query = l4[0] == ICMP_ECHO_REQUEST || l4[0] == ICMP_ECHO_REPLY;
		else
			inner->icmp_is_query =
				l4[0] == ICMP6_ECHO_REQUEST || l4[0] == ICMP6_ECHO_REPLY;
		/* Errors about errors are never sent: do not look further. */
		inner->icmp_is_error = is_v4_family(inner) ?
			(l4[0] == ICMP_DEST_UNREACH || l4[0] == ICMP_TIME_EXCEEDED ||
			 l4[0] == ICMP_PARAM_PROBLEM) : l4[0] < 128;
		break;
	default:
		return PKT_OK;
	}
	inner->has_l4 = true;
	inner->l4_hdr_len = 8;
	if (field + 2 <= inner->l4_len)
		inner->l4_csum_off = inner->l4_off + field;
	return PKT_OK;
}

bool packet_fill_l4_checksum(uint8_t *frame, size_t len, const struct packet *p)
{
	if (!p->has_l4 || p->is_fragment || p->l4_csum_off == 0)
		return false;
	if ((size_t)p->l4_off + p->l4_len > len || p->l4_csum_off + 2 > p->l4_off + p->l4_len)
		return false;
	uint16_t csum = l4_checksum(is_v4_family(p), &p->src, &p->dst, p->protocol,
				    frame + p->l4_off, p->l4_len);
	store_be16(frame + p->l4_csum_off, csum);
	return true;
}

/* Writes Ethernet + IP headers in front of an L4 message already at
 * buf + hdr_len (hdr_len = 14 + 20 or 14 + 40). */
static size_t wrap_l3(uint8_t *buf, const struct packet_addrs *a, uint8_t proto, size_t l4_len)
{
	if (ip_is_v4(&a->src)) {
		struct ipv4_fields f = {
			.ttl = PACKET_TTL, .proto = proto, .payload_len = (uint16_t)l4_len,
		};
		memcpy(f.src, ip_v4_bytes(&a->src), 4);
		memcpy(f.dst, ip_v4_bytes(&a->dst), 4);
		ipv4_build(buf + ETH_HDR_LEN, IPV4_HDR_MIN, &f);
		eth_build(buf, ETH_HDR_LEN, a->eth_dst, a->eth_src, ETHERTYPE_IPV4);
		return ETH_HDR_LEN + IPV4_HDR_MIN + l4_len;
	}
	struct ipv6_fields f = {
		.next_header = proto, .hop_limit = PACKET_TTL, .payload_len = (uint16_t)l4_len,
	};
	memcpy(f.src, a->src.b, 16);
	memcpy(f.dst, a->dst.b, 16);
	ipv6_build(buf + ETH_HDR_LEN, IPV6_HDR_LEN, &f);
	eth_build(buf, ETH_HDR_LEN, a->eth_dst, a->eth_src, ETHERTYPE_IPV6);
	return ETH_HDR_LEN + IPV6_HDR_LEN + l4_len;
}

size_t packet_build_icmp_error(uint8_t *buf, size_t cap, const struct packet_addrs *a,
			       uint8_t type, uint8_t code, uint32_t rest, const uint8_t *orig,
			       size_t orig_len)
{
	bool v4 = ip_is_v4(&a->src);
	if (v4 != ip_is_v4(&a->dst))
		return 0;
	size_t hdr = ETH_HDR_LEN + (v4 ? IPV4_HDR_MIN : IPV6_HDR_LEN);
	if (cap < hdr)
		return 0;
	size_t n;
	if (v4)
		n = icmp4_build_error(buf + hdr, cap - hdr, type, code, rest, orig, orig_len);
	else
		n = icmp6_build_error(buf + hdr, cap - hdr, a->src.b, a->dst.b, type, code, rest,
				      orig, orig_len);
	if (n == 0)
		return 0;
	return wrap_l3(buf, a, v4 ? IP_PROTO_ICMP : IP_PROTO_ICMPV6, n);
}

size_t packet_build_echo_reply(uint8_t *buf, size_t cap, const uint8_t *req,
			       const struct packet *p, const uint8_t eth_src[6])
{
	bool v4 = p->family == PACKET_IPV4;
	if (!p->has_l4 || !p->icmp_is_query || p->is_fragment)
		return 0;
	if (p->icmp_type != (v4 ? ICMP_ECHO_REQUEST : ICMP6_ECHO_REQUEST))
		return 0;
	/* Everything from req is copied out before buf (which may be req) is
	 * written; the data only ever moves towards the frame start. */
	struct packet_addrs a;
	memcpy(a.eth_dst, req + 6, ETH_ADDR_LEN);
	memcpy(a.eth_src, eth_src, ETH_ADDR_LEN);
	a.src = p->dst;
	a.dst = p->src;
	uint16_t id = p->icmp_id;
	uint16_t seq = p->icmp_seq;
	size_t hdr = ETH_HDR_LEN + (v4 ? IPV4_HDR_MIN : IPV6_HDR_LEN);
	if (cap < hdr)
		return 0;
	const uint8_t *data = req + p->l4_off + ICMP_HDR_LEN;
	size_t data_len = p->l4_len - ICMP_HDR_LEN;
	size_t n;
	if (v4)
		n = icmp4_build_echo(buf + hdr, cap - hdr, ICMP_ECHO_REPLY, id, seq, data,
				     data_len);
	else
		n = icmp6_build_echo(buf + hdr, cap - hdr, a.src.b, a.dst.b, ICMP6_ECHO_REPLY, id,
				     seq, data, data_len);
	if (n == 0)
		return 0;
	return wrap_l3(buf, &a, v4 ? IP_PROTO_ICMP : IP_PROTO_ICMPV6, n);
}

bool packet_may_send_icmp_error(const uint8_t *frame, const struct packet *p)
{
	if (p->family != PACKET_IPV4 && p->family != PACKET_IPV6)
		return false;
	if (frame[0] & 1) /* link multicast or broadcast */
		return false;
	if (p->is_fragment && !p->first_fragment)
		return false;
	if (p->icmp_is_error)
		return false;
	if (ip_is_unspecified(&p->src))
		return false;
	if (p->family == PACKET_IPV4) {
		const uint8_t *s = ip_v4_bytes(&p->src);
		const uint8_t *d = ip_v4_bytes(&p->dst);
		static const uint8_t bcast[4] = {255, 255, 255, 255};
		static const uint8_t zero[4];
		if (s[0] >= 224 || d[0] >= 224 || memcmp(d, bcast, 4) == 0 ||
		    memcmp(s, zero, 4) == 0)
			return false;
		return true;
	}
	/* RFC 4443 §2.4(e.3): not to multicast (we never send the
	 * packet-too-big exception); never about neighbour discovery. */
	if (p->src.b[0] == 0xff || p->dst.b[0] == 0xff || p->icmp_is_nd)
		return false;
	return true;
}
