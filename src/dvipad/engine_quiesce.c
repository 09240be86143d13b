/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Quiesced targets of distributed VIPAs (DV_EV_QUIESCE, dvipactl quiesce
 * --node): replicated, so that every node leaves the target out of its
 * table alike, and kept while the target's dvipad restarts. A target's
 * readiness is its report AND not quiesced (dist.c). Entries live in the
 * address's vipa, sorted by node then port, and go when the target's
 * configuration no longer defines the address (a target reports readiness
 * only for addresses it defines) or when the vipa goes (no node that
 * defines it is left in the membership).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine_int.h"

static bool node_defines(const struct node *n, const struct dv_addr *a)
{
	for (size_t i = 0; i < n->n_defines; i++)
		if (dv_addr_eq(&n->defines[i].addr, a))
			return true;
	return false;
}

static ssize_t quiesce_find(const struct vipa *v, dv_nodeid_t node, uint16_t port)
{
	for (size_t i = 0; i < v->n_quiesced; i++)
		if (v->quiesced[i].node == node && v->quiesced[i].port == port)
			return (ssize_t)i;
	return -1;
}

static void quiesce_drop_node(struct vipa *v, dv_nodeid_t node)
{
	size_t k = 0;

	for (size_t i = 0; i < v->n_quiesced; i++)
		if (v->quiesced[i].node != node)
			v->quiesced[k++] = v->quiesced[i];
	v->n_quiesced = k;
}

bool dv_engine_quiesced(const struct dv_engine *e, const struct dv_addr *a, uint16_t port, dv_nodeid_t node)
{
	const struct vipa *v = e ? vipa_find(e, a) : NULL;

	return v && v->n_quiesced && (quiesce_find(v, node, 0) >= 0 || quiesce_find(v, node, port) >= 0);
}

void quiesce_prune(struct dv_engine *e, const struct node *n)
{
	for (size_t i = 0; i < e->vipas.cap; i++) {
		struct vipa *v = e->vipas.slots[i];

		if (v && v->n_quiesced && !node_defines(n, &v->addr))
			quiesce_drop_node(v, n->id);
	}
}

int ev_quiesce(struct dv_engine *e, const struct dv_event *ev)
{
	const struct dv_addr *a = &ev->quiesce.addr;
	dv_nodeid_t target = ev->quiesce.target;
	uint16_t port = ev->quiesce.port;
	struct vipa *v = vipa_find(e, a);
	const struct node *tn = node_find(e, target);
	char ab[DV_ADDR_STRLEN], tl[LABEL_MAX], what[DV_ADDR_STRLEN + 16];
	struct quiesce q = {.node = target, .port = port};
	size_t at;

	dv_addr_fmt(a, ab);
	node_label(e, target, tl);
	if (port)
		snprintf(what, sizeof(what), "%s port %u", ab, port);
	else
		snprintf(what, sizeof(what), "%s", ab);
	if (!v || !tn || !tn->has_conf || !node_defines(tn, a)) {
		fx_reply(e, ev, ev->quiesce.client, ev->quiesce.seq, a, DV_R_NOTHELD,
			 "%s does not define %s (VIPADEFINE or VIPABACKUP): it is no target of it", tl, ab);
		return 0;
	}
	if (!ev->quiesce.on) {
		if (port && quiesce_find(v, target, 0) >= 0) {
			fx_reply(e, ev, ev->quiesce.client, ev->quiesce.seq, a, DV_R_BADREQ,
				 "%s is quiesced on %s for every port: resume it whole, then quiesce the ports "
				 "wanted",
				 ab, tl);
			return 0;
		}
		if (port) {
			ssize_t i = quiesce_find(v, target, port);

			if (i >= 0)
				memmove(&v->quiesced[i], &v->quiesced[i + 1],
					(v->n_quiesced - (size_t)i - 1) * sizeof(*v->quiesced));
			v->n_quiesced -= i >= 0;
		} else {
			quiesce_drop_node(v, target);
		}
		fx_reply(e, ev, ev->quiesce.client, ev->quiesce.seq, a, DV_R_OK, "%s resumed on %s", what, tl);
		return 0;
	}
	if (quiesce_find(v, target, 0) >= 0 || quiesce_find(v, target, port) >= 0) {
		fx_reply(e, ev, ev->quiesce.client, ev->quiesce.seq, a, DV_R_OK, "%s is quiesced on %s already", what,
			 tl);
		return 0;
	}
	if (!port) /* every port: one entry for them all */
		quiesce_drop_node(v, target);
	if (v->n_quiesced == DV_ENGINE_MAX_QUIESCED) {
		fx_reply(e, ev, ev->quiesce.client, ev->quiesce.seq, a, DV_R_LIMIT,
			 "%d (node, port) pairs of %s are quiesced already", DV_ENGINE_MAX_QUIESCED, ab);
		return 0;
	}
	if (engine_grow((void **)&v->quiesced, &v->cap_quiesced, v->n_quiesced + 1, sizeof(*v->quiesced)) < 0)
		return -ENOMEM;
	for (at = 0; at < v->n_quiesced; at++)
		if (v->quiesced[at].node > target || (v->quiesced[at].node == target && v->quiesced[at].port > port))
			break;
	memmove(&v->quiesced[at + 1], &v->quiesced[at], (v->n_quiesced - at) * sizeof(*v->quiesced));
	v->quiesced[at] = q;
	v->n_quiesced++;
	fx_reply(e, ev, ev->quiesce.client, ev->quiesce.seq, a, DV_R_OK,
		 "%s quiesced on %s: no new connections go there, the established ones go on", what, tl);
	return 0;
}
