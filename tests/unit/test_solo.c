/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * CLUSTER NONE's stream (cluster_solo.c): events come back in submission
 * order; one submitted during a delivery comes after that delivery, not
 * inside it, and with its own copy of the arrays it points to.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include <string.h>

#include "cluster.h"

#define MAX_SEEN 16

struct sink {
	struct dv_cluster *c;
	int depth, max_depth;
	size_t n;
	struct dv_event seen[MAX_SEEN];
	dv_nodeid_t members[MAX_SEEN][4];
	struct dv_conf_define defines[MAX_SEEN];
};

/* A MEMBERSHIP delivery asks for a QUORUM and a NODE_CONFIG whose arrays
 * are gone (overwritten) by the time they are delivered. */
static void on_deliver(void *ud, const struct dv_event *ev)
{
	struct sink *s = ud;

	assert_true(s->n < MAX_SEEN);
	s->depth++;
	if (s->depth > s->max_depth)
		s->max_depth = s->depth;
	s->seen[s->n] = *ev;
	if (ev->type == DV_EV_MEMBERSHIP) {
		assert_true(ev->membership.n <= 4);
		memcpy(s->members[s->n], ev->membership.nodes, ev->membership.n * sizeof(dv_nodeid_t));
	}
	if (ev->type == DV_EV_NODE_CONFIG && ev->node_config.n_defines == 1)
		s->defines[s->n] = ev->node_config.defines[0];
	s->n++;
	if (ev->type == DV_EV_MEMBERSHIP) {
		struct dv_conf_define def = {.rank = 7};
		struct dv_event q = {.type = DV_EV_QUORUM, .quorum.quorate = true};
		struct dv_event nc = {.type = DV_EV_NODE_CONFIG};

		assert_int_equal(dv_cluster_submit(s->c, &q), 0);
		nc.node_config.n_defines = 1;
		nc.node_config.defines = &def;
		assert_int_equal(dv_cluster_submit(s->c, &nc), 0);
		def.rank = 99; /* the queue kept its own copy */
		memset(&q, 0, sizeof(q));
		assert_int_equal(s->n, 1); /* neither delivered yet */
	}
	s->depth--;
}

static const struct dv_cluster_ops ops = {.deliver = on_deliver};

static void test_fifo_not_reentrant(void **state)
{
	struct sink s = {0};
	dv_nodeid_t nodes[] = {1, 2};
	struct dv_event m = {.type = DV_EV_MEMBERSHIP, .membership = {.n = 2, .nodes = nodes}};
	struct dv_event gone = {.type = DV_EV_CLIENT_GONE, .client_gone.client = 5};

	(void)state;
	assert_int_equal(dv_cluster_solo_new(&ops, &s, &s.c), 0);
	assert_int_equal(s.c->self, 1);
	assert_int_equal(dv_cluster_submit(s.c, &m), 0);
	/* delivered before submit returned, the nested ones after it */
	assert_int_equal(s.n, 3);
	assert_int_equal(s.max_depth, 1);
	assert_int_equal(s.seen[0].type, DV_EV_MEMBERSHIP);
	assert_int_equal(s.seen[0].node, 1);
	assert_int_equal(s.members[0][0], 1);
	assert_int_equal(s.members[0][1], 2);
	assert_int_equal(s.seen[1].type, DV_EV_QUORUM);
	assert_true(s.seen[1].quorum.quorate);
	assert_int_equal(s.seen[2].type, DV_EV_NODE_CONFIG);
	assert_int_equal(s.defines[2].rank, 7);

	assert_int_equal(dv_cluster_submit(s.c, &gone), 0);
	assert_int_equal(s.n, 4);
	assert_int_equal(s.seen[3].client_gone.client, 5);
	assert_null(dv_cluster_free(s.c));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fifo_not_reentrant),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
