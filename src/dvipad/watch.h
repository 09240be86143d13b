/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What the operator watches, fed by the daemon around every event it
 * applies: the changes (changes.h) go to the monitors on the control
 * socket (`dvipactl monitor`) and to the metrics (metrics.h), and a
 * takeover's duration is measured from its cause to the address on this
 * node's interface.
 */
#pragma once

#include "changes.h"
#include "control.h"
#include "engine.h"
#include "hashtab.h"

struct dv_watch {
	struct dv_changes changes;
	/* Addresses this node took over and has not installed yet (struct
	 * takeover_start): the gate may hold the install back. */
	struct dv_hashtab started;
	/* Addresses whose owner left the group and that have no owner yet:
	 * the next activation is a takeover (see on_change()). */
	struct dv_hashtab orphans;
	uint64_t cause_us; /* CLOCK_MONOTONIC: the cause of the event being applied */
	/* The names of the members before the event: a node that left is
	 * named in the changes its departure causes. */
	size_t n_names;
	dv_nodeid_t name_ids[DV_ENGINE_MAX_NODES];
	char names[DV_ENGINE_MAX_NODES][DV_NODE_NAME_MAX];
};

/* Around dv_engine_apply(ev) (ctl may be NULL). */
void dv_watch_before(struct dv_watch *w, const struct dv_engine *e, const struct dv_event *ev);
void dv_watch_after(struct dv_watch *w, const struct dv_engine *e, struct dv_control *ctl, const struct dv_event *ev,
		    const struct dv_effects *fx);
/* a is now on this node's interface. */
void dv_watch_installed(struct dv_watch *w, const struct dv_engine *e, const struct dv_addr *a);
void dv_watch_free(struct dv_watch *w);
