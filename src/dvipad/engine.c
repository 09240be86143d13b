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
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "engine_int.h"

/* ---- small helpers ---- */

int engine_grow(void **p, size_t *cap, size_t need, size_t size)
{
	size_t n;
	void *q;

	if (need <= *cap)
		return 0;
	/* Most arrays of a VIPA (its holds, the reports) stay at one: at
	 * 65,536 VIPAs a first size of 4 cost several MiB. */
	n = *cap ? *cap * 2 : 1;
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

bool hold_kind_ok(enum dv_kind k)
{
	return k == DV_KIND_API || k == DV_KIND_OPERATOR || k == DV_KIND_SOCKET;
}

enum dv_origin hold_origin(enum dv_kind k)
{
	switch (k) {
	case DV_KIND_SOCKET:
		return DV_ORIGIN_BIND;
	case DV_KIND_OPERATOR:
		return DV_ORIGIN_OPERATOR;
	default:
		return DV_ORIGIN_API;
	}
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

	if (engine_grow((void **)&fx->v, &fx->cap, fx->n + 1, sizeof(*fx->v)) < 0) {
		e->err = -ENOMEM;
		return NULL;
	}
	f = &fx->v[fx->n++];
	memset(f, 0, sizeof(*f));
	f->type = type;
	return f;
}

void fx_local(struct dv_engine *e, struct dv_effects *fx, const struct dv_addr *a, bool up)
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

/* A reply or a notice to one of this node's clients, with its reason. */
__attribute__((format(printf, 5, 0))) static struct dv_effect *fx_message(struct dv_engine *e, enum dv_effect_type type,
									  uint64_t client, const struct dv_addr *a,
									  const char *fmt, va_list ap)
{
	struct dv_effect *f = fx_add(e, &e->fx, type);

	if (!f)
		return NULL;
	f->client = client;
	f->addr = *a;
	vsnprintf(f->reason, sizeof(f->reason), fmt, ap);
	return f;
}

__attribute__((format(printf, 7, 8))) void fx_reply(struct dv_engine *e, const struct dv_event *ev, uint64_t client,
						    uint32_t seq, const struct dv_addr *a, enum dv_result r,
						    const char *fmt, ...)
{
	struct dv_effect *f;
	va_list ap;

	if (ev->node != e->self || !e->out)
		return;
	va_start(ap, fmt);
	f = fx_message(e, DV_FX_REPLY, client, a, fmt, ap);
	va_end(ap);
	if (f) {
		f->seq = seq;
		f->result = r;
	}
}

__attribute__((format(printf, 6, 7))) void fx_notify(struct dv_engine *e, dv_nodeid_t node, uint64_t client,
						     const struct dv_addr *a, enum dv_notify what, const char *fmt, ...)
{
	struct dv_effect *f;
	va_list ap;

	if (node != e->self || !e->out)
		return;
	va_start(ap, fmt);
	f = fx_message(e, DV_FX_NOTIFY, client, a, fmt, ap);
	va_end(ap);
	if (f)
		f->what = what;
}

static int check_node_config(const struct dv_event *ev)
{
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

static int check_membership(const struct dv_event *ev)
{
	if (ev->membership.n > DV_ENGINE_MAX_NODES || (ev->membership.n && !ev->membership.nodes))
		return -EINVAL;
	for (size_t i = 0; i < ev->membership.n; i++)
		if (ev->membership.nodes[i] == 0)
			return -EINVAL;
	return 0;
}

/* Well-formedness only; no state is looked at. */
static int event_check(const struct dv_event *ev)
{
	switch (ev->type) {
	case DV_EV_NODE_CONFIG:
		return check_node_config(ev);
	case DV_EV_CLAIM:
	case DV_EV_RELEASE:
		/* claim and release share their layout */
		if (ev->node == 0 || !family_ok(&ev->claim.addr) || !hold_kind_ok(ev->claim.kind))
			return -EINVAL;
		return 0;
	case DV_EV_STANDBY:
		/* Rank and kind are checked as requests: they get a reply. */
		return ev->node == 0 || !family_ok(&ev->standby.addr) ? -EINVAL : 0;
	case DV_EV_CLIENT_GONE:
	case DV_EV_NODE_ADMIN:
		return ev->node == 0 ? -EINVAL : 0;
	case DV_EV_DIST_PINS:
		return ev->node == 0 || !family_ok(&ev->dist_pins.addr) || ev->dist_pins.port == 0 ||
				       ev->dist_pins.n > DV_DIST_PINS_MAX || (ev->dist_pins.n && !ev->dist_pins.pins)
			       ? -EINVAL
			       : 0;
	case DV_EV_MOVING:
		return ev->node == 0 || !family_ok(&ev->moving.addr) || ev->moving.n > DV_DIST_PINS_MAX ||
				       (ev->moving.n && !ev->moving.pins)
			       ? -EINVAL
			       : 0;
	case DV_EV_ADDR_STATE:
		return ev->node == 0 || !family_ok(&ev->addr_state.addr) ? -EINVAL : 0;
	case DV_EV_PORT_SLICE:
		return ev->node == 0 || !family_ok(&ev->port_slice.addr) || ev->port_slice.blocks > DV_SLICE_POOL_BLOCKS
			       ? -EINVAL
			       : 0;
	case DV_EV_MEMBERSHIP:
		return check_membership(ev);
	case DV_EV_QUORUM:
		return 0;
	case DV_EV_MOVE:
		return ev->node == 0 || !family_ok(&ev->move.addr) ? -EINVAL : 0;
	case DV_EV_DEFINE_STATE:
		return ev->node == 0 || !family_ok(&ev->define_state.addr) ? -EINVAL : 0;
	case DV_EV_QUIESCE:
		return ev->node == 0 || ev->quiesce.target == 0 || !family_ok(&ev->quiesce.addr) ? -EINVAL : 0;
	default:
		return -EINVAL;
	}
}

static void flush(struct dv_engine *e)
{
	if (e->sync_all) {
		for (size_t i = 0; i < e->vipas.cap; i++)
			if (e->vipas.slots[i])
				vipa_sync_local(e, e->vipas.slots[i]);
		e->sync_all = false;
	}
	for (size_t i = 0; i < e->n_dirty; i++) {
		struct vipa *v = vipa_find(e, &e->dirty[i]);

		if (v)
			vipa_sync_local(e, v);
	}
	e->n_dirty = 0;
	/* This event's owner changes become the last event's (swapped). */
	{
		struct dv_owner_change *t = e->last;
		size_t cap = e->cap_last;

		e->last = e->changed;
		e->cap_last = e->cap_changed;
		e->n_last = e->n_changed;
		e->last_complete = !e->changed_lost;
		e->changed = t;
		e->cap_changed = cap;
		e->n_changed = 0;
		e->changed_lost = false;
	}

	/* Local effects first: the address is in place before anyone is told. */
	if (e->out && e->fx.n) {
		if (engine_grow((void **)&e->out->v, &e->out->cap, e->out->n + e->fx.n, sizeof(*e->out->v)) < 0) {
			e->err = -ENOMEM;
		} else {
			memcpy(&e->out->v[e->out->n], e->fx.v, e->fx.n * sizeof(*e->fx.v));
			e->out->n += e->fx.n;
		}
	}
	e->fx.n = 0;
	e->out = NULL;
}

/* Carried for dist.c and dist_move.c (the daemon reads them from the
 * stream), not state. */
static int ev_dist_pins(struct dv_engine *e, const struct dv_event *ev)
{
	(void)e;
	(void)ev;
	return 0;
}

/* event_check() admits only these types. */
static int (*const handlers[DV_EV_LAST + 1])(struct dv_engine *e, const struct dv_event *ev) = {
	[DV_EV_NODE_CONFIG] = ev_node_config,
	[DV_EV_CLAIM] = ev_claim,
	[DV_EV_RELEASE] = ev_release,
	[DV_EV_STANDBY] = ev_standby,
	[DV_EV_CLIENT_GONE] = ev_client_gone,
	[DV_EV_ADDR_STATE] = ev_addr_state,
	[DV_EV_MEMBERSHIP] = ev_membership,
	[DV_EV_QUORUM] = ev_quorum,
	[DV_EV_MOVE] = ev_move,
	[DV_EV_DEFINE_STATE] = ev_define_state,
	[DV_EV_NODE_ADMIN] = ev_node_admin,
	[DV_EV_DIST_PINS] = ev_dist_pins,
	[DV_EV_PORT_SLICE] = ev_port_slice,
	[DV_EV_QUIESCE] = ev_quiesce,
	[DV_EV_MOVING] = ev_dist_pins,
};

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
	e->applying++;
	r = handlers[ev->type](e, ev);
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
	e->order = calloc(1, sizeof(*e->order));
	if (!e->order) {
		free(e);
		return NULL;
	}
	e->self = self;
	return e;
}

/* Free everything the engine owns, not the engine itself. */
void engine_clear(struct dv_engine *e)
{
	for (size_t i = 0; i < e->vipas.cap; i++)
		if (e->vipas.slots[i])
			vipa_destroy(e->vipas.slots[i]);
	free(e->vipas.slots);
	if (e->order) {
		free(e->order->v);
		*e->order = (struct vipa_order){0};
	}
	for (size_t i = 0; i < e->crefs.cap; i++)
		cref_free(e->crefs.slots[i]);
	free(e->crefs.slots);
	for (size_t i = 0; i < e->uidns.cap; i++)
		free(e->uidns.slots[i]);
	free(e->uidns.slots);
	for (size_t i = 0; i < e->n_nodes; i++)
		node_conf_free(&e->nodes[i]);
	free(e->nodes);
	free(e->members);
	free(e->slices);
	dv_effects_free(&e->fx);
	free(e->dirty);
	free(e->changed);
	free(e->last);
}

struct dv_engine *dv_engine_free(struct dv_engine *e)
{
	if (!e)
		return NULL;
	engine_clear(e);
	free(e->order);
	free(e);
	return NULL;
}

/* ---- views ---- */

static void vipa_info(const struct vipa *v, struct dv_vipa_info *ret)
{
	*ret = (struct dv_vipa_info){
		.addr = v->addr,
		.owner = v->owner,
		.on = v->on,
		.origin = v->origin,
		.state = v->state,
		.since_ms = v->since_ms,
		.reason = v->reason ? v->reason : "",
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
	all = vipa_sorted(e, &n);
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

size_t dv_engine_owner_changes(const struct dv_engine *e, const struct dv_owner_change **ret, bool *ret_complete)
{
	*ret = e ? e->last : NULL;
	*ret_complete = e ? e->last_complete : false;
	return e ? e->n_last : 0;
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

/* The client request an event carries, if any: false for observations,
 * node events and the daemon's own requests (seq 0: nobody waits). */
bool dv_event_request(const struct dv_event *ev, uint64_t *ret_client, uint32_t *ret_seq,
		      const struct dv_addr **ret_addr)
{
	switch (ev->type) {
	case DV_EV_CLAIM:
	case DV_EV_RELEASE:
		*ret_client = ev->claim.client, *ret_seq = ev->claim.seq, *ret_addr = &ev->claim.addr;
		break;
	case DV_EV_STANDBY:
		*ret_client = ev->standby.client, *ret_seq = ev->standby.seq, *ret_addr = &ev->standby.addr;
		break;
	case DV_EV_MOVE:
		*ret_client = ev->move.client, *ret_seq = ev->move.seq, *ret_addr = &ev->move.addr;
		break;
	case DV_EV_DEFINE_STATE:
		*ret_client = ev->define_state.client, *ret_seq = ev->define_state.seq;
		*ret_addr = &ev->define_state.addr;
		break;
	case DV_EV_NODE_ADMIN:
		*ret_client = ev->node_admin.client, *ret_seq = ev->node_admin.seq, *ret_addr = NULL;
		break;
	case DV_EV_QUIESCE:
		*ret_client = ev->quiesce.client, *ret_seq = ev->quiesce.seq, *ret_addr = &ev->quiesce.addr;
		break;
	default:
		return false;
	}
	return *ret_seq != 0;
}

int dv_engine_node_config(const struct dv_engine *e, dv_nodeid_t node, struct dv_node_conf *ret)
{
	const struct node *n = e ? node_find(e, node) : NULL;

	if (!n || !n->has_conf)
		return -ENOENT;
	*ret = (struct dv_node_conf){
		.n_ranges = n->n_ranges, .ranges = n->ranges, .n_defines = n->n_defines, .defines = n->defines};
	snprintf(ret->name, sizeof(ret->name), "%s", n->name);
	memcpy(ret->mac, n->mac, sizeof(ret->mac));
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

bool dv_engine_is_member(const struct dv_engine *e, dv_nodeid_t node)
{
	for (size_t i = 0; e && i < e->n_members; i++)
		if (e->members[i] == node)
			return true;
	return false;
}

unsigned dv_engine_report(const struct dv_engine *e, const struct dv_addr *a, dv_nodeid_t node)
{
	const struct vipa *v = e ? vipa_find(e, a) : NULL;
	const struct report *r = v ? report_find(v, node) : NULL;

	return r ? r->flags : 0;
}

uint64_t dv_engine_seq(const struct dv_engine *e)
{
	return e ? e->seq : 0;
}
