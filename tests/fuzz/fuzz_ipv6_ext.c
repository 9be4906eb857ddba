/* fuzz_ipv6_ext.c — the IPv6 extension-header walk, whole and quoted: it
 * ends, stays within bounds and within IPV6_MAX_EXT headers. The first byte
 * is forced to version 6 so the walk is always reached. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/ipv6.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const struct ipv6_view *v, size_t len, int quoted)
{
	size_t end = IPV6_HDR_LEN + (size_t)v->payload_len;
	if (quoted && end > len)
		end = len;
	if (end > len || v->l4_off > end || v->l4_off < IPV6_HDR_LEN || v->proto_nh_off >= len ||
	    v->ext_count > IPV6_MAX_EXT)
		abort();
	if (v->has_frag_hdr && v->frag_hdr_off + IPV6_FRAG_HDR_LEN > end)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t buf[70000];
	if (size > sizeof(buf))
		return 0;
	memcpy(buf, data, size);
	if (size)
		buf[0] = (uint8_t)(0x60 | (buf[0] & 0x0f));
	uint8_t *c = malloc(size ? size : 1);
	memcpy(c, buf, size);
	struct ipv6_view v;
	if (ipv6_parse(c, size, &v) == PKT_OK)
		check(&v, size, 0);
	if (ipv6_parse_quoted(c, size, &v) == PKT_OK)
		check(&v, size, 1);
	free(c);
	return 0;
}
