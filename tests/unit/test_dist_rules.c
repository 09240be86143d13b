/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * dist_rules.c refuses descriptions nft could not honour; the text it
 * writes for good ones is golden (tests/rules/, run-golden.sh) and loads
 * into a kernel (tests/system/test_dist_rules.py).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dist_rules.h"
#include "maglev.h"

static const uint16_t ports[] = {80};
static uint32_t slots[3] = {0, 1, 0};
static struct dv_dist_target targets[2];
static struct dv_dist_service svc;
static struct dv_dist_ruleset rs;

static int setup(void **state)
{
	targets[0] = (struct dv_dist_target){.name = "n1", .fwd = DV_DIST_FWD_LOCAL};
	targets[1] = (struct dv_dist_target){.name = "n2", .fwd = DV_DIST_FWD_NEXTHOP, .ifname = "eth0"};
	dv_addr_parse("192.0.2.2", &targets[1].next);
	slots[0] = 0;
	slots[1] = 1;
	slots[2] = 0;
	svc = (struct dv_dist_service){.ports = ports,
				       .n_ports = 1,
				       .method = DV_DIST_BASEWLM,
				       .seed = 7,
				       .distributing = true,
				       .n_targets = 2,
				       .targets = targets,
				       .m = 3,
				       .slots = slots};
	dv_addr_parse("10.1.1.10", &svc.vipa);
	rs = (struct dv_dist_ruleset){.ifname = "eth0", .n_services = 1, .services = &svc};
	return 0;
}

static int write_rules(void)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	int r;

	assert_non_null(f);
	r = dv_dist_rules_write(&rs, f);
	fclose(f);
	if (r == 0)
		assert_non_null(strstr(text, "jhash ip saddr . tcp sport mod 3 seed 0x00000007"));
	else
		assert_int_equal(len, 0); /* nothing half written */
	free(text);
	return r;
}

static void test_good(void **state)
{
	assert_int_equal(write_rules(), 0);
	/* Empty slots are left out, all of them too. */
	slots[1] = DV_MAGLEV_NONE;
	assert_int_equal(write_rules(), 0);
}

static void test_bad(void **state)
{
	rs.ifname = "eth0\" accept";
	assert_int_equal(write_rules(), -EINVAL);
	setup(state);
	rs.ifname = "";
	assert_int_equal(write_rules(), -EINVAL);
	setup(state);
	slots[2] = 2; /* no such target */
	assert_int_equal(write_rules(), -EINVAL);
	setup(state);
	svc.m = 1; /* jhash needs a modulus of 2 or more */
	assert_int_equal(write_rules(), -EINVAL);
	setup(state);
	dv_addr_parse("2001:db8::2", &targets[1].next); /* next hop of the other family */
	assert_int_equal(write_rules(), -EINVAL);
	setup(state);
	targets[0].name = "n 1";
	assert_int_equal(write_rules(), -EINVAL);
	setup(state);
	svc.n_ports = 0;
	assert_int_equal(write_rules(), -EINVAL);
	setup(state);
	svc.vipa.family = 0;
	assert_int_equal(write_rules(), -EINVAL);
	setup(state);
	assert_int_equal(dv_dist_rules_write_slots(&rs, 1, stdout), -EINVAL);
}

/* The text a writer gives for service 0, or NULL when it refuses. */
static char *text_of(int (*w)(const struct dv_dist_ruleset *rs, const uint32_t *old, FILE *f), const uint32_t *old)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	int r;

	assert_non_null(f);
	r = w(&rs, old, f);
	fclose(f);
	if (r == 0)
		return text;
	free(text);
	return NULL;
}

static int delta0(const struct dv_dist_ruleset *r, const uint32_t *old, FILE *f)
{
	return dv_dist_rules_write_slot_delta(r, 0, old, f);
}

static int ingress(const struct dv_dist_ruleset *r, const uint32_t *old, FILE *f)
{
	(void)old;
	return dv_dist_rules_write_ingress(r, f);
}

/* Only the slots that changed: re-pointed ones deleted and added again,
 * emptied ones deleted, filled ones added. */
static void test_slot_delta(void **state)
{
	const uint32_t was[3] = {1, DV_MAGLEV_NONE, 0}, same[3] = {0, 1, 0}, bad[3] = {0, 2, 0};
	char *t;

	slots[1] = DV_MAGLEV_NONE; /* now {0, none, 0} */
	t = text_of(delta0, was);
	assert_non_null(t);
	assert_string_equal(t, "delete element netdev dvipa s0_slots {\n\t0\n}\n"
			       "add element netdev dvipa s0_slots {\n\t0 : 1\n}\n"
			       "flush set netdev dvipa s0_up\nadd element netdev dvipa s0_up { 1 }\n");
	free(t);
	slots[1] = 1;
	t = text_of(delta0, same);
	assert_non_null(t);
	assert_string_equal(t, "");
	free(t);
	t = text_of(delta0, was);
	assert_string_equal(t, "delete element netdev dvipa s0_slots {\n\t0\n}\n"
			       "add element netdev dvipa s0_slots {\n\t0 : 1, 1 : 2\n}\n"
			       "flush set netdev dvipa s0_up\nadd element netdev dvipa s0_up { 1, 2 }\n");
	free(t);
	/* an old slot naming a target that is not there */
	assert_null(text_of(delta0, bad));
	assert_null(text_of(delta0, NULL));
}

static void test_ingress(void **state)
{
	char *t = text_of(ingress, NULL);

	assert_string_equal(t, "flush chain netdev dvipa ingress\n"
			       "add rule netdev dvipa ingress ip daddr 10.1.1.10 tcp dport { 80 } jump s0\n");
	free(t);
	svc.distributing = false;
	t = text_of(ingress, NULL);
	assert_string_equal(t, "flush chain netdev dvipa ingress\n");
	free(t);
}

/* SYSPLEXPORTS: another node's slice goes to it, first, on the distributor
 * only; a slice nft could not honour is refused. */
static void test_slices(void **state)
{
	struct dv_dist_slice x = {
		.vipa = svc.vipa, .lo = 33792, .hi = 34815, .distributing = true, .target = targets[1]};
	char *t;

	rs.n_slices = 1;
	rs.slices = &x;
	t = text_of(ingress, NULL);
	assert_string_equal(t, "flush chain netdev dvipa ingress\n"
			       "add rule netdev dvipa ingress ip daddr 10.1.1.10 meta l4proto { tcp, udp } th dport "
			       "33792-34815 fwd ip to 192.0.2.2 device \"eth0\"\n"
			       "add rule netdev dvipa ingress ip daddr 10.1.1.10 tcp dport { 80 } jump s0\n");
	free(t);
	x.distributing = false;
	t = text_of(ingress, NULL);
	assert_null(strstr(t, "th dport"));
	free(t);
	x.target = targets[0]; /* this node's own: no rule, never written */
	assert_int_equal(write_rules(), -EINVAL);
	x.target = targets[1];
	x.hi = 33791;
	assert_int_equal(write_rules(), -EINVAL);
	x.hi = 34815;
	x.lo = 0;
	assert_int_equal(write_rules(), -EINVAL);
	x.lo = 33792;
	assert_int_equal(write_rules(), 0);
	rs.slices = NULL;
	assert_int_equal(write_rules(), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_good, setup),	cmocka_unit_test_setup(test_bad, setup),
		cmocka_unit_test_setup(test_slot_delta, setup), cmocka_unit_test_setup(test_ingress, setup),
		cmocka_unit_test_setup(test_slices, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
