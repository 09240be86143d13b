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

/* An address taken over, not installed yet; or (orphans) one whose owner
 * left the group, waiting for the quorum's confirmation to get a new one. */
struct takeover_start {
	struct dv_addr addr; /* key: first, for dv_addr_item_hash */
	uint64_t at_us;
	dv_nodeid_t owner; /* orphans: the owner that left */
};

/*
 * When the cause of ev happened, on this node's CLOCK_MONOTONIC. A
 * membership: when Corosync last told this node of a configuration change
 * (the token timeout is before it, and is Corosync's; the state exchange
 * after it is dvipa's). An event from
 * another node (a holder's release or exit, an address handed over): when
 * that node sent it, by its wall clock, so the cluster's round trip
 * counts. Otherwise now.
 */
static uint64_t cause_us(const struct dv_engine *e, const struct dv_event *ev)
{
	uint64_t now = dv_mono_us(), wall = dv_wall_ms(), ago_us;

	if (ev->type == DV_EV_MEMBERSHIP && dv_metrics.view_changed_us)
		return dv_metrics.view_changed_us;
	if (ev->node == dv_engine_self(e) || !ev->time_ms || ev->time_ms > wall)
		return now;
	ago_us = (wall - ev->time_ms) * 1000;
	return ago_us < now ? now - ago_us : now;
}

static void remember_names(struct dv_watch *w, const struct dv_engine *e)
{
	const dv_nodeid_t *m;
	size_t n = dv_engine_members(e, &m);

	w->n_names = 0;
	for (size_t i = 0; i < n && w->n_names < DV_ENGINE_MAX_NODES; i++) {
		const char *name = dv_engine_node_name(e, m[i]);

		if (!name)
			continue;
		w->name_ids[w->n_names] = m[i];
		snprintf(w->names[w->n_names++], DV_NODE_NAME_MAX, "%s", name);
	}
}

void dv_watch_before(struct dv_watch *w, const struct dv_engine *e, const struct dv_event *ev)
{
	w->cause_us = cause_us(e, ev);
	if (ev->type == DV_EV_MEMBERSHIP)
		remember_names(w, e);
	if (dv_changes_before(&w->changes, e, ev) < 0)
		log_warn("out of memory: the changes of an event are not reported");
}

/* Take a's entry out of t: the caller frees it; NULL if none. */
static struct takeover_start *start_take(struct dv_hashtab *t, const struct dv_addr *a)
{
	void **slot = dv_hashtab_find(t, dv_addr_hash(a), dv_addr_item_match, a);
	struct takeover_start *s;

	if (!slot)
		return NULL;
	s = *slot;
	dv_hashtab_del(t, slot, dv_addr_item_hash);
	return s;
}

static void start_note(struct dv_hashtab *t, const struct dv_addr *a, uint64_t at_us, dv_nodeid_t owner)
{
	struct takeover_start *s = start_take(t, a);

	if (!s && dv_hashtab_size(t) >= MAX_STARTED)
		return;
	if (!s && !(s = malloc(sizeof(*s))))
		return;
	*s = (struct takeover_start){.addr = *a, .at_us = at_us, .owner = owner};
	if (dv_hashtab_put(t, s, dv_addr_item_hash) < 0)
		free(s);
}

static void starts_clear(struct dv_hashtab *t)
{
	struct takeover_start *s;

	DV_HASHTAB_FOREACH(s, t)
		free(s);
	dv_hashtab_clear(t);
}

static const char *node_name(const struct dv_watch *w, const struct dv_engine *e, dv_nodeid_t id, char buf[static 32])
{
	const char *n = id ? dv_engine_node_name(e, id) : "";

	if (n)
		return n;
	for (size_t i = 0; i < w->n_names; i++)
		if (w->name_ids[i] == id)
			return w->names[i];
	snprintf(buf, 32, "node %u", id);
	return buf;
}

static void publish(const struct dv_watch *w, struct dv_control *ctl, const struct dv_engine *e,
		    const struct dv_change *c)
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
						node_name(w, e, m[i], n1));
		dv_msgb_field_str(b, "members", list);
		dv_msgb_field_bool(b, "quorate", c->quorate);
	} else {
		dv_msgb_field_str(b, "addr", dv_addr_fmt(&c->addr, s));
		if (c->from)
			dv_msgb_field_str(b, "from", node_name(w, e, c->from, n1));
		if (c->to)
			dv_msgb_field_str(b, "to", node_name(w, e, c->to, n2));
		if (c->origin)
			dv_msgb_field_str(b, "origin", dv_origin_name(c->origin));
		if (c->kind == DV_CHANGE_GRANT) {
			dv_msgb_field_u64(b, "client", c->client);
			dv_msgb_field_u64(b, "pid", (uint64_t)dv_control_client_pid(ctl, c->client));
		}
		if (c->reason && *c->reason)
			dv_msgb_field_str(b, "reason", c->reason);
	}
	dv_control_change_send(ctl);
}

struct after {
	struct dv_watch *w;
	const struct dv_engine *e;
	struct dv_control *ctl;
	const struct dv_event *ev;
};

static void on_change(void *ud, const struct dv_change *change)
{
	struct after *a = ud;
	dv_nodeid_t self = dv_engine_self(a->e);
	struct dv_change orphan_taken;
	const struct dv_change *c = change;
	struct takeover_start *o;
	uint64_t cause = a->w->cause_us;

	/* The owner left the group: while quorum is confirmed nobody gets its
	 * addresses, then the confirmation gives them to new owners. That is
	 * one takeover, from the departure on. */
	if (c->kind == DV_CHANGE_RELEASE && a->ev->type == DV_EV_MEMBERSHIP && !dv_engine_is_member(a->e, c->from))
		start_note(&a->w->orphans, &c->addr, cause, c->from);
	if (c->kind == DV_CHANGE_ACTIVATION && (o = start_take(&a->w->orphans, &c->addr))) {
		orphan_taken = *c;
		orphan_taken.kind = DV_CHANGE_TAKEOVER;
		orphan_taken.from = o->owner;
		cause = o->at_us;
		free(o);
		c = &orphan_taken;
	}

	switch (c->kind) {
	case DV_CHANGE_QUORUM:
		dv_metrics.quorum_changes++;
		break;
	case DV_CHANGE_MEMBERSHIP:
		dv_metrics.membership_changes++;
		break;
	case DV_CHANGE_TAKEOVER:
		if (c->to == self)
			start_note(&a->w->started, &c->addr, cause, c->from);
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
		free(start_take(&a->w->started, &c->addr));
	if (dv_control_monitored(a->ctl))
		publish(a->w, a->ctl, a->e, c);
}

void dv_watch_after(struct dv_watch *w, const struct dv_engine *e, struct dv_control *ctl, const struct dv_event *ev,
		    const struct dv_effects *fx)
{
	struct after a = {.w = w, .e = e, .ctl = ctl, .ev = ev};

	dv_changes_after(&w->changes, e, ev, fx, on_change, &a);
	/* The confirmation of quorum gave the departed owners' addresses to
	 * whom it would: one that gets an owner later is a new activation. */
	if (ev->type == DV_EV_QUORUM)
		starts_clear(&w->orphans);
}

void dv_watch_installed(struct dv_watch *w, const struct dv_engine *e, const struct dv_addr *a)
{
	struct takeover_start *t = start_take(&w->started, a);
	struct dv_vipa_info v;

	dv_metrics_activated(dv_engine_lookup(e, a, &v) == 0 ? v.origin : DV_ORIGIN_NONE);
	if (!t)
		return;
	dv_metrics_takeover(dv_mono_us() - t->at_us);
	free(t);
}

void dv_watch_free(struct dv_watch *w)
{
	starts_clear(&w->started);
	starts_clear(&w->orphans);
	dv_changes_free(&w->changes);
}
