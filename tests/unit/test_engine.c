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
#include "wire.h"

#define NPEERS 3
#define MAX_RECS 512

enum rec_type {
	REC_REPLY,
	REC_NOTIFY,
	REC_LOCAL,
};

struct rec {
	enum rec_type type;
	uint64_t client;
	uint32_t seq;
	struct dv_addr addr;
	int code; /* result, notify kind, or up */
	char reason[256];
	bool reported; /* a local down reported removed (hand_over) */
};

struct peer {
	struct dv_engine *e;
	dv_nodeid_t self;
	size_t n_recs, dropped;
	struct rec recs[MAX_RECS];
	size_t n_installed, cap_installed;
	struct dv_addr *installed;
	bool track; /* keep the installed set (off for bulk tests) */
	size_t n_local_up;
};

struct world {
	size_t n;
	struct peer p[NPEERS + 2];
	uint64_t time;
	uint32_t seq;
	bool check;	   /* compare engines after each event */
	bool no_hand_over; /* the daemon's removal reports are not sent */
};

/* ---- callbacks ---- */

static struct rec *rec_add(struct peer *p, enum rec_type t)
{
	struct rec *r;

	if (p->n_recs == MAX_RECS) {
		p->dropped++;
		return NULL;
	}
	r = &p->recs[p->n_recs++];
	memset(r, 0, sizeof(*r));
	r->type = t;
	return r;
}

static void cb_reply(void *ud, uint64_t client, uint32_t seq, const struct dv_addr *a, enum dv_result result,
		     const char *reason)
{
	struct rec *r = rec_add(ud, REC_REPLY);

	assert_non_null(reason);
	if (!r)
		return;
	r->client = client;
	r->seq = seq;
	r->addr = *a;
	r->code = (int)result;
	snprintf(r->reason, sizeof(r->reason), "%s", reason);
}

static void cb_notify(void *ud, uint64_t client, const struct dv_addr *a, enum dv_notify what, const char *reason)
{
	struct rec *r = rec_add(ud, REC_NOTIFY);

	assert_non_null(reason);
	if (!r)
		return;
	r->client = client;
	r->addr = *a;
	r->code = (int)what;
	snprintf(r->reason, sizeof(r->reason), "%s", reason);
}

static ssize_t installed_find(const struct peer *p, const struct dv_addr *a)
{
	for (size_t i = 0; i < p->n_installed; i++)
		if (dv_addr_eq(&p->installed[i], a))
			return (ssize_t)i;
	return -1;
}

static void cb_local(void *ud, const struct dv_addr *a, bool up)
{
	struct peer *p = ud;
	struct rec *r = rec_add(p, REC_LOCAL);

	if (r) {
		r->addr = *a;
		r->code = up;
	}
	if (up)
		p->n_local_up++;
	if (!p->track)
		return;
	if (up) {
		/* never up twice */
		assert_true(installed_find(p, a) < 0);
		if (p->n_installed == p->cap_installed) {
			p->cap_installed = p->cap_installed ? 2 * p->cap_installed : 16;
			p->installed = realloc(p->installed, p->cap_installed * sizeof(*p->installed));
			assert_non_null(p->installed);
		}
		p->installed[p->n_installed++] = *a;
	} else {
		ssize_t i = installed_find(p, a);

		/* never down without up */
		assert_true(i >= 0);
		p->installed[i] = p->installed[--p->n_installed];
	}
}

/* Record the effects an engine returned as they come. */
static void record(struct peer *p, const struct dv_effects *fx)
{
	for (size_t i = 0; i < fx->n; i++) {
		const struct dv_effect *f = &fx->v[i];

		switch (f->type) {
		case DV_FX_REPLY:
			cb_reply(p, f->client, f->seq, &f->addr, f->result, f->reason);
			break;
		case DV_FX_NOTIFY:
			cb_notify(p, f->client, &f->addr, f->what, f->reason);
			break;
		case DV_FX_LOCAL:
			cb_local(p, &f->addr, f->up);
			break;
		default:
			fail_msg("unknown effect type %d", (int)f->type);
		}
	}
}

/* Apply ev on p's engine and record its effects. */
static int peer_apply(struct peer *p, const struct dv_event *ev)
{
	struct dv_effects fx = {0};
	int r = dv_engine_apply(p->e, ev, &fx);

	record(p, &fx);
	dv_effects_free(&fx);
	return r;
}

/* ---- addresses and configuration ---- */

static struct dv_addr A(const char *s) {
	struct dv_addr a;

	assert_int_equal(dv_addr_parse(s, &a), 0);
	return a;
}

/* ---- the world ---- */

static struct world *
world_new(size_t n)
{
	struct world *w = calloc(1, sizeof(*w));

	assert_non_null(w);
	w->n = n;
	w->check = true;
	w->time = 1000000;
	for (size_t i = 0; i < n; i++) {
		w->p[i].self = (dv_nodeid_t)(i + 1);
		w->p[i].track = true;
		w->p[i].e = dv_engine_new(w->p[i].self);
		assert_non_null(w->p[i].e);
	}
	return w;
}

static void world_free(struct world *w)
{
	if (!w)
		return;
	for (size_t i = 0; i < w->n; i++) {
		assert_null(dv_engine_free(w->p[i].e));
		free(w->p[i].installed);
	}
	free(w);
}

static struct peer *peer(struct world *w, dv_nodeid_t node)
{
	assert_true(node >= 1 && node <= w->n);
	return &w->p[node - 1];
}

struct snap {
	size_t n, cap;
	struct snap_vipa {
		struct dv_addr addr;
		dv_nodeid_t owner, on;
		enum dv_origin origin;
		enum dv_vipa_state state;
		uint64_t since_ms;
		char reason[256];
		size_t n_holds, n_standbys;
		struct dv_hold holds[8];
		struct dv_standby standbys[8];
	} * v;
};

static int snap_cb(void *ud, const struct dv_vipa_info *v)
{
	struct snap *s = ud;
	struct snap_vipa *x;

	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 16;
		s->v = realloc(s->v, s->cap * sizeof(*s->v));
		assert_non_null(s->v);
	}
	x = &s->v[s->n++];
	memset(x, 0, sizeof(*x));
	x->addr = v->addr;
	x->owner = v->owner;
	x->on = v->on;
	x->origin = v->origin;
	x->state = v->state;
	x->since_ms = v->since_ms;
	assert_non_null(v->reason);
	snprintf(x->reason, sizeof(x->reason), "%s", v->reason);
	x->n_holds = v->n_holds;
	x->n_standbys = v->n_standbys;
	if (v->n_holds)
		memcpy(x->holds, v->holds, (v->n_holds < 8 ? v->n_holds : 8) * sizeof(*v->holds));
	if (v->n_standbys)
		memcpy(x->standbys, v->standbys, (v->n_standbys < 8 ? v->n_standbys : 8) * sizeof(*v->standbys));
	return 0;
}

static void snap_take(struct dv_engine *e, struct snap *s)
{
	memset(s, 0, sizeof(*s));
	assert_int_equal(dv_engine_foreach(e, snap_cb, s), 0);
}

static void hold_equal(const struct dv_hold *a, const struct dv_hold *b)
{
	assert_int_equal(a->kind, b->kind);
	assert_int_equal(a->node, b->node);
	assert_int_equal(a->client, b->client);
	assert_int_equal(a->uid, b->uid);
	assert_int_equal(a->since_ms, b->since_ms);
}

static void standby_equal(const struct dv_standby *a, const struct dv_standby *b)
{
	assert_int_equal(a->node, b->node);
	assert_int_equal(a->client, b->client);
	assert_int_equal(a->rank, b->rank);
	assert_int_equal(a->kind, b->kind);
	assert_int_equal(a->uid, b->uid);
	assert_int_equal(a->order, b->order);
	assert_int_equal(a->since_ms, b->since_ms);
}

/* Every engine computes the same table; each has installed what it owns. */
static void world_check(struct world *w)
{
	struct snap s0;

	snap_take(w->p[0].e, &s0);
	for (size_t k = 0; k < s0.n; k++) {
		const struct snap_vipa *x = &s0.v[k];

		if (k > 0)
			assert_true(dv_addr_cmp(&s0.v[k - 1].addr, &x->addr) < 0);
		/* holds live on the owner only */
		for (size_t i = 0; i < x->n_holds && i < 8; i++)
			assert_int_equal(x->holds[i].node, x->owner);
		assert_true(x->owner == 0 || x->state == DV_VS_ACTIVE);
		/* a node that left the group owns nothing */
		assert_false(x->owner && dv_engine_node_left(w->p[0].e, x->owner));
		assert_true(x->state != DV_VS_ACTIVE || x->owner != 0);
		/* standbys in grant order */
		for (size_t i = 1; i < x->n_standbys && i < 8; i++) {
			const struct dv_standby *a = &x->standbys[i - 1], *b = &x->standbys[i];

			assert_true(a->rank > b->rank || (a->rank == b->rank && a->order < b->order));
		}
	}
	for (size_t i = 1; i < w->n; i++) {
		struct snap s;

		snap_take(w->p[i].e, &s);
		assert_int_equal(s.n, s0.n);
		for (size_t k = 0; k < s.n; k++) {
			const struct snap_vipa *a = &s0.v[k], *b = &s.v[k];

			assert_true(dv_addr_eq(&a->addr, &b->addr));
			assert_int_equal(a->owner, b->owner);
			assert_int_equal(a->on, b->on);
			assert_int_equal(a->origin, b->origin);
			assert_int_equal(a->state, b->state);
			assert_int_equal(a->since_ms, b->since_ms);
			assert_string_equal(a->reason, b->reason);
			assert_int_equal(a->n_holds, b->n_holds);
			assert_int_equal(a->n_standbys, b->n_standbys);
			for (size_t j = 0; j < a->n_holds && j < 8; j++)
				hold_equal(&a->holds[j], &b->holds[j]);
			for (size_t j = 0; j < a->n_standbys && j < 8; j++)
				standby_equal(&a->standbys[j], &b->standbys[j]);
		}
		assert_int_equal(dv_engine_quorate(w->p[i].e), dv_engine_quorate(w->p[0].e));
		assert_int_equal(dv_engine_seq(w->p[i].e), dv_engine_seq(w->p[0].e));
		free(s.v);
	}
	for (size_t i = 0; i < w->n; i++) {
		struct peer *p = &w->p[i];
		size_t want = 0;

		if (!p->track)
			continue;
		for (size_t k = 0; k < s0.n; k++) {
			const struct snap_vipa *x = &s0.v[k];

			if (dv_engine_quorate(p->e) && x->owner == p->self && x->on == p->self &&
			    x->state == DV_VS_ACTIVE) {
				want++;
				assert_true(installed_find(p, &x->addr) >= 0);
			}
		}
		assert_int_equal(p->n_installed, want);
	}
	free(s0.v);
}

static int apply_ex(struct world *w, struct dv_event *ev, bool keep);

struct uid_tally {
	dv_nodeid_t self;
	size_t n[17]; /* uids 0..15 (the random scripts), [16]: uid 1000 */
};

static size_t *tally_of(struct uid_tally *t, uid_t uid)
{
	assert_true(uid < 16 || uid == 1000);
	return &t->n[uid < 16 ? uid : 16];
}

static int tally_cb(void *ud, const struct dv_vipa_info *v)
{
	struct uid_tally *t = ud;

	for (size_t i = 0; i < v->n_holds; i++)
		if (v->holds[i].node == t->self)
			(*tally_of(t, v->holds[i].uid))++;
	for (size_t i = 0; i < v->n_standbys; i++)
		if (v->standbys[i].node == t->self)
			(*tally_of(t, v->standbys[i].uid))++;
	return 0;
}

/* The engine's count of each uid's holds and standbys on its node (for the
 * per-user cap) is what a walk over the table finds, after every event. */
static void check_uid_counts(struct world *w)
{
	for (size_t i = 0; i < w->n; i++) {
		struct uid_tally t = {.self = w->p[i].self};

		(void)dv_engine_foreach(w->p[i].e, tally_cb, &t);
		for (uid_t u = 0; u < 16; u++)
			assert_int_equal(dv_engine_uid_vipas(w->p[i].e, u), t.n[u]);
		assert_int_equal(dv_engine_uid_vipas(w->p[i].e, 1000), t.n[16]);
	}
}

/* What the daemon does after the engine took an address off its node:
 * report it removed (the hand-over, DV_AS_REMOVED), so that the next owner
 * puts it on. The reports' records add to the event's. */
static void hand_over(struct world *w)
{
	struct dv_event evs[64];
	size_t n = 0;
	uint64_t time;

	if (w->no_hand_over)
		return;
	for (size_t i = 0; i < w->n; i++)
		for (size_t k = 0; k < w->p[i].n_recs && n < 64; k++) {
			const struct rec *r = &w->p[i].recs[k];

			if (r->type == REC_LOCAL && !r->code && !r->reported) {
				evs[n] = (struct dv_event){.type = DV_EV_ADDR_STATE, .node = w->p[i].self};
				evs[n].addr_state.addr = r->addr;
				evs[n++].addr_state.flags = DV_AS_REMOVED;
				w->p[i].recs[k].reported = true;
			}
		}
	time = w->time;
	for (size_t k = 0; k < n; k++)
		(void)apply_ex(w, &evs[k], true);
	w->time = time; /* the next event's time as without them */
}

/* Apply ev on every engine, and the hand-over reports it causes. The
 * records of the last event are kept for the checks; with keep, those of
 * the event before are kept too. */
static int apply_ex(struct world *w, struct dv_event *ev, bool keep)
{
	int r0 = 0;

	w->time += 1000;
	ev->time_ms = w->time;
	for (size_t i = 0; i < w->n; i++) {
		size_t from = keep ? w->p[i].n_recs : 0;
		int r;

		w->p[i].n_recs = from;
		if (!keep)
			w->p[i].dropped = 0;
		r = peer_apply(&w->p[i], ev);
		if (i == 0)
			r0 = r;
		assert_int_equal(r, r0);
		/* local effects come before any reply or notification */
		for (size_t k = from + 1; k < w->p[i].n_recs; k++)
			if (w->p[i].recs[k].type == REC_LOCAL)
				assert_int_equal(w->p[i].recs[k - 1].type, REC_LOCAL);
	}
	hand_over(w);
	check_uid_counts(w);
	if (w->check)
		world_check(w);
	return r0;
}

static int apply(struct world *w, struct dv_event *ev)
{
	return apply_ex(w, ev, false);
}

/* The single reply of the last event, on the requesting node's engine. */
static const struct rec *the_reply(struct world *w, dv_nodeid_t node)
{
	const struct rec *found = NULL;

	for (size_t i = 0; i < w->n; i++) {
		for (size_t k = 0; k < w->p[i].n_recs; k++) {
			const struct rec *r = &w->p[i].recs[k];

			if (r->type != REC_REPLY)
				continue;
			/* only the requesting node answers */
			assert_int_equal(w->p[i].self, node);
			assert_null(found);
			found = r;
		}
	}
	assert_non_null(found);
	return found;
}

static int request(struct world *w, struct dv_event *ev, uint64_t client)
{
	const struct rec *r;

	assert_int_equal(apply(w, ev), 0);
	if (ev->node > w->n)
		return -1;
	r = the_reply(w, ev->node);
	assert_int_equal(r->client, client);
	assert_int_equal(r->seq, w->seq);
	return r->code;
}

static int claim_as(struct world *w, dv_nodeid_t node, uint64_t client, const char *addr, enum dv_kind kind,
		    bool source_use)
{
	struct dv_event ev = {.type = DV_EV_CLAIM, .node = node};

	ev.claim.client = client;
	ev.claim.seq = ++w->seq;
	ev.claim.addr = A(addr);
	ev.claim.kind = kind;
	ev.claim.uid = 1000;
	ev.claim.source_use = source_use;
	return request(w, &ev, client);
}

static int claim(struct world *w, dv_nodeid_t node, uint64_t client, const char *addr, enum dv_kind kind)
{
	return claim_as(w, node, client, addr, kind, false);
}

/* A claim for a source address only (DV_A_SOURCE_USE). */
static int claim_source(struct world *w, dv_nodeid_t node, uint64_t client, const char *addr)
{
	return claim_as(w, node, client, addr, DV_KIND_SOCKET, true);
}

static int release(struct world *w, dv_nodeid_t node, uint64_t client, const char *addr, enum dv_kind kind)
{
	struct dv_event ev = {.type = DV_EV_RELEASE, .node = node};

	ev.release.client = client;
	ev.release.seq = ++w->seq;
	ev.release.addr = A(addr);
	ev.release.kind = kind;
	return request(w, &ev, client);
}

static int standby_k(struct world *w, dv_nodeid_t node, uint64_t client, const char *addr, unsigned rank,
		     enum dv_kind kind)
{
	struct dv_event ev = {.type = DV_EV_STANDBY, .node = node};

	ev.standby.client = client;
	ev.standby.seq = ++w->seq;
	ev.standby.addr = A(addr);
	ev.standby.rank = rank;
	ev.standby.kind = kind;
	ev.standby.uid = 1000;
	return request(w, &ev, client);
}

static int standby(struct world *w, dv_nodeid_t node, uint64_t client, const char *addr, unsigned rank)
{
	return standby_k(w, node, client, addr, rank, DV_KIND_API);
}

static void gone(struct world *w, dv_nodeid_t node, uint64_t client)
{
	struct dv_event ev = {.type = DV_EV_CLIENT_GONE, .node = node};

	ev.client_gone.client = client;
	assert_int_equal(apply(w, &ev), 0);
}

static void addr_state(struct world *w, dv_nodeid_t node, const char *addr, unsigned flags)
{
	struct dv_event ev = {.type = DV_EV_ADDR_STATE, .node = node};

	ev.addr_state.addr = A(addr);
	ev.addr_state.flags = flags;
	assert_int_equal(apply(w, &ev), 0);
}

static void members(struct world *w, size_t n, ...)
{
	dv_nodeid_t ids[DV_ENGINE_MAX_NODES];
	struct dv_event ev = {.type = DV_EV_MEMBERSHIP};
	va_list ap;

	va_start(ap, n);
	for (size_t i = 0; i < n; i++)
		ids[i] = va_arg(ap, dv_nodeid_t);
	va_end(ap);
	ev.membership.n = n;
	ev.membership.nodes = ids;
	assert_int_equal(apply(w, &ev), 0);
	/* Members left: the cluster confirms the quorum in the stream next
	 * (test_membership_loss_waits_for_quorum covers the gap). */
	if (dv_engine_confirming(w->p[0].e)) {
		struct dv_event q = {.type = DV_EV_QUORUM, .quorum.quorate = true};

		assert_int_equal(apply_ex(w, &q, true), 0);
	}
}

static void quorum(struct world *w, bool q)
{
	struct dv_event ev = {.type = DV_EV_QUORUM};

	ev.quorum.quorate = q;
	assert_int_equal(apply(w, &ev), 0);
}

/*
 * A node's configuration as a script of ';'-separated clauses:
 *   range PREFIX [nondisruptive|disruptive|unique] [deleted]
 *   define ADDR [immediate|whenidle] [trackport N]
 *   backup RANK ADDR [immediate|none] [trackport N]
 */
static int conf_rc(struct world *w, dv_nodeid_t node, const char *name, const char *script)
{
	struct dv_conf_range ranges[16];
	struct dv_conf_define defs[16];
	size_t nr = 0, nd = 0;
	char buf[1024], *save = NULL;
	struct dv_event ev = {.type = DV_EV_NODE_CONFIG, .node = node};
	unsigned line = 1;

	memset(ranges, 0, sizeof(ranges));
	memset(defs, 0, sizeof(defs));
	snprintf(buf, sizeof(buf), "%s", script);
	for (char *cl = strtok_r(buf, ";", &save); cl; cl = strtok_r(NULL, ";", &save), line++) {
		char *s2 = NULL, *kw = strtok_r(cl, " ", &s2), *t;

		if (!kw)
			continue;
		if (strcmp(kw, "range") == 0) {
			struct dv_conf_range *r = &ranges[nr++];

			assert_int_equal(dv_prefix_parse(strtok_r(NULL, " ", &s2), &r->prefix), 0);
			r->line = line;
			while ((t = strtok_r(NULL, " ", &s2))) {
				if (strcmp(t, "nondisruptive") == 0)
					r->policy = DV_POLICY_NONDISRUPTIVE;
				else if (strcmp(t, "disruptive") == 0)
					r->policy = DV_POLICY_DISRUPTIVE;
				else if (strcmp(t, "unique") == 0)
					r->policy = DV_POLICY_UNIQUE;
				else if (strcmp(t, "deleted") == 0)
					r->deleted = true;
				else
					fail_msg("bad range word %s", t);
			}
		} else if (strcmp(kw, "define") == 0 || strcmp(kw, "backup") == 0) {
			struct dv_conf_define *d = &defs[nd++];

			d->rank = DV_RANK_DEFINE;
			d->moveable = DV_MOVE_IMMEDIATE;
			if (strcmp(kw, "backup") == 0) {
				d->rank = (unsigned)atoi(strtok_r(NULL, " ", &s2));
				d->moveable = DV_MOVE_NONE;
			}
			d->addr = A(strtok_r(NULL, " ", &s2));
			d->plen = 32;
			d->line = line;
			while ((t = strtok_r(NULL, " ", &s2))) {
				if (strcmp(t, "immediate") == 0)
					d->moveable = DV_MOVE_IMMEDIATE;
				else if (strcmp(t, "whenidle") == 0)
					d->moveable = DV_MOVE_WHENIDLE;
				else if (strcmp(t, "none") == 0)
					d->moveable = DV_MOVE_NONE;
				else if (strcmp(t, "trackport") == 0)
					d->trackport = (uint16_t)atoi(strtok_r(NULL, " ", &s2));
				else
					fail_msg("bad define word %s", t);
			}
		} else {
			fail_msg("bad clause %s", kw);
		}
	}
	snprintf(ev.node_config.name, sizeof(ev.node_config.name), "%s", name);
	ev.node_config.n_ranges = nr;
	ev.node_config.ranges = ranges;
	ev.node_config.n_defines = nd;
	ev.node_config.defines = defs;
	return apply(w, &ev);
}

static void conf(struct world *w, dv_nodeid_t node, const char *name, const char *script)
{
	assert_int_equal(conf_rc(w, node, name, script), 0);
}

#define STD_RANGES                                                                                                     \
	"range 10.1.1.0/24 nondisruptive; range 10.2.2.0/24 disruptive; range 10.3.3.0/24 unique; "                    \
	"range fd00:1::/64"

static void std_conf(struct world *w, dv_nodeid_t node)
{
	char name[8];

	snprintf(name, sizeof(name), "n%u", node);
	conf(w, node, name, STD_RANGES);
}

/* ---- views ---- */

static bool info(struct world *w, const char *addr, struct dv_vipa_info *ret)
{
	struct dv_addr a = A(addr);

	return dv_engine_lookup(w->p[0].e, &a, ret) == 0;
}

static dv_nodeid_t owner(struct world *w, const char *addr)
{
	struct dv_vipa_info v;

	return info(w, addr, &v) ? v.owner : 0;
}

static enum dv_vipa_state vstate(struct world *w, const char *addr)
{
	struct dv_vipa_info v;

	return info(w, addr, &v) ? v.state : 0;
}

static const char *reason(struct world *w, const char *addr)
{
	static char buf[256];
	struct dv_vipa_info v;

	if (!info(w, addr, &v))
		return "";
	snprintf(buf, sizeof(buf), "%s", v.reason);
	return buf;
}

static bool installed(struct world *w, dv_nodeid_t node, const char *addr)
{
	struct dv_addr a = A(addr);

	return installed_find(peer(w, node), &a) >= 0;
}

/* A notification of the last event to (node, client) about addr. */
static const struct rec *notified(struct world *w, dv_nodeid_t node, uint64_t client, const char *addr,
				  enum dv_notify what)
{
	struct peer *p = peer(w, node);
	struct dv_addr a = A(addr);

	for (size_t k = 0; k < p->n_recs; k++) {
		const struct rec *r = &p->recs[k];

		if (r->type == REC_NOTIFY && r->client == client && r->code == (int)what && dv_addr_eq(&r->addr, &a))
			return r;
	}
	return NULL;
}

static size_t count(struct world *w, dv_nodeid_t node, enum rec_type t)
{
	struct peer *p = peer(w, node);
	size_t n = 0;

	for (size_t k = 0; k < p->n_recs; k++)
		n += p->recs[k].type == t;
	return n;
}

static size_t all_notifies(struct world *w)
{
	size_t n = 0;

	for (dv_nodeid_t i = 1; i <= w->n; i++)
		n += count(w, i, REC_NOTIFY);
	return n;
}

static const char *last_reply_reason(struct world *w, dv_nodeid_t node)
{
	return the_reply(w, node)->reason;
}

/* ---- fixtures ---- */

/* Three members, quorate, standard ranges on every node. */
static int setup3(void **state)
{
	struct world *w = world_new(NPEERS);

	members(w, 3, 1, 2, 3);
	quorum(w, true);
	for (dv_nodeid_t n = 1; n <= 3; n++)
		std_conf(w, n);
	*state = w;
	return 0;
}

/* Three engines, nothing applied yet. */
static int setup_bare(void **state)
{
	*state = world_new(NPEERS);
	return 0;
}

static int teardown(void **state)
{
	world_free(*state);
	return 0;
}

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

#define VD "10.9.9.1"

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

static uint32_t rnd(uint64_t *s)
{
	*s = *s * 6364136223846793005ull + 1442695040888963407ull;
	return (uint32_t)(*s >> 33);
}

/* The operator's requests for the random streams, by x in 92..95: leave or
 * join, (de)activate a define, move; the target is sometimes unknown (9). */
static void random_operator(struct dv_event *ev, uint64_t *s, uint32_t x, uint64_t c, uint32_t seq, const char *a)
{
	dv_nodeid_t target = rnd(s) % 8 ? 1 + rnd(s) % 4 : 9;

	if (x < 93) {
		ev->type = DV_EV_NODE_ADMIN;
		ev->node_admin.client = c;
		ev->node_admin.seq = seq;
		ev->node_admin.target = target;
		ev->node_admin.joined = rnd(s) % 3 == 0;
	} else if (x < 95) {
		ev->type = DV_EV_DEFINE_STATE;
		ev->define_state.client = c;
		ev->define_state.seq = seq;
		ev->define_state.addr = A(a);
		ev->define_state.target = target;
		ev->define_state.active = rnd(s) % 2;
	} else {
		ev->type = DV_EV_MOVE;
		ev->move.client = c;
		ev->move.seq = seq;
		ev->move.addr = A(a);
		ev->move.to = target;
	}
}

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
		cmocka_unit_test_setup_teardown(test_addr_state_from_non_member, setup3, teardown),
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
		cmocka_unit_test_setup_teardown(test_limit_vipas, setup3, teardown),
		cmocka_unit_test_setup_teardown(test_limit_holds, setup3, teardown),
		cmocka_unit_test_setup_teardown(test_limit_standbys, setup3, teardown),
		cmocka_unit_test_setup_teardown(test_malformed, setup3, teardown),
		cmocka_unit_test(test_random_streams_agree),
		cmocka_unit_test_setup_teardown(test_many_vipas_fast, setup3, teardown),
		cmocka_unit_test(test_join_random_streams),
		cmocka_unit_test(test_join_keeps_client_order),
		cmocka_unit_test_setup_teardown(test_restore_member_without_conf, setup3, teardown),
		cmocka_unit_test_setup_teardown(test_restore_local_effects, setup3, teardown),
		cmocka_unit_test_setup_teardown(test_restore_corrupt, setup3, teardown),
		cmocka_unit_test(test_restore_crafted),
		cmocka_unit_test_setup_teardown(test_port_slices, setup3, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
