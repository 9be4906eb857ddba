/* frames.c — see frames.h. */
#include "frames.h"

#include <string.h>

#include "base/byteorder.h"
#include "base/checksum.h"

bool tf_capture_tx(void *ctx, const uint8_t *frame, size_t len)
{
	struct tf_capture *c = ctx;
	if (c->n >= TF_CAP_MAX || len > sizeof(c->frame[0]))
		return false;
	memcpy(c->frame[c->n], frame, len);
	c->len[c->n++] = len;
	return true;
}

size_t tf_eth(uint8_t *f, const uint8_t dst[6], const uint8_t src[6], uint16_t type)
{
	memcpy(f, dst, 6);
	memcpy(f + 6, src, 6);
	store_be16(f + 12, type);
	return 14;
}

void tf_ip4_hdr(uint8_t *h, uint8_t proto, const uint8_t src[4], const uint8_t dst[4],
		    size_t payload, uint8_t ttl, uint16_t frag)
{
	memset(h, 0, 20);
	h[0] = 0x45;
	store_be16(h + 2, (uint16_t)(20 + payload));
	store_be16(h + 4, 0x1234);
	store_be16(h + 6, frag);
	h[8] = ttl;
	h[9] = proto;
	memcpy(h + 12, src, 4);
	memcpy(h + 16, dst, 4);
	store_be16(h + 10, csum_buf(h, 20));
}

void tf_l4_csum4(uint8_t *l4, size_t len, uint8_t proto, const uint8_t src[4],
		     const uint8_t dst[4], size_t csum_off)
{
	store_be16(l4 + csum_off, 0);
	uint32_t s = proto == 1 ? 0 : csum_pseudo_ipv4(src, dst, proto, (uint16_t)len);
	uint16_t c = csum_fold(csum_partial(l4, len, s));
	if (proto == 17 && c == 0)
		c = 0xffff;
	store_be16(l4 + csum_off, c);
}

/* UDP/IPv4 frame with a payload of n bytes of 'x'. */
size_t tf_udp4(uint8_t *f, const uint8_t smac[6], const uint8_t dmac[6], const uint8_t src[4],
		   const uint8_t dst[4], uint16_t sport, uint16_t dport, size_t n, uint8_t ttl)
{
	size_t o = tf_eth(f, dmac, smac, 0x0800);
	uint8_t *u = f + o + 20;
	store_be16(u, sport);
	store_be16(u + 2, dport);
	store_be16(u + 4, (uint16_t)(8 + n));
	memset(u + 8, 'x', n);
	tf_l4_csum4(u, 8 + n, 17, src, dst, 6);
	tf_ip4_hdr(f + o, 17, src, dst, 8 + n, ttl, 0);
	return o + 20 + 8 + n;
}

size_t tf_tcp4(uint8_t *f, const uint8_t smac[6], const uint8_t dmac[6], const uint8_t src[4],
		   const uint8_t dst[4], uint16_t sport, uint16_t dport, uint8_t flags)
{
	size_t o = tf_eth(f, dmac, smac, 0x0800);
	uint8_t *t = f + o + 20;
	memset(t, 0, 20);
	store_be16(t, sport);
	store_be16(t + 2, dport);
	store_be32(t + 4, 1000);
	t[12] = 5 << 4;
	t[13] = flags;
	store_be16(t + 14, 65535);
	tf_l4_csum4(t, 20, 6, src, dst, 16);
	tf_ip4_hdr(f + o, 6, src, dst, 20, 64, 0);
	return o + 40;
}

size_t tf_echo4(uint8_t *f, const uint8_t smac[6], const uint8_t dmac[6], const uint8_t src[4],
		    const uint8_t dst[4], uint8_t type, uint16_t id, uint8_t ttl)
{
	size_t o = tf_eth(f, dmac, smac, 0x0800);
	uint8_t *m = f + o + 20;
	m[0] = type;
	m[1] = 0;
	store_be16(m + 4, id);
	store_be16(m + 6, 1);
	memcpy(m + 8, "pingdata", 8);
	tf_l4_csum4(m, 16, 1, src, dst, 2);
	tf_ip4_hdr(f + o, 1, src, dst, 16, ttl, 0);
	return o + 36;
}

size_t tf_arp_req(uint8_t *f, const uint8_t smac[6], const uint8_t spa[4], const uint8_t tpa[4])
{
	static const uint8_t bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
	size_t o = tf_eth(f, bcast, smac, 0x0806);
	uint8_t *a = f + o;
	store_be16(a, 1);
	store_be16(a + 2, 0x0800);
	a[4] = 6;
	a[5] = 4;
	store_be16(a + 6, 1);
	memcpy(a + 8, smac, 6);
	memcpy(a + 14, spa, 4);
	memset(a + 18, 0, 6);
	memcpy(a + 24, tpa, 4);
	return o + 28;
}

size_t tf_udp6(uint8_t *f, const uint8_t smac[6], const uint8_t dmac[6], const uint8_t src[16],
		   const uint8_t dst[16], uint16_t sport, uint16_t dport, size_t n)
{
	size_t o = tf_eth(f, dmac, smac, 0x86dd);
	uint8_t *h = f + o, *u = h + 40;
	memset(h, 0, 40);
	h[0] = 0x60;
	store_be16(h + 4, (uint16_t)(8 + n));
	h[6] = 17;
	h[7] = 64;
	memcpy(h + 8, src, 16);
	memcpy(h + 24, dst, 16);
	store_be16(u, sport);
	store_be16(u + 2, dport);
	store_be16(u + 4, (uint16_t)(8 + n));
	store_be16(u + 6, 0);
	memset(u + 8, 'y', n);
	uint16_t c = csum_fold(csum_partial(u, 8 + n, csum_pseudo_ipv6(src, dst, 17, (uint32_t)(8 + n))));
	store_be16(u + 6, c ? c : 0xffff);
	return o + 40 + 8 + n;
}
