/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The lifetime of kernel addresses from the refresh cost (lease.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "lease.h"

static void test_no_cost_is_lease(void **state)
{
	struct dv_lease_cost none = {0};

	(void)state;
	assert_int_equal(dv_lease_for(30, NULL, 65536), 30);
	assert_int_equal(dv_lease_for(30, &none, 65536), 30);
}

static void test_cheap_pass_keeps_lease(void **state)
{
	/* 1,000 addresses refreshed with 20 ms of CPU in 25 ms: 6 s < 30 s */
	struct dv_lease_cost c = {.n = 1000, .cpu_us = 20000, .wall_us = 25000};

	(void)state;
	assert_int_equal(dv_lease_for(30, &c, 1000), 30);
	assert_int_equal(dv_lease_for(30, &c, 500), 30);
	assert_int_equal(dv_lease_for(30, &c, 0), 30);
}

static void test_cpu_share(void **state)
{
	/* 281.3 ms of CPU for 10,469 (measured): 300 x 0.2813 = 84.39 -> 85 s */
	struct dv_lease_cost c = {.n = 10469, .cpu_us = 281300, .wall_us = 595900};

	(void)state;
	assert_int_equal(dv_lease_for(30, &c, 10469), 85);
	/* a fifth of them: 1/25 of the cost, back to LEASE */
	assert_int_equal(dv_lease_for(30, &c, 2094), 30);
}

static void test_growth_scales_with_square(void **state)
{
	struct dv_lease_cost c = {.n = 1000, .cpu_us = 100000, .wall_us = 150000};

	(void)state;
	/* 30 s for 1,000 (300 x 0.1 s); twice as many: 4 x */
	assert_int_equal(dv_lease_for(10, &c, 1000), 30);
	assert_int_equal(dv_lease_for(10, &c, 2000), 120);
	assert_int_equal(dv_lease_for(10, &c, 4000), 480);
}

static void test_wall_rules_on_a_starved_machine(void **state)
{
	/* 10 ms of CPU but 20 s of wall clock: a pass must end within a third
	 * of the lifetime */
	struct dv_lease_cost c = {.n = 20000, .cpu_us = 10000, .wall_us = 20000000};

	(void)state;
	assert_int_equal(dv_lease_for(30, &c, 20000), 60);
	assert_int_equal(dv_lease_for(30, &c, 40000), 240);
}

static void test_capped(void **state)
{
	/* 300 s of CPU: 90,000 s wanted */
	struct dv_lease_cost c = {.n = 256, .cpu_us = 300000000, .wall_us = 1};
	struct dv_lease_cost huge = {.n = 1, .cpu_us = UINT64_MAX / 2, .wall_us = UINT64_MAX / 2};

	(void)state;
	assert_int_equal(dv_lease_for(30, &c, 256), DV_LEASE_MAX);
	assert_int_equal(dv_lease_for(30, &huge, 1u << 20), DV_LEASE_MAX);
	/* a configured lease above the cap stays */
	assert_int_equal(dv_lease_for(DV_LEASE_MAX, &c, 256), DV_LEASE_MAX);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_no_cost_is_lease),
		cmocka_unit_test(test_cheap_pass_keeps_lease),
		cmocka_unit_test(test_cpu_share),
		cmocka_unit_test(test_growth_scales_with_square),
		cmocka_unit_test(test_wall_rules_on_a_starved_machine),
		cmocka_unit_test(test_capped),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
