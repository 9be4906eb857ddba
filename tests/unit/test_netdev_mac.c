/* test_netdev_mac.c — the MAC text of a vif (XenStore `mac`, written by the
 * toolstack or a frontend): exact form only. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "xen/netdev.h"

static void test_good_macs(void **state)
{
	(void)state;
	uint8_t mac[6];
	static const uint8_t want[6] = {0x00, 0x16, 0x3e, 0x5e, 0x6c, 0x0a};
	assert_true(netdev_parse_mac("00:16:3e:5e:6c:0a", mac));
	assert_memory_equal(mac, want, 6);
	assert_true(netdev_parse_mac("00:16:3E:5E:6C:0A", mac));
	assert_memory_equal(mac, want, 6);
}

static void test_bad_macs_leave_output_alone(void **state)
{
	(void)state;
	static const char *const bad[] = {"", "00:16:3e:5e:6c", "00:16:3e:5e:6c:0a:", "00-16-3e-5e-6c-0a",
					  "00:16:3e:5e:6c:0g", "0:16:3e:5e:6c:0a", "00:16:3e:5e:6c:0a ",
					  "000:16:3e:5e:6c:0", " 00:16:3e:5e:6c:0a"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint8_t mac[6] = {1, 2, 3, 4, 5, 6};
		static const uint8_t untouched[6] = {1, 2, 3, 4, 5, 6};
		assert_false(netdev_parse_mac(bad[i], mac));
		assert_memory_equal(mac, untouched, 6);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good_macs),
		cmocka_unit_test(test_bad_macs_leave_output_alone),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
