/* eth.c — Ethernet II header parse/build and result names.
 * Pure functions: never reads past len, never writes past cap. */
#include "net/eth.h"

#include "base/byteorder.h"
#include "base/libc.h"

static const char *const result_names[PKT_RESULT_COUNT] = {
	[PKT_OK] = "ok",
	[PKT_TRUNCATED] = "truncated",
	[PKT_UNSUPPORTED] = "unsupported",
	[PKT_BAD_ARP] = "bad arp",
	[PKT_BAD_VERSION] = "bad ip version",
	[PKT_BAD_IHL] = "bad ihl",
	[PKT_BAD_LENGTH] = "bad ip length",
	[PKT_BAD_CHECKSUM] = "bad ip header checksum",
	[PKT_BAD_OPTIONS] = "bad ip options",
	[PKT_BAD_FRAGMENT] = "bad fragment fields",
	[PKT_BAD_EXT_HEADER] = "bad ipv6 extension header",
	[PKT_TOO_MANY_EXT] = "too many ipv6 extension headers",
	[PKT_BAD_L4_LENGTH] = "bad l4 length",
	[PKT_BAD_L4_CHECKSUM] = "bad l4 checksum",
	[PKT_BAD_TCP_OFFSET] = "bad tcp data offset",
	[PKT_BAD_ICMP] = "bad icmp message",
	[PKT_BAD_ADDRESS] = "ipv4-mapped address in ipv6",
};

const char *pkt_result_str(enum pkt_result r)
{
	if ((unsigned)r >= PKT_RESULT_COUNT)
		return "?";
	return result_names[r];
}

enum pkt_result eth_parse(const uint8_t *frame, size_t len, struct eth_view *out)
{
	out->has_vlan = false;
	out->vlan_tci = 0;
	out->ethertype = 0;
	out->l3_off = ETH_HDR_LEN;
	if (len < ETH_HDR_LEN)
		return PKT_TRUNCATED;
	uint16_t type = load_be16(frame + 12);
	if (type == ETHERTYPE_VLAN) {
		if (len < ETH_HDR_LEN + ETH_VLAN_TAG_LEN)
			return PKT_TRUNCATED;
		out->has_vlan = true;
		out->vlan_tci = load_be16(frame + 14);
		type = load_be16(frame + 16);
		out->l3_off = ETH_HDR_LEN + ETH_VLAN_TAG_LEN;
	}
	out->ethertype = type;
	/* Below 0x0600 the field is an 802.3 length (LLC frames); a second tag
	 * (QinQ) is not something a Qubes link carries. */
	if (type < 0x0600 || type == ETHERTYPE_VLAN || type == ETHERTYPE_QINQ)
		return PKT_UNSUPPORTED;
	return PKT_OK;
}

size_t eth_build(uint8_t *buf, size_t cap, const uint8_t dst[ETH_ADDR_LEN],
		 const uint8_t src[ETH_ADDR_LEN], uint16_t ethertype)
{
	if (cap < ETH_HDR_LEN)
		return 0;
	memmove(buf, dst, ETH_ADDR_LEN);
	memmove(buf + 6, src, ETH_ADDR_LEN);
	store_be16(buf + 12, ethertype);
	return ETH_HDR_LEN;
}
