/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The ring lease (fence.c), driven by scripted hand-overs and returns. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "fence.h"

#define MS 1000ULL
/* token 200, consensus 240: lease 540 ms, period 20 ms, margin 180 ms */
#define T0 (1000 * MS)

static bool check(struct dv_fence *f, uint64_t now, bool *changed)
{
	return dv_fence_check(f, now, changed);
}

static void test_parameters(void **state)
{
	struct dv_fence f = {0};

	dv_fence_init(&f, 200, 240, T0);
	assert_int_equal(f.lease_us, 540 * MS);
	assert_int_equal(f.period_us, 20 * MS);
	assert_int_equal(f.margin_us, 180 * MS);
	/* a very short token: the period does not go below 10 ms */
	dv_fence_init(&f, 50, 60, T0);
	assert_int_equal(f.period_us, 10 * MS);
	dv_fence_clear(&f);
}

static void test_healthy_ring_holds(void **state)
{
	struct dv_fence f = {0};
	bool changed;
	uint64_t now = T0;

	dv_fence_init(&f, 200, 240, T0);
	assert_false(dv_fence_beat_due(&f, now));
	for (int i = 0; i < 1000; i++) {
		now += 20 * MS;
		assert_true(dv_fence_beat_due(&f, now));
		assert_int_equal(dv_fence_handed(&f, now), 0);
		assert_false(dv_fence_beat_due(&f, now));
		/* back after a few ms, sometimes after a long stall of
		 * this process (what came back is counted before judging) */
		now += i % 100 == 0 ? 500 * MS : 2 * MS;
		dv_fence_returned(&f);
		assert_false(check(&f, now, &changed));
		assert_false(changed);
	}
	assert_int_equal(f.n, 0);
	dv_fence_clear(&f);
}

static void test_cut_off_lapses(void **state)
{
	struct dv_fence f = {0};
	bool changed;
	uint64_t now = T0, cut;

	dv_fence_init(&f, 200, 240, T0);
	assert_int_equal(dv_fence_handed(&f, now), 0);
	now += 3 * MS;
	dv_fence_returned(&f);
	assert_int_equal(f.proof, T0);
	/* the ring breaks; messages still go out but never come back */
	cut = now;
	while (!check(&f, now, &changed)) {
		assert_false(changed);
		if (dv_fence_beat_due(&f, now))
			assert_int_equal(dv_fence_handed(&f, now), 0);
		now += 20 * MS;
	}
	assert_true(changed);
	/* within lease + two periods of the cut (fence.h's bound) */
	assert_true(now - cut <= 540 * MS + 2 * 20 * MS);
	assert_true(now - cut > 540 * MS);
	assert_true(check(&f, now + MS, &changed));
	assert_false(changed);
	/* a new ring: everything comes back */
	while (f.n)
		dv_fence_returned(&f);
	assert_false(check(&f, now + MS, &changed));
	assert_true(changed);
	dv_fence_clear(&f);
}

static void test_flow_control_counts(void **state)
{
	struct dv_fence f = {0};
	bool changed;
	uint64_t now = T0;

	dv_fence_init(&f, 200, 240, T0);
	/* Corosync refuses every send (a stalled Corosync fills its queue) */
	dv_fence_refused(&f, now);
	assert_false(check(&f, now + 540 * MS, &changed));
	assert_true(check(&f, now + 541 * MS, &changed));
	assert_true(changed);
	/* accepted at last: it counts from the first refusal */
	assert_int_equal(dv_fence_handed(&f, now + 600 * MS), 0);
	assert_true(check(&f, now + 601 * MS, &changed));
	dv_fence_returned(&f);
	assert_int_equal(f.proof, T0);
	assert_false(check(&f, now + 602 * MS, &changed));
	assert_true(changed);
	dv_fence_clear(&f);
}

static void test_takeover_at(void **state)
{
	struct dv_fence f = {0};
	uint64_t now = T0;

	dv_fence_init(&f, 200, 240, T0);
	/* no proof yet: from now */
	assert_int_equal(dv_fence_takeover_at(&f, now), now + 720 * MS);
	for (int i = 0; i < 200; i++) {
		assert_int_equal(dv_fence_handed(&f, now), 0);
		now += 2 * MS;
	}
	/* 150 came back: the proof is the 150th's hand-over */
	for (int i = 0; i < 150; i++)
		dv_fence_returned(&f);
	assert_int_equal(f.proof, T0 + 149 * 2 * MS);
	assert_int_equal(dv_fence_takeover_at(&f, now), T0 + 298 * MS + 720 * MS);
	/* a return with nothing recorded (sent before this lease) is ignored */
	for (int i = 0; i < 60; i++)
		dv_fence_returned(&f);
	assert_int_equal(f.n, 0);
	assert_int_equal(f.proof, T0 + 199 * 2 * MS);
	dv_fence_clear(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parameters),     cmocka_unit_test(test_healthy_ring_holds),
		cmocka_unit_test(test_cut_off_lapses), cmocka_unit_test(test_flow_control_counts),
		cmocka_unit_test(test_takeover_at),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
