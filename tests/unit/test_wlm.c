/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Spare CPU and accept-queue headroom as weights (wlm.c): /proc/stat's
 * line parsed, the window, the smoothing, the 3/4-step hysteresis and the
 * hold time, SERVERWLM's scaling.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "engine.h"
#include "wlm.h"

static void test_parse(void **state)
{
	struct dv_wlm_jiffies j;

	assert_int_equal(dv_wlm_parse("cpu  10 1 2 300 4 5 6 7 8 9\ncpu0 1 2 3 4\n", &j), 0);
	assert_int_equal(j.total, 10 + 1 + 2 + 300 + 4 + 5 + 6 + 7); /* guest is in user */
	assert_int_equal(j.spare, 304);
	/* Old kernels: four columns. */
	assert_int_equal(dv_wlm_parse("cpu 1 2 3 4\n", &j), 0);
	assert_int_equal(j.total, 10);
	assert_int_equal(j.spare, 4);
	assert_int_equal(dv_wlm_parse("cpu0 1 2 3 4\n", &j), -EBADMSG);
	assert_int_equal(dv_wlm_parse("cpu 1 2 x\n", &j), -EBADMSG);
	assert_int_equal(dv_wlm_parse("", &j), -EBADMSG);
	assert_int_equal(dv_wlm_parse("cpu 18446744073709551615 1 0 0\n", &j), -EBADMSG);
}

/* This machine's own file reads. */
static void test_proc_stat(void **state)
{
	struct dv_wlm w;

	dv_wlm_init(&w, "/proc/stat");
	assert_int_equal(dv_wlm_sample(&w, 1000), 0);
	assert_int_equal(dv_wlm_weight(&w), DV_AS_WEIGHT_MAX);
	dv_wlm_init(&w, "/nonexistent/stat");
	assert_int_equal(dv_wlm_sample(&w, 1000), -ENOENT);
}

/* Feed a spare share for one window of 100 jiffies. */
static bool feed(struct dv_wlm *w, struct dv_wlm_jiffies *j, uint64_t *now, unsigned spare_pct)
{
	j->total += 100;
	j->spare += spare_pct;
	*now += DV_WLM_WINDOW_MS;
	return dv_wlm_update(w, j, *now);
}

static void test_weight(void **state)
{
	struct dv_wlm w;
	struct dv_wlm_jiffies j = {1000, 500};
	uint64_t now = 5000;

	dv_wlm_init(&w, "unused");
	assert_false(dv_wlm_update(&w, &j, now)); /* the first reading */
	assert_int_equal(dv_wlm_weight(&w), 16);
	/* A window not over yet counts nothing. */
	j.total += 100;
	assert_false(dv_wlm_update(&w, &j, now + DV_WLM_WINDOW_MS - 1));
	j.total -= 100;
	/* All busy: 1 + 15 x 0 = 1. */
	assert_true(feed(&w, &j, &now, 0));
	assert_int_equal(dv_wlm_weight(&w), 1);
	/* Half idle: smoothed to 0.25 first, but held (DV_WLM_HOLD_MS). */
	assert_false(feed(&w, &j, &now, 50));
	assert_int_equal(dv_wlm_weight(&w), 1);
	/* Held for 10 s from the last change, then 1 + 15 x 0.46875 = 8.03 -> 8. */
	assert_false(feed(&w, &j, &now, 50));
	assert_false(feed(&w, &j, &now, 50));
	assert_true(feed(&w, &j, &now, 50));
	assert_int_equal(dv_wlm_weight(&w), 8);
	/* Less than 3/4 of a step away (1 + 15 x 0.5 = 8.5): stays. */
	for (int i = 0; i < 8; i++)
		assert_false(feed(&w, &j, &now, 50));
	assert_int_equal(dv_wlm_weight(&w), 8);
	/* Idle for long: 16 at last. */
	for (int i = 0; i < 20; i++)
		feed(&w, &j, &now, 100);
	assert_int_equal(dv_wlm_weight(&w), 16);
	/* Counters that went back (a different file): start over, no change. */
	j = (struct dv_wlm_jiffies){10, 0};
	assert_false(dv_wlm_update(&w, &j, now += DV_WLM_WINDOW_MS));
	assert_int_equal(dv_wlm_weight(&w), 16);
}

static void test_server_weight(void **state)
{
	assert_int_equal(dv_wlm_server_weight(16, 0, 128), 16);
	assert_int_equal(dv_wlm_server_weight(16, 64, 128), 8);
	assert_int_equal(dv_wlm_server_weight(16, 127, 128), 1);
	assert_int_equal(dv_wlm_server_weight(16, 128, 128), 1); /* full: still listening */
	assert_int_equal(dv_wlm_server_weight(16, 500, 128), 1);
	assert_int_equal(dv_wlm_server_weight(4, 96, 128), 1);
	assert_int_equal(dv_wlm_server_weight(16, 0, 0), 1); /* listen(fd, 0) */
}

/* SERVERWLM's weight as reported: the first at once, then held 10 s. */
static void test_held(void **state)
{
	struct dv_wlm_hold h = {0};

	assert_int_equal(dv_wlm_held(&h, 16, 1000), 16);
	assert_int_equal(dv_wlm_held(&h, 1, 1250), 16);
	assert_int_equal(dv_wlm_held(&h, 1, 1000 + DV_WLM_HOLD_MS - 1), 16);
	assert_int_equal(dv_wlm_held(&h, 1, 1000 + DV_WLM_HOLD_MS), 1);
	assert_int_equal(dv_wlm_held(&h, 16, 1000 + DV_WLM_HOLD_MS + 250), 1);
	assert_int_equal(dv_wlm_held(&h, 16, 1000 + 2 * DV_WLM_HOLD_MS), 16);
}

static uint32_t sum(const uint32_t *c, size_t n)
{
	uint32_t t = 0;

	for (size_t k = 0; k < n; k++)
		t += c[k];
	return t;
}

/* WEIGHTEDACTIVE: the weights' shares without connections; more slots to
 * a target below its weighted share of the open ones, fewer above; the
 * gain capped at 4 either way; none for a target not ready. */
static void test_active(void **state)
{
	const unsigned w13[2] = {1, 3}, w3[3] = {10, 0, 10};
	uint32_t c[3], slots[2520];

	dv_wlm_active(w13, (const uint64_t[]){0, 0}, 2, 2520, c);
	assert_int_equal(c[0], 630);
	assert_int_equal(c[1], 1890);
	/* In proportion already (25:75): the weights' shares. */
	dv_wlm_active(w13, (const uint64_t[]){25, 75}, 2, 2520, c);
	assert_int_equal(c[0], 630);
	/* Target 0 has none of 100 (fair: 25): (25 + 4) / 4, capped at 4, x 1
	 * against 3 x 79/104: 2520 x 4 / 6.28 = 1605. */
	dv_wlm_active(w13, (const uint64_t[]){0, 100}, 2, 2520, c);
	assert_int_equal(sum(c, 2), 2520);
	assert_int_equal(c[0], 1605);
	/* Target 0 above its share (50 of 100, fair 25): 29/54 against
	 * 3 x 79/54: 275. */
	dv_wlm_active(w13, (const uint64_t[]){50, 50}, 2, 2520, c);
	assert_int_equal(c[0], 275);
	/* Far above (100 of 100): 29/104 against 3 x 4 (capped): never
	 * nothing. */
	dv_wlm_active(w13, (const uint64_t[]){100, 0}, 2, 2520, c);
	assert_int_equal(c[0], 57);
	/* One connection in flight moves little: 684 against 630. */
	dv_wlm_active(w13, (const uint64_t[]){0, 1}, 2, 2520, c);
	assert_int_equal(c[0], 684);
	/* Not ready: no slot; the others share all. */
	dv_wlm_active(w3, (const uint64_t[]){5, 9, 5}, 3, 2520, c);
	assert_int_equal(c[1], 0);
	assert_int_equal(c[0], 1260);
	assert_int_equal(c[2], 1260);
	/* Nobody ready: nothing. */
	dv_wlm_active((const unsigned[]){0, 0}, (const uint64_t[]){1, 1}, 2, 2520, c);
	assert_int_equal(sum(c, 2), 0);
	/* Fewer slots than targets: still m in all. */
	dv_wlm_active((const unsigned[]){1, 1, 1}, (const uint64_t[]){0, 0, 0}, 3, 2, c);
	assert_int_equal(sum(c, 3), 2);
	/* The slots: runs of target indexes; none left over unfilled. */
	dv_wlm_active(w13, (const uint64_t[]){0, 0}, 2, 2520, c);
	dv_wlm_active_slots(c, 2, 2520, slots);
	assert_int_equal(slots[0], 0);
	assert_int_equal(slots[629], 0);
	assert_int_equal(slots[630], 1);
	assert_int_equal(slots[2519], 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),	      cmocka_unit_test(test_proc_stat), cmocka_unit_test(test_weight),
		cmocka_unit_test(test_server_weight), cmocka_unit_test(test_active),	cmocka_unit_test(test_held),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
