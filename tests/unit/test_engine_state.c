/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The engine under stress, driven by event scripts in the world of
 * engine_world.h: limits and malformed events, long pseudo-random streams
 * on which every engine agrees, and the state transfer (a node joining:
 * snapshot and restore; crafted and corrupt snapshots refused).
 */
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

/* ---- limits and malformed input ---- */

static void test_limit_vipas(void **state)
{
	struct world *w = *state;
	struct dv_event ev = {.type = DV_EV_CLAIM, .node = 1};
	struct peer *p = peer(w, 1);
	unsigned ok = 0;

	w->check = false;
	for (size_t i = 0; i < w->n; i++)
		w->p[i].track = false;
	conf(w, 1, "n1", "range 10.0.0.0/8; range 11.0.0.0/8");
	ev.claim.kind = DV_KIND_API;
	for (uint32_t i = 0; i <= DV_ENGINE_MAX_VIPAS; i++) {
		ev.claim.addr.family = AF_INET;
		ev.claim.addr.v4.s_addr = htonl(0x0a000000u + i);
		ev.claim.client = i;
		assert_int_equal(peer_apply(p, &ev), 0);
		p->n_recs = 0;
		ok++;
	}
	assert_int_equal(ok, DV_ENGINE_MAX_VIPAS + 1);
	assert_int_equal(p->n_local_up, DV_ENGINE_MAX_VIPAS);
	p->n_recs = 0;
	ev.claim.addr = A("11.0.0.1");
	ev.claim.seq = 77;
	assert_int_equal(peer_apply(p, &ev), 0);
	assert_int_equal(p->n_recs, 1);
	assert_int_equal(p->recs[0].code, DV_R_LIMIT);
	/* freeing one makes room; client gone costs what the client had */
	{
		struct dv_event g = {.type = DV_EV_CLIENT_GONE, .node = 1};

		g.client_gone.client = 5;
		assert_int_equal(peer_apply(p, &g), 0);
	}
	p->n_recs = 0;
	assert_int_equal(peer_apply(p, &ev), 0);
	assert_int_equal(p->recs[p->n_recs - 1].code, DV_R_OK);
	/* a configuration whose defines do not fit is refused as a whole */
	{
		struct dv_conf_define d = {.addr = A("11.0.0.2"), .rank = 255};
		struct dv_event c = {.type = DV_EV_NODE_CONFIG, .node = 1};
		uint64_t seq = dv_engine_seq(p->e);

		c.node_config.n_defines = 1;
		c.node_config.defines = &d;
		assert_int_equal(peer_apply(p, &c), -ENOSPC);
		assert_int_equal(dv_engine_seq(p->e), seq);
	}
}

static void test_limit_holds(void **state)
{
	struct world *w = *state;
	struct peer *p = peer(w, 1);

	w->check = false;
	for (uint64_t c = 1; c <= DV_ENGINE_MAX_HOLDS; c++) {
		p->n_recs = 0;
		assert_int_equal(claim(w, 1, c, "10.1.1.5", DV_KIND_API), DV_R_OK);
	}
	assert_int_equal(claim(w, 1, 5000, "10.1.1.5", DV_KIND_API), DV_R_LIMIT);
	assert_non_null(strstr(last_reply_reason(w, 1), "too many holds"));
	w->check = true;
	assert_int_equal(claim(w, 1, 5, "10.1.1.5", DV_KIND_API), DV_R_OK); /* already held */
	assert_int_equal(release(w, 1, 5, "10.1.1.5", DV_KIND_API), DV_R_OK);
	assert_int_equal(claim(w, 1, 5000, "10.1.1.5", DV_KIND_API), DV_R_OK);
}

static void test_limit_standbys(void **state)
{
	struct world *w = *state;
	struct dv_vipa_info v;

	w->check = false;
	assert_int_equal(claim(w, 1, 1, "10.1.1.5", DV_KIND_API), DV_R_OK);
	for (uint64_t c = 1; c <= DV_ENGINE_MAX_STANDBYS; c++)
		assert_int_equal(standby(w, 2, c, "10.1.1.5", (unsigned)(c % 254) + 1), DV_R_PENDING);
	assert_int_equal(standby(w, 3, 1, "10.1.1.5", 254), DV_R_LIMIT);
	/* re-registering an existing one is not a new one */
	assert_int_equal(standby(w, 2, 1, "10.1.1.5", 254), DV_R_PENDING);
	w->check = true;
	assert_true(info(w, "10.1.1.5", &v));
	assert_int_equal(v.n_standbys, DV_ENGINE_MAX_STANDBYS);
	assert_int_equal(v.standbys[0].client, 1);
	for (size_t i = 1; i < v.n_standbys; i++)
		assert_true(v.standbys[i - 1].rank >= v.standbys[i].rank);
	gone(w, 1, 1);
	assert_int_equal(owner(w, "10.1.1.5"), 2);
	assert_non_null(notified(w, 2, 1, "10.1.1.5", DV_NOTIFY_GRANTED));
}

static void expect_einval(struct world *w, struct dv_event *ev)
{
	for (size_t i = 0; i < w->n; i++) {
		uint64_t seq = dv_engine_seq(w->p[i].e);

		w->p[i].n_recs = 0;
		assert_int_equal(peer_apply(&w->p[i], ev), -EINVAL);
		assert_int_equal(dv_engine_seq(w->p[i].e), seq);
		assert_int_equal(w->p[i].n_recs, 0);
	}
}

static void test_malformed(void **state)
{
	struct world *w = *state;
	struct dv_event ev;
	dv_nodeid_t ids[DV_ENGINE_MAX_NODES + 1];
	struct dv_conf_range r = {0};
	struct dv_conf_define d = {0};

	assert_int_equal(claim(w, 1, 7, "10.1.1.5", DV_KIND_API), DV_R_OK);

	ev = (struct dv_event){.type = 0, .node = 1};
	expect_einval(w, &ev);
	ev = (struct dv_event){.type = 99, .node = 1};
	expect_einval(w, &ev);
	ev = (struct dv_event){.type = (enum dv_event_type) - 1, .node = 1};
	expect_einval(w, &ev);

	/* address family 0 or unknown */
	ev = (struct dv_event){.type = DV_EV_CLAIM, .node = 1};
	ev.claim.kind = DV_KIND_API;
	expect_einval(w, &ev);
	ev.claim.addr.family = AF_UNIX;
	expect_einval(w, &ev);
	ev = (struct dv_event){.type = DV_EV_RELEASE, .node = 1};
	ev.release.kind = DV_KIND_API;
	ev.release.client = 7;
	expect_einval(w, &ev);
	ev = (struct dv_event){.type = DV_EV_STANDBY, .node = 1};
	ev.standby.rank = 10;
	ev.standby.kind = DV_KIND_API;
	expect_einval(w, &ev);
	ev = (struct dv_event){.type = DV_EV_ADDR_STATE, .node = 1};
	expect_einval(w, &ev);

	/* unknown hold kind, node 0 */
	ev = (struct dv_event){.type = DV_EV_RELEASE, .node = 1};
	ev.release.addr = A("10.1.1.5");
	ev.release.client = 7;
	ev.release.kind = 0;
	expect_einval(w, &ev);
	ev.release.kind = 17;
	expect_einval(w, &ev);
	ev.release.kind = DV_KIND_API;
	ev.node = 0;
	expect_einval(w, &ev);
	ev = (struct dv_event){.type = DV_EV_CLIENT_GONE, .node = 0};
	expect_einval(w, &ev);

	/* membership: too many, node 0, missing array */
	for (size_t i = 0; i <= DV_ENGINE_MAX_NODES; i++)
		ids[i] = (dv_nodeid_t)(i + 1);
	ev = (struct dv_event){.type = DV_EV_MEMBERSHIP};
	ev.membership.n = DV_ENGINE_MAX_NODES + 1;
	ev.membership.nodes = ids;
	expect_einval(w, &ev);
	ids[1] = 0;
	ev.membership.n = 3;
	expect_einval(w, &ev);
	ev.membership.nodes = NULL;
	expect_einval(w, &ev);

	/* configuration: bad range family, bad define rank, missing arrays */
	ev = (struct dv_event){.type = DV_EV_NODE_CONFIG, .node = 1};
	ev.node_config.n_ranges = 1;
	ev.node_config.ranges = &r;
	expect_einval(w, &ev);
	r.prefix.addr = A("10.0.0.0");
	r.prefix.len = 40;
	expect_einval(w, &ev);
	ev.node_config.n_ranges = 0;
	ev.node_config.n_defines = 1;
	ev.node_config.defines = &d;
	d.addr = A("10.9.9.9");
	d.rank = 0;
	expect_einval(w, &ev);
	d.rank = 256;
	expect_einval(w, &ev);
	d.rank = 255;
	d.moveable = 7;
	expect_einval(w, &ev);
	ev.node_config.defines = NULL;
	expect_einval(w, &ev);

	/* nothing changed */
	assert_int_equal(owner(w, "10.1.1.5"), 1);
	assert_string_equal(dv_engine_node_name(w->p[0].e, 1), "n1");
	assert_int_equal(release(w, 1, 7, "10.1.1.5", DV_KIND_API), DV_R_OK);
}

/* ---- agreement under a long pseudo-random stream ---- */

static int no_client_state(void *ud, const struct dv_vipa_info *v)
{
	(void)ud;
	assert_int_equal(v->n_standbys, 0);
	for (size_t i = 0; i < v->n_holds; i++)
		assert_int_not_equal(v->holds[i].kind, DV_KIND_API);
	return 0;
}

static void run_random(uint64_t seed, int steps)
{
	struct world *w = world_new(NPEERS + 2); /* five nodes */
	static const char *const addrs[] = {"10.1.1.1", "10.1.1.2", "10.2.2.1", "10.3.3.1", VD, "10.9.9.2"};
	static const enum dv_kind kinds[] = {DV_KIND_API, DV_KIND_API, DV_KIND_OPERATOR, DV_KIND_SOCKET};
	uint64_t s = seed;
	unsigned active = 0, notes = 0;

	members(w, 5, 1, 2, 3, 4, 5);
	quorum(w, true);
	for (dv_nodeid_t n = 1; n <= 5; n++)
		std_conf(w, n);
	for (int step = 0; step < steps; step++) {
		dv_nodeid_t n = 1 + rnd(&s) % 5;
		const char *a = addrs[rnd(&s) % 6];
		uint64_t c = 1 + rnd(&s) % 4;
		uint32_t x = rnd(&s) % 100;
		struct dv_event ev = {.node = n};

		if (x < 30) {
			ev.type = DV_EV_CLAIM;
			ev.claim.client = c;
			ev.claim.addr = A(a);
			ev.claim.kind = kinds[rnd(&s) % 4];
		} else if (x < 50) {
			ev.type = DV_EV_RELEASE;
			ev.release.client = c;
			ev.release.addr = A(a);
			ev.release.kind = kinds[rnd(&s) % 4];
		} else if (x < 65) {
			ev.type = DV_EV_STANDBY;
			ev.standby.client = c;
			ev.standby.addr = A(a);
			ev.standby.rank = 1 + rnd(&s) % 5;
			ev.standby.kind = rnd(&s) % 2 ? DV_KIND_API : DV_KIND_SOCKET;
		} else if (x < 72) {
			ev.type = DV_EV_CLIENT_GONE;
			ev.client_gone.client = c;
		} else if (x < 82) {
			ev.type = DV_EV_ADDR_STATE;
			ev.addr_state.addr = A(a);
			ev.addr_state.flags = rnd(&s) % 8;
		} else if (x < 88) {
			dv_nodeid_t ids[5];
			size_t k = 0;

			for (dv_nodeid_t i = 1; i <= 5; i++)
				if (rnd(&s) % 4)
					ids[k++] = i;
			ev.type = DV_EV_MEMBERSHIP;
			ev.membership.n = k;
			ev.membership.nodes = ids;
			apply(w, &ev);
			/* a joining daemon publishes its configuration */
			for (size_t i = 0; i < k; i++)
				if (!dv_engine_node_name(w->p[0].e, ids[i]))
					std_conf(w, ids[i]);
			continue;
		} else if (x < 92) {
			ev.type = DV_EV_QUORUM;
			ev.quorum.quorate = rnd(&s) % 3 != 0;
		} else if (x < 96) {
			random_operator(&ev, &s, x, c, (uint32_t)step, a);
		} else {
			static const char *const scripts[] = {
				STD_RANGES,
				STD_RANGES "; range 10.9.9.0/24; define " VD " whenidle trackport 80",
				STD_RANGES "; backup 100 " VD "; backup 20 10.9.9.2 immediate",
				"range 10.1.1.0/24 deleted; range 10.3.3.0/24 nondisruptive; define 10.9.9.2",
			};
			char name[8];

			snprintf(name, sizeof(name), "n%u", n);
			conf_rc(w, n, name, scripts[rnd(&s) % 4]);
			continue;
		}
		apply(w, &ev);
		for (size_t k = 0; k < 6; k++)
			active += owner(w, addrs[k]) != 0;
		notes += all_notifies(w);
	}
	/* the stream did exercise something */
	assert_true(active > (unsigned)steps);
	assert_true(notes > 10);
	/* every client going away leaves no api hold and no standby behind:
	 * the client index is complete */
	for (dv_nodeid_t n = 1; n <= 5; n++)
		for (uint64_t c = 1; c <= 4; c++)
			gone(w, n, c);
	assert_int_equal(dv_engine_foreach(w->p[0].e, no_client_state, NULL), 0);
	world_free(w);
}

/* Five engines, long pseudo-random streams of every event kind (including
 * refused ones): world_check() after each event proves agreement. */
static void test_random_streams_agree(void **state)
{
	(void)state;
	for (uint64_t seed = 1; seed <= 8; seed++)
		run_random(seed * 7919, 2500);
}

static void test_many_vipas_fast(void **state)
{
	struct world *w = *state;
	struct dv_event ev = {.type = DV_EV_CLAIM, .node = 2};
	struct peer *p = peer(w, 1);

	/* 20,000 VIPAs held by 20,000 clients of n2, each client going away:
	 * linear in the events, not quadratic. Seen from n1. */
	w->check = false;
	conf(w, 2, "n2", "range 10.0.0.0/8");
	ev.claim.kind = DV_KIND_API;
	for (uint32_t i = 0; i < 20000; i++) {
		ev.claim.addr.family = AF_INET;
		ev.claim.addr.v4.s_addr = htonl(0x0a100000u + i);
		ev.claim.client = i + 1;
		assert_int_equal(peer_apply(p, &ev), 0);
	}
	ev.claim.client = 20001;
	ev.claim.addr = A("10.16.0.1");
	assert_int_equal(peer_apply(p, &ev), 0); /* shared */
	for (uint32_t i = 0; i < 20000; i++) {
		struct dv_event g = {.type = DV_EV_CLIENT_GONE, .node = 2};

		g.client_gone.client = i + 1;
		assert_int_equal(peer_apply(p, &g), 0);
	}
	{
		struct dv_vipa_info v;
		struct dv_addr a = A("10.16.0.1"), b = A("10.16.0.2");

		assert_int_equal(dv_engine_lookup(p->e, &a, &v), 0);
		assert_int_equal(v.n_holds, 1);
		assert_int_equal(dv_engine_lookup(p->e, &b, &v), -ENOENT);
	}
	assert_int_equal(p->n_recs, 0); /* nothing for n1's clients */
}

/* ---- state transfer (cluster join) ---- */

/* The snapshot's envelope, as engine.c lays it out. */
#define SNAP_LENGTH_OFF 8
#define SNAP_HEADER 16
#define SNAP_TRAILER 4

static size_t snapshot_of(struct dv_engine *e, uint8_t **ret)
{
	size_t len = 0;

	assert_int_equal(dv_engine_snapshot(e, ret, &len), 0);
	assert_true(len >= SNAP_HEADER + SNAP_TRAILER);
	return len;
}

/* Same replicated state, byte for byte (snapshots are canonical). */
static void assert_same_state(struct dv_engine *a, struct dv_engine *b)
{
	uint8_t *x, *y;
	size_t nx = snapshot_of(a, &x), ny = snapshot_of(b, &y);

	assert_int_equal(nx, ny);
	assert_memory_equal(x, y, nx);
	free(x);
	free(y);
}

/* Reports from outside the membership are not kept (peers' reports are
 * bounded by members x VIPAs); a member's report is. */
static void test_addr_state_from_non_member(void **state)
{
	struct world *w = *state;
	uint8_t *x;
	size_t l0, l1, l2;

	assert_int_equal(claim(w, 1, 7, "10.1.1.5", DV_KIND_API), DV_R_OK);
	l0 = snapshot_of(w->p[0].e, &x);
	free(x);
	addr_state(w, 9, "10.1.1.5", DV_AS_BUSY);
	l1 = snapshot_of(w->p[0].e, &x);
	free(x);
	assert_int_equal(l1, l0);
	addr_state(w, 2, "10.1.1.5", DV_AS_BUSY);
	l2 = snapshot_of(w->p[0].e, &x);
	free(x);
	assert_true(l2 > l0);
}

/* Make the length field and the checksum match the bytes again. */
static void snap_seal(uint8_t *buf, size_t len)
{
	uint32_t crc;

	for (int i = 0; i < 8; i++)
		buf[SNAP_LENGTH_OFF + i] = (uint8_t)((uint64_t)len >> (8 * i));
	crc = dv_crc32(buf, len - SNAP_TRAILER);
	for (int i = 0; i < 4; i++)
		buf[len - SNAP_TRAILER + i] = (uint8_t)(crc >> (8 * i));
}

/* Restore a heap copy of exactly len bytes; rec (if any) records the
 * effects. */
static int restore_copy(struct dv_engine *e, struct peer *rec, const uint8_t *buf, size_t len)
{
	struct dv_effects fx = {0};
	uint8_t *c = malloc(len ? len : 1);
	int r;

	assert_non_null(c);
	if (len)
		memcpy(c, buf, len);
	r = dv_engine_restore(e, c, len, rec ? &fx : NULL);
	if (rec)
		record(rec, &fx);
	else
		assert_int_equal(fx.n, 0);
	dv_effects_free(&fx);
	free(c);
	return r;
}

static void rec_equal(const struct rec *a, const struct rec *b)
{
	assert_int_equal(a->type, b->type);
	assert_int_equal(a->client, b->client);
	assert_int_equal(a->seq, b->seq);
	assert_true(dv_addr_eq(&a->addr, &b->addr));
	assert_int_equal(a->code, b->code);
	assert_string_equal(a->reason, b->reason);
}

static bool same_installed(const struct peer *a, const struct peer *b)
{
	if (a->n_installed != b->n_installed)
		return false;
	for (size_t i = 0; i < a->n_installed; i++)
		if (installed_find(b, &a->installed[i]) < 0)
			return false;
	return true;
}

/*
 *   n1 ── n2 ── n3 ── n4        joiner: a fifth engine, self = one of n1..n4,
 *                                       restored from another node's snapshot
 *
 * The joiner sits in the world's last slot: from its restore on, apply()
 * feeds it every event and world_check() compares its table and its
 * installed addresses like any other engine's. Here it must also match its
 * twin (the engine with the same self, fed from the start) effect for
 * effect, and every engine must have the same state byte for byte.
 */
#define JOINER 4

static void join_check(struct world *w)
{
	struct peer *b = &w->p[JOINER], *t;

	if (w->n <= JOINER)
		return;
	t = &w->p[b->self - 1];
	assert_int_equal(b->n_recs, t->n_recs);
	assert_int_equal(b->dropped, t->dropped);
	for (size_t k = 0; k < b->n_recs; k++)
		rec_equal(&b->recs[k], &t->recs[k]);
	for (size_t i = 1; i < w->n; i++)
		assert_same_state(w->p[0].e, w->p[i].e);
}

/* A fresh engine with self `self` joins from node `from`'s snapshot. */
static void join(struct world *w, dv_nodeid_t self, dv_nodeid_t from)
{
	struct peer *b = &w->p[JOINER], *t = peer(w, self);
	uint8_t *buf;
	size_t len;

	if (w->n > JOINER) {
		assert_null(dv_engine_free(b->e));
		free(b->installed);
	}
	memset(b, 0, sizeof(*b));
	b->self = self;
	b->track = true;
	b->e = dv_engine_new(self);
	assert_non_null(b->e);
	len = snapshot_of(peer(w, from)->e, &buf);
	assert_int_equal(restore_copy(b->e, b, buf, len), 0);
	free(buf);
	/* its local effects bring up exactly what its twin has, nothing else */
	assert_int_equal(b->n_recs, t->n_installed);
	for (size_t k = 0; k < b->n_recs; k++) {
		assert_int_equal(b->recs[k].type, REC_LOCAL);
		assert_int_equal(b->recs[k].code, 1);
		if (k > 0)
			assert_true(dv_addr_cmp(&b->recs[k - 1].addr, &b->recs[k].addr) < 0);
	}
	assert_true(same_installed(b, t));
	assert_same_state(b->e, t->e);
	assert_int_equal(dv_engine_seq(b->e), dv_engine_seq(t->e));
	assert_int_equal(dv_engine_quorate(b->e), dv_engine_quorate(t->e));
	assert_int_equal(dv_engine_self(b->e), self);
	{
		const dv_nodeid_t *mb, *mt;
		size_t n = dv_engine_members(b->e, &mb);

		assert_int_equal(n, dv_engine_members(t->e, &mt));
		if (n)
			assert_memory_equal(mb, mt, n * sizeof(*mb));
		for (dv_nodeid_t id = 1; id <= 9; id++) {
			const char *x = dv_engine_node_name(b->e, id), *y = dv_engine_node_name(t->e, id);

			assert_true((x == NULL) == (y == NULL));
			if (x)
				assert_string_equal(x, y);
		}
	}
	w->n = JOINER + 1;
	b->n_recs = 0;
}

/* The joiner goes back to an older state and returns: the local effects
 * both ways keep its installed set right (cb_local checks never up twice,
 * never down without up). */
static void rejoin_via(struct world *w, const uint8_t *old, size_t old_len)
{
	struct peer *b = &w->p[JOINER], *t = peer(w, b->self);
	uint8_t *now;
	size_t len = snapshot_of(t->e, &now);

	b->n_recs = 0;
	assert_int_equal(restore_copy(b->e, b, old, old_len), 0);
	assert_same_state(b->e, b->e);
	for (size_t k = 0; k < b->n_recs; k++)
		assert_int_equal(b->recs[k].type, REC_LOCAL);
	assert_int_equal(restore_copy(b->e, b, now, len), 0);
	for (size_t k = 0; k < b->n_recs; k++)
		assert_int_equal(b->recs[k].type, REC_LOCAL);
	assert_true(same_installed(b, t));
	assert_same_state(b->e, t->e);
	/* restoring the state it has changes nothing */
	b->n_recs = 0;
	assert_int_equal(restore_copy(b->e, b, now, len), 0);
	assert_int_equal(b->n_recs, 0);
	free(now);
}

static void run_join(uint64_t seed, int steps)
{
	struct world *w = world_new(JOINER);
	static const char *const addrs[] = {"10.1.1.1", "10.1.1.2", "10.2.2.1", "10.3.3.1",
					    VD,		"10.9.9.2", "fd00:1::1"};
	static const enum dv_kind kinds[] = {DV_KIND_API, DV_KIND_API, DV_KIND_OPERATOR, DV_KIND_SOCKET};
	static const char *const scripts[] = {
		STD_RANGES,
		STD_RANGES "; range 10.9.9.0/24; define " VD " whenidle trackport 80",
		STD_RANGES "; backup 100 " VD "; backup 20 10.9.9.2 immediate",
		"range 10.1.1.0/24 deleted; range 10.3.3.0/24 nondisruptive; define 10.9.9.2",
		STD_RANGES "; backup 200 " VD " whenidle; define 10.9.9.2 trackport 22",
	};
	uint8_t *old = NULL;
	size_t old_len = 0;
	uint64_t s = seed;
	unsigned joins = 0;

	members(w, 4, 1, 2, 3, 4);
	quorum(w, true);
	for (dv_nodeid_t n = 1; n <= 4; n++)
		std_conf(w, n);
	for (int step = 0; step < steps; step++) {
		/* node 9 has no engine: a stranger's requests and configuration */
		dv_nodeid_t n = rnd(&s) % 10 ? 1 + rnd(&s) % 4 : 9;
		const char *a = addrs[rnd(&s) % 7];
		uint64_t c = 1 + rnd(&s) % 5;
		uint32_t x = rnd(&s) % 100;
		struct dv_event ev = {.node = n};
		char name[8];

		if (rnd(&s) % 50 == 0) {
			dv_nodeid_t self = 1 + rnd(&s) % 4, from = 1 + (self + rnd(&s) % 3) % 4;

			join(w, self, from);
			joins++;
		} else if (w->n > JOINER && old && rnd(&s) % 40 == 0) {
			rejoin_via(w, old, old_len);
		}
		if (rnd(&s) % 60 == 0) {
			free(old);
			old_len = snapshot_of(w->p[rnd(&s) % w->n].e, &old);
		}

		snprintf(name, sizeof(name), "n%u", n);
		if (x < 28) {
			ev.type = DV_EV_CLAIM;
			ev.claim.client = c;
			ev.claim.seq = (uint32_t)step;
			ev.claim.addr = A(a);
			ev.claim.kind = kinds[rnd(&s) % 4];
			ev.claim.uid = (uid_t)c;
		} else if (x < 46) {
			ev.type = DV_EV_RELEASE;
			ev.release.client = c;
			ev.release.seq = (uint32_t)step;
			ev.release.addr = A(a);
			ev.release.kind = kinds[rnd(&s) % 4];
		} else if (x < 62) {
			ev.type = DV_EV_STANDBY;
			ev.standby.client = c;
			ev.standby.seq = (uint32_t)step;
			ev.standby.addr = A(a);
			ev.standby.rank = rnd(&s) % 8 ? 1 + rnd(&s) % 5 : 255;
			ev.standby.kind = rnd(&s) % 2 ? DV_KIND_API : DV_KIND_SOCKET;
			ev.standby.uid = (uid_t)c;
		} else if (x < 70) {
			ev.type = DV_EV_CLIENT_GONE;
			ev.client_gone.client = c;
		} else if (x < 81) {
			ev.type = DV_EV_ADDR_STATE;
			ev.addr_state.addr = A(a);
			ev.addr_state.flags = rnd(&s) % 8;
		} else if (x < 87) {
			dv_nodeid_t ids[5];
			size_t k = 0;

			for (dv_nodeid_t i = 1; i <= 4; i++)
				if (rnd(&s) % 4)
					ids[k++] = i;
			if (rnd(&s) % 5 == 0)
				ids[k++] = 9;
			ev.type = DV_EV_MEMBERSHIP;
			ev.membership.n = k;
			ev.membership.nodes = ids;
			assert_int_equal(apply(w, &ev), 0);
			join_check(w);
			for (size_t i = 0; i < k; i++) {
				if (dv_engine_node_name(w->p[0].e, ids[i]))
					continue;
				snprintf(name, sizeof(name), "n%u", ids[i]);
				conf(w, ids[i], name, scripts[rnd(&s) % 5]);
				join_check(w);
			}
			continue;
		} else if (x < 92) {
			ev.type = DV_EV_QUORUM;
			ev.quorum.quorate = rnd(&s) % 3 != 0;
		} else if (x < 96) {
			random_operator(&ev, &s, x, c, (uint32_t)step, a);
		} else {
			/* also from nodes outside the membership: kept until the
			 * next membership change */
			conf(w, n, name, scripts[rnd(&s) % 5]);
			join_check(w);
			continue;
		}
		assert_int_equal(apply(w, &ev), 0);
		join_check(w);
	}
	assert_true(joins > (unsigned)steps / 100);
	free(old);
	world_free(w);
}

/* (a) An engine restored from any node's snapshot at any point, then fed
 * the rest of the stream, behaves exactly like the engine with its self
 * that saw the whole stream. */
static void test_join_random_streams(void **state)
{
	(void)state;
	for (uint64_t seed = 1; seed <= 6; seed++)
		run_join(seed * 104729, 2000);
}

/* The order of a client's addresses is state: CLIENT_GONE ends them last
 * first, and the joiner must remove them in the order its twin does. */
static void test_join_keeps_client_order(void **state)
{
	struct world *w = world_new(JOINER);
	static const char *const addrs[] = {"10.1.1.9", "10.1.1.2", "fd00:1::1", "10.1.1.5", "10.2.2.7"};
	struct peer *b = &w->p[JOINER], *t;

	(void)state;
	members(w, 4, 1, 2, 3, 4);
	quorum(w, true);
	for (dv_nodeid_t n = 1; n <= 4; n++)
		std_conf(w, n);
	for (size_t i = 0; i < 5; i++)
		assert_int_equal(claim(w, 2, 7, addrs[i], DV_KIND_API), DV_R_OK);
	/* a release moves the last entry into the freed place */
	assert_int_equal(release(w, 2, 7, "10.1.1.2", DV_KIND_API), DV_R_OK);
	join(w, 2, 1);
	t = peer(w, 2);
	gone(w, 2, 7);
	join_check(w);
	/* four addresses went, in the index's order, not the address order */
	assert_int_equal(t->n_recs, 4);
	assert_int_equal(b->n_recs, 4);
	{
		bool sorted = true;

		for (size_t k = 1; k < 4; k++)
			sorted = sorted && dv_addr_cmp(&t->recs[k - 1].addr, &t->recs[k].addr) < 0;
		assert_false(sorted);
	}
	world_free(w);
}

/* A member that has published no configuration yet, restored, then
 * leaving: its entry goes without leaking anything (found by fuzz_wire). */
static void test_restore_member_without_conf(void **state)
{
	struct world *w = *state;
	struct dv_engine *e = dv_engine_new(2);
	uint8_t *buf;
	size_t len;

	members(w, 4, 1, 2, 3, 4);
	assert_null(dv_engine_node_name(w->p[0].e, 4));
	len = snapshot_of(w->p[0].e, &buf);
	assert_int_equal(restore_copy(e, NULL, buf, len), 0);
	free(buf);
	members(w, 3, 1, 2, 3);
	{
		struct dv_event ev = {.type = DV_EV_MEMBERSHIP};
		dv_nodeid_t ids[] = {1, 2, 3};

		struct dv_event q = {.type = DV_EV_QUORUM, .quorum.quorate = true};

		/* what members() applied: the membership, then the quorum */
		ev.time_ms = w->time - 1000;
		ev.membership.n = 3;
		ev.membership.nodes = ids;
		assert_int_equal(dv_engine_apply(e, &ev, NULL), 0);
		assert_true(dv_engine_confirming(e));
		q.time_ms = w->time;
		assert_int_equal(dv_engine_apply(e, &q, NULL), 0);
	}
	assert_same_state(e, w->p[0].e);
	dv_engine_free(e);
}

/* (b) Restore reports what self must install and remove, nothing more. */
static void test_restore_local_effects(void **state)
{
	struct world *w = *state;
	struct peer px = {.self = 1, .track = true};
	uint8_t *s1, *s2, *s3;
	size_t l1, l2, l3;
	static const char *const up1[] = {"10.1.1.1", "10.1.1.2", "10.2.2.1"};

	assert_int_equal(claim(w, 1, 7, "10.1.1.1", DV_KIND_API), DV_R_OK);
	assert_int_equal(claim(w, 1, 7, "10.1.1.2", DV_KIND_API), DV_R_OK);
	assert_int_equal(claim(w, 2, 8, "10.1.1.3", DV_KIND_API), DV_R_OK);
	assert_int_equal(claim(w, 1, 9, "10.2.2.1", DV_KIND_OPERATOR), DV_R_OK);
	assert_int_equal(standby(w, 3, 4, "10.1.1.1", 5), DV_R_PENDING);
	l1 = snapshot_of(w->p[0].e, &s1);
	assert_int_equal(claim(w, 2, 8, "10.1.1.1", DV_KIND_API), DV_R_OK); /* moves to n2 */
	assert_int_equal(release(w, 1, 7, "10.1.1.2", DV_KIND_API), DV_R_OK);
	assert_int_equal(claim(w, 1, 9, "10.1.1.3", DV_KIND_API), DV_R_OK); /* moves to n1 */
	assert_int_equal(claim(w, 1, 5, "fd00:1::4", DV_KIND_SOCKET), DV_R_OK);
	l2 = snapshot_of(w->p[0].e, &s2);
	quorum(w, false);
	l3 = snapshot_of(w->p[0].e, &s3);

	px.e = dv_engine_new(1);
	assert_non_null(px.e);
	/* from nothing: n1's addresses of s1 come up, in address order */
	assert_int_equal(restore_copy(px.e, &px, s1, l1), 0);
	assert_int_equal(px.n_recs, 3);
	for (size_t k = 0; k < 3; k++) {
		struct dv_addr a = A(up1[k]);

		assert_int_equal(px.recs[k].type, REC_LOCAL);
		assert_int_equal(px.recs[k].code, 1);
		assert_true(dv_addr_eq(&px.recs[k].addr, &a));
	}
	/* s1 -> s2: two go, two come, 10.2.2.1 stays without a word */
	px.n_recs = 0;
	assert_int_equal(restore_copy(px.e, &px, s2, l2), 0);
	assert_int_equal(px.n_recs, 4);
	{
		static const char *const want[] = {"10.1.1.1", "10.1.1.2", "10.1.1.3", "fd00:1::4"};

		for (size_t k = 0; k < 4; k++) {
			struct dv_addr a = A(want[k]);

			assert_int_equal(px.recs[k].type, REC_LOCAL);
			assert_int_equal(px.recs[k].code, k >= 2);
			assert_true(dv_addr_eq(&px.recs[k].addr, &a));
		}
	}
	assert_int_equal(px.n_installed, 3);
	{
		uint8_t *got;

		assert_int_equal(snapshot_of(px.e, &got), l2);
		assert_memory_equal(got, s2, l2);
		free(got);
	}
	/* the same state again: nothing */
	px.n_recs = 0;
	assert_int_equal(restore_copy(px.e, &px, s2, l2), 0);
	assert_int_equal(px.n_recs, 0);
	/* the partition lost quorum: everything goes */
	assert_int_equal(restore_copy(px.e, &px, s3, l3), 0);
	assert_int_equal(px.n_recs, 3);
	assert_int_equal(px.n_installed, 0);
	assert_false(dv_engine_quorate(px.e));
	/* and comes back with it */
	px.n_recs = 0;
	assert_int_equal(restore_copy(px.e, &px, s2, l2), 0);
	assert_int_equal(px.n_recs, 3);
	assert_int_equal(px.n_installed, 3);

	/* from the world's state on, it answers like n1's engine (to the
	 * same events: without the hand-over's reports) */
	w->no_hand_over = true;
	assert_int_equal(restore_copy(px.e, &px, s3, l3), 0);
	for (int step = 0; step < 2; step++) {
		struct dv_event ev = {.type = DV_EV_QUORUM, .quorum.quorate = true};

		if (step == 1) {
			ev = (struct dv_event){.type = DV_EV_CLIENT_GONE, .node = 1};
			ev.client_gone.client = 9;
		}
		assert_int_equal(apply(w, &ev), 0);
		px.n_recs = 0;
		assert_int_equal(peer_apply(&px, &ev), 0);
		assert_int_equal(px.n_recs, w->p[0].n_recs);
		assert_true(px.n_recs > 0);
		for (size_t k = 0; k < px.n_recs; k++)
			rec_equal(&px.recs[k], &w->p[0].recs[k]);
		assert_same_state(px.e, w->p[0].e);
	}

	/* a node that owns nothing hears nothing; without callbacks, no crash */
	{
		struct peer p3 = {.self = 3, .track = true};
		struct dv_engine *quiet = dv_engine_new(3);

		p3.e = dv_engine_new(3);
		assert_int_equal(restore_copy(p3.e, &p3, s2, l2), 0);
		assert_int_equal(p3.n_recs, 0);
		assert_int_equal(restore_copy(quiet, NULL, s1, l1), 0);
		assert_int_equal(restore_copy(quiet, NULL, s3, l3), 0);
		dv_engine_free(quiet);
		dv_engine_free(p3.e);
		free(p3.installed);
	}
	dv_engine_free(px.e);
	free(px.installed);
	free(s1);
	free(s2);
	free(s3);
}

/* A state with a bit of everything: holds of every kind, standbys, defines
 * and backups with reports, a configuration of a node outside the
 * membership, a client with several addresses. */
static void rich_state(struct world *w)
{
	conf(w, 1, "n1", STD_RANGES "; range 10.9.9.0/24; define " VD " whenidle trackport 80; define 10.9.9.2");
	conf(w, 2, "n2", STD_RANGES "; backup 100 " VD "; backup 20 10.9.9.2 immediate");
	conf(w, 7, "stranger", "range 10.1.1.0/24 unique; define 10.9.9.3");
	assert_int_equal(claim(w, 1, 7, "10.1.1.1", DV_KIND_API), DV_R_OK);
	assert_int_equal(claim(w, 1, 8, "10.1.1.1", DV_KIND_API), DV_R_OK);
	assert_int_equal(claim(w, 1, 7, "fd00:1::7", DV_KIND_API), DV_R_OK);
	assert_int_equal(claim(w, 2, 0, "10.2.2.2", DV_KIND_OPERATOR), DV_R_OK);
	assert_int_equal(claim(w, 3, 0, "10.3.3.3", DV_KIND_SOCKET), DV_R_OK);
	assert_int_equal(standby(w, 2, 5, "10.1.1.1", 10), DV_R_PENDING);
	assert_int_equal(standby_k(w, 3, 6, "10.1.1.1", 10, DV_KIND_SOCKET), DV_R_PENDING);
	assert_int_equal(standby(w, 3, 7, "fd00:1::7", 200), DV_R_PENDING);
	addr_state(w, 1, VD, DV_AS_LISTENING | DV_AS_BUSY);
	addr_state(w, 2, VD, DV_AS_BOUND);
	addr_state(w, 3, "10.3.3.3", DV_AS_BOUND | DV_AS_BUSY);
}

/* (c) Truncated or corrupted snapshots are refused and change nothing. */
static void test_restore_corrupt(void **state)
{
	struct world *w = *state;
	struct peer pt = {.self = 2, .track = true};
	static const uint8_t deltas[] = {0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0xff};
	uint8_t *s0, *s, *before, *c;
	size_t l0, len, lb;
	unsigned refused = 0, accepted = 0;

	assert_int_equal(claim(w, 2, 1, "10.1.1.9", DV_KIND_API), DV_R_OK);
	l0 = snapshot_of(w->p[0].e, &s0);
	rich_state(w);
	len = snapshot_of(w->p[0].e, &s);

	/* a target with a state of its own and an address installed */
	pt.e = dv_engine_new(2);
	assert_non_null(pt.e);
	assert_int_equal(restore_copy(pt.e, &pt, s0, l0), 0);
	assert_int_equal(pt.n_installed, 1);
	lb = snapshot_of(pt.e, &before);
	c = malloc(len + 1);
	assert_non_null(c);

#define REFUSED(buf, n)                                                                                                \
	do {                                                                                                           \
		uint8_t *after_;                                                                                       \
		size_t la_;                                                                                            \
                                                                                                                       \
		pt.n_recs = 0;                                                                                         \
		assert_int_equal(restore_copy(pt.e, &pt, (buf), (n)), -EBADMSG);                                       \
		assert_int_equal(pt.n_recs, 0);                                                                        \
		la_ = snapshot_of(pt.e, &after_);                                                                      \
		assert_int_equal(la_, lb);                                                                             \
		assert_memory_equal(after_, before, lb);                                                               \
		free(after_);                                                                                          \
	} while (0)

	for (size_t k = 0; k < len; k++) {
		/* truncated */
		REFUSED(s, k);
		/* truncated, with length and checksum made to match */
		if (k >= SNAP_HEADER + SNAP_TRAILER) {
			memcpy(c, s, k);
			snap_seal(c, k);
			REFUSED(c, k);
		}
		/* any byte changed: the checksum notices */
		memcpy(c, s, len);
		c[k] ^= 0x01;
		REFUSED(c, len);
		c[k] ^= 0xfe;
		REFUSED(c, len);
	}
	/* a byte more */
	memcpy(c, s, len - SNAP_TRAILER);
	c[len - SNAP_TRAILER] = 0;
	snap_seal(c, len + 1);
	REFUSED(c, len + 1);
	/* nothing */
	REFUSED(NULL, 0);
	REFUSED(s, 0);
	assert_int_equal(dv_engine_restore(NULL, s, len, NULL), -EINVAL);

	/* Any byte changed, checksum fixed: refused and unchanged, or taken
	 * whole, and then the state is exactly what the bytes say. */
	for (size_t k = 0; k < len - SNAP_TRAILER; k++) {
		for (size_t d = 0; d < sizeof(deltas); d++) {
			int r;

			memcpy(c, s, len);
			c[k] ^= deltas[d];
			snap_seal(c, len);
			pt.n_recs = 0;
			r = restore_copy(pt.e, &pt, c, len);
			if (r == 0) {
				uint8_t *got;
				size_t lg = snapshot_of(pt.e, &got);

				assert_int_equal(lg, len);
				assert_memory_equal(got, c, len);
				free(got);
				for (size_t i = 0; i < pt.n_recs; i++)
					assert_int_equal(pt.recs[i].type, REC_LOCAL);
				assert_int_equal(restore_copy(pt.e, &pt, before, lb), 0);
				accepted++;
			} else {
				REFUSED(c, len);
				refused++;
			}
		}
	}
#undef REFUSED
	assert_true(refused > accepted / 4);
	assert_true(accepted > 100);
	/* still a working engine with its old addresses */
	assert_int_equal(pt.n_installed, 1);
	assert_int_equal(restore_copy(pt.e, &pt, s, len), 0);
	assert_same_state(pt.e, w->p[0].e);
	free(c);
	free(s0);
	free(s);
	free(before);
	dv_engine_free(pt.e);
	free(pt.installed);
}

/*
 * Snapshots written by hand, each with one thing wrong that no engine
 * produces, with the checksum right: the checks behind the checksum.
 *
 *   n1 (member, "n1", 10.1.1.0/24, VIPADEFINE 10.9.9.1)  n2 (member, "n2")
 *   10.1.1.5: n1's client 7 holds it; n2's clients 3 (rank 10) and 4
 *             (rank 5) wait; reports from n1 and n2
 *   10.9.9.1: the define, active on n1; port slices of n1 (49152-49215)
 *             and n2 (49216-49343), whole blocks of the pool
 */
enum defect {
	D_NONE,
	D_VERSION,
	D_RESERVED,
	D_QUORATE,
	D_NODE_ORDER,
	D_NODE_FLAGS,
	D_NODE_NAME_NOCONF,
	D_MEMBERS,
	D_RANGE_BINDWATCH,
	D_RANGE_HOSTBITS,
	D_DEFINES_UNSORTED,
	D_VIPA_ORDER,
	D_VIPA_EMPTY,
	D_ORIGIN,
	D_STATE,
	D_OWNER_STATE,
	D_EVER_ACTIVE,
	D_REASON,
	D_HOLD_KIND,
	D_HOLD_NODE,
	D_HOLD_DUP,
	D_STANDBY_RANK,
	D_STANDBY_ORDER_SEQ,
	D_STANDBY_GRANT_ORDER,
	D_STANDBY_DUP,
	D_CAND_NO_DEFINE,
	D_CAND_DUP,
	D_CAND_FLAGS,
	D_DEACT_OWNER,
	D_LEFT_NONMEMBER,
	D_LEFT_HOLDER,
	D_DEFINE_NO_CAND,
	D_REPORT_ORDER,
	D_REPORT_FLAGS,
	D_REPORT_REMOVED,
	D_QUIESCE_ORDER,
	D_QUIESCE_DUP,
	D_QUIESCE_ALL_AND_PORT,
	D_NO_CREF,
	D_CREF_TWICE,
	D_CREF_UNKNOWN,
	D_CREF_ORDER,
	D_CREF_EMPTY,
	D_SLICE_OVERLAP,
	D_SLICE_NODE,
	D_SLICE_BLOCKS,
	D_SLICE_TWICE,
	D_TRAILING,
	N_DEFECTS,
};

static void w_node(struct dv_wbuf *w, dv_nodeid_t id, uint8_t flags, const char *name, size_t nr,
		   const struct dv_conf_range *r, size_t nd, const struct dv_conf_define *d)
{
	dv_w_u32(w, id);
	dv_w_u8(w, flags);
	dv_w_str(w, name, DV_NODE_NAME_MAX);
	dv_w_bytes(w, (const uint8_t[6]){0}, 6); /* MAC */
	dv_w_u32(w, (uint32_t)nr);
	for (size_t i = 0; i < nr; i++)
		dv_w_range(w, &r[i]);
	dv_w_u32(w, (uint32_t)nd);
	for (size_t i = 0; i < nd; i++)
		dv_w_define(w, &d[i]);
}

static void w_hold(struct dv_wbuf *w, uint8_t kind, dv_nodeid_t node, uint64_t client)
{
	dv_w_u8(w, kind);
	dv_w_u32(w, node);
	dv_w_u64(w, client);
	dv_w_u32(w, 1000);
	dv_w_u64(w, 5000);
}

static void w_standby(struct dv_wbuf *w, dv_nodeid_t node, uint64_t client, uint32_t rank, uint64_t order)
{
	dv_w_u32(w, node);
	dv_w_u64(w, client);
	dv_w_u32(w, rank);
	dv_w_u8(w, DV_KIND_API);
	dv_w_u32(w, 1000);
	dv_w_u64(w, order);
	dv_w_u64(w, 6000);
}

static void w_cref(struct dv_wbuf *w, dv_nodeid_t node, uint64_t client, size_t n, const struct dv_addr *a)
{
	dv_w_u32(w, node);
	dv_w_u64(w, client);
	dv_w_u32(w, (uint32_t)n);
	for (size_t i = 0; i < n; i++)
		dv_w_addr(w, &a[i]);
}

static void w_slice(struct dv_wbuf *w, const struct dv_addr *a, dv_nodeid_t node, uint16_t lo, uint16_t hi)
{
	dv_w_addr(w, a);
	dv_w_u32(w, node);
	dv_w_u16(w, lo);
	dv_w_u16(w, hi);
}

static uint8_t *craft(enum defect d, size_t *ret_len)
{
	struct dv_wbuf w = {0};
	struct dv_addr a5 = A("10.1.1.5"), a6 = A("10.1.1.6"), vd = A("10.9.9.1"), twice[2], hostbits;
	struct dv_conf_range rg = {.line = 1};
	struct dv_conf_define df[2] = {
		{.addr = A("10.9.9.1"), .plen = 24, .rank = 255, .line = 2},
		{.addr = A("10.9.9.0"), .plen = 24, .rank = 255, .line = 3},
	};
	char reason[300];
	/* n2: member with a configuration; left (4) without being a member,
	 * or left while it has standbys, is refused */
	uint8_t n2_flags = d == D_NODE_FLAGS ? 0 : d == D_LEFT_NONMEMBER ? 6 : d == D_LEFT_HOLDER ? 7 : 3;

	assert_int_equal(dv_prefix_parse("10.1.1.0/24", &rg.prefix), 0);
	rg.bindwatch = d == D_RANGE_BINDWATCH;
	hostbits = rg.prefix.addr;
	hostbits.bytes[3] = 1;
	twice[0] = twice[1] = a5;

	dv_w_u32(&w, 0x4e535644u);
	dv_w_u16(&w, d == D_VERSION ? 5 : 6);
	dv_w_u16(&w, d == D_RESERVED ? 1 : 0);
	dv_w_u64(&w, 0);
	dv_w_u64(&w, 10);
	dv_w_u8(&w, d == D_QUORATE ? 3 : 1);

	/* nodes */
	dv_w_u32(&w, d == D_MEMBERS ? 65 : d == D_NODE_NAME_NOCONF ? 3 : 2);
	if (d == D_NODE_ORDER)
		w_node(&w, 2, 3, "n2", 1, &rg, 0, NULL);
	if (d == D_RANGE_HOSTBITS) {
		/* the writer refuses host bits: write the range by hand */
		dv_w_u32(&w, 1);
		dv_w_u8(&w, 3);
		dv_w_str(&w, "n1", DV_NODE_NAME_MAX);
		dv_w_bytes(&w, (const uint8_t[6]){0}, 6); /* MAC */
		dv_w_u32(&w, 1);
		dv_w_addr(&w, &hostbits);
		dv_w_u8(&w, 24);
		dv_w_u8(&w, 0);
		dv_w_u8(&w, 0);
		dv_w_u32(&w, 1);
		dv_w_u32(&w, 1);
		dv_w_define(&w, &df[0]);
	} else if (d == D_DEFINES_UNSORTED) {
		struct dv_conf_define two[2] = {df[0], df[1]};

		w_node(&w, 1, 3, "n1", 1, &rg, 2, two);
	} else {
		w_node(&w, 1, 3, "n1", 1, &rg, 1, df);
	}
	if (d != D_NODE_ORDER)
		w_node(&w, 2, n2_flags, "n2", 1, &rg, 0, NULL);
	if (d == D_NODE_NAME_NOCONF)
		w_node(&w, 3, 1, "n3", 0, NULL, 0, NULL);
	if (d == D_MEMBERS)
		for (dv_nodeid_t id = 3; id <= 65; id++)
			w_node(&w, id, 1, "", 0, NULL, 0, NULL);

	/* vipas */
	dv_w_u32(&w, d == D_DEFINE_NO_CAND ? 1 : d == D_VIPA_EMPTY ? 3 : 2);
	if (d == D_VIPA_ORDER) {
		/* the define first: out of order */
		dv_w_addr(&w, &vd);
		dv_w_u32(&w, 1);
		dv_w_u32(&w, 1); /* on */
		dv_w_u8(&w, DV_ORIGIN_DEFINE);
		dv_w_u8(&w, DV_VS_ACTIVE);
		dv_w_u8(&w, 1);
		dv_w_u64(&w, 4000);
		dv_w_str(&w, "activated", 256);
		dv_w_u32(&w, 0);
		dv_w_u32(&w, 0);
		dv_w_u32(&w, 1);
		dv_w_u32(&w, 1);
		dv_w_u8(&w, 0);
		dv_w_u32(&w, 0);
		dv_w_u32(&w, 0);
	}
	dv_w_addr(&w, &a5);
	dv_w_u32(&w, d == D_OWNER_STATE ? 0 : 1);
	dv_w_u32(&w, 1); /* on */
	dv_w_u8(&w, d == D_ORIGIN ? DV_ORIGIN_BACKUP + 1 : DV_ORIGIN_API);
	dv_w_u8(&w, d == D_STATE ? 0 : DV_VS_ACTIVE);
	dv_w_u8(&w, 1);
	dv_w_u64(&w, 5000);
	if (d == D_REASON) {
		/* 256 characters: one more than a reason holds */
		memset(reason, 'r', 256);
		reason[256] = '\0';
		dv_w_str(&w, reason, sizeof(reason));
	} else {
		dv_w_str(&w, "granted to client 7 on n1 (api)", 256);
	}
	dv_w_u32(&w, d == D_HOLD_DUP ? 2 : 1);
	w_hold(&w, d == D_HOLD_KIND ? 4 : DV_KIND_API, d == D_HOLD_NODE ? 2 : 1, 7);
	if (d == D_HOLD_DUP)
		w_hold(&w, DV_KIND_API, 1, 7);
	dv_w_u32(&w, 2);
	if (d == D_STANDBY_GRANT_ORDER) {
		w_standby(&w, 2, 4, 5, 5);
		w_standby(&w, 2, 3, 10, 4);
	} else {
		w_standby(&w, 2, 3, d == D_STANDBY_RANK ? 255 : 10, d == D_STANDBY_ORDER_SEQ ? 11 : 4);
		w_standby(&w, 2, d == D_STANDBY_DUP ? 3 : 4, 5, 5);
	}
	if (d == D_CAND_NO_DEFINE) {
		dv_w_u32(&w, 1);
		dv_w_u32(&w, 2);
		dv_w_u8(&w, 0);
	} else {
		dv_w_u32(&w, 0);
	}
	dv_w_u32(&w, 2);
	dv_w_u32(&w, d == D_REPORT_ORDER ? 2 : 1);
	dv_w_u32(&w, DV_AS_BOUND);
	dv_w_u32(&w, d == D_REPORT_ORDER ? 1 : 2);
	/* n2 reports port 0 ready with weight 7; a bit past the last port's
	 * weight, or REMOVED (never stored), is refused */
	dv_w_u32(&w, d == D_REPORT_FLAGS     ? DV_AS_READY(0) | (1u << (DV_AS_WEIGHT_SHIFT + 4 * DV_DIST_MAX_PORTS))
		     : d == D_REPORT_REMOVED ? DV_AS_REMOVED
					     : DV_AS_READY(0) | DV_AS_WEIGHT(0, 7));
	/* quiesced: none */
	dv_w_u32(&w, 0);

	if (d == D_VIPA_EMPTY) {
		dv_w_addr(&w, &a6);
		dv_w_u32(&w, 0);
		dv_w_u8(&w, DV_ORIGIN_NONE);
		dv_w_u8(&w, DV_VS_INACTIVE);
		dv_w_u8(&w, 1);
		dv_w_u64(&w, 0);
		dv_w_str(&w, "", 256);
		for (int i = 0; i < 5; i++)
			dv_w_u32(&w, 0);
	}
	if (d != D_DEFINE_NO_CAND && d != D_VIPA_ORDER) {
		dv_w_addr(&w, &vd);
		dv_w_u32(&w, 1);
		dv_w_u32(&w, 1); /* on */
		dv_w_u8(&w, DV_ORIGIN_DEFINE);
		dv_w_u8(&w, DV_VS_ACTIVE);
		dv_w_u8(&w, d == D_EVER_ACTIVE ? 0 : 1);
		dv_w_u64(&w, 4000);
		dv_w_str(&w, "activated on n1 (VIPADEFINE on n1)", 256);
		dv_w_u32(&w, 0);
		dv_w_u32(&w, 0);
		dv_w_u32(&w, d == D_CAND_DUP ? 2 : 1);
		dv_w_u32(&w, 1);
		dv_w_u8(&w, d == D_CAND_FLAGS ? 2 : d == D_DEACT_OWNER ? 1 : 0);
		if (d == D_CAND_DUP) {
			dv_w_u32(&w, 1);
			dv_w_u8(&w, 0);
		}
		dv_w_u32(&w, 0);
		/* quiesced: n1 port 80, node 9 (not in the table: away) on all
		 * ports; out of order, twice, or a port beside "all", refused */
		dv_w_u32(&w, d == D_QUIESCE_ALL_AND_PORT ? 3 : 2);
		dv_w_u32(&w, d == D_QUIESCE_ORDER ? 9 : 1);
		dv_w_u16(&w, d == D_QUIESCE_ORDER ? 0 : 80);
		dv_w_u32(&w, d == D_QUIESCE_ORDER ? 1 : d == D_QUIESCE_DUP ? 1 : 9);
		dv_w_u16(&w, d == D_QUIESCE_ORDER ? 80 : d == D_QUIESCE_DUP ? 80 : 0);
		if (d == D_QUIESCE_ALL_AND_PORT) {
			dv_w_u32(&w, 9);
			dv_w_u16(&w, 443);
		}
	}

	/* the client index */
	dv_w_u32(&w, d == D_NO_CREF ? 2 : d == D_CREF_UNKNOWN || d == D_CREF_EMPTY ? 4 : 3);
	if (d == D_CREF_ORDER)
		w_cref(&w, 2, 3, 1, &a5);
	if (d != D_NO_CREF)
		w_cref(&w, 1, 7, d == D_CREF_TWICE ? 2 : 1, twice);
	if (d == D_CREF_UNKNOWN)
		w_cref(&w, 1, 8, 1, &a6);
	if (d == D_CREF_EMPTY)
		w_cref(&w, 1, 9, 0, NULL);
	if (d != D_CREF_ORDER)
		w_cref(&w, 2, 3, 1, &a5);
	w_cref(&w, 2, 4, 1, &a5);

	/* the port slices of 10.9.9.1 */
	dv_w_u32(&w, d == D_SLICE_TWICE ? 3 : 2);
	w_slice(&w, &vd, 1, 49152, d == D_SLICE_OVERLAP ? 49216 : 49215);
	if (d == D_SLICE_TWICE)
		w_slice(&w, &vd, 1, 49216, 49279);
	w_slice(&w, &vd, d == D_SLICE_NODE ? 3 : 2, d == D_SLICE_TWICE ? 49280 : 49216,
		d == D_SLICE_BLOCKS ? 49300 : 49343);
	if (d == D_TRAILING)
		dv_w_u8(&w, 0);
	dv_w_u32(&w, 0); /* checksum */
	assert_int_equal(w.err, 0);
	snap_seal(w.data, w.len);
	*ret_len = w.len;
	return w.data;
}

static void test_restore_crafted(void **state)
{
	struct peer p = {.self = 2, .track = true};
	uint8_t *buf, *again, *before;
	size_t len, l2, lb;

	(void)state;
	p.e = dv_engine_new(2);
	assert_non_null(p.e);

	/* the well-formed one is taken, and is exactly the engine's format */
	buf = craft(D_NONE, &len);
	assert_int_equal(restore_copy(p.e, &p, buf, len), 0);
	assert_int_equal(p.n_recs, 0); /* n2 owns nothing */
	l2 = snapshot_of(p.e, &again);
	assert_int_equal(l2, len);
	assert_memory_equal(again, buf, len);
	free(again);
	free(buf);
	assert_int_equal(dv_engine_seq(p.e), 10);
	assert_string_equal(dv_engine_node_name(p.e, 2), "n2");
	lb = snapshot_of(p.e, &before);

	for (int d = D_NONE + 1; d < N_DEFECTS; d++) {
		buf = craft((enum defect)d, &len);
		p.n_recs = 0;
		if (restore_copy(p.e, &p, buf, len) != -EBADMSG)
			fail_msg("defect %d taken", d);
		assert_int_equal(p.n_recs, 0);
		l2 = snapshot_of(p.e, &again);
		assert_int_equal(l2, lb);
		assert_memory_equal(again, before, lb);
		free(again);
		free(buf);
	}
	free(before);

	/* the restored state goes on: client 7 goes, n2's client 3 (rank 10)
	 * is granted, and the order it registered in (4) stays */
	{
		struct dv_event ev = {.type = DV_EV_CLIENT_GONE, .node = 1, .time_ms = 9000};
		struct dv_vipa_info v;
		struct dv_addr a = A("10.1.1.5");

		ev.client_gone.client = 7;
		p.n_recs = 0;
		assert_int_equal(peer_apply(&p, &ev), 0);
		assert_int_equal(p.n_recs, 1);
		assert_int_equal(p.recs[0].type, REC_NOTIFY);
		assert_int_equal(p.recs[0].client, 3);
		assert_int_equal(p.recs[0].code, DV_NOTIFY_GRANTED);
		assert_int_equal(dv_engine_lookup(p.e, &a, &v), 0);
		assert_int_equal(v.owner, 2);
		assert_int_equal(v.on, 1); /* n1 has not reported it removed */
		assert_int_equal(v.n_standbys, 1);
		assert_int_equal(v.standbys[0].order, 5);
		/* the hand-over: n1 reports it removed, n2 puts it on */
		ev = (struct dv_event){.type = DV_EV_ADDR_STATE, .node = 1, .time_ms = 9001};
		ev.addr_state.addr = a;
		ev.addr_state.flags = DV_AS_REMOVED;
		p.n_recs = 0;
		assert_int_equal(peer_apply(&p, &ev), 0);
		assert_int_equal(p.n_recs, 1);
		assert_int_equal(p.recs[0].type, REC_LOCAL);
		assert_int_equal(p.recs[0].code, 1);
		assert_int_equal(dv_engine_lookup(p.e, &a, &v), 0);
		assert_int_equal(v.on, 2);
		assert_int_equal(dv_engine_seq(p.e), 12);
	}
	dv_engine_free(p.e);
	free(p.installed);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_limit_vipas, setup3, teardown),
		cmocka_unit_test_setup_teardown(test_limit_holds, setup3, teardown),
		cmocka_unit_test_setup_teardown(test_limit_standbys, setup3, teardown),
		cmocka_unit_test_setup_teardown(test_malformed, setup3, teardown),
		cmocka_unit_test(test_random_streams_agree),
		cmocka_unit_test_setup_teardown(test_many_vipas_fast, setup3, teardown),
		cmocka_unit_test_setup_teardown(test_addr_state_from_non_member, setup3, teardown),
		cmocka_unit_test(test_join_random_streams),
		cmocka_unit_test(test_join_keeps_client_order),
		cmocka_unit_test_setup_teardown(test_restore_member_without_conf, setup3, teardown),
		cmocka_unit_test_setup_teardown(test_restore_local_effects, setup3, teardown),
		cmocka_unit_test_setup_teardown(test_restore_corrupt, setup3, teardown),
		cmocka_unit_test(test_restore_crafted),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
