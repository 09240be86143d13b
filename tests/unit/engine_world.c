/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The engine tests' world and helpers (engine_world.h).
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

#include "engine_world.h"

/* ---- callbacks ---- */

struct rec *rec_add(struct peer *p, enum rec_type t)
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

void cb_reply(void *ud, uint64_t client, uint32_t seq, const struct dv_addr *a, enum dv_result result,
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

void cb_notify(void *ud, uint64_t client, const struct dv_addr *a, enum dv_notify what, const char *reason)
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

ssize_t installed_find(const struct peer *p, const struct dv_addr *a)
{
	for (size_t i = 0; i < p->n_installed; i++)
		if (dv_addr_eq(&p->installed[i], a))
			return (ssize_t)i;
	return -1;
}

void cb_local(void *ud, const struct dv_addr *a, bool up)
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
void record(struct peer *p, const struct dv_effects *fx)
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
int peer_apply(struct peer *p, const struct dv_event *ev)
{
	struct dv_effects fx = {0};
	int r = dv_engine_apply(p->e, ev, &fx);

	record(p, &fx);
	dv_effects_free(&fx);
	return r;
}

/* ---- addresses and configuration ---- */

struct dv_addr A(const char *s) {
	struct dv_addr a;

	assert_int_equal(dv_addr_parse(s, &a), 0);
	return a;
}

/* ---- the world ---- */

struct world *
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

void world_free(struct world *w)
{
	if (!w)
		return;
	for (size_t i = 0; i < w->n; i++) {
		assert_null(dv_engine_free(w->p[i].e));
		free(w->p[i].installed);
	}
	free(w);
}

struct peer *peer(struct world *w, dv_nodeid_t node)
{
	assert_true(node >= 1 && node <= w->n);
	return &w->p[node - 1];
}

int snap_cb(void *ud, const struct dv_vipa_info *v)
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

void snap_take(struct dv_engine *e, struct snap *s)
{
	memset(s, 0, sizeof(*s));
	assert_int_equal(dv_engine_foreach(e, snap_cb, s), 0);
}

void hold_equal(const struct dv_hold *a, const struct dv_hold *b)
{
	assert_int_equal(a->kind, b->kind);
	assert_int_equal(a->node, b->node);
	assert_int_equal(a->client, b->client);
	assert_int_equal(a->uid, b->uid);
	assert_int_equal(a->since_ms, b->since_ms);
}

void standby_equal(const struct dv_standby *a, const struct dv_standby *b)
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
void world_check(struct world *w)
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

int apply_ex(struct world *w, struct dv_event *ev, bool keep);

size_t *tally_of(struct uid_tally *t, uid_t uid)
{
	assert_true(uid < 16 || uid == 1000);
	return &t->n[uid < 16 ? uid : 16];
}

int tally_cb(void *ud, const struct dv_vipa_info *v)
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
void check_uid_counts(struct world *w)
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
void hand_over(struct world *w)
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
int apply_ex(struct world *w, struct dv_event *ev, bool keep)
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

int apply(struct world *w, struct dv_event *ev)
{
	return apply_ex(w, ev, false);
}

/* The single reply of the last event, on the requesting node's engine. */
const struct rec *the_reply(struct world *w, dv_nodeid_t node)
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

int request(struct world *w, struct dv_event *ev, uint64_t client)
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

int claim_as(struct world *w, dv_nodeid_t node, uint64_t client, const char *addr, enum dv_kind kind, bool source_use)
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

int claim(struct world *w, dv_nodeid_t node, uint64_t client, const char *addr, enum dv_kind kind)
{
	return claim_as(w, node, client, addr, kind, false);
}

/* A claim for a source address only (DV_A_SOURCE_USE). */
int claim_source(struct world *w, dv_nodeid_t node, uint64_t client, const char *addr)
{
	return claim_as(w, node, client, addr, DV_KIND_SOCKET, true);
}

int release(struct world *w, dv_nodeid_t node, uint64_t client, const char *addr, enum dv_kind kind)
{
	struct dv_event ev = {.type = DV_EV_RELEASE, .node = node};

	ev.release.client = client;
	ev.release.seq = ++w->seq;
	ev.release.addr = A(addr);
	ev.release.kind = kind;
	return request(w, &ev, client);
}

int standby_k(struct world *w, dv_nodeid_t node, uint64_t client, const char *addr, unsigned rank, enum dv_kind kind)
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

int standby(struct world *w, dv_nodeid_t node, uint64_t client, const char *addr, unsigned rank)
{
	return standby_k(w, node, client, addr, rank, DV_KIND_API);
}

void gone(struct world *w, dv_nodeid_t node, uint64_t client)
{
	struct dv_event ev = {.type = DV_EV_CLIENT_GONE, .node = node};

	ev.client_gone.client = client;
	assert_int_equal(apply(w, &ev), 0);
}

void addr_state(struct world *w, dv_nodeid_t node, const char *addr, unsigned flags)
{
	struct dv_event ev = {.type = DV_EV_ADDR_STATE, .node = node};

	ev.addr_state.addr = A(addr);
	ev.addr_state.flags = flags;
	assert_int_equal(apply(w, &ev), 0);
}

void members(struct world *w, size_t n, ...)
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

void quorum(struct world *w, bool q)
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
int conf_rc(struct world *w, dv_nodeid_t node, const char *name, const char *script)
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

void conf(struct world *w, dv_nodeid_t node, const char *name, const char *script)
{
	assert_int_equal(conf_rc(w, node, name, script), 0);
}

void std_conf(struct world *w, dv_nodeid_t node)
{
	char name[8];

	snprintf(name, sizeof(name), "n%u", node);
	conf(w, node, name, STD_RANGES);
}

/* ---- views ---- */

bool info(struct world *w, const char *addr, struct dv_vipa_info *ret)
{
	struct dv_addr a = A(addr);

	return dv_engine_lookup(w->p[0].e, &a, ret) == 0;
}

dv_nodeid_t owner(struct world *w, const char *addr)
{
	struct dv_vipa_info v;

	return info(w, addr, &v) ? v.owner : 0;
}

enum dv_vipa_state vstate(struct world *w, const char *addr)
{
	struct dv_vipa_info v;

	return info(w, addr, &v) ? v.state : 0;
}

const char *reason(struct world *w, const char *addr)
{
	static char buf[256];
	struct dv_vipa_info v;

	if (!info(w, addr, &v))
		return "";
	snprintf(buf, sizeof(buf), "%s", v.reason);
	return buf;
}

bool installed(struct world *w, dv_nodeid_t node, const char *addr)
{
	struct dv_addr a = A(addr);

	return installed_find(peer(w, node), &a) >= 0;
}

/* A notification of the last event to (node, client) about addr. */
const struct rec *notified(struct world *w, dv_nodeid_t node, uint64_t client, const char *addr, enum dv_notify what)
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

size_t count(struct world *w, dv_nodeid_t node, enum rec_type t)
{
	struct peer *p = peer(w, node);
	size_t n = 0;

	for (size_t k = 0; k < p->n_recs; k++)
		n += p->recs[k].type == t;
	return n;
}

size_t all_notifies(struct world *w)
{
	size_t n = 0;

	for (dv_nodeid_t i = 1; i <= w->n; i++)
		n += count(w, i, REC_NOTIFY);
	return n;
}

const char *last_reply_reason(struct world *w, dv_nodeid_t node)
{
	return the_reply(w, node)->reason;
}

/* ---- fixtures ---- */

/* Three members, quorate, standard ranges on every node. */
int setup3(void **state)
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
int setup_bare(void **state)
{
	*state = world_new(NPEERS);
	return 0;
}

int teardown(void **state)
{
	world_free(*state);
	return 0;
}

uint32_t rnd(uint64_t *s)
{
	*s = *s * 6364136223846793005ull + 1442695040888963407ull;
	return (uint32_t)(*s >> 33);
}

/* The operator's requests for the random streams, by x in 92..95: leave or
 * join, (de)activate a define, move; the target is sometimes unknown (9). */
void random_operator(struct dv_event *ev, uint64_t *s, uint32_t x, uint64_t c, uint32_t seq, const char *a)
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
