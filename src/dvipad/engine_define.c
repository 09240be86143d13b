/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Stack-managed VIPAs (engine_int.h): the VIPADEFINE and VIPABACKUP
 * candidates of the members, which of them owns the address and why the
 * others do not.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_int.h"

/* ---- stack-managed VIPAs (VIPADEFINE / VIPABACKUP) ---- */

const struct dv_cand *cand_find(const struct vipa *v, dv_nodeid_t node)
{
	for (size_t i = 0; i < v->n_cands; i++)
		if (v->cands[i].node == node)
			return &v->cands[i];
	return NULL;
}

const struct report *report_find(const struct vipa *v, dv_nodeid_t node)
{
	for (size_t i = 0; i < v->n_reports; i++)
		if (v->reports[i].node == node)
			return &v->reports[i];
	return NULL;
}

bool vipa_is_define(const struct dv_engine *e, const struct vipa *v)
{
	for (size_t i = 0; i < v->n_cands; i++)
		if (node_is_member(e, v->cands[i].node))
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
	r = report_find(v, c->node);
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
	const struct report *r = report_find(v, node);

	return !r || !(r->flags & DV_AS_BUSY);
}

const char *cand_desc(const struct dv_engine *e, const struct dv_cand *c, char buf[static DESC_MAX])
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
const struct dv_cand *define_face(const struct dv_engine *e, const struct vipa *v)
{
	const struct dv_cand *best = NULL;

	if (v->owner && cand_find(v, v->owner))
		return cand_find(v, v->owner);
	for (size_t i = 0; i < v->n_cands; i++)
		if (node_is_member(e, v->cands[i].node) && cand_better(&v->cands[i], best))
			best = &v->cands[i];
	return best;
}

static void define_inactive_reason(const struct dv_engine *e, struct vipa *v)
{
	char nl[LABEL_MAX];

	if (!engine_may_assign(e)) {
		vipa_set_reason(v, "no owner while %s", engine_no_assign_why(e));
		return;
	}
	for (size_t i = 0; i < v->n_cands; i++) {
		const struct dv_cand *c = &v->cands[i];
		const struct node *n = node_find(e, c->node);

		if (!n || !n->member)
			continue;
		if (c->deactivated) {
			vipa_set_reason(v, "no eligible node: deactivated on %s by the operator",
					node_label(e, c->node, nl));
			return;
		}
		if (n->left) {
			vipa_set_reason(v, "no eligible node: %s left the group", node_label(e, c->node, nl));
			return;
		}
		if (!cand_eligible(e, v, c)) {
			vipa_set_reason(v, "no eligible node: no listener on TRACKPORT %u on %s", c->trackport,
					node_label(e, c->node, nl));
			return;
		}
	}
	for (size_t i = 0; i < v->n_cands; i++) {
		const struct dv_cand *c = &v->cands[i];

		if (node_is_member(e, c->node) && !cand_may_own(v, c)) {
			vipa_set_reason(
				v,
				"no eligible node: the VIPABACKUP on %s is not MOVEABLE IMMEDIATE and the address "
				"has never been active",
				node_label(e, c->node, nl));
			return;
		}
	}
	vipa_set_reason(v, "no eligible node");
}

/* Standbys are for VIPARANGE addresses; the define rules decide here. */
static void define_end_standbys(struct dv_engine *e, struct vipa *v)
{
	char ab[DV_ADDR_STRLEN];

	dv_addr_fmt(&v->addr, ab);
	while (v->n_standbys) {
		struct dv_standby s = v->standbys[v->n_standbys - 1];

		standby_del(e, v, v->n_standbys - 1);
		fx_notify(e, s.node, s.client, &v->addr, DV_NOTIFY_LOST,
			  "%s is now stack-managed (VIPADEFINE/VIPABACKUP); the standby registration ended", ab);
	}
}

/* A higher-ranked candidate that may take the address from cur now
 * (MOVEABLE IMMEDIATE, or WHENIDLE while cur is idle), or NULL. */
static const struct dv_cand *define_takeback(const struct dv_engine *e, const struct vipa *v, const struct dv_cand *cur)
{
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
	return tb;
}

/* The candidate that owns the address after this change; *ret_cur is the
 * current owner's candidate if it is still eligible. */
static const struct dv_cand *define_choose(const struct dv_engine *e, const struct vipa *v,
					   const struct dv_cand **ret_cur)
{
	const struct dv_cand *cur = NULL, *best = NULL, *tb;

	if (v->owner) {
		const struct dv_cand *c = cand_find(v, v->owner);

		if (c && cand_eligible(e, v, c))
			cur = c;
	}
	for (size_t i = 0; i < v->n_cands; i++) {
		const struct dv_cand *c = &v->cands[i];

		if (cand_eligible(e, v, c) && cand_may_own(v, c) && cand_better(c, best))
			best = c;
	}
	*ret_cur = cur;
	/* No new owner without quorum; QUORUM{true} settles again. */
	if (!engine_may_assign(e))
		return cur;
	if (!cur)
		return best;
	tb = define_takeback(e, v, cur);
	return tb ? tb : cur;
}

/* The owner changes from prev to next's node (none if next is NULL). */
static void define_hand_over(struct dv_engine *e, struct vipa *v, dv_nodeid_t prev, const struct dv_cand *cur,
			     const struct dv_cand *next, const char *why)
{
	dv_nodeid_t to = next ? next->node : 0;
	char ab[DV_ADDR_STRLEN], nl[LABEL_MAX], pl[LABEL_MAX], cd[DESC_MAX], msg[REASON_MAX];

	dv_addr_fmt(&v->addr, ab);
	if (to)
		snprintf(msg, sizeof(msg), "%s moved to %s (%s)", ab, node_label(e, to, nl), cand_desc(e, next, cd));
	else
		snprintf(msg, sizeof(msg), "%s is no longer active: %s", ab, why);
	hold_end_except(e, v, to, msg);
	vipa_set_owner(e, v, to);
	if (!next)
		define_inactive_reason(e, v);
	else if (!prev)
		vipa_set_reason(v, "activated on %s (%s) after %s", node_label(e, to, nl), cand_desc(e, next, cd), why);
	else if (cur)
		vipa_set_reason(v, "taken back from %s by %s (MOVEABLE %s)", node_label(e, prev, pl),
				cand_desc(e, next, cd), next->moveable == DV_MOVE_WHENIDLE ? "WHENIDLE" : "IMMEDIATE");
	else
		vipa_set_reason(v, "taken over from %s by %s: %s", node_label(e, prev, pl), cand_desc(e, next, cd),
				why);
}

void define_settle(struct dv_engine *e, struct vipa *v, const char *why)
{
	const struct dv_cand *cur, *next;
	bool was_define = v->origin == DV_ORIGIN_DEFINE || v->origin == DV_ORIGIN_BACKUP;
	dv_nodeid_t prev = v->owner;
	char cd[DESC_MAX];

	define_end_standbys(e, v);
	next = define_choose(e, v, &cur);
	if ((next ? next->node : 0) != prev)
		define_hand_over(e, v, prev, cur, next, why);
	else if (!next)
		define_inactive_reason(e, v);
	else if (!was_define)
		vipa_set_reason(v, "now stack-managed: %s", cand_desc(e, next, cd));
	/* Holds live only on the owner (normally a no-op). */
	hold_end_except(e, v, v->owner, "the address is stack-managed by another node");
	v->state = next ? DV_VS_ACTIVE : DV_VS_INACTIVE;
	v->origin = next ? (next->rank >= DV_RANK_DEFINE ? DV_ORIGIN_DEFINE : DV_ORIGIN_BACKUP) : DV_ORIGIN_NONE;
	vipa_touch(e, v);
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
void node_uncandidate(struct dv_engine *e, const struct node *n)
{
	for (size_t i = 0; i < n->n_defines; i++) {
		struct vipa *v = vipa_find(e, &n->defines[i].addr);

		if (v)
			cand_remove(v, n->id);
	}
}
