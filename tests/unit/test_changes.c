/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What changes.c names each change of the ownership table, event by event,
 * seen from node 1:
 *
 *   n1 (self) ── n2 ── n3        quorate; every node: VIPARANGE 10.1.1.0/24
 *                                MOVEABLE NONDISRUPTIVE
 *
 *   A = 10.1.1.20: claimed by n1, a standby on n2; n1's client goes: n2 takes it over.
 *   B = 10.1.1.21: claimed by n2, a standby of n1's client; n2's client goes:
 *                  n1 takes it over and its client is granted it; n3 claims it:
 *                  a move.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include <string.h>

#include "changes.h"

#define MAX_SEEN 16

static const dv_nodeid_t all3[] = {1, 2, 3};

struct run {
	struct dv_engine *e;
	struct dv_changes ch;
	struct dv_conf_range range;
	size_t n;
	struct dv_change seen[MAX_SEEN];
	uint64_t t;
};

static struct dv_addr A(const char *s) {
	struct dv_addr a;

	assert_int_equal(dv_addr_parse(s, &a), 0);
	return a;
}

static void
collect(void *ud, const struct dv_change *c)
{
	struct run *r = ud;

	assert_true(r->n < MAX_SEEN);
	r->seen[r->n] = *c;
	r->seen[r->n++].reason = NULL; /* lives only until the next apply */
}

/* Apply ev as the daemon does; the changes it made are in r->seen. */
static void step(struct run *r, struct dv_event ev)
{
	struct dv_effects fx = {0};

	r->n = 0;
	ev.time_ms = ++r->t;
	assert_int_equal(dv_changes_before(&r->ch, r->e, &ev), 0);
	assert_int_equal(dv_engine_apply(r->e, &ev, &fx), 0);
	dv_changes_after(&r->ch, r->e, &ev, &fx, collect, r);
	dv_effects_free(&fx);
}

static void expect(const struct run *r, size_t i, enum dv_change_kind kind, const char *addr, dv_nodeid_t from,
		   dv_nodeid_t to)
{
	assert_true(i < r->n);
	assert_string_equal(dv_change_name(r->seen[i].kind), dv_change_name(kind));
	if (addr) {
		struct dv_addr a = A(addr);

		assert_int_equal(dv_addr_cmp(&r->seen[i].addr, &a), 0);
	}
	assert_int_equal(r->seen[i].from, from);
	assert_int_equal(r->seen[i].to, to);
}

static struct dv_event claim(dv_nodeid_t node, uint64_t client, const char *addr)
{
	return (struct dv_event){.type = DV_EV_CLAIM,
				 .node = node,
				 .claim = {.client = client, .seq = 1, .addr = A(addr), .kind = DV_KIND_API}};
}

static struct dv_event standby(dv_nodeid_t node, uint64_t client, const char *addr)
{
	return (struct dv_event){
		.type = DV_EV_STANDBY,
		.node = node,
		.standby = {.client = client, .seq = 1, .addr = A(addr), .rank = 10, .kind = DV_KIND_API}};
}

static struct dv_event gone(dv_nodeid_t node, uint64_t client)
{
	return (struct dv_event){.type = DV_EV_CLIENT_GONE, .node = node, .client_gone.client = client};
}

static int setup(void **ud)
{
	struct run *r = calloc(1, sizeof(*r));

	assert_non_null(r);
	r->e = dv_engine_new(1);
	assert_non_null(r->e);
	assert_int_equal(dv_prefix_parse("10.1.1.0/24", &r->range.prefix), 0);
	r->range.policy = DV_POLICY_NONDISRUPTIVE;
	step(r, (struct dv_event){.type = DV_EV_MEMBERSHIP, .node = 1, .membership = {.n = 3, .nodes = all3}});
	expect(r, 0, DV_CHANGE_MEMBERSHIP, NULL, 0, 0);
	step(r, (struct dv_event){.type = DV_EV_QUORUM, .node = 1, .quorum.quorate = true});
	assert_int_equal(r->n, 1);
	expect(r, 0, DV_CHANGE_QUORUM, NULL, 0, 0);
	assert_true(r->seen[0].quorate);
	for (dv_nodeid_t n = 1; n <= 3; n++) {
		struct dv_event ev = {.type = DV_EV_NODE_CONFIG, .node = n, .node_config = {.n_ranges = 1}};

		ev.node_config.ranges = &r->range;
		snprintf(ev.node_config.name, sizeof(ev.node_config.name), "n%u", n);
		step(r, ev);
		assert_int_equal(r->n, 0);
	}
	*ud = r;
	return 0;
}

static int teardown(void **ud)
{
	struct run *r = *ud;

	dv_changes_free(&r->ch);
	dv_engine_free(r->e);
	free(r);
	return 0;
}

static void test_activation_takeover_release(void **ud)
{
	struct run *r = *ud;

	step(r, claim(1, 7, "10.1.1.20"));
	assert_int_equal(r->n, 1);
	expect(r, 0, DV_CHANGE_ACTIVATION, "10.1.1.20", 0, 1);
	assert_int_equal(r->seen[0].origin, DV_ORIGIN_API);

	step(r, standby(2, 9, "10.1.1.20"));
	assert_int_equal(r->n, 0); /* the owner stays */

	/* n1's holder ends: n2's standby gets it; not a grant of n1's. */
	step(r, gone(1, 7));
	assert_int_equal(r->n, 1);
	expect(r, 0, DV_CHANGE_TAKEOVER, "10.1.1.20", 1, 2);

	step(r, (struct dv_event){.type = DV_EV_RELEASE,
				  .node = 2,
				  .release = {.client = 9, .seq = 2, .addr = A("10.1.1.20"), .kind = DV_KIND_API}});
	assert_int_equal(r->n, 1);
	expect(r, 0, DV_CHANGE_RELEASE, "10.1.1.20", 2, 0);
}

static void test_grant_and_move(void **ud)
{
	struct run *r = *ud;

	step(r, claim(2, 12, "10.1.1.21"));
	expect(r, 0, DV_CHANGE_ACTIVATION, "10.1.1.21", 0, 2);
	step(r, standby(1, 11, "10.1.1.21"));
	assert_int_equal(r->n, 0);

	/* n2's client goes: n1 takes over, and tells its client. */
	step(r, gone(2, 12));
	assert_int_equal(r->n, 2);
	expect(r, 0, DV_CHANGE_TAKEOVER, "10.1.1.21", 2, 1);
	expect(r, 1, DV_CHANGE_GRANT, "10.1.1.21", 0, 1);
	assert_int_equal(r->seen[1].client, 11);

	/* n3 asks for it in a MOVEABLE range: a move, not a takeover. */
	step(r, claim(3, 5, "10.1.1.21"));
	assert_int_equal(r->n, 1);
	expect(r, 0, DV_CHANGE_MOVE, "10.1.1.21", 1, 3);
}

/* A membership change, a node's departure, names no address: its
 * changes are the VIPAs the engine touched (no walk of them all); one
 * removed and made again in the event is reported from its first owner. */
static void test_departure_and_quorum(void **ud)
{
	struct run *r = *ud;
	static const dv_nodeid_t n13[] = {1, 3};

	step(r, claim(2, 20, "10.1.1.22"));
	step(r, standby(3, 21, "10.1.1.22"));
	step(r, claim(2, 22, "10.1.1.23"));
	step(r, claim(1, 23, "10.1.1.24"));
	/* n2 leaves: its two addresses lose their owner until the quorum
	 * is confirmed; n1's stays. */
	step(r, (struct dv_event){.type = DV_EV_MEMBERSHIP, .node = 1, .membership = {.n = 2, .nodes = n13}});
	assert_int_equal(r->n, 3);
	expect(r, 0, DV_CHANGE_RELEASE, "10.1.1.22", 2, 0);
	expect(r, 1, DV_CHANGE_RELEASE, "10.1.1.23", 2, 0);
	expect(r, 2, DV_CHANGE_MEMBERSHIP, NULL, 0, 0);
	/* Confirmed: n3's standby takes .22; .23 had nobody else. */
	step(r, (struct dv_event){.type = DV_EV_QUORUM, .node = 1, .quorum.quorate = true});
	assert_int_equal(r->n, 1);
	expect(r, 0, DV_CHANGE_ACTIVATION, "10.1.1.22", 0, 3);
	step(r, (struct dv_event){.type = DV_EV_QUORUM, .node = 1, .quorum.quorate = false});
	assert_int_equal(r->n, 1);
	expect(r, 0, DV_CHANGE_QUORUM, NULL, 0, 0);
	assert_false(r->seen[0].quorate);
	/* The same value again is no change. */
	step(r, (struct dv_event){.type = DV_EV_QUORUM, .node = 1, .quorum.quorate = false});
	assert_int_equal(r->n, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_activation_takeover_release, setup, teardown),
		cmocka_unit_test_setup_teardown(test_grant_and_move, setup, teardown),
		cmocka_unit_test_setup_teardown(test_departure_and_quorum, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
