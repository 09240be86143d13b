/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The engine, driven by event scripts.
 *
 *   world: one engine per node (self = 1..N), all fed the same stream
 *
 *     n1 ── n2 ── n3        ranges of every node (unless a test says):
 *                             10.1.1.0/24  MOVEABLE NONDISRUPTIVE
 *                             10.2.2.0/24  MOVEABLE DISRUPTIVE
 *                             10.3.3.0/24  UNIQUE
 *                             fd00:1::/64  MOVEABLE NONDISRUPTIVE
 *
 * After every event the world checks that all engines agree on every VIPA
 * (owner, state, origin, holds, standbys, reason) and that each engine has
 * exactly the addresses installed that it owns while quorate. Each engine
 * records the effects of the last event; the helpers return the reply the
 * requesting node's engine gave.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "engine.h"
#include "engine_world.h"
#include "wire.h"

/* ---- activation and holds ---- */

static void port_slice(struct world *w, dv_nodeid_t node, const char *addr, unsigned blocks)
{
	struct dv_event ev = {.type = DV_EV_PORT_SLICE, .node = node};

	ev.port_slice.addr = A(addr);
	ev.port_slice.blocks = blocks;
	assert_int_equal(apply(w, &ev), 0);
}

static void assert_slice(struct world *w, dv_nodeid_t node, const char *addr, unsigned lo, unsigned hi)
{
	struct dv_port_slice s;
	struct dv_addr a = A(addr);

	for (size_t i = 0; i < 2; i++) {
		bool has = dv_engine_port_slice(w->p[i].e, &a, node, &s);

		assert_int_equal(has, lo != 0);
		if (has) {
			assert_int_equal(s.lo, lo);
			assert_int_equal(s.hi, hi);
		}
	}
}

/* SYSPLEXPORTS: first fit, else the largest free run; kept when asked
 * again; given back on request and when the node leaves the membership. */
static void test_port_slices(void **state)
{
	struct world *w = *state;
	struct dv_event bad = {.type = DV_EV_PORT_SLICE, .node = 1};

	quorum(w, true);
	members(w, 2, 1, 2);
	port_slice(w, 1, "10.9.9.1", 16);
	assert_slice(w, 1, "10.9.9.1", 32768, 33791);
	port_slice(w, 1, "10.9.9.1", 4); /* it has one: kept */
	assert_slice(w, 1, "10.9.9.1", 32768, 33791);
	port_slice(w, 2, "10.9.9.1", 16);
	assert_slice(w, 2, "10.9.9.1", 33792, 34815);
	/* another address has a pool of its own */
	port_slice(w, 2, "10.9.9.2", 1);
	assert_slice(w, 2, "10.9.9.2", 32768, 32831);
	/* a non-member gets nothing */
	port_slice(w, 3, "10.9.9.1", 16);
	assert_slice(w, 3, "10.9.9.1", 0, 0);
	/* n1 gives back; n3 joins and takes the first run that fits */
	port_slice(w, 1, "10.9.9.1", 0);
	assert_slice(w, 1, "10.9.9.1", 0, 0);
	members(w, 3, 1, 2, 3);
	port_slice(w, 3, "10.9.9.1", 8);
	assert_slice(w, 3, "10.9.9.1", 32768, 33279);
	/* too big for any run: the largest one (after n2's slice) */
	port_slice(w, 1, "10.9.9.1", DV_SLICE_POOL_BLOCKS);
	assert_slice(w, 1, "10.9.9.1", 34816, 60927);
	/* n2 leaves the membership: its slices go back to the pool */
	members(w, 2, 1, 3);
	assert_slice(w, 2, "10.9.9.1", 0, 0);
	assert_slice(w, 2, "10.9.9.2", 0, 0);
	/* the pool of 10.9.9.1 now has 33280-34815 free: n2 back, 32 wanted,
	 * 24 there */
	members(w, 3, 1, 2, 3);
	port_slice(w, 2, "10.9.9.1", 32);
	assert_slice(w, 2, "10.9.9.1", 33280, 34815);
	/* nothing left */
	port_slice(w, 1, "10.9.9.3", 1);
	port_slice(w, 3, "10.9.9.3", DV_SLICE_POOL_BLOCKS);
	assert_slice(w, 3, "10.9.9.3", 32832, 60927);
	port_slice(w, 2, "10.9.9.3", 1);
	assert_slice(w, 2, "10.9.9.3", 0, 0);
	/* malformed */
	bad.port_slice.addr = A("10.9.9.1");
	bad.port_slice.blocks = DV_SLICE_POOL_BLOCKS + 1;
	assert_int_equal(dv_engine_apply(w->p[0].e, &bad, NULL), -EINVAL);
}

static void test_initial_state(void **state)
{
	struct world *w = *state;
	const dv_nodeid_t *m;

	assert_false(dv_engine_quorate(w->p[0].e));
	assert_int_equal(dv_engine_members(w->p[0].e, &m), 0);
	assert_int_equal(dv_engine_seq(w->p[0].e), 0);
	assert_int_equal(dv_engine_self(w->p[1].e), 2);
	assert_null(dv_engine_node_name(w->p[0].e, 1));
	/* not quorate yet: nothing can be activated */
	assert_int_equal(claim(w, 1, 7, "10.1.1.5", DV_KIND_API), DV_R_NOQUORUM);
	assert_int_equal(standby(w, 1, 7, "10.1.1.5", 10), DV_R_NOQUORUM);
	/* quorate, but not a member */
	quorum(w, true);
	assert_int_equal(claim(w, 1, 7, "10.1.1.5", DV_KIND_API), DV_R_NORANGE);
	/* member without configuration */
	members(w, 1, 1);
	assert_int_equal(claim(w, 1, 7, "10.1.1.5", DV_KIND_API), DV_R_NORANGE);
	assert_non_null(strstr(last_reply_reason(w, 1), "no configuration"));
	/* the solo start: config, then it works */
	std_conf(w, 1);
	assert_int_equal(claim(w, 1, 7, "10.1.1.5", DV_KIND_API), DV_R_OK);
	assert_true(installed(w, 1, "10.1.1.5"));
	assert_int_equal(dv_engine_seq(w->p[0].e), 8);
}

static void test_activation(void **state)
{
	struct world *w = *state;
	struct dv_vipa_info v;

	assert_int_equal(claim(w, 1, 7, "10.1.1.5", DV_KIND_API), DV_R_OK);
	assert_true(info(w, "10.1.1.5", &v));
	assert_int_equal(v.owner, 1);
	assert_int_equal(v.origin, DV_ORIGIN_API);
	assert_int_equal(v.state, DV_VS_ACTIVE);
	assert_int_equal(v.since_ms, w->time);
	assert_int_equal(v.n_holds, 1);
	assert_int_equal(v.holds[0].kind, DV_KIND_API);
	assert_int_equal(v.holds[0].client, 7);
	assert_int_equal(v.holds[0].uid, 1000);
	assert_int_equal(v.holds[0].since_ms, w->time);
	assert_string_equal(v.reason, "granted to client 7 on n1 (api)");
	/* installed on n1 only, and before the reply */
	assert_true(installed(w, 1, "10.1.1.5"));
	assert_false(installed(w, 2, "10.1.1.5"));
	assert_int_equal(peer(w, 1)->recs[0].type, REC_LOCAL);
	assert_int_equal(peer(w, 1)->recs[0].code, 1);
	assert_int_equal(peer(w, 1)->recs[1].type, REC_REPLY);
	assert_int_equal(count(w, 2, REC_LOCAL), 0);
}

static void test_activation_ipv6(void **state)
{
	struct world *w = *state;

	assert_int_equal(claim(w, 2, 1, "fd00:1::10", DV_KIND_API), DV_R_OK);
	assert_int_equal(owner(w, "fd00:1::10"), 2);
	assert_true(installed(w, 2, "fd00:1::10"));
	assert_int_equal(release(w, 2, 1, "fd00:1::10", DV_KIND_API), DV_R_OK);
	assert_int_equal(owner(w, "fd00:1::10"), 0);
	assert_false(installed(w, 2, "fd00:1::10"));
}

static void test_shared_holds(void **state)
{
	struct world *w = *state;
	struct dv_vipa_info v;

	assert_int_equal(claim(w, 1, 7, "10.1.1.5", DV_KIND_API), DV_R_OK);
	assert_int_equal(claim(w, 1, 8, "10.1.1.5", DV_KIND_API), DV_R_OK);
	assert_int_equal(count(w, 1, REC_LOCAL), 0); /* already up */
	assert_int_equal(claim(w, 1, 9, "10.1.1.5", DV_KIND_OPERATOR), DV_R_OK);
	assert_true(info(w, "10.1.1.5", &v));
	assert_int_equal(v.n_holds, 3);
	assert_int_equal(v.origin, DV_ORIGIN_API);
	assert_non_null(strstr(v.reason, "shared"));

	assert_int_equal(release(w, 1, 7, "10.1.1.5", DV_KIND_API), DV_R_OK);
	assert_int_equal(owner(w, "10.1.1.5"), 1);
	assert_int_equal(release(w, 1, 9, "10.1.1.5", DV_KIND_OPERATOR), DV_R_OK);
	assert_int_equal(owner(w, "10.1.1.5"), 1);
	assert_true(installed(w, 1, "10.1.1.5"));
	assert_int_equal(release(w, 1, 8, "10.1.1.5", DV_KIND_API), DV_R_OK);
	/* last hold: the address goes away */
	assert_false(info(w, "10.1.1.5", &v));
	assert_false(installed(w, 1, "10.1.1.5"));
	assert_int_equal(count(w, 1, REC_LOCAL), 1);
}

static void test_idempotent_claims(void **state)
{
	struct world *w = *state;
	struct dv_vipa_info v;

	assert_int_equal(claim(w, 1, 7, "10.3.3.5", DV_KIND_API), DV_R_OK);
	/* the same holder again, even on a UNIQUE range */
	assert_int_equal(claim(w, 1, 7, "10.3.3.5", DV_KIND_API), DV_R_OK);
	assert_non_null(strstr(last_reply_reason(w, 1), "already held"));
	assert_true(info(w, "10.3.3.5", &v));
	assert_int_equal(v.n_holds, 1);

	/* operator holds are per node: another dvipactl run is the same holder */
	assert_int_equal(claim(w, 2, 1, "10.1.1.9", DV_KIND_OPERATOR), DV_R_OK);
	assert_int_equal(claim(w, 2, 2, "10.1.1.9", DV_KIND_OPERATOR), DV_R_OK);
	assert_true(info(w, "10.1.1.9", &v));
	assert_int_equal(v.n_holds, 1);
	assert_int_equal(v.origin, DV_ORIGIN_OPERATOR);
}

static void test_unique_same_node(void **state)
{
	struct world *w = *state;
	const char *why;

	assert_int_equal(claim(w, 1, 7, "10.3.3.5", DV_KIND_API), DV_R_OK);
	assert_int_equal(claim(w, 1, 8, "10.3.3.5", DV_KIND_API), DV_R_HELD);
	why = last_reply_reason(w, 1);
	assert_non_null(strstr(why, "client 7 on n1"));
	assert_non_null(strstr(why, "UNIQUE"));
	/* not even an operator activation on the same node */
	assert_int_equal(claim(w, 1, 8, "10.3.3.5", DV_KIND_OPERATOR), DV_R_HELD);
	assert_int_equal(owner(w, "10.3.3.5"), 1);
	/* once the first holder is gone, the next may */
	assert_int_equal(release(w, 1, 7, "10.3.3.5", DV_KIND_API), DV_R_OK);
	assert_int_equal(claim(w, 1, 8, "10.3.3.5", DV_KIND_API), DV_R_OK);
}

static void test_unique_other_node(void **state)
{
	struct world *w = *state;

	assert_int_equal(claim(w, 1, 7, "10.3.3.5", DV_KIND_API), DV_R_OK);
	assert_int_equal(claim(w, 2, 9, "10.3.3.5", DV_KIND_API), DV_R_HELD);
	assert_non_null(strstr(last_reply_reason(w, 2), "held on n1"));
	assert_int_equal(claim(w, 3, 9, "10.3.3.5", DV_KIND_SOCKET), DV_R_HELD);
	assert_int_equal(owner(w, "10.3.3.5"), 1);
	assert_int_equal(all_notifies(w), 0);
	gone(w, 1, 7);
	assert_int_equal(claim(w, 2, 9, "10.3.3.5", DV_KIND_API), DV_R_OK);
	assert_int_equal(owner(w, "10.3.3.5"), 2);
}

static void test_release_unheld(void **state)
{
	struct world *w = *state;

	assert_int_equal(release(w, 1, 7, "10.1.1.5", DV_KIND_API), DV_R_NOTHELD);
	assert_int_equal(claim(w, 1, 7, "10.1.1.5", DV_KIND_API), DV_R_OK);
	/* another client, another kind, another node */
	assert_int_equal(release(w, 1, 8, "10.1.1.5", DV_KIND_API), DV_R_NOTHELD);
	assert_int_equal(release(w, 1, 7, "10.1.1.5", DV_KIND_OPERATOR), DV_R_NOTHELD);
	assert_int_equal(release(w, 1, 7, "10.1.1.5", DV_KIND_SOCKET), DV_R_NOTHELD);
	assert_int_equal(release(w, 2, 7, "10.1.1.5", DV_KIND_API), DV_R_NOTHELD);
	assert_int_equal(owner(w, "10.1.1.5"), 1);
	assert_int_equal(release(w, 1, 7, "10.1.1.5", DV_KIND_API), DV_R_OK);
	assert_int_equal(release(w, 1, 7, "10.1.1.5", DV_KIND_API), DV_R_NOTHELD);
}

static void test_operator_hold(void **state)
{
	struct world *w = *state;

	assert_int_equal(claim(w, 1, 5, "10.1.1.5", DV_KIND_OPERATOR), DV_R_OK);
	/* dvipactl exits: the activation stays */
	gone(w, 1, 5);
	assert_int_equal(owner(w, "10.1.1.5"), 1);
	assert_true(installed(w, 1, "10.1.1.5"));
	/* only a deactivate ends it, from any client of that node */
	assert_int_equal(release(w, 1, 5, "10.1.1.5", DV_KIND_API), DV_R_NOTHELD);
	assert_int_equal(release(w, 2, 6, "10.1.1.5", DV_KIND_OPERATOR), DV_R_NOTHELD);
	assert_int_equal(release(w, 1, 6, "10.1.1.5", DV_KIND_OPERATOR), DV_R_OK);
	assert_int_equal(owner(w, "10.1.1.5"), 0);
	assert_false(installed(w, 1, "10.1.1.5"));
}

static void test_socket_hold_addr_state(void **state)
{
	struct world *w = *state;
	struct dv_vipa_info v;

	assert_int_equal(claim(w, 2, 3, "10.1.1.6", DV_KIND_SOCKET), DV_R_OK);
	assert_true(info(w, "10.1.1.6", &v));
	assert_int_equal(v.origin, DV_ORIGIN_BIND);
	/* the shim's connection closing does not end a socket hold */
	gone(w, 2, 3);
	assert_int_equal(owner(w, "10.1.1.6"), 2);
	/* still bound */
	addr_state(w, 2, "10.1.1.6", DV_AS_BOUND | DV_AS_BUSY);
	assert_int_equal(owner(w, "10.1.1.6"), 2);
	/* another node saying it has nothing bound changes nothing */
	addr_state(w, 1, "10.1.1.6", 0);
	assert_int_equal(owner(w, "10.1.1.6"), 2);
	/* no socket bound any more on n2 */
	addr_state(w, 2, "10.1.1.6", 0);
	assert_false(info(w, "10.1.1.6", &v));
	assert_false(installed(w, 2, "10.1.1.6"));
	assert_int_equal(count(w, 2, REC_LOCAL), 1);
}

static void test_socket_hold_with_api_hold(void **state)
{
	struct world *w = *state;
	struct dv_vipa_info v;

	assert_int_equal(claim(w, 2, 3, "10.1.1.6", DV_KIND_SOCKET), DV_R_OK);
	assert_int_equal(claim(w, 2, 4, "10.1.1.6", DV_KIND_API), DV_R_OK);
	addr_state(w, 2, "10.1.1.6", 0);
	assert_true(info(w, "10.1.1.6", &v));
	assert_int_equal(v.n_holds, 1);
	assert_int_equal(v.origin, DV_ORIGIN_API);
	assert_int_equal(claim(w, 2, 3, "10.1.1.6", DV_KIND_SOCKET), DV_R_OK);
	assert_int_equal(release(w, 2, 99, "10.1.1.6", DV_KIND_SOCKET), DV_R_OK);
	assert_int_equal(release(w, 2, 4, "10.1.1.6", DV_KIND_API), DV_R_OK);
	assert_int_equal(owner(w, "10.1.1.6"), 0);
}

static void test_addr_state_unknown(void **state)
{
	struct world *w = *state;
	uint64_t seq = dv_engine_seq(w->p[0].e);

	addr_state(w, 1, "10.1.1.77", DV_AS_BOUND);
	assert_false(info(w, "10.1.1.77", &(struct dv_vipa_info){0}));
	assert_int_equal(dv_engine_seq(w->p[0].e), seq + 1);
}

/* ---- moves ---- */

static void test_move_nondisruptive(void **state)
{
	struct world *w = *state;
	const struct rec *r;
	struct dv_vipa_info v;
	uint64_t t0;

	assert_int_equal(claim(w, 1, 7, "10.1.1.5", DV_KIND_API), DV_R_OK);
	assert_int_equal(claim(w, 1, 8, "10.1.1.5", DV_KIND_API), DV_R_OK);
	t0 = w->time;
	assert_int_equal(claim(w, 2, 9, "10.1.1.5", DV_KIND_API), DV_R_OK);
	assert_int_equal(owner(w, "10.1.1.5"), 2);
	assert_true(info(w, "10.1.1.5", &v));
	assert_int_equal(v.n_holds, 1);
	assert_int_equal(v.holds[0].client, 9);
	assert_true(v.since_ms > t0);
	assert_non_null(strstr(v.reason, "moved from n1 to n2"));
	assert_non_null(strstr(v.reason, "NONDISRUPTIVE"));
	/* n1's clients lose it and hear where it went */
	r = notified(w, 1, 7, "10.1.1.5", DV_NOTIFY_LOST);
	assert_non_null(r);
	assert_non_null(strstr(r->reason, "moved to n2"));
	assert_non_null(notified(w, 1, 8, "10.1.1.5", DV_NOTIFY_LOST));
	assert_int_equal(count(w, 2, REC_NOTIFY), 0);
	assert_false(installed(w, 1, "10.1.1.5"));
	assert_true(installed(w, 2, "10.1.1.5"));
	/* the old holders' releases are now NOTHELD */
	assert_int_equal(release(w, 1, 7, "10.1.1.5", DV_KIND_API), DV_R_NOTHELD);
}

static void test_move_disruptive_ends_operator(void **state)
{
	struct world *w = *state;
	struct dv_vipa_info v;

	assert_int_equal(claim(w, 1, 1, "10.2.2.5", DV_KIND_OPERATOR), DV_R_OK);
	assert_int_equal(claim(w, 1, 2, "10.2.2.5", DV_KIND_SOCKET), DV_R_OK);
	assert_int_equal(claim(w, 3, 4, "10.2.2.5", DV_KIND_OPERATOR), DV_R_OK);
	assert_int_equal(owner(w, "10.2.2.5"), 3);
	assert_true(info(w, "10.2.2.5", &v));
	assert_int_equal(v.n_holds, 1);
	assert_int_equal(v.origin, DV_ORIGIN_OPERATOR);
	assert_non_null(strstr(v.reason, "DISRUPTIVE"));
	/* operator and socket holders get no notification */
	assert_int_equal(all_notifies(w), 0);
	assert_int_equal(release(w, 1, 1, "10.2.2.5", DV_KIND_OPERATOR), DV_R_NOTHELD);
}

static void test_bind_cannot_move_operator(void **state)
{
	struct world *w = *state;

	assert_int_equal(claim(w, 1, 1, "10.1.1.5", DV_KIND_OPERATOR), DV_R_OK);
	assert_int_equal(claim(w, 2, 3, "10.1.1.5", DV_KIND_SOCKET), DV_R_HELD);
	assert_non_null(strstr(last_reply_reason(w, 2), "operator"));
	assert_int_equal(owner(w, "10.1.1.5"), 1);
	/* an explicit activation still moves it */
	assert_int_equal(claim(w, 2, 3, "10.1.1.5", DV_KIND_API), DV_R_OK);
	assert_int_equal(owner(w, "10.1.1.5"), 2);
	/* a bind can move an api-held address */
	assert_int_equal(claim(w, 3, 4, "10.1.1.5", DV_KIND_SOCKET), DV_R_OK);
	assert_int_equal(owner(w, "10.1.1.5"), 3);
	assert_non_null(notified(w, 2, 3, "10.1.1.5", DV_NOTIFY_LOST));
}

/* A source use never moves an address, whatever the range's policy; it
 * activates a free one, and uses this node's own without a hold more. */
static void test_source_use_never_moves(void **state)
{
	struct world *w = *state;
	struct dv_vipa_info v;

	assert_int_equal(claim(w, 1, 7, "10.1.1.5", DV_KIND_SOCKET), DV_R_OK);
	assert_int_equal(claim_source(w, 2, 9, "10.1.1.5"), DV_R_HELD);
	assert_non_null(strstr(last_reply_reason(w, 2), "active on n1"));
	assert_int_equal(owner(w, "10.1.1.5"), 1);
	assert_int_equal(all_notifies(w), 0);
	assert_int_equal(claim_source(w, 1, 9, "10.1.1.5"), DV_R_OK);
	assert_true(info(w, "10.1.1.5", &v));
	assert_int_equal(v.n_holds, 1);
	/* UNIQUE: the same on the owner, refused elsewhere */
	assert_int_equal(claim(w, 1, 7, "10.3.3.5", DV_KIND_API), DV_R_OK);
	assert_int_equal(claim_source(w, 1, 8, "10.3.3.5"), DV_R_OK);
	assert_int_equal(claim_source(w, 3, 8, "10.3.3.5"), DV_R_HELD);
	/* free: activated as a socket hold */
	assert_int_equal(claim_source(w, 2, 9, "10.1.1.6"), DV_R_OK);
	assert_int_equal(owner(w, "10.1.1.6"), 2);
	assert_true(info(w, "10.1.1.6", &v));
	assert_int_equal(v.holds[0].kind, DV_KIND_SOCKET);
}

static void test_move_keeps_standbys(void **state)
{
	struct world *w = *state;
	struct dv_vipa_info v;

	assert_int_equal(claim(w, 1, 7, "10.1.1.5", DV_KIND_API), DV_R_OK);
	assert_int_equal(standby(w, 3, 5, "10.1.1.5", 100), DV_R_PENDING);
	assert_int_equal(claim(w, 2, 9, "10.1.1.5", DV_KIND_API), DV_R_OK);
	assert_true(info(w, "10.1.1.5", &v));
	assert_int_equal(v.n_standbys, 1);
	assert_int_equal(release(w, 2, 9, "10.1.1.5", DV_KIND_API), DV_R_OK);
	assert_int_equal(owner(w, "10.1.1.5"), 3);
	assert_non_null(notified(w, 3, 5, "10.1.1.5", DV_NOTIFY_GRANTED));
}

/* ---- operator move (dvipactl move) ---- */

static int move(struct world *w, dv_nodeid_t node, uint64_t client, const char *addr, dv_nodeid_t to)
{
	struct dv_event ev = {.type = DV_EV_MOVE, .node = node};

	ev.move.client = client;
	ev.move.seq = ++w->seq;
	ev.move.addr = A(addr);
	ev.move.to = to;
	return request(w, &ev, client);
}

static void test_operator_move(void **state)
{
	struct world *w = *state;
	struct dv_vipa_info v;

	/* asked on n3, moves from n1 to n2: api and socket holds on n1 end */
	assert_int_equal(claim(w, 1, 7, "10.1.1.5", DV_KIND_API), DV_R_OK);
	assert_int_equal(claim(w, 1, 0, "10.1.1.5", DV_KIND_SOCKET), DV_R_OK);
	assert_int_equal(standby(w, 3, 5, "10.1.1.5", 100), DV_R_PENDING);
	assert_int_equal(move(w, 3, 4, "10.1.1.5", 2), DV_R_OK);
	assert_non_null(strstr(last_reply_reason(w, 3), "moved from n1 to n2"));
	assert_int_equal(owner(w, "10.1.1.5"), 2);
	assert_true(info(w, "10.1.1.5", &v));
	assert_int_equal(v.n_holds, 1);
	assert_int_equal(v.holds[0].kind, DV_KIND_OPERATOR);
	assert_int_equal(v.holds[0].node, 2);
	assert_int_equal(v.origin, DV_ORIGIN_OPERATOR);
	assert_int_equal(v.n_standbys, 1);
	assert_non_null(strstr(v.reason, "by the operator"));
	assert_non_null(strstr(notified(w, 1, 7, "10.1.1.5", DV_NOTIFY_LOST)->reason, "moved to n2 by the operator"));
	assert_false(installed(w, 1, "10.1.1.5"));
	assert_true(installed(w, 2, "10.1.1.5"));
	/* again: nothing moves; the operator hold is there already */
	assert_int_equal(move(w, 1, 4, "10.1.1.5", 2), DV_R_OK);
	assert_non_null(strstr(last_reply_reason(w, 1), "already active on n2"));
	assert_true(info(w, "10.1.1.5", &v));
	assert_int_equal(v.n_holds, 1);
	/* deactivate on n2 ends it: the standby on n3 is granted */
	assert_int_equal(release(w, 2, 0, "10.1.1.5", DV_KIND_OPERATOR), DV_R_OK);
	assert_int_equal(owner(w, "10.1.1.5"), 3);
	/* a UNIQUE range moves too: the operator decides */
	assert_int_equal(claim(w, 1, 7, "10.3.3.5", DV_KIND_API), DV_R_OK);
	assert_int_equal(move(w, 2, 4, "10.3.3.5", 3), DV_R_OK);
	assert_int_equal(owner(w, "10.3.3.5"), 3);
	assert_true(installed(w, 3, "10.3.3.5"));
}

static void test_operator_move_refusals(void **state)
{
	struct world *w = *state;

	conf(w, 3, "n3", "range 10.1.1.0/24; range 10.9.9.0/24; define 10.9.9.1");
	/* nothing active */
	assert_int_equal(move(w, 1, 4, "10.1.1.5", 2), DV_R_NOTHELD);
	assert_non_null(strstr(last_reply_reason(w, 1), "not active"));
	assert_int_equal(claim(w, 1, 7, "10.2.2.5", DV_KIND_API), DV_R_OK);
	/* the target has no range covering it */
	assert_int_equal(move(w, 1, 4, "10.2.2.5", 3), DV_R_NORANGE);
	assert_non_null(strstr(last_reply_reason(w, 1), "no VIPARANGE of n3"));
	/* not a member */
	assert_int_equal(move(w, 1, 4, "10.2.2.5", 9), DV_R_BADREQ);
	assert_int_equal(move(w, 1, 4, "10.2.2.5", 0), DV_R_BADREQ);
	/* defines follow their own rules */
	assert_int_equal(owner(w, "10.9.9.1"), 3);
	assert_int_equal(move(w, 1, 4, "10.9.9.1", 2), DV_R_HELD);
	assert_non_null(strstr(last_reply_reason(w, 1), "deactivate"));
	assert_int_equal(owner(w, "10.2.2.5"), 1);
	assert_int_equal(all_notifies(w), 0);
	/* no quorum, no move */
	quorum(w, false);
	assert_int_equal(move(w, 1, 4, "10.2.2.5", 2), DV_R_NOQUORUM);
}

/* ---- deactivate/reactivate of a define, leave/join of a node ---- */

static int define_state(struct world *w, dv_nodeid_t node, uint64_t client, const char *addr, dv_nodeid_t target,
			bool active)
{
	struct dv_event ev = {.type = DV_EV_DEFINE_STATE, .node = node};

	ev.define_state.client = client;
	ev.define_state.seq = ++w->seq;
	ev.define_state.addr = A(addr);
	ev.define_state.target = target;
	ev.define_state.active = active;
	return request(w, &ev, client);
}

static int node_admin(struct world *w, dv_nodeid_t node, uint64_t client, dv_nodeid_t target, bool joined)
{
	struct dv_event ev = {.type = DV_EV_NODE_ADMIN, .node = node};

	ev.node_admin.client = client;
	ev.node_admin.seq = ++w->seq;
	ev.node_admin.target = target;
	ev.node_admin.joined = joined;
	return request(w, &ev, client);
}

static void test_define_deactivate_reactivate(void **state)
{
	struct world *w = *state;
	struct dv_vipa_info v;

	conf(w, 1, "n1", STD_RANGES "; range 10.9.9.0/24; define 10.9.9.1");
	conf(w, 2, "n2", STD_RANGES "; range 10.9.9.0/24; backup 200 10.9.9.1");
	conf(w, 3, "n3", STD_RANGES "; range 10.9.9.0/24; backup 100 10.9.9.1");
	assert_int_equal(owner(w, "10.9.9.1"), 1);
	assert_int_equal(claim(w, 1, 5, "10.9.9.1", DV_KIND_API), DV_R_OK);

	/* deactivate on n1 (asked on n3): the best backup, n2, takes over */
	assert_int_equal(define_state(w, 3, 4, "10.9.9.1", 1, false), DV_R_OK);
	assert_int_equal(owner(w, "10.9.9.1"), 2);
	assert_false(installed(w, 1, "10.9.9.1"));
	assert_true(installed(w, 2, "10.9.9.1"));
	assert_non_null(notified(w, 1, 5, "10.9.9.1", DV_NOTIFY_LOST));
	assert_non_null(strstr(reason(w, "10.9.9.1"), "deactivated on n1"));
	assert_true(info(w, "10.9.9.1", &v));
	assert_int_equal(v.origin, DV_ORIGIN_BACKUP);
	for (size_t i = 0; i < v.n_cands; i++)
		assert_int_equal(v.cands[i].deactivated, v.cands[i].node == 1);
	/* twice is fine; a reload of n1 keeps the mark */
	assert_int_equal(define_state(w, 1, 4, "10.9.9.1", 1, false), DV_R_OK);
	assert_non_null(strstr(last_reply_reason(w, 1), "already deactivated"));
	conf(w, 1, "n1", STD_RANGES "; range 10.9.9.0/24; define 10.9.9.1 immediate");
	assert_int_equal(owner(w, "10.9.9.1"), 2);
	/* n1 may not claim it while it belongs to n2 */
	assert_int_equal(claim(w, 1, 5, "10.9.9.1", DV_KIND_API), DV_R_HELD);
	/* n2 deactivated too: n3 */
	assert_int_equal(define_state(w, 2, 4, "10.9.9.1", 2, false), DV_R_OK);
	assert_int_equal(owner(w, "10.9.9.1"), 3);
	/* and n3: nobody, and status says why */
	assert_int_equal(define_state(w, 2, 4, "10.9.9.1", 3, false), DV_R_OK);
	assert_int_equal(owner(w, "10.9.9.1"), 0);
	assert_int_equal(vstate(w, "10.9.9.1"), DV_VS_INACTIVE);
	assert_non_null(strstr(reason(w, "10.9.9.1"), "no eligible node: deactivated on n"));
	/* reactivate n3, then n1: IMMEDIATE takes it back at once */
	assert_int_equal(define_state(w, 2, 4, "10.9.9.1", 3, true), DV_R_OK);
	assert_int_equal(owner(w, "10.9.9.1"), 3);
	assert_int_equal(define_state(w, 2, 4, "10.9.9.1", 1, true), DV_R_OK);
	assert_int_equal(owner(w, "10.9.9.1"), 1);
	assert_true(installed(w, 1, "10.9.9.1"));
	assert_false(installed(w, 3, "10.9.9.1"));

	/* refusals: no define there, not a member */
	assert_int_equal(define_state(w, 1, 4, "10.1.1.5", 1, false), DV_R_NORANGE);
	assert_int_equal(define_state(w, 1, 4, "10.9.9.1", 9, false), DV_R_BADREQ);
	/* leaving the membership ends the mark */
	assert_int_equal(define_state(w, 1, 4, "10.9.9.1", 2, false), DV_R_OK);
	members(w, 2, 1, 3);
	members(w, 3, 1, 2, 3);
	conf(w, 2, "n2", STD_RANGES "; range 10.9.9.0/24; backup 200 10.9.9.1");
	assert_true(info(w, "10.9.9.1", &v));
	for (size_t i = 0; i < v.n_cands; i++)
		assert_false(v.cands[i].deactivated);
}

static int quiesce(struct world *w, dv_nodeid_t node, uint64_t client, const char *addr, dv_nodeid_t target,
		   uint16_t port, bool on)
{
	struct dv_event ev = {.type = DV_EV_QUIESCE, .node = node};

	ev.quiesce.client = client;
	ev.quiesce.seq = ++w->seq;
	ev.quiesce.addr = A(addr);
	ev.quiesce.target = target;
	ev.quiesce.port = port;
	ev.quiesce.on = on;
	return request(w, &ev, client);
}

/* A quiesced target of a distributed VIPA, asked on any node: every
 * engine says so; kept while the target is away (its dvipad restarts);
 * gone when its configuration no longer defines the address. */
static void test_quiesce_replicated(void **state)
{
	struct world *w = *state;
	struct dv_addr a = A("10.9.9.1");

	conf(w, 1, "n1", STD_RANGES "; range 10.9.9.0/24; define 10.9.9.1");
	conf(w, 2, "n2", STD_RANGES "; range 10.9.9.0/24; backup 200 10.9.9.1");
	conf(w, 3, "n3", STD_RANGES "; range 10.9.9.0/24; backup 100 10.9.9.1");
	assert_int_equal(quiesce(w, 1, 4, "10.9.9.1", 3, 80, true), DV_R_OK);
	assert_non_null(strstr(last_reply_reason(w, 1), "10.9.9.1 port 80 quiesced on n3"));
	for (size_t i = 0; i < 3; i++) {
		assert_true(dv_engine_quiesced(w->p[i].e, &a, 80, 3));
		assert_false(dv_engine_quiesced(w->p[i].e, &a, 443, 3));
		assert_false(dv_engine_quiesced(w->p[i].e, &a, 80, 2));
	}
	assert_int_equal(quiesce(w, 2, 4, "10.9.9.1", 3, 80, true), DV_R_OK);
	assert_non_null(strstr(last_reply_reason(w, 2), "already"));
	/* every port: one entry for all; a port of it cannot be resumed alone */
	assert_int_equal(quiesce(w, 2, 4, "10.9.9.1", 3, 0, true), DV_R_OK);
	assert_true(dv_engine_quiesced(w->p[1].e, &a, 443, 3));
	assert_int_equal(quiesce(w, 2, 4, "10.9.9.1", 3, 80, false), DV_R_BADREQ);
	assert_non_null(strstr(last_reply_reason(w, 2), "resume it whole"));
	assert_int_equal(quiesce(w, 2, 4, "10.9.9.1", 2, 443, true), DV_R_OK);
	/* n3 leaves the membership and comes back (a restart): still quiesced */
	members(w, 2, 1, 2);
	assert_true(dv_engine_quiesced(w->p[0].e, &a, 80, 3));
	members(w, 3, 1, 2, 3);
	conf(w, 3, "n3", STD_RANGES "; range 10.9.9.0/24; backup 100 10.9.9.1");
	assert_true(dv_engine_quiesced(w->p[0].e, &a, 80, 3));
	/* n3 no longer defines it: its quiesce goes, n2's stays */
	conf(w, 3, "n3", STD_RANGES "; range 10.9.9.0/24");
	assert_false(dv_engine_quiesced(w->p[0].e, &a, 80, 3));
	assert_true(dv_engine_quiesced(w->p[0].e, &a, 443, 2));
	/* refusals: a node without a define of it, an address nobody defines */
	assert_int_equal(quiesce(w, 1, 4, "10.9.9.1", 3, 0, true), DV_R_NOTHELD);
	assert_non_null(strstr(last_reply_reason(w, 1), "n3 does not define 10.9.9.1"));
	assert_int_equal(quiesce(w, 1, 4, "10.1.1.77", 1, 0, true), DV_R_NOTHELD);
	/* resume */
	assert_int_equal(quiesce(w, 3, 4, "10.9.9.1", 2, 443, false), DV_R_OK);
	assert_false(dv_engine_quiesced(w->p[0].e, &a, 443, 2));
	assert_int_equal(quiesce(w, 3, 4, "10.9.9.1", 2, 0, false), DV_R_OK);
}

static void test_node_leave_join(void **state)
{
	struct world *w = *state;
	struct dv_vipa_info v;

	conf(w, 1, "n1", STD_RANGES "; range 10.9.9.0/24; define 10.9.9.1");
	conf(w, 2, "n2", STD_RANGES "; range 10.9.9.0/24; backup 200 10.9.9.1");
	assert_int_equal(claim(w, 1, 5, "10.1.1.5", DV_KIND_API), DV_R_OK);
	assert_int_equal(standby(w, 2, 6, "10.1.1.5", 100), DV_R_PENDING);
	assert_int_equal(standby(w, 1, 7, "10.1.1.6", 100), DV_R_OK); /* granted at once */
	assert_int_equal(standby(w, 3, 8, "10.1.1.6", 50), DV_R_PENDING);
	assert_int_equal(claim(w, 3, 9, "10.2.2.5", DV_KIND_API), DV_R_OK);
	assert_int_equal(standby(w, 1, 3, "10.2.2.5", 10), DV_R_PENDING);
	assert_int_equal(owner(w, "10.9.9.1"), 1);

	/* n1 leaves (asked on n2): everything of n1 goes elsewhere */
	assert_int_equal(node_admin(w, 2, 4, 1, false), DV_R_OK);
	assert_true(dv_engine_node_left(w->p[0].e, 1));
	assert_int_equal(owner(w, "10.1.1.5"), 2);
	assert_non_null(notified(w, 2, 6, "10.1.1.5", DV_NOTIFY_GRANTED));
	assert_non_null(strstr(notified(w, 1, 5, "10.1.1.5", DV_NOTIFY_LOST)->reason, "n1 left the group"));
	assert_int_equal(owner(w, "10.1.1.6"), 3);
	assert_int_equal(owner(w, "10.9.9.1"), 2);
	assert_int_equal(owner(w, "10.2.2.5"), 3);
	assert_non_null(notified(w, 1, 3, "10.2.2.5", DV_NOTIFY_LOST));
	assert_true(info(w, "10.2.2.5", &v));
	assert_int_equal(v.n_standbys, 0);
	for (size_t i = 0; i < 4; i++)
		assert_false(installed(w, 1, (const char *[]){"10.1.1.5", "10.1.1.6", "10.9.9.1", "10.2.2.5"}[i]));
	/* n1 takes nothing now: claims, standbys, moves to it are refused */
	assert_int_equal(claim(w, 1, 5, "10.1.1.9", DV_KIND_API), DV_R_LEFT);
	assert_non_null(strstr(last_reply_reason(w, 1), "left the group"));
	assert_int_equal(claim(w, 1, 0, "10.1.1.9", DV_KIND_OPERATOR), DV_R_LEFT);
	assert_int_equal(standby(w, 1, 5, "10.1.1.5", 10), DV_R_LEFT);
	assert_int_equal(move(w, 2, 4, "10.1.1.5", 1), DV_R_LEFT);
	assert_int_equal(node_admin(w, 1, 4, 1, false), DV_R_OK);
	assert_non_null(strstr(last_reply_reason(w, 1), "already left"));
	/* others go on; the define says why n1 is not it */
	assert_int_equal(claim(w, 3, 9, "10.1.1.9", DV_KIND_API), DV_R_OK);
	assert_int_equal(node_admin(w, 2, 4, 2, false), DV_R_OK);
	assert_int_equal(owner(w, "10.9.9.1"), 0);
	assert_non_null(strstr(reason(w, "10.9.9.1"), "left the group"));
	assert_int_equal(node_admin(w, 2, 4, 2, true), DV_R_OK);
	assert_int_equal(owner(w, "10.9.9.1"), 2);

	/* join: eligible again, the IMMEDIATE define takes its address back */
	assert_int_equal(node_admin(w, 3, 4, 1, true), DV_R_OK);
	assert_false(dv_engine_node_left(w->p[0].e, 1));
	assert_int_equal(owner(w, "10.9.9.1"), 1);
	assert_true(installed(w, 1, "10.9.9.1"));
	/* n2's leave ended the hold it had been granted */
	assert_int_equal(owner(w, "10.1.1.5"), 0);
	assert_int_equal(claim(w, 1, 5, "10.1.1.9", DV_KIND_API), DV_R_OK);
	assert_int_equal(owner(w, "10.1.1.9"), 1);
	/* not a member */
	assert_int_equal(node_admin(w, 3, 4, 9, false), DV_R_BADREQ);
	/* leaving the membership forgets it */
	assert_int_equal(node_admin(w, 3, 4, 3, false), DV_R_OK);
	members(w, 2, 1, 2);
	members(w, 3, 1, 2, 3);
	assert_false(dv_engine_node_left(w->p[0].e, 3));
}

/* ---- standbys ---- */

static void test_standby_granted_on_release(void **state)
{
	struct world *w = *state;
	const struct rec *r;
	struct dv_vipa_info v;

	assert_int_equal(claim(w, 1, 7, "10.1.1.5", DV_KIND_API), DV_R_OK);
	assert_int_equal(standby(w, 2, 9, "10.1.1.5", 200), DV_R_PENDING);
	assert_true(info(w, "10.1.1.5", &v));
	assert_int_equal(v.owner, 1);
	assert_int_equal(v.n_standbys, 1);
	assert_int_equal(v.standbys[0].rank, 200);
	assert_int_equal(v.standbys[0].node, 2);
	assert_false(installed(w, 2, "10.1.1.5"));

	assert_int_equal(release(w, 1, 7, "10.1.1.5", DV_KIND_API), DV_R_OK);
	assert_true(info(w, "10.1.1.5", &v));
	assert_int_equal(v.owner, 2);
	assert_int_equal(v.n_standbys, 0);
	assert_int_equal(v.n_holds, 1);
	assert_int_equal(v.holds[0].client, 9);
	assert_int_equal(v.origin, DV_ORIGIN_API);
	assert_string_equal(v.reason,
			    "standby client 9 (rank 200) on n2 granted after client 7 on n1 (api) released it");
	r = notified(w, 2, 9, "10.1.1.5", DV_NOTIFY_GRANTED);
	assert_non_null(r);
	assert_true(installed(w, 2, "10.1.1.5"));
	assert_false(installed(w, 1, "10.1.1.5"));
	/* on n2: the notification, then (once n1 reported the address
	 * removed: the hand-over) up; the daemon passes the notification on
	 * once the address is there */
	assert_int_equal(peer(w, 2)->recs[0].type, REC_NOTIFY);
	assert_int_equal(peer(w, 2)->recs[1].type, REC_LOCAL);
	assert_int_equal(v.on, 2);
}

static void test_standby_rank_order(void **state)
{
	struct world *w = *state;
	struct dv_vipa_info v;

	assert_int_equal(claim(w, 1, 7, "10.1.1.5", DV_KIND_API), DV_R_OK);
	assert_int_equal(standby(w, 2, 1, "10.1.1.5", 50), DV_R_PENDING);
	assert_int_equal(standby(w, 3, 2, "10.1.1.5", 200), DV_R_PENDING);
	assert_int_equal(standby(w, 2, 3, "10.1.1.5", 100), DV_R_PENDING);
	assert_true(info(w, "10.1.1.5", &v));
	assert_int_equal(v.n_standbys, 3);
	assert_int_equal(v.standbys[0].rank, 200);
	assert_int_equal(v.standbys[1].rank, 100);
	assert_int_equal(v.standbys[2].rank, 50);

	gone(w, 1, 7);
	assert_int_equal(owner(w, "10.1.1.5"), 3);
	assert_non_null(notified(w, 3, 2, "10.1.1.5", DV_NOTIFY_GRANTED));
	gone(w, 3, 2);
	assert_int_equal(owner(w, "10.1.1.5"), 2);
	assert_non_null(notified(w, 2, 3, "10.1.1.5", DV_NOTIFY_GRANTED));
	assert_int_equal(release(w, 2, 3, "10.1.1.5", DV_KIND_API), DV_R_OK);
	assert_int_equal(owner(w, "10.1.1.5"), 2);
	assert_non_null(notified(w, 2, 1, "10.1.1.5", DV_NOTIFY_GRANTED));
	assert_int_equal(release(w, 2, 1, "10.1.1.5", DV_KIND_API), DV_R_OK);
	assert_int_equal(owner(w, "10.1.1.5"), 0);
}

static void test_standby_ties_earliest(void **state)
{
	struct world *w = *state;
	struct dv_vipa_info v;

	assert_int_equal(claim(w, 1, 7, "10.1.1.5", DV_KIND_API), DV_R_OK);
	assert_int_equal(standby(w, 3, 1, "10.1.1.5", 100), DV_R_PENDING);
	assert_int_equal(standby(w, 2, 2, "10.1.1.5", 100), DV_R_PENDING);
	assert_true(info(w, "10.1.1.5", &v));
	assert_true(v.standbys[0].order < v.standbys[1].order);
	assert_int_equal(release(w, 1, 7, "10.1.1.5", DV_KIND_API), DV_R_OK);
	/* n3 registered first: the node id does not break ties */
	assert_int_equal(owner(w, "10.1.1.5"), 3);
}

static void test_standby_reregister(void **state)
{
	struct world *w = *state;
	struct dv_vipa_info v;

	assert_int_equal(claim(w, 1, 7, "10.1.1.5", DV_KIND_API), DV_R_OK);
	assert_int_equal(standby(w, 2, 1, "10.1.1.5", 100), DV_R_PENDING);
	assert_int_equal(standby(w, 3, 2, "10.1.1.5", 50), DV_R_PENDING);
	assert_int_equal(standby(w, 3, 2, "10.1.1.5", 150), DV_R_PENDING);
	assert_non_null(strstr(last_reply_reason(w, 3), "updated"));
	assert_true(info(w, "10.1.1.5", &v));
	assert_int_equal(v.n_standbys, 2);
	assert_int_equal(v.standbys[0].node, 3);
	assert_int_equal(v.standbys[0].rank, 150);
	assert_int_equal(release(w, 1, 7, "10.1.1.5", DV_KIND_API), DV_R_OK);
	assert_int_equal(owner(w, "10.1.1.5"), 3);
}

static void test_standby_immediate(void **state)
{
	struct world *w = *state;
	struct dv_vipa_info v;

	/* nothing held: granted at once */
	assert_int_equal(standby(w, 2, 9, "10.1.1.5", 10), DV_R_OK);
	assert_true(info(w, "10.1.1.5", &v));
	assert_int_equal(v.owner, 2);
	assert_int_equal(v.n_holds, 1);
	assert_int_equal(v.n_standbys, 0);
	assert_non_null(strstr(v.reason, "granted at once"));
	assert_true(installed(w, 2, "10.1.1.5"));
	/* a standby becoming a socket hold */
	assert_int_equal(standby_k(w, 3, 1, "10.1.1.6", 10, DV_KIND_SOCKET), DV_R_OK);
	assert_true(info(w, "10.1.1.6", &v));
	assert_int_equal(v.holds[0].kind, DV_KIND_SOCKET);
	assert_int_equal(v.origin, DV_ORIGIN_BIND);
	/* a holder asking to be standby: it already holds */
	assert_int_equal(standby(w, 2, 9, "10.1.1.5", 10), DV_R_OK);
	assert_true(info(w, "10.1.1.5", &v));
	assert_int_equal(v.n_standbys, 0);
}

static void test_standby_after_holder_died(void **state)
{
	struct world *w = *state;

	assert_int_equal(claim(w, 1, 7, "10.1.1.5", DV_KIND_API), DV_R_OK);
	gone(w, 1, 7);
	assert_int_equal(owner(w, "10.1.1.5"), 0);
	assert_int_equal(standby(w, 2, 9, "10.1.1.5", 100), DV_R_OK);
	assert_int_equal(owner(w, "10.1.1.5"), 2);
	/* granted by the reply, not by a notification */
	assert_int_equal(all_notifies(w), 0);
}

static void test_standby_unique_no_conflict(void **state)
{
	struct world *w = *state;

	assert_int_equal(claim(w, 1, 7, "10.3.3.5", DV_KIND_API), DV_R_OK);
	assert_int_equal(standby(w, 1, 8, "10.3.3.5", 100), DV_R_PENDING);
	assert_int_equal(standby(w, 2, 9, "10.3.3.5", 200), DV_R_PENDING);
	assert_int_equal(release(w, 1, 7, "10.3.3.5", DV_KIND_API), DV_R_OK);
	assert_int_equal(owner(w, "10.3.3.5"), 2);
	assert_int_equal(release(w, 2, 9, "10.3.3.5", DV_KIND_API), DV_R_OK);
	assert_int_equal(owner(w, "10.3.3.5"), 1);
	assert_non_null(notified(w, 1, 8, "10.3.3.5", DV_NOTIFY_GRANTED));
}

static void test_standby_bad_requests(void **state)
{
	struct world *w = *state;

	assert_int_equal(standby(w, 1, 7, "10.1.1.5", 0), DV_R_BADREQ);
	assert_int_equal(standby(w, 1, 7, "10.1.1.5", 255), DV_R_BADREQ);
	assert_int_equal(standby_k(w, 1, 7, "10.1.1.5", 10, DV_KIND_OPERATOR), DV_R_BADREQ);
	assert_int_equal(standby(w, 1, 7, "192.168.9.9", 10), DV_R_NORANGE);
	assert_int_equal(owner(w, "10.1.1.5"), 0);
}

static void test_standby_withdraw(void **state)
{
	struct world *w = *state;
	struct dv_vipa_info v;

	assert_int_equal(claim(w, 1, 7, "10.1.1.5", DV_KIND_API), DV_R_OK);
	assert_int_equal(standby(w, 2, 9, "10.1.1.5", 100), DV_R_PENDING);
	assert_int_equal(release(w, 2, 9, "10.1.1.5", DV_KIND_API), DV_R_OK);
	assert_non_null(strstr(last_reply_reason(w, 2), "withdrawn"));
	assert_true(info(w, "10.1.1.5", &v));
	assert_int_equal(v.n_standbys, 0);
	assert_int_equal(release(w, 2, 9, "10.1.1.5", DV_KIND_API), DV_R_NOTHELD);
	assert_int_equal(release(w, 1, 7, "10.1.1.5", DV_KIND_API), DV_R_OK);
	assert_int_equal(owner(w, "10.1.1.5"), 0);
}

static void test_client_gone_while_standby(void **state)
{
	struct world *w = *state;
	struct dv_vipa_info v;

	assert_int_equal(claim(w, 1, 7, "10.1.1.5", DV_KIND_API), DV_R_OK);
	assert_int_equal(standby(w, 2, 9, "10.1.1.5", 100), DV_R_PENDING);
	assert_int_equal(standby(w, 2, 9, "10.1.1.6", 100), DV_R_OK); /* not held: granted */
	gone(w, 2, 9);
	assert_int_equal(all_notifies(w), 0);
	assert_true(info(w, "10.1.1.5", &v));
	assert_int_equal(v.n_standbys, 0);
	assert_int_equal(owner(w, "10.1.1.6"), 0);
	assert_false(installed(w, 2, "10.1.1.6"));
	assert_int_equal(release(w, 1, 7, "10.1.1.5", DV_KIND_API), DV_R_OK);
	assert_false(info(w, "10.1.1.5", &v));
}

static void test_client_gone_api_only(void **state)
{
	struct world *w = *state;
	struct dv_vipa_info v;

	assert_int_equal(claim(w, 1, 7, "10.1.1.1", DV_KIND_API), DV_R_OK);
	assert_int_equal(claim(w, 1, 7, "10.1.1.2", DV_KIND_API), DV_R_OK);
	assert_int_equal(claim(w, 1, 7, "fd00:1::2", DV_KIND_API), DV_R_OK);
	assert_int_equal(claim(w, 1, 8, "10.1.1.2", DV_KIND_API), DV_R_OK);
	assert_int_equal(claim(w, 1, 7, "10.1.1.3", DV_KIND_OPERATOR), DV_R_OK);
	assert_int_equal(claim(w, 1, 7, "10.1.1.4", DV_KIND_SOCKET), DV_R_OK);
	/* same client id on another node is another client */
	assert_int_equal(claim(w, 2, 7, "10.1.1.9", DV_KIND_API), DV_R_OK);
	gone(w, 1, 7);
	assert_int_equal(count(w, 1, REC_LOCAL), 2);
	assert_false(info(w, "10.1.1.1", &v));
	assert_false(info(w, "fd00:1::2", &v));
	assert_true(info(w, "10.1.1.2", &v));
	assert_int_equal(v.n_holds, 1);
	assert_int_equal(v.holds[0].client, 8);
	assert_int_equal(owner(w, "10.1.1.3"), 1);
	assert_int_equal(owner(w, "10.1.1.4"), 1);
	assert_int_equal(owner(w, "10.1.1.9"), 2);
	/* gone twice, or unknown: nothing */
	gone(w, 1, 7);
	gone(w, 3, 12345);
	assert_int_equal(owner(w, "10.1.1.3"), 1);
}

static void test_claim_replaces_own_standby(void **state)
{
	struct world *w = *state;
	struct dv_vipa_info v;

	assert_int_equal(claim(w, 1, 7, "10.1.1.5", DV_KIND_API), DV_R_OK);
	assert_int_equal(standby(w, 1, 8, "10.1.1.5", 100), DV_R_PENDING);
	assert_int_equal(claim(w, 1, 8, "10.1.1.5", DV_KIND_API), DV_R_OK);
	assert_true(info(w, "10.1.1.5", &v));
	assert_int_equal(v.n_holds, 2);
	assert_int_equal(v.n_standbys, 0);
	gone(w, 1, 8);
	assert_true(info(w, "10.1.1.5", &v));
	assert_int_equal(v.n_holds, 1);
}

/* ---- races: the stream decides ---- */

/*
 * A (n1) holds, S (n2) is standby. The grant happens within A's release:
 * B's claim, ordered after it, meets S as the holder and is an ordinary
 * second activation — refused on a UNIQUE range...
 */
static void test_race_release_claim_unique(void **state)
{
	struct world *w = *state;

	assert_int_equal(claim(w, 1, 1, "10.3.3.5", DV_KIND_API), DV_R_OK);
	assert_int_equal(standby(w, 2, 2, "10.3.3.5", 100), DV_R_PENDING);
	assert_int_equal(release(w, 1, 1, "10.3.3.5", DV_KIND_API), DV_R_OK);
	assert_int_equal(claim(w, 3, 3, "10.3.3.5", DV_KIND_API), DV_R_HELD);
	assert_non_null(strstr(last_reply_reason(w, 3), "held on n2"));
	assert_int_equal(owner(w, "10.3.3.5"), 2);
}

/* ... and a move that takes it from S on a NONDISRUPTIVE one. */
static void test_race_release_claim_moves(void **state)
{
	struct world *w = *state;

	assert_int_equal(claim(w, 1, 1, "10.1.1.5", DV_KIND_API), DV_R_OK);
	assert_int_equal(standby(w, 2, 2, "10.1.1.5", 100), DV_R_PENDING);
	assert_int_equal(release(w, 1, 1, "10.1.1.5", DV_KIND_API), DV_R_OK);
	assert_non_null(notified(w, 2, 2, "10.1.1.5", DV_NOTIFY_GRANTED));
	assert_int_equal(claim(w, 3, 3, "10.1.1.5", DV_KIND_API), DV_R_OK);
	assert_int_equal(owner(w, "10.1.1.5"), 3);
	assert_non_null(notified(w, 2, 2, "10.1.1.5", DV_NOTIFY_LOST));
}

/* The standby registration is ordered after B's claim: B wins, S waits. */
static void test_race_claim_before_standby(void **state)
{
	struct world *w = *state;

	assert_int_equal(claim(w, 1, 1, "10.1.1.5", DV_KIND_API), DV_R_OK);
	assert_int_equal(release(w, 1, 1, "10.1.1.5", DV_KIND_API), DV_R_OK);
	assert_int_equal(claim(w, 3, 3, "10.1.1.5", DV_KIND_API), DV_R_OK);
	assert_int_equal(standby(w, 2, 2, "10.1.1.5", 100), DV_R_PENDING);
	assert_int_equal(owner(w, "10.1.1.5"), 3);
	gone(w, 3, 3);
	assert_int_equal(owner(w, "10.1.1.5"), 2);
}

/* ---- ranges and reload ---- */

static void test_norange(void **state)
{
	struct world *w = *state;

	assert_int_equal(claim(w, 1, 7, "192.168.1.1", DV_KIND_API), DV_R_NORANGE);
	assert_non_null(strstr(last_reply_reason(w, 1), "no VIPARANGE of n1"));
	assert_int_equal(claim(w, 1, 7, "fd00:2::1", DV_KIND_API), DV_R_NORANGE);
	/* a node that is not a member */
	members(w, 2, 1, 2);
	assert_int_equal(claim(w, 3, 7, "10.1.1.5", DV_KIND_API), DV_R_NORANGE);
	assert_int_equal(owner(w, "10.1.1.5"), 0);
	/* each node's own ranges count */
	conf(w, 2, "n2", "range 10.9.0.0/16");
	assert_int_equal(claim(w, 2, 7, "10.1.1.5", DV_KIND_API), DV_R_NORANGE);
	assert_int_equal(claim(w, 2, 7, "10.9.1.1", DV_KIND_API), DV_R_OK);
	assert_int_equal(claim(w, 1, 7, "10.9.1.1", DV_KIND_API), DV_R_NORANGE);
}

/* A range a peer published that covers addresses no VIPA may have (its
 * parser let it through) admits none of them. */
static void test_unusable_address(void **state)
{
	struct world *w = *state;

	conf(w, 1, "n1", "range 0.0.0.0/0 nondisruptive; range ::/0 nondisruptive");
	assert_int_equal(claim(w, 1, 7, "127.0.0.5", DV_KIND_API), DV_R_BADREQ);
	assert_non_null(strstr(last_reply_reason(w, 1), "127.0.0.5 cannot be a VIPA (loopback address)"));
	assert_int_equal(claim(w, 1, 7, "224.1.2.3", DV_KIND_API), DV_R_BADREQ);
	assert_int_equal(claim(w, 1, 7, "255.255.255.255", DV_KIND_API), DV_R_BADREQ);
	assert_int_equal(standby(w, 1, 7, "fe80::1", 10), DV_R_BADREQ);
	assert_int_equal(owner(w, "127.0.0.5"), 0);
	assert_int_equal(claim(w, 1, 7, "10.1.1.5", DV_KIND_API), DV_R_OK);
}

static void test_most_specific_range(void **state)
{
	struct world *w = *state;

	conf(w, 1, "n1", "range 10.0.0.0/8 nondisruptive; range 10.5.5.0/24 unique; range 10.6.6.0/24 unique deleted");
	conf(w, 2, "n2", "range 10.0.0.0/8 nondisruptive; range 10.5.5.0/24 unique; range 10.6.6.0/24 unique deleted");
	assert_int_equal(claim(w, 1, 1, "10.5.5.5", DV_KIND_API), DV_R_OK);
	assert_int_equal(claim(w, 2, 2, "10.5.5.5", DV_KIND_API), DV_R_HELD);
	/* a deleted /24 leaves the live /8 in charge */
	assert_int_equal(claim(w, 1, 1, "10.6.6.6", DV_KIND_API), DV_R_OK);
	assert_int_equal(claim(w, 2, 2, "10.6.6.6", DV_KIND_API), DV_R_OK);
	assert_int_equal(owner(w, "10.6.6.6"), 2);
	/* the claimant's ranges decide: n3 has none for it */
	assert_int_equal(claim(w, 3, 3, "10.6.6.6", DV_KIND_API), DV_R_NORANGE);
}

static void test_reload_range_deleted(void **state)
{
	struct world *w = *state;

	assert_int_equal(claim(w, 1, 7, "10.1.1.5", DV_KIND_API), DV_R_OK);
	assert_int_equal(standby(w, 1, 9, "10.1.1.5", 10), DV_R_PENDING);
	conf(w, 1, "n1", "range 10.1.1.0/24 deleted; range 10.3.3.0/24 unique");
	/* VIPARANGE DELETE does not delete active VIPAs */
	assert_int_equal(owner(w, "10.1.1.5"), 1);
	assert_true(installed(w, 1, "10.1.1.5"));
	assert_int_equal(count(w, 1, REC_LOCAL), 0);
	/* but nothing new is admitted */
	assert_int_equal(claim(w, 1, 8, "10.1.1.5", DV_KIND_API), DV_R_NORANGE);
	assert_int_equal(claim(w, 1, 8, "10.1.1.6", DV_KIND_API), DV_R_NORANGE);
	assert_int_equal(standby(w, 1, 8, "10.1.1.5", 10), DV_R_NORANGE);
	/* a registered standby is still honoured */
	assert_int_equal(release(w, 1, 7, "10.1.1.5", DV_KIND_API), DV_R_OK);
	assert_int_equal(owner(w, "10.1.1.5"), 1);
	assert_non_null(notified(w, 1, 9, "10.1.1.5", DV_NOTIFY_GRANTED));
	/* range gone altogether: the same */
	conf(w, 1, "n1", "range 10.3.3.0/24 unique");
	assert_int_equal(owner(w, "10.1.1.5"), 1);
	assert_int_equal(release(w, 1, 9, "10.1.1.5", DV_KIND_API), DV_R_OK);
	assert_int_equal(owner(w, "10.1.1.5"), 0);
	assert_false(installed(w, 1, "10.1.1.5"));
	/* other nodes still have it */
	assert_int_equal(claim(w, 2, 8, "10.1.1.5", DV_KIND_API), DV_R_OK);
}

static void test_reload_in_between(void **state)
{
	struct world *w = *state;

	/* a reload between a claim and its release, and a policy change */
	assert_int_equal(claim(w, 1, 7, "10.1.1.5", DV_KIND_API), DV_R_OK);
	conf(w, 2, "n2", "range 10.1.1.0/24 unique");
	assert_int_equal(claim(w, 2, 9, "10.1.1.5", DV_KIND_API), DV_R_HELD);
	conf(w, 2, "n2", "range 10.1.1.0/24 nondisruptive");
	assert_int_equal(claim(w, 2, 9, "10.1.1.5", DV_KIND_API), DV_R_OK);
	assert_int_equal(owner(w, "10.1.1.5"), 2);
	assert_string_equal(dv_engine_node_name(w->p[2].e, 2), "n2");
	conf(w, 2, "node-two", "range 10.1.1.0/24");
	assert_string_equal(dv_engine_node_name(w->p[0].e, 2), "node-two");
	assert_int_equal(release(w, 2, 9, "10.1.1.5", DV_KIND_API), DV_R_OK);
}

/* ---- membership and quorum ---- */

static void test_membership_grants_standby(void **state)
{
	struct world *w = *state;
	const struct rec *r;
	struct dv_vipa_info v;

	assert_int_equal(claim(w, 1, 7, "10.1.1.5", DV_KIND_API), DV_R_OK);
	assert_int_equal(standby(w, 2, 9, "10.1.1.5", 100), DV_R_PENDING);
	members(w, 2, 2, 3);
	assert_true(info(w, "10.1.1.5", &v));
	assert_int_equal(v.owner, 2);
	assert_non_null(strstr(v.reason, "n1 left the cluster"));
	r = notified(w, 2, 9, "10.1.1.5", DV_NOTIFY_GRANTED);
	assert_non_null(r);
	assert_true(installed(w, 2, "10.1.1.5"));
	/* n1's own engine, applying the same stream, agrees (and drops it) */
	assert_false(installed(w, 1, "10.1.1.5"));
	assert_non_null(notified(w, 1, 7, "10.1.1.5", DV_NOTIFY_LOST));
}

/* Members left: nothing new is decided until the stream confirms quorum
 * (a minority must not grant its standbys before it learns it lost quorum;
 * the cluster puts a QUORUM event after every membership change). */
static void test_membership_loss_waits_for_quorum(void **state)
{
	struct world *w = *state;
	struct dv_event ev = {.type = DV_EV_MEMBERSHIP};
	dv_nodeid_t ids[] = {2, 3};
	struct dv_vipa_info v;

	assert_int_equal(claim(w, 1, 7, "10.1.1.5", DV_KIND_API), DV_R_OK);
	assert_int_equal(standby(w, 2, 9, "10.1.1.5", 100), DV_R_PENDING);
	assert_int_equal(claim(w, 3, 4, "10.1.1.6", DV_KIND_API), DV_R_OK);
	ev.membership.n = 2;
	ev.membership.nodes = ids;
	assert_int_equal(apply(w, &ev), 0);
	assert_true(dv_engine_confirming(w->p[0].e));
	assert_true(dv_engine_quorate(w->p[0].e));
	/* n1's hold went with n1; its standby waits, nothing granted */
	assert_true(info(w, "10.1.1.5", &v));
	assert_int_equal(v.owner, 0);
	assert_int_equal(v.state, DV_VS_WAITING);
	assert_int_equal(v.n_standbys, 1);
	assert_null(notified(w, 2, 9, "10.1.1.5", DV_NOTIFY_GRANTED));
	assert_false(installed(w, 2, "10.1.1.5"));
	/* owners that stay keep their addresses */
	assert_true(installed(w, 3, "10.1.1.6"));
	assert_non_null(strstr(reason(w, "10.1.1.5"), "quorum is being confirmed"));
	/* requests are served meanwhile (the requester's daemon refuses them
	 * itself if it knows its partition is not quorate) */
	assert_int_equal(claim(w, 3, 4, "10.1.1.7", DV_KIND_API), DV_R_OK);
	assert_true(dv_engine_confirming(w->p[0].e));
	/* the partition turns out to be a minority: still no grant */
	quorum(w, false);
	assert_false(dv_engine_confirming(w->p[0].e));
	assert_int_equal(owner(w, "10.1.1.5"), 0);
	assert_int_equal(all_notifies(w), 0);
	assert_false(installed(w, 3, "10.1.1.6"));
	/* quorum back: the standby is granted */
	quorum(w, true);
	assert_int_equal(owner(w, "10.1.1.5"), 2);
	assert_non_null(notified(w, 2, 9, "10.1.1.5", DV_NOTIFY_GRANTED));

	/* confirmed at once: granted then, with the departure as reason */
	assert_int_equal(standby(w, 3, 5, "10.1.1.5", 50), DV_R_PENDING);
	ids[0] = 3;
	ev.membership.n = 1;
	assert_int_equal(apply(w, &ev), 0);
	assert_true(dv_engine_confirming(w->p[0].e));
	assert_int_equal(owner(w, "10.1.1.5"), 0);
	quorum(w, true);
	assert_int_equal(owner(w, "10.1.1.5"), 3);
	assert_non_null(strstr(reason(w, "10.1.1.5"), "n2 left the cluster (quorum confirmed)"));
	assert_non_null(notified(w, 3, 5, "10.1.1.5", DV_NOTIFY_GRANTED));
}

static void test_membership_drops_everything(void **state)
{
	struct world *w = *state;
	const dv_nodeid_t *m;

	assert_int_equal(claim(w, 3, 1, "10.1.1.1", DV_KIND_API), DV_R_OK);
	assert_int_equal(claim(w, 3, 2, "10.1.1.2", DV_KIND_OPERATOR), DV_R_OK);
	assert_int_equal(claim(w, 3, 3, "10.1.1.3", DV_KIND_SOCKET), DV_R_OK);
	assert_int_equal(claim(w, 1, 4, "10.1.1.4", DV_KIND_API), DV_R_OK);
	assert_int_equal(standby(w, 3, 5, "10.1.1.4", 100), DV_R_PENDING);
	assert_string_equal(dv_engine_node_name(w->p[0].e, 3), "n3");
	members(w, 3, 2, 1, 1); /* unsorted, duplicated */
	assert_int_equal(dv_engine_members(w->p[0].e, &m), 2);
	assert_int_equal(m[0], 1);
	assert_int_equal(m[1], 2);
	assert_int_equal(owner(w, "10.1.1.1"), 0);
	assert_int_equal(owner(w, "10.1.1.2"), 0);
	assert_int_equal(owner(w, "10.1.1.3"), 0);
	assert_false(installed(w, 3, "10.1.1.2"));
	assert_null(dv_engine_node_name(w->p[0].e, 3));
	/* its standby went with it */
	assert_int_equal(release(w, 1, 4, "10.1.1.4", DV_KIND_API), DV_R_OK);
	assert_int_equal(owner(w, "10.1.1.4"), 0);
	/* back, but without configuration until it publishes one */
	members(w, 3, 1, 2, 3);
	assert_int_equal(claim(w, 3, 1, "10.1.1.1", DV_KIND_API), DV_R_NORANGE);
	std_conf(w, 3);
	assert_int_equal(claim(w, 3, 1, "10.1.1.1", DV_KIND_API), DV_R_OK);
}

static void test_quorum_loss_and_regain(void **state)
{
	struct world *w = *state;
	struct dv_vipa_info v;

	assert_int_equal(claim(w, 1, 7, "10.1.1.5", DV_KIND_API), DV_R_OK);
	assert_int_equal(claim(w, 1, 7, "fd00:1::5", DV_KIND_API), DV_R_OK);
	assert_int_equal(claim(w, 2, 7, "10.1.1.6", DV_KIND_API), DV_R_OK);
	quorum(w, false);
	assert_false(dv_engine_quorate(w->p[0].e));
	assert_int_equal(count(w, 1, REC_LOCAL), 2);
	assert_int_equal(count(w, 2, REC_LOCAL), 1);
	assert_false(installed(w, 1, "10.1.1.5"));
	/* the table is kept */
	assert_int_equal(owner(w, "10.1.1.5"), 1);
	assert_int_equal(claim(w, 1, 8, "10.1.1.5", DV_KIND_API), DV_R_NOQUORUM);
	assert_int_equal(claim(w, 1, 8, "10.1.1.99", DV_KIND_API), DV_R_NOQUORUM);
	assert_int_equal(standby(w, 3, 8, "10.1.1.5", 10), DV_R_NOQUORUM);
	/* releases still work */
	assert_int_equal(release(w, 1, 7, "fd00:1::5", DV_KIND_API), DV_R_OK);
	assert_int_equal(count(w, 1, REC_LOCAL), 0);
	assert_false(info(w, "fd00:1::5", &v));
	quorum(w, false); /* again: nothing new */
	assert_int_equal(count(w, 1, REC_LOCAL), 0);
	quorum(w, true);
	assert_int_equal(count(w, 1, REC_LOCAL), 1);
	assert_true(installed(w, 1, "10.1.1.5"));
	assert_true(installed(w, 2, "10.1.1.6"));
	assert_false(installed(w, 1, "fd00:1::5"));
}

static void test_quorum_defers_standby_grant(void **state)
{
	struct world *w = *state;
	struct dv_vipa_info v;

	assert_int_equal(claim(w, 1, 7, "10.1.1.5", DV_KIND_API), DV_R_OK);
	assert_int_equal(standby(w, 2, 9, "10.1.1.5", 100), DV_R_PENDING);
	quorum(w, false);
	gone(w, 1, 7);
	/* no new owner without quorum */
	assert_true(info(w, "10.1.1.5", &v));
	assert_int_equal(v.state, DV_VS_WAITING);
	assert_int_equal(v.owner, 0);
	assert_int_equal(v.n_standbys, 1);
	assert_int_equal(all_notifies(w), 0);
	quorum(w, true);
	assert_int_equal(owner(w, "10.1.1.5"), 2);
	assert_non_null(strstr(reason(w, "10.1.1.5"), "quorum was regained"));
	assert_non_null(notified(w, 2, 9, "10.1.1.5", DV_NOTIFY_GRANTED));
	assert_true(installed(w, 2, "10.1.1.5"));
}

/* ---- VIPADEFINE / VIPABACKUP ---- */

static void test_define_activation(void **state)
{
	struct world *w = *state;
	struct dv_vipa_info v;

	conf(w, 2, "n2", STD_RANGES "; backup 100 " VD " immediate");
	/* the backup may activate it: MOVEABLE IMMEDIATE */
	assert_int_equal(owner(w, VD), 2);
	assert_true(info(w, VD, &v));
	assert_int_equal(v.origin, DV_ORIGIN_BACKUP);
	conf(w, 1, "n1", STD_RANGES "; define " VD);
	/* the define takes it back at once */
	assert_true(info(w, VD, &v));
	assert_int_equal(v.owner, 1);
	assert_int_equal(v.origin, DV_ORIGIN_DEFINE);
	assert_int_equal(v.state, DV_VS_ACTIVE);
	assert_int_equal(v.n_holds, 0);
	assert_non_null(strstr(v.reason, "taken back from n2 by VIPADEFINE on n1"));
	assert_true(installed(w, 1, VD));
	assert_false(installed(w, 2, VD));
}

static void test_define_takeover_order(void **state)
{
	struct world *w = *state;
	struct dv_vipa_info v;

	conf(w, 1, "n1", STD_RANGES "; define " VD);
	conf(w, 2, "n2", STD_RANGES "; backup 50 " VD);
	conf(w, 3, "n3", STD_RANGES "; backup 100 " VD);
	assert_int_equal(owner(w, VD), 1);
	members(w, 2, 2, 3);
	assert_true(info(w, VD, &v));
	assert_int_equal(v.owner, 3);
	assert_int_equal(v.origin, DV_ORIGIN_BACKUP);
	assert_non_null(strstr(v.reason, "on n3 (VIPABACKUP rank 100 on n3) after n1 left the cluster"));
	assert_true(installed(w, 3, VD));
	members(w, 1, 2);
	assert_int_equal(owner(w, VD), 2);
	assert_true(installed(w, 2, VD));
	members(w, 0);
	assert_false(info(w, VD, &v));
}

static void test_define_takeback_immediate(void **state)
{
	struct world *w = *state;

	conf(w, 1, "n1", STD_RANGES "; define " VD);
	conf(w, 2, "n2", STD_RANGES "; range 10.9.9.0/24; backup 100 " VD);
	members(w, 2, 2, 3);
	assert_int_equal(owner(w, VD), 2);
	/* an application on n2 holds it too */
	assert_int_equal(claim(w, 2, 5, VD, DV_KIND_API), DV_R_OK);
	members(w, 3, 1, 2, 3);
	assert_int_equal(owner(w, VD), 2); /* no config yet */
	conf(w, 1, "n1", STD_RANGES "; define " VD " immediate");
	assert_int_equal(owner(w, VD), 1);
	assert_true(installed(w, 1, VD));
	assert_false(installed(w, 2, VD));
	assert_non_null(notified(w, 2, 5, VD, DV_NOTIFY_LOST));
	assert_non_null(strstr(reason(w, VD), "MOVEABLE IMMEDIATE"));
}

static void test_define_takeback_whenidle(void **state)
{
	struct world *w = *state;

	conf(w, 1, "n1", STD_RANGES "; define " VD " whenidle");
	conf(w, 2, "n2", STD_RANGES "; backup 100 " VD);
	members(w, 2, 2, 3);
	assert_int_equal(owner(w, VD), 2);
	addr_state(w, 2, VD, DV_AS_BUSY);
	members(w, 3, 1, 2, 3);
	conf(w, 1, "n1", STD_RANGES "; define " VD " whenidle");
	/* n2 still has connections on it */
	assert_int_equal(owner(w, VD), 2);
	addr_state(w, 1, VD, 0); /* the returning node's own state is irrelevant */
	assert_int_equal(owner(w, VD), 2);
	addr_state(w, 2, VD, DV_AS_BUSY | DV_AS_BOUND);
	assert_int_equal(owner(w, VD), 2);
	addr_state(w, 2, VD, DV_AS_BOUND);
	assert_int_equal(owner(w, VD), 1);
	assert_non_null(strstr(reason(w, VD), "WHENIDLE"));
	assert_true(installed(w, 1, VD));
}

static void test_define_whenidle_never_reported(void **state)
{
	struct world *w = *state;

	conf(w, 1, "n1", STD_RANGES "; define " VD " whenidle");
	conf(w, 2, "n2", STD_RANGES "; backup 100 " VD);
	members(w, 2, 2, 3);
	assert_int_equal(owner(w, VD), 2);
	addr_state(w, 2, VD, DV_AS_BUSY);
	/* leaving forgets what n2 reported */
	members(w, 1, 3);
	members(w, 2, 2, 3);
	conf(w, 2, "n2", STD_RANGES "; backup 100 " VD);
	assert_int_equal(owner(w, VD), 0); /* a NONE backup after the address was gone */
	members(w, 3, 1, 2, 3);
	conf(w, 1, "n1", STD_RANGES "; define " VD " whenidle");
	assert_int_equal(owner(w, VD), 1);
	members(w, 2, 2, 3);
	assert_int_equal(owner(w, VD), 2);
	members(w, 3, 1, 2, 3);
	conf(w, 1, "n1", STD_RANGES "; define " VD " whenidle");
	/* n2 never reported since it took over: idle */
	assert_int_equal(owner(w, VD), 1);
}

static void test_define_trackport(void **state)
{
	struct world *w = *state;
	struct dv_vipa_info v;

	conf(w, 1, "n1", STD_RANGES "; define " VD " trackport 8080");
	/* no listener: not eligible, and nobody else */
	assert_true(info(w, VD, &v));
	assert_int_equal(v.state, DV_VS_INACTIVE);
	assert_int_equal(v.owner, 0);
	assert_non_null(strstr(v.reason, "TRACKPORT 8080"));
	conf(w, 2, "n2", STD_RANGES "; backup 100 " VD " immediate");
	assert_int_equal(owner(w, VD), 2);
	addr_state(w, 1, VD, DV_AS_LISTENING);
	assert_int_equal(owner(w, VD), 1);
	assert_true(installed(w, 1, VD));
	addr_state(w, 1, VD, 0);
	assert_int_equal(owner(w, VD), 2);
	assert_non_null(strstr(reason(w, VD), "taken over"));
	assert_true(installed(w, 2, VD));
}

static void test_define_move_none_backup(void **state)
{
	struct world *w = *state;
	struct dv_vipa_info v;

	members(w, 2, 2, 3);
	conf(w, 2, "n2", STD_RANGES "; backup 100 " VD);
	/* never active: a plain VIPABACKUP does not activate it */
	assert_true(info(w, VD, &v));
	assert_int_equal(v.state, DV_VS_INACTIVE);
	assert_non_null(strstr(v.reason, "never been active"));
	members(w, 3, 1, 2, 3);
	conf(w, 1, "n1", STD_RANGES "; define " VD);
	assert_int_equal(owner(w, VD), 1);
	/* it was active: now the backup takes over */
	members(w, 2, 2, 3);
	assert_int_equal(owner(w, VD), 2);
	/* a NONE backup does not take back from a lower one */
	conf(w, 3, "n3", STD_RANGES "; backup 50 " VD);
	members(w, 1, 3);
	assert_int_equal(owner(w, VD), 3);
	members(w, 2, 2, 3);
	conf(w, 2, "n2", STD_RANGES "; backup 100 " VD);
	assert_int_equal(owner(w, VD), 3);
}

static void test_define_equal_ranks(void **state)
{
	struct world *w = *state;

	conf(w, 3, "n3", STD_RANGES "; backup 80 " VD " immediate");
	assert_int_equal(owner(w, VD), 3);
	conf(w, 2, "n2", STD_RANGES "; backup 80 " VD " immediate");
	/* equal rank does not take back */
	assert_int_equal(owner(w, VD), 3);
	members(w, 2, 1, 2);
	assert_int_equal(owner(w, VD), 2);
	members(w, 3, 1, 2, 3);
	conf(w, 3, "n3", STD_RANGES "; backup 80 " VD " immediate");
	assert_int_equal(owner(w, VD), 2);
	/* from scratch, the lowest node id wins a tie */
	members(w, 1, 1);
	members(w, 3, 1, 2, 3);
	conf(w, 3, "n3", STD_RANGES "; backup 80 " VD " immediate");
	conf(w, 2, "n2", STD_RANGES "; backup 80 " VD " immediate");
	assert_int_equal(owner(w, VD), 3);
	quorum(w, false);
	members(w, 1, 1);
	members(w, 3, 1, 2, 3);
	conf(w, 3, "n3", STD_RANGES "; backup 80 " VD " immediate");
	conf(w, 2, "n2", STD_RANGES "; backup 80 " VD " immediate");
	assert_int_equal(owner(w, VD), 0);
	quorum(w, true);
	assert_int_equal(owner(w, VD), 2);
}

static void test_define_claims(void **state)
{
	struct world *w = *state;
	struct dv_vipa_info v;

	conf(w, 1, "n1", STD_RANGES "; range 10.9.9.0/24 unique; define " VD);
	conf(w, 2, "n2", STD_RANGES "; range 10.9.9.0/24; backup 10 " VD);
	/* n3 has no range covering it */
	assert_int_equal(claim(w, 3, 1, VD, DV_KIND_API), DV_R_NORANGE);
	assert_int_equal(claim(w, 2, 1, VD, DV_KIND_API), DV_R_HELD);
	assert_non_null(strstr(last_reply_reason(w, 2), "defined by VIPADEFINE on n1"));
	assert_int_equal(standby(w, 2, 1, VD, 10), DV_R_HELD);
	/* on the owner: an extra hold, even in a UNIQUE range */
	assert_int_equal(claim(w, 1, 1, VD, DV_KIND_API), DV_R_OK);
	assert_int_equal(claim(w, 1, 2, VD, DV_KIND_SOCKET), DV_R_OK);
	assert_int_equal(count(w, 1, REC_LOCAL), 0);
	assert_true(info(w, VD, &v));
	assert_int_equal(v.n_holds, 2);
	assert_int_equal(v.origin, DV_ORIGIN_DEFINE);
	/* ending the holds does not end the define */
	gone(w, 1, 1);
	addr_state(w, 1, VD, 0);
	assert_true(info(w, VD, &v));
	assert_int_equal(v.n_holds, 0);
	assert_int_equal(v.owner, 1);
	assert_true(installed(w, 1, VD));
}

static void test_define_removed_by_reload(void **state)
{
	struct world *w = *state;
	struct dv_vipa_info v;

	conf(w, 1, "n1", STD_RANGES "; range 10.9.9.0/24; define " VD);
	conf(w, 2, "n2", STD_RANGES "; backup 100 " VD);
	assert_int_equal(claim(w, 1, 4, VD, DV_KIND_API), DV_R_OK);
	/* n1 drops the define: the backup takes over and n1's hold ends */
	conf(w, 1, "n1", STD_RANGES "; range 10.9.9.0/24");
	assert_int_equal(owner(w, VD), 2);
	assert_non_null(notified(w, 1, 4, VD, DV_NOTIFY_LOST));
	conf(w, 2, "n2", STD_RANGES);
	/* no define left anywhere, no hold: gone */
	assert_false(info(w, VD, &v));
	assert_false(installed(w, 2, VD));
	/* a hold survives the define's removal */
	conf(w, 1, "n1", STD_RANGES "; range 10.9.9.0/24; define " VD);
	assert_int_equal(claim(w, 1, 4, VD, DV_KIND_API), DV_R_OK);
	conf(w, 1, "n1", STD_RANGES "; range 10.9.9.0/24");
	assert_true(info(w, VD, &v));
	assert_int_equal(v.owner, 1);
	assert_int_equal(v.origin, DV_ORIGIN_API);
	assert_non_null(strstr(v.reason, "no longer stack-managed"));
	assert_true(installed(w, 1, VD));
	assert_int_equal(release(w, 1, 4, VD, DV_KIND_API), DV_R_OK);
	assert_false(installed(w, 1, VD));
}

static void test_define_over_active_range_vipa(void **state)
{
	struct world *w = *state;

	conf(w, 3, "n3", STD_RANGES "; range 10.9.9.0/24");
	assert_int_equal(claim(w, 3, 1, VD, DV_KIND_API), DV_R_OK);
	assert_int_equal(standby(w, 3, 2, VD, 10), DV_R_PENDING);
	conf(w, 1, "n1", STD_RANGES "; define " VD);
	/* stack-managed from now on: holds elsewhere and standbys end */
	assert_int_equal(owner(w, VD), 1);
	assert_non_null(notified(w, 3, 1, VD, DV_NOTIFY_LOST));
	assert_non_null(notified(w, 3, 2, VD, DV_NOTIFY_LOST));
	assert_false(installed(w, 3, VD));
}

static void test_define_quorum(void **state)
{
	struct world *w = *state;

	conf(w, 1, "n1", STD_RANGES "; define " VD);
	conf(w, 2, "n2", STD_RANGES "; backup 100 " VD);
	quorum(w, false);
	assert_false(installed(w, 1, VD));
	members(w, 2, 2, 3);
	/* takeover waits for quorum */
	assert_int_equal(owner(w, VD), 0);
	assert_int_equal(vstate(w, VD), DV_VS_INACTIVE);
	assert_non_null(strstr(reason(w, VD), "not quorate"));
	quorum(w, true);
	assert_int_equal(owner(w, VD), 2);
	assert_true(installed(w, 2, VD));
}

static void test_define_inactive_listed(void **state)
{
	struct world *w = *state;
	struct snap s;

	conf(w, 1, "n1", STD_RANGES "; define 10.9.9.3 trackport 80; define 10.9.9.2; define fd00:9::1");
	assert_int_equal(claim(w, 1, 1, "10.1.1.1", DV_KIND_API), DV_R_OK);
	snap_take(w->p[0].e, &s);
	assert_int_equal(s.n, 4);
	assert_int_equal(s.v[0].state, DV_VS_ACTIVE);	/* 10.1.1.1 */
	assert_int_equal(s.v[1].state, DV_VS_ACTIVE);	/* 10.9.9.2 */
	assert_int_equal(s.v[2].state, DV_VS_INACTIVE); /* 10.9.9.3 */
	assert_int_equal(s.v[2].owner, 0);
	assert_int_equal(s.v[3].addr.family, AF_INET6);
	free(s.v);
}

static void test_define_duplicates_first_wins(void **state)
{
	struct world *w = *state;

	conf(w, 3, "n3", STD_RANGES "; backup 150 " VD " immediate");
	assert_int_equal(owner(w, VD), 3);
	/* the same address twice in one configuration: the first line counts */
	conf(w, 2, "n2", STD_RANGES "; backup 100 " VD " immediate; backup 200 " VD " immediate");
	assert_int_equal(owner(w, VD), 3);
	conf(w, 2, "n2", STD_RANGES "; backup 200 " VD " immediate; backup 100 " VD " immediate");
	assert_int_equal(owner(w, VD), 2);
}

static void test_socket_standby(void **state)
{
	struct world *w = *state;
	struct dv_vipa_info v;

	assert_int_equal(claim(w, 1, 7, "10.1.1.5", DV_KIND_API), DV_R_OK);
	assert_int_equal(standby_k(w, 2, 3, "10.1.1.5", 10, DV_KIND_SOCKET), DV_R_PENDING);
	/* an api release does not withdraw a socket standby */
	assert_int_equal(release(w, 2, 3, "10.1.1.5", DV_KIND_API), DV_R_NOTHELD);
	assert_int_equal(release(w, 1, 7, "10.1.1.5", DV_KIND_API), DV_R_OK);
	assert_true(info(w, "10.1.1.5", &v));
	assert_int_equal(v.owner, 2);
	assert_int_equal(v.holds[0].kind, DV_KIND_SOCKET);
	assert_int_equal(v.origin, DV_ORIGIN_BIND);
	assert_non_null(notified(w, 2, 3, "10.1.1.5", DV_NOTIFY_GRANTED));
	/* now a socket hold: it outlives the client, ends with the sockets */
	gone(w, 2, 3);
	assert_int_equal(owner(w, "10.1.1.5"), 2);
	addr_state(w, 2, "10.1.1.5", 0);
	assert_int_equal(owner(w, "10.1.1.5"), 0);
	/* withdrawn by a socket release */
	assert_int_equal(claim(w, 1, 7, "10.1.1.5", DV_KIND_API), DV_R_OK);
	assert_int_equal(standby_k(w, 2, 3, "10.1.1.5", 10, DV_KIND_SOCKET), DV_R_PENDING);
	assert_int_equal(release(w, 2, 3, "10.1.1.5", DV_KIND_SOCKET), DV_R_OK);
	assert_true(info(w, "10.1.1.5", &v));
	assert_int_equal(v.n_standbys, 0);
}

static void test_node_table_cap(void **state)
{
	struct world *w = *state;
	dv_nodeid_t ids[DV_ENGINE_MAX_NODES];
	struct dv_event ev = {.type = DV_EV_MEMBERSHIP};
	const dv_nodeid_t *m;
	int r = 0;

	/* configurations published before joining take entries too */
	for (dv_nodeid_t n = 100; r == 0; n++) {
		r = conf_rc(w, n, "x", "range 10.1.1.0/24");
		assert_true(n < 100 + 2 * DV_ENGINE_MAX_NODES);
	}
	assert_int_equal(r, -ENOSPC);
	/* a membership that needs more entries than free is refused whole */
	for (size_t i = 0; i < DV_ENGINE_MAX_NODES; i++)
		ids[i] = (dv_nodeid_t)(1000 + i);
	ev.membership.n = DV_ENGINE_MAX_NODES;
	ev.membership.nodes = ids;
	assert_int_equal(apply(w, &ev), -ENOSPC);
	assert_int_equal(dv_engine_members(w->p[0].e, &m), 3);
	/* one that drops the strangers' configurations frees them */
	ids[0] = 1;
	ids[1] = 2;
	ids[2] = 3;
	ev.membership.n = 3;
	assert_int_equal(apply(w, &ev), 0);
	assert_null(dv_engine_node_name(w->p[0].e, 100));
	ev.membership.n = DV_ENGINE_MAX_NODES;
	for (size_t i = 0; i < DV_ENGINE_MAX_NODES; i++)
		ids[i] = (dv_nodeid_t)(1000 + i);
	assert_int_equal(apply(w, &ev), 0);
	assert_int_equal(dv_engine_members(w->p[0].e, &m), DV_ENGINE_MAX_NODES);
	assert_int_equal(dv_engine_members(NULL, &m), 0);
	assert_null(m);
}

static void test_since_and_holds_times(void **state)
{
	struct world *w = *state;
	struct dv_vipa_info v;
	uint64_t t1, t2;

	assert_int_equal(claim(w, 1, 7, "10.1.1.5", DV_KIND_API), DV_R_OK);
	t1 = w->time;
	assert_int_equal(claim(w, 1, 8, "10.1.1.5", DV_KIND_API), DV_R_OK);
	t2 = w->time;
	assert_true(info(w, "10.1.1.5", &v));
	/* a shared hold is no owner change */
	assert_int_equal(v.since_ms, t1);
	assert_int_equal(v.holds[1].since_ms, t2);
	assert_int_equal(standby(w, 2, 1, "10.1.1.5", 5), DV_R_PENDING);
	assert_true(info(w, "10.1.1.5", &v));
	assert_int_equal(v.standbys[0].since_ms, w->time);
	assert_int_equal(v.standbys[0].uid, 1000);
	gone(w, 1, 7);
	gone(w, 1, 8);
	assert_true(info(w, "10.1.1.5", &v));
	assert_int_equal(v.since_ms, w->time);
	assert_int_equal(v.holds[0].since_ms, w->time);
}

/* ---- views ---- */

static int stop_at_second(void *ud, const struct dv_vipa_info *v)
{
	int *n = ud;

	return ++*n == 2 ? 42 : 0;
}

static void test_foreach_sorted(void **state)
{
	struct world *w = *state;
	static const char *const order[] = {"10.1.1.2",	  "10.1.1.10", "10.2.2.1",
					    "10.3.3.200", "fd00:1::1", "fd00:1::1:0"};
	static const char *const claims[] = {"fd00:1::1:0", "10.3.3.200", "10.1.1.10",
					     "fd00:1::1",   "10.2.2.1",	  "10.1.1.2"};
	struct snap s;
	int n = 0;

	for (size_t i = 0; i < 6; i++)
		assert_int_equal(claim(w, 1 + i % 3, 1, claims[i], DV_KIND_API), DV_R_OK);
	snap_take(w->p[1].e, &s);
	assert_int_equal(s.n, 6);
	for (size_t i = 0; i < 6; i++) {
		struct dv_addr a = A(order[i]);

		assert_true(dv_addr_eq(&s.v[i].addr, &a));
	}
	free(s.v);
	assert_int_equal(dv_engine_foreach(w->p[0].e, stop_at_second, &n), 42);
	assert_int_equal(n, 2);
}

static void test_lookup_and_names(void **state)
{
	struct world *w = *state;
	struct dv_addr a = A("10.1.1.1"), none = {0};
	struct dv_vipa_info v;
	const dv_nodeid_t *m;

	assert_int_equal(dv_engine_lookup(w->p[0].e, &a, &v), -ENOENT);
	assert_int_equal(dv_engine_lookup(w->p[0].e, &none, &v), -ENOENT);
	assert_string_equal(dv_engine_node_name(w->p[0].e, 1), "n1");
	assert_string_equal(dv_engine_node_name(w->p[1].e, 3), "n3");
	assert_null(dv_engine_node_name(w->p[0].e, 4));
	assert_int_equal(dv_engine_members(w->p[2].e, &m), 3);
	assert_int_equal(m[2], 3);
	assert_true(dv_engine_quorate(w->p[0].e));
	/* an unnamed node is called by its id */
	members(w, 4, 1, 2, 3, 9);
	conf(w, 9, "", "range 10.1.1.0/24 unique");
	assert_null(dv_engine_node_name(w->p[0].e, 9));
	assert_int_equal(claim(w, 1, 1, "10.1.1.1", DV_KIND_API), DV_R_OK);
	assert_int_equal(claim(w, 9, 1, "10.1.1.1", DV_KIND_API), -1); /* no engine of node 9 here */
	assert_int_equal(owner(w, "10.1.1.1"), 1);
	/* NULL-safety of the accessors */
	assert_null(dv_engine_free(NULL));
	assert_int_equal(dv_engine_seq(NULL), 0);
	assert_int_equal(dv_engine_apply(NULL, NULL, NULL), -EINVAL);
}

static void test_notify_only_self(void **state)
{
	struct world *w = *state;

	assert_int_equal(claim(w, 1, 7, "10.1.1.5", DV_KIND_API), DV_R_OK);
	assert_int_equal(standby(w, 3, 8, "10.1.1.5", 1), DV_R_PENDING);
	assert_int_equal(claim(w, 2, 9, "10.1.1.5", DV_KIND_API), DV_R_OK);
	assert_int_equal(count(w, 1, REC_NOTIFY), 1);
	assert_int_equal(count(w, 2, REC_NOTIFY), 0);
	assert_int_equal(count(w, 3, REC_NOTIFY), 0);
	/* the lost hold, on the same engine, carries no reply */
	assert_int_equal(count(w, 1, REC_REPLY), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_initial_state, setup_bare, teardown),
		cmocka_unit_test_setup_teardown(test_activation, setup3, teardown),
		cmocka_unit_test_setup_teardown(test_activation_ipv6, setup3, teardown),
		cmocka_unit_test_setup_teardown(test_shared_holds, setup3, teardown),
		cmocka_unit_test_setup_teardown(test_idempotent_claims, setup3, teardown),
		cmocka_unit_test_setup_teardown(test_unique_same_node, setup3, teardown),
		cmocka_unit_test_setup_teardown(test_unique_other_node, setup3, teardown),
		cmocka_unit_test_setup_teardown(test_release_unheld, setup3, teardown),
		cmocka_unit_test_setup_teardown(test_operator_hold, setup3, teardown),
		cmocka_unit_test_setup_teardown(test_socket_hold_addr_state, setup3, teardown),
		cmocka_unit_test_setup_teardown(test_socket_hold_with_api_hold, setup3, teardown),
		cmocka_unit_test_setup_teardown(test_addr_state_unknown, setup3, teardown),
		cmocka_unit_test_setup_teardown(test_move_nondisruptive, setup3, teardown),
		cmocka_unit_test_setup_teardown(test_move_disruptive_ends_operator, setup3, teardown),
		cmocka_unit_test_setup_teardown(test_bind_cannot_move_operator, setup3, teardown),
		cmocka_unit_test_setup_teardown(test_source_use_never_moves, setup3, teardown),
		cmocka_unit_test_setup_teardown(test_move_keeps_standbys, setup3, teardown),
		cmocka_unit_test_setup_teardown(test_operator_move, setup3, teardown),
		cmocka_unit_test_setup_teardown(test_operator_move_refusals, setup3, teardown),
		cmocka_unit_test_setup_teardown(test_define_deactivate_reactivate, setup3, teardown),
		cmocka_unit_test_setup_teardown(test_node_leave_join, setup3, teardown),
		cmocka_unit_test_setup_teardown(test_quiesce_replicated, setup3, teardown),
		cmocka_unit_test_setup_teardown(test_standby_granted_on_release, setup3, teardown),
		cmocka_unit_test_setup_teardown(test_standby_rank_order, setup3, teardown),
		cmocka_unit_test_setup_teardown(test_standby_ties_earliest, setup3, teardown),
		cmocka_unit_test_setup_teardown(test_standby_reregister, setup3, teardown),
		cmocka_unit_test_setup_teardown(test_standby_immediate, setup3, teardown),
		cmocka_unit_test_setup_teardown(test_standby_after_holder_died, setup3, teardown),
		cmocka_unit_test_setup_teardown(test_standby_unique_no_conflict, setup3, teardown),
		cmocka_unit_test_setup_teardown(test_standby_bad_requests, setup3, teardown),
		cmocka_unit_test_setup_teardown(test_standby_withdraw, setup3, teardown),
		cmocka_unit_test_setup_teardown(test_client_gone_while_standby, setup3, teardown),
		cmocka_unit_test_setup_teardown(test_client_gone_api_only, setup3, teardown),
		cmocka_unit_test_setup_teardown(test_claim_replaces_own_standby, setup3, teardown),
		cmocka_unit_test_setup_teardown(test_race_release_claim_unique, setup3, teardown),
		cmocka_unit_test_setup_teardown(test_race_release_claim_moves, setup3, teardown),
		cmocka_unit_test_setup_teardown(test_race_claim_before_standby, setup3, teardown),
		cmocka_unit_test_setup_teardown(test_unusable_address, setup3, teardown),
		cmocka_unit_test_setup_teardown(test_norange, setup3, teardown),
		cmocka_unit_test_setup_teardown(test_most_specific_range, setup3, teardown),
		cmocka_unit_test_setup_teardown(test_reload_range_deleted, setup3, teardown),
		cmocka_unit_test_setup_teardown(test_reload_in_between, setup3, teardown),
		cmocka_unit_test_setup_teardown(test_membership_grants_standby, setup3, teardown),
		cmocka_unit_test_setup_teardown(test_membership_drops_everything, setup3, teardown),
		cmocka_unit_test_setup_teardown(test_membership_loss_waits_for_quorum, setup3, teardown),
		cmocka_unit_test_setup_teardown(test_quorum_loss_and_regain, setup3, teardown),
		cmocka_unit_test_setup_teardown(test_quorum_defers_standby_grant, setup3, teardown),
		cmocka_unit_test_setup_teardown(test_define_activation, setup3, teardown),
		cmocka_unit_test_setup_teardown(test_define_takeover_order, setup3, teardown),
		cmocka_unit_test_setup_teardown(test_define_takeback_immediate, setup3, teardown),
		cmocka_unit_test_setup_teardown(test_define_takeback_whenidle, setup3, teardown),
		cmocka_unit_test_setup_teardown(test_define_whenidle_never_reported, setup3, teardown),
		cmocka_unit_test_setup_teardown(test_define_trackport, setup3, teardown),
		cmocka_unit_test_setup_teardown(test_define_move_none_backup, setup3, teardown),
		cmocka_unit_test_setup_teardown(test_define_equal_ranks, setup3, teardown),
		cmocka_unit_test_setup_teardown(test_define_claims, setup3, teardown),
		cmocka_unit_test_setup_teardown(test_define_removed_by_reload, setup3, teardown),
		cmocka_unit_test_setup_teardown(test_define_over_active_range_vipa, setup3, teardown),
		cmocka_unit_test_setup_teardown(test_define_quorum, setup3, teardown),
		cmocka_unit_test_setup_teardown(test_define_inactive_listed, setup3, teardown),
		cmocka_unit_test_setup_teardown(test_define_duplicates_first_wins, setup3, teardown),
		cmocka_unit_test_setup_teardown(test_socket_standby, setup3, teardown),
		cmocka_unit_test_setup_teardown(test_node_table_cap, setup3, teardown),
		cmocka_unit_test_setup_teardown(test_since_and_holds_times, setup3, teardown),
		cmocka_unit_test_setup_teardown(test_foreach_sorted, setup3, teardown),
		cmocka_unit_test_setup_teardown(test_lookup_and_names, setup3, teardown),
		cmocka_unit_test_setup_teardown(test_notify_only_self, setup3, teardown),
		cmocka_unit_test_setup_teardown(test_port_slices, setup3, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
