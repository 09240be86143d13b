/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * State transfer (engine_int.h): the replicated state as a canonical,
 * versioned byte string, and restoring an engine from one.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "engine_int.h"
#include "wire.h"

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
 *     u32 id  u8 flags (member, has configuration, left)  str name  6 bytes MAC
 *     u32 n, n x range  u32 n, n x define (by address)
 *   u32 n, n x vipa, by address:
 *     addr  u32 owner  u32 on (hand-over)  u8 origin  u8 state  u8 flags (ever active)
 *     u64 since_ms  str reason
 *     u32 n, n x hold     (u8 kind, u32 node, u64 client, u32 uid, u64 since_ms)
 *     u32 n, n x standby  (u32 node, u64 client, u32 rank, u8 kind, u32 uid,
 *                          u64 order, u64 since_ms), in grant order
 *     u32 n, n x candidate (u32 node, u8 flags (deactivated); rank etc.
 *                           are its define's)
 *     u32 n, n x report   (u32 node, u32 flags (DV_AS_*, not REMOVED)), by node
 *     u32 n, n x quiesce  (u32 node, u16 port (0: all)), by node then port
 *   u32 n, n x client, by (node, client): u32 node  u64 client  u32 n, n x addr
 *   u32 n, n x port slice, by (address, lo): addr  u32 node  u16 lo  u16 hi
 *   u32 CRC-32 of everything before it
 *
 * Like the wire format it is canonical: restoring and taking a snapshot
 * again gives the same bytes.
 */

#define SNAP_MAGIC 0x4e535644u /* "DVSN" */
/* 2: nodes that left the group, deactivated candidates; 3: quorum
 * confirmation after members left; 4: the hand-over (on), nodes' MACs;
 * 5: port slices; 6: the ports' weights in reports (DV_AS_WEIGHT),
 * checked; quiesced targets */
#define SNAP_VERSION 6
#define SNAP_HEADER 16
#define SNAP_TRAILER 4

#define SNODE_MEMBER 0x01
#define SNODE_CONF 0x02
#define SNODE_LEFT 0x04
#define SCAND_DEACTIVATED 0x01
#define SVIPA_EVER_ACTIVE 0x01

/* Smallest encodings of the repeated parts. */
#define SNODE_MIN (4 + 1 + 3 + 6 + 4 + 4)
#define SVIPA_MIN (DV_WIRE_ADDR_MIN + 4 + 4 + 3 + 8 + 3 + 4 * 5)
#define SHOLD_SIZE (1 + 4 + 8 + 4 + 8)
#define SSTANDBY_SIZE (4 + 8 + 4 + 1 + 4 + 8 + 8)
#define SREPORT_SIZE 8
#define SQUIESCE_SIZE 6
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
	dv_w_bytes(w, n->mac, sizeof(n->mac));
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
	dv_w_u32(w, v->on);
	dv_w_u8(w, (uint8_t)v->origin);
	dv_w_u8(w, (uint8_t)v->state);
	dv_w_u8(w, v->ever_active ? SVIPA_EVER_ACTIVE : 0);
	dv_w_u64(w, v->since_ms);
	dv_w_str(w, v->reason ? v->reason : "", REASON_MAX);
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
	/* Sorted already (engine_quiesce.c). */
	dv_w_u32(w, (uint32_t)v->n_quiesced);
	for (size_t i = 0; i < v->n_quiesced; i++) {
		dv_w_u32(w, v->quiesced[i].node);
		dv_w_u16(w, v->quiesced[i].port);
	}
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
	all = vipa_sorted(e, &n_all);
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
	for (size_t i = 0; i < n_crefs && r == 0; i++) {
		/* Each address as often as the client holds or waits for it,
		 * in order: the same state, the same bytes. */
		size_t n = 0;
		_cleanup_free_ const struct cref_addr **v = cref_sorted(crefs[i], &n);

		if (!v) {
			r = -ENOMEM;
			break;
		}
		dv_w_u32(&w, crefs[i]->node);
		dv_w_u64(&w, crefs[i]->client);
		dv_w_u32(&w, (uint32_t)crefs[i]->n);
		for (size_t k = 0; k < n; k++)
			for (size_t m = 0; m < v[k]->count; m++)
				dv_w_addr(&w, &v[k]->a);
	}
	slices_snap(&w, e);
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
		for (size_t j = 0; j < sizeof(nd->mac); j++)
			nd->mac[j] = dv_r_u8(r);
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
		} else if (!nd->member || nd->name[0] || nd->mac[0] || nd->mac[1] || nd->mac[2] || nd->mac[3] ||
			   nd->mac[4] || nd->mac[5] || k || dv_r_u32(r) != 0 || r->bad) {
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
	return a->kind == b->kind && a->node == b->node && (a->kind != DV_KIND_API || a->client == b->client);
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

		h->kind = (enum dv_kind)kind;
		h->node = dv_r_u32(r);
		h->client = dv_r_u64(r);
		h->uid = dv_r_u32(r);
		h->since_ms = dv_r_u64(r);
		/* All holds are on the owner, one per identity. */
		if (r->bad || !hold_kind_ok(h->kind) || h->node == 0 || h->node != v->owner)
			return -EBADMSG;
		for (size_t j = 0; j < i; j++)
			if (hold_same(&v->holds[j], h))
				return -EBADMSG;
		v->n_holds = i + 1;
		*api += h->kind == DV_KIND_API;
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
		s->kind = (enum dv_kind)kind;
		s->uid = dv_r_u32(r);
		s->order = dv_r_u64(r);
		s->since_ms = dv_r_u64(r);
		/* Registration numbers are distinct and already used. */
		if (r->bad || s->node == 0 || s->rank < 1 || s->rank >= DV_RANK_DEFINE ||
		    (s->kind != DV_KIND_API && s->kind != DV_KIND_SOCKET) || s->order < 1 || s->order > t->seq ||
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

		if (r->bad || !nd || !nd->has_conf || cand_find(v, id) || (flags & ~SCAND_DEACTIVATED))
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
		if (r->bad || p->node == 0 || (i > 0 && p[-1].node >= p->node) || (p->flags & ~(unsigned)DV_AS_ALL) ||
		    (p->flags & DV_AS_REMOVED))
			return -EBADMSG;
		v->n_reports = i + 1;
	}
	return 0;
}

static bool left_involved(const struct dv_engine *t, const struct vipa *v)
{
	const struct dv_cand *oc = v->owner ? cand_find(v, v->owner) : NULL;

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

/* Their nodes need not be in the table: a target whose dvipad restarts
 * stays quiesced. */
static int restore_quiesced(struct vipa *v, struct dv_rbuf *r)
{
	size_t n = dv_r_count(r, DV_ENGINE_MAX_QUIESCED, SQUIESCE_SIZE);

	if (r->bad)
		return -EBADMSG;
	v->quiesced = n ? calloc(n, sizeof(*v->quiesced)) : NULL;
	if (n && !v->quiesced)
		return -ENOMEM;
	v->cap_quiesced = n;
	for (size_t i = 0; i < n; i++) {
		struct quiesce *q = &v->quiesced[i];

		q->node = dv_r_u32(r);
		q->port = dv_r_u16(r);
		if (r->bad || q->node == 0 ||
		    (i > 0 &&
		     (q[-1].node > q->node || (q[-1].node == q->node && (q[-1].port >= q->port || !q[-1].port)))))
			return -EBADMSG;
		v->n_quiesced = i + 1;
	}
	return 0;
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
		char reason[REASON_MAX];

		dv_r_addr(r, &a);
		if (r->bad || (i > 0 && dv_addr_cmp(&prev, &a) >= 0))
			return -EBADMSG;
		prev = a;
		v = vipa_new(t, &a);
		if (!v)
			return -ENOMEM;
		v->owner = dv_r_u32(r);
		v->on = dv_r_u32(r);
		origin = dv_r_u8(r);
		state = dv_r_u8(r);
		flags = dv_r_u8(r);
		v->since_ms = dv_r_u64(r);
		dv_r_str(r, reason, sizeof(reason));
		if (!r->bad && reason[0] && !(v->reason = strdup(reason)))
			return -ENOMEM;
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
		if (err == 0)
			err = restore_quiesced(v, r);
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
	return (hold_find(v, DV_KIND_API, node, client) >= 0) + (standby_find(v, node, client) >= 0);
}

/* Each address of c as often as the client holds or waits for it. */
static int cref_check(const struct dv_engine *t, const struct cref *c)
{
	const struct cref_addr *ca;

	DV_HASHTAB_FOREACH(ca, &c->addrs) {
		const struct vipa *v = vipa_find(t, &ca->a);

		if (!v || cref_need(v, c->node, c->client) != ca->count)
			return -EBADMSG;
	}
	return 0;
}

/* One client's entry of the index, after *prev; *ret_m: its addresses. */
static int restore_cref(struct dv_engine *t, struct dv_rbuf *r, const struct cref **prev, size_t *ret_m)
{
	struct cref key = {0};
	const struct cref *kp = &key;
	size_t m;

	key.node = dv_r_u32(r);
	key.client = dv_r_u64(r);
	m = dv_r_count(r, UINT32_MAX, DV_WIRE_ADDR_MIN);
	if (r->bad || key.node == 0 || m == 0 || (*prev && cref_cmp_ptr(prev, &kp) >= 0))
		return -EBADMSG;
	for (size_t k = 0; k < m; k++) {
		struct dv_addr a;

		dv_r_addr(r, &a);
		if (r->bad)
			return -EBADMSG;
		if (cref_add(t, key.node, key.client, &a) < 0)
			return -ENOMEM;
	}
	*prev = cref_find(t, key.node, key.client);
	*ret_m = m;
	return cref_check(t, *prev);
}

/* The client index, which must list exactly the api holds and standbys. */
static int restore_crefs(struct dv_engine *t, struct dv_rbuf *r, size_t refs)
{
	size_t n = dv_r_count(r, UINT32_MAX, SCREF_MIN), total = 0;
	const struct cref *prev = NULL;

	if (r->bad)
		return -EBADMSG;
	for (size_t i = 0; i < n; i++) {
		size_t m = 0;
		int err = restore_cref(t, r, &prev, &m);

		if (err < 0)
			return err;
		total += m;
	}
	/* Every listed address is needed; together with the count, every hold
	 * and standby is listed. */
	return total == refs ? 0 : -EBADMSG;
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
	if (err == 0)
		err = slices_restore(t, &r);
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
	vipa_order_stale(a);
	vipa_order_stale(b);
	SWAP(crefs);
	SWAP(n_slices);
	SWAP(cap_slices);
	SWAP(slices);
#undef SWAP
}

/* The local effects of replacing e's state with t's, worked out before
 * anything changes: what self had installed and no longer owns goes
 * (first), what it owns now comes. t's VIPAs learn what is installed. */
static int restore_locals(struct dv_engine *e, struct dv_engine *t, struct dv_effects *ret)
{
	struct vipa **olds, **news;
	size_t n_old = 0, n_new = 0;
	int err = -ENOMEM;

	olds = vipa_sorted(e, &n_old);
	news = vipa_sorted(t, &n_new);
	/* Reserved: fx_local() cannot fail below. */
	if (!olds || !news || engine_grow((void **)&ret->v, &ret->cap, n_old + n_new, sizeof(*ret->v)) < 0)
		goto out;
	for (size_t i = 0; i < n_old; i++) {
		const struct vipa *nv = vipa_find(t, &olds[i]->addr);

		if (olds[i]->installed && !(nv && vipa_wants_local(t, e->self, nv)))
			fx_local(e, ret, &olds[i]->addr, false);
	}
	for (size_t i = 0; i < n_new; i++) {
		const struct vipa *ov = vipa_find(e, &news[i]->addr);

		news[i]->installed = vipa_wants_local(t, e->self, news[i]);
		if (news[i]->installed && !(ov && ov->installed))
			fx_local(e, ret, &news[i]->addr, true);
	}
	err = 0;
out:
	free(olds);
	free(news);
	return err;
}

static bool snap_crc_ok(const uint8_t *buf, size_t len)
{
	return dv_crc32(buf, len - SNAP_TRAILER) == ((uint32_t)buf[len - 4] | (uint32_t)buf[len - 3] << 8 |
						     (uint32_t)buf[len - 2] << 16 | (uint32_t)buf[len - 1] << 24);
}

int dv_engine_restore(struct dv_engine *e, const uint8_t *buf, size_t len, struct dv_effects *fx)
{
	struct dv_effects local = {0};
	struct dv_engine *t;
	int err;

	if (!e)
		return -EINVAL;
	if (!buf || len < SNAP_HEADER + SNAP_TRAILER || !snap_crc_ok(buf, len))
		return -EBADMSG;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	err = restore_parse(t, buf, len);
	if (err == 0)
		err = restore_locals(e, t, &local);
	/* Room for the effects first: nothing changes unless all fit. */
	if (err == 0 && fx && engine_grow((void **)&fx->v, &fx->cap, fx->n + local.n, sizeof(*fx->v)) < 0)
		err = -ENOMEM;
	if (err == 0) {
		engine_swap_state(e, t);
		uidn_rebuild(e);
		if (fx && local.n) {
			memcpy(&fx->v[fx->n], local.v, local.n * sizeof(*local.v));
			fx->n += local.n;
		}
	}
	dv_effects_free(&local);
	/* t holds the old state on success, the partial new one on failure. */
	engine_clear(t);
	free(t);
	return err;
}
