/* fuzz_arp.c — ARP messages, bare and inside an Ethernet frame. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/arp.h"
#include "net/packet.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct arp_view v;
	if (arp_parse(data, size, &v) == PKT_OK) {
		if (size < ARP_LEN || (v.op != ARP_OP_REQUEST && v.op != ARP_OP_REPLY))
			abort();
		uint8_t out[ARP_LEN];
		struct arp_view w;
		if (arp_build(out, sizeof(out), v.op, v.sha, v.spa, v.tha, v.tpa) != ARP_LEN ||
		    arp_parse(out, sizeof(out), &w) != PKT_OK || memcmp(&v, &w, sizeof(v)) != 0)
			abort();
	}
	static uint8_t frame[14 + 4096];
	if (size > 4096)
		return 0;
	memset(frame, 0xff, 12);
	frame[12] = 0x08;
	frame[13] = 0x06;
	memcpy(frame + 14, data, size);
	struct packet p;
	enum pkt_result r = packet_parse(frame, 14 + size, &p);
	if (r == PKT_OK && p.family != PACKET_ARP)
		abort();
	return 0;
}
