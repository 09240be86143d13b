/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Socket and listener observations (observe.c), driven by scripted facts
 * and a real engine (policy_fixture.h: self n1, peer n2, 10.1.1.0/24).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "observe.h"
#include "policy_fixture.h"

static void test_unbound_without_hold(void **state)
{
	struct fixture *f = fx_new();
	struct dv_addr a = fx_addr("10.1.1.5");
	struct dv_observe o;
	uint64_t at = 0;

	dv_observe_init(&o);
	assert_int_equal(dv_observe_unbound(&o, f->e, &a, true, f->now, &at), DV_OBSERVE_NONE);
	/* an API hold is not a socket hold */
	fx_claim(f, 1, 7, "10.1.1.5", DV_KIND_API);
	assert_int_equal(dv_observe_unbound(&o, f->e, &a, true, f->now, &at), DV_OBSERVE_NONE);
	/* nor is another node's socket hold */
	fx_claim(f, 2, 0, "10.1.1.6", DV_KIND_SOCKET);
	a = fx_addr("10.1.1.6");
	assert_int_equal(dv_observe_unbound(&o, f->e, &a, true, f->now, &at), DV_OBSERVE_NONE);
	assert_null(dv_observe_socket_hold(f->e, &a));
	dv_observe_clear(&o);
	fx_free(f);
}

static void test_grace_for_a_socket_not_seen_yet(void **state)
{
	struct fixture *f = fx_new();
	struct dv_addr a = fx_addr("10.1.1.5");
	const struct dv_hold *h;
	struct dv_observe o;
	uint64_t at = 0, since;

	dv_observe_init(&o);
	fx_claim(f, 1, 0, "10.1.1.5", DV_KIND_SOCKET);
	h = dv_observe_socket_hold(f->e, &a);
	assert_non_null(h);
	since = h->since_ms;
	/* no socket seen yet: its program may not have bound; look again */
	assert_int_equal(dv_observe_unbound(&o, f->e, &a, true, since + 10, &at), DV_OBSERVE_GRACE);
	assert_int_equal(at, since + DV_SOCKET_GRACE_MS);
	assert_int_equal(dv_observe_unbound(&o, f->e, &a, true, since + DV_SOCKET_GRACE_MS - 1, &at), DV_OBSERVE_GRACE);
	/* the grace is over and still no socket */
	assert_int_equal(dv_observe_unbound(&o, f->e, &a, true, since + DV_SOCKET_GRACE_MS, &at), DV_OBSERVE_END);
	/* its program is done binding: no grace, however fresh the hold */
	assert_int_equal(dv_observe_unbound(&o, f->e, &a, false, since + 10, &at), DV_OBSERVE_END);
	dv_observe_clear(&o);
	fx_free(f);
}

static void test_no_grace_for_a_socket_that_came_and_went(void **state)
{
	struct fixture *f = fx_new();
	struct dv_addr a = fx_addr("10.1.1.5");
	struct dv_observe o;
	uint64_t at = 0;

	dv_observe_init(&o);
	fx_claim(f, 1, 0, "10.1.1.5", DV_KIND_SOCKET);
	/* seen bound while installed, then closed: ends at once */
	assert_false(dv_observe_bound(&o, f->e, &a, true, false));
	assert_int_equal(dv_observe_unbound(&o, f->e, &a, true, f->now, &at), DV_OBSERVE_END);
	/* seen while not installed does not count */
	assert_false(dv_observe_bound(&o, f->e, &a, false, false));
	assert_int_equal(dv_observe_unbound(&o, f->e, &a, true, f->now, &at), DV_OBSERVE_GRACE);
	/* removal forgets what was seen, one address or all */
	(void)dv_observe_bound(&o, f->e, &a, true, false);
	dv_observe_removed(&o, &a);
	assert_int_equal(dv_observe_unbound(&o, f->e, &a, true, f->now, &at), DV_OBSERVE_GRACE);
	(void)dv_observe_bound(&o, f->e, &a, true, false);
	dv_observe_removed(&o, NULL);
	assert_int_equal(dv_observe_unbound(&o, f->e, &a, true, f->now, &at), DV_OBSERVE_GRACE);
	dv_observe_clear(&o);
	fx_free(f);
}

static void test_bind_watch(void **state)
{
	struct fixture *f = fx_new();
	struct dv_addr a = fx_addr("10.1.1.5");
	struct dv_observe o;

	dv_observe_init(&o);
	/* outside BINDWATCH ranges a bind activates nothing */
	assert_false(dv_observe_bound(&o, f->e, &a, false, false));
	/* inside, it does, once */
	assert_true(dv_observe_bound(&o, f->e, &a, false, true));
	fx_claim(f, 1, 0, "10.1.1.5", DV_KIND_SOCKET);
	assert_false(dv_observe_bound(&o, f->e, &a, true, true));
	/* that hold is for the socket seen: no grace when it goes, even
	 * before the address was installed (bench: p99 was the 2 s grace) */
	dv_observe_removed(&o, NULL);
	fx_free(f);
	f = fx_new();
	assert_true(dv_observe_bound(&o, f->e, &a, false, true));
	fx_claim(f, 1, 0, "10.1.1.5", DV_KIND_SOCKET);
	assert_int_equal(dv_observe_unbound(&o, f->e, &a, true, f->now, &(uint64_t){0}), DV_OBSERVE_END);
	dv_observe_clear(&o);
	fx_free(f);
}

static void test_probe_once(void **state)
{
	struct fixture *f = fx_new();
	struct dv_addr a = fx_addr("10.1.1.5"), b = fx_addr("10.1.1.6"), c = fx_addr("10.1.1.7");
	struct dv_observe o;

	dv_observe_init(&o);
	assert_true(dv_observe_needs_probe(&o, f->e, &a, 2));
	assert_false(dv_observe_needs_probe(&o, f->e, &a, 0)); /* PROBE COUNT 0 */
	dv_observe_probed(&o, &a);
	assert_false(dv_observe_needs_probe(&o, f->e, &a, 2));
	/* installed once: known to be ours */
	dv_observe_installed(&o, &b);
	assert_false(dv_observe_needs_probe(&o, f->e, &b, 2));
	/* the cluster knows c as active on n2: no stranger has it */
	assert_true(dv_observe_needs_probe(&o, f->e, &c, 2));
	fx_claim(f, 2, 3, "10.1.1.7", DV_KIND_API);
	assert_false(dv_observe_needs_probe(&o, f->e, &c, 2));
	dv_observe_clear(&o);
	fx_free(f);
}

static void test_define_reports_changes(void **state)
{
	struct fixture *f = fx_new();
	struct dv_addr a = fx_addr("10.1.1.5");
	struct dv_observe o;
	unsigned flags = 0;

	dv_observe_init(&o);
	assert_int_equal(dv_observe_defines(&o, 2), 0);
	/* the first look reports, even nothing */
	assert_true(dv_observe_define(&o, f->e, 0, &a, false, false, 0, &flags));
	assert_int_equal(flags, 0);
	assert_false(dv_observe_define(&o, f->e, 0, &a, false, false, 0, &flags));
	assert_true(dv_observe_define(&o, f->e, 0, &a, true, false, 0, &flags));
	assert_int_equal(flags, DV_AS_LISTENING);
	assert_true(dv_observe_define(&o, f->e, 0, &a, true, true, 0, &flags));
	assert_int_equal(flags, DV_AS_LISTENING | DV_AS_BUSY);
	/* a distributed port got a listener (bit 7: beyond what a byte held) */
	assert_true(dv_observe_define(&o, f->e, 0, &a, true, true, DV_AS_READY(3), &flags));
	assert_int_equal(flags, DV_AS_LISTENING | DV_AS_BUSY | DV_AS_READY(3));
	assert_false(dv_observe_define(&o, f->e, 0, &a, true, true, DV_AS_READY(3), &flags));
	/* A port's weight that changes is reported (bits past 16 included). */
	assert_true(dv_observe_define(&o, f->e, 0, &a, true, true, DV_AS_READY(3) | DV_AS_WEIGHT(3, 9), &flags));
	assert_int_equal(flags, DV_AS_LISTENING | DV_AS_BUSY | DV_AS_READY(3) | DV_AS_WEIGHT(3, 9));
	assert_false(dv_observe_define(&o, f->e, 0, &a, true, true, DV_AS_READY(3) | DV_AS_WEIGHT(3, 9), &flags));
	assert_true(dv_observe_define(&o, f->e, 0, &a, true, true, DV_AS_READY(3), &flags));
	/* a socket hold of this node counts as bound */
	fx_claim(f, 1, 0, "10.1.1.5", DV_KIND_SOCKET);
	assert_true(dv_observe_define(&o, f->e, 0, &a, true, true, 0, &flags));
	assert_int_equal(flags, DV_AS_LISTENING | DV_AS_BUSY | DV_AS_BOUND);
	/* the other define is independent */
	assert_true(dv_observe_define(&o, f->e, 1, &a, false, false, 0, &flags));
	/* the group forgot: everything again */
	dv_observe_defines_resend(&o);
	assert_true(dv_observe_define(&o, f->e, 0, &a, true, true, 0, &flags));
	assert_true(dv_observe_define(&o, f->e, 1, &a, false, false, 0, &flags));
	/* out of range: nothing */
	assert_false(dv_observe_define(&o, f->e, 2, &a, false, false, 0, &flags));
	/* a new configuration starts afresh */
	assert_int_equal(dv_observe_defines(&o, 1), 0);
	assert_true(dv_observe_define(&o, f->e, 0, &a, true, true, 0, &flags));
	dv_observe_clear(&o);
	fx_free(f);
}

/* A probe answered by a cluster node's MAC met no stranger; the MACs stay
 * known after their node leaves, the most recent 256 of them. */
static void test_cluster_macs(void **state)
{
	struct dv_observe o;
	uint8_t m[6] = {0x02, 0, 0, 0, 0, 1}, zero[6] = {0};

	dv_observe_init(&o);
	assert_false(dv_observe_is_cluster_mac(&o, m));
	dv_observe_cluster_mac(&o, zero); /* a configuration without one */
	assert_int_equal(o.n_macs, 0);
	dv_observe_cluster_mac(&o, m);
	dv_observe_cluster_mac(&o, m);
	assert_int_equal(o.n_macs, 1);
	assert_true(dv_observe_is_cluster_mac(&o, m));
	for (unsigned i = 0; i < DV_OBSERVE_MAX_MACS; i++) {
		uint8_t x[6] = {0x02, 1, 0, 0, (uint8_t)(i >> 8), (uint8_t)i};

		dv_observe_cluster_mac(&o, x);
	}
	assert_int_equal(o.n_macs, DV_OBSERVE_MAX_MACS);
	assert_false(dv_observe_is_cluster_mac(&o, m)); /* the oldest went */
	dv_observe_clear(&o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unbound_without_hold),
		cmocka_unit_test(test_grace_for_a_socket_not_seen_yet),
		cmocka_unit_test(test_no_grace_for_a_socket_that_came_and_went),
		cmocka_unit_test(test_bind_watch),
		cmocka_unit_test(test_probe_once),
		cmocka_unit_test(test_define_reports_changes),
		cmocka_unit_test(test_cluster_macs),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
