/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The changes of each applied event, to the monitors and the metrics
 * (watch.h).
 */
#include "watch.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addrset.h"
#include "clock.h"
#include "conf.h"
#include "log.h"
#include "metrics.h"

#define MAX_STARTED DV_ENGINE_MAX_VIPAS

struct takeover_start {
	struct dv_addr addr; /* key: first, for dv_addr_item_hash */
	uint64_t at_us;
};

/*
 * When the cause of ev happened, on this node's CLOCK_MONOTONIC. Members
 * leaving: when Corosync told this node (the token timeout is before it,
 * and is Corosync's; the state exchange after it is dvipa's). An event from
 * another node (a holder's release or exit, an address handed over): when
 * that node sent it, by its wall clock, so the cluster's round trip
 * counts. Otherwise now.
 */
static uint64_t cause_us(const struct dv_engine *e, const struct dv_event *ev)
{
	uint64_t now = dv_mono_us(), wall = dv_wall_ms(), ago_us;

	if (ev->type == DV_EV_MEMBERSHIP && dv_metrics.members_left_us)
		return dv_metrics.members_left_us;
	if (ev->node == dv_engine_self(e) || !ev->time_ms || ev->time_ms > wall)
		return now;
	ago_us = (wall - ev->time_ms) * 1000;
	return ago_us < now ? now - ago_us : now;
}

void dv_watch_before(struct dv_watch *w, const struct dv_engine *e, const struct dv_control *ctl,
		     const struct dv_event *ev)
{
	/* A program's exit on another node may hand its VIPAs to standbys
	 * here: worth a walk. A client of this node going (every dvipactl
	 * run) is not, unless someone watches. */
	bool scan = ev->type != DV_EV_CLIENT_GONE || ev->node != dv_engine_self(e) || dv_control_monitored(ctl);

	w->cause_us = cause_us(e, ev);
	if (dv_changes_before(&w->changes, e, ev, scan) < 0)
		log_warn("out of memory: the changes of an event are not reported");
}

static void started_forget(struct dv_watch *w, const struct dv_addr *a)
{
	void **slot = dv_hashtab_find(&w->started, dv_addr_hash(a), dv_addr_item_match, a);

	if (!slot)
		return;
	free(*slot);
	dv_hashtab_del(&w->started, slot, dv_addr_item_hash);
}

static void started_note(struct dv_watch *w, const struct dv_addr *a)
{
	struct takeover_start *t;

	started_forget(w, a);
	if (dv_hashtab_size(&w->started) >= MAX_STARTED)
		return;
	t = malloc(sizeof(*t));
	if (!t)
		return;
	t->addr = *a;
	t->at_us = w->cause_us;
	if (dv_hashtab_put(&w->started, t, dv_addr_item_hash) < 0)
		free(t);
}

static const char *node_name(const struct dv_engine *e, dv_nodeid_t id, char buf[static 32])
{
	const char *n = id ? dv_engine_node_name(e, id) : "";

	if (n)
		return n;
	snprintf(buf, 32, "node %u", id);
	return buf;
}

static void publish(struct dv_control *ctl, const struct dv_engine *e, const struct dv_change *c)
{
	struct dv_msgb *b = dv_control_change_begin(ctl);
	char s[DV_ADDR_STRLEN], n1[32], n2[32];

	dv_msgb_field_u64(b, "time", dv_wall_ms());
	dv_msgb_field_str(b, "event", dv_change_name(c->kind));
	if (c->kind == DV_CHANGE_QUORUM) {
		dv_msgb_field_bool(b, "quorate", c->quorate);
	} else if (c->kind == DV_CHANGE_MEMBERSHIP) {
		const dv_nodeid_t *m;
		size_t n = dv_engine_members(e, &m);
		char list[DV_REASON_MAX] = "";
		size_t len = 0;

		for (size_t i = 0; i < n && len < sizeof(list); i++)
			len += (size_t)snprintf(list + len, sizeof(list) - len, "%s%s", i ? "," : "",
						node_name(e, m[i], n1));
		dv_msgb_field_str(b, "members", list);
		dv_msgb_field_bool(b, "quorate", c->quorate);
	} else {
		dv_msgb_field_str(b, "addr", dv_addr_fmt(&c->addr, s));
		if (c->from)
			dv_msgb_field_str(b, "from", node_name(e, c->from, n1));
		if (c->to)
			dv_msgb_field_str(b, "to", node_name(e, c->to, n2));
		if (c->origin)
			dv_msgb_field_str(b, "origin", dv_origin_name(c->origin));
		if (c->kind == DV_CHANGE_GRANT)
			dv_msgb_field_u64(b, "client", c->client);
		if (c->reason && *c->reason)
			dv_msgb_field_str(b, "reason", c->reason);
	}
	dv_control_change_send(ctl);
}

struct after {
	struct dv_watch *w;
	const struct dv_engine *e;
	struct dv_control *ctl;
};

static void on_change(void *ud, const struct dv_change *c)
{
	struct after *a = ud;
	dv_nodeid_t self = dv_engine_self(a->e);

	switch (c->kind) {
	case DV_CHANGE_QUORUM:
		dv_metrics.quorum_changes++;
		break;
	case DV_CHANGE_MEMBERSHIP:
		dv_metrics.membership_changes++;
		break;
	case DV_CHANGE_TAKEOVER:
		if (c->to == self)
			started_note(a->w, &c->addr);
		break;
	case DV_CHANGE_MOVE:
		if (c->to == self)
			dv_metrics.moves++;
		break;
	default:
		break;
	}
	/* Taken from this node before it was installed: no takeover here. */
	if (c->from == self && c->to != self)
		started_forget(a->w, &c->addr);
	if (dv_control_monitored(a->ctl))
		publish(a->ctl, a->e, c);
}

void dv_watch_after(struct dv_watch *w, const struct dv_engine *e, struct dv_control *ctl, const struct dv_event *ev,
		    const struct dv_effects *fx)
{
	struct after a = {.w = w, .e = e, .ctl = ctl};

	dv_changes_after(&w->changes, e, ev, fx, on_change, &a);
}

void dv_watch_installed(struct dv_watch *w, const struct dv_engine *e, const struct dv_addr *a)
{
	void **slot = dv_hashtab_find(&w->started, dv_addr_hash(a), dv_addr_item_match, a);
	struct dv_vipa_info v;

	dv_metrics_activated(dv_engine_lookup(e, a, &v) == 0 ? v.origin : DV_ORIGIN_NONE);
	if (!slot)
		return;
	dv_metrics_takeover(dv_mono_us() - ((struct takeover_start *)*slot)->at_us);
	free(*slot);
	dv_hashtab_del(&w->started, slot, dv_addr_item_hash);
}

void dv_watch_free(struct dv_watch *w)
{
	struct takeover_start *t;

	DV_HASHTAB_FOREACH(t, &w->started)
		free(t);
	dv_hashtab_clear(&w->started);
	dv_changes_free(&w->changes);
}
