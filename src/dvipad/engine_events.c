/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The engine's event handlers (engine_int.h), one per event type; the
 * event is well-formed (engine.c checked it).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_int.h"

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
		fx_reply(e, ev, client, seq, a, DV_R_NOQUORUM,
			 "cannot activate %s: this node's partition is not quorate", ab);
		return false;
	}
	if (!n || !n->member) {
		fx_reply(e, ev, client, seq, a, DV_R_NORANGE, "%s is not a member of the cluster", nl);
		return false;
	}
	if (n->left) {
		fx_reply(e, ev, client, seq, a, DV_R_LEFT,
			 "cannot activate %s: %s has left the group (dvipactl leave) and takes no VIPA until it joins",
			 ab, nl);
		return false;
	}
	if (!n->has_conf) {
		fx_reply(e, ev, client, seq, a, DV_R_NORANGE, "%s has published no configuration", nl);
		return false;
	}
	/* The parser refuses ranges that hold such addresses; a range
	 * published by a peer whose parser did not is no licence either. */
	if (dv_addr_unusable(a)) {
		fx_reply(e, ev, client, seq, a, DV_R_BADREQ, "%s cannot be a VIPA (%s)", ab, dv_addr_unusable(a)->what);
		return false;
	}
	*ret_range = node_range(n, a);
	if (!*ret_range) {
		fx_reply(e, ev, client, seq, a, DV_R_NORANGE, "%s is in no VIPARANGE of %s", ab, nl);
		return false;
	}
	return true;
}

static struct vipa *vipa_create(struct dv_engine *e, const struct dv_event *ev, uint64_t client, uint32_t seq,
				const struct dv_addr *a)
{
	struct vipa *v;

	if (e->vipas.n >= DV_ENGINE_MAX_VIPAS) {
		fx_reply(e, ev, client, seq, a, DV_R_LIMIT, "too many VIPAs (at most %d)", DV_ENGINE_MAX_VIPAS);
		return NULL;
	}
	v = vipa_new(e, a);
	if (!v) {
		e->err = -ENOMEM;
		fx_reply(e, ev, client, seq, a, DV_R_INTERNAL, "out of memory");
	}
	return v;
}

/* A new api hold replaces the client's own standby registration. */
static void drop_own_standby(struct dv_engine *e, struct vipa *v, enum dv_kind kind, dv_nodeid_t node, uint64_t client)
{
	ssize_t s = kind == DV_KIND_API ? standby_find(v, node, client) : -1;

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
			 uint32_t seq, const struct dv_addr *a, enum dv_kind kind, uid_t uid, bool any_kind)
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
		fx_reply(e, ev, client, seq, a, DV_R_INTERNAL, "out of memory");
		return 0;
	}
	s = any_kind || kind == DV_KIND_API ? standby_find(v, ev->node, client) : -1;
	if (s >= 0)
		standby_del(e, v, (size_t)s);
	vipa_set_owner(e, v, ev->node);
	v->origin = hold_origin(kind);
	v->state = DV_VS_ACTIVE;
	return 1;
}

/* A resource failure half way through a request: recorded, and replied. */
static int request_nomem(struct dv_engine *e, const struct dv_event *ev, uint64_t client, uint32_t seq,
			 const struct dv_addr *a)
{
	e->err = -ENOMEM;
	fx_reply(e, ev, client, seq, a, DV_R_INTERNAL, "out of memory");
	return 0;
}

/* A hold on a define or backup address: only on the node that has it. */
static int claim_on_define(struct dv_engine *e, const struct dv_event *ev, struct vipa *v)
{
	const struct dv_addr *a = &ev->claim.addr;
	uint64_t client = ev->claim.client;
	uint32_t seq = ev->claim.seq;
	char ab[DV_ADDR_STRLEN], nl[LABEL_MAX], hd[DESC_MAX], cd[DESC_MAX];

	dv_addr_fmt(a, ab);
	if (v->owner != ev->node) {
		fx_reply(e, ev, client, seq, a, DV_R_HELD, "%s is defined by %s", ab,
			 cand_desc(e, define_face(e, v), cd));
		return 0;
	}
	if (hold_find(v, ev->claim.kind, ev->node, client) >= 0) {
		fx_reply(e, ev, client, seq, a, DV_R_OK, "%s is already held by %s", ab,
			 hold_desc(e, ev->claim.kind, ev->node, client, hd));
		return 0;
	}
	if (v->n_holds >= DV_ENGINE_MAX_HOLDS) {
		fx_reply(e, ev, client, seq, a, DV_R_LIMIT, "too many holds on %s (at most %d)", ab,
			 DV_ENGINE_MAX_HOLDS);
		return 0;
	}
	if (hold_add(e, v, ev->claim.kind, ev->node, client, ev->claim.uid) < 0)
		return request_nomem(e, ev, client, seq, a);
	fx_reply(e, ev, client, seq, a, DV_R_OK, "%s is stack-managed and active on %s; hold added", ab,
		 node_label(e, ev->node, nl));
	return 0;
}

/* Another hold on a VIPA the requesting node owns: shared unless UNIQUE. */
static int claim_share(struct dv_engine *e, const struct dv_event *ev, struct vipa *v, const struct dv_conf_range *r)
{
	const struct dv_addr *a = &ev->claim.addr;
	uint64_t client = ev->claim.client;
	uint32_t seq = ev->claim.seq;
	enum dv_kind kind = ev->claim.kind;
	char ab[DV_ADDR_STRLEN], nl[LABEL_MAX], hd[DESC_MAX], pb[DV_ADDR_STRLEN];

	dv_addr_fmt(a, ab);
	if (r->policy == DV_POLICY_UNIQUE) {
		char first[DESC_MAX];
		const struct dv_hold *h = &v->holds[0];

		fx_reply(e, ev, client, seq, a, DV_R_HELD, "%s is held by %s and its range %s is UNIQUE", ab,
			 hold_desc(e, h->kind, h->node, h->client, first), dv_prefix_fmt(&r->prefix, pb));
		return 0;
	}
	if (v->n_holds >= DV_ENGINE_MAX_HOLDS) {
		fx_reply(e, ev, client, seq, a, DV_R_LIMIT, "too many holds on %s (at most %d)", ab,
			 DV_ENGINE_MAX_HOLDS);
		return 0;
	}
	if (hold_add(e, v, kind, ev->node, client, ev->claim.uid) < 0)
		return request_nomem(e, ev, client, seq, a);
	drop_own_standby(e, v, kind, ev->node, client);
	vipa_set_reason(v, "shared: %s added a hold (%zu holds)", hold_desc(e, kind, ev->node, client, hd), v->n_holds);
	fx_reply(e, ev, client, seq, a, DV_R_OK, "%s is active on %s; hold added (%zu holds)", ab,
		 node_label(e, ev->node, nl), v->n_holds);
	return 0;
}

/* A VIPA active on another node M moves to the requester, unless its
 * range is UNIQUE or a bind would take it from the operator. */
static int claim_move(struct dv_engine *e, const struct dv_event *ev, struct vipa *v, const struct dv_conf_range *r)
{
	const struct dv_addr *a = &ev->claim.addr;
	uint64_t client = ev->claim.client;
	uint32_t seq = ev->claim.seq;
	enum dv_kind kind = ev->claim.kind;
	dv_nodeid_t from = v->owner;
	char ab[DV_ADDR_STRLEN], nl[LABEL_MAX], ml[LABEL_MAX], hd[DESC_MAX], pb[DV_ADDR_STRLEN], msg[REASON_MAX];

	dv_addr_fmt(a, ab);
	node_label(e, ev->node, nl);
	node_label(e, v->owner, ml);
	if (r->policy == DV_POLICY_UNIQUE) {
		fx_reply(e, ev, client, seq, a, DV_R_HELD, "%s is held on %s and its range %s is UNIQUE", ab, ml,
			 dv_prefix_fmt(&r->prefix, pb));
		return 0;
	}
	if (kind == DV_KIND_SOCKET && hold_find(v, DV_KIND_OPERATOR, v->owner, 0) >= 0) {
		fx_reply(e, ev, client, seq, a, DV_R_HELD,
			 "%s was activated by the operator on %s; a bind on %s cannot move it", ab, ml, nl);
		return 0;
	}
	if (hold_add(e, v, kind, ev->node, client, ev->claim.uid) < 0)
		return request_nomem(e, ev, client, seq, a);
	drop_own_standby(e, v, kind, ev->node, client);
	snprintf(msg, sizeof(msg), "%s moved to %s", ab, nl);
	hold_end_except(e, v, ev->node, msg);
	vipa_set_owner(e, v, ev->node);
	v->origin = hold_origin(kind);
	v->state = DV_VS_ACTIVE;
	vipa_set_reason(v, "moved from %s to %s: %s activated it (range %s)", node_label(e, from, ml), nl,
			hold_desc(e, kind, ev->node, client, hd), dv_policy_keyword(r->policy));
	fx_reply(e, ev, client, seq, a, DV_R_OK, "%s moved from %s to %s", ab, ml, nl);
	return 0;
}

/* A source use of an active VIPA: it is this node's, and the program
 * sends from it without a hold of its own; or another node's, and it stays
 * there whatever the range's policy. */
static int claim_source(struct dv_engine *e, const struct dv_event *ev, struct vipa *v)
{
	const struct dv_addr *a = &ev->claim.addr;
	char ab[DV_ADDR_STRLEN], nl[LABEL_MAX], ml[LABEL_MAX];

	dv_addr_fmt(a, ab);
	node_label(e, ev->node, nl);
	if (v->owner == ev->node) {
		fx_reply(e, ev, ev->claim.client, ev->claim.seq, a, DV_R_OK, "%s is active on %s; used as a source", ab,
			 nl);
		return 0;
	}
	fx_reply(e, ev, ev->claim.client, ev->claim.seq, a, DV_R_HELD,
		 "%s is active on %s; a program on %s may send from it only where it is active", ab,
		 node_label(e, v->owner, ml), nl);
	return 0;
}

int ev_claim(struct dv_engine *e, const struct dv_event *ev)
{
	const struct dv_addr *a = &ev->claim.addr;
	uint64_t client = ev->claim.client;
	uint32_t seq = ev->claim.seq;
	enum dv_kind kind = ev->claim.kind;
	const struct dv_conf_range *r;
	struct vipa *v;
	char ab[DV_ADDR_STRLEN], nl[LABEL_MAX], hd[DESC_MAX];
	int done;

	if (!admit(e, ev, client, seq, a, &r))
		return 0;
	dv_addr_fmt(a, ab);
	hold_desc(e, kind, ev->node, client, hd);
	v = vipa_find(e, a);
	if (v && vipa_is_define(e, v))
		return claim_on_define(e, ev, v);
	if (!v || v->n_holds == 0) {
		done = activate_free(e, ev, &v, client, seq, a, kind, ev->claim.uid, false);
		if (done <= 0)
			return done;
		vipa_set_reason(v, "granted to %s", hd);
		fx_reply(e, ev, client, seq, a, DV_R_OK, "%s activated on %s", ab, node_label(e, ev->node, nl));
		return 0;
	}
	if (ev->claim.source_use)
		return claim_source(e, ev, v);
	if (hold_find(v, kind, ev->node, client) >= 0) {
		fx_reply(e, ev, client, seq, a, DV_R_OK, "%s is already held by %s", ab, hd);
		return 0;
	}
	if (v->owner == ev->node)
		return claim_share(e, ev, v, r);
	return claim_move(e, ev, v, r);
}

int ev_release(struct dv_engine *e, const struct dv_event *ev)
{
	const struct dv_addr *a = &ev->release.addr;
	uint64_t client = ev->release.client;
	uint32_t seq = ev->release.seq;
	enum dv_kind kind = ev->release.kind;
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
			vipa_set_reason(v, "%s released its hold (%zu left)", hd, v->n_holds);
		fx_reply(e, ev, client, seq, a, DV_R_OK, "%s released by %s", ab, hd);
		vipa_settle(e, v, why);
		return 0;
	}
	i = v && kind != DV_KIND_OPERATOR ? standby_find(v, ev->node, client) : -1;
	if (i >= 0 && v->standbys[i].kind == kind) {
		standby_del(e, v, (size_t)i);
		fx_reply(e, ev, client, seq, a, DV_R_OK, "standby registration for %s withdrawn", ab);
		vipa_settle(e, v, "a standby withdrew");
		return 0;
	}
	fx_reply(e, ev, client, seq, a, DV_R_NOTHELD, "%s is not held by %s", ab, hd);
	return 0;
}

/* A client's standby registered again: it takes its new rank's place. */
static int standby_rerank(struct dv_engine *e, const struct dv_event *ev, struct vipa *v, size_t i)
{
	struct dv_standby s = v->standbys[i];
	char ab[DV_ADDR_STRLEN], ml[LABEL_MAX];

	memmove(&v->standbys[i], &v->standbys[i + 1], (v->n_standbys - i - 1) * sizeof(s));
	v->n_standbys--;
	uidn_count(e, s.node, s.uid, -1); /* counted again at its new place */
	s.rank = ev->standby.rank;
	s.kind = ev->standby.kind;
	s.uid = ev->standby.uid;
	standby_place(e, v, &s);
	fx_reply(e, ev, ev->standby.client, ev->standby.seq, &ev->standby.addr, DV_R_PENDING,
		 "standby for %s updated to rank %u; held on %s", dv_addr_fmt(&ev->standby.addr, ab), ev->standby.rank,
		 node_label(e, v->owner, ml));
	return 0;
}

static int standby_register(struct dv_engine *e, const struct dv_event *ev, struct vipa *v)
{
	const struct dv_addr *a = &ev->standby.addr;
	uint64_t client = ev->standby.client;
	uint32_t seq = ev->standby.seq;
	char ab[DV_ADDR_STRLEN], ml[LABEL_MAX];
	struct dv_standby s = {
		.node = ev->node,
		.client = client,
		.rank = ev->standby.rank,
		.kind = ev->standby.kind,
		.uid = ev->standby.uid,
		.order = e->seq + 1,
		.since_ms = e->now,
	};

	dv_addr_fmt(a, ab);
	if (v->n_standbys >= DV_ENGINE_MAX_STANDBYS) {
		fx_reply(e, ev, client, seq, a, DV_R_LIMIT, "too many standbys for %s (at most %d)", ab,
			 DV_ENGINE_MAX_STANDBYS);
		return 0;
	}
	if (engine_grow((void **)&v->standbys, &v->cap_standbys, v->n_standbys + 1, sizeof(*v->standbys)) < 0 ||
	    cref_add(e, ev->node, client, a) < 0)
		return request_nomem(e, ev, client, seq, a);
	standby_place(e, v, &s);
	vipa_touch(e, v);
	fx_reply(e, ev, client, seq, a, DV_R_PENDING, "registered as standby for %s with rank %u; held on %s", ab,
		 s.rank, node_label(e, v->owner, ml));
	return 0;
}

/* What a standby request asks for is possible at all; replies if not. */
static bool standby_valid(struct dv_engine *e, const struct dv_event *ev)
{
	const struct dv_addr *a = &ev->standby.addr;
	unsigned rank = ev->standby.rank;

	if (ev->standby.kind != DV_KIND_API && ev->standby.kind != DV_KIND_SOCKET) {
		fx_reply(e, ev, ev->standby.client, ev->standby.seq, a, DV_R_BADREQ,
			 "a standby becomes an api or a socket hold");
		return false;
	}
	if (rank < 1 || rank >= DV_RANK_DEFINE) {
		fx_reply(e, ev, ev->standby.client, ev->standby.seq, a, DV_R_BADREQ, "standby rank %u is not in 1..254",
			 rank);
		return false;
	}
	return true;
}

int ev_standby(struct dv_engine *e, const struct dv_event *ev)
{
	const struct dv_addr *a = &ev->standby.addr;
	uint64_t client = ev->standby.client;
	uint32_t seq = ev->standby.seq;
	enum dv_kind kind = ev->standby.kind;
	const struct dv_conf_range *r;
	struct vipa *v;
	ssize_t i;
	char ab[DV_ADDR_STRLEN], nl[LABEL_MAX], cd[DESC_MAX];
	int done;

	dv_addr_fmt(a, ab);
	if (!standby_valid(e, ev) || !admit(e, ev, client, seq, a, &r))
		return 0;
	node_label(e, ev->node, nl);
	v = vipa_find(e, a);
	if (v && vipa_is_define(e, v)) {
		fx_reply(e, ev, client, seq, a, DV_R_HELD, "%s is defined by %s; standbys apply to VIPARANGE addresses",
			 ab, cand_desc(e, define_face(e, v), cd));
		return 0;
	}
	/* A client that holds the address is not its own standby. Socket holds
	 * belong to the node, not to one program: a second program on the
	 * same node (HOT standby through the shim) must wait for them to end. */
	if (v && kind == DV_KIND_API && hold_find(v, kind, ev->node, client) >= 0) {
		fx_reply(e, ev, client, seq, a, DV_R_OK, "%s is already held by this client", ab);
		return 0;
	}
	if (!v || v->n_holds == 0) {
		done = activate_free(e, ev, &v, client, seq, a, kind, ev->standby.uid, true);
		if (done <= 0)
			return done;
		vipa_set_reason(v, "standby client %" PRIu64 " (rank %u) on %s granted at once: no active holder",
				client, ev->standby.rank, nl);
		fx_reply(e, ev, client, seq, a, DV_R_OK, "%s activated on %s: no active holder", ab, nl);
		return 0;
	}
	i = standby_find(v, ev->node, client);
	if (i >= 0)
		return standby_rerank(e, ev, v, (size_t)i);
	return standby_register(e, ev, v);
}

int ev_client_gone(struct dv_engine *e, const struct dv_event *ev)
{
	dv_nodeid_t node = ev->node;
	uint64_t client = ev->client_gone.client;
	char nl[LABEL_MAX], why[REASON_MAX];
	struct cref *c;

	snprintf(why, sizeof(why), "client %" PRIu64 " on %s went away", client, node_label(e, node, nl));
	/* A walk of the client's index: each round removes at least one hold
	 * or standby of the entry it looks at (or, stale, the entry itself),
	 * and a removal only moves later entries back into the slot it freed,
	 * so the slots before i stay empty. It costs what the client had,
	 * not the table's size (issue 15). */
	for (size_t i = 0; (c = cref_find(e, node, client)) && i < c->addrs.cap;) {
		const struct cref_addr *ca = c->addrs.slots[i];
		struct dv_addr a;
		struct vipa *v;
		ssize_t h, s;

		if (!ca) {
			i++;
			continue;
		}
		a = ca->a;
		v = vipa_find(e, &a);
		h = v ? hold_find(v, DV_KIND_API, node, client) : -1;
		s = v ? standby_find(v, node, client) : -1;
		if (h < 0 && s < 0) {
			/* A stale index entry: drop it, or this would not end. */
			cref_del(e, node, client, &a);
			continue;
		}
		if (h >= 0) {
			hold_del(e, v, (size_t)h);
			if (v->n_holds > 0)
				vipa_set_reason(v, "%s; %zu hold(s) left", why, v->n_holds);
		}
		s = standby_find(v, node, client);
		if (s >= 0)
			standby_del(e, v, (size_t)s);
		vipa_settle(e, v, why);
	}
	return 0;
}

int ev_addr_state(struct dv_engine *e, const struct dv_event *ev)
{
	struct vipa *v = vipa_find(e, &ev->addr_state.addr);
	unsigned flags = ev->addr_state.flags;
	char nl[LABEL_MAX], why[REASON_MAX];
	struct report *r;
	ssize_t i;

	/* Facts about addresses the engine does not know, or from a node
	 * outside the membership, change nothing: reports stay bounded by
	 * members x VIPAs. */
	if (!v || !node_is_member(e, ev->node))
		return 0;
	if (flags & DV_AS_REMOVED) {
		vipa_removed_on(e, v, ev->node);
		return 0;
	}
	r = (struct report *)report_find(v, ev->node);
	if (!r) {
		if (engine_grow((void **)&v->reports, &v->cap_reports, v->n_reports + 1, sizeof(*v->reports)) < 0)
			return -ENOMEM;
		r = &v->reports[v->n_reports++];
		r->node = ev->node;
	}
	r->flags = flags;
	snprintf(why, sizeof(why), "a report from %s", node_label(e, ev->node, nl));
	i = hold_find(v, DV_KIND_SOCKET, ev->node, 0);
	if (!(flags & DV_AS_BOUND) && i >= 0) {
		hold_del(e, v, (size_t)i);
		snprintf(why, sizeof(why), "the last socket bound on %s closed", nl);
		if (v->n_holds > 0)
			vipa_set_reason(v, "%s; %zu hold(s) left", why, v->n_holds);
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
/* A MOVE is possible: the address is an active VIPARANGE address and the
 * target a member that may take it. Replies and returns false if not. */
static bool move_admit(struct dv_engine *e, const struct dv_event *ev, const struct vipa *v)
{
	const struct dv_addr *a = &ev->move.addr;
	uint64_t client = ev->move.client;
	uint32_t seq = ev->move.seq;
	const struct node *tn = node_find(e, ev->move.to);
	char ab[DV_ADDR_STRLEN], tl[LABEL_MAX], cd[DESC_MAX];

	dv_addr_fmt(a, ab);
	node_label(e, ev->move.to, tl);
	if (!e->quorate) {
		fx_reply(e, ev, client, seq, a, DV_R_NOQUORUM, "cannot move %s: this node's partition is not quorate",
			 ab);
		return false;
	}
	if (v && vipa_is_define(e, v)) {
		fx_reply(e, ev, client, seq, a, DV_R_HELD,
			 "%s is defined by %s; stack-managed addresses move by deactivate/reactivate", ab,
			 cand_desc(e, define_face(e, v), cd));
		return false;
	}
	if (!v || v->n_holds == 0 || !v->owner) {
		fx_reply(e, ev, client, seq, a, DV_R_NOTHELD, "%s is not active on any node", ab);
		return false;
	}
	if (!tn || !tn->member) {
		fx_reply(e, ev, client, seq, a, DV_R_BADREQ, "%s is not a member of the cluster", tl);
		return false;
	}
	if (tn->left) {
		fx_reply(e, ev, client, seq, a, DV_R_LEFT, "%s has left the group (dvipactl leave)", tl);
		return false;
	}
	if (!tn->has_conf || !node_range(tn, a)) {
		fx_reply(e, ev, client, seq, a, DV_R_NORANGE, "%s is in no VIPARANGE of %s", ab, tl);
		return false;
	}
	return true;
}

int ev_move(struct dv_engine *e, const struct dv_event *ev)
{
	const struct dv_addr *a = &ev->move.addr;
	uint64_t client = ev->move.client;
	uint32_t seq = ev->move.seq;
	dv_nodeid_t to = ev->move.to;
	struct vipa *v = vipa_find(e, a);
	char ab[DV_ADDR_STRLEN], tl[LABEL_MAX], fl[LABEL_MAX], msg[REASON_MAX];
	dv_nodeid_t from;

	if (!move_admit(e, ev, v))
		return 0;
	dv_addr_fmt(a, ab);
	node_label(e, to, tl);
	from = v->owner;
	node_label(e, from, fl);
	if (from == to) {
		if (hold_find(v, DV_KIND_OPERATOR, to, 0) < 0 &&
		    hold_add(e, v, DV_KIND_OPERATOR, to, 0, ev->move.uid) < 0)
			return request_nomem(e, ev, client, seq, a);
		fx_reply(e, ev, client, seq, a, DV_R_OK, "%s is already active on %s; the operator holds it there", ab,
			 tl);
		return 0;
	}
	if (hold_add(e, v, DV_KIND_OPERATOR, to, 0, ev->move.uid) < 0)
		return request_nomem(e, ev, client, seq, a);
	snprintf(msg, sizeof(msg), "%s moved to %s by the operator", ab, tl);
	hold_end_except(e, v, to, msg);
	vipa_set_owner(e, v, to);
	v->origin = DV_ORIGIN_OPERATOR;
	v->state = DV_VS_ACTIVE;
	vipa_set_reason(v, "moved from %s to %s by the operator", fl, tl);
	fx_reply(e, ev, client, seq, a, DV_R_OK, "%s moved from %s to %s", ab, fl, tl);
	return 0;
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
int ev_define_state(struct dv_engine *e, const struct dv_event *ev)
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
	if (!node_is_member(e, target)) {
		fx_reply(e, ev, client, seq, a, DV_R_BADREQ, "%s is not a member of the cluster", tl);
		return 0;
	}
	for (size_t i = 0; v && i < v->n_cands; i++)
		if (v->cands[i].node == target)
			c = &v->cands[i];
	if (!c) {
		fx_reply(e, ev, client, seq, a, DV_R_NORANGE, "%s is no VIPADEFINE or VIPABACKUP of %s", ab, tl);
		return 0;
	}
	if (c->deactivated == !active) {
		fx_reply(e, ev, client, seq, a, DV_R_OK, "%s is already %s on %s", ab, verb, tl);
		return 0;
	}
	c->deactivated = !active;
	snprintf(why, sizeof(why), "it was %s on %s by the operator", verb, tl);
	fx_reply(e, ev, client, seq, a, DV_R_OK, "%s %s on %s", ab, verb, tl);
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
		if (h.kind == DV_KIND_API)
			fx_notify(e, h.node, h.client, &v->addr, DV_NOTIFY_LOST, "%s is lost: %s", ab, why);
	}
	for (size_t i = 0; i < v->n_standbys;) {
		struct dv_standby sb = v->standbys[i];

		if (sb.node != node) {
			i++;
			continue;
		}
		standby_del(e, v, i);
		fx_notify(e, sb.node, sb.client, &v->addr, DV_NOTIFY_LOST, "standby for %s ended: %s", ab, why);
	}
}

/*
 * LEAVEGROUP/JOINGROUP (dvipactl leave and join): a node that leaves stays
 * in the CPG group but takes part in nothing: its holds and standbys end as
 * if it had left the cluster (standbys elsewhere are granted, defines go to
 * their backups), and its claims are refused until it joins. Joining makes
 * it eligible again; defines follow their takeback rules.
 */
int ev_node_admin(struct dv_engine *e, const struct dv_event *ev)
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
		fx_reply(e, ev, client, seq, &none, DV_R_BADREQ, "%s is not a member of the cluster", tl);
		return 0;
	}
	if (n->left == !joined) {
		fx_reply(e, ev, client, seq, &none, DV_R_OK, "%s has already %s the group", tl,
			 joined ? "joined" : "left");
		return 0;
	}
	all = vipa_sorted(e, &n_all);
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
	fx_reply(e, ev, client, seq, &none, DV_R_OK, "%s %s the group", tl, joined ? "joined" : "left");
	return 0;
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

/* The new member set, sorted and without duplicates (malloc'ed). */
static dv_nodeid_t *members_sorted(const struct dv_event *ev, size_t *ret_n)
{
	size_t n = ev->membership.n, nm = 0;
	dv_nodeid_t *m = malloc((n ? n : 1) * sizeof(*m));

	if (!m)
		return NULL;
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
	*ret_n = nm;
	return m;
}

/* Joining nodes need entries; the table holds at most members plus nodes
 * configured before joining. */
static int members_add_nodes(struct dv_engine *e, const dv_nodeid_t *m, size_t nm)
{
	size_t missing = 0;

	for (size_t i = 0; i < nm; i++)
		if (!node_find(e, m[i]))
			missing++;
	if (e->n_nodes + missing > MAX_NODE_ENTRIES)
		return -ENOSPC;
	for (size_t i = 0; i < nm; i++)
		if (!node_add(e, m[i]))
			return -ENOMEM;
	return 0;
}

/* Members that leave a quorate partition start a confirmation (see
 * `confirm`); its reason names them: "n1, n3 left the cluster". */
static void members_note_left(struct dv_engine *e, const dv_nodeid_t *m, size_t nm)
{
	for (size_t i = 0; i < e->n_members; i++) {
		char nl[LABEL_MAX];

		if (!e->quorate || bsearch(&e->members[i], m, nm, sizeof(*m), nodeid_cmp))
			continue;
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
}

static void members_set(struct dv_engine *e, const dv_nodeid_t *m, size_t nm)
{
	for (size_t i = 0; i < e->n_nodes; i++) {
		struct node *nd = &e->nodes[i];

		nd->member = bsearch(&nd->id, m, nm, sizeof(*m), nodeid_cmp) != NULL;
	}
	if (nm)
		memcpy(e->members, m, nm * sizeof(*m));
	e->n_members = nm;
}

/* End the holds, standbys and reports of nodes that left, then settle. */
static void vipa_drop_nonmembers(struct dv_engine *e, struct vipa *v)
{
	dv_nodeid_t prev = v->owner;
	char ab[DV_ADDR_STRLEN], nl[LABEL_MAX], why[REASON_MAX];

	/* Formatted only for what a departure ends: this runs for every VIPA
	 * at each membership change (65,536 of them, issue 15). */
	if (v->n_holds || v->n_standbys)
		dv_addr_fmt(&v->addr, ab);
	for (size_t i = 0; i < v->n_holds;) {
		struct dv_hold h = v->holds[i];

		if (node_is_member(e, h.node)) {
			i++;
			continue;
		}
		hold_del(e, v, i);
		if (h.kind == DV_KIND_API)
			fx_notify(e, h.node, h.client, &v->addr, DV_NOTIFY_LOST, "%s is lost: %s left the cluster", ab,
				  node_label(e, h.node, nl));
	}
	for (size_t i = 0; i < v->n_standbys;) {
		struct dv_standby s = v->standbys[i];

		if (node_is_member(e, s.node)) {
			i++;
			continue;
		}
		standby_del(e, v, i);
		fx_notify(e, s.node, s.client, &v->addr, DV_NOTIFY_LOST, "standby for %s ended: %s left the cluster",
			  ab, node_label(e, s.node, nl));
	}
	for (size_t i = 0; i < v->n_reports;) {
		if (node_is_member(e, v->reports[i].node))
			i++;
		else
			v->reports[i] = v->reports[--v->n_reports];
	}
	if (v->on && !node_is_member(e, v->on))
		vipa_touch(e, v); /* no hand-over to wait for */
	if (prev && !node_is_member(e, prev)) {
		snprintf(why, sizeof(why), "%s left the cluster", node_label(e, prev, nl));
		vipa_settle(e, v, why);
	} else {
		vipa_settle(e, v, "a membership change");
	}
}

/* Nodes that are not members lose their entry and their configuration. */
static void nodes_forget_nonmembers(struct dv_engine *e)
{
	for (size_t i = 0; i < e->n_nodes;) {
		struct node *nd = &e->nodes[i];
		struct node gone = *nd;

		if (nd->member) {
			i++;
			continue;
		}
		memmove(nd, nd + 1, (e->n_nodes - i - 1) * sizeof(*nd));
		e->n_nodes--;
		if (!gone.has_conf)
			continue;
		node_uncandidate(e, &gone);
		for (size_t j = 0; j < gone.n_defines; j++)
			settle_addr(e, &gone.defines[j].addr, "a membership change");
		node_conf_free(&gone);
	}
}

int ev_membership(struct dv_engine *e, const struct dv_event *ev)
{
	size_t nm = 0, n_all = 0;
	struct vipa **all;
	dv_nodeid_t *m;
	int r;

	/* Reserve everything before changing any state. */
	if (engine_grow((void **)&e->members, &e->cap_members, ev->membership.n, sizeof(*e->members)) < 0)
		return -ENOMEM;
	m = members_sorted(ev, &nm);
	if (!m)
		return -ENOMEM;
	r = members_add_nodes(e, m, nm);
	all = r < 0 ? NULL : vipa_sorted(e, &n_all);
	if (!all) {
		free(m);
		return r < 0 ? r : -ENOMEM;
	}
	members_note_left(e, m, nm);
	members_set(e, m, nm);
	free(m);
	for (size_t k = 0; k < n_all; k++)
		vipa_drop_nonmembers(e, all[k]);
	free(all);
	nodes_forget_nonmembers(e);
	slices_drop_nonmembers(e);
	return 0;
}

int ev_quorum(struct dv_engine *e, const struct dv_event *ev)
{
	struct vipa **all;
	size_t n_all = 0;
	bool could = engine_may_assign(e);
	char why[REASON_MAX];

	/* The cluster repeats the quorum after every membership change: an
	 * unchanged one that confirms nothing changes nothing (no pass over
	 * every VIPA). */
	if (ev->quorum.quorate == e->quorate && !e->confirm)
		return 0;
	all = vipa_sorted(e, &n_all);
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
		vipa_touch(e, all[k]);
		/* Decisions deferred while not quorate are taken now. */
		if (engine_may_assign(e) && !could)
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

/* The engine's copy of a published configuration: allow lists stay local
 * (no pointers into the caller's configuration kept); defines sorted by
 * address, the first line of duplicates kept. */
static int node_conf_copy(const struct dv_node_conf *nc, struct dv_conf_range **ret_ranges,
			  struct dv_conf_define **ret_defines, size_t *ret_n_defines)
{
	struct dv_conf_range *ranges = calloc(nc->n_ranges ? nc->n_ranges : 1, sizeof(*ranges));
	struct dv_conf_define *defines = calloc(nc->n_defines ? nc->n_defines : 1, sizeof(*defines));
	size_t n_defines = 0;

	if (!ranges || !defines) {
		free(ranges);
		free(defines);
		return -ENOMEM;
	}
	for (size_t i = 0; i < nc->n_ranges; i++)
		ranges[i] = (struct dv_conf_range){
			.prefix = nc->ranges[i].prefix,
			.policy = nc->ranges[i].policy,
			.deleted = nc->ranges[i].deleted,
			.line = nc->ranges[i].line,
		};
	if (nc->n_defines) {
		memcpy(defines, nc->defines, nc->n_defines * sizeof(*defines));
		qsort(defines, nc->n_defines, sizeof(*defines), define_cmp);
	}
	for (size_t i = 0; i < nc->n_defines; i++)
		if (n_defines == 0 || !dv_addr_eq(&defines[n_defines - 1].addr, &defines[i].addr))
			defines[n_defines++] = defines[i];
	*ret_ranges = ranges;
	*ret_defines = defines;
	*ret_n_defines = n_defines;
	return 0;
}

/* Check the limits and reserve (the node entry, room for every candidate
 * entry) before changing anything. */
static int node_conf_reserve(struct dv_engine *e, dv_nodeid_t node, const struct dv_conf_define *defines,
			     size_t n_defines)
{
	size_t n_new = 0;

	for (size_t i = 0; i < n_defines; i++) {
		struct vipa *v = vipa_find(e, &defines[i].addr);

		if (!v)
			n_new++;
		else if (engine_grow((void **)&v->cands, &v->cap_cands, v->n_cands + 1, sizeof(*v->cands)) < 0)
			return -ENOMEM;
	}
	if (e->vipas.n + n_new > DV_ENGINE_MAX_VIPAS || (!node_find(e, node) && e->n_nodes >= MAX_NODE_ENTRIES))
		return -ENOSPC;
	return 0;
}

/* The operator's deactivations outlive a reload that keeps the define. */
static bool *node_conf_deactivated(const struct dv_engine *e, dv_nodeid_t node, const struct dv_conf_define *defines,
				   size_t n_defines)
{
	bool *deact = calloc(n_defines ? n_defines : 1, sizeof(*deact));

	for (size_t i = 0; deact && i < n_defines; i++) {
		struct vipa *v = vipa_find(e, &defines[i].addr);
		const struct dv_cand *c = v ? cand_find(v, node) : NULL;

		deact[i] = c && c->deactivated;
	}
	return deact;
}

/* Each define of the node becomes a candidate of its address. */
static void node_conf_candidates(struct dv_engine *e, dv_nodeid_t node, const struct dv_conf_define *defines,
				 size_t n_defines, const bool *deact)
{
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
		if (engine_grow((void **)&v->cands, &v->cap_cands, v->n_cands + 1, sizeof(*v->cands)) < 0) {
			e->err = -ENOMEM;
			continue;
		}
		v->cands[v->n_cands++] = (struct dv_cand){
			.node = node,
			.rank = d->rank,
			.moveable = d->moveable,
			.trackport = d->trackport,
			.deactivated = deact[i],
		};
	}
}

int ev_node_config(struct dv_engine *e, const struct dv_event *ev)
{
	const struct dv_node_conf *nc = &ev->node_config;
	struct dv_conf_range *ranges = NULL;
	struct dv_conf_define *defines = NULL;
	size_t n_defines = 0;
	struct node *n, old;
	bool *deact = NULL;
	char nl[LABEL_MAX], why[REASON_MAX];
	int r;

	r = node_conf_copy(nc, &ranges, &defines, &n_defines);
	if (r < 0)
		return r;
	r = node_conf_reserve(e, ev->node, defines, n_defines);
	if (r == 0) {
		deact = node_conf_deactivated(e, ev->node, defines, n_defines);
		n = deact ? node_add(e, ev->node) : NULL;
		r = n ? 0 : -ENOMEM;
	}
	if (r < 0) {
		free(ranges);
		free(defines);
		free(deact);
		return r;
	}
	old = *n;
	node_uncandidate(e, &old);
	memcpy(n->mac, nc->mac, sizeof(n->mac));
	n->ranges = ranges;
	n->n_ranges = nc->n_ranges;
	n->defines = defines;
	n->n_defines = n_defines;
	n->has_conf = true;
	memcpy(n->name, nc->name, sizeof(n->name));
	n->name[sizeof(n->name) - 1] = '\0';

	snprintf(why, sizeof(why), "the configuration of %s changed", node_label(e, ev->node, nl));
	node_conf_candidates(e, ev->node, defines, n_defines, deact);
	quiesce_prune(e, n);
	free(deact);
	for (size_t i = 0; i < old.n_defines; i++)
		settle_addr(e, &old.defines[i].addr, why);
	for (size_t i = 0; i < n_defines; i++)
		settle_addr(e, &defines[i].addr, why);
	free(old.ranges);
	free(old.defines);
	return 0;
}
