/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The engine (DESIGN §3, §4): one ordered stream of events in, the ownership
 * table of every VIPA out.
 *
 * Invariants kept after every event:
 *  - all holds of a VIPA are on one node, its owner;
 *  - a stack-managed VIPA (a define or backup of a member) is owned by the
 *    node the define rules choose, and holds exist only on that node;
 *  - no owner is assigned while the partition is not quorate: standbys then
 *    wait (WAITING) and defines stay INACTIVE until QUORUM{true}. Holds are
 *    kept (suspended, nothing installed): when the partition heals, the
 *    quorate side's state decides whether they still stand;
 *  - this node has an address installed exactly when the partition is
 *    quorate and this node owns it (`installed` mirrors what was reported).
 *
 * Replies and notifications are queued during an event and appended to the
 * caller's effects after the local ones, so that the daemon installs an
 * address before it tells a client that the address is its.
 */
#include "engine.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "hashtab.h"
#include "wire.h"

#define REASON_MAX 256
#define LABEL_MAX (DV_NODE_NAME_MAX + 16)
#define DESC_MAX (LABEL_MAX + 64) /* a hold or a define described */
/* Members plus nodes that published a configuration before joining. */
#define MAX_NODE_ENTRIES (2 * DV_ENGINE_MAX_NODES)
#define MAX_RANGES DV_CONF_MAX_STATEMENTS
#define MAX_DEFINES DV_ENGINE_MAX_VIPAS

/* ---- small helpers ---- */

static int grow(void **p, size_t *cap, size_t need, size_t size)
{
	size_t n;
	void *q;

	if (need <= *cap)
		return 0;
	n = *cap ? *cap * 2 : 4;
	while (n < need)
		n *= 2;
	q = reallocarray(*p, n, size);
	if (!q)
		return -ENOMEM;
	*p = q;
	*cap = n;
	return 0;
}

static bool family_ok(const struct dv_addr *a)
{
	return a->family == AF_INET || a->family == AF_INET6;
}

static bool kind_ok(enum dv_hold_kind k)
{
	return k == DV_HOLD_API || k == DV_HOLD_OPERATOR || k == DV_HOLD_SOCKET;
}

static enum dv_origin origin_of(enum dv_hold_kind k)
{
	switch (k) {
	case DV_HOLD_SOCKET:
		return DV_ORIGIN_BIND;
	case DV_HOLD_OPERATOR:
		return DV_ORIGIN_OPERATOR;
	default:
		return DV_ORIGIN_API;
	}
}

static const char *policy_name(enum dv_range_policy p)
{
	switch (p) {
	case DV_POLICY_UNIQUE:
		return "UNIQUE";
	case DV_POLICY_DISRUPTIVE:
		return "MOVEABLE DISRUPTIVE";
	default:
		return "MOVEABLE NONDISRUPTIVE";
	}
}

/* ---- state ---- */

/* The last DV_EV_ADDR_STATE flags a node reported for the address. */
struct report {
	dv_nodeid_t node;
	unsigned flags;
};

struct vipa {
	struct dv_addr addr;
	dv_nodeid_t owner;
	enum dv_origin origin;
	enum dv_vipa_state state;
	uint64_t since_ms;
	bool ever_active; /* had an owner once: lets a MOVE_NONE backup take over */
	bool installed;	  /* local(up) was reported and not yet undone */
	bool dirty;	  /* queued for the local-effect pass of this event */
	char reason[REASON_MAX];
	size_t n_holds, cap_holds;
	struct dv_hold *holds;
	size_t n_standbys, cap_standbys;
	struct dv_standby *standbys; /* grant order */
	size_t n_cands, cap_cands;
	struct dv_cand *cands;
	size_t n_reports, cap_reports;
	struct report *reports;
};

/* Index of a client's api holds and standbys, so that CLIENT_GONE costs what
 * the client had, not the size of the table. A multiset of addresses: one
 * entry per hold or standby. */
struct cref {
	dv_nodeid_t node;
	uint64_t client;
	size_t n, cap;
	struct dv_addr *addrs;
};

struct node {
	dv_nodeid_t id;
	bool member;
	bool has_conf;
	bool left; /* dvipactl leave: takes nothing until join */
	char name[DV_NODE_NAME_MAX];
	size_t n_ranges;
	struct dv_conf_range *ranges;
	size_t n_defines;
	struct dv_conf_define *defines; /* sorted by address, unique */
};

struct dv_engine {
	dv_nodeid_t self;
	bool quorate;
	/* Members left while quorate: the partition may have lost quorum and
	 * does not know yet. The membership change grants nothing (standbys,
	 * backups) until the next QUORUM event says (the cluster puts one
	 * into the stream after every membership change); existing owners
	 * keep their addresses, and requests are still served. */
	bool confirm;
	char confirm_why[REASON_MAX]; /* which members left, for the reasons */
	uint64_t seq;
	uint64_t now; /* time_ms of the event being applied */
	int err;      /* first resource failure during the event */

	size_t n_nodes, cap_nodes;
	struct node *nodes; /* sorted by id */
	size_t n_members, cap_members;
	dv_nodeid_t *members; /* sorted */

	struct dv_hashtab vipas;
	struct dv_hashtab crefs;

	/* Replies and notifications of the event being applied, until they
	 * follow its local effects into the caller's list. */
	struct dv_effects fx;
	struct dv_effects *out; /* the caller's list, or NULL */
	size_t n_dirty, cap_dirty;
	struct dv_addr *dirty;
	bool sync_all; /* the dirty list could not grow: check every VIPA */
};

static uint32_t vipa_hash(const void *item)
{
	return dv_addr_hash(&((const struct vipa *)item)->addr);
}

static bool vipa_match(const void *item, const void *key)
{
	return dv_addr_eq(&((const struct vipa *)item)->addr, key);
}

static uint32_t cref_hash2(dv_nodeid_t node, uint64_t client)
{
	uint64_t x = client * 0x9e3779b97f4a7c15ull ^ ((uint64_t)node << 32 | node);

	x ^= x >> 31;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 29;
	return (uint32_t)x;
}

static uint32_t cref_hash(const void *item)
{
	const struct cref *c = item;

	return cref_hash2(c->node, c->client);
}

struct cref_key {
	dv_nodeid_t node;
	uint64_t client;
};

static bool cref_match(const void *item, const void *key)
{
	const struct cref *c = item;
	const struct cref_key *k = key;

	return c->node == k->node && c->client == k->client;
}

/* ---- nodes ---- */

static struct node *node_find(const struct dv_engine *e, dv_nodeid_t id)
{
	size_t lo = 0, hi = e->n_nodes;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (e->nodes[mid].id == id)
			return &e->nodes[mid];
		if (e->nodes[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* May move other entries: do not keep node pointers across this call. */
static struct node *node_add(struct dv_engine *e, dv_nodeid_t id)
{
	struct node *n = node_find(e, id);
	size_t i;

	if (n)
		return n;
	if (e->n_nodes >= MAX_NODE_ENTRIES)
		return NULL;
	if (grow((void **)&e->nodes, &e->cap_nodes, e->n_nodes + 1, sizeof(*e->nodes)) < 0)
		return NULL;
	for (i = 0; i < e->n_nodes && e->nodes[i].id < id; i++)
		;
	memmove(&e->nodes[i + 1], &e->nodes[i], (e->n_nodes - i) * sizeof(*e->nodes));
	e->n_nodes++;
	e->nodes[i] = (struct node){.id = id};
	return &e->nodes[i];
}

static void node_conf_free(struct node *n)
{
	free(n->ranges);
	free(n->defines);
	n->ranges = NULL;
	n->defines = NULL;
	n->n_ranges = n->n_defines = 0;
	n->has_conf = false;
}

static bool is_member(const struct dv_engine *e, dv_nodeid_t id)
{
	const struct node *n = node_find(e, id);

	return n && n->member;
}

/* The node's published name, else "node N". */
static const char *node_label(const struct dv_engine *e, dv_nodeid_t id, char buf[static LABEL_MAX])
{
	const struct node *n = node_find(e, id);

	/* Always fills buf: callers may use either. */
	if (n && n->name[0])
		snprintf(buf, LABEL_MAX, "%s", n->name);
	else
		snprintf(buf, LABEL_MAX, "node %" PRIu32, id);
	return buf;
}

static const struct dv_conf_range *node_range(const struct node *n, const struct dv_addr *a)
{
	const struct dv_conf_range *best = NULL;

	for (size_t i = 0; i < n->n_ranges; i++) {
		const struct dv_conf_range *r = &n->ranges[i];

		if (r->deleted || !dv_prefix_contains(&r->prefix, a))
			continue;
		if (!best || r->prefix.len > best->prefix.len)
			best = r;
	}
	return best;
}

/* ---- effects ---- */

void dv_effects_clear(struct dv_effects *fx)
{
	if (fx)
		fx->n = 0;
}

void dv_effects_free(struct dv_effects *fx)
{
	if (!fx)
		return;
	free(fx->v);
	*fx = (struct dv_effects){0};
}

/* A new zeroed entry at the end of fx, or NULL (e->err is set). */
static struct dv_effect *fx_add(struct dv_engine *e, struct dv_effects *fx, enum dv_effect_type type)
{
	struct dv_effect *f;

	if (grow((void **)&fx->v, &fx->cap, fx->n + 1, sizeof(*fx->v)) < 0) {
		e->err = -ENOMEM;
		return NULL;
	}
	f = &fx->v[fx->n++];
	memset(f, 0, sizeof(*f));
	f->type = type;
	return f;
}

static void fx_local(struct dv_engine *e, struct dv_effects *fx, const struct dv_addr *a, bool up)
{
	struct dv_effect *f;

	if (!fx)
		return;
	f = fx_add(e, fx, DV_FX_LOCAL);
	if (f) {
		f->addr = *a;
		f->up = up;
	}
}

__attribute__((format(printf, 7, 8))) static void reply(struct dv_engine *e, const struct dv_event *ev, uint64_t client,
							uint32_t seq, const struct dv_addr *a, enum dv_result r,
							const char *fmt, ...)
{
	struct dv_effect *f;
	va_list ap;

	if (ev->node != e->self || !e->out)
		return;
	f = fx_add(e, &e->fx, DV_FX_REPLY);
	if (!f)
		return;
	f->client = client;
	f->seq = seq;
	f->addr = *a;
	f->result = r;
	va_start(ap, fmt);
	vsnprintf(f->reason, sizeof(f->reason), fmt, ap);
	va_end(ap);
}

__attribute__((format(printf, 6, 7))) static void notify(struct dv_engine *e, dv_nodeid_t node, uint64_t client,
							 const struct dv_addr *a, enum dv_notify what, const char *fmt,
							 ...)
{
	struct dv_effect *f;
	va_list ap;

	if (node != e->self || !e->out)
		return;
	f = fx_add(e, &e->fx, DV_FX_NOTIFY);
	if (!f)
		return;
	f->client = client;
	f->addr = *a;
	f->what = what;
	va_start(ap, fmt);
	vsnprintf(f->reason, sizeof(f->reason), fmt, ap);
	va_end(ap);
}

__attribute__((format(printf, 2, 3))) static void set_reason(struct vipa *v, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(v->reason, sizeof(v->reason), fmt, ap);
	va_end(ap);
}

/* Whether new owners may be chosen now (see `confirm`). */
static bool may_assign(const struct dv_engine *e)
{
	return e->quorate && !e->confirm;
}

static const char *no_assign_why(const struct dv_engine *e)
{
	return e->quorate ? "quorum is being confirmed after members left" : "this node's partition is not quorate";
}

static void touch(struct dv_engine *e, struct vipa *v)
{
	if (v->dirty)
		return;
	if (grow((void **)&e->dirty, &e->cap_dirty, e->n_dirty + 1, sizeof(*e->dirty)) < 0) {
		e->sync_all = true;
		return;
	}
	e->dirty[e->n_dirty++] = v->addr;
	v->dirty = true;
}

static void sync_local(struct dv_engine *e, struct vipa *v)
{
	bool want = e->quorate && v->owner != 0 && v->owner == e->self && v->state == DV_VS_ACTIVE;

	v->dirty = false;
	if (want == v->installed)
		return;
	v->installed = want;
	fx_local(e, e->out, &v->addr, want);
}

/* ---- client index ---- */

static struct cref *cref_find(const struct dv_engine *e, dv_nodeid_t node, uint64_t client)
{
	struct cref_key k = {node, client};
	void **slot = dv_hashtab_find(&e->crefs, cref_hash2(node, client), cref_match, &k);

	return slot ? *slot : NULL;
}

static int cref_add(struct dv_engine *e, dv_nodeid_t node, uint64_t client, const struct dv_addr *a)
{
	struct cref *c = cref_find(e, node, client);

	if (!c) {
		c = calloc(1, sizeof(*c));
		if (!c)
			return -ENOMEM;
		c->node = node;
		c->client = client;
		if (dv_hashtab_put(&e->crefs, c, cref_hash) < 0) {
			free(c);
			return -ENOMEM;
		}
	}
	if (grow((void **)&c->addrs, &c->cap, c->n + 1, sizeof(*c->addrs)) < 0) {
		if (c->n == 0) {
			struct cref_key k = {node, client};

			dv_hashtab_del(&e->crefs, dv_hashtab_find(&e->crefs, cref_hash(c), cref_match, &k), cref_hash);
			free(c);
		}
		return -ENOMEM;
	}
	c->addrs[c->n++] = *a;
	return 0;
}

static void cref_del(struct dv_engine *e, dv_nodeid_t node, uint64_t client, const struct dv_addr *a)
{
	struct cref_key k = {node, client};
	void **slot = dv_hashtab_find(&e->crefs, cref_hash2(node, client), cref_match, &k);
	struct cref *c;

	if (!slot)
		return;
	c = *slot;
	for (size_t i = 0; i < c->n; i++) {
		if (!dv_addr_eq(&c->addrs[i], a))
			continue;
		c->addrs[i] = c->addrs[--c->n];
		break;
	}
	if (c->n == 0) {
		dv_hashtab_del(&e->crefs, slot, cref_hash);
		free(c->addrs);
		free(c);
	}
}

/* ---- VIPAs ---- */

static struct vipa *vipa_find(const struct dv_engine *e, const struct dv_addr *a)
{
	void **slot = dv_hashtab_find(&e->vipas, dv_addr_hash(a), vipa_match, a);

	return slot ? *slot : NULL;
}

static struct vipa *vipa_new(struct dv_engine *e, const struct dv_addr *a)
{
	struct vipa *v = calloc(1, sizeof(*v));

	if (!v)
		return NULL;
	v->addr = *a;
	v->state = DV_VS_INACTIVE;
	if (dv_hashtab_put(&e->vipas, v, vipa_hash) < 0) {
		free(v);
		return NULL;
	}
	return v;
}

static void vipa_destroy(struct vipa *v)
{
	free(v->holds);
	free(v->standbys);
	free(v->cands);
	free(v->reports);
	free(v);
}

static void vipa_remove(struct dv_engine *e, struct vipa *v)
{
	void **slot = dv_hashtab_find(&e->vipas, vipa_hash(v), vipa_match, &v->addr);

	if (v->installed)
		fx_local(e, e->out, &v->addr, false);
	while (v->n_holds)
		if (v->holds[--v->n_holds].kind == DV_HOLD_API)
			cref_del(e, v->holds[v->n_holds].node, v->holds[v->n_holds].client, &v->addr);
	while (v->n_standbys) {
		v->n_standbys--;
		cref_del(e, v->standbys[v->n_standbys].node, v->standbys[v->n_standbys].client, &v->addr);
	}
	if (slot)
		dv_hashtab_del(&e->vipas, slot, vipa_hash);
	vipa_destroy(v);
}

/* Holds are identified by (node, client) for api, by (node, kind) otherwise. */
static ssize_t hold_find(const struct vipa *v, enum dv_hold_kind kind, dv_nodeid_t node, uint64_t client)
{
	for (size_t i = 0; i < v->n_holds; i++) {
		const struct dv_hold *h = &v->holds[i];

		if (h->kind == kind && h->node == node && (kind != DV_HOLD_API || h->client == client))
			return (ssize_t)i;
	}
	return -1;
}

static ssize_t standby_find(const struct vipa *v, dv_nodeid_t node, uint64_t client)
{
	for (size_t i = 0; i < v->n_standbys; i++)
		if (v->standbys[i].node == node && v->standbys[i].client == client)
			return (ssize_t)i;
	return -1;
}

static int hold_add(struct dv_engine *e, struct vipa *v, enum dv_hold_kind kind, dv_nodeid_t node, uint64_t client,
		    uid_t uid)
{
	if (grow((void **)&v->holds, &v->cap_holds, v->n_holds + 1, sizeof(*v->holds)) < 0)
		return -ENOMEM;
	if (kind == DV_HOLD_API && cref_add(e, node, client, &v->addr) < 0)
		return -ENOMEM;
	v->holds[v->n_holds++] = (struct dv_hold){
	    .kind = kind,
	    .node = node,
	    .client = client,
	    .uid = uid,
	    .since_ms = e->now,
	};
	touch(e, v);
	return 0;
}

static void hold_del(struct dv_engine *e, struct vipa *v, size_t i)
{
	struct dv_hold h = v->holds[i];

	memmove(&v->holds[i], &v->holds[i + 1], (v->n_holds - i - 1) * sizeof(*v->holds));
	v->n_holds--;
	if (h.kind == DV_HOLD_API)
		cref_del(e, h.node, h.client, &v->addr);
	touch(e, v);
}

static void standby_del(struct dv_engine *e, struct vipa *v, size_t i)
{
	struct dv_standby s = v->standbys[i];

	memmove(&v->standbys[i], &v->standbys[i + 1], (v->n_standbys - i - 1) * sizeof(*v->standbys));
	v->n_standbys--;
	cref_del(e, s.node, s.client, &v->addr);
	touch(e, v);
}

static bool standby_before(const struct dv_standby *a, const struct dv_standby *b)
{
	return a->rank > b->rank || (a->rank == b->rank && a->order < b->order);
}

/* Insert s (not in the array) at its place in grant order. */
static void standby_place(struct vipa *v, const struct dv_standby *s)
{
	size_t i;

	for (i = 0; i < v->n_standbys && !standby_before(s, &v->standbys[i]); i++)
		;
	memmove(&v->standbys[i + 1], &v->standbys[i], (v->n_standbys - i) * sizeof(*v->standbys));
	v->standbys[i] = *s;
	v->n_standbys++;
}

static void set_owner(struct dv_engine *e, struct vipa *v, dv_nodeid_t node)
{
	if (v->owner != node) {
		v->owner = node;
		v->since_ms = e->now;
	}
	if (node)
		v->ever_active = true;
	touch(e, v);
}

static const char *hold_desc(const struct dv_engine *e, enum dv_hold_kind kind, dv_nodeid_t node, uint64_t client,
			     char buf[static DESC_MAX])
{
	char nl[LABEL_MAX];

	switch (kind) {
	case DV_HOLD_OPERATOR:
		snprintf(buf, DESC_MAX, "the operator on %s", node_label(e, node, nl));
		break;
	case DV_HOLD_SOCKET:
		snprintf(buf, DESC_MAX, "a socket bound on %s", node_label(e, node, nl));
		break;
	default:
		snprintf(buf, DESC_MAX, "client %" PRIu64 " on %s (api)", client, node_label(e, node, nl));
		break;
	}
	return buf;
}

/* End every hold that is not on node keep; api clients of this node hear
 * why. */
static void end_holds_except(struct dv_engine *e, struct vipa *v, dv_nodeid_t keep, const char *why)
{
	size_t i = 0;

	while (i < v->n_holds) {
		struct dv_hold h = v->holds[i];

		if (h.node == keep) {
			i++;
			continue;
		}
		hold_del(e, v, i);
		if (h.kind == DV_HOLD_API)
			notify(e, h.node, h.client, &v->addr, DV_NOTIFY_LOST, "%s", why);
	}
}

/* ---- stack-managed VIPAs (VIPADEFINE / VIPABACKUP) ---- */

static const struct dv_cand *cand_of(const struct vipa *v, dv_nodeid_t node)
{
	for (size_t i = 0; i < v->n_cands; i++)
		if (v->cands[i].node == node)
			return &v->cands[i];
	return NULL;
}

static const struct report *report_of(const struct vipa *v, dv_nodeid_t node)
{
	for (size_t i = 0; i < v->n_reports; i++)
		if (v->reports[i].node == node)
			return &v->reports[i];
	return NULL;
}

static bool vipa_is_define(const struct dv_engine *e, const struct vipa *v)
{
	for (size_t i = 0; i < v->n_cands; i++)
		if (is_member(e, v->cands[i].node))
			return true;
	return false;
}

static bool cand_eligible(const struct dv_engine *e, const struct vipa *v, const struct dv_cand *c)
{
	const struct node *n = node_find(e, c->node);
	const struct report *r;

	if (!n || !n->member || n->left || c->deactivated)
		return false;
	if (c->trackport == 0)
		return true;
	r = report_of(v, c->node);
	return r && (r->flags & DV_AS_LISTENING);
}

/* A VIPABACKUP without MOVEABLE IMMEDIATE only takes over an address that
 * has been active; it never activates one by itself. */
static bool cand_may_own(const struct vipa *v, const struct dv_cand *c)
{
	return !(c->rank < DV_RANK_DEFINE && c->moveable == DV_MOVE_NONE && !v->ever_active);
}

static bool cand_better(const struct dv_cand *a, const struct dv_cand *b)
{
	return !b || a->rank > b->rank || (a->rank == b->rank && a->node < b->node);
}

static bool node_idle(const struct vipa *v, dv_nodeid_t node)
{
	const struct report *r = report_of(v, node);

	return !r || !(r->flags & DV_AS_BUSY);
}

static const char *cand_desc(const struct dv_engine *e, const struct dv_cand *c, char buf[static DESC_MAX])
{
	char nl[LABEL_MAX];

	if (c->rank >= DV_RANK_DEFINE)
		snprintf(buf, DESC_MAX, "VIPADEFINE on %s", node_label(e, c->node, nl));
	else
		snprintf(buf, DESC_MAX, "VIPABACKUP rank %u on %s", c->rank, node_label(e, c->node, nl));
	return buf;
}

/* The entry that names the define for a refusal: the owner's, else the best
 * member's. */
static const struct dv_cand *define_face(const struct dv_engine *e, const struct vipa *v)
{
	const struct dv_cand *best = NULL;

	if (v->owner && cand_of(v, v->owner))
		return cand_of(v, v->owner);
	for (size_t i = 0; i < v->n_cands; i++)
		if (is_member(e, v->cands[i].node) && cand_better(&v->cands[i], best))
			best = &v->cands[i];
	return best;
}

static void define_inactive_reason(const struct dv_engine *e, struct vipa *v)
{
	char nl[LABEL_MAX];

	if (!may_assign(e)) {
		set_reason(v, "no owner while %s", no_assign_why(e));
		return;
	}
	for (size_t i = 0; i < v->n_cands; i++) {
		const struct dv_cand *c = &v->cands[i];
		const struct node *n = node_find(e, c->node);

		if (!n || !n->member)
			continue;
		if (c->deactivated) {
			set_reason(v, "no eligible node: deactivated on %s by the operator",
				   node_label(e, c->node, nl));
			return;
		}
		if (n->left) {
			set_reason(v, "no eligible node: %s left the group", node_label(e, c->node, nl));
			return;
		}
		if (!cand_eligible(e, v, c)) {
			set_reason(v, "no eligible node: no listener on TRACKPORT %u on %s", c->trackport,
				   node_label(e, c->node, nl));
			return;
		}
	}
	for (size_t i = 0; i < v->n_cands; i++) {
		const struct dv_cand *c = &v->cands[i];

		if (is_member(e, c->node) && !cand_may_own(v, c)) {
			set_reason(v,
				   "no eligible node: the VIPABACKUP on %s is not MOVEABLE IMMEDIATE and the address "
				   "has never been active",
				   node_label(e, c->node, nl));
			return;
		}
	}
	set_reason(v, "no eligible node");
}

static void define_settle(struct dv_engine *e, struct vipa *v, const char *why)
{
	const struct dv_cand *cur = NULL, *best = NULL, *next;
	bool was_define = v->origin == DV_ORIGIN_DEFINE || v->origin == DV_ORIGIN_BACKUP;
	dv_nodeid_t prev = v->owner;
	char ab[DV_ADDR_STRLEN], nl[LABEL_MAX], pl[LABEL_MAX], cd[DESC_MAX], msg[REASON_MAX];

	dv_addr_fmt(&v->addr, ab);

	/* Standbys are for VIPARANGE addresses; the define rules decide here. */
	while (v->n_standbys) {
		struct dv_standby s = v->standbys[v->n_standbys - 1];

		standby_del(e, v, v->n_standbys - 1);
		notify(e, s.node, s.client, &v->addr, DV_NOTIFY_LOST,
		       "%s is now stack-managed (VIPADEFINE/VIPABACKUP); the standby registration ended", ab);
	}

	if (v->owner) {
		const struct dv_cand *c = cand_of(v, v->owner);

		if (c && cand_eligible(e, v, c))
			cur = c;
	}
	for (size_t i = 0; i < v->n_cands; i++) {
		const struct dv_cand *c = &v->cands[i];

		if (cand_eligible(e, v, c) && cand_may_own(v, c) && cand_better(c, best))
			best = c;
	}

	next = cur;
	if (!may_assign(e)) {
		/* No new owner without quorum; QUORUM{true} settles again. */
	} else if (!cur) {
		next = best;
	} else {
		const struct dv_cand *tb = NULL;
		bool idle = node_idle(v, cur->node);

		for (size_t i = 0; i < v->n_cands; i++) {
			const struct dv_cand *c = &v->cands[i];

			if (c == cur || c->rank <= cur->rank || !cand_eligible(e, v, c))
				continue;
			if (c->moveable == DV_MOVE_IMMEDIATE || (c->moveable == DV_MOVE_WHENIDLE && idle))
				if (cand_better(c, tb))
					tb = c;
		}
		if (tb)
			next = tb;
	}

	if ((next ? next->node : 0) != prev) {
		dv_nodeid_t to = next ? next->node : 0;

		if (to)
			snprintf(msg, sizeof(msg), "%s moved to %s (%s)", ab, node_label(e, to, nl),
				 cand_desc(e, next, cd));
		else
			snprintf(msg, sizeof(msg), "%s is no longer active: %s", ab, why);
		end_holds_except(e, v, to, msg);
		set_owner(e, v, to);
		if (!next) {
			define_inactive_reason(e, v);
		} else if (!prev) {
			set_reason(v, "activated on %s (%s) after %s", node_label(e, to, nl), cand_desc(e, next, cd), why);
		} else if (cur) {
			set_reason(v, "taken back from %s by %s (MOVEABLE %s)", node_label(e, prev, pl),
				   cand_desc(e, next, cd),
				   next->moveable == DV_MOVE_WHENIDLE ? "WHENIDLE" : "IMMEDIATE");
		} else {
			set_reason(v, "taken over from %s by %s: %s", node_label(e, prev, pl), cand_desc(e, next, cd),
				   why);
		}
	} else if (!next) {
		define_inactive_reason(e, v);
	} else if (!was_define) {
		set_reason(v, "now stack-managed: %s", cand_desc(e, next, cd));
	}
	/* Holds live only on the owner (normally a no-op). */
	end_holds_except(e, v, v->owner, "the address is stack-managed by another node");
	v->state = next ? DV_VS_ACTIVE : DV_VS_INACTIVE;
	v->origin = next ? (next->rank >= DV_RANK_DEFINE ? DV_ORIGIN_DEFINE : DV_ORIGIN_BACKUP) : DV_ORIGIN_NONE;
	touch(e, v);
}

/* ---- settling ---- */

/* The first standby in grant order becomes a hold. */
static void grant_standby(struct dv_engine *e, struct vipa *v, const char *why)
{
	struct dv_standby s = v->standbys[0];
	char ab[DV_ADDR_STRLEN], nl[LABEL_MAX];

	if (hold_add(e, v, s.kind, s.node, s.client, s.uid) < 0) {
		e->err = -ENOMEM;
		return;
	}
	standby_del(e, v, 0);
	set_owner(e, v, s.node);
	set_reason(v, "standby client %" PRIu64 " (rank %u) on %s granted after %s", s.client, s.rank,
		   node_label(e, s.node, nl), why);
	notify(e, s.node, s.client, &v->addr, DV_NOTIFY_GRANTED, "%s is now active on %s (standby rank %u, after %s)",
	       dv_addr_fmt(&v->addr, ab), node_label(e, s.node, nl), s.rank, why);
}

/*
 * Re-derive owner, origin and state of v after its holds, standbys or
 * candidates, the membership or the quorum changed. Frees v when nothing
 * keeps it: do not use v afterwards.
 */
static void vipa_settle(struct dv_engine *e, struct vipa *v, const char *why)
{
	bool was_define = v->origin == DV_ORIGIN_DEFINE || v->origin == DV_ORIGIN_BACKUP;
	char hd[DESC_MAX];

	touch(e, v);
	if (vipa_is_define(e, v)) {
		define_settle(e, v, why);
		return;
	}
	if (v->n_holds == 0 && v->n_standbys > 0 && may_assign(e))
		grant_standby(e, v, why);
	if (v->n_holds > 0) {
		const struct dv_hold *h = &v->holds[0];

		set_owner(e, v, h->node);
		v->origin = origin_of(h->kind);
		v->state = DV_VS_ACTIVE;
		if (was_define)
			set_reason(v, "no longer stack-managed; kept by %s",
				   hold_desc(e, h->kind, h->node, h->client, hd));
		return;
	}
	set_owner(e, v, 0);
	v->origin = DV_ORIGIN_NONE;
	if (v->n_standbys > 0) {
		v->state = DV_VS_WAITING;
		set_reason(v, "no holder after %s; %zu standby(s) wait: %s", why, v->n_standbys, no_assign_why(e));
		return;
	}
	if (v->n_cands > 0) {
		v->state = DV_VS_INACTIVE;
		set_reason(v, "defined only by nodes outside the membership");
		return;
	}
	vipa_remove(e, v);
}

/* ---- events ---- */

/* Checks common to CLAIM and STANDBY; replies and returns false on refusal. */
static bool admit(struct dv_engine *e, const struct dv_event *ev, uint64_t client, uint32_t seq,
		  const struct dv_addr *a, const struct dv_conf_range **ret_range)
{
	const struct node *n = node_find(e, ev->node);
	char ab[DV_ADDR_STRLEN], nl[LABEL_MAX];

	dv_addr_fmt(a, ab);
	node_label(e, ev->node, nl);
	/* Requests are not held up while quorum is confirmed: the node that
	 * asks knows its partition's quorum already (its daemon refuses
	 * requests while it is not quorate). */
	if (!e->quorate) {
		reply(e, ev, client, seq, a, DV_R_NOQUORUM, "cannot activate %s: this node's partition is not quorate",
		      ab);
		return false;
	}
	if (!n || !n->member) {
		reply(e, ev, client, seq, a, DV_R_NORANGE, "%s is not a member of the cluster", nl);
		return false;
	}
	if (n->left) {
		reply(e, ev, client, seq, a, DV_R_LEFT,
		      "cannot activate %s: %s has left the group (dvipactl leave) and takes no VIPA until it joins", ab,
		      nl);
		return false;
	}
	if (!n->has_conf) {
		reply(e, ev, client, seq, a, DV_R_NORANGE, "%s has published no configuration", nl);
		return false;
	}
	*ret_range = node_range(n, a);
	if (!*ret_range) {
		reply(e, ev, client, seq, a, DV_R_NORANGE, "%s is in no VIPARANGE of %s", ab, nl);
		return false;
	}
	return true;
}

static struct vipa *vipa_create(struct dv_engine *e, const struct dv_event *ev, uint64_t client, uint32_t seq,
				const struct dv_addr *a)
{
	struct vipa *v;

	if (e->vipas.n >= DV_ENGINE_MAX_VIPAS) {
		reply(e, ev, client, seq, a, DV_R_LIMIT, "too many VIPAs (at most %d)", DV_ENGINE_MAX_VIPAS);
		return NULL;
	}
	v = vipa_new(e, a);
	if (!v) {
		e->err = -ENOMEM;
		reply(e, ev, client, seq, a, DV_R_INTERNAL, "out of memory");
	}
	return v;
}

/* A new api hold replaces the client's own standby registration. */
static void drop_own_standby(struct dv_engine *e, struct vipa *v, enum dv_hold_kind kind, dv_nodeid_t node,
			     uint64_t client)
{
	ssize_t s = kind == DV_HOLD_API ? standby_find(v, node, client) : -1;

	if (s >= 0)
		standby_del(e, v, (size_t)s);
}

/*
 * Give a VIPA that nobody holds (or that does not exist yet) to the
 * requester as its first hold; the requester's own standby registration on
 * it ends (for API holds only, unless any_kind). Returns 1 when done, or
 * what the caller returns at once: 0 (replied already) after a failure.
 */
static int activate_free(struct dv_engine *e, const struct dv_event *ev, struct vipa **vp, uint64_t client,
			 uint32_t seq, const struct dv_addr *a, enum dv_hold_kind kind, uid_t uid, bool any_kind)
{
	struct vipa *v = *vp;
	ssize_t s;

	if (!v) {
		v = vipa_create(e, ev, client, seq, a);
		if (!v)
			return 0;
		*vp = v;
	}
	if (hold_add(e, v, kind, ev->node, client, uid) < 0) {
		vipa_settle(e, v, "a failed activation");
		e->err = -ENOMEM;
		reply(e, ev, client, seq, a, DV_R_INTERNAL, "out of memory");
		return 0;
	}
	s = any_kind || kind == DV_HOLD_API ? standby_find(v, ev->node, client) : -1;
	if (s >= 0)
		standby_del(e, v, (size_t)s);
	set_owner(e, v, ev->node);
	v->origin = origin_of(kind);
	v->state = DV_VS_ACTIVE;
	return 1;
}

static int ev_claim(struct dv_engine *e, const struct dv_event *ev)
{
	int done;
	const struct dv_addr *a = &ev->claim.addr;
	uint64_t client = ev->claim.client;
	uint32_t seq = ev->claim.seq;
	enum dv_hold_kind kind = ev->claim.kind;
	const struct dv_conf_range *r;
	struct vipa *v;
	char ab[DV_ADDR_STRLEN], nl[LABEL_MAX], ml[LABEL_MAX], hd[DESC_MAX], cd[DESC_MAX];
	char pb[DV_ADDR_STRLEN];

	if (!admit(e, ev, client, seq, a, &r))
		return 0;
	dv_addr_fmt(a, ab);
	node_label(e, ev->node, nl);
	hold_desc(e, kind, ev->node, client, hd);
	v = vipa_find(e, a);

	if (v && vipa_is_define(e, v)) {
		if (v->owner != ev->node) {
			reply(e, ev, client, seq, a, DV_R_HELD, "%s is defined by %s", ab,
			      cand_desc(e, define_face(e, v), cd));
			return 0;
		}
		if (hold_find(v, kind, ev->node, client) >= 0) {
			reply(e, ev, client, seq, a, DV_R_OK, "%s is already held by %s", ab, hd);
			return 0;
		}
		if (v->n_holds >= DV_ENGINE_MAX_HOLDS) {
			reply(e, ev, client, seq, a, DV_R_LIMIT, "too many holds on %s (at most %d)", ab,
			      DV_ENGINE_MAX_HOLDS);
			return 0;
		}
		if (hold_add(e, v, kind, ev->node, client, ev->claim.uid) < 0)
			goto nomem;
		reply(e, ev, client, seq, a, DV_R_OK, "%s is stack-managed and active on %s; hold added", ab, nl);
		return 0;
	}

	if (!v || v->n_holds == 0) {
		done = activate_free(e, ev, &v, client, seq, a, kind, ev->claim.uid, false);
		if (done <= 0)
			return done;
		set_reason(v, "granted to %s", hd);
		reply(e, ev, client, seq, a, DV_R_OK, "%s activated on %s", ab, nl);
		return 0;
	}

	if (hold_find(v, kind, ev->node, client) >= 0) {
		reply(e, ev, client, seq, a, DV_R_OK, "%s is already held by %s", ab, hd);
		return 0;
	}

	if (v->owner == ev->node) {
		if (r->policy == DV_POLICY_UNIQUE) {
			char first[DESC_MAX];
			const struct dv_hold *h = &v->holds[0];

			reply(e, ev, client, seq, a, DV_R_HELD, "%s is held by %s and its range %s is UNIQUE", ab,
			      hold_desc(e, h->kind, h->node, h->client, first), dv_prefix_fmt(&r->prefix, pb));
			return 0;
		}
		if (v->n_holds >= DV_ENGINE_MAX_HOLDS) {
			reply(e, ev, client, seq, a, DV_R_LIMIT, "too many holds on %s (at most %d)", ab,
			      DV_ENGINE_MAX_HOLDS);
			return 0;
		}
		if (hold_add(e, v, kind, ev->node, client, ev->claim.uid) < 0)
			goto nomem;
		drop_own_standby(e, v, kind, ev->node, client);
		set_reason(v, "shared: %s added a hold (%zu holds)", hd, v->n_holds);
		reply(e, ev, client, seq, a, DV_R_OK, "%s is active on %s; hold added (%zu holds)", ab, nl, v->n_holds);
		return 0;
	}

	/* Active on another node M. */
	node_label(e, v->owner, ml);
	if (r->policy == DV_POLICY_UNIQUE) {
		reply(e, ev, client, seq, a, DV_R_HELD, "%s is held on %s and its range %s is UNIQUE", ab, ml,
		      dv_prefix_fmt(&r->prefix, pb));
		return 0;
	}
	if (kind == DV_HOLD_SOCKET && hold_find(v, DV_HOLD_OPERATOR, v->owner, 0) >= 0) {
		reply(e, ev, client, seq, a, DV_R_HELD,
		      "%s was activated by the operator on %s; a bind on %s cannot move it", ab, ml, nl);
		return 0;
	}
	{
		dv_nodeid_t from = v->owner;
		char msg[REASON_MAX];

		if (hold_add(e, v, kind, ev->node, client, ev->claim.uid) < 0)
			goto nomem;
		drop_own_standby(e, v, kind, ev->node, client);
		snprintf(msg, sizeof(msg), "%s moved to %s", ab, nl);
		end_holds_except(e, v, ev->node, msg);
		set_owner(e, v, ev->node);
		v->origin = origin_of(kind);
		v->state = DV_VS_ACTIVE;
		set_reason(v, "moved from %s to %s: %s activated it (range %s)", node_label(e, from, ml), nl, hd,
			   policy_name(r->policy));
		reply(e, ev, client, seq, a, DV_R_OK, "%s moved from %s to %s", ab, ml, nl);
	}
	return 0;

nomem:
	e->err = -ENOMEM;
	reply(e, ev, client, seq, a, DV_R_INTERNAL, "out of memory");
	return 0;
}

static int ev_release(struct dv_engine *e, const struct dv_event *ev)
{
	const struct dv_addr *a = &ev->release.addr;
	uint64_t client = ev->release.client;
	uint32_t seq = ev->release.seq;
	enum dv_hold_kind kind = ev->release.kind;
	struct vipa *v = vipa_find(e, a);
	char ab[DV_ADDR_STRLEN], hd[DESC_MAX], why[REASON_MAX];
	ssize_t i;

	dv_addr_fmt(a, ab);
	hold_desc(e, kind, ev->node, client, hd);
	i = v ? hold_find(v, kind, ev->node, client) : -1;
	if (i >= 0) {
		hold_del(e, v, (size_t)i);
		snprintf(why, sizeof(why), "%s released it", hd);
		if (v->n_holds > 0)
			set_reason(v, "%s released its hold (%zu left)", hd, v->n_holds);
		reply(e, ev, client, seq, a, DV_R_OK, "%s released by %s", ab, hd);
		vipa_settle(e, v, why);
		return 0;
	}
	i = v && kind != DV_HOLD_OPERATOR ? standby_find(v, ev->node, client) : -1;
	if (i >= 0 && v->standbys[i].kind == kind) {
		standby_del(e, v, (size_t)i);
		reply(e, ev, client, seq, a, DV_R_OK, "standby registration for %s withdrawn", ab);
		vipa_settle(e, v, "a standby withdrew");
		return 0;
	}
	reply(e, ev, client, seq, a, DV_R_NOTHELD, "%s is not held by %s", ab, hd);
	return 0;
}

static int ev_standby(struct dv_engine *e, const struct dv_event *ev)
{
	int done;
	const struct dv_addr *a = &ev->standby.addr;
	uint64_t client = ev->standby.client;
	uint32_t seq = ev->standby.seq;
	unsigned rank = ev->standby.rank;
	enum dv_hold_kind kind = ev->standby.kind;
	const struct dv_conf_range *r;
	struct vipa *v;
	ssize_t i;
	char ab[DV_ADDR_STRLEN], nl[LABEL_MAX], ml[LABEL_MAX], cd[DESC_MAX];

	dv_addr_fmt(a, ab);
	if (kind != DV_HOLD_API && kind != DV_HOLD_SOCKET) {
		reply(e, ev, client, seq, a, DV_R_BADREQ, "a standby becomes an api or a socket hold");
		return 0;
	}
	if (rank < 1 || rank >= DV_RANK_DEFINE) {
		reply(e, ev, client, seq, a, DV_R_BADREQ, "standby rank %u is not in 1..254", rank);
		return 0;
	}
	if (!admit(e, ev, client, seq, a, &r))
		return 0;
	node_label(e, ev->node, nl);
	v = vipa_find(e, a);
	if (v && vipa_is_define(e, v)) {
		reply(e, ev, client, seq, a, DV_R_HELD, "%s is defined by %s; standbys apply to VIPARANGE addresses",
		      ab, cand_desc(e, define_face(e, v), cd));
		return 0;
	}
	/* A client that holds the address is not its own standby. Socket holds
	 * belong to the node, not to one program: a second program on the
	 * same node (HOT standby through the shim) must wait for them to end. */
	if (v && kind == DV_HOLD_API && hold_find(v, kind, ev->node, client) >= 0) {
		reply(e, ev, client, seq, a, DV_R_OK, "%s is already held by this client", ab);
		return 0;
	}

	if (!v || v->n_holds == 0) {
		done = activate_free(e, ev, &v, client, seq, a, kind, ev->standby.uid, true);
		if (done <= 0)
			return done;
		set_reason(v, "standby client %" PRIu64 " (rank %u) on %s granted at once: no active holder", client,
			   rank, nl);
		reply(e, ev, client, seq, a, DV_R_OK, "%s activated on %s: no active holder", ab, nl);
		return 0;
	}

	node_label(e, v->owner, ml);
	i = standby_find(v, ev->node, client);
	if (i >= 0) {
		struct dv_standby s = v->standbys[i];

		memmove(&v->standbys[i], &v->standbys[i + 1], (v->n_standbys - (size_t)i - 1) * sizeof(s));
		v->n_standbys--;
		s.rank = rank;
		s.kind = kind;
		s.uid = ev->standby.uid;
		standby_place(v, &s);
		reply(e, ev, client, seq, a, DV_R_PENDING, "standby for %s updated to rank %u; held on %s", ab, rank,
		      ml);
		return 0;
	}
	if (v->n_standbys >= DV_ENGINE_MAX_STANDBYS) {
		reply(e, ev, client, seq, a, DV_R_LIMIT, "too many standbys for %s (at most %d)", ab,
		      DV_ENGINE_MAX_STANDBYS);
		return 0;
	}
	if (grow((void **)&v->standbys, &v->cap_standbys, v->n_standbys + 1, sizeof(*v->standbys)) < 0 ||
	    cref_add(e, ev->node, client, a) < 0)
		goto nomem;
	{
		struct dv_standby s = {
		    .node = ev->node,
		    .client = client,
		    .rank = rank,
		    .kind = kind,
		    .uid = ev->standby.uid,
		    .order = e->seq + 1,
		    .since_ms = e->now,
		};

		standby_place(v, &s);
	}
	touch(e, v);
	reply(e, ev, client, seq, a, DV_R_PENDING, "registered as standby for %s with rank %u; held on %s", ab, rank,
	      ml);
	return 0;

nomem:
	e->err = -ENOMEM;
	reply(e, ev, client, seq, a, DV_R_INTERNAL, "out of memory");
	return 0;
}

static int ev_client_gone(struct dv_engine *e, const struct dv_event *ev)
{
	dv_nodeid_t node = ev->node;
	uint64_t client = ev->client_gone.client;
	char nl[LABEL_MAX], why[REASON_MAX];
	struct cref *c;

	snprintf(why, sizeof(why), "client %" PRIu64 " on %s went away", client, node_label(e, node, nl));
	/* Each round removes at least the entry it looks at. */
	while ((c = cref_find(e, node, client))) {
		struct dv_addr a = c->addrs[c->n - 1];
		struct vipa *v = vipa_find(e, &a);
		ssize_t h = v ? hold_find(v, DV_HOLD_API, node, client) : -1;
		ssize_t s = v ? standby_find(v, node, client) : -1;

		if (h < 0 && s < 0) {
			/* A stale index entry: drop it, or this would not end. */
			cref_del(e, node, client, &a);
			continue;
		}
		if (h >= 0) {
			hold_del(e, v, (size_t)h);
			if (v->n_holds > 0)
				set_reason(v, "%s; %zu hold(s) left", why, v->n_holds);
		}
		s = standby_find(v, node, client);
		if (s >= 0)
			standby_del(e, v, (size_t)s);
		vipa_settle(e, v, why);
	}
	return 0;
}

static int ev_addr_state(struct dv_engine *e, const struct dv_event *ev)
{
	struct vipa *v = vipa_find(e, &ev->addr_state.addr);
	unsigned flags = ev->addr_state.flags;
	char nl[LABEL_MAX], why[REASON_MAX];
	struct report *r;
	ssize_t i;

	/* Facts about addresses the engine does not know, or from a node
	 * outside the membership, change nothing: reports stay bounded by
	 * members x VIPAs. */
	if (!v || !is_member(e, ev->node))
		return 0;
	r = (struct report *)report_of(v, ev->node);
	if (!r) {
		if (grow((void **)&v->reports, &v->cap_reports, v->n_reports + 1, sizeof(*v->reports)) < 0)
			return -ENOMEM;
		r = &v->reports[v->n_reports++];
		r->node = ev->node;
	}
	r->flags = flags;
	snprintf(why, sizeof(why), "a report from %s", node_label(e, ev->node, nl));
	i = hold_find(v, DV_HOLD_SOCKET, ev->node, 0);
	if (!(flags & DV_AS_BOUND) && i >= 0) {
		hold_del(e, v, (size_t)i);
		snprintf(why, sizeof(why), "the last socket bound on %s closed", nl);
		if (v->n_holds > 0)
			set_reason(v, "%s; %zu hold(s) left", why, v->n_holds);
	}
	vipa_settle(e, v, why);
	return 0;
}

/*
 * The operator moves an active VIPARANGE address to another member (dvipactl
 * move). Like a DISRUPTIVE move whatever the range's policy, UNIQUE
 * included: it is the operator's decision. The holds elsewhere end (their
 * api clients hear LOST) and an operator hold on the target keeps the
 * address up there until `deactivate` on that node; standbys keep waiting.
 * Stack-managed addresses follow their define rules instead (deactivate).
 */
static int ev_move(struct dv_engine *e, const struct dv_event *ev)
{
	const struct dv_addr *a = &ev->move.addr;
	uint64_t client = ev->move.client;
	uint32_t seq = ev->move.seq;
	dv_nodeid_t to = ev->move.to;
	const struct node *tn = node_find(e, to);
	struct vipa *v = vipa_find(e, a);
	char ab[DV_ADDR_STRLEN], tl[LABEL_MAX], fl[LABEL_MAX], cd[DESC_MAX], msg[REASON_MAX];
	dv_nodeid_t from;

	dv_addr_fmt(a, ab);
	node_label(e, to, tl);
	if (!e->quorate) {
		reply(e, ev, client, seq, a, DV_R_NOQUORUM, "cannot move %s: this node's partition is not quorate", ab);
		return 0;
	}
	if (v && vipa_is_define(e, v)) {
		reply(e, ev, client, seq, a, DV_R_HELD,
		      "%s is defined by %s; stack-managed addresses move by deactivate/reactivate", ab,
		      cand_desc(e, define_face(e, v), cd));
		return 0;
	}
	if (!v || v->n_holds == 0 || !v->owner) {
		reply(e, ev, client, seq, a, DV_R_NOTHELD, "%s is not active on any node", ab);
		return 0;
	}
	if (!tn || !tn->member) {
		reply(e, ev, client, seq, a, DV_R_BADREQ, "%s is not a member of the cluster", tl);
		return 0;
	}
	if (tn->left) {
		reply(e, ev, client, seq, a, DV_R_LEFT, "%s has left the group (dvipactl leave)", tl);
		return 0;
	}
	if (!tn->has_conf || !node_range(tn, a)) {
		reply(e, ev, client, seq, a, DV_R_NORANGE, "%s is in no VIPARANGE of %s", ab, tl);
		return 0;
	}
	from = v->owner;
	node_label(e, from, fl);
	if (from == to) {
		if (hold_find(v, DV_HOLD_OPERATOR, to, 0) < 0 &&
		    hold_add(e, v, DV_HOLD_OPERATOR, to, 0, ev->move.uid) < 0)
			goto nomem;
		reply(e, ev, client, seq, a, DV_R_OK, "%s is already active on %s; the operator holds it there", ab,
		      tl);
		return 0;
	}
	if (hold_add(e, v, DV_HOLD_OPERATOR, to, 0, ev->move.uid) < 0)
		goto nomem;
	snprintf(msg, sizeof(msg), "%s moved to %s by the operator", ab, tl);
	end_holds_except(e, v, to, msg);
	set_owner(e, v, to);
	v->origin = DV_ORIGIN_OPERATOR;
	v->state = DV_VS_ACTIVE;
	set_reason(v, "moved from %s to %s by the operator", fl, tl);
	reply(e, ev, client, seq, a, DV_R_OK, "%s moved from %s to %s", ab, fl, tl);
	return 0;

nomem:
	e->err = -ENOMEM;
	reply(e, ev, client, seq, a, DV_R_INTERNAL, "out of memory");
	return 0;
}

static int vipa_cmp_ptr(const void *a, const void *b)
{
	return dv_addr_cmp(&(*(struct vipa *const *)a)->addr, &(*(struct vipa *const *)b)->addr);
}

/* Every VIPA, in address order so that effects come in a stable order. */
static struct vipa **vipa_snapshot(const struct dv_engine *e, size_t *ret_n)
{
	struct vipa **all = malloc((e->vipas.n ? e->vipas.n : 1) * sizeof(*all));
	size_t n = 0;

	if (!all)
		return NULL;
	for (size_t i = 0; i < e->vipas.cap; i++)
		if (e->vipas.slots[i])
			all[n++] = e->vipas.slots[i];
	qsort(all, n, sizeof(*all), vipa_cmp_ptr);
	*ret_n = n;
	return all;
}

/*
 * VARY TCPIP,,SYSPLEX,DEACTIVATE/REACTIVATE,DVIPA (dvipactl deactivate and
 * reactivate --node): the target node's VIPADEFINE or VIPABACKUP of the
 * address stops or starts counting. Deactivated, the node never owns the
 * address, so the next eligible backup takes it over; reactivated, it is a
 * candidate again and the define rules decide (a higher-ranked MOVEABLE
 * IMMEDIATE define takes it back at once, WHENIDLE once idle). The mark
 * stays across reloads of the node while it keeps the define, and ends
 * when the node leaves the membership.
 */
static int ev_define_state(struct dv_engine *e, const struct dv_event *ev)
{
	const struct dv_addr *a = &ev->define_state.addr;
	uint64_t client = ev->define_state.client;
	uint32_t seq = ev->define_state.seq;
	dv_nodeid_t target = ev->define_state.target;
	bool active = ev->define_state.active;
	const char *verb = active ? "reactivated" : "deactivated";
	struct vipa *v = vipa_find(e, a);
	struct dv_cand *c = NULL;
	char ab[DV_ADDR_STRLEN], tl[LABEL_MAX], why[REASON_MAX];

	dv_addr_fmt(a, ab);
	node_label(e, target, tl);
	if (!is_member(e, target)) {
		reply(e, ev, client, seq, a, DV_R_BADREQ, "%s is not a member of the cluster", tl);
		return 0;
	}
	for (size_t i = 0; v && i < v->n_cands; i++)
		if (v->cands[i].node == target)
			c = &v->cands[i];
	if (!c) {
		reply(e, ev, client, seq, a, DV_R_NORANGE, "%s is no VIPADEFINE or VIPABACKUP of %s", ab, tl);
		return 0;
	}
	if (c->deactivated == !active) {
		reply(e, ev, client, seq, a, DV_R_OK, "%s is already %s on %s", ab, verb, tl);
		return 0;
	}
	c->deactivated = !active;
	snprintf(why, sizeof(why), "it was %s on %s by the operator", verb, tl);
	reply(e, ev, client, seq, a, DV_R_OK, "%s %s on %s", ab, verb, tl);
	vipa_settle(e, v, why);
	return 0;
}

/* End every hold and standby of node on v, as if it had left: api clients
 * hear why. */
static void drop_node_from_vipa(struct dv_engine *e, struct vipa *v, dv_nodeid_t node, const char *why)
{
	char ab[DV_ADDR_STRLEN];

	dv_addr_fmt(&v->addr, ab);
	for (size_t i = 0; i < v->n_holds;) {
		struct dv_hold h = v->holds[i];

		if (h.node != node) {
			i++;
			continue;
		}
		hold_del(e, v, i);
		if (h.kind == DV_HOLD_API)
			notify(e, h.node, h.client, &v->addr, DV_NOTIFY_LOST, "%s is lost: %s", ab, why);
	}
	for (size_t i = 0; i < v->n_standbys;) {
		struct dv_standby sb = v->standbys[i];

		if (sb.node != node) {
			i++;
			continue;
		}
		standby_del(e, v, i);
		notify(e, sb.node, sb.client, &v->addr, DV_NOTIFY_LOST, "standby for %s ended: %s", ab, why);
	}
}

/*
 * LEAVEGROUP/JOINGROUP (dvipactl leave and join): a node that leaves stays
 * in the CPG group but takes part in nothing: its holds and standbys end as
 * if it had left the cluster (standbys elsewhere are granted, defines go to
 * their backups), and its claims are refused until it joins. Joining makes
 * it eligible again; defines follow their takeback rules.
 */
static int ev_node_admin(struct dv_engine *e, const struct dv_event *ev)
{
	static const struct dv_addr none;
	uint64_t client = ev->node_admin.client;
	uint32_t seq = ev->node_admin.seq;
	dv_nodeid_t target = ev->node_admin.target;
	bool joined = ev->node_admin.joined;
	struct node *n = node_find(e, target);
	struct vipa **all;
	size_t n_all = 0;
	char tl[LABEL_MAX], why[REASON_MAX];

	node_label(e, target, tl);
	if (!n || !n->member) {
		reply(e, ev, client, seq, &none, DV_R_BADREQ, "%s is not a member of the cluster", tl);
		return 0;
	}
	if (n->left == !joined) {
		reply(e, ev, client, seq, &none, DV_R_OK, "%s has already %s the group", tl,
		      joined ? "joined" : "left");
		return 0;
	}
	all = vipa_snapshot(e, &n_all);
	if (!all)
		return -ENOMEM;
	n->left = !joined;
	snprintf(why, sizeof(why), "%s %s the group (operator)", tl, joined ? "joined" : "left");
	for (size_t k = 0; k < n_all; k++) {
		if (!joined)
			drop_node_from_vipa(e, all[k], target, why);
		vipa_settle(e, all[k], why);
	}
	free(all);
	reply(e, ev, client, seq, &none, DV_R_OK, "%s %s the group", tl, joined ? "joined" : "left");
	return 0;
}

static int cand_remove(struct vipa *v, dv_nodeid_t node)
{
	for (size_t i = 0; i < v->n_cands; i++) {
		if (v->cands[i].node != node)
			continue;
		v->cands[i] = v->cands[--v->n_cands];
		return 1;
	}
	return 0;
}

/* Drop the node's candidates (the caller settles the addresses). */
static void node_uncandidate(struct dv_engine *e, const struct node *n)
{
	for (size_t i = 0; i < n->n_defines; i++) {
		struct vipa *v = vipa_find(e, &n->defines[i].addr);

		if (v)
			cand_remove(v, n->id);
	}
}

static void settle_addr(struct dv_engine *e, const struct dv_addr *a, const char *why)
{
	struct vipa *v = vipa_find(e, a);

	if (v)
		vipa_settle(e, v, why);
}

static int nodeid_cmp(const void *a, const void *b)
{
	dv_nodeid_t x = *(const dv_nodeid_t *)a, y = *(const dv_nodeid_t *)b;

	return (x > y) - (x < y);
}

static int ev_membership(struct dv_engine *e, const struct dv_event *ev)
{
	size_t n = ev->membership.n, nm = 0;
	dv_nodeid_t *m = NULL;
	struct vipa **all;
	size_t n_all = 0;

	/* Sort and dedupe the new set, then reserve everything before changing
	 * any state. */
	if (grow((void **)&e->members, &e->cap_members, n, sizeof(*e->members)) < 0)
		return -ENOMEM;
	m = malloc((n ? n : 1) * sizeof(*m));
	if (!m)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		dv_nodeid_t id = ev->membership.nodes[i];
		size_t j;

		for (j = 0; j < nm && m[j] < id; j++)
			;
		if (j < nm && m[j] == id)
			continue;
		memmove(&m[j + 1], &m[j], (nm - j) * sizeof(*m));
		m[j] = id;
		nm++;
	}
	/* Joining nodes need entries; the table holds at most members plus
	 * nodes configured before joining. */
	{
		size_t missing = 0;

		for (size_t i = 0; i < nm; i++)
			if (!node_find(e, m[i]))
				missing++;
		if (e->n_nodes + missing > MAX_NODE_ENTRIES) {
			free(m);
			return -ENOSPC;
		}
	}
	for (size_t i = 0; i < nm; i++) {
		if (!node_add(e, m[i])) {
			free(m);
			return -ENOMEM;
		}
	}
	all = vipa_snapshot(e, &n_all);
	if (!all) {
		free(m);
		return -ENOMEM;
	}

	for (size_t i = 0; i < e->n_members; i++) {
		char nl[LABEL_MAX];

		if (!e->quorate || bsearch(&e->members[i], m, nm, sizeof(*m), nodeid_cmp))
			continue;
		/* "n1 left the cluster", "n1, n3 left the cluster" */
		node_label(e, e->members[i], nl);
		if (!e->confirm) {
			e->confirm = true;
			snprintf(e->confirm_why, sizeof(e->confirm_why), "%s left the cluster", nl);
		} else {
			char prev[REASON_MAX];

			snprintf(prev, sizeof(prev), "%s", e->confirm_why);
			snprintf(e->confirm_why, sizeof(e->confirm_why), "%s, %.160s", nl, prev);
		}
	}
	for (size_t i = 0; i < e->n_nodes; i++) {
		struct node *nd = &e->nodes[i];

		nd->member = bsearch(&nd->id, m, nm, sizeof(*m), nodeid_cmp) != NULL;
	}
	if (nm)
		memcpy(e->members, m, nm * sizeof(*m));
	e->n_members = nm;
	free(m);

	for (size_t k = 0; k < n_all; k++) {
		struct vipa *v = all[k];
		dv_nodeid_t prev = v->owner;
		char ab[DV_ADDR_STRLEN], nl[LABEL_MAX], why[REASON_MAX];

		dv_addr_fmt(&v->addr, ab);
		for (size_t i = 0; i < v->n_holds;) {
			struct dv_hold h = v->holds[i];

			if (is_member(e, h.node)) {
				i++;
				continue;
			}
			hold_del(e, v, i);
			if (h.kind == DV_HOLD_API)
				notify(e, h.node, h.client, &v->addr, DV_NOTIFY_LOST, "%s is lost: %s left the cluster",
				       ab, node_label(e, h.node, nl));
		}
		for (size_t i = 0; i < v->n_standbys;) {
			struct dv_standby s = v->standbys[i];

			if (is_member(e, s.node)) {
				i++;
				continue;
			}
			standby_del(e, v, i);
			notify(e, s.node, s.client, &v->addr, DV_NOTIFY_LOST,
			       "standby for %s ended: %s left the cluster", ab, node_label(e, s.node, nl));
		}
		for (size_t i = 0; i < v->n_reports;) {
			if (is_member(e, v->reports[i].node))
				i++;
			else
				v->reports[i] = v->reports[--v->n_reports];
		}
		if (prev && !is_member(e, prev))
			snprintf(why, sizeof(why), "%s left the cluster", node_label(e, prev, nl));
		else
			snprintf(why, sizeof(why), "a membership change");
		vipa_settle(e, v, why);
	}
	free(all);

	/* Nodes that are not members lose their configuration. */
	for (size_t i = 0; i < e->n_nodes;) {
		struct node *nd = &e->nodes[i];

		if (nd->member) {
			i++;
			continue;
		}
		if (nd->has_conf) {
			struct node gone = *nd;

			node_uncandidate(e, &gone);
			memmove(nd, nd + 1, (e->n_nodes - i - 1) * sizeof(*nd));
			e->n_nodes--;
			for (size_t j = 0; j < gone.n_defines; j++)
				settle_addr(e, &gone.defines[j].addr, "a membership change");
			node_conf_free(&gone);
			continue;
		}
		memmove(nd, nd + 1, (e->n_nodes - i - 1) * sizeof(*nd));
		e->n_nodes--;
	}
	return 0;
}

static int ev_quorum(struct dv_engine *e, const struct dv_event *ev)
{
	struct vipa **all;
	size_t n_all = 0;
	bool could = may_assign(e);
	char why[REASON_MAX];

	/* The cluster repeats the quorum after every membership change: an
	 * unchanged one that confirms nothing changes nothing (no pass over
	 * every VIPA). */
	if (ev->quorum.quorate == e->quorate && !e->confirm)
		return 0;
	all = vipa_snapshot(e, &n_all);
	if (!all)
		return -ENOMEM;
	if (e->confirm && ev->quorum.quorate)
		snprintf(why, sizeof(why), "%.200s (quorum confirmed)", e->confirm_why);
	else
		snprintf(why, sizeof(why), "quorum was regained");
	e->quorate = ev->quorum.quorate;
	e->confirm = false;
	e->confirm_why[0] = 0;
	for (size_t k = 0; k < n_all; k++) {
		touch(e, all[k]);
		/* Decisions deferred while not quorate are taken now. */
		if (may_assign(e) && !could)
			vipa_settle(e, all[k], why);
	}
	free(all);
	return 0;
}

static int define_cmp(const void *a, const void *b)
{
	const struct dv_conf_define *x = a, *y = b;
	int r = dv_addr_cmp(&x->addr, &y->addr);

	if (r)
		return r;
	/* Duplicates: the first line wins. */
	return (x->line > y->line) - (x->line < y->line);
}

static int ev_node_config(struct dv_engine *e, const struct dv_event *ev)
{
	const struct dv_node_conf *nc = &ev->node_config;
	struct dv_conf_range *ranges = NULL;
	struct dv_conf_define *defines = NULL;
	size_t n_defines = 0, n_new = 0;
	struct node *n, old;
	bool *deact = NULL;
	char nl[LABEL_MAX], why[REASON_MAX];

	ranges = calloc(nc->n_ranges ? nc->n_ranges : 1, sizeof(*ranges));
	defines = calloc(nc->n_defines ? nc->n_defines : 1, sizeof(*defines));
	if (!ranges || !defines)
		goto nomem;
	for (size_t i = 0; i < nc->n_ranges; i++) {
		/* Allow lists stay local: do not keep pointers into the caller's
		 * configuration. */
		ranges[i] = (struct dv_conf_range){
		    .prefix = nc->ranges[i].prefix,
		    .policy = nc->ranges[i].policy,
		    .deleted = nc->ranges[i].deleted,
		    .line = nc->ranges[i].line,
		};
	}
	if (nc->n_defines) {
		memcpy(defines, nc->defines, nc->n_defines * sizeof(*defines));
		qsort(defines, nc->n_defines, sizeof(*defines), define_cmp);
	}
	for (size_t i = 0; i < nc->n_defines; i++)
		if (n_defines == 0 || !dv_addr_eq(&defines[n_defines - 1].addr, &defines[i].addr))
			defines[n_defines++] = defines[i];

	/* Check the limits and reserve (the node entry, room for every
	 * candidate entry) before changing anything. */
	for (size_t i = 0; i < n_defines; i++) {
		struct vipa *v = vipa_find(e, &defines[i].addr);

		if (!v)
			n_new++;
		else if (grow((void **)&v->cands, &v->cap_cands, v->n_cands + 1, sizeof(*v->cands)) < 0)
			goto nomem;
	}
	if (e->vipas.n + n_new > DV_ENGINE_MAX_VIPAS || (!node_find(e, ev->node) && e->n_nodes >= MAX_NODE_ENTRIES)) {
		free(ranges);
		free(defines);
		return -ENOSPC;
	}
	/* The operator's deactivations outlive a reload that keeps the define. */
	deact = calloc(n_defines ? n_defines : 1, sizeof(*deact));
	if (!deact)
		goto nomem;
	for (size_t i = 0; i < n_defines; i++) {
		struct vipa *v = vipa_find(e, &defines[i].addr);
		const struct dv_cand *c = v ? cand_of(v, ev->node) : NULL;

		deact[i] = c && c->deactivated;
	}
	n = node_add(e, ev->node);
	if (!n)
		goto nomem;
	old = *n;
	node_uncandidate(e, &old);
	n->ranges = ranges;
	n->n_ranges = nc->n_ranges;
	n->defines = defines;
	n->n_defines = n_defines;
	n->has_conf = true;
	memcpy(n->name, nc->name, sizeof(n->name));
	n->name[sizeof(n->name) - 1] = '\0';

	snprintf(why, sizeof(why), "the configuration of %s changed", node_label(e, ev->node, nl));
	for (size_t i = 0; i < n_defines; i++) {
		const struct dv_conf_define *d = &defines[i];
		struct vipa *v = vipa_find(e, &d->addr);

		if (!v) {
			v = vipa_new(e, &d->addr);
			if (!v) {
				e->err = -ENOMEM;
				continue;
			}
		}
		if (grow((void **)&v->cands, &v->cap_cands, v->n_cands + 1, sizeof(*v->cands)) < 0) {
			e->err = -ENOMEM;
			continue;
		}
		v->cands[v->n_cands++] = (struct dv_cand){
		    .node = ev->node,
		    .rank = d->rank,
		    .moveable = d->moveable,
		    .trackport = d->trackport,
		    .deactivated = deact[i],
		};
	}
	free(deact);
	for (size_t i = 0; i < old.n_defines; i++)
		settle_addr(e, &old.defines[i].addr, why);
	for (size_t i = 0; i < n_defines; i++)
		settle_addr(e, &defines[i].addr, why);
	free(old.ranges);
	free(old.defines);
	return 0;

nomem:
	free(ranges);
	free(defines);
	free(deact);
	return -ENOMEM;
}

/* Well-formedness only; no state is looked at. */
static int event_check(const struct dv_event *ev)
{
	switch (ev->type) {
	case DV_EV_NODE_CONFIG: {
		const struct dv_node_conf *nc = &ev->node_config;

		if (ev->node == 0 || nc->n_ranges > MAX_RANGES || nc->n_defines > MAX_DEFINES)
			return -EINVAL;
		if ((nc->n_ranges && !nc->ranges) || (nc->n_defines && !nc->defines))
			return -EINVAL;
		for (size_t i = 0; i < nc->n_ranges; i++) {
			const struct dv_prefix *p = &nc->ranges[i].prefix;

			if (!family_ok(&p->addr) || p->len > dv_addr_maxlen(&p->addr))
				return -EINVAL;
		}
		for (size_t i = 0; i < nc->n_defines; i++) {
			const struct dv_conf_define *d = &nc->defines[i];

			if (!family_ok(&d->addr) || d->rank < 1 || d->rank > DV_RANK_DEFINE ||
			    (d->moveable != DV_MOVE_IMMEDIATE && d->moveable != DV_MOVE_WHENIDLE &&
			     d->moveable != DV_MOVE_NONE))
				return -EINVAL;
		}
		return 0;
	}
	case DV_EV_CLAIM:
	case DV_EV_RELEASE:
		/* claim and release share their layout */
		if (ev->node == 0 || !family_ok(&ev->claim.addr) || !kind_ok(ev->claim.kind))
			return -EINVAL;
		return 0;
	case DV_EV_STANDBY:
		/* Rank and kind are checked as requests: they get a reply. */
		if (ev->node == 0 || !family_ok(&ev->standby.addr))
			return -EINVAL;
		return 0;
	case DV_EV_CLIENT_GONE:
		return ev->node == 0 ? -EINVAL : 0;
	case DV_EV_ADDR_STATE:
		if (ev->node == 0 || !family_ok(&ev->addr_state.addr))
			return -EINVAL;
		return 0;
	case DV_EV_MEMBERSHIP:
		if (ev->membership.n > DV_ENGINE_MAX_NODES || (ev->membership.n && !ev->membership.nodes))
			return -EINVAL;
		for (size_t i = 0; i < ev->membership.n; i++)
			if (ev->membership.nodes[i] == 0)
				return -EINVAL;
		return 0;
	case DV_EV_QUORUM:
		return 0;
	case DV_EV_MOVE:
		if (ev->node == 0 || !family_ok(&ev->move.addr))
			return -EINVAL;
		return 0;
	case DV_EV_DEFINE_STATE:
		if (ev->node == 0 || !family_ok(&ev->define_state.addr))
			return -EINVAL;
		return 0;
	case DV_EV_NODE_ADMIN:
		return ev->node == 0 ? -EINVAL : 0;
	default:
		return -EINVAL;
	}
}

static void flush(struct dv_engine *e)
{
	if (e->sync_all) {
		for (size_t i = 0; i < e->vipas.cap; i++)
			if (e->vipas.slots[i])
				sync_local(e, e->vipas.slots[i]);
		e->sync_all = false;
	}
	for (size_t i = 0; i < e->n_dirty; i++) {
		struct vipa *v = vipa_find(e, &e->dirty[i]);

		if (v)
			sync_local(e, v);
	}
	e->n_dirty = 0;

	/* Local effects first: the address is in place before anyone is told. */
	if (e->out && e->fx.n) {
		if (grow((void **)&e->out->v, &e->out->cap, e->out->n + e->fx.n, sizeof(*e->out->v)) < 0) {
			e->err = -ENOMEM;
		} else {
			memcpy(&e->out->v[e->out->n], e->fx.v, e->fx.n * sizeof(*e->fx.v));
			e->out->n += e->fx.n;
		}
	}
	e->fx.n = 0;
	e->out = NULL;
}

int dv_engine_apply(struct dv_engine *e, const struct dv_event *ev, struct dv_effects *fx)
{
	int r;

	if (!e || !ev)
		return -EINVAL;
	r = event_check(ev);
	if (r < 0)
		return r;
	e->now = ev->time_ms;
	e->err = 0;
	e->out = fx;
	switch (ev->type) {
	case DV_EV_NODE_CONFIG:
		r = ev_node_config(e, ev);
		break;
	case DV_EV_CLAIM:
		r = ev_claim(e, ev);
		break;
	case DV_EV_RELEASE:
		r = ev_release(e, ev);
		break;
	case DV_EV_STANDBY:
		r = ev_standby(e, ev);
		break;
	case DV_EV_CLIENT_GONE:
		r = ev_client_gone(e, ev);
		break;
	case DV_EV_ADDR_STATE:
		r = ev_addr_state(e, ev);
		break;
	case DV_EV_MEMBERSHIP:
		r = ev_membership(e, ev);
		break;
	case DV_EV_QUORUM:
		r = ev_quorum(e, ev);
		break;
	case DV_EV_MOVE:
		r = ev_move(e, ev);
		break;
	case DV_EV_DEFINE_STATE:
		r = ev_define_state(e, ev);
		break;
	case DV_EV_NODE_ADMIN:
		r = ev_node_admin(e, ev);
		break;
	default:
		r = -EINVAL;
		break;
	}
	/* Handlers fail only before changing anything; a resource failure
	 * half way is recorded in e->err and the event still counts. */
	if (r == 0)
		e->seq++;
	flush(e);
	if (r == 0 && e->err < 0)
		r = e->err;
	return r;
}

/* ---- life cycle ---- */

struct dv_engine *dv_engine_new(dv_nodeid_t self)
{
	struct dv_engine *e = calloc(1, sizeof(*e));

	if (!e)
		return NULL;
	e->self = self;
	return e;
}

/* Free everything the engine owns, not the engine itself. */
static void engine_clear(struct dv_engine *e)
{
	for (size_t i = 0; i < e->vipas.cap; i++)
		if (e->vipas.slots[i])
			vipa_destroy(e->vipas.slots[i]);
	free(e->vipas.slots);
	for (size_t i = 0; i < e->crefs.cap; i++) {
		struct cref *c = e->crefs.slots[i];

		if (!c)
			continue;
		free(c->addrs);
		free(c);
	}
	free(e->crefs.slots);
	for (size_t i = 0; i < e->n_nodes; i++)
		node_conf_free(&e->nodes[i]);
	free(e->nodes);
	free(e->members);
	dv_effects_free(&e->fx);
	free(e->dirty);
}

struct dv_engine *dv_engine_free(struct dv_engine *e)
{
	if (!e)
		return NULL;
	engine_clear(e);
	free(e);
	return NULL;
}

/* ---- views ---- */

static void vipa_info(const struct vipa *v, struct dv_vipa_info *ret)
{
	*ret = (struct dv_vipa_info){
	    .addr = v->addr,
	    .owner = v->owner,
	    .origin = v->origin,
	    .state = v->state,
	    .since_ms = v->since_ms,
	    .reason = v->reason,
	    .n_holds = v->n_holds,
	    .holds = v->holds,
	    .n_standbys = v->n_standbys,
	    .standbys = v->standbys,
	    .n_cands = v->n_cands,
	    .cands = v->cands,
	};
}

int dv_engine_foreach(const struct dv_engine *e, int (*cb)(void *ud, const struct dv_vipa_info *v), void *ud)
{
	struct vipa **all;
	size_t n = 0;
	int r = 0;

	if (!e || !cb)
		return -EINVAL;
	all = vipa_snapshot(e, &n);
	if (!all)
		return -ENOMEM;
	for (size_t i = 0; i < n && r == 0; i++) {
		struct dv_vipa_info info;

		vipa_info(all[i], &info);
		r = cb(ud, &info);
	}
	free(all);
	return r;
}

int dv_engine_lookup(const struct dv_engine *e, const struct dv_addr *a, struct dv_vipa_info *ret)
{
	const struct vipa *v;

	if (!e || !a || !family_ok(a))
		return -ENOENT;
	v = vipa_find(e, a);
	if (!v)
		return -ENOENT;
	if (ret)
		vipa_info(v, ret);
	return 0;
}

bool dv_engine_node_left(const struct dv_engine *e, dv_nodeid_t node)
{
	const struct node *n = e ? node_find(e, node) : NULL;

	return n && n->left;
}

dv_nodeid_t dv_engine_self(const struct dv_engine *e)
{
	return e ? e->self : 0;
}

bool dv_engine_quorate(const struct dv_engine *e)
{
	return e && e->quorate;
}

bool dv_engine_confirming(const struct dv_engine *e)
{
	return e && e->confirm;
}

int dv_engine_node_config(const struct dv_engine *e, dv_nodeid_t node, struct dv_node_conf *ret)
{
	const struct node *n = e ? node_find(e, node) : NULL;

	if (!n || !n->has_conf)
		return -ENOENT;
	*ret = (struct dv_node_conf){.n_ranges = n->n_ranges, .ranges = n->ranges, .n_defines = n->n_defines,
				     .defines = n->defines};
	snprintf(ret->name, sizeof(ret->name), "%s", n->name);
	return 0;
}

const char *dv_engine_node_name(const struct dv_engine *e, dv_nodeid_t node)
{
	const struct node *n = e ? node_find(e, node) : NULL;

	return n && n->has_conf && n->name[0] ? n->name : NULL;
}

size_t dv_engine_members(const struct dv_engine *e, const dv_nodeid_t **ret)
{
	if (!e) {
		if (ret)
			*ret = NULL;
		return 0;
	}
	if (ret)
		*ret = e->members;
	return e->n_members;
}

uint64_t dv_engine_seq(const struct dv_engine *e)
{
	return e ? e->seq : 0;
}

/* ---- state transfer ---- */

/*
 * A snapshot is everything a future decision depends on, so that an engine
 * restored from it and fed the same events as the original computes the
 * same table and gives the same replies and notifications. That includes
 * orders that only look incidental: holds (the first names the owner and
 * the origin), candidates (the first ineligible one names the reason),
 * standbys with their registration numbers, and each client's index of
 * addresses (CLIENT_GONE ends them last first, which orders the effects).
 * It leaves out what is this node's own: `self` and which addresses the
 * daemon has installed, which restore derives.
 *
 *   u32 magic "DVSN"  u16 version  u16 0  u64 length (whole snapshot)
 *   u64 seq  u8 quorate (0, 1, 2: quorate but confirming)  [str confirm_why if 2]
 *   u32 n, n x node, by id:
 *     u32 id  u8 flags (member, has configuration, left)  str name
 *     u32 n, n x range  u32 n, n x define (by address)
 *   u32 n, n x vipa, by address:
 *     addr  u32 owner  u8 origin  u8 state  u8 flags (ever active)
 *     u64 since_ms  str reason
 *     u32 n, n x hold     (u8 kind, u32 node, u64 client, u32 uid, u64 since_ms)
 *     u32 n, n x standby  (u32 node, u64 client, u32 rank, u8 kind, u32 uid,
 *                          u64 order, u64 since_ms), in grant order
 *     u32 n, n x candidate (u32 node, u8 flags (deactivated); rank etc.
 *                           are its define's)
 *     u32 n, n x report   (u32 node, u32 flags), by node
 *   u32 n, n x client, by (node, client): u32 node  u64 client  u32 n, n x addr
 *   u32 CRC-32 of everything before it
 *
 * Like the wire format it is canonical: restoring and taking a snapshot
 * again gives the same bytes.
 */

#define SNAP_MAGIC 0x4e535644u /* "DVSN" */
/* 2: nodes that left the group, deactivated candidates; 3: quorum
 * confirmation after members left */
#define SNAP_VERSION 3
#define SNAP_HEADER 16
#define SNAP_TRAILER 4

#define SNODE_MEMBER 0x01
#define SNODE_CONF 0x02
#define SNODE_LEFT 0x04
#define SCAND_DEACTIVATED 0x01
#define SVIPA_EVER_ACTIVE 0x01

/* Smallest encodings of the repeated parts. */
#define SNODE_MIN (4 + 1 + 3 + 4 + 4)
#define SVIPA_MIN (DV_WIRE_ADDR_MIN + 4 + 3 + 8 + 3 + 4 * 4)
#define SHOLD_SIZE (1 + 4 + 8 + 4 + 8)
#define SSTANDBY_SIZE (4 + 8 + 4 + 1 + 4 + 8 + 8)
#define SREPORT_SIZE 8
#define SCREF_MIN (4 + 8 + 4 + DV_WIRE_ADDR_MIN)

static int cref_cmp_ptr(const void *a, const void *b)
{
	const struct cref *x = *(const struct cref *const *)a, *y = *(const struct cref *const *)b;

	if (x->node != y->node)
		return x->node < y->node ? -1 : 1;
	return (x->client > y->client) - (x->client < y->client);
}

static int report_cmp(const void *a, const void *b)
{
	const struct report *x = a, *y = b;

	return (x->node > y->node) - (x->node < y->node);
}

static void snap_node(struct dv_wbuf *w, const struct node *n)
{
	uint8_t flags = (n->member ? SNODE_MEMBER : 0) | (n->has_conf ? SNODE_CONF : 0) | (n->left ? SNODE_LEFT : 0);

	dv_w_u32(w, n->id);
	dv_w_u8(w, flags);
	dv_w_str(w, n->name, sizeof(n->name));
	dv_w_u32(w, (uint32_t)n->n_ranges);
	for (size_t i = 0; i < n->n_ranges; i++)
		dv_w_range(w, &n->ranges[i]);
	dv_w_u32(w, (uint32_t)n->n_defines);
	for (size_t i = 0; i < n->n_defines; i++)
		dv_w_define(w, &n->defines[i]);
}

static int snap_vipa(struct dv_wbuf *w, const struct vipa *v)
{
	struct report *reports = NULL;

	dv_w_addr(w, &v->addr);
	dv_w_u32(w, v->owner);
	dv_w_u8(w, (uint8_t)v->origin);
	dv_w_u8(w, (uint8_t)v->state);
	dv_w_u8(w, v->ever_active ? SVIPA_EVER_ACTIVE : 0);
	dv_w_u64(w, v->since_ms);
	dv_w_str(w, v->reason, sizeof(v->reason));
	dv_w_u32(w, (uint32_t)v->n_holds);
	for (size_t i = 0; i < v->n_holds; i++) {
		const struct dv_hold *h = &v->holds[i];

		dv_w_u8(w, (uint8_t)h->kind);
		dv_w_u32(w, h->node);
		dv_w_u64(w, h->client);
		dv_w_u32(w, h->uid);
		dv_w_u64(w, h->since_ms);
	}
	dv_w_u32(w, (uint32_t)v->n_standbys);
	for (size_t i = 0; i < v->n_standbys; i++) {
		const struct dv_standby *s = &v->standbys[i];

		dv_w_u32(w, s->node);
		dv_w_u64(w, s->client);
		dv_w_u32(w, s->rank);
		dv_w_u8(w, (uint8_t)s->kind);
		dv_w_u32(w, s->uid);
		dv_w_u64(w, s->order);
		dv_w_u64(w, s->since_ms);
	}
	dv_w_u32(w, (uint32_t)v->n_cands);
	for (size_t i = 0; i < v->n_cands; i++) {
		dv_w_u32(w, v->cands[i].node);
		dv_w_u8(w, v->cands[i].deactivated ? SCAND_DEACTIVATED : 0);
	}
	/* At most one report per node, looked up by node: their order is no
	 * state, so they go sorted. */
	if (v->n_reports) {
		reports = malloc(v->n_reports * sizeof(*reports));
		if (!reports)
			return -ENOMEM;
		memcpy(reports, v->reports, v->n_reports * sizeof(*reports));
		qsort(reports, v->n_reports, sizeof(*reports), report_cmp);
	}
	dv_w_u32(w, (uint32_t)v->n_reports);
	for (size_t i = 0; i < v->n_reports; i++) {
		dv_w_u32(w, reports[i].node);
		dv_w_u32(w, reports[i].flags);
	}
	free(reports);
	return 0;
}

int dv_engine_snapshot(const struct dv_engine *e, uint8_t **ret, size_t *ret_len)
{
	struct dv_wbuf w = {0};
	struct vipa **all = NULL;
	struct cref **crefs = NULL;
	size_t n_all = 0, n_crefs = 0;
	int r = 0;

	if (!e || !ret || !ret_len)
		return -EINVAL;
	all = vipa_snapshot(e, &n_all);
	crefs = malloc((e->crefs.n ? e->crefs.n : 1) * sizeof(*crefs));
	if (!all || !crefs) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < e->crefs.cap; i++)
		if (e->crefs.slots[i])
			crefs[n_crefs++] = e->crefs.slots[i];
	qsort(crefs, n_crefs, sizeof(*crefs), cref_cmp_ptr);

	dv_w_u32(&w, SNAP_MAGIC);
	dv_w_u16(&w, SNAP_VERSION);
	dv_w_u16(&w, 0);
	dv_w_u64(&w, 0); /* length, below */
	dv_w_u64(&w, e->seq);
	dv_w_u8(&w, e->quorate ? (e->confirm ? 2 : 1) : 0); /* 2: quorate, confirming */
	if (e->confirm)
		dv_w_str(&w, e->confirm_why, sizeof(e->confirm_why));
	dv_w_u32(&w, (uint32_t)e->n_nodes);
	for (size_t i = 0; i < e->n_nodes; i++)
		snap_node(&w, &e->nodes[i]);
	dv_w_u32(&w, (uint32_t)n_all);
	for (size_t i = 0; i < n_all && r == 0; i++)
		r = snap_vipa(&w, all[i]);
	dv_w_u32(&w, (uint32_t)n_crefs);
	for (size_t i = 0; i < n_crefs; i++) {
		dv_w_u32(&w, crefs[i]->node);
		dv_w_u64(&w, crefs[i]->client);
		dv_w_u32(&w, (uint32_t)crefs[i]->n);
		for (size_t k = 0; k < crefs[i]->n; k++)
			dv_w_addr(&w, &crefs[i]->addrs[k]);
	}
	dv_w_patch_u64(&w, 8, (uint64_t)w.len + SNAP_TRAILER);
	if (!w.err)
		dv_w_u32(&w, dv_crc32(w.data, w.len));
	if (r == 0)
		r = w.err;
out:
	free(all);
	free(crefs);
	if (r < 0) {
		free(w.data);
		return r;
	}
	*ret = w.data;
	*ret_len = w.len;
	return 0;
}

/* A node's ranges (k of them, counted already) and defines. */
static int restore_node_conf(struct node *nd, struct dv_rbuf *r, size_t k)
{
	nd->ranges = calloc(k ? k : 1, sizeof(*nd->ranges));
	if (!nd->ranges)
		return -ENOMEM;
	nd->n_ranges = k;
	for (size_t j = 0; j < k && !r->bad; j++) {
		dv_r_range(r, &nd->ranges[j]);
		/* the engine keeps no local options */
		if (nd->ranges[j].bindwatch || nd->ranges[j].sourcevipa)
			r->bad = true;
	}
	k = dv_r_count(r, MAX_DEFINES, DV_WIRE_DEFINE_MIN);
	if (r->bad)
		return -EBADMSG;
	nd->defines = calloc(k ? k : 1, sizeof(*nd->defines));
	if (!nd->defines)
		return -ENOMEM;
	nd->n_defines = k;
	for (size_t j = 0; j < k && !r->bad; j++) {
		dv_r_define(r, &nd->defines[j]);
		if (j > 0 && dv_addr_cmp(&nd->defines[j - 1].addr, &nd->defines[j].addr) >= 0)
			r->bad = true;
	}
	return r->bad ? -EBADMSG : 0;
}

/* The nodes and the members, into the empty engine t. */
static int restore_nodes(struct dv_engine *t, struct dv_rbuf *r)
{
	size_t n = dv_r_count(r, MAX_NODE_ENTRIES, SNODE_MIN), n_members = 0;

	if (r->bad)
		return -EBADMSG;
	t->nodes = calloc(n ? n : 1, sizeof(*t->nodes));
	if (!t->nodes)
		return -ENOMEM;
	t->cap_nodes = n ? n : 1;
	for (size_t i = 0; i < n; i++) {
		struct node *nd = &t->nodes[i];
		uint8_t flags;
		size_t k;
		int err;

		/* Counted before anything is allocated for it: the caller's
		 * clean-up frees what the entries hold. */
		t->n_nodes = i + 1;
		nd->id = dv_r_u32(r);
		flags = dv_r_u8(r);
		dv_r_str(r, nd->name, sizeof(nd->name));
		k = dv_r_count(r, MAX_RANGES, DV_WIRE_RANGE_MIN);
		/* Only a member can have left the group. */
		if (r->bad || nd->id == 0 || (i > 0 && nd->id <= nd[-1].id) ||
		    (flags & ~(SNODE_MEMBER | SNODE_CONF | SNODE_LEFT)) ||
		    ((flags & SNODE_LEFT) && !(flags & SNODE_MEMBER)))
			return -EBADMSG;
		/* An entry exists for a member or for a configuration; only a
		 * configuration names a node. */
		nd->member = flags & SNODE_MEMBER;
		nd->has_conf = flags & SNODE_CONF;
		nd->left = flags & SNODE_LEFT;
		n_members += nd->member;
		if (nd->has_conf) {
			err = restore_node_conf(nd, r, k);
			if (err < 0)
				return err;
		} else if (!nd->member || nd->name[0] || k || dv_r_u32(r) != 0 || r->bad) {
			/* Nor arrays: the engine drops an entry without a
			 * configuration and frees nothing. */
			return -EBADMSG;
		}
	}
	if (n_members > DV_ENGINE_MAX_NODES)
		return -EBADMSG;
	t->members = malloc((n_members ? n_members : 1) * sizeof(*t->members));
	if (!t->members)
		return -ENOMEM;
	t->cap_members = n_members ? n_members : 1;
	for (size_t i = 0; i < t->n_nodes; i++)
		if (t->nodes[i].member)
			t->members[t->n_members++] = t->nodes[i].id;
	return 0;
}

static bool hold_same(const struct dv_hold *a, const struct dv_hold *b)
{
	return a->kind == b->kind && a->node == b->node && (a->kind != DV_HOLD_API || a->client == b->client);
}

static int restore_holds(struct vipa *v, struct dv_rbuf *r, size_t *api)
{
	size_t n = dv_r_count(r, DV_ENGINE_MAX_HOLDS, SHOLD_SIZE);

	if (r->bad)
		return -EBADMSG;
	v->holds = n ? calloc(n, sizeof(*v->holds)) : NULL;
	if (n && !v->holds)
		return -ENOMEM;
	v->cap_holds = n;
	for (size_t i = 0; i < n; i++) {
		struct dv_hold *h = &v->holds[i];
		uint8_t kind = dv_r_u8(r);

		h->kind = (enum dv_hold_kind)kind;
		h->node = dv_r_u32(r);
		h->client = dv_r_u64(r);
		h->uid = dv_r_u32(r);
		h->since_ms = dv_r_u64(r);
		/* All holds are on the owner, one per identity. */
		if (r->bad || !kind_ok(h->kind) || h->node == 0 || h->node != v->owner)
			return -EBADMSG;
		for (size_t j = 0; j < i; j++)
			if (hold_same(&v->holds[j], h))
				return -EBADMSG;
		v->n_holds = i + 1;
		*api += h->kind == DV_HOLD_API;
	}
	return 0;
}

static int restore_standbys(const struct dv_engine *t, struct vipa *v, struct dv_rbuf *r)
{
	size_t n = dv_r_count(r, DV_ENGINE_MAX_STANDBYS, SSTANDBY_SIZE);

	if (r->bad)
		return -EBADMSG;
	v->standbys = n ? calloc(n, sizeof(*v->standbys)) : NULL;
	if (n && !v->standbys)
		return -ENOMEM;
	v->cap_standbys = n;
	for (size_t i = 0; i < n; i++) {
		struct dv_standby *s = &v->standbys[i];
		uint8_t kind;

		s->node = dv_r_u32(r);
		s->client = dv_r_u64(r);
		s->rank = dv_r_u32(r);
		kind = dv_r_u8(r);
		s->kind = (enum dv_hold_kind)kind;
		s->uid = dv_r_u32(r);
		s->order = dv_r_u64(r);
		s->since_ms = dv_r_u64(r);
		/* Registration numbers are distinct and already used. */
		if (r->bad || s->node == 0 || s->rank < 1 || s->rank >= DV_RANK_DEFINE ||
		    (s->kind != DV_HOLD_API && s->kind != DV_HOLD_SOCKET) || s->order < 1 || s->order > t->seq ||
		    (i > 0 && !standby_before(&v->standbys[i - 1], s)))
			return -EBADMSG;
		for (size_t j = 0; j < i; j++)
			if (v->standbys[j].node == s->node && v->standbys[j].client == s->client)
				return -EBADMSG;
		v->n_standbys = i + 1;
	}
	return 0;
}

static int define_key_cmp(const void *key, const void *elem)
{
	return dv_addr_cmp(key, &((const struct dv_conf_define *)elem)->addr);
}

/* Candidates are the nodes' defines seen from the address: only their order
 * is the VIPA's own. */
static int restore_cands(const struct dv_engine *t, struct vipa *v, struct dv_rbuf *r)
{
	size_t n = dv_r_count(r, MAX_NODE_ENTRIES, 5);

	if (r->bad)
		return -EBADMSG;
	v->cands = n ? calloc(n, sizeof(*v->cands)) : NULL;
	if (n && !v->cands)
		return -ENOMEM;
	v->cap_cands = n;
	for (size_t i = 0; i < n; i++) {
		dv_nodeid_t id = dv_r_u32(r);
		uint8_t flags = dv_r_u8(r);
		const struct node *nd = node_find(t, id);
		const struct dv_conf_define *d;

		if (r->bad || !nd || !nd->has_conf || cand_of(v, id) || (flags & ~SCAND_DEACTIVATED))
			return -EBADMSG;
		d = nd->n_defines ? bsearch(&v->addr, nd->defines, nd->n_defines, sizeof(*d), define_key_cmp) : NULL;
		if (!d)
			return -EBADMSG;
		v->cands[v->n_cands++] = (struct dv_cand){
		    .node = id,
		    .rank = d->rank,
		    .moveable = d->moveable,
		    .trackport = d->trackport,
		    .deactivated = flags & SCAND_DEACTIVATED,
		};
	}
	return 0;
}

static int restore_reports(struct vipa *v, struct dv_rbuf *r)
{
	size_t n = dv_r_count(r, UINT32_MAX, SREPORT_SIZE);

	if (r->bad)
		return -EBADMSG;
	v->reports = n ? calloc(n, sizeof(*v->reports)) : NULL;
	if (n && !v->reports)
		return -ENOMEM;
	v->cap_reports = n;
	for (size_t i = 0; i < n; i++) {
		struct report *p = &v->reports[i];

		p->node = dv_r_u32(r);
		p->flags = dv_r_u32(r);
		if (r->bad || p->node == 0 || (i > 0 && p[-1].node >= p->node))
			return -EBADMSG;
		v->n_reports = i + 1;
	}
	return 0;
}

static bool left_involved(const struct dv_engine *t, const struct vipa *v)
{
	const struct dv_cand *oc = v->owner ? cand_of(v, v->owner) : NULL;

	if (v->owner && (dv_engine_node_left(t, v->owner) || (oc && oc->deactivated)))
		return true;
	for (size_t i = 0; i < v->n_holds; i++)
		if (dv_engine_node_left(t, v->holds[i].node))
			return true;
	for (size_t i = 0; i < v->n_standbys; i++)
		if (dv_engine_node_left(t, v->standbys[i].node))
			return true;
	return false;
}

/* The VIPAs, into t (which has its nodes); *ret_refs counts the entries the
 * client index must have: api holds and standbys. */
static int restore_vipas(struct dv_engine *t, struct dv_rbuf *r, size_t *ret_refs)
{
	size_t n = dv_r_count(r, DV_ENGINE_MAX_VIPAS, SVIPA_MIN), n_cands = 0, n_defines = 0;
	struct dv_addr prev = {0};
	int err;

	if (r->bad)
		return -EBADMSG;
	for (size_t i = 0; i < n; i++) {
		struct dv_addr a;
		struct vipa *v;
		uint8_t origin, state, flags;

		dv_r_addr(r, &a);
		if (r->bad || (i > 0 && dv_addr_cmp(&prev, &a) >= 0))
			return -EBADMSG;
		prev = a;
		v = vipa_new(t, &a);
		if (!v)
			return -ENOMEM;
		v->owner = dv_r_u32(r);
		origin = dv_r_u8(r);
		state = dv_r_u8(r);
		flags = dv_r_u8(r);
		v->since_ms = dv_r_u64(r);
		dv_r_str(r, v->reason, sizeof(v->reason));
		if (r->bad || origin > DV_ORIGIN_BACKUP || state < DV_VS_ACTIVE || state > DV_VS_INACTIVE ||
		    (flags & ~SVIPA_EVER_ACTIVE))
			return -EBADMSG;
		v->origin = (enum dv_origin)origin;
		v->state = (enum dv_vipa_state)state;
		v->ever_active = flags & SVIPA_EVER_ACTIVE;
		/* An owner makes the address active, and marks it for good. */
		if ((v->owner != 0) != (v->state == DV_VS_ACTIVE) || (v->owner && !v->ever_active))
			return -EBADMSG;
		err = restore_holds(v, r, ret_refs);
		if (err == 0)
			err = restore_standbys(t, v, r);
		if (err == 0)
			err = restore_cands(t, v, r);
		if (err == 0)
			err = restore_reports(v, r);
		if (err < 0)
			return err;
		/* Something keeps every VIPA the engine knows. */
		if (!v->n_holds && !v->n_standbys && !v->n_cands)
			return -EBADMSG;
		/* A node that left the group, or whose define of the address
		 * is deactivated, owns nothing and waits for nothing. */
		if (left_involved(t, v))
			return -EBADMSG;
		*ret_refs += v->n_standbys;
		n_cands += v->n_cands;
	}
	/* Every define of every configuration is a candidate of its address
	 * (each candidate matched a distinct define). */
	for (size_t i = 0; i < t->n_nodes; i++)
		n_defines += t->nodes[i].n_defines;
	return n_cands == n_defines ? 0 : -EBADMSG;
}

/* How many entries of the index (node, client) must have for v. */
static size_t cref_need(const struct vipa *v, dv_nodeid_t node, uint64_t client)
{
	return (hold_find(v, DV_HOLD_API, node, client) >= 0) + (standby_find(v, node, client) >= 0);
}

static int addr_cmp_void(const void *a, const void *b)
{
	return dv_addr_cmp(a, b);
}

/* The client index, which must list exactly the api holds and standbys. */
static int restore_crefs(struct dv_engine *t, struct dv_rbuf *r, size_t refs)
{
	size_t n = dv_r_count(r, UINT32_MAX, SCREF_MIN), total = 0;
	struct dv_addr *sorted = NULL;
	const struct cref *prev = NULL;
	int err = -EBADMSG;

	if (r->bad)
		return -EBADMSG;
	for (size_t i = 0; i < n; i++) {
		struct cref key = {0}, *c;
		const struct cref *kp = &key;
		size_t m;

		key.node = dv_r_u32(r);
		key.client = dv_r_u64(r);
		m = dv_r_count(r, UINT32_MAX, DV_WIRE_ADDR_MIN);
		if (r->bad || key.node == 0 || m == 0 || (prev && cref_cmp_ptr(&prev, &kp) >= 0))
			goto out;
		/* Into the table once the key is known: it is hashed by it. */
		c = calloc(1, sizeof(*c));
		if (c)
			*c = key;
		if (!c || dv_hashtab_put(&t->crefs, c, cref_hash) < 0) {
			free(c);
			err = -ENOMEM;
			goto out;
		}
		prev = c;
		c->addrs = calloc(m, sizeof(*c->addrs));
		sorted = calloc(m, sizeof(*sorted));
		if (!c->addrs || !sorted) {
			err = -ENOMEM;
			goto out;
		}
		c->cap = m;
		for (size_t k = 0; k < m && !r->bad; k++) {
			dv_r_addr(r, &c->addrs[k]);
			c->n = k + 1;
		}
		if (r->bad)
			goto out;
		/* Each address as often as the client holds or waits for it. */
		memcpy(sorted, c->addrs, m * sizeof(*sorted));
		qsort(sorted, m, sizeof(*sorted), addr_cmp_void);
		for (size_t k = 0; k < m;) {
			const struct vipa *v = vipa_find(t, &sorted[k]);
			size_t run = 1;

			while (k + run < m && dv_addr_eq(&sorted[k], &sorted[k + run]))
				run++;
			if (!v || cref_need(v, c->node, c->client) != run)
				goto out;
			k += run;
		}
		free(sorted);
		sorted = NULL;
		total += m;
	}
	/* Every listed address is needed; together with the count, every hold
	 * and standby is listed. */
	err = total == refs ? 0 : -EBADMSG;
out:
	free(sorted);
	return err;
}

static int restore_parse(struct dv_engine *t, const uint8_t *buf, size_t len)
{
	struct dv_rbuf r = {.data = buf, .len = len - SNAP_TRAILER};
	size_t refs = 0;
	int err;

	if (dv_r_u32(&r) != SNAP_MAGIC || dv_r_u16(&r) != SNAP_VERSION || dv_r_u16(&r) != 0 ||
	    dv_r_u64(&r) != (uint64_t)len)
		return -EBADMSG;
	t->seq = dv_r_u64(&r);
	{
		uint8_t q = dv_r_u8(&r);

		if (q > 2)
			return -EBADMSG;
		t->quorate = q != 0;
		t->confirm = q == 2;
		if (t->confirm)
			dv_r_str(&r, t->confirm_why, sizeof(t->confirm_why));
	}
	if (r.bad)
		return -EBADMSG;
	err = restore_nodes(t, &r);
	if (err == 0)
		err = restore_vipas(t, &r, &refs);
	if (err == 0)
		err = restore_crefs(t, &r, refs);
	if (err < 0)
		return err;
	dv_r_end(&r);
	return r.bad ? -EBADMSG : 0;
}

/* Swap the replicated state of a and b, not who they are nor their
 * buffers for effects. */
static void engine_swap_state(struct dv_engine *a, struct dv_engine *b)
{
#define SWAP(f)                                                                                                        \
	do {                                                                                                           \
		__typeof__(a->f) tmp_ = a->f;                                                                          \
		a->f = b->f;                                                                                           \
		b->f = tmp_;                                                                                           \
	} while (0)
	SWAP(quorate);
	SWAP(confirm);
	{
		char tmp[REASON_MAX];

		memcpy(tmp, a->confirm_why, sizeof(tmp));
		memcpy(a->confirm_why, b->confirm_why, sizeof(tmp));
		memcpy(b->confirm_why, tmp, sizeof(tmp));
	}
	SWAP(seq);
	SWAP(n_nodes);
	SWAP(cap_nodes);
	SWAP(nodes);
	SWAP(n_members);
	SWAP(cap_members);
	SWAP(members);
	SWAP(vipas);
	SWAP(crefs);
#undef SWAP
}

static bool want_installed(const struct dv_engine *e, dv_nodeid_t self, const struct vipa *v)
{
	return e->quorate && v->owner != 0 && v->owner == self && v->state == DV_VS_ACTIVE;
}

int dv_engine_restore(struct dv_engine *e, const uint8_t *buf, size_t len, struct dv_effects *fx)
{
	struct dv_engine *t;
	struct vipa **olds = NULL, **news = NULL;
	struct dv_addr *downs = NULL, *ups = NULL;
	size_t n_old = 0, n_new = 0, n_down = 0, n_up = 0;
	int err;

	if (!e)
		return -EINVAL;
	if (!buf || len < SNAP_HEADER + SNAP_TRAILER ||
	    dv_crc32(buf, len - SNAP_TRAILER) != ((uint32_t)buf[len - 4] | (uint32_t)buf[len - 3] << 8 |
						  (uint32_t)buf[len - 2] << 16 | (uint32_t)buf[len - 1] << 24))
		return -EBADMSG;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	err = restore_parse(t, buf, len);
	if (err < 0)
		goto out;

	/* The local effects, worked out before anything changes: what self
	 * had installed and no longer owns goes, what it owns now comes. */
	err = -ENOMEM;
	olds = vipa_snapshot(e, &n_old);
	news = vipa_snapshot(t, &n_new);
	downs = malloc((n_old ? n_old : 1) * sizeof(*downs));
	ups = malloc((n_new ? n_new : 1) * sizeof(*ups));
	if (!olds || !news || !downs || !ups)
		goto out;
	for (size_t i = 0; i < n_old; i++) {
		const struct vipa *nv = vipa_find(t, &olds[i]->addr);

		if (olds[i]->installed && !(nv && want_installed(t, e->self, nv)))
			downs[n_down++] = olds[i]->addr;
	}
	for (size_t i = 0; i < n_new; i++) {
		const struct vipa *ov = vipa_find(e, &news[i]->addr);

		news[i]->installed = want_installed(t, e->self, news[i]);
		if (news[i]->installed && !(ov && ov->installed))
			ups[n_up++] = news[i]->addr;
	}
	/* Room for the effects first: nothing changes unless all fit. */
	if (fx && grow((void **)&fx->v, &fx->cap, fx->n + n_down + n_up, sizeof(*fx->v)) < 0)
		goto out;
	engine_swap_state(e, t);
	err = 0;
	for (size_t i = 0; i < n_down; i++)
		fx_local(e, fx, &downs[i], false);
	for (size_t i = 0; i < n_up; i++)
		fx_local(e, fx, &ups[i], true);
out:
	free(olds);
	free(news);
	free(downs);
	free(ups);
	/* t holds the old state on success, the partial new one on failure. */
	engine_clear(t);
	free(t);
	return err;
}
