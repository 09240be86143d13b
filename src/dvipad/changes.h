/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What one event changed in the ownership table, as an operator names it:
 * an activation, a release, a takeover, a move, a grant, a change of
 * quorum or membership. The engine reports only this node's effects; this
 * compares its views before and after an event. Pure over the engine's
 * views: the daemon feeds it (dv_changes_before(), apply, then
 * dv_changes_after()), and the changes go to the metrics and to
 * `dvipactl monitor`.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "engine.h"

enum dv_change_kind {
	DV_CHANGE_ACTIVATION = 1, /* a VIPA without owner got one */
	DV_CHANGE_RELEASE,	  /* a VIPA lost its owner and has none */
	DV_CHANGE_TAKEOVER,	  /* another node took it: node lost, holder gone, rank */
	DV_CHANGE_MOVE,		  /* another node took it because it asked (claim, move) */
	DV_CHANGE_GRANT,	  /* a standby of this node's client got it */
	DV_CHANGE_QUORUM,
	DV_CHANGE_MEMBERSHIP,
};

/* "activation", "release", ... */
const char *dv_change_name(enum dv_change_kind k);

struct dv_change {
	enum dv_change_kind kind;
	struct dv_addr addr;   /* VIPA changes */
	dv_nodeid_t from, to;  /* owners before and after; 0: none */
	enum dv_origin origin; /* after */
	const char *reason;    /* the engine's, or NULL */
	bool quorate;	       /* QUORUM */
	uint64_t client;       /* GRANT: the client of this node */
};

struct dv_owner_was {
	struct dv_addr addr;
	dv_nodeid_t owner;
	uint32_t order; /* the engine's touch order */
};

struct dv_changes {
	struct dv_owner_was *v;
	size_t n, cap;
	bool quorate; /* before */
};

/*
 * Before ev is applied: note the owner of the address ev names. One that
 * names none (membership, quorum, a client gone, a node's configuration or
 * admin state) may change any: after reads the VIPAs whose owner the
 * engine changed, with their owners before (dv_engine_owner_changes): what
 * the event changed, not a walk of every VIPA. 0 or -ENOMEM (then after
 * reports no change of that address).
 */
int dv_changes_before(struct dv_changes *ch, const struct dv_engine *e, const struct dv_event *ev);
/* After it was applied with effects fx: every change, in address order,
 * through cb; then the grants among fx. */
void dv_changes_after(struct dv_changes *ch, const struct dv_engine *e, const struct dv_event *ev,
		      const struct dv_effects *fx, void (*cb)(void *ud, const struct dv_change *c), void *ud);
void dv_changes_free(struct dv_changes *ch);
