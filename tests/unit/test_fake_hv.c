/* test_fake_hv.c — the fake hypervisor used by the Xen protocol tests:
 * shared memory through grants, per-op grant-copy statuses, map/unmap
 * permissions, end-access refused while mapped, event channels. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "fake_hv.h"

#define SRV 0
#define CLI 5
#define OTHER 7

static int setup(void **state)
{
	(void)state;
	fake_hv_reset();
	assert_true(fake_hv_add_domain(SRV));
	assert_true(fake_hv_add_domain(CLI));
	assert_true(fake_hv_add_domain(OTHER));
	fake_hv_set_current(SRV);
	return 0;
}

static void test_pages_alloc_free(void **state)
{
	(void)state;
	uint8_t *a = hv_pages_alloc(3);
	assert_non_null(a);
	assert_int_equal((uintptr_t)a % HV_PAGE_SIZE, 0);
	for (size_t i = 0; i < (size_t)3 * HV_PAGE_SIZE; i++)
		assert_int_equal(a[i], 0);
	memset(a, 0xaa, (size_t)3 * HV_PAGE_SIZE);
	assert_int_equal(fake_hv_pages_in_use(), 3);
	hv_pages_free(a + HV_PAGE_SIZE, 1); /* a subrange */
	assert_int_equal(fake_hv_pages_in_use(), 2);
	uint8_t *b = hv_pages_alloc(1);
	assert_ptr_equal(b, a + HV_PAGE_SIZE); /* first fit reuses the hole, zeroed */
	assert_int_equal(b[0], 0);
	hv_pages_free(a, 1);
	hv_pages_free(b, 2);
	assert_int_equal(fake_hv_pages_in_use(), 0);
	assert_null(hv_pages_alloc(0));
	assert_null(hv_pages_alloc(FAKE_HV_POOL_PAGES + 1));
	fake_hv_set_pool_limit(2);
	a = hv_pages_alloc(2);
	assert_non_null(a);
	assert_null(hv_pages_alloc(1));
	hv_pages_free(a, 2);
}

static void test_grant_map_shares_memory(void **state)
{
	(void)state;
	uint8_t *page = hv_pages_alloc(1);
	hv_gref_t gref;
	assert_true(hv_grant(page, CLI, false, &gref));
	assert_true(gref >= FAKE_HV_FIRST_GREF);
	assert_true(fake_hv_grant_active(SRV, gref));
	assert_ptr_equal(fake_hv_grant_page(SRV, gref), page);

	fake_hv_set_current(CLI);
	assert_int_equal(hv_domid(), CLI);
	uint8_t *m = hv_map_grants(SRV, &gref, 1, false);
	assert_non_null(m);
	assert_ptr_not_equal(m, page);
	assert_int_equal(fake_hv_grant_map_count(SRV, gref), 1);
	m[17] = 0x5a;
	assert_int_equal(page[17], 0x5a);
	page[4095] = 0x33;
	assert_int_equal(m[4095], 0x33);

	/* End-access must fail while mapped (MSA02), succeed after unmap. */
	fake_hv_set_current(SRV);
	assert_false(hv_grant_end(gref));
	assert_true(fake_hv_grant_active(SRV, gref));
	fake_hv_set_current(CLI);
	hv_unmap_grants(m, 1);
	assert_int_equal(fake_hv_mappings_in_use(), 0);
	fake_hv_set_current(SRV);
	assert_true(hv_grant_end(gref));
	assert_false(fake_hv_grant_active(SRV, gref));
	hv_pages_free(page, 1);
}

static void test_map_multi_contiguous(void **state)
{
	(void)state;
	uint8_t *a = hv_pages_alloc(1);
	uint8_t *b = hv_pages_alloc(1);
	hv_gref_t g[2];
	/* Grant in reverse order: the mapping follows the gref list. */
	assert_true(hv_grant(b, CLI, false, &g[0]));
	assert_true(hv_grant(a, CLI, true, &g[1]));
	a[0] = 1;
	b[0] = 2;
	fake_hv_set_current(CLI);
	assert_null(hv_map_grants(SRV, g, 2, false)); /* g[1] is read-only */
	assert_int_equal(fake_hv_grant_map_count(SRV, g[0]), 0);
	uint8_t *m = hv_map_grants(SRV, g, 2, true);
	assert_non_null(m);
	assert_int_equal(m[0], 2);
	assert_int_equal(m[HV_PAGE_SIZE], 1);
	hv_unmap_grants(m, 2);
	fake_hv_set_current(SRV);
	assert_true(hv_grant_end(g[0]));
	assert_true(hv_grant_end(g[1]));
	hv_pages_free(a, 1);
	hv_pages_free(b, 1);
}

static void test_map_refusals(void **state)
{
	(void)state;
	uint8_t *page = hv_pages_alloc(1);
	hv_gref_t gref, bad;
	assert_true(hv_grant(page, OTHER, false, &gref));
	fake_hv_set_current(CLI);
	assert_null(hv_map_grants(SRV, &gref, 1, false));     /* granted to someone else */
	bad = gref + 1;
	assert_null(hv_map_grants(SRV, &bad, 1, true));       /* not granted */
	bad = 0;
	assert_null(hv_map_grants(SRV, &bad, 1, true));       /* reserved */
	bad = 0xffffffffu;
	assert_null(hv_map_grants(SRV, &bad, 1, true));       /* wild */
	assert_null(hv_map_grants(42, &gref, 1, true));       /* no such domain */
	assert_null(hv_map_grants(SRV, &gref, 0, true));
	assert_int_equal(fake_hv_mappings_in_use(), 0);
	fake_hv_set_current(SRV);
	assert_true(hv_grant_end(gref));
	hv_pages_free(page, 1);
}

static void test_grant_copy_statuses(void **state)
{
	(void)state;
	uint8_t *rw = hv_pages_alloc(1);
	uint8_t *ro = hv_pages_alloc(1);
	uint8_t *other = hv_pages_alloc(1);
	hv_gref_t g_rw, g_ro, g_other;
	assert_true(hv_grant(rw, CLI, false, &g_rw));
	assert_true(hv_grant(ro, CLI, true, &g_ro));
	assert_true(hv_grant(other, OTHER, false, &g_other));
	memcpy(ro + 100, "hello", 6);

	fake_hv_set_current(CLI);
	static uint8_t local[2 * HV_PAGE_SIZE] __attribute__((aligned(4096)));
	memset(local, 0, sizeof(local));
	memcpy(local + 10, "world", 6);
	struct hv_copy ops[9];
	memset(ops, 0, sizeof(ops));
	/* 0: foreign ro -> local: OK */
	ops[0].src = (struct hv_copy_end){
		.foreign = true, .domid = SRV, .gref = g_ro, .offset = 100 };
	ops[0].dst = (struct hv_copy_end){ .local = local + 200 };
	ops[0].len = 5;
	/* 1: local -> foreign rw at the very end of the page: OK */
	ops[1].src = (struct hv_copy_end){ .local = local + 10 };
	ops[1].dst = (struct hv_copy_end){
		.foreign = true, .domid = SRV, .gref = g_rw, .offset = 4091 };
	ops[1].len = 5;
	/* 2: local -> foreign read-only: permission denied */
	ops[2].src = (struct hv_copy_end){ .local = local };
	ops[2].dst = (struct hv_copy_end){
		.foreign = true, .domid = SRV, .gref = g_ro };
	ops[2].len = 1;
	/* 3: bad gref */
	ops[3].src = (struct hv_copy_end){
		.foreign = true, .domid = SRV, .gref = 9999 };
	ops[3].dst = (struct hv_copy_end){ .local = local };
	ops[3].len = 1;
	/* 4: unknown domain */
	ops[4].src = (struct hv_copy_end){ .foreign = true, .domid = 99, .gref = g_rw };
	ops[4].dst = (struct hv_copy_end){ .local = local };
	ops[4].len = 1;
	/* 5: granted to another domain */
	ops[5].src = (struct hv_copy_end){
		.foreign = true, .domid = SRV, .gref = g_other };
	ops[5].dst = (struct hv_copy_end){ .local = local };
	ops[5].len = 1;
	/* 6: foreign offset + len past the page */
	ops[6].src = (struct hv_copy_end){
		.foreign = true, .domid = SRV, .gref = g_rw, .offset = 4092 };
	ops[6].dst = (struct hv_copy_end){ .local = local };
	ops[6].len = 5;
	/* 7: local end crossing its page */
	ops[7].src = (struct hv_copy_end){ .local = local + 4094 };
	ops[7].dst = (struct hv_copy_end){
		.foreign = true, .domid = SRV, .gref = g_rw };
	ops[7].len = 4;
	/* 8: wild offset and length */
	ops[8].src = (struct hv_copy_end){
		.foreign = true, .domid = SRV, .gref = g_rw, .offset = 0xffff };
	ops[8].dst = (struct hv_copy_end){ .local = local };
	ops[8].len = 0xffff;
	assert_true(hv_grant_copy(ops, 9));
	assert_int_equal(ops[0].status, HV_GNT_OK);
	assert_memory_equal(local + 200, "hello", 5);
	assert_int_equal(ops[1].status, HV_GNT_OK);
	assert_memory_equal(rw + 4091, "world", 5);
	assert_int_equal(ops[2].status, HV_GNT_PERMISSION_DENIED);
	assert_int_equal(ops[3].status, HV_GNT_BAD_GREF);
	assert_int_equal(ops[4].status, HV_GNT_BAD_DOMAIN);
	assert_int_equal(ops[5].status, HV_GNT_PERMISSION_DENIED);
	assert_int_equal(ops[6].status, HV_GNT_BAD_COPY_ARG);
	assert_int_equal(ops[7].status, HV_GNT_BAD_COPY_ARG);
	assert_int_equal(ops[8].status, HV_GNT_BAD_COPY_ARG);
	assert_int_equal(ro[0], 0); /* the refused write did not happen */
	assert_true(hv_grant_copy(NULL, 0));
	assert_false(hv_grant_copy(NULL, 1));

	fake_hv_set_current(SRV);
	assert_true(hv_grant_end(g_rw));
	assert_true(hv_grant_end(g_ro));
	assert_true(hv_grant_end(g_other));
	hv_pages_free(rw, 1);
	hv_pages_free(ro, 1);
	hv_pages_free(other, 1);
}

static void test_grant_table_full(void **state)
{
	(void)state;
	uint8_t *page = hv_pages_alloc(1);
	hv_gref_t g;
	size_t n = 0;
	while (hv_grant(page, CLI, true, &g))
		n++;
	assert_int_equal(n, FAKE_HV_GRANTS - FAKE_HV_FIRST_GREF);
	assert_int_equal(fake_hv_grants_in_use(SRV), n);
	fake_hv_reset(); /* forgets the grants and the page */
	assert_int_equal(fake_hv_pages_in_use(), 0);
}

static void test_evtchn(void **state)
{
	(void)state;
	hv_port_t sp, cp, junk;
	assert_true(hv_evtchn_alloc_unbound(CLI, &sp));
	assert_int_not_equal(sp, 0);
	assert_int_equal(fake_hv_evtchn_state(SRV, sp), FAKE_HV_PORT_UNBOUND);
	assert_false(hv_evtchn_alloc_unbound(77, &junk)); /* no such domain */

	fake_hv_set_current(OTHER);
	assert_false(hv_evtchn_bind_interdomain(SRV, sp, &junk)); /* offered to CLI only */
	fake_hv_set_current(CLI);
	assert_false(hv_evtchn_bind_interdomain(SRV, sp + 1, &junk));
	assert_false(hv_evtchn_bind_interdomain(SRV, 0, &junk));
	assert_false(hv_evtchn_bind_interdomain(SRV, 0xffffffffu, &junk));
	assert_true(hv_evtchn_bind_interdomain(SRV, sp, &cp));
	assert_int_equal(fake_hv_evtchn_state(SRV, sp), FAKE_HV_PORT_INTERDOMAIN);
	assert_false(hv_evtchn_bind_interdomain(SRV, sp, &junk)); /* already bound */

	hv_port_t got[4];
	assert_int_equal(hv_evtchn_take_pending(got, 4), 0);
	hv_evtchn_notify(cp);
	assert_true(fake_hv_evtchn_pending(SRV, sp));
	assert_false(fake_hv_evtchn_pending(CLI, cp));
	fake_hv_set_current(SRV);
	assert_int_equal(hv_evtchn_take_pending(got, 4), 1);
	assert_int_equal(got[0], sp);
	assert_false(fake_hv_evtchn_pending(SRV, sp));
	assert_int_equal(hv_evtchn_take_pending(got, 4), 0);
	hv_evtchn_notify(sp);
	hv_evtchn_notify(sp);
	assert_int_equal(fake_hv_evtchn_delivered(CLI, cp), 2);

	/* Several pending, capacity 1: the rest stays pending. */
	hv_port_t sp2;
	assert_true(hv_evtchn_alloc_unbound(CLI, &sp2));
	fake_hv_set_current(CLI);
	hv_port_t cp2;
	assert_true(hv_evtchn_bind_interdomain(SRV, sp2, &cp2));
	hv_evtchn_notify(cp);
	hv_evtchn_notify(cp2);
	fake_hv_set_current(SRV);
	assert_int_equal(hv_evtchn_take_pending(got, 1), 1);
	assert_int_equal(got[0], sp);
	assert_int_equal(hv_evtchn_take_pending(got, 4), 1);
	assert_int_equal(got[0], sp2);

	/* Close: the peer's end falls back to unbound; notify goes nowhere. */
	fake_hv_set_current(CLI);
	hv_evtchn_close(cp);
	assert_int_equal(fake_hv_evtchn_state(CLI, cp), FAKE_HV_PORT_FREE);
	assert_int_equal(fake_hv_evtchn_state(SRV, sp), FAKE_HV_PORT_UNBOUND);
	hv_evtchn_notify(cp);     /* closed port: ignored */
	hv_evtchn_notify(12345);  /* never allocated: ignored */
	fake_hv_set_current(SRV);
	hv_evtchn_notify(sp);
	assert_int_equal(hv_evtchn_take_pending(got, 4), 0);
	hv_evtchn_close(sp);
	hv_evtchn_close(sp); /* twice: harmless */
}

static void test_reset_unmaps(void **state)
{
	(void)state;
	uint8_t *page = hv_pages_alloc(1);
	hv_gref_t g;
	assert_true(hv_grant(page, CLI, false, &g));
	fake_hv_set_current(CLI);
	assert_non_null(hv_map_grants(SRV, &g, 1, false));
	assert_int_equal(fake_hv_mappings_in_use(), 1);
	fake_hv_reset();
	assert_int_equal(fake_hv_mappings_in_use(), 0);
	assert_int_equal(fake_hv_current(), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_pages_alloc_free, setup),
		cmocka_unit_test_setup(test_grant_map_shares_memory, setup),
		cmocka_unit_test_setup(test_map_multi_contiguous, setup),
		cmocka_unit_test_setup(test_map_refusals, setup),
		cmocka_unit_test_setup(test_grant_copy_statuses, setup),
		cmocka_unit_test_setup(test_grant_table_full, setup),
		cmocka_unit_test_setup(test_evtchn, setup),
		cmocka_unit_test_setup(test_reset_unmaps, setup),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
