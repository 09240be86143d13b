/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The gate (gate.h): quorum and sync, held-back grants, standbys registered
 * again after a heal. Pure; driven by the daemon, tested by test_gate.c. */
#include "gate.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

void dv_gate_init(struct dv_gate *g, bool solo)
{
	*g = (struct dv_gate){.connected = solo, .quorate = solo, .reconfirm = solo ? RECONFIRM_NONE : RECONFIRM_WAIT};
	TAILQ_INIT(&g->grants);
	TAILQ_INIT(&g->restandbys);
}

static void restandbys_clear(struct dv_gate *g)
{
	struct dv_gate_restandby *r;

	while ((r = TAILQ_FIRST(&g->restandbys))) {
		TAILQ_REMOVE(&g->restandbys, r, link);
		free(r);
	}
	g->restandby_next = NULL;
}

static void requests_clear(struct dv_gate *g)
{
	struct dv_gate_request *q;

	DV_HASHTAB_FOREACH(q, &g->requests)
		free(q);
	dv_hashtab_clear(&g->requests);
}

void dv_gate_clear(struct dv_gate *g)
{
	struct dv_gate_grant *gr;

	requests_clear(g);

	while ((gr = TAILQ_FIRST(&g->grants))) {
		TAILQ_REMOVE(&g->grants, gr, link);
		free(gr);
	}
	g->n_grants = 0;
	restandbys_clear(g);
}

bool dv_gate_is_open(const struct dv_gate *g)
{
	return g->connected && g->quorate && !g->exchanging && !g->reconfirm && !g->lapsed && !g->waiting;
}

const char *dv_gate_describe(const struct dv_gate *g)
{
	if (!g->connected)
		return "closed: not in the group";
	if (!g->quorate)
		return "closed: partition not quorate";
	if (g->lapsed)
		return "closed: ring lease ran out";
	if (g->reconfirm)
		return "closed: waiting for the group to confirm quorum";
	if (g->exchanging)
		return "closed: state exchange";
	if (g->waiting)
		return "closed: waiting for a vanished member's lease to run out";
	return "open";
}

bool dv_gate_wants(const struct dv_gate *g, const struct dv_engine *e, const struct dv_addr *a)
{
	struct dv_vipa_info v;

	/* on: the previous owner has taken it off (the hand-over) */
	return dv_gate_is_open(g) && dv_engine_quorate(e) && dv_engine_lookup(e, a, &v) == 0 &&
	       v.owner == dv_engine_self(e) && v.on == v.owner;
}

enum dv_gate_move dv_gate_quorum(struct dv_gate *g, bool quorate, uint64_t ring)
{
	bool was = g->quorate;

	g->quorate = quorate;
	if (was && !quorate) {
		g->reconfirm = RECONFIRM_WAIT;
		g->stale_asks = g->asks;
		if (ring > g->loss_ring)
			g->loss_ring = ring;
	}
	if (was && !quorate && g->connected)
		return DV_GATE_CLOSE;
	if (!was && quorate && dv_gate_is_open(g))
		return DV_GATE_OPEN;
	return DV_GATE_KEEP;
}

enum dv_gate_move dv_gate_connected(struct dv_gate *g, bool up)
{
	g->connected = up;
	if (!up) {
		g->exchanging = g->lapsed = g->waiting = false;
		g->reconfirm = RECONFIRM_WAIT;
		g->asks = g->stale_asks = 0; /* none comes back now */
	}
	if (up)
		return dv_gate_is_open(g) ? DV_GATE_OPEN : DV_GATE_KEEP;
	restandbys_clear(g); /* no answer comes now */
	return DV_GATE_CLOSE;
}

enum dv_gate_move dv_gate_stream_quorum(struct dv_gate *g, bool quorate, uint64_t ring)
{
	if (ring < g->loss_ring)
		return DV_GATE_KEEP;
	if (!quorate) {
		if (g->reconfirm == RECONFIRM_WAIT)
			g->reconfirm = RECONFIRM_SEEN;
		return DV_GATE_KEEP;
	}
	if (g->reconfirm != RECONFIRM_SEEN)
		return DV_GATE_KEEP;
	g->reconfirm = RECONFIRM_NONE;
	return dv_gate_is_open(g) ? DV_GATE_OPEN : DV_GATE_KEEP;
}

bool dv_gate_should_ask(const struct dv_gate *g)
{
	return g->connected && g->quorate && g->reconfirm == RECONFIRM_WAIT;
}

void dv_gate_ask_sent(struct dv_gate *g)
{
	g->asks++;
}

void dv_gate_stream_asked(struct dv_gate *g, bool answered)
{
	if (g->asks > 0)
		g->asks--;
	/* Sent before the latest loss: what follows it in the stream may
	 * have been sent before the loss too. */
	if (g->stale_asks > 0) {
		g->stale_asks--;
		return;
	}
	/* Unanswered, a QUORUM (quorate) may never follow it: waiting in SEEN
	 * would wait for ever (tests/sim invariant 6, seed 3275). */
	if (answered && g->reconfirm == RECONFIRM_WAIT)
		g->reconfirm = RECONFIRM_SEEN;
}

enum dv_gate_move dv_gate_exchanging(struct dv_gate *g, bool on)
{
	g->exchanging = on;
	return !on && dv_gate_is_open(g) ? DV_GATE_OPEN : DV_GATE_KEEP;
}

enum dv_gate_move dv_gate_lease(struct dv_gate *g, bool held)
{
	bool was = !g->lapsed;

	g->lapsed = !held;
	if (was && !held) {
		g->reconfirm = RECONFIRM_WAIT;
		g->stale_asks = g->asks;
		return g->connected && g->quorate ? DV_GATE_CLOSE : DV_GATE_KEEP;
	}
	return !was && held && dv_gate_is_open(g) ? DV_GATE_OPEN : DV_GATE_KEEP;
}

enum dv_gate_move dv_gate_takeover_wait(struct dv_gate *g, bool on)
{
	g->waiting = on;
	return !on && dv_gate_is_open(g) ? DV_GATE_OPEN : DV_GATE_KEEP;
}

/* ---- grants ---- */

bool dv_gate_handing_over(const struct dv_engine *e, const struct dv_addr *a)
{
	struct dv_vipa_info v;

	return dv_engine_lookup(e, a, &v) == 0 && v.owner == dv_engine_self(e) && v.on != v.owner;
}

static bool hold(struct dv_gate *g, uint64_t client, const struct dv_addr *a, bool reply, uint32_t seq,
		 const char *reason)
{
	struct dv_gate_grant *gr;

	if (g->n_grants >= DV_GATE_MAX_GRANTS)
		return false;
	gr = calloc(1, sizeof(*gr));
	if (!gr)
		return false; /* told now rather than never */
	gr->client = client;
	gr->addr = *a;
	gr->reply = reply;
	gr->seq = seq;
	snprintf(gr->reason, sizeof(gr->reason), "%s", reason);
	TAILQ_INSERT_TAIL(&g->grants, gr, link);
	g->n_grants++;
	return true;
}

bool dv_gate_hold_grant(struct dv_gate *g, const struct dv_engine *e, uint64_t client, const struct dv_addr *a,
			const char *reason)
{
	if (dv_gate_is_open(g) && !dv_gate_handing_over(e, a))
		return false;
	return hold(g, client, a, false, 0, reason);
}

static bool client_holds(const struct dv_engine *e, uint64_t client, const struct dv_addr *a);

bool dv_gate_hold_reply(struct dv_gate *g, const struct dv_engine *e, uint64_t client, uint32_t seq,
			const struct dv_addr *a, const char *reason)
{
	/* Only the reply that makes its client a holder: an operator's
	 * request about the address (deactivate, move) is answered now. */
	if (!dv_gate_handing_over(e, a) || !client_holds(e, client, a))
		return false;
	return hold(g, client, a, true, seq, reason);
}

void dv_gate_drop_grants(struct dv_gate *g, uint64_t client, const struct dv_addr *a)
{
	struct dv_gate_grant *gr;

	while ((gr = dv_gate_take(g, client, a)))
		free(gr);
}

struct dv_gate_grant *dv_gate_take(struct dv_gate *g, uint64_t client, const struct dv_addr *a)
{
	struct dv_gate_grant *gr;

	TAILQ_FOREACH(gr, &g->grants, link) {
		if (gr->client == client && (!a || dv_addr_eq(&gr->addr, a))) {
			TAILQ_REMOVE(&g->grants, gr, link);
			g->n_grants--;
			return gr;
		}
	}
	return NULL;
}

static bool client_holds(const struct dv_engine *e, uint64_t client, const struct dv_addr *a)
{
	struct dv_vipa_info v;

	if (dv_engine_lookup(e, a, &v) < 0)
		return false;
	for (size_t i = 0; i < v.n_holds; i++)
		if (v.holds[i].node == dv_engine_self(e) && v.holds[i].client == client)
			return true;
	return false;
}

struct dv_gate_grant *dv_gate_pop_grant(struct dv_gate *g, const struct dv_engine *e)
{
	struct dv_gate_grant *gr, *next;

	if (!dv_gate_is_open(g))
		return NULL;
	for (gr = TAILQ_FIRST(&g->grants); gr; gr = next) {
		next = TAILQ_NEXT(gr, link);
		if (dv_gate_handing_over(e, &gr->addr))
			continue;
		TAILQ_REMOVE(&g->grants, gr, link);
		g->n_grants--;
		if (client_holds(e, gr->client, &gr->addr))
			return gr;
		free(gr); /* ended while held back: its LOST was told */
	}
	return NULL;
}

/* ---- refs ---- */

static int refs_add(struct dv_gate_refs *l, uint64_t client, const struct dv_addr *a, const struct dv_standby *sb)
{
	if (l->n == l->cap) {
		size_t ncap = l->cap ? 2 * l->cap : 16;
		struct dv_gate_ref *n = reallocarray(l->v, ncap, sizeof(*n));

		if (!n)
			return -ENOMEM;
		l->v = n;
		l->cap = ncap;
	}
	l->v[l->n++] = (struct dv_gate_ref){
		.client = client, .addr = *a, .standby = sb != NULL, .sb = sb ? *sb : (struct dv_standby){0}};
	return 0;
}

struct collect {
	dv_nodeid_t self;
	struct dv_gate_refs *refs;
};

static int collect_cb(void *ud, const struct dv_vipa_info *v)
{
	struct collect *c = ud;

	for (size_t i = 0; i < v->n_holds; i++)
		if (v->holds[i].node == c->self && v->holds[i].kind == DV_KIND_API &&
		    refs_add(c->refs, v->holds[i].client, &v->addr, NULL) < 0)
			return -ENOMEM;
	for (size_t i = 0; i < v->n_standbys; i++)
		if (v->standbys[i].node == c->self &&
		    refs_add(c->refs, v->standbys[i].client, &v->addr, &v->standbys[i]) < 0)
			return -ENOMEM;
	return 0;
}

int dv_gate_refs_collect(const struct dv_engine *e, struct dv_gate_refs *ret)
{
	struct collect c = {.self = dv_engine_self(e), .refs = ret};

	return dv_engine_foreach(e, collect_cb, &c);
}

void dv_gate_refs_clear(struct dv_gate_refs *refs)
{
	free(refs->v);
	*refs = (struct dv_gate_refs){0};
}

bool dv_gate_ref_present(const struct dv_engine *e, const struct dv_gate_ref *r)
{
	dv_nodeid_t self = dv_engine_self(e);
	struct dv_vipa_info v;

	if (dv_engine_lookup(e, &r->addr, &v) < 0)
		return false;
	if (r->standby)
		for (size_t i = 0; i < v.n_standbys; i++)
			if (v.standbys[i].node == self && v.standbys[i].client == r->client)
				return true;
	for (size_t i = 0; i < v.n_holds; i++)
		if (v.holds[i].node == self && v.holds[i].client == r->client && v.holds[i].kind == DV_KIND_API)
			return true;
	return false;
}

bool dv_gate_ref_lost(const struct dv_engine *e, const struct dv_gate_ref *r)
{
	return !r->again && !(e && dv_gate_ref_present(e, r));
}

/* ---- re-registration ---- */

void dv_gate_note_restandbys(struct dv_gate *g, const struct dv_engine *e, struct dv_gate_refs *refs, const bool *alive)
{
	for (size_t i = 0; i < refs->n; i++) {
		struct dv_gate_ref *r = &refs->v[i];
		struct dv_gate_restandby *n;

		if (!r->standby || !alive[i] || dv_gate_ref_present(e, r))
			continue;
		n = calloc(1, sizeof(*n));
		if (!n)
			continue; /* then told LOST */
		*n = (struct dv_gate_restandby){
			.client = r->client, .addr = r->addr, .rank = r->sb.rank, .kind = r->sb.kind, .uid = r->sb.uid};
		TAILQ_INSERT_TAIL(&g->restandbys, n, link);
		if (!g->restandby_next)
			g->restandby_next = n;
		r->again = true;
	}
}

bool dv_gate_next_restandby(struct dv_gate *g, const struct dv_engine *e, struct dv_event *ret)
{
	struct dv_gate_restandby *r;

	if (!dv_engine_quorate(e) || !(r = g->restandby_next))
		return false;
	*ret = (struct dv_event){.type = DV_EV_STANDBY};
	ret->standby.client = r->client;
	ret->standby.seq = 0;
	ret->standby.addr = r->addr;
	ret->standby.rank = r->rank;
	ret->standby.kind = r->kind;
	ret->standby.uid = r->uid;
	r->sent = true;
	g->restandby_next = TAILQ_NEXT(r, link);
	return true;
}

/* Drop client's noted standbys: all if a is NULL; else the first sent one
 * about a (the one whose answer came: answers come in the order sent, so it
 * is at the head). Whether any was dropped. */
static bool restandby_drop(struct dv_gate *g, uint64_t client, const struct dv_addr *a)
{
	struct dv_gate_restandby *r, *next;
	bool found = false;

	for (r = TAILQ_FIRST(&g->restandbys); r && (!a || r->sent); r = next) {
		next = TAILQ_NEXT(r, link);
		if (r->client != client || (a && !dv_addr_eq(&r->addr, a)))
			continue;
		if (g->restandby_next == r)
			g->restandby_next = next;
		TAILQ_REMOVE(&g->restandbys, r, link);
		free(r);
		found = true;
		if (a)
			break;
	}
	return found;
}

void dv_gate_drop_restandbys(struct dv_gate *g, uint64_t client)
{
	(void)restandby_drop(g, client, NULL);
}

/* ---- requests in flight ---- */

static uint32_t request_key_hash(uint64_t client, uint32_t seq)
{
	uint64_t x = (client ^ ((uint64_t)seq << 32) ^ seq) * 0x9e3779b97f4a7c15ull;

	return (uint32_t)(x >> 32);
}

static uint32_t request_hash(const void *item)
{
	const struct dv_gate_request *q = item;

	return request_key_hash(q->client, q->seq);
}

static bool request_match(const void *item, const void *key)
{
	const struct dv_gate_request *q = item, *k = key;

	return q->client == k->client && q->seq == k->seq;
}

int dv_gate_sent(struct dv_gate *g, uint64_t client, uint32_t seq, const struct dv_addr *a)
{
	struct dv_gate_request key = {.client = client, .seq = seq}, *q;

	if (dv_hashtab_get(&g->requests, request_key_hash(client, seq), request_match, &key))
		return 0; /* a client's seq is its own business; one answer is enough */
	if (dv_hashtab_size(&g->requests) >= DV_GATE_MAX_REQUESTS)
		return -ENOSPC;
	q = calloc(1, sizeof(*q));
	if (!q)
		return -ENOMEM;
	*q = key;
	if (a)
		q->addr = *a;
	if (dv_hashtab_put(&g->requests, q, request_hash) < 0) {
		free(q);
		return -ENOMEM;
	}
	return 0;
}

void dv_gate_answered(struct dv_gate *g, uint64_t client, uint32_t seq)
{
	struct dv_gate_request key = {.client = client, .seq = seq};
	void **slot = dv_hashtab_find(&g->requests, request_key_hash(client, seq), request_match, &key);

	if (!slot)
		return;
	free(*slot);
	dv_hashtab_del(&g->requests, slot, request_hash);
}

static bool request_keep(void *item, void *ud)
{
	struct dv_gate_request *q = item;

	if (q->client != *(const uint64_t *)ud)
		return true;
	free(q);
	return false;
}

void dv_gate_drop_requests(struct dv_gate *g, uint64_t client)
{
	dv_hashtab_filter(&g->requests, request_keep, &client, request_hash);
}

struct dv_gate_request *dv_gate_pop_unanswered(struct dv_gate *g)
{
	struct dv_gate_request *q;

	DV_HASHTAB_FOREACH(q, &g->requests) {
		void **slot = dv_hashtab_find(&g->requests, request_hash(q), request_match, q);

		dv_hashtab_del(&g->requests, slot, request_hash);
		return q;
	}
	return NULL;
}

/* ---- replies ---- */

struct dv_gate_answer dv_gate_reply(struct dv_gate *g, const struct dv_engine *e, uint64_t client, uint32_t seq,
				    const struct dv_addr *a, enum dv_result result, bool installed)
{
	/* A standby registered again after a heal: its program hears only
	 * news (granted, or lost if refused), not a reply it never asked. */
	bool again = seq == 0 && client && a && restandby_drop(g, client, a);
	struct dv_gate_answer ans = {.say = DV_GATE_SAY_REPLY};

	if (result == DV_R_OK && a && dv_gate_wants(g, e, a) && !installed) {
		ans.refused = true;
		ans.say = again ? DV_GATE_SAY_LOST : DV_GATE_SAY_REPLY;
		return ans;
	}
	if (again) {
		if (result == DV_R_OK)
			ans.say = DV_GATE_SAY_GRANTED;
		else if (result == DV_R_PENDING)
			ans.say = DV_GATE_SAY_NOTHING;
		else
			ans.say = DV_GATE_SAY_LOST;
	}
	return ans;
}
