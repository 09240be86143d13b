/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The engine's state (engine_int.h): the node table, the VIPA table with its
 * client index, holds and standbys, and settling a VIPA after a change
 * (who owns it, what is installed here).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addrset.h"
#include "engine_int.h"

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

uint32_t cref_hash(const void *item)
{
	const struct cref *c = item;

	return cref_hash2(c->node, c->client);
}

static bool cref_match(const void *item, const void *key)
{
	const struct cref *c = item;
	const struct cref_key *k = key;

	return c->node == k->node && c->client == k->client;
}

/* ---- nodes ---- */

struct node *node_find(const struct dv_engine *e, dv_nodeid_t id)
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
struct node *node_add(struct dv_engine *e, dv_nodeid_t id)
{
	struct node *n = node_find(e, id);
	size_t i;

	if (n)
		return n;
	if (e->n_nodes >= MAX_NODE_ENTRIES)
		return NULL;
	if (engine_grow((void **)&e->nodes, &e->cap_nodes, e->n_nodes + 1, sizeof(*e->nodes)) < 0)
		return NULL;
	for (i = 0; i < e->n_nodes && e->nodes[i].id < id; i++)
		;
	memmove(&e->nodes[i + 1], &e->nodes[i], (e->n_nodes - i) * sizeof(*e->nodes));
	e->n_nodes++;
	e->nodes[i] = (struct node){.id = id};
	return &e->nodes[i];
}

void node_conf_free(struct node *n)
{
	free(n->ranges);
	free(n->defines);
	n->ranges = NULL;
	n->defines = NULL;
	n->n_ranges = n->n_defines = 0;
	n->has_conf = false;
}

bool node_is_member(const struct dv_engine *e, dv_nodeid_t id)
{
	const struct node *n = node_find(e, id);

	return n && n->member;
}

/* The node's published name, else "node N". */
const char *node_label(const struct dv_engine *e, dv_nodeid_t id, char buf[static LABEL_MAX])
{
	const struct node *n = node_find(e, id);

	/* Always fills buf: callers may use either. */
	if (n && n->name[0])
		snprintf(buf, LABEL_MAX, "%s", n->name);
	else
		snprintf(buf, LABEL_MAX, "node %" PRIu32, id);
	return buf;
}

const struct dv_conf_range *node_range(const struct node *n, const struct dv_addr *a)
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

__attribute__((format(printf, 2, 3))) void vipa_set_reason(struct vipa *v, const char *fmt, ...)
{
	char buf[REASON_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (v->reason && strcmp(v->reason, buf) == 0)
		return;
	free(v->reason);
	/* Without memory, no reason: it informs, it decides nothing. */
	v->reason = buf[0] ? strdup(buf) : NULL;
}

/* Whether new owners may be chosen now (see `confirm`). */
bool engine_may_assign(const struct dv_engine *e)
{
	return e->quorate && !e->confirm;
}

const char *engine_no_assign_why(const struct dv_engine *e)
{
	return e->quorate ? "quorum is being confirmed after members left" : "this node's partition is not quorate";
}

void vipa_touch(struct dv_engine *e, struct vipa *v)
{
	if (v->dirty)
		return;
	if (engine_grow((void **)&e->dirty, &e->cap_dirty, e->n_dirty + 1, sizeof(*e->dirty)) < 0) {
		e->sync_all = true;
		return;
	}
	e->dirty[e->n_dirty++] = v->addr;
	v->dirty = true;
}

/* Who should have the address on its interface: the owner, while the
 * address is active under quorum. */
static dv_nodeid_t vipa_desired(const struct dv_engine *e, const struct vipa *v)
{
	return e->quorate && v->owner != 0 && v->state == DV_VS_ACTIVE ? v->owner : 0;
}

/*
 * The hand-over. When the address passes from one member to another (a
 * standby granted after the holder ended, a takeback, a move), both apply
 * the same event, but not at the same instant: the new owner puts the
 * address on its interface only once the previous one has reported it
 * removed (ADDR_STATE REMOVED, one multicast later). A previous owner that
 * left the membership reports nothing and needs not: it dropped its
 * addresses with its quorum, or its lease ends them.
 */
static void vipa_update_on(struct dv_engine *e, struct vipa *v)
{
	dv_nodeid_t want = vipa_desired(e, v);

	if (v->on != want && (v->on == 0 || !node_is_member(e, v->on)))
		v->on = want;
}

bool vipa_wants_local(const struct dv_engine *e, dv_nodeid_t self, const struct vipa *v)
{
	return self != 0 && v->on == self && vipa_desired(e, v) == self;
}

void vipa_removed_on(struct dv_engine *e, struct vipa *v, dv_nodeid_t node)
{
	if (v->on != node || vipa_desired(e, v) == node)
		return; /* not its to hand over, or its again */
	v->on = 0;
	vipa_touch(e, v);
}

void vipa_sync_local(struct dv_engine *e, struct vipa *v)
{
	bool want;

	vipa_update_on(e, v);
	want = vipa_wants_local(e, e->self, v);

	v->dirty = false;
	if (want == v->installed)
		return;
	v->installed = want;
	fx_local(e, e->out, &v->addr, want);
}

/* ---- client index ---- */

struct cref *cref_find(const struct dv_engine *e, dv_nodeid_t node, uint64_t client)
{
	struct cref_key k = {node, client};
	void **slot = dv_hashtab_find(&e->crefs, cref_hash2(node, client), cref_match, &k);

	return slot ? *slot : NULL;
}

void cref_free(struct cref *c)
{
	struct cref_addr *ca;

	if (!c)
		return;
	DV_HASHTAB_FOREACH(ca, &c->addrs)
		free(ca);
	dv_hashtab_clear(&c->addrs);
	free(c);
}

static int cmp_cref_addr(const void *a, const void *b)
{
	const struct cref_addr *x = *(const struct cref_addr *const *)a, *y = *(const struct cref_addr *const *)b;

	return dv_addr_cmp(&x->a, &y->a);
}

const struct cref_addr **cref_sorted(const struct cref *c, size_t *ret_n)
{
	size_t n = 0, cap = dv_hashtab_size(&c->addrs);
	const struct cref_addr **v = malloc((cap ? cap : 1) * sizeof(*v));
	struct cref_addr *ca;

	if (!v)
		return NULL;
	DV_HASHTAB_FOREACH(ca, &c->addrs)
		v[n++] = ca;
	qsort(v, n, sizeof(*v), cmp_cref_addr);
	*ret_n = n;
	return v;
}

int cref_add(struct dv_engine *e, dv_nodeid_t node, uint64_t client, const struct dv_addr *a)
{
	struct cref *c = cref_find(e, node, client);
	struct cref_addr *ca;

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
	ca = dv_hashtab_get(&c->addrs, dv_addr_hash(a), dv_addr_item_match, a);
	if (!ca) {
		ca = calloc(1, sizeof(*ca));
		if (ca)
			ca->a = *a;
		if (!ca || dv_hashtab_put(&c->addrs, ca, dv_addr_item_hash) < 0) {
			free(ca);
			if (c->n == 0) {
				struct cref_key k = {node, client};

				dv_hashtab_del(&e->crefs, dv_hashtab_find(&e->crefs, cref_hash(c), cref_match, &k),
					       cref_hash);
				cref_free(c);
			}
			return -ENOMEM;
		}
	}
	ca->count++;
	c->n++;
	return 0;
}

void cref_del(struct dv_engine *e, dv_nodeid_t node, uint64_t client, const struct dv_addr *a)
{
	struct cref_key k = {node, client};
	void **slot = dv_hashtab_find(&e->crefs, cref_hash2(node, client), cref_match, &k);
	struct cref *c;
	void **as;

	if (!slot)
		return;
	c = *slot;
	as = dv_hashtab_find(&c->addrs, dv_addr_hash(a), dv_addr_item_match, a);
	if (as) {
		struct cref_addr *ca = *as;

		c->n--;
		if (--ca->count == 0) {
			dv_hashtab_del(&c->addrs, as, dv_addr_item_hash);
			free(ca);
		}
	}
	if (c->n == 0) {
		dv_hashtab_del(&e->crefs, slot, cref_hash);
		cref_free(c);
	}
}

/* ---- VIPAs ---- */

struct vipa *vipa_find(const struct dv_engine *e, const struct dv_addr *a)
{
	void **slot = dv_hashtab_find(&e->vipas, dv_addr_hash(a), vipa_match, a);

	return slot ? *slot : NULL;
}

struct vipa *vipa_new(struct dv_engine *e, const struct dv_addr *a)
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
	vipa_order_stale(e);
	return v;
}

void vipa_destroy(struct vipa *v)
{
	free(v->reason);
	free(v->holds);
	free(v->standbys);
	free(v->cands);
	free(v->reports);
	free(v->quiesced);
	free(v);
}

static void vipa_remove(struct dv_engine *e, struct vipa *v)
{
	void **slot = dv_hashtab_find(&e->vipas, vipa_hash(v), vipa_match, &v->addr);

	if (v->installed)
		fx_local(e, e->out, &v->addr, false);
	while (v->n_holds) {
		const struct dv_hold *h = &v->holds[--v->n_holds];

		uidn_count(e, h->node, h->uid, -1);
		if (h->kind == DV_KIND_API)
			cref_del(e, h->node, h->client, &v->addr);
	}
	while (v->n_standbys) {
		const struct dv_standby *sb = &v->standbys[--v->n_standbys];

		uidn_count(e, sb->node, sb->uid, -1);
		cref_del(e, sb->node, sb->client, &v->addr);
	}
	if (slot)
		dv_hashtab_del(&e->vipas, slot, vipa_hash);
	vipa_order_stale(e);
	vipa_destroy(v);
}

static uint32_t uidn_hash(const void *item)
{
	return ((const struct uidn *)item)->uid * 2654435761u;
}

static bool uidn_match(const void *item, const void *key)
{
	return ((const struct uidn *)item)->uid == *(const uid_t *)key;
}

void uidn_count(struct dv_engine *e, dv_nodeid_t node, uid_t uid, int delta)
{
	struct uidn k = {.uid = uid}, *u;
	void **slot;

	if (node != e->self)
		return;
	slot = dv_hashtab_find(&e->uidns, uidn_hash(&k), uidn_match, &uid);
	u = slot ? *slot : NULL;
	if (!u) {
		if (delta < 0)
			return;
		/* Out of memory: the count is low, never high; a user then
		 * gets a little more than the cap, nobody is refused. */
		u = calloc(1, sizeof(*u));
		if (!u)
			return;
		u->uid = uid;
		if (dv_hashtab_put(&e->uidns, u, uidn_hash) < 0) {
			free(u);
			return;
		}
	}
	if (delta < 0 && u->n <= (size_t)-delta) {
		dv_hashtab_del(&e->uidns, slot, uidn_hash); /* found above: nothing was put since */
		free(u);
		return;
	}
	u->n += (size_t)(ssize_t)delta;
}

size_t dv_engine_uid_vipas(const struct dv_engine *e, uid_t uid)
{
	struct uidn k = {.uid = uid};
	const struct uidn *u = dv_hashtab_get(&e->uidns, uidn_hash(&k), uidn_match, &uid);

	return u ? u->n : 0;
}

void uidn_rebuild(struct dv_engine *e)
{
	struct uidn *u;
	struct vipa *v;

	DV_HASHTAB_FOREACH(u, &e->uidns)
		free(u);
	dv_hashtab_clear(&e->uidns);
	DV_HASHTAB_FOREACH(v, &e->vipas) {
		for (size_t i = 0; i < v->n_holds; i++)
			uidn_count(e, v->holds[i].node, v->holds[i].uid, 1);
		for (size_t i = 0; i < v->n_standbys; i++)
			uidn_count(e, v->standbys[i].node, v->standbys[i].uid, 1);
	}
}

/* Holds are identified by (node, client) for api, by (node, kind) otherwise. */
ssize_t hold_find(const struct vipa *v, enum dv_kind kind, dv_nodeid_t node, uint64_t client)
{
	for (size_t i = 0; i < v->n_holds; i++) {
		const struct dv_hold *h = &v->holds[i];

		if (h->kind == kind && h->node == node && (kind != DV_KIND_API || h->client == client))
			return (ssize_t)i;
	}
	return -1;
}

ssize_t standby_find(const struct vipa *v, dv_nodeid_t node, uint64_t client)
{
	for (size_t i = 0; i < v->n_standbys; i++)
		if (v->standbys[i].node == node && v->standbys[i].client == client)
			return (ssize_t)i;
	return -1;
}

int hold_add(struct dv_engine *e, struct vipa *v, enum dv_kind kind, dv_nodeid_t node, uint64_t client, uid_t uid)
{
	if (engine_grow((void **)&v->holds, &v->cap_holds, v->n_holds + 1, sizeof(*v->holds)) < 0)
		return -ENOMEM;
	if (kind == DV_KIND_API && cref_add(e, node, client, &v->addr) < 0)
		return -ENOMEM;
	v->holds[v->n_holds++] = (struct dv_hold){
		.kind = kind,
		.node = node,
		.client = client,
		.uid = uid,
		.since_ms = e->now,
	};
	uidn_count(e, node, uid, 1);
	vipa_touch(e, v);
	return 0;
}

void hold_del(struct dv_engine *e, struct vipa *v, size_t i)
{
	struct dv_hold h = v->holds[i];

	memmove(&v->holds[i], &v->holds[i + 1], (v->n_holds - i - 1) * sizeof(*v->holds));
	v->n_holds--;
	uidn_count(e, h.node, h.uid, -1);
	if (h.kind == DV_KIND_API)
		cref_del(e, h.node, h.client, &v->addr);
	vipa_touch(e, v);
}

void standby_del(struct dv_engine *e, struct vipa *v, size_t i)
{
	struct dv_standby s = v->standbys[i];

	memmove(&v->standbys[i], &v->standbys[i + 1], (v->n_standbys - i - 1) * sizeof(*v->standbys));
	v->n_standbys--;
	uidn_count(e, s.node, s.uid, -1);
	cref_del(e, s.node, s.client, &v->addr);
	vipa_touch(e, v);
}

bool standby_before(const struct dv_standby *a, const struct dv_standby *b)
{
	return a->rank > b->rank || (a->rank == b->rank && a->order < b->order);
}

/* Insert s (not in the array) at its place in grant order. */
void standby_place(struct dv_engine *e, struct vipa *v, const struct dv_standby *s)
{
	size_t i;

	uidn_count(e, s->node, s->uid, 1);
	for (i = 0; i < v->n_standbys && !standby_before(s, &v->standbys[i]); i++)
		;
	memmove(&v->standbys[i + 1], &v->standbys[i], (v->n_standbys - i) * sizeof(*v->standbys));
	v->standbys[i] = *s;
	v->n_standbys++;
}

/* v's owner is about to change: the first time in this apply, it goes in
 * the list of changes with its owner before (dv_engine_owner_changes). */
static void vipa_owner_note(struct dv_engine *e, struct vipa *v)
{
	if (v->noted == e->applying)
		return;
	v->noted = e->applying;
	if (engine_grow((void **)&e->changed, &e->cap_changed, e->n_changed + 1, sizeof(*e->changed)) < 0) {
		e->changed_lost = true;
		return;
	}
	e->changed[e->n_changed++] = (struct dv_owner_change){.addr = v->addr, .owner_was = v->owner};
}

void vipa_set_owner(struct dv_engine *e, struct vipa *v, dv_nodeid_t node)
{
	if (v->owner != node) {
		vipa_owner_note(e, v);
		v->owner = node;
		v->since_ms = e->now;
	}
	if (node)
		v->ever_active = true;
	vipa_touch(e, v);
}

const char *hold_desc(const struct dv_engine *e, enum dv_kind kind, dv_nodeid_t node, uint64_t client,
		      char buf[static DESC_MAX])
{
	char nl[LABEL_MAX];

	switch (kind) {
	case DV_KIND_OPERATOR:
		snprintf(buf, DESC_MAX, "the operator on %s", node_label(e, node, nl));
		break;
	case DV_KIND_SOCKET:
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
void hold_end_except(struct dv_engine *e, struct vipa *v, dv_nodeid_t keep, const char *why)
{
	size_t i = 0;

	while (i < v->n_holds) {
		struct dv_hold h = v->holds[i];

		if (h.node == keep) {
			i++;
			continue;
		}
		hold_del(e, v, i);
		if (h.kind == DV_KIND_API)
			fx_notify(e, h.node, h.client, &v->addr, DV_NOTIFY_LOST, "%s", why);
	}
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
	vipa_set_owner(e, v, s.node);
	vipa_set_reason(v, "standby client %" PRIu64 " (rank %u) on %s granted after %s", s.client, s.rank,
			node_label(e, s.node, nl), why);
	fx_notify(e, s.node, s.client, &v->addr, DV_NOTIFY_GRANTED,
		  "%s is now active on %s (standby rank %u, after %s)", dv_addr_fmt(&v->addr, ab),
		  node_label(e, s.node, nl), s.rank, why);
}

/*
 * Re-derive owner, origin and state of v after its holds, standbys or
 * candidates, the membership or the quorum changed. Frees v when nothing
 * keeps it: do not use v afterwards.
 */
void vipa_settle(struct dv_engine *e, struct vipa *v, const char *why)
{
	bool was_define = v->origin == DV_ORIGIN_DEFINE || v->origin == DV_ORIGIN_BACKUP;
	char hd[DESC_MAX];

	vipa_touch(e, v);
	if (vipa_is_define(e, v)) {
		define_settle(e, v, why);
		return;
	}
	if (v->n_holds == 0 && v->n_standbys > 0 && engine_may_assign(e))
		grant_standby(e, v, why);
	if (v->n_holds > 0) {
		const struct dv_hold *h = &v->holds[0];

		vipa_set_owner(e, v, h->node);
		v->origin = hold_origin(h->kind);
		v->state = DV_VS_ACTIVE;
		if (was_define)
			vipa_set_reason(v, "no longer stack-managed; kept by %s",
					hold_desc(e, h->kind, h->node, h->client, hd));
		return;
	}
	vipa_set_owner(e, v, 0);
	v->origin = DV_ORIGIN_NONE;
	if (v->n_standbys > 0) {
		v->state = DV_VS_WAITING;
		vipa_set_reason(v, "no holder after %s; %zu standby(s) wait: %s", why, v->n_standbys,
				engine_no_assign_why(e));
		return;
	}
	if (v->n_cands > 0) {
		v->state = DV_VS_INACTIVE;
		vipa_set_reason(v, "defined only by nodes outside the membership");
		return;
	}
	vipa_remove(e, v);
}

static int vipa_cmp_ptr(const void *a, const void *b)
{
	return dv_addr_cmp(&(*(struct vipa *const *)a)->addr, &(*(struct vipa *const *)b)->addr);
}

void vipa_order_stale(const struct dv_engine *e)
{
	if (e->order)
		e->order->valid = false;
}

/* Every VIPA, in address order so that effects come in a stable order: a
 * copy the caller frees (and may remove VIPAs while it walks it). */
struct vipa **vipa_sorted(const struct dv_engine *e, size_t *ret_n)
{
	struct vipa_order *o = e->order;
	struct vipa **all = malloc((e->vipas.n ? e->vipas.n : 1) * sizeof(*all));
	size_t n = 0;

	if (!all)
		return NULL;
	if (o && o->valid && o->n == e->vipas.n) {
		if (o->n) /* o->v may be NULL */
			memcpy(all, o->v, o->n * sizeof(*all));
		*ret_n = o->n;
		return all;
	}
	for (size_t i = 0; i < e->vipas.cap; i++)
		if (e->vipas.slots[i])
			all[n++] = e->vipas.slots[i];
	qsort(all, n, sizeof(*all), vipa_cmp_ptr);
	*ret_n = n;
	/* Kept if there is room; else sorted again next time. */
	if (o && (n <= o->cap || engine_grow((void **)&o->v, &o->cap, n, sizeof(*o->v)) == 0)) {
		if (n)
			memcpy(o->v, all, n * sizeof(*all));
		o->n = n;
		o->valid = true;
	}
	return all;
}
